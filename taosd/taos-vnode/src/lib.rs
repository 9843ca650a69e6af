//! A vnode: one replica of a vgroup, i.e. a raft group (openraft) whose log is the vnode's WAL
//! and whose state machine is the meta store plus the storage engine (`tsdb`).
//!
//! The door: changes go in as [`VnodeRequest`]s through raft ([`Vnode::propose`]), reads as
//! [`VnodeRead`]s ([`Vnode::read`]), maintenance as [`VnodeControl`]s. All three are plain
//! serialisable data, so the dnode serves them to a coordinator in the same process or over RPC
//! alike; nothing outside this crate sees the meta store or the engine.
//!
//! Layout of `<dataDir>/vnode/vnode<vgid>/`: `wal/` (raft log), `raft.json` (vote, purged log
//! id), `tsdb/` (the engine's manifest and Parquet file sets; its meta blob is a bincode
//! [`meta::VnodeMeta`] with the log id it covers). Recovery: the engine loads its manifest, the
//! meta store comes from the blob, openraft replays the WAL after the blob's applied log id.

mod apply;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod log_store;
pub mod meta;
pub mod network;
pub mod read;
pub mod request;
pub mod state_machine;

pub use config::VnodeConfig;
pub use meta::{TableKind, TableMeta};
pub use read::{SerBatch, VnodeControl, VnodeRead, VnodeReadReply};
pub use request::{NewTable, StableSchema, Submit, SubmitTable, VnodeRequest, VnodeResponse};

use crate::log_store::{LogInner, LogStore};
use crate::meta::VnodeMeta;
use crate::network::Network;
use crate::state_machine::StateMachine;
use common::{Code, TaosError, TaosResult};
use openraft::{BasicNode, LogId, ServerState};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tsdb::wal::Wal;
use tsdb::Tsdb;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = VnodeRequest,
        R = VnodeResponse,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime
);

pub type Raft = openraft::Raft<TypeConfig>;

/// State shared by the raft state machine, the log store and the vnode's own methods.
pub(crate) struct VnodeShared {
    pub(crate) vgid: u32,
    pub(crate) meta: RwLock<VnodeMeta>,
    pub(crate) tsdb: Arc<Tsdb>,
    pub(crate) log: Arc<Mutex<LogInner>>,
    pub(crate) config: RwLock<VnodeConfig>,
    /// suid -> (schema version, engine schema); normal tables use their uid.
    pub(crate) schemas: RwLock<HashMap<u64, (u32, Arc<tsdb::Schema>)>>,
    flushing: Arc<AtomicBool>,
    /// Flushed log ids and when, so WAL segments outlive the flush for WAL_RETENTION_PERIOD.
    retained: Mutex<VecDeque<(LogId<u64>, Instant)>>,
    /// Signalled after entries are applied: TMQ polls parked on an idle vgroup wake up.
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

pub struct Vnode {
    shared: Arc<VnodeShared>,
    raft: Raft,
    db: String,
}

/// What a dnode needs to open (or create) a vnode.
pub struct VnodeSpec {
    pub dir: PathBuf,
    pub vgid: u32,
    pub db: String,
    pub config: VnodeConfig,
    /// Super tables to start from when the meta store has none of them (a data dir written
    /// before schemas lived in the vnode). Written to the log by the dnode's reconcile step.
    pub seed_stables: Vec<StableSchema>,
    /// This replica's raft endpoint.
    pub endpoint: String,
    pub wake: Arc<tokio::sync::Notify>,
}

impl Vnode {
    pub async fn open(spec: VnodeSpec) -> TaosResult<Vnode> {
        let VnodeSpec {
            dir,
            vgid,
            db,
            config,
            seed_stables,
            endpoint,
            wake,
        } = spec;
        let (shared, log) = open_storage(&dir, vgid, config, seed_stables, wake)?;
        let raft_config = openraft::Config {
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
            Arc::new(raft_config),
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
            members.insert(1u64, BasicNode { addr: endpoint });
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
        spawn_wal_ticker(&shared);
        Ok(Vnode { shared, raft, db })
    }

    pub fn vgid(&self) -> u32 {
        self.shared.vgid
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    pub fn config(&self) -> VnodeConfig {
        self.shared.config.read().clone()
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

    /// Maintenance that is not replicated: each replica flushes, compacts and expires on its own.
    pub async fn control(&self, op: VnodeControl) -> TaosResult<()> {
        let shared = self.shared.clone();
        match op {
            VnodeControl::Flush => blocking(move || shared.flush_blocking()).await,
            VnodeControl::Compact => {
                blocking(move || {
                    shared.flush_blocking()?;
                    shared.tsdb.compact().map_err(|e| e.to_taos())
                })
                .await
            }
            VnodeControl::Expire { now } => {
                let n = blocking(move || shared.tsdb.expire(now).map_err(|e| e.to_taos())).await?;
                if n > 0 {
                    tracing::info!(vgid = self.shared.vgid, file_sets = n, "expired by KEEP");
                }
                Ok(())
            }
            VnodeControl::SetConfig(c) => {
                self.shared.log.lock().set_wal_options(c.wal_options());
                *self.shared.config.write() = c;
                Ok(())
            }
        }
    }

    /// The versions a TMQ consumer can read: `begin` is the oldest retained, `end` one past
    /// the last applied (a position equal to `end` has nothing to read).
    pub fn wal_range(&self) -> (u64, u64) {
        let end = self
            .shared
            .meta
            .read()
            .applied
            .map(|l| l.index + 1)
            .unwrap_or(1);
        let begin = self.shared.log.lock().first_index().unwrap_or(end).min(end);
        (begin, end)
    }

    /// The entries `start..=end` still in the WAL, with their versions; `None` for blank and
    /// membership entries. Decoded after the log lock is released, so appends are not held up.
    pub fn read_wal(&self, start: u64, end: u64) -> TaosResult<Vec<(u64, Option<VnodeRequest>)>> {
        let records = self.shared.log.lock().read_raw(start, end)?;
        let mut out = Vec::with_capacity(records.len());
        for (index, bytes) in records {
            let entry: openraft::Entry<TypeConfig> =
                bincode::deserialize(&bytes).map_err(|e| {
                    TaosError::new(Code::WAL_FILE_CORRUPTED, format!("WAL entry {index}: {e}"))
                })?;
            match entry.payload {
                openraft::EntryPayload::Normal(req) => out.push((index, Some(req))),
                _ => out.push((index, None)),
            }
        }
        Ok(out)
    }

    /// One table's meta, read in place (the TMQ reader, which runs beside the vnode).
    pub fn table_meta(&self, name: &str) -> Option<TableMeta> {
        self.shared.meta.read().get(name).cloned()
    }

    /// A super table as this vnode knows it.
    pub fn stable(&self, suid: u64) -> Option<StableSchema> {
        self.shared.meta.read().stables.get(&suid).cloned()
    }

    /// The engine schema a table's rows are written with.
    pub fn schema_of(&self, t: &TableMeta) -> TaosResult<Arc<tsdb::Schema>> {
        let m = self.shared.meta.read();
        self.shared.schema_for(&m, t)
    }

    pub async fn close(&self) {
        let _ = self.raft.shutdown().await;
        let _ = self.shared.log.lock().wal_sync();
    }
}

/// The engine, the meta store and the log of a vnode dir, before raft runs on them.
fn open_storage(
    dir: &std::path::Path,
    vgid: u32,
    config: VnodeConfig,
    seed_stables: Vec<StableSchema>,
    wake: Arc<tokio::sync::Notify>,
) -> TaosResult<(Arc<VnodeShared>, Arc<Mutex<LogInner>>)> {
    std::fs::create_dir_all(dir)?;
    let tsdb = Tsdb::open(&dir.join("tsdb"), config.tsdb_options()).map_err(|e| e.to_taos())?;
    let mut meta = match tsdb.meta_blob() {
        Some(b) => VnodeMeta::decode(&b).map_err(|e| {
            TaosError::new(Code::FILE_CORRUPTED, format!("vnode {vgid} meta: {e}"))
        })?,
        None => VnodeMeta::new(vgid),
    };
    for st in seed_stables {
        meta.stables.entry(st.uid).or_insert(st);
    }
    let wal = Wal::open(&dir.join("wal"), config.wal_options()).map_err(|e| e.to_taos())?;
    let log = Arc::new(Mutex::new(LogInner::open(dir.to_path_buf(), wal)?));
    let shared = Arc::new(VnodeShared {
        vgid,
        meta: RwLock::new(meta),
        tsdb: Arc::new(tsdb),
        log: log.clone(),
        config: RwLock::new(config),
        schemas: RwLock::new(HashMap::new()),
        flushing: Arc::new(AtomicBool::new(false)),
        retained: Mutex::new(VecDeque::new()),
        wake,
    });
    Ok((shared, log))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> TaosResult<T> + Send + 'static,
) -> TaosResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaosError::internal(e.to_string()))?
}

/// WAL_LEVEL 1 promises an fsync every WAL_FSYNC_PERIOD even when writes stop.
fn spawn_wal_ticker(shared: &Arc<VnodeShared>) {
    let weak = Arc::downgrade(shared);
    tokio::spawn(async move {
        loop {
            let period = match weak.upgrade() {
                Some(s) => s.config.read().wal_fsync_period_ms.max(100),
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
}

impl VnodeShared {
    /// Start a background flush when the memtable is over its budget.
    pub(crate) fn maybe_flush(self: &Arc<Self>) {
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
    pub(crate) fn flush_blocking(&self) -> TaosResult<()> {
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
            let c = self.config.read();
            (c.wal_retention_period, c.wal_retention_size)
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

    /// The engine schema of a super table (by suid) or normal table (by uid), from this
    /// vnode's own meta: applying an entry reads nothing else.
    pub(crate) fn schema_for(
        &self,
        meta: &VnodeMeta,
        table: &TableMeta,
    ) -> TaosResult<Arc<tsdb::Schema>> {
        let id = table.suid();
        let (version, columns) = meta.columns_of(table).ok_or_else(|| {
            TaosError::new(
                Code::STB_NOT_EXIST,
                format!("STable not exist: uid {}", table.suid()),
            )
        })?;
        if let Some((v, s)) = self.schemas.read().get(&id) {
            if *v == version {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(engine_schema(version, columns));
        self.schemas.write().insert(id, (version, s.clone()));
        Ok(s)
    }
}

pub fn engine_schema(version: u32, columns: &[common::ColumnDef]) -> tsdb::Schema {
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
