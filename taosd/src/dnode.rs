//! A dnode: one taosd process. It hosts the mnode and the vnodes of every database (single-node
//! today; `ins_dnodes` shows it as dnode 1) and refuses to share its data dir with another
//! process (`<dataDir>/.running` lock).

use crate::config::DnodeConfig;
use crate::mnode::catalog::DbInfo;
use crate::mnode::Mnode;
use crate::vnode::Vnode;
use common::{Code, TaosError, TaosResult};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub struct Dnode {
    pub config: DnodeConfig,
    pub mnode: Arc<Mnode>,
    pub vnodes: RwLock<HashMap<u32, Arc<Vnode>>>,
    pub start_time: i64,
    pub next_conn_id: AtomicU64,
    /// Live connections and their running statements (SHOW CONNECTIONS / QUERIES, KILL).
    pub conns: crate::conns::Connections,
    /// Serialises DDL that spans mnode and vnodes (TDengine runs these as mnode transactions).
    pub ddl_lock: tokio::sync::Mutex<()>,
    /// Data subscription: consumer groups, offsets, polls.
    pub tmq: crate::tmq::Tmq,
    /// SELECT planning and execution; it reads this dnode back through a weak catalog handle.
    query: std::sync::OnceLock<taos_query::QueryEngine>,
    _lock: std::fs::File,
}

impl Dnode {
    pub async fn open(config: DnodeConfig) -> TaosResult<Arc<Dnode>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            TaosError::new(
                Code::APP_ERROR,
                format!("cannot create dataDir {}: {e}", config.data_dir.display()),
            )
        })?;
        let lock = lock_data_dir(&config.data_dir)?;
        let mnode = Arc::new(Mnode::open(&config.data_dir)?);
        let dbs: Vec<DbInfo> = mnode.read(|c| c.dbs.values().cloned().collect());
        let tmq = crate::tmq::Tmq::open(&config.data_dir)?;
        let dnode = Arc::new(Dnode {
            tmq,
            mnode,
            vnodes: RwLock::new(HashMap::new()),
            start_time: common::Precision::Ms.now(),
            next_conn_id: AtomicU64::new(1),
            conns: Default::default(),
            ddl_lock: tokio::sync::Mutex::new(()),
            query: std::sync::OnceLock::new(),
            _lock: lock,
            config,
        });
        let catalog = crate::exec::catalog::DnodeCatalog {
            dnode: Arc::downgrade(&dnode),
        };
        let _ = dnode
            .query
            .set(taos_query::QueryEngine::new(Arc::new(catalog)));
        for db in &dbs {
            dnode.open_vnodes(db).await?;
        }
        Ok(dnode)
    }

    pub fn query_engine(&self) -> &taos_query::QueryEngine {
        self.query.get_or_init(|| {
            taos_query::QueryEngine::new(Arc::new(crate::exec::catalog::DnodeCatalog {
                dnode: std::sync::Weak::new(),
            }))
        })
    }

    pub fn vnode_dir(&self, vgid: u32) -> PathBuf {
        self.config
            .data_dir
            .join("vnode")
            .join(format!("vnode{vgid}"))
    }

    /// Open (or create) a database's vnodes concurrently: each waits for its raft election and
    /// WAL replay, which would otherwise add up.
    pub async fn open_vnodes(&self, db: &DbInfo) -> TaosResult<()> {
        let mut tasks = Vec::with_capacity(db.vgroups.len());
        for vg in &db.vgroups {
            let (dir, id, info, mnode, ep, wake) = (
                self.vnode_dir(vg.id),
                vg.id,
                db.clone(),
                self.mnode.clone(),
                self.config.endpoint(),
                self.tmq.wake.clone(),
            );
            tasks.push((
                id,
                tokio::spawn(async move { Vnode::open(dir, id, &info, mnode, &ep, wake).await }),
            ));
        }
        let mut first_err = None;
        for (id, t) in tasks {
            match t.await {
                Ok(Ok(v)) => {
                    self.vnodes.write().insert(id, Arc::new(v));
                    tracing::info!(db = %db.name, vgid = id, "vnode open");
                }
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(e) => {
                    first_err =
                        first_err.or(Some(TaosError::internal(format!("vnode {id} open: {e}"))))
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn vnode(&self, vgid: u32) -> TaosResult<Arc<Vnode>> {
        self.vnodes.read().get(&vgid).cloned().ok_or_else(|| {
            TaosError::new(
                Code::SYN_NOT_LEADER,
                format!("vgroup {vgid} is not hosted here"),
            )
        })
    }

    /// Close and delete the vnodes of a dropped database.
    pub async fn drop_vnodes(&self, db: &DbInfo) {
        for vg in &db.vgroups {
            let v = self.vnodes.write().remove(&vg.id);
            if let Some(v) = v {
                v.close().await;
            }
            let dir = self.vnode_dir(vg.id);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove dropped vnode dir");
            }
        }
    }

    /// KEEP: drop whole file sets that fell out of every database's retention window.
    pub fn spawn_retention(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(d) = weak.upgrade() else { return };
                let all: Vec<Arc<Vnode>> = d.vnodes.read().values().cloned().collect();
                drop(d);
                for v in all {
                    let precision = v.shared.options.read().precision;
                    let t = v.shared.tsdb.clone();
                    match tokio::task::spawn_blocking(move || t.expire(precision.now())).await {
                        Ok(Ok(n)) if n > 0 => {
                            tracing::info!(vgid = v.shared.vgid, file_sets = n, "expired by KEEP")
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(vgid = v.shared.vgid, error = %e, "KEEP expiry failed")
                        }
                        _ => {}
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            }
        });
    }

    /// Drop consumers whose heartbeat stopped (TDengine checks every 2 s; we check every second).
    pub fn spawn_tmq_reaper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(d) = weak.upgrade() else { return };
                d.tmq.reap(&d);
            }
        });
    }

    pub async fn shutdown(&self) {
        let all: Vec<Arc<Vnode>> = self.vnodes.read().values().cloned().collect();
        for v in all {
            v.close().await;
        }
    }
}

/// An exclusive `flock` on `<dataDir>/.running`: a second taosd on the same dir fails fast.
fn lock_data_dir(dir: &std::path::Path) -> TaosResult<std::fs::File> {
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
