//! The per-vnode time-series engine: memtable(s) + Parquet file sets + manifest + last-row cache.
//!
//! # Directory layout
//!
//! ```text
//! <dir>/manifest.json                   live files, tombstones, flushed_version (see `manifest`)
//! <dir>/manifest.json.tmp               only during a swap
//! <dir>/meta-<id:016>.blob              the caller's meta snapshot stored with the last flush
//! <dir>/data/<id:016>.parquet           data files (see `fileset` for their format)
//! ```
//!
//! The WAL lives elsewhere (the caller owns it and its replay): after `open`, the caller replays
//! WAL records with index > `flushed_version()` through `write`/`delete_range`/`drop_*`.
//!
//! # Versions and merging
//!
//! Every operation carries its WAL index (`version`). Memtable rows keep theirs; a data file has
//! one version: the highest WAL index whose effects it contains (the flush's
//! `flushed_version`, or the max of the inputs for compaction output). A read gathers, per
//! table, the rows of every file (oldest file first), the frozen memtable (being flushed) and
//! the active one, drops rows hit by a tombstone with a higher version, and merges rows with
//! the same timestamp: the newest version wins column by column, NONE (column not supplied)
//! keeps the older value, explicit NULL overwrites.
//!
//! # Concurrency
//!
//! `write`, `scan` and friends take `&self`. A flush swaps the active memtable for a fresh one
//! under a short write lock and then writes the frozen one without blocking writers; scans see
//! files + frozen + active. Flush, compaction and expiry are serialized by one mutex. Data files
//! that a manifest swap removes are deleted when the last scan holding them finishes.
//!
//! # Output types
//!
//! Scan output: `ts` first as `Timestamp(Millisecond|Microsecond|Nanosecond, None)` per the
//! database precision, named as in the schema; then the requested columns typed by
//! `rows::arrow_type` (BOOL→Boolean, TINYINT→Int8 … BIGINT UNSIGNED→UInt64, FLOAT→Float32,
//! DOUBLE→Float64, TIMESTAMP→Timestamp, VARCHAR/NCHAR/JSON→Utf8, VARBINARY/GEOMETRY→Binary).

mod aggregate;

use crate::fileset::{self, BlockStat, Loaded, Part};
use crate::manifest::{write_durable, BlobRef, FileMeta, Manifest, Tomb, TombTarget};
use crate::memtable::Memtable;
use crate::rows::{arrow_type, ts_array, Rows, NONE};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema as ArrowSchema};
use common::{DataType, Precision, Value};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::error::StorageError;
pub use aggregate::{AggColumn, AggReport, AggSum, ColumnAgg, TableAgg};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnSchema {
    pub id: u16,
    pub name: String,
    pub ty: DataType,
}

/// Data columns of a table or super table (no tags). Column id 1 is the timestamp and first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schema {
    pub version: u32,
    pub columns: Vec<ColumnSchema>,
}

impl Schema {
    pub fn column(&self, id: u16) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct TsdbOptions {
    pub precision: Precision,
    /// File-set span, in precision units.
    pub duration: i64,
    /// Retention span, in precision units.
    pub keep: i64,
    /// Memtable budget.
    pub buffer_bytes: usize,
    pub max_rows_per_block: usize,
    /// Compaction merges the files of a (file set, super table) once there are this many.
    pub stt_trigger: usize,
    pub cache_last: bool,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            precision: Precision::Ms,
            duration: 10 * 86_400_000,
            keep: 3650 * 86_400_000,
            buffer_bytes: 256 << 20,
            max_rows_per_block: 4096,
            stt_trigger: 2,
            cache_last: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TableWrite {
    pub uid: u64,
    /// The super table's uid for a child table, == uid for a normal table.
    pub suid: u64,
    pub schema: Arc<Schema>,
    /// Columns supplied, in order; the first is 1 (ts).
    pub col_ids: Vec<u16>,
    /// Rows parallel to `col_ids`; `Value::Timestamp` first; `Value::Null` = explicit NULL.
    pub rows: Vec<Vec<Value>>,
}

#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub uids: Vec<(u64, u64)>,
    /// Inclusive time range.
    pub start: i64,
    pub end: i64,
    /// Columns wanted; ts (1) is always returned first.
    pub col_ids: Vec<u16>,
    pub schema: Arc<Schema>,
    pub desc: bool,
    /// Per table.
    pub limit: Option<usize>,
}

/// A live data file. Deleted from disk when dropped after a manifest swap removed it.
struct DataFile {
    meta: FileMeta,
    path: PathBuf,
    loaded: Mutex<Option<Arc<Loaded>>>,
    obsolete: AtomicBool,
}

impl DataFile {
    fn new(dir: &Path, meta: FileMeta) -> DataFile {
        DataFile {
            path: data_path(dir, meta.id),
            meta,
            loaded: Mutex::new(None),
            obsolete: AtomicBool::new(false),
        }
    }

    fn load(&self) -> Result<Arc<Loaded>, StorageError> {
        let mut g = self.loaded.lock();
        if let Some(l) = &*g {
            return Ok(l.clone());
        }
        let l = Arc::new(fileset::load(&self.path)?);
        *g = Some(l.clone());
        Ok(l)
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Relaxed) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(file = %self.path.display(), error = %e, "could not delete an obsolete data file");
            }
        }
    }
}

fn data_path(dir: &Path, id: u64) -> PathBuf {
    dir.join("data").join(format!("{id:016}.parquet"))
}

struct State {
    active: Arc<Memtable>,
    frozen: Option<(Arc<Memtable>, u64)>,
    files: Arc<Vec<Arc<DataFile>>>,
    tombs: Vec<Tomb>,
    flushed_version: u64,
    blob: Option<(BlobRef, Arc<Vec<u8>>)>,
}

struct LastRow {
    suid: u64,
    ts: i64,
    cells: HashMap<u16, Value>,
}

pub struct Tsdb {
    dir: PathBuf,
    opts: TsdbOptions,
    state: RwLock<State>,
    /// Highest version applied by any operation.
    applied: AtomicU64,
    next_id: AtomicU64,
    maint: Mutex<()>,
    last: Mutex<HashMap<u64, LastRow>>,
}

fn fid_of(ts: i64, duration: i64) -> i64 {
    ts.div_euclid(duration.max(1))
}

impl Tsdb {
    pub fn open(dir: &Path, opts: TsdbOptions) -> Result<Tsdb, StorageError> {
        if opts.duration <= 0 {
            return Err(StorageError::InvalidArgument(format!(
                "duration must be > 0, got {}",
                opts.duration
            )));
        }
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(StorageError::io(&data))?;
        let m = Manifest::load(dir)?.unwrap_or(Manifest {
            format: 1,
            ..Default::default()
        });
        let mut files = Vec::with_capacity(m.files.len());
        let mut live: HashSet<PathBuf> = HashSet::new();
        for f in &m.files {
            let df = DataFile::new(dir, f.clone());
            if !df.path.exists() {
                return Err(StorageError::FileCorrupted(format!(
                    "data file {} named by the manifest is missing",
                    df.path.display()
                )));
            }
            live.insert(df.path.clone());
            files.push(Arc::new(df));
        }
        let blob = match &m.meta_blob {
            None => None,
            Some(b) => {
                let path = dir.join(&b.name);
                let bytes = std::fs::read(&path).map_err(StorageError::io(&path))?;
                if bytes.len() as u64 != b.len || crc32c::crc32c(&bytes) != b.crc {
                    return Err(StorageError::FileCorrupted(format!(
                        "{}: length or CRC mismatch",
                        path.display()
                    )));
                }
                live.insert(path);
                Some((b.clone(), Arc::new(bytes)))
            }
        };
        // Remove what a crash mid-flush/compaction left behind.
        for d in [dir.to_path_buf(), data.clone()] {
            for e in std::fs::read_dir(&d).map_err(StorageError::io(&d))? {
                let p = e.map_err(StorageError::io(&d))?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let ours = name.ends_with(".parquet")
                    || (name.starts_with("meta-") && name.ends_with(".blob"));
                if (ours && !live.contains(&p)) || name.ends_with(".tmp") {
                    tracing::info!(file = %p.display(), "removing a file left by an interrupted flush");
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        Ok(Tsdb {
            dir: dir.to_path_buf(),
            applied: AtomicU64::new(m.flushed_version),
            next_id: AtomicU64::new(m.next_id.max(1)),
            state: RwLock::new(State {
                active: Arc::new(Memtable::new()),
                frozen: None,
                files: Arc::new(files),
                tombs: m.tombs.clone(),
                flushed_version: m.flushed_version,
                blob,
            }),
            opts,
            maint: Mutex::new(()),
            last: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &TsdbOptions {
        &self.opts
    }

    pub fn flushed_version(&self) -> u64 {
        self.state.read().flushed_version
    }

    pub fn meta_blob(&self) -> Option<Vec<u8>> {
        self.state
            .read()
            .blob
            .as_ref()
            .map(|(_, b)| b.as_ref().clone())
    }

    pub fn write(&self, version: u64, tables: &[TableWrite]) -> Result<usize, StorageError> {
        let n = {
            let st = self.state.read();
            let n = st.active.write(version, tables)?;
            self.applied.fetch_max(version, Ordering::AcqRel);
            n
        };
        if self.opts.cache_last {
            let mut cache = self.last.lock();
            if !cache.is_empty() {
                for tw in tables {
                    if let Some(e) = cache.get_mut(&tw.uid) {
                        for row in &tw.rows {
                            let ts = row[0].as_i64().unwrap_or(i64::MIN);
                            if ts < e.ts {
                                continue;
                            }
                            if ts > e.ts {
                                e.ts = ts;
                                e.cells.clear();
                            }
                            for (&id, v) in tw.col_ids[1..].iter().zip(&row[1..]) {
                                e.cells.insert(id, v.clone());
                            }
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    pub fn delete_range(
        &self,
        version: u64,
        uid: u64,
        start: i64,
        end: i64,
    ) -> Result<u64, StorageError> {
        if start > end {
            return Ok(0);
        }
        let count = {
            let snap = self.snapshot();
            let suid = snap.active.tables.read().get(&uid).map(|t| t.suid);
            let groups: HashSet<u64> = snap.files.iter().map(|f| f.meta.suid).collect();
            let mut total = 0;
            // The suid of a table that only lives in files is not known here: look in every group.
            for s in suid.into_iter().chain(groups) {
                total = total.max(
                    self.scan_rows(&snap, &[(uid, s)], start, end, &[])?
                        .get(&uid)
                        .map_or(0, |r| r.len()),
                );
            }
            total as u64
        };
        {
            let mut st = self.state.write();
            st.tombs.push(Tomb {
                target: TombTarget::Table(uid),
                start,
                end,
                version,
            });
            st.active.delete_range(uid, start, end);
            self.applied.fetch_max(version, Ordering::AcqRel);
        }
        self.last.lock().remove(&uid);
        Ok(count)
    }

    pub fn drop_table(&self, version: u64, uid: u64) -> Result<(), StorageError> {
        let mut st = self.state.write();
        st.tombs.push(Tomb {
            target: TombTarget::Table(uid),
            start: i64::MIN,
            end: i64::MAX,
            version,
        });
        st.active.remove_table(uid);
        self.applied.fetch_max(version, Ordering::AcqRel);
        drop(st);
        self.last.lock().remove(&uid);
        Ok(())
    }

    pub fn drop_group(&self, version: u64, suid: u64) -> Result<(), StorageError> {
        let mut st = self.state.write();
        st.tombs.push(Tomb {
            target: TombTarget::Group(suid),
            start: i64::MIN,
            end: i64::MAX,
            version,
        });
        st.active.remove_group(suid);
        self.applied.fetch_max(version, Ordering::AcqRel);
        drop(st);
        self.last.lock().retain(|_, e| e.suid != suid);
        Ok(())
    }

    /// Bytes held by the active and the frozen memtable.
    pub fn memtable_bytes(&self) -> usize {
        let st = self.state.read();
        st.active.bytes() + st.frozen.as_ref().map_or(0, |(m, _)| m.bytes())
    }

    /// The active memtable is over `buffer_bytes`.
    pub fn should_flush(&self) -> bool {
        self.state.read().active.bytes() >= self.opts.buffer_bytes
    }

    fn alloc_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::AcqRel)
    }

    fn manifest(
        &self,
        files: &[Arc<DataFile>],
        tombs: Vec<Tomb>,
        flushed: u64,
        blob: Option<BlobRef>,
    ) -> Manifest {
        Manifest {
            format: 1,
            flushed_version: flushed,
            next_id: self.next_id.load(Ordering::Acquire),
            files: files.iter().map(|f| f.meta.clone()).collect(),
            tombs,
            meta_blob: blob,
        }
    }

    /// Write the memtable to data files and swap the manifest (see module docs).
    pub fn flush(&self, meta_blob: &[u8]) -> Result<(), StorageError> {
        let _m = self.maint.lock();
        let (frozen, flush_version, tombs, files) = {
            let mut st = self.state.write();
            if st.frozen.is_none() {
                let v = self.applied.load(Ordering::Acquire).max(st.flushed_version);
                let old = std::mem::replace(&mut st.active, Arc::new(Memtable::new()));
                st.frozen = Some((old, v));
            }
            let (m, v) = st
                .frozen
                .clone()
                .ok_or_else(|| StorageError::Internal("no frozen memtable".into()))?;
            (m, v, st.tombs.clone(), st.files.clone())
        };
        let p = self.opts.precision;
        // normalize, apply tombstones, split by file set
        let map = frozen.tables.read();
        let mut uids: Vec<u64> = map.keys().copied().collect();
        uids.sort_unstable();
        let mut norm: Vec<(u64, u64, Rows)> = Vec::new();
        for uid in uids {
            let Some(tb) = map.get(&uid) else { continue };
            let hits: Vec<&Tomb> = tombs.iter().filter(|t| t.hits(uid, tb.suid)).collect();
            let mut rows = tb.rows.normalized().into_owned();
            if !hits.is_empty() {
                rows.retain(|ts, ver| {
                    !hits
                        .iter()
                        .any(|t| t.version > ver && ts >= t.start && ts <= t.end)
                });
            }
            if !rows.is_empty() {
                norm.push((uid, tb.suid, rows));
            }
        }
        drop(map);
        let mut groups: BTreeMap<(i64, u64), Vec<Part>> = BTreeMap::new();
        for (uid, suid, rows) in &norm {
            let mut s = 0;
            while s < rows.len() {
                let fid = fid_of(rows.ts[s], self.opts.duration);
                let fend = (fid + 1).saturating_mul(self.opts.duration);
                let e = s + rows.ts[s..].partition_point(|&t| t < fend);
                groups.entry((fid, *suid)).or_default().push(Part {
                    uid: *uid,
                    rows,
                    range: s..e,
                });
                s = e;
            }
        }
        let mut new_files = Vec::new();
        let written = (|| {
            for ((fid, suid), parts) in &groups {
                let id = self.alloc_id();
                let path = data_path(&self.dir, id);
                let w = fileset::write_file(&path, parts, p, self.opts.max_rows_per_block)?;
                let meta = FileMeta {
                    id,
                    fid: *fid,
                    suid: *suid,
                    rows: w.rows,
                    ts_min: w.ts_min,
                    ts_max: w.ts_max,
                    version: flush_version,
                    bytes: w.bytes,
                };
                new_files.push(Arc::new(DataFile::new(&self.dir, meta)));
            }
            Ok::<(), StorageError>(())
        })();
        if let Err(e) = written {
            for f in &new_files {
                f.obsolete.store(true, Ordering::Relaxed);
            }
            return Err(e);
        }
        drop(norm);
        // files of dropped super tables go now
        let (keep, dead): (Vec<Arc<DataFile>>, Vec<Arc<DataFile>>) =
            files.iter().cloned().partition(|f| {
                !tombs.iter().any(|t| {
                    t.target == TombTarget::Group(f.meta.suid) && t.version > f.meta.version
                })
            });
        let mut all = keep;
        all.extend(new_files.iter().cloned());
        let blob_id = self.alloc_id();
        let blob_name = format!("meta-{blob_id:016}.blob");
        let blob_ref = BlobRef {
            name: blob_name.clone(),
            len: meta_blob.len() as u64,
            crc: crc32c::crc32c(meta_blob),
        };
        let blob_path = self.dir.join(&blob_name);
        let persisted: Vec<Tomb> = tombs
            .iter()
            .filter(|t| t.version <= flush_version)
            .copied()
            .collect();
        let stored = write_durable(&blob_path, meta_blob).and_then(|_| {
            self.manifest(&all, persisted, flush_version, Some(blob_ref.clone()))
                .store(&self.dir)
        });
        if let Err(e) = stored {
            for f in &new_files {
                f.obsolete.store(true, Ordering::Relaxed);
            }
            let _ = std::fs::remove_file(&blob_path);
            return Err(e);
        }
        let old_blob = {
            let mut st = self.state.write();
            st.files = Arc::new(all);
            st.frozen = None;
            st.flushed_version = flush_version;
            st.blob.replace((blob_ref, Arc::new(meta_blob.to_vec())))
        };
        for f in dead {
            f.obsolete.store(true, Ordering::Relaxed);
        }
        if let Some((old, _)) = old_blob {
            let _ = std::fs::remove_file(self.dir.join(old.name));
        }
        tracing::debug!(flush_version, files = new_files.len(), "flushed memtable");
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        let st = self.state.read();
        Snapshot {
            active: st.active.clone(),
            frozen: st.frozen.as_ref().map(|(m, _)| m.clone()),
            files: st.files.clone(),
            tombs: st.tombs.clone(),
        }
    }

    /// Merged rows per table (ascending ts, NONE left as NONE) of columns `cols`.
    fn scan_rows(
        &self,
        snap: &Snapshot,
        uids: &[(u64, u64)],
        start: i64,
        end: i64,
        cols: &[(u16, DataType)],
    ) -> Result<HashMap<u64, Rows>, StorageError> {
        let suids: HashSet<u64> = uids.iter().map(|u| u.1).collect();
        let uid_set: HashSet<u64> = uids.iter().map(|u| u.0).collect();
        let mut files: Vec<&Arc<DataFile>> = snap
            .files
            .iter()
            .filter(|f| {
                suids.contains(&f.meta.suid) && f.meta.ts_max >= start && f.meta.ts_min <= end
            })
            .collect();
        files.sort_by_key(|f| (f.meta.version, f.meta.id));
        let mut from_files: Vec<(u64, HashMap<u64, Rows>)> = Vec::with_capacity(files.len());
        for f in files {
            let loaded = f.load()?;
            let r = fileset::read(&f.path, &loaded, Some(&uid_set), start, end, cols)?;
            from_files.push((f.meta.version, r));
        }
        let mut out = HashMap::with_capacity(uids.len());
        for &(uid, suid) in uids {
            let hits: Vec<&Tomb> = snap.tombs.iter().filter(|t| t.hits(uid, suid)).collect();
            let dead = |ts: i64, ver: u64| {
                hits.iter()
                    .any(|t| t.version > ver && ts >= t.start && ts <= t.end)
            };
            let mut acc = Rows::with_cols(cols);
            for (ver, m) in &from_files {
                if let Some(r) = m.get(&uid) {
                    acc.append_from(
                        r,
                        (0..r.len()).filter(|&i| !dead(r.ts[i], *ver)),
                        Some(*ver),
                    );
                }
            }
            let mems = snap.frozen.iter().chain(std::iter::once(&snap.active));
            for m in mems {
                if let Some(r) = m.read(uid, start, end, cols) {
                    acc.append_from(&r, (0..r.len()).filter(|&i| !dead(r.ts[i], r.ver[i])), None);
                }
            }
            if acc.is_empty() {
                continue;
            }
            let rows = match acc.normalized() {
                std::borrow::Cow::Borrowed(_) => acc,
                std::borrow::Cow::Owned(r) => r,
            };
            out.insert(uid, rows);
        }
        Ok(out)
    }

    /// Rows of each requested table that has any in the range (tables with none are left out),
    /// in the order of `req.uids`.
    pub fn scan(&self, req: &ScanRequest) -> Result<Vec<(u64, RecordBatch)>, StorageError> {
        let p = self.opts.precision;
        let mut cols = Vec::new();
        let mut fields = Vec::new();
        let ts_name = req
            .schema
            .column(1)
            .map_or("ts".to_string(), |c| c.name.clone());
        fields.push(Field::new(
            ts_name,
            arrow_type(DataType::Timestamp, p),
            false,
        ));
        for &id in &req.col_ids {
            if id == 1 {
                continue;
            }
            let c = req.schema.column(id).ok_or_else(|| {
                StorageError::InvalidArgument(format!(
                    "column id {id} is not in schema version {}",
                    req.schema.version
                ))
            })?;
            cols.push((id, c.ty));
            fields.push(Field::new(c.name.clone(), arrow_type(c.ty, p), true));
        }
        let schema = Arc::new(ArrowSchema::new(fields));
        let snap = self.snapshot();
        let mut merged = self.scan_rows(&snap, &req.uids, req.start, req.end, &cols)?;
        let mut out = Vec::new();
        for &(uid, _) in &req.uids {
            let Some(mut rows) = merged.remove(&uid) else {
                continue;
            };
            if req.desc {
                rows.reverse();
            }
            if let Some(l) = req.limit {
                rows.truncate(l);
            }
            let mut arrays: Vec<ArrayRef> = vec![ts_array(&rows.ts, p)];
            for (k, &(_, ty)) in cols.iter().enumerate() {
                arrays.push(rows.cols[k].to_arrow(ty, p));
            }
            out.push((uid, RecordBatch::try_new(schema.clone(), arrays)?));
        }
        Ok(out)
    }

    /// The newest row of a table, every column of `schema` in order (ts first as
    /// `Value::Timestamp`), or None if the table has no rows.
    pub fn last_row(
        &self,
        uid: u64,
        suid: u64,
        schema: &Schema,
    ) -> Result<Option<Vec<Value>>, StorageError> {
        let build = |e: &LastRow| {
            schema
                .columns
                .iter()
                .map(|c| {
                    if c.id == 1 {
                        Value::Timestamp(e.ts)
                    } else {
                        e.cells.get(&c.id).cloned().unwrap_or(Value::Null)
                    }
                })
                .collect::<Vec<Value>>()
        };
        let mut cache = self.last.lock();
        if self.opts.cache_last {
            if let Some(e) = cache.get(&uid) {
                return Ok(Some(build(e)));
            }
        }
        let cols: Vec<(u16, DataType)> = schema
            .columns
            .iter()
            .filter(|c| c.id != 1)
            .map(|c| (c.id, c.ty))
            .collect();
        let snap = self.snapshot();
        let rows = self.scan_rows(&snap, &[(uid, suid)], i64::MIN, i64::MAX, &cols)?;
        let Some(r) = rows.get(&uid) else {
            return Ok(None);
        };
        let i = r.len() - 1;
        let mut cells = HashMap::new();
        for c in &r.cols {
            if c.state[i] != NONE {
                cells.insert(c.id, c.value(i));
            }
        }
        let e = LastRow {
            suid,
            ts: r.ts[i],
            cells,
        };
        let v = build(&e);
        if self.opts.cache_last {
            cache.insert(uid, e);
        }
        Ok(Some(v))
    }

    /// Block statistics of a table from its data files (the memtable and tombstones not
    /// included), for aggregate pushdown: (file set id, file version, block).
    pub fn table_stats(&self, uid: u64) -> Result<Vec<(i64, u64, BlockStat)>, StorageError> {
        let files = self.state.read().files.clone();
        let mut out = Vec::new();
        for f in files.iter() {
            let l = f.load()?;
            out.extend(
                l.blocks
                    .iter()
                    .filter(|b| b.uid == uid)
                    .map(|b| (f.meta.fid, f.meta.version, b.clone())),
            );
        }
        Ok(out)
    }

    /// KEEP: drop the file sets that lie entirely before `now - keep`. Returns how many.
    /// Memtable rows are not touched (the vnode rejects writes older than KEEP).
    pub fn expire(&self, now: i64) -> Result<usize, StorageError> {
        let _m = self.maint.lock();
        let cutoff = now.saturating_sub(self.opts.keep);
        let d = self.opts.duration;
        let (files, tombs, flushed, blob) = {
            let st = self.state.read();
            (
                st.files.clone(),
                st.tombs.clone(),
                st.flushed_version,
                st.blob.as_ref().map(|b| b.0.clone()),
            )
        };
        let old = |f: &DataFile| (f.meta.fid.saturating_add(1)).saturating_mul(d) <= cutoff;
        let dropped: HashSet<i64> = files
            .iter()
            .filter(|f| old(f))
            .map(|f| f.meta.fid)
            .collect();
        if dropped.is_empty() {
            return Ok(0);
        }
        let keep: Vec<Arc<DataFile>> = files.iter().filter(|f| !old(f)).cloned().collect();
        let persisted: Vec<Tomb> = tombs.into_iter().filter(|t| t.version <= flushed).collect();
        self.manifest(&keep, persisted, flushed, blob)
            .store(&self.dir)?;
        self.state.write().files = Arc::new(keep);
        for f in files.iter().filter(|f| old(f)) {
            f.obsolete.store(true, Ordering::Relaxed);
        }
        self.last.lock().clear();
        Ok(dropped.len())
    }

    /// Merge the files of each (file set, super table) that has `stt_trigger` or more files, or
    /// that tombstones hit, into one, applying deletes and dropped tables physically; then
    /// forget tombstones that no longer hit any file.
    pub fn compact(&self) -> Result<(), StorageError> {
        let _m = self.maint.lock();
        let (files, tombs, flushed, blob) = {
            let st = self.state.read();
            (
                st.files.clone(),
                st.tombs.clone(),
                st.flushed_version,
                st.blob.as_ref().map(|b| b.0.clone()),
            )
        };
        let p = self.opts.precision;
        let mut groups: BTreeMap<(i64, u64), Vec<Arc<DataFile>>> = BTreeMap::new();
        for f in files.iter() {
            groups
                .entry((f.meta.fid, f.meta.suid))
                .or_default()
                .push(f.clone());
        }
        let mut removed: HashSet<u64> = HashSet::new();
        let mut added: Vec<Arc<DataFile>> = Vec::new();
        let cleanup = |added: &Vec<Arc<DataFile>>| {
            for f in added {
                f.obsolete.store(true, Ordering::Relaxed);
            }
        };
        for ((fid, suid), mut group) in groups {
            group.sort_by_key(|f| (f.meta.version, f.meta.id));
            let mut hit = false;
            for f in &group {
                let l = f.load()?;
                let uids: HashSet<u64> = l.blocks.iter().map(|b| b.uid).collect();
                hit |= tombs.iter().any(|t| {
                    t.version > f.meta.version
                        && t.start <= f.meta.ts_max
                        && t.end >= f.meta.ts_min
                        && match t.target {
                            TombTarget::Table(u) => uids.contains(&u),
                            TombTarget::Group(s) => s == suid,
                        }
                });
            }
            if group.len() < self.opts.stt_trigger.max(2) && !hit {
                continue;
            }
            // read everything, per table
            let mut all_cols: Vec<(u16, DataType)> = Vec::new();
            let mut per_file = Vec::new();
            for f in &group {
                per_file.push((f.clone(), f.load()?));
            }
            for (_, l) in &per_file {
                for (id, ty) in l.col_types() {
                    if !all_cols.iter().any(|c| c.0 == id) {
                        all_cols.push((id, ty));
                    }
                }
            }
            all_cols.sort_by_key(|c| c.0);
            let mut tables: BTreeMap<u64, Rows> = BTreeMap::new();
            for (f, l) in &per_file {
                let r = fileset::read(&f.path, l, None, i64::MIN, i64::MAX, &all_cols)?;
                let v = f.meta.version;
                for (uid, rows) in r {
                    let hits: Vec<&Tomb> = tombs
                        .iter()
                        .filter(|t| t.hits(uid, suid) && t.version > v)
                        .collect();
                    let acc = tables
                        .entry(uid)
                        .or_insert_with(|| Rows::with_cols(&all_cols));
                    acc.append_from(
                        &rows,
                        (0..rows.len()).filter(|&i| {
                            !hits
                                .iter()
                                .any(|t| rows.ts[i] >= t.start && rows.ts[i] <= t.end)
                        }),
                        Some(v),
                    );
                }
            }
            let mut norm = Vec::new();
            for (uid, rows) in tables {
                let mut r = rows.normalized().into_owned();
                r.none_to_null();
                if !r.is_empty() {
                    norm.push((uid, r));
                }
            }
            if !norm.is_empty() {
                let parts: Vec<Part> = norm
                    .iter()
                    .map(|(uid, r)| Part {
                        uid: *uid,
                        rows: r,
                        range: 0..r.len(),
                    })
                    .collect();
                let id = self.alloc_id();
                let path = data_path(&self.dir, id);
                let w = match fileset::write_file(&path, &parts, p, self.opts.max_rows_per_block) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        cleanup(&added);
                        return Err(e);
                    }
                };
                let version = group.iter().map(|f| f.meta.version).max().unwrap_or(0);
                let meta = FileMeta {
                    id,
                    fid,
                    suid,
                    rows: w.rows,
                    ts_min: w.ts_min,
                    ts_max: w.ts_max,
                    version,
                    bytes: w.bytes,
                };
                added.push(Arc::new(DataFile::new(&self.dir, meta)));
            }
            removed.extend(group.iter().map(|f| f.meta.id));
        }
        if removed.is_empty() && added.is_empty() {
            return Ok(());
        }
        let mut live: Vec<Arc<DataFile>> = files
            .iter()
            .filter(|f| !removed.contains(&f.meta.id))
            .cloned()
            .collect();
        live.extend(added.iter().cloned());
        // a persisted tombstone is still needed while an older file overlaps it
        let needed = |t: &Tomb| {
            t.version > flushed
                || live.iter().any(|f| {
                    f.meta.version < t.version
                        && t.start <= f.meta.ts_max
                        && t.end >= f.meta.ts_min
                        && match t.target {
                            TombTarget::Group(s) => s == f.meta.suid,
                            TombTarget::Table(_) => true,
                        }
                })
        };
        let gone: Vec<Tomb> = tombs.iter().filter(|t| !needed(t)).copied().collect();
        let persisted: Vec<Tomb> = tombs
            .iter()
            .filter(|t| t.version <= flushed && needed(t))
            .copied()
            .collect();
        if let Err(e) = self
            .manifest(&live, persisted, flushed, blob)
            .store(&self.dir)
        {
            cleanup(&added);
            return Err(e);
        }
        {
            let mut st = self.state.write();
            st.files = Arc::new(live);
            st.tombs.retain(|t| !gone.contains(t));
        }
        for f in files.iter().filter(|f| removed.contains(&f.meta.id)) {
            f.obsolete.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Bytes of data files, manifest and meta blob (not the WAL: see `Wal::disk_bytes`).
    pub fn disk_bytes(&self) -> u64 {
        let st = self.state.read();
        let files: u64 = st.files.iter().map(|f| f.meta.bytes).sum();
        let manifest =
            std::fs::metadata(self.dir.join(crate::manifest::MANIFEST)).map_or(0, |m| m.len());
        files + manifest + st.blob.as_ref().map_or(0, |b| b.0.len)
    }

    /// Number of live data files (for tests and SHOW output).
    pub fn file_count(&self) -> usize {
        self.state.read().files.len()
    }

    /// Number of tombstones not yet physically applied.
    pub fn tombstone_count(&self) -> usize {
        self.state.read().tombs.len()
    }
}

struct Snapshot {
    active: Arc<Memtable>,
    frozen: Option<Arc<Memtable>>,
    files: Arc<Vec<Arc<DataFile>>>,
    tombs: Vec<Tomb>,
}
