//! A vnode's settings, derived by the dnode from its database's options. Plain data (the
//! mnode's `DbOptions` stay in the mnode) so the dnode RPC that creates a vnode can carry it.

use common::Precision;
use serde::{Deserialize, Serialize};
use tsdb::wal::WalOptions;
use tsdb::TsdbOptions;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VnodeConfig {
    pub precision: Precision,
    /// File-set span and retention, in precision units (DURATION, KEEP).
    pub duration: i64,
    pub keep: i64,
    /// Memtable budget in bytes (BUFFER).
    pub buffer_bytes: usize,
    pub max_rows_per_block: usize,
    pub stt_trigger: usize,
    /// CACHEMODEL other than 'none'.
    pub cache_last: bool,
    pub wal_level: u8,
    pub wal_fsync_period_ms: u64,
    /// Seconds to keep flushed WAL segments for TMQ (-1: forever).
    pub wal_retention_period: i64,
    /// KB of WAL to keep at most (0: no limit).
    pub wal_retention_size: i64,
}

impl VnodeConfig {
    pub fn tsdb_options(&self) -> TsdbOptions {
        TsdbOptions {
            precision: self.precision,
            duration: self.duration,
            keep: self.keep,
            buffer_bytes: self.buffer_bytes,
            max_rows_per_block: self.max_rows_per_block,
            stt_trigger: self.stt_trigger,
            cache_last: self.cache_last,
        }
    }

    pub fn wal_options(&self) -> WalOptions {
        WalOptions {
            level: self.wal_level.max(1),
            fsync_period_ms: self.wal_fsync_period_ms,
            segment_bytes: 64 << 20,
        }
    }
}
