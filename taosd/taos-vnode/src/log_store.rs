//! The raft log of a vgroup on its WAL: the WAL *is* the raft log (an entry's index is the
//! version that TMQ offsets name). With `REPLICA 1` the group has one voter; replicas and the
//! dnode RPC change nothing on this storage side.
//!
//! Files in the vnode dir besides the engine's: `wal/` (segments, see `tsdb::wal`) holding
//! `bincode(openraft::Entry<TypeConfig>)` payloads, and `raft.json` (vote and last purged log
//! id, rewritten atomically on change).

use crate::TypeConfig;
use common::fs::write_atomic;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError,
    Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::Arc;
use tsdb::wal::Wal;

type SErr = StorageError<u64>;

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
        // The WAL drops whole segments; entries up to `upto` left in a kept segment are hidden
        // by `readable_from`, so a purge is exact for every reader.
        self.wal.purge_upto(upto.index).map_err(|e| e.to_taos())?;
        self.cache = self.cache.split_off(&(upto.index + 1));
        if self.last_log_id.is_none_or(|l| l.index < upto.index) {
            self.last_log_id = Some(upto);
        }
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
        let start = start.max(self.readable_from());
        if start > end {
            return Ok(Vec::new());
        }
        self.wal.read(start, end).map_err(|e| e.to_taos())
    }

    pub fn disk_bytes(&self) -> u64 {
        self.wal.disk_bytes()
    }

    /// The oldest version still in the WAL (older ones were purged after flush + retention).
    pub fn first_index(&self) -> Option<u64> {
        self.wal.first_index().map(|f| f.max(self.readable_from()))
    }

    /// The first index not purged.
    fn readable_from(&self) -> u64 {
        self.persisted.purged.map_or(0, |p| p.index + 1)
    }

    fn entries(&mut self, start: u64, end_inclusive: u64) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let start = start.max(self.readable_from());
        if start > end_inclusive {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end_inclusive - start).saturating_add(1).min(1024) as usize);
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
            last_log_id: inner.last_log_id.max(inner.persisted.purged),
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

