//! A vnode: one replica of a vgroup, i.e. a raft group (openraft) whose log is the vnode's WAL
//! and whose state machine is the meta store plus the storage engine (`tsdb`).
//!
//! Layout of `<dataDir>/vnode/vnode<vgid>/`: `wal/` (raft log), `raft.json` (vote, purged log
//! id), `tsdb/` (the engine's manifest and Parquet file sets; its meta blob is a bincode
//! [`meta::VnodeMeta`] with the log id it covers). Recovery: the engine loads its manifest, the
//! meta store comes from the blob, openraft replays the WAL after the blob's applied log id.

pub mod apply;
pub mod meta;
pub mod raft;

use crate::mnode::catalog::DbInfo;
use crate::mnode::dboptions::DbOptions;
use crate::mnode::Mnode;
use crate::vnode::meta::VnodeMeta;
use crate::vnode::raft::{
    LogInner, LogStore, Network, Raft, StateMachine, VnodeRequest, VnodeResponse,
};
use common::{Code, TaosError, TaosResult};
use openraft::{BasicNode, LogId, ServerState};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tsdb::wal::{Wal, WalOptions};
use tsdb::{Tsdb, TsdbOptions};

pub struct VnodeShared {
    pub vgid: u32,
    pub db: String,
    pub meta: RwLock<VnodeMeta>,
    pub tsdb: Arc<Tsdb>,
    pub mnode: Arc<Mnode>,
    pub log: Arc<Mutex<LogInner>>,
    pub options: RwLock<DbOptions>,
    /// suid -> (schema version, engine schema); normal tables use their uid.
    pub schemas: RwLock<HashMap<u64, (u32, Arc<tsdb::Schema>)>>,
    flushing: Arc<AtomicBool>,
    /// Flushed log ids and when, so WAL segments outlive the flush for WAL_RETENTION_PERIOD.
    retained: Mutex<VecDeque<(LogId<u64>, Instant)>>,
    /// Signalled after entries are applied: TMQ polls parked on an idle vgroup wake up.
    pub wake: Arc<tokio::sync::Notify>,
}

pub struct Vnode {
    pub shared: Arc<VnodeShared>,
    pub raft: Raft,
}

pub fn tsdb_options(o: &DbOptions) -> TsdbOptions {
    TsdbOptions {
        precision: o.precision,
        duration: o.duration_units(),
        keep: o.keep_units(),
        buffer_bytes: o.buffer as usize * 1024 * 1024,
        max_rows_per_block: o.maxrows as usize,
        stt_trigger: o.stt_trigger as usize,
        cache_last: o.cachemodel != "none",
    }
}

pub fn wal_options(o: &DbOptions) -> WalOptions {
    WalOptions {
        level: o.wal_level.max(1) as u8,
        fsync_period_ms: o.wal_fsync_period as u64,
        segment_bytes: 64 << 20,
    }
}

impl Vnode {
    pub async fn open(
        dir: PathBuf,
        vgid: u32,
        db: &DbInfo,
        mnode: Arc<Mnode>,
        endpoint: &str,
        wake: Arc<tokio::sync::Notify>,
    ) -> TaosResult<Vnode> {
        std::fs::create_dir_all(&dir)?;
        let tsdb =
            Tsdb::open(&dir.join("tsdb"), tsdb_options(&db.options)).map_err(|e| e.to_taos())?;
        let mut meta = match tsdb.meta_blob() {
            Some(b) => bincode::deserialize::<VnodeMeta>(&b).map_err(|e| {
                TaosError::new(Code::FILE_CORRUPTED, format!("vnode {vgid} meta: {e}"))
            })?,
            None => VnodeMeta::new(vgid),
        };
        meta.rebuild_index();
        let wal = Wal::open(&dir.join("wal"), wal_options(&db.options)).map_err(|e| e.to_taos())?;
        let log = Arc::new(Mutex::new(LogInner::open(dir.clone(), wal)?));
        let shared = Arc::new(VnodeShared {
            vgid,
            db: db.name.clone(),
            meta: RwLock::new(meta),
            tsdb: Arc::new(tsdb),
            mnode,
            log: log.clone(),
            options: RwLock::new(db.options.clone()),
            schemas: RwLock::new(HashMap::new()),
            flushing: Arc::new(AtomicBool::new(false)),
            retained: Mutex::new(VecDeque::new()),
            wake,
        });
        let config = openraft::Config {
            cluster_name: format!("vgroup-{vgid}"),
            heartbeat_interval: 100,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            ..Default::default()
        }
        .validate()
        .map_err(|e| TaosError::internal(format!("raft config: {e}")))?;
        let raft = Raft::new(
            1,
            Arc::new(config),
            Network,
            LogStore { inner: log },
            StateMachine {
                shared: shared.clone(),
            },
        )
        .await
        .map_err(|e| TaosError::internal(format!("raft start: {e}")))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| TaosError::internal(e.to_string()))?;
        if !initialized {
            let mut members = BTreeMap::new();
            members.insert(
                1u64,
                BasicNode {
                    addr: endpoint.to_string(),
                },
            );
            raft.initialize(members)
                .await
                .map_err(|e| TaosError::internal(format!("raft init: {e}")))?;
        }
        raft.wait(Some(Duration::from_secs(30)))
            .state(ServerState::Leader, "vnode leader")
            .await
            .map_err(|e| {
                TaosError::new(
                    Code::SYN_RESTORING,
                    format!("vnode {vgid} did not become leader: {e}"),
                )
            })?;
        // Wait until everything in the WAL has been re-applied before serving reads.
        let last = raft.metrics().borrow().last_log_index;
        if let Some(last) = last {
            raft.wait(Some(Duration::from_secs(600)))
                .applied_index_at_least(Some(last), "replay")
                .await
                .map_err(|e| {
                    TaosError::new(Code::SYN_RESTORING, format!("vnode {vgid} replay: {e}"))
                })?;
        }
        // WAL_LEVEL 1 promises an fsync every WAL_FSYNC_PERIOD even when writes stop.
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let period = match weak.upgrade() {
                    Some(s) => s.options.read().wal_fsync_period.max(100) as u64,
                    None => return,
                };
                tokio::time::sleep(Duration::from_millis(period)).await;
                let Some(s) = weak.upgrade() else { return };
                let log = s.log.clone();
                let res = tokio::task::spawn_blocking(move || log.lock().wal_tick()).await;
                if let Ok(Err(e)) = res {
                    tracing::error!(vgid = s.vgid, error = %e, "WAL fsync failed");
                }
            }
        });
        Ok(Vnode { shared, raft })
    }

    /// Propose a change through raft and wait until it is applied.
    pub async fn propose(&self, req: VnodeRequest) -> TaosResult<VnodeResponse> {
        match self.raft.client_write(req).await {
            Ok(r) => match r.data.error {
                Some(e) => Err(e),
                None => Ok(r.data),
            },
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) => Err(TaosError::of(Code::SYN_NOT_LEADER)),
            Err(e) => Err(TaosError::new(
                Code::SYN_NOT_LEADER,
                format!("vnode {}: {e}", self.shared.vgid),
            )),
        }
    }

    /// FLUSH DATABASE: write the memtable to files now.
    pub async fn flush(&self) -> TaosResult<()> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.flush_blocking())
            .await
            .map_err(|e| TaosError::internal(e.to_string()))?
    }

    pub fn apply_options(&self, o: &DbOptions) {
        *self.shared.options.write() = o.clone();
        self.shared.log.lock().set_wal_options(wal_options(o));
    }

    pub async fn close(&self) {
        let _ = self.raft.shutdown().await;
        let _ = self.shared.log.lock().wal_sync();
    }
}

impl VnodeShared {
    /// Start a background flush when the memtable is over its budget.
    pub fn maybe_flush(self: &Arc<Self>) {
        if !self.tsdb.should_flush() || self.flushing.load(Ordering::Acquire) {
            return;
        }
        let me = self.clone();
        std::thread::spawn(move || {
            if let Err(e) = me.flush_blocking() {
                tracing::error!(vgid = me.vgid, error = %e, "flush failed; data stays in the WAL");
            }
        });
    }

    /// Flush memtable and meta; then release WAL segments that retention no longer needs.
    pub fn flush_blocking(&self) -> TaosResult<()> {
        while self.flushing.swap(true, Ordering::AcqRel) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let res = (|| {
            // The meta copy is taken before the engine freezes its memtable, so the blob's log id
            // is <= the engine's flushed version and replay from it re-applies (idempotently)
            // whatever happened in between.
            let (blob, applied) = {
                let m = self.meta.read();
                (
                    bincode::serialize(&*m).map_err(|e| TaosError::internal(e.to_string()))?,
                    m.applied,
                )
            };
            self.tsdb.flush(&blob).map_err(|e| e.to_taos())?;
            if let Some(applied) = applied {
                self.release_wal(applied)?;
            }
            // Merge a file set's small files once STT_TRIGGER of them have piled up.
            if let Err(e) = self.tsdb.compact() {
                tracing::warn!(vgid = self.vgid, error = %e, "compaction failed; files stay as they are");
            }
            Ok(())
        })();
        self.flushing.store(false, Ordering::Release);
        res
    }

    /// Purge WAL segments the data files already cover, once WAL_RETENTION_PERIOD has passed
    /// since their flush (-1 keeps them forever) or WAL_RETENTION_SIZE (KB, 0 = no limit) is
    /// exceeded. TMQ readers of purged versions continue from the oldest one kept.
    fn release_wal(&self, flushed: LogId<u64>) -> TaosResult<()> {
        let (period, size_kb) = {
            let o = self.options.read();
            (o.wal_retention_period, o.wal_retention_size)
        };
        let over_size = size_kb > 0 && self.log.lock().disk_bytes() > size_kb as u64 * 1024;
        let mut q = self.retained.lock();
        q.push_back((flushed, Instant::now()));
        let mut upto = None;
        while let Some((id, at)) = q.front().copied() {
            let expired = period >= 0 && at.elapsed() >= Duration::from_secs(period as u64);
            if expired || over_size {
                upto = Some(id);
                q.pop_front();
            } else {
                break;
            }
        }
        drop(q);
        if let Some(id) = upto {
            self.log.lock().purge_wal(id)?;
        }
        Ok(())
    }

    /// The engine schema of a super table (by suid) or normal table (by uid).
    pub fn schema_for(&self, table: &meta::TableMeta) -> TaosResult<Arc<tsdb::Schema>> {
        use crate::vnode::meta::TableKind;
        let (id, version, columns) = match &table.kind {
            TableKind::Normal {
                columns, version, ..
            } => (table.uid, *version, columns.clone()),
            TableKind::Child { suid, .. } => {
                let (v, cols) = self
                    .mnode
                    .read(|c| {
                        c.stable_by_uid(&self.db, *suid)
                            .map(|s| (s.version, s.columns.clone()))
                    })
                    .ok_or_else(|| {
                        TaosError::new(Code::STB_NOT_EXIST, format!("STable not exist: uid {suid}"))
                    })?;
                (*suid, v, cols)
            }
        };
        if let Some((v, s)) = self.schemas.read().get(&id) {
            if *v == version {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(engine_schema(version, &columns));
        self.schemas.write().insert(id, (version, s.clone()));
        Ok(s)
    }
}

pub fn engine_schema(version: u32, columns: &[crate::mnode::catalog::ColumnDef]) -> tsdb::Schema {
    tsdb::Schema {
        version,
        columns: columns
            .iter()
            .map(|c| tsdb::ColumnSchema {
                id: c.id,
                name: c.name.clone(),
                ty: c.ty,
            })
            .collect(),
    }
}
