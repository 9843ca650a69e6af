//! A vnode's time-series storage: the WAL (also the raft log), the memtable, Parquet file sets,
//! the manifest and the last-row cache. See each module's docs for its on-disk format.

pub mod engine;
pub mod error;
pub mod fileset;
pub mod manifest;
pub mod memtable;
pub mod rows;
pub mod wal;

pub use engine::{
    AggColumn, AggReport, AggSum, ColumnAgg, ColumnSchema, ScanRequest, Schema, StorageError,
    TableAgg, TableWrite, Tsdb, TsdbOptions,
};
pub use wal::{Wal, WalOptions};
