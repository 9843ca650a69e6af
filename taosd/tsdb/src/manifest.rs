//! The manifest: the one file that says which data files are live.
//!
//! `<dir>/manifest.json` is JSON (small, inspectable with any tool):
//!
//! ```json
//! { "format": 1, "flushed_version": 1234, "next_id": 17,
//!   "files": [ { "id": 12, "fid": 19723, "suid": 42, "rows": 100000, "ts_min": ..., "ts_max": ...,
//!                "version": 1200, "bytes": 345678 } ],
//!   "tombs": [ { "target": { "Table": 1001 }, "start": 0, "end": 99, "version": 1100 } ],
//!   "meta_blob": { "name": "meta-00000000000000000016.blob", "len": 2048, "crc": 123456 } }
//! ```
//!
//! * `files[].id` names the data file `data/<id:016>.parquet`; `fid` = floor(ts / duration) is
//!   its file set; `version` is the highest WAL index whose effects it holds: rows in a file
//!   are older than every row of a file with a higher version, and a tombstone applies to a
//!   file's rows iff the tombstone's version is higher than the file's.
//! * `tombs` are deletes (`Table(uid)`) and dropped tables/super tables (`Group(suid)`, or a
//!   table with the whole time range) not yet physically applied by compaction.
//! * `meta_blob` names the opaque blob the vnode stored with the flush (its own metadata
//!   snapshot), in its own file so the manifest stays small; `crc` is its CRC32C.
//!
//! Swap protocol: write `manifest.json.tmp`, fsync it, rename over `manifest.json`, fsync the
//! directory. A new meta blob file is written and fsynced before the manifest that names it;
//! files no longer named are deleted only after the swap. On open, files in `data/` and blob
//! files the manifest does not name (left by a crash mid-flush/compaction) are removed.

use crate::error::{sync_dir, StorageError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: u64,
    pub fid: i64,
    pub suid: u64,
    pub rows: u64,
    pub ts_min: i64,
    pub ts_max: i64,
    pub version: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TombTarget {
    Table(u64),
    Group(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tomb {
    pub target: TombTarget,
    pub start: i64,
    pub end: i64,
    pub version: u64,
}

impl Tomb {
    pub fn hits(&self, uid: u64, suid: u64) -> bool {
        match self.target {
            TombTarget::Table(u) => u == uid,
            TombTarget::Group(s) => s == suid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub name: String,
    pub len: u64,
    pub crc: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub format: u32,
    pub flushed_version: u64,
    pub next_id: u64,
    pub files: Vec<FileMeta>,
    pub tombs: Vec<Tomb>,
    pub meta_blob: Option<BlobRef>,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Option<Manifest>, StorageError> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::Io { path, source: e }),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::FileCorrupted(format!("{}: {e}", path.display())))?;
        if m.format != 1 {
            return Err(StorageError::FileCorrupted(format!(
                "{}: unknown format {}",
                path.display(),
                m.format
            )));
        }
        Ok(Some(m))
    }

    pub fn store(&self, dir: &Path) -> Result<(), StorageError> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let bytes = serde_json::to_vec(self)
            .map_err(|e| StorageError::Internal(format!("manifest encode: {e}")))?;
        write_durable(&tmp, &bytes)?;
        let path = dir.join(MANIFEST);
        std::fs::rename(&tmp, &path).map_err(StorageError::io(&path))?;
        sync_dir(dir)
    }
}

/// Write a whole file and fsync it.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut f = std::fs::File::create(path).map_err(StorageError::io(path))?;
    f.write_all(bytes).map_err(StorageError::io(path))?;
    f.sync_all().map_err(StorageError::io(path))
}
