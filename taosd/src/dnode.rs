//! A dnode: the host of vnodes and (at most) one mnode in one taosd process. It owns the data
//! dir (`<dataDir>/.running` lock, refused to a second process), opens and drops vnodes when
//! asked, and serves [`DnodeCall`]s, the requests a coordinator sends it, in process or over
//! RPC alike. It executes no SQL: that is the coordinator's job, above it.

use crate::config::DnodeConfig;
use crate::rpc::{DnodeCall, DnodeReply};
use common::{Code, TaosError, TaosResult};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taos_mnode::{DbInfo, DbOptions, Mnode};
use taos_vnode::{StableSchema, Vnode, VnodeConfig, VnodeSpec};

pub struct Dnode {
    pub id: u32,
    pub config: DnodeConfig,
    /// The catalog, when this dnode hosts the mnode (dnode 1 today).
    pub mnode: Option<Arc<Mnode>>,
    vnodes: RwLock<HashMap<u32, Arc<Vnode>>>,
    /// Signalled by every vnode here after it applies entries (TMQ polls wait on it).
    pub wake: Arc<tokio::sync::Notify>,
    _lock: std::fs::File,
}

/// A vnode's settings from its database's options.
pub fn vnode_config(o: &DbOptions) -> VnodeConfig {
    VnodeConfig {
        precision: o.precision,
        duration: o.duration_units(),
        keep: o.keep_units(),
        buffer_bytes: o.buffer as usize * 1024 * 1024,
        max_rows_per_block: o.maxrows as usize,
        stt_trigger: o.stt_trigger as usize,
        cache_last: o.cachemodel != "none",
        wal_level: o.wal_level.max(1) as u8,
        wal_fsync_period_ms: o.wal_fsync_period as u64,
        wal_retention_period: o.wal_retention_period as i64,
        wal_retention_size: o.wal_retention_size as i64,
    }
}

/// The super tables of a database as its vnodes keep them.
pub fn stable_schemas(mnode: &Mnode, db: &str) -> Vec<StableSchema> {
    mnode.read(|c| {
        c.stables
            .get(db)
            .map(|m| m.values().map(stable_schema).collect())
            .unwrap_or_default()
    })
}

pub fn stable_schema(st: &taos_mnode::StableInfo) -> StableSchema {
    StableSchema {
        uid: st.uid,
        name: st.name.clone(),
        version: st.version,
        columns: st.columns.clone(),
        tags: st.tags.clone(),
    }
}

impl Dnode {
    /// Open the data dir and the mnode (`with_mnode`), and every vnode the catalog places here.
    pub async fn open(id: u32, config: DnodeConfig, with_mnode: bool) -> TaosResult<Arc<Dnode>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            TaosError::new(
                Code::APP_ERROR,
                format!("cannot create dataDir {}: {e}", config.data_dir.display()),
            )
        })?;
        let lock = lock_data_dir(&config.data_dir)?;
        let mnode = if with_mnode {
            Some(Arc::new(Mnode::open(&config.data_dir)?))
        } else {
            None
        };
        Ok(Arc::new(Dnode {
            id,
            mnode,
            vnodes: RwLock::new(HashMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
            _lock: lock,
            config,
        }))
    }

    fn vnode_dir(&self, vgid: u32) -> PathBuf {
        self.config
            .data_dir
            .join("vnode")
            .join(format!("vnode{vgid}"))
    }

    pub fn vnode(&self, vgid: u32) -> TaosResult<Arc<Vnode>> {
        self.vnodes.read().get(&vgid).cloned().ok_or_else(|| {
            TaosError::new(
                Code::SYN_NOT_LEADER,
                format!("vgroup {vgid} is not hosted on dnode {}", self.id),
            )
        })
    }

    /// How many vnodes this dnode hosts (ins_dnodes.vnodes).
    pub fn vnode_count(&self) -> usize {
        self.vnodes.read().len()
    }

    async fn open_vnode(
        &self,
        vgid: u32,
        db: String,
        config: VnodeConfig,
        stables: Vec<StableSchema>,
    ) -> TaosResult<()> {
        if self.vnodes.read().contains_key(&vgid) {
            return Ok(());
        }
        let v = Vnode::open(VnodeSpec {
            dir: self.vnode_dir(vgid),
            vgid,
            db: db.clone(),
            config,
            seed_stables: stables,
            endpoint: self.config.endpoint(),
            wake: self.wake.clone(),
        })
        .await?;
        tracing::info!(db = %db, vgid, dnode = self.id, "vnode open");
        self.vnodes.write().insert(vgid, Arc::new(v));
        Ok(())
    }

    /// Close a vnode and delete its files (its database was dropped).
    async fn drop_vnode(&self, vgid: u32) {
        let v = self.vnodes.write().remove(&vgid);
        if let Some(v) = v {
            v.close().await;
        }
        let dir = self.vnode_dir(vgid);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove dropped vnode dir");
            }
        }
    }

    /// Serve one request of a coordinator.
    pub async fn handle(&self, call: DnodeCall) -> TaosResult<DnodeReply> {
        Ok(match call {
            DnodeCall::Propose { vgid, req } => DnodeReply::Written(self.vnode(vgid)?.propose(req).await?),
            DnodeCall::Read { vgid, read } => DnodeReply::Read(self.vnode(vgid)?.read(read).await?),
            DnodeCall::Control { vgid, op } => {
                self.vnode(vgid)?.control(op).await?;
                DnodeReply::Done
            }
            DnodeCall::WalRange { vgid } => {
                let (b, e) = self.vnode(vgid)?.wal_range();
                DnodeReply::WalRange(b, e)
            }
            DnodeCall::ReadWal { vgid, start, end } => {
                let v = self.vnode(vgid)?;
                DnodeReply::Wal(
                    tokio::task::spawn_blocking(move || v.read_wal(start, end))
                        .await
                        .map_err(|e| TaosError::internal(e.to_string()))??,
                )
            }
            DnodeCall::OpenVnode {
                vgid,
                db,
                config,
                stables,
            } => {
                self.open_vnode(vgid, db, config, stables).await?;
                DnodeReply::Done
            }
            DnodeCall::DropVnode { vgid } => {
                self.drop_vnode(vgid).await;
                DnodeReply::Done
            }
            DnodeCall::Status => DnodeReply::Status {
                vnodes: self.vnode_count() as u32,
            },
        })
    }

    /// The vnodes of `db` that the catalog places on this dnode (at start).
    pub async fn open_placed(&self, db: &DbInfo, stables: Vec<StableSchema>) -> TaosResult<()> {
        let mut tasks = Vec::new();
        for vg in db.vgroups.iter().filter(|v| v.dnode_id == self.id) {
            // Concurrently: each waits for its raft election and WAL replay.
            let (vgid, name, cfg, st) = (vg.id, db.name.clone(), vnode_config(&db.options), stables.clone());
            tasks.push(self.open_vnode(vgid, name, cfg, st));
        }
        let mut first_err = None;
        for r in futures_util::future::join_all(tasks).await {
            if let Err(e) = r {
                first_err = first_err.or(Some(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub async fn shutdown(&self) {
        let all: Vec<Arc<Vnode>> = self.vnodes.read().values().cloned().collect();
        for v in all {
            v.close().await;
        }
    }
}

/// An exclusive `flock` on `<dataDir>/.running`: a second taosd on the same dir fails fast.
fn lock_data_dir(dir: &Path) -> TaosResult<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".running");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a valid fd owned by `f`; no memory is shared.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(TaosError::new(
            Code::APP_ERROR,
            format!(
                "dataDir {} is in use by another taosd (lock {})",
                dir.display(),
                path.display()
            ),
        ));
    }
    use std::io::Write;
    let mut w = &f;
    let _ = f.set_len(0);
    let _ = writeln!(w, "{}", std::process::id());
    Ok(f)
}
