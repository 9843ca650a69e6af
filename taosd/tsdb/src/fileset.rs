//! Data files: one Parquet file per (flush or compaction, file set, super table).
//!
//! # Layout of `<dir>/data/<id:016>.parquet`
//!
//! Rows sorted by (`_uid`, `ts`), unique per (`_uid`, `ts`). Columns:
//!
//! | column       | Arrow type                          | encoding (fallback)              |
//! |--------------|-------------------------------------|----------------------------------|
//! | `_uid`       | UInt64                              | dictionary + RLE                 |
//! | `ts`         | Timestamp(ms/us/ns per precision)   | DELTA_BINARY_PACKED, no dict     |
//! | `<col id>`   | per `DataType` (see `rows::arrow_type`) | dictionary (ints: DELTA_BINARY_PACKED, floats: BYTE_STREAM_SPLIT) |
//! | `_none_<id>` | Boolean, only if the file has NONE cells in that column | RLE     |
//!
//! Data columns are named by their stable column id (so a rename changes nothing on disk) and
//! carry field metadata `tsdb.col_id` and `tsdb.type` (the `DataType` as JSON). A column added
//! after a file was written is simply absent from it and reads as NULL. `_none_<id>` marks
//! cells that were never supplied (NONE), so that a later merge with an older file keeps the
//! older value; compaction output (all files of a file set merged) never has them.
//!
//! Compression ZSTD(3) on every column. Data pages hold at most `max_rows_per_block` rows and
//! the page index is written, so a scan of one table with a `RowSelection` decodes only the
//! pages of that table's blocks. Row groups hold up to 1 Mi rows.
//!
//! # Block index
//!
//! The Parquet key-value metadata `tsdb.blocks` holds JSON `[BlockStat]`: one entry per
//! (table, run of at most `max_rows_per_block` rows) with the table uid, first row number and
//! row count in the file, ts range and per-column `count` (non-null values), `min`, `max`, `sum`
//! (as f64, numeric and bool columns; variable-size columns have only `count`). A scan picks
//! blocks by uid and ts range; aggregates can be answered from it without decoding.
//! `tsdb.format` = "1".

use crate::error::StorageError;
use crate::rows::{arrow_type, ts_array, ts_values, Col, Rows, NONE, VAL};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema as ArrowSchema};
use common::{DataType, Precision};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, PageIndexPolicy};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

const BLOCKS_KEY: &str = "tsdb.blocks";
const FORMAT_KEY: &str = "tsdb.format";
const META_ID: &str = "tsdb.col_id";
const META_TYPE: &str = "tsdb.type";
const META_NONE: &str = "tsdb.none_of";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColStat {
    pub id: u16,
    /// Non-null values.
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockStat {
    pub uid: u64,
    pub row_start: u64,
    pub rows: u32,
    pub ts_min: i64,
    pub ts_max: i64,
    pub cols: Vec<ColStat>,
}

/// Rows `range` of one table's normalized rows.
pub(crate) struct Part<'a> {
    pub uid: u64,
    pub rows: &'a Rows,
    pub range: Range<usize>,
}

pub(crate) struct Written {
    pub rows: u64,
    pub ts_min: i64,
    pub ts_max: i64,
    pub bytes: u64,
}

fn props(cols: &[(u16, DataType)], rows_per_page: usize) -> Result<WriterProperties, StorageError> {
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_data_page_row_count_limit(rows_per_page.max(1))
        .set_write_batch_size(rows_per_page.clamp(1, 1024))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED);
    for &(id, ty) in cols {
        let path = ColumnPath::from(id.to_string());
        if ty.is_integer() || ty == DataType::Timestamp {
            b = b.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        } else if matches!(ty, DataType::Float | DataType::Double) {
            b = b.set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(b.build())
}

fn stats(part: &Part, cols: &[(u16, DataType)], block: Range<usize>) -> Vec<ColStat> {
    let mut out = Vec::with_capacity(cols.len());
    for &(id, ty) in cols {
        let Some(p) = part.rows.col_pos(id) else {
            out.push(ColStat {
                id,
                count: 0,
                min: 0.0,
                max: 0.0,
                sum: 0.0,
            });
            continue;
        };
        let c = &part.rows.cols[p];
        let mut s = ColStat {
            id,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        };
        let numeric = ty.is_numeric() || matches!(ty, DataType::Bool | DataType::Timestamp);
        for i in block.clone() {
            if c.state[i] != VAL {
                continue;
            }
            s.count += 1;
            if numeric {
                let v = c.value(i).as_f64().unwrap_or(0.0);
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                s.sum += v;
            }
        }
        if s.count == 0 || !numeric {
            s.min = 0.0;
            s.max = 0.0;
        }
        out.push(s);
    }
    out
}

/// Write `parts` (sorted by uid, each range sorted by ts with unique ts) to a new file.
pub(crate) fn write_file(
    path: &Path,
    parts: &[Part],
    precision: Precision,
    max_rows_per_block: usize,
) -> Result<Written, StorageError> {
    let mut cols: Vec<(u16, DataType)> = Vec::new();
    for p in parts {
        for c in &p.rows.cols {
            if !cols.iter().any(|x| x.0 == c.id) {
                cols.push((c.id, c.ty));
            }
        }
    }
    cols.sort_by_key(|c| c.0);
    let has_none: Vec<bool> = cols
        .iter()
        .map(|&(id, _)| {
            parts.iter().any(|p| match p.rows.col_pos(id) {
                Some(k) => p.rows.cols[k].state[p.range.clone()].contains(&NONE),
                None => !p.range.is_empty(),
            })
        })
        .collect();
    let mut fields = vec![
        Field::new("_uid", arrow_schema::DataType::UInt64, false),
        Field::new("ts", arrow_type(DataType::Timestamp, precision), false),
    ];
    for &(id, ty) in &cols {
        let md = HashMap::from([
            (META_ID.to_string(), id.to_string()),
            (
                META_TYPE.to_string(),
                serde_json::to_string(&ty).unwrap_or_default(),
            ),
        ]);
        fields.push(Field::new(id.to_string(), arrow_type(ty, precision), true).with_metadata(md));
    }
    for (k, &(id, _)) in cols.iter().enumerate() {
        if has_none[k] {
            let md = HashMap::from([(META_NONE.to_string(), id.to_string())]);
            fields.push(
                Field::new(
                    format!("_none_{id}"),
                    arrow_schema::DataType::Boolean,
                    false,
                )
                .with_metadata(md),
            );
        }
    }
    let schema = Arc::new(ArrowSchema::new(fields));
    let file = std::fs::File::create(path).map_err(StorageError::io(path))?;
    let mut w = ArrowWriter::try_new(
        file,
        schema.clone(),
        Some(props(&cols, max_rows_per_block)?),
    )?;
    let mut blocks = Vec::new();
    let mut row_no = 0u64;
    let (mut ts_min, mut ts_max) = (i64::MAX, i64::MIN);
    for p in parts {
        let n = p.range.len();
        if n == 0 {
            continue;
        }
        let r = p.rows;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(vec![p.uid; n])),
            ts_array(&r.ts[p.range.clone()], precision),
        ];
        for &(id, ty) in &cols {
            arrays.push(match r.col_pos(id) {
                Some(k) => r.cols[k].to_arrow_range(ty, precision, p.range.clone()),
                None => arrow_array::new_null_array(&arrow_type(ty, precision), n),
            });
        }
        for (k, &(id, _)) in cols.iter().enumerate() {
            if has_none[k] {
                let m: BooleanArray = match r.col_pos(id) {
                    Some(c) => r.cols[c].state[p.range.clone()]
                        .iter()
                        .map(|&s| Some(s == NONE))
                        .collect(),
                    None => vec![Some(true); n].into_iter().collect(),
                };
                arrays.push(Arc::new(m));
            }
        }
        w.write(&RecordBatch::try_new(schema.clone(), arrays)?)?;
        let step = max_rows_per_block.max(1);
        let mut s = p.range.start;
        while s < p.range.end {
            let e = (s + step).min(p.range.end);
            blocks.push(BlockStat {
                uid: p.uid,
                row_start: row_no + (s - p.range.start) as u64,
                rows: (e - s) as u32,
                ts_min: r.ts[s],
                ts_max: r.ts[e - 1],
                cols: stats(p, &cols, s..e),
            });
            s = e;
        }
        ts_min = ts_min.min(r.ts[p.range.start]);
        ts_max = ts_max.max(r.ts[p.range.end - 1]);
        row_no += n as u64;
    }
    let blocks_json =
        serde_json::to_string(&blocks).map_err(|e| StorageError::Internal(e.to_string()))?;
    w.append_key_value_metadata(KeyValue::new(BLOCKS_KEY.to_string(), blocks_json));
    w.append_key_value_metadata(KeyValue::new(FORMAT_KEY.to_string(), "1".to_string()));
    let file = w.into_inner()?;
    file.sync_all().map_err(StorageError::io(path))?;
    let bytes = file.metadata().map_err(StorageError::io(path))?.len();
    Ok(Written {
        rows: row_no,
        ts_min,
        ts_max,
        bytes,
    })
}

/// A data file's footer, decoded once and cached.
pub(crate) struct Loaded {
    meta: ArrowReaderMetadata,
    pub blocks: Vec<BlockStat>,
    /// column id -> (root index, type in this file)
    cols: HashMap<u16, (usize, DataType)>,
    /// column id -> root index of its `_none_` column
    nones: HashMap<u16, usize>,
    total_rows: usize,
}

impl Loaded {
    /// (column id, type) of the data columns in this file.
    pub fn col_types(&self) -> Vec<(u16, DataType)> {
        self.cols.iter().map(|(&id, &(_, ty))| (id, ty)).collect()
    }
}

fn corrupt(path: &Path) -> impl Fn(String) -> StorageError + '_ {
    move |m| StorageError::FileCorrupted(format!("{}: {m}", path.display()))
}

pub(crate) fn load(path: &Path) -> Result<Loaded, StorageError> {
    let c = corrupt(path);
    let file = std::fs::File::open(path).map_err(StorageError::io(path))?;
    let meta = ArrowReaderMetadata::load(
        &file,
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
    )
    .map_err(|e| c(e.to_string()))?;
    let fmd = meta.metadata().file_metadata();
    let kv = fmd
        .key_value_metadata()
        .ok_or_else(|| c("no key-value metadata".into()))?;
    let blocks_json = kv
        .iter()
        .find(|k| k.key == BLOCKS_KEY)
        .and_then(|k| k.value.as_deref())
        .ok_or_else(|| c("no block index".into()))?;
    let blocks: Vec<BlockStat> =
        serde_json::from_str(blocks_json).map_err(|e| c(format!("block index: {e}")))?;
    let total_rows = usize::try_from(fmd.num_rows()).map_err(|_| c("negative row count".into()))?;
    let mut cols = HashMap::new();
    let mut nones = HashMap::new();
    let schema = meta.schema().clone();
    for (i, f) in schema.fields().iter().enumerate() {
        let md = f.metadata();
        if let Some(id) = md.get(META_ID) {
            let id: u16 = id.parse().map_err(|_| c(format!("bad column id {id}")))?;
            let ty: DataType = md
                .get(META_TYPE)
                .and_then(|t| serde_json::from_str(t).ok())
                .ok_or_else(|| c(format!("column {id}: bad type")))?;
            cols.insert(id, (i, ty));
        } else if let Some(id) = md.get(META_NONE) {
            let id: u16 = id.parse().map_err(|_| c(format!("bad column id {id}")))?;
            nones.insert(id, i);
        }
    }
    if schema.index_of("_uid").ok() != Some(0) || schema.index_of("ts").ok() != Some(1) {
        return Err(c("missing _uid/ts columns".into()));
    }
    let covered: u64 = blocks.iter().map(|b| b.rows as u64).sum();
    let ordered = blocks
        .windows(2)
        .all(|w| w[0].row_start + w[0].rows as u64 <= w[1].row_start);
    if covered != total_rows as u64
        || !ordered
        || blocks
            .iter()
            .any(|b| b.row_start + b.rows as u64 > total_rows as u64)
    {
        return Err(c("block index does not match the row count".into()));
    }
    Ok(Loaded {
        meta,
        blocks,
        cols,
        nones,
        total_rows,
    })
}

/// Read the rows of tables `uids` (all if None) with ts in `[start, end]`, columns `want` (in
/// that order; absent ones NONE; types as recorded in the file). Each table's rows are sorted.
pub(crate) fn read(
    path: &Path,
    f: &Loaded,
    uids: Option<&HashSet<u64>>,
    start: i64,
    end: i64,
    want: &[(u16, DataType)],
) -> Result<HashMap<u64, Rows>, StorageError> {
    let c = corrupt(path);
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for b in &f.blocks {
        if uids.is_some_and(|u| !u.contains(&b.uid)) || b.ts_max < start || b.ts_min > end {
            continue;
        }
        let r = b.row_start as usize..b.row_start as usize + b.rows as usize;
        match ranges.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => ranges.push(r),
        }
    }
    let mut out: HashMap<u64, Rows> = HashMap::new();
    if ranges.is_empty() {
        return Ok(out);
    }
    let mut roots = vec![0usize, 1];
    for (id, _) in want {
        if let Some(&(i, _)) = f.cols.get(id) {
            roots.push(i);
            if let Some(&n) = f.nones.get(id) {
                roots.push(n);
            }
        }
    }
    let file = std::fs::File::open(path).map_err(StorageError::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, f.meta.clone());
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let sel = RowSelection::from_consecutive_ranges(ranges.into_iter(), f.total_rows);
    let reader = builder
        .with_projection(mask)
        .with_row_selection(sel)
        .with_batch_size(8192)
        .build()
        .map_err(|e| c(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| c(e.to_string()))?;
        let uid = batch
            .column_by_name("_uid")
            .and_then(|a| a.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| c("bad _uid column".into()))?
            .clone();
        let (ts, _) = batch
            .column_by_name("ts")
            .and_then(ts_values)
            .ok_or_else(|| c("bad ts column".into()))?;
        let n = batch.num_rows();
        let mut rows = Rows {
            ts,
            ver: vec![0; n],
            cols: Vec::with_capacity(want.len()),
        };
        for &(id, ty) in want {
            let col = match f.cols.get(&id) {
                Some(&(_, fty)) => {
                    let a = batch
                        .column_by_name(&id.to_string())
                        .ok_or_else(|| c(format!("column {id} missing from batch")))?;
                    let none = batch
                        .column_by_name(&format!("_none_{id}"))
                        .and_then(|a| a.as_any().downcast_ref::<BooleanArray>().cloned());
                    Col::from_arrow(id, fty, a, none.as_ref(), &path.display().to_string())?
                }
                None => {
                    let mut col = Col::new(id, ty);
                    for _ in 0..n {
                        col.push_none();
                    }
                    col
                }
            };
            rows.cols.push(col);
        }
        let mut a = 0;
        while a < n {
            let u = uid.value(a);
            let mut b = a + 1;
            while b < n && uid.value(b) == u {
                b += 1;
            }
            let dst = out
                .entry(u)
                .or_insert_with(|| Rows::with_cols(&rows.col_specs()));
            dst.append_from(
                &rows,
                (a..b).filter(|&i| rows.ts[i] >= start && rows.ts[i] <= end),
                None,
            );
            a = b;
        }
    }
    out.retain(|_, r| !r.is_empty());
    Ok(out)
}
