//! openraft storage for a vgroup: the WAL *is* the raft log (an entry's index is the version
//! that TMQ offsets will name), and the state machine applies entries to the meta store and the
//! storage engine. With `REPLICA 1` the group has one voter; the cluster issue adds members and
//! a real network without touching this file's storage side.
//!
//! Files in the vnode dir besides the engine's: `wal/` (segments, see `tsdb::wal`) holding
//! `bincode(openraft::Entry)` payloads, and `raft.json` (vote and last purged log id, rewritten
//! atomically on change).

use crate::mnode::write_atomic;
use crate::vnode::apply;
use crate::vnode::VnodeShared;
use common::Value;
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::Arc;
use tsdb::wal::Wal;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = VnodeRequest,
        R = VnodeResponse,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime
);

pub type Raft = openraft::Raft<TypeConfig>;
type SErr = StorageError<u64>;

/// A table to create in the vnode's meta store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTable {
    pub name: String,
    pub kind: crate::vnode::meta::TableKind,
    pub create_time: i64,
    pub ttl: i64,
    pub comment: Option<String>,
}

/// Rows for one table: values parallel to `col_ids` (ts first); absent columns are NONE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitTable {
    pub name: String,
    pub col_ids: Vec<u16>,
    pub rows: Vec<Vec<Value>>,
}

/// One vgroup's share of an INSERT: child tables to auto-create, then rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Submit {
    pub creates: Vec<NewTable>,
    pub tables: Vec<SubmitTable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VnodeRequest {
    CreateTables(Vec<NewTable>),
    DropTables(Vec<String>),
    DropStable(u64),
    Submit(Arc<Submit>),
    /// Delete rows of these tables in [start, end].
    Delete {
        tables: Vec<String>,
        start: i64,
        end: i64,
    },
    /// Replace the tag values of a child table.
    SetTags {
        table: String,
        tags: Vec<Value>,
    },
    /// A super table lost the tag at `index`: remove that slot from every child.
    DropTag {
        suid: u64,
        index: usize,
    },
    /// Replace the schema of a normal table.
    AlterNormal {
        table: String,
        columns: Vec<crate::mnode::catalog::ColumnDef>,
        version: u32,
        next_col_id: u16,
    },
    /// ALTER TABLE ... TTL n / COMMENT 'c' of a child or normal table (None: unchanged).
    SetTableOptions {
        table: String,
        ttl: Option<i64>,
        comment: Option<String>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VnodeResponse {
    pub affected: i64,
    pub error: Option<common::TaosError>,
}

fn io_err(e: impl std::fmt::Display) -> SErr {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}
fn read_err(e: impl std::fmt::Display) -> SErr {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    vote: Option<Vote<u64>>,
    purged: Option<LogId<u64>>,
}

pub struct LogInner {
    wal: Wal,
    /// Entries appended but not yet read by the state machine, so it does not decode what
    /// was just encoded.
    cache: BTreeMap<u64, Entry<TypeConfig>>,
    last_log_id: Option<LogId<u64>>,
    persisted: Persisted,
    state_path: PathBuf,
}

impl LogInner {
    pub fn open(dir: PathBuf, wal: Wal) -> Result<LogInner, common::TaosError> {
        let state_path = dir.join("raft.json");
        let persisted: Persisted = match std::fs::read(&state_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| common::TaosError::internal(format!("raft.json: {e}")))?,
            Err(_) => Persisted::default(),
        };
        let mut inner = LogInner {
            wal,
            cache: BTreeMap::new(),
            last_log_id: None,
            persisted,
            state_path,
        };
        inner.last_log_id = match inner.wal.last_index() {
            Some(i) => {
                let recs = inner.wal.read(i, i).map_err(|e| e.to_taos())?;
                let (_, bytes) = recs
                    .into_iter()
                    .next()
                    .ok_or_else(|| common::TaosError::internal("WAL tail unreadable"))?;
                let e: Entry<TypeConfig> = bincode::deserialize(&bytes).map_err(|e| {
                    common::TaosError::new(common::Code::WAL_FILE_CORRUPTED, e.to_string())
                })?;
                Some(e.log_id)
            }
            None => inner.persisted.purged,
        };
        Ok(inner)
    }

    fn save(&self) -> Result<(), SErr> {
        let b = serde_json::to_vec(&self.persisted).map_err(io_err)?;
        write_atomic(&self.state_path, &b).map_err(io_err)
    }

    /// Drop cached entries up to `index` (they have been applied).
    pub fn applied(&mut self, index: u64) {
        self.cache = self.cache.split_off(&(index + 1));
    }

    /// Remove WAL segments up to `index` once data is durable in files (and TMQ retention allows).
    pub fn purge_wal(&mut self, upto: LogId<u64>) -> Result<(), common::TaosError> {
        if self
            .persisted
            .purged
            .map(|p| p.index >= upto.index)
            .unwrap_or(false)
        {
            return Ok(());
        }
        self.wal.purge_upto(upto.index).map_err(|e| e.to_taos())?;
        self.persisted.purged = Some(upto);
        self.save()
            .map_err(|e| common::TaosError::internal(e.to_string()))
    }

    pub fn set_wal_options(&mut self, opts: tsdb::wal::WalOptions) {
        self.wal.set_options(opts);
    }

    /// WAL_LEVEL 1: fsync when the period has elapsed, even if no write comes along.
    pub fn wal_tick(&mut self) -> Result<(), common::TaosError> {
        self.wal.tick().map_err(|e| e.to_taos())
    }

    pub fn wal_sync(&mut self) -> Result<(), common::TaosError> {
        self.wal.sync().map_err(|e| e.to_taos())
    }

    /// WAL records `start..=end` that still exist, undecoded: TMQ readers decode them after
    /// releasing the lock so appends are not held up.
    pub fn read_raw(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, common::TaosError> {
        self.wal.read(start, end).map_err(|e| e.to_taos())
    }

    pub fn disk_bytes(&self) -> u64 {
        self.wal.disk_bytes()
    }

    /// The oldest version still in the WAL (older ones were purged after flush + retention).
    pub fn first_index(&self) -> Option<u64> {
        self.wal.first_index()
    }

    fn entries(&mut self, start: u64, end_inclusive: u64) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        if start > end_inclusive {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end_inclusive - start + 1).min(1024) as usize);
        let mut next = start;
        // Serve from the cache what it has; read the rest from the WAL.
        if let Some((&first_cached, _)) = self.cache.range(start..=end_inclusive).next() {
            if first_cached > start {
                out.extend(self.read_wal(start, first_cached - 1)?);
            }
            // Taken, not cloned: the only reader of a single-voter group is the state machine,
            // which applies each entry once; the WAL still holds it for any later read. Owning
            // the entry lets apply move its rows into the memtable instead of copying them.
            let keys: Vec<u64> = self
                .cache
                .range(first_cached..=end_inclusive)
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                if let Some(e) = self.cache.remove(&k) {
                    next = e.log_id.index + 1;
                    out.push(e);
                }
            }
            if next <= end_inclusive {
                out.extend(self.read_wal(next, end_inclusive)?);
            }
        } else {
            out.extend(self.read_wal(start, end_inclusive)?);
        }
        Ok(out)
    }

    fn read_wal(&self, start: u64, end: u64) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let (Some(first), Some(last)) = (self.wal.first_index(), self.wal.last_index()) else {
            return Ok(Vec::new());
        };
        let (s, e) = (start.max(first), end.min(last));
        if s > e {
            return Ok(Vec::new());
        }
        let recs = self.wal.read(s, e).map_err(read_err)?;
        recs.into_iter()
            .map(|(_, b)| bincode::deserialize::<Entry<TypeConfig>>(&b).map_err(read_err))
            .collect()
    }
}

/// Handle shared by openraft's log store and log readers.
#[derive(Clone)]
pub struct LogStore {
    pub inner: Arc<Mutex<LogInner>>,
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => *e,
        Bound::Excluded(e) => e.saturating_sub(1),
        Bound::Unbounded => u64::MAX,
    };
    (
        start,
        if matches!(range.end_bound(), Bound::Excluded(0)) {
            0
        } else {
            end
        },
    )
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        if matches!(range.end_bound(), Bound::Excluded(0)) {
            return Ok(Vec::new());
        }
        let (s, e) = bounds(&range);
        let inner = self.inner.clone();
        tokio::task::block_in_place(move || inner.lock().entries(s, e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let inner = self.inner.lock();
        Ok(LogState {
            last_purged_log_id: inner.persisted.purged,
            last_log_id: inner.last_log_id.or(inner.persisted.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), SErr> {
        let mut inner = self.inner.lock();
        inner.persisted.vote = Some(*vote);
        inner.save()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, SErr> {
        Ok(self.inner.lock().persisted.vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let inner = self.inner.clone();
        let res = tokio::task::block_in_place(move || -> Result<(), SErr> {
            let encoded: Vec<(u64, Vec<u8>)> = entries
                .iter()
                .map(|e| {
                    bincode::serialize(e)
                        .map(|b| (e.log_id.index, b))
                        .map_err(io_err)
                })
                .collect::<Result<_, _>>()?;
            let refs: Vec<(u64, &[u8])> = encoded.iter().map(|(i, b)| (*i, b.as_slice())).collect();
            let mut g = inner.lock();
            g.wal.append(&refs).map_err(io_err)?;
            for e in entries {
                g.last_log_id = Some(e.log_id);
                g.cache.insert(e.log_id.index, e);
            }
            Ok(())
        });
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let mut g = self.inner.lock();
        g.wal.truncate_from(log_id.index).map_err(io_err)?;
        g.cache.split_off(&log_id.index);
        let prev = log_id.index.checked_sub(1);
        g.last_log_id = match prev {
            Some(p) if p > 0 => g
                .entries(p, p)?
                .pop()
                .map(|e| e.log_id)
                .or(g.persisted.purged),
            _ => g.persisted.purged,
        };
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let mut g = self.inner.lock();
        g.purge_wal(log_id).map_err(io_err)
    }
}

/// The replicated state machine: meta store + storage engine of one vnode.
pub struct StateMachine {
    pub shared: Arc<VnodeShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        // Snapshots ship whole vnodes to new replicas: that belongs to the cluster issue.
        Err(StorageIOError::write_snapshot(
            None,
            AnyError::error("vnode snapshots are not supported yet"),
        )
        .into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), SErr> {
        let m = self.shared.meta.read();
        Ok((m.applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<VnodeResponse>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let shared = self.shared.clone();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        tokio::task::block_in_place(move || {
            let mut out = Vec::with_capacity(entries.len());
            let mut last = None;
            for e in entries {
                last = Some(e.log_id.index);
                let resp = match e.payload {
                    EntryPayload::Blank => VnodeResponse::default(),
                    EntryPayload::Normal(req) => apply::apply(&shared, e.log_id.index, req),
                    EntryPayload::Membership(m) => {
                        shared.meta.write().membership = StoredMembership::new(Some(e.log_id), m);
                        VnodeResponse::default()
                    }
                };
                shared.meta.write().applied = Some(e.log_id);
                out.push(resp);
            }
            if let Some(i) = last {
                shared.log.lock().applied(i);
            }
            shared.wake.notify_waiters();
            shared.maybe_flush();
            Ok(out)
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateMachine {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<u64, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        Err(StorageIOError::write_snapshot(
            None,
            AnyError::error("vnode snapshots are not supported yet"),
        )
        .into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        Ok(None)
    }
}

/// With one voter there is nobody to call; the cluster issue replaces this with RPC on serverPort.
pub struct Network;
pub struct NoPeer;

impl openraft::network::RaftNetworkFactory<TypeConfig> for Network {
    type Network = NoPeer;
    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> NoPeer {
        NoPeer
    }
}

fn unreachable<E: std::error::Error>() -> openraft::error::RPCError<u64, BasicNode, E> {
    openraft::error::RPCError::Unreachable(openraft::error::Unreachable::new(
        &std::io::Error::other("no peers: single-replica vgroup"),
    ))
}

impl openraft::network::RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: openraft::raft::AppendEntriesRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::AppendEntriesResponse<u64>,
        openraft::error::RPCError<u64, BasicNode, openraft::error::RaftError<u64>>,
    > {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: openraft::raft::InstallSnapshotRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::InstallSnapshotResponse<u64>,
        openraft::error::RPCError<
            u64,
            BasicNode,
            openraft::error::RaftError<u64, openraft::error::InstallSnapshotError>,
        >,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: openraft::raft::VoteRequest<u64>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::VoteResponse<u64>,
        openraft::error::RPCError<u64, BasicNode, openraft::error::RaftError<u64>>,
    > {
        Err(unreachable())
    }
}
