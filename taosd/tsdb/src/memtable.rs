//! The memtable: one append-only columnar buffer per table.
//!
//! Why columnar append buffers and not a skiplist (TDengine's choice): the hot path is bulk
//! appends of mostly in-order rows (10,000-row batches), and an append is a few `Vec::push`es
//! per cell with no per-row allocation or pointer chasing. Ordering and duplicate merging are
//! done once, when the buffer is read (scan) or flushed: `Rows::normalized` checks in O(n) if
//! the buffer is already sorted with unique timestamps (the common case, no copy) and otherwise
//! sorts a permutation by (ts, version, arrival) and merges duplicates column by column (NONE
//! keeps the older value, NULL overwrites). Every row keeps its version (WAL index), so deletes
//! that arrive later apply exactly to the rows older than them.
//!
//! Memory is accounted approximately (timestamps, versions, one state byte and 8 bytes per
//! fixed cell, 24 bytes plus the payload per variable cell) against `buffer_bytes`.

use crate::engine::{StorageError, TableWrite};
use crate::rows::Rows;
use common::{DataType, Value};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) struct TableBuf {
    pub suid: u64,
    pub rows: Rows,
}

#[derive(Default)]
pub struct Memtable {
    pub(crate) tables: RwLock<HashMap<u64, TableBuf>>,
    bytes: AtomicUsize,
    max_version: AtomicU64,
}

impl Memtable {
    pub fn new() -> Memtable {
        Memtable::default()
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn max_version(&self) -> u64 {
        self.max_version.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.tables.read().values().all(|t| t.rows.is_empty())
    }

    /// Append every row of `tables` with `version`. Validates first, so a bad request
    /// changes nothing.
    pub fn write(&self, version: u64, tables: &[TableWrite]) -> Result<usize, StorageError> {
        let mut plans = Vec::with_capacity(tables.len());
        for tw in tables {
            plans.push(validate(tw)?);
        }
        let mut total = 0usize;
        let mut bytes = 0usize;
        let mut map = self.tables.write();
        for (tw, types) in tables.iter().zip(plans) {
            let tb = map.entry(tw.uid).or_insert_with(|| TableBuf {
                suid: tw.suid,
                rows: Rows::default(),
            });
            tb.suid = tw.suid;
            let rows = &mut tb.rows;
            // position in rows.cols of each supplied data column (col_ids[1..])
            let pos: Vec<usize> = tw.col_ids[1..]
                .iter()
                .zip(&types)
                .map(|(&id, &ty)| rows.ensure_col(id, ty))
                .collect();
            let mut supplied = vec![false; rows.cols.len()];
            for &p in &pos {
                supplied[p] = true;
            }
            let missing: Vec<usize> = (0..rows.cols.len()).filter(|&p| !supplied[p]).collect();
            let n = tw.rows.len();
            rows.ts.reserve(n);
            rows.ver.reserve(n);
            for c in &mut rows.cols {
                c.reserve(n);
            }
            for row in &tw.rows {
                // validated: row[0] is a timestamp
                rows.ts.push(row[0].as_i64().unwrap_or_default());
                rows.ver.push(version);
                for (v, &p) in row[1..].iter().zip(&pos) {
                    bytes += rows.cols[p].push_value(v);
                }
                for &p in &missing {
                    rows.cols[p].push_none();
                }
            }
            let var_cells = rows.cols.iter().filter(|c| c.ty.is_var()).count();
            bytes += n * (16 + rows.cols.len() * 9 + var_cells * 24);
            total += n;
        }
        drop(map);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.max_version.fetch_max(version, Ordering::Relaxed);
        Ok(total)
    }

    /// Copy of the rows of `uid` with ts in `[start, end]`, columns `cols` (by id, in that order;
    /// absent ones NONE). Not normalized.
    pub(crate) fn read(
        &self,
        uid: u64,
        start: i64,
        end: i64,
        cols: &[(u16, DataType)],
    ) -> Option<Rows> {
        let map = self.tables.read();
        let tb = map.get(&uid)?;
        let src = &tb.rows;
        let mut out = Rows::with_cols(cols);
        out.append_from(
            src,
            (0..src.len()).filter(|&i| src.ts[i] >= start && src.ts[i] <= end),
            None,
        );
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    pub(crate) fn remove_table(&self, uid: u64) {
        self.tables.write().remove(&uid);
    }

    pub(crate) fn remove_group(&self, suid: u64) {
        self.tables.write().retain(|_, t| t.suid != suid);
    }

    /// Rows deleted in `[start, end]` of `uid` (all rows here are older than a delete that
    /// arrives now); returns how many distinct timestamps were removed.
    pub(crate) fn delete_range(&self, uid: u64, start: i64, end: i64) -> u64 {
        let mut map = self.tables.write();
        let Some(tb) = map.get_mut(&uid) else {
            return 0;
        };
        let mut hit: Vec<i64> = tb
            .rows
            .ts
            .iter()
            .copied()
            .filter(|&t| t >= start && t <= end)
            .collect();
        if hit.is_empty() {
            return 0;
        }
        hit.sort_unstable();
        hit.dedup();
        tb.rows.retain(|t, _| t < start || t > end);
        hit.len() as u64
    }
}

/// Check a table write and return the types of its data columns (`col_ids[1..]`).
fn validate(tw: &TableWrite) -> Result<Vec<DataType>, StorageError> {
    let bad = |m: String| {
        Err(StorageError::InvalidArgument(format!(
            "table uid {}: {m}",
            tw.uid
        )))
    };
    if tw.col_ids.first() != Some(&1) {
        return bad("the first column must be the timestamp (column id 1)".into());
    }
    let mut types = Vec::with_capacity(tw.col_ids.len() - 1);
    for &id in &tw.col_ids[1..] {
        match tw.schema.columns.iter().find(|c| c.id == id) {
            Some(c) if id != 1 => types.push(c.ty),
            _ => {
                return bad(format!(
                    "column id {id} is not in schema version {}",
                    tw.schema.version
                ))
            }
        }
    }
    for (i, row) in tw.rows.iter().enumerate() {
        if row.len() != tw.col_ids.len() {
            return bad(format!(
                "row {i} has {} values for {} columns",
                row.len(),
                tw.col_ids.len()
            ));
        }
        match row[0] {
            Value::Timestamp(_) | Value::BigInt(_) => {}
            ref v => return bad(format!("row {i}: the timestamp is {v:?}")),
        }
    }
    Ok(types)
}
