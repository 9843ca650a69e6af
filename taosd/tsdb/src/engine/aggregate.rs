//! COUNT / MIN / MAX / SUM of tables over a time range, answered from the block index where
//! that is exact, so that `SELECT count(*), max(c) FROM stb` does not decode the data.
//!
//! # When a block's statistics are used
//!
//! A block (see `fileset`'s block index) contributes its statistics instead of its rows when:
//! - it lies entirely inside the query range;
//! - no other source has rows of the same table in its time span: no block of another file
//!   (an overwrite pending a compaction) and no row of the frozen or active memtable;
//! - no tombstone newer than its file hits its span (a delete pending a compaction);
//! - its statistics are exact for what is asked: they hold min/max/sum as `f64`, so a BIGINT
//!   block whose values exceed 2^53 in magnitude (min/max), or whose sum could (sum), is read;
//!   a floating-point block with a NaN or infinite statistic is read too.
//!
//! Everything else (blocks that fail a test, the memtable) is merged exactly as a scan merges it
//! (`scan_rows`: newest version wins, NONE keeps the older value, tombstones applied), over the
//! parts of the range that no used block covers, and folded row by row without building Arrow
//! arrays. Because a used block overlaps no other source, the two parts never count a row twice.
//!
//! Floating-point sums add block sums rather than single values: the result can differ from a
//! row-by-row sum in the last bits, as sums computed in parallel partitions do.

use super::{Snapshot, Tsdb};
use crate::fileset::{BlockStat, ColStat};
use crate::manifest::Tomb;
use crate::rows::{Rows, VAL};
use crate::StorageError;
use common::{DataType, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// Integers up to this magnitude are exact in an `f64`.
const EXACT_F64: f64 = (1u64 << 53) as f64;

/// A data column to aggregate and which aggregates are wanted beyond COUNT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggColumn {
    pub id: u16,
    pub ty: DataType,
    /// MIN / MAX wanted (numeric columns only).
    pub min_max: bool,
    /// SUM wanted (numeric columns only).
    pub sum: bool,
}

/// A column's SUM: exact for integers, `f64` for FLOAT / DOUBLE.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AggSum {
    Int(i128),
    Float(f64),
}

/// One column's aggregates; MIN / MAX / SUM are `None` when not asked or when the column has no
/// value in the range.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnAgg {
    pub count: u64,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub sum: Option<AggSum>,
}

/// One table's aggregates: its row count and each requested column's, in request order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableAgg {
    pub rows: u64,
    pub cols: Vec<ColumnAgg>,
}

/// How an aggregate was answered (for tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AggReport {
    /// Blocks answered from their statistics.
    pub blocks_from_stats: u64,
    /// Rows merged and folded one by one (memtable, blocks that could not be used).
    pub rows_read: u64,
    /// A NaN was met in a row: the caller should compute the aggregate the normal way, since
    /// MIN / MAX order NaN differently.
    pub saw_nan: bool,
}

fn is_int(ty: DataType) -> bool {
    ty.is_integer()
}

fn is_float(ty: DataType) -> bool {
    matches!(ty, DataType::Float | DataType::Double)
}

/// Running aggregates of one column.
#[derive(Clone)]
struct Acc {
    count: u64,
    imin: i128,
    imax: i128,
    isum: i128,
    fmin: f64,
    fmax: f64,
    fsum: f64,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            count: 0,
            imin: i128::MAX,
            imax: i128::MIN,
            isum: 0,
            fmin: f64::INFINITY,
            fmax: f64::NEG_INFINITY,
            fsum: 0.0,
        }
    }
}

impl Acc {
    fn add_int(&mut self, v: i128) {
        self.count += 1;
        self.imin = self.imin.min(v);
        self.imax = self.imax.max(v);
        self.isum += v;
    }

    fn add_float(&mut self, v: f64) {
        self.count += 1;
        self.fmin = self.fmin.min(v);
        self.fmax = self.fmax.max(v);
        self.fsum += v;
    }

    fn add_stat(&mut self, c: &AggColumn, s: &ColStat) {
        if s.count == 0 {
            return;
        }
        if is_int(c.ty) {
            self.count += s.count;
            self.imin = self.imin.min(s.min as i128);
            self.imax = self.imax.max(s.max as i128);
            self.isum += s.sum as i128;
        } else if is_float(c.ty) {
            self.count += s.count;
            self.fmin = self.fmin.min(s.min);
            self.fmax = self.fmax.max(s.max);
            self.fsum += s.sum;
        } else {
            self.count += s.count;
        }
    }

    fn finish(&self, c: &AggColumn) -> ColumnAgg {
        let mut out = ColumnAgg {
            count: self.count,
            ..Default::default()
        };
        if self.count == 0 {
            return out;
        }
        if is_int(c.ty) {
            if c.min_max {
                out.min = int_value(c.ty, self.imin);
                out.max = int_value(c.ty, self.imax);
            }
            if c.sum {
                out.sum = Some(AggSum::Int(self.isum));
            }
        } else if is_float(c.ty) {
            if c.min_max {
                out.min = Some(float_value(c.ty, self.fmin));
                out.max = Some(float_value(c.ty, self.fmax));
            }
            if c.sum {
                out.sum = Some(AggSum::Float(self.fsum));
            }
        }
        out
    }
}

fn int_value(ty: DataType, v: i128) -> Option<Value> {
    Some(match ty {
        DataType::TinyInt => Value::TinyInt(i8::try_from(v).ok()?),
        DataType::SmallInt => Value::SmallInt(i16::try_from(v).ok()?),
        DataType::Int => Value::Int(i32::try_from(v).ok()?),
        DataType::BigInt => Value::BigInt(i64::try_from(v).ok()?),
        DataType::UTinyInt => Value::UTinyInt(u8::try_from(v).ok()?),
        DataType::USmallInt => Value::USmallInt(u16::try_from(v).ok()?),
        DataType::UInt => Value::UInt(u32::try_from(v).ok()?),
        DataType::UBigInt => Value::UBigInt(u64::try_from(v).ok()?),
        _ => return None,
    })
}

fn float_value(ty: DataType, v: f64) -> Value {
    match ty {
        DataType::Float => Value::Float(v as f32),
        _ => Value::Double(v),
    }
}

fn int_of(v: &Value) -> Option<i128> {
    Some(match *v {
        Value::TinyInt(x) => x as i128,
        Value::SmallInt(x) => x as i128,
        Value::Int(x) => x as i128,
        Value::BigInt(x) => x as i128,
        Value::UTinyInt(x) => x as i128,
        Value::USmallInt(x) => x as i128,
        Value::UInt(x) => x as i128,
        Value::UBigInt(x) => x as i128,
        _ => return None,
    })
}

fn col_stat(b: &BlockStat, id: u16) -> Option<&ColStat> {
    b.cols.iter().find(|s| s.id == id)
}

/// The block's statistics give exact answers for `cols`.
fn stats_exact(b: &BlockStat, cols: &[AggColumn]) -> bool {
    cols.iter().all(|c| {
        let Some(s) = col_stat(b, c.id) else {
            return true; // the column is absent from the file: all NULL
        };
        if s.count == 0 || !(c.min_max || c.sum) {
            return true;
        }
        if is_int(c.ty) {
            let mag = s.min.abs().max(s.max.abs());
            (!c.min_max || mag <= EXACT_F64) && (!c.sum || mag * s.count as f64 <= EXACT_F64)
        } else if is_float(c.ty) {
            s.min.is_finite() && s.max.is_finite() && s.sum.is_finite()
        } else {
            false
        }
    })
}

/// Fold merged rows (columns in `cols` order) into the accumulators.
fn fold_rows(rows: &Rows, cols: &[AggColumn], acc: &mut [Acc], report: &mut AggReport) {
    report.rows_read += rows.len() as u64;
    for ((c, col), a) in cols.iter().zip(&rows.cols).zip(acc.iter_mut()) {
        for i in 0..rows.len() {
            if col.state[i] != VAL {
                continue;
            }
            if is_int(c.ty) {
                if let Some(v) = int_of(&col.value(i)) {
                    a.add_int(v);
                }
            } else if is_float(c.ty) {
                let v = col.value(i).as_f64().unwrap_or(0.0);
                report.saw_nan |= v.is_nan();
                a.add_float(v);
            } else {
                a.count += 1;
            }
        }
    }
}

/// The gaps of `[start, end]` not covered by `covered` (sorted, disjoint, inside the range).
fn gaps(start: i64, end: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut from = start;
    for &(a, b) in covered {
        if a > from {
            out.push((from, a - 1));
        }
        if b == i64::MAX {
            return out;
        }
        from = from.max(b + 1);
    }
    if from <= end {
        out.push((from, end));
    }
    out
}

impl Tsdb {
    /// Row count and per-column COUNT / MIN / MAX / SUM of each table of `uids` (uid, suid)
    /// over the inclusive range `[start, end]`, identical to aggregating a `scan` of the same
    /// tables (see the module docs). Tables without rows in the range are left out.
    pub fn aggregate(
        &self,
        uids: &[(u64, u64)],
        start: i64,
        end: i64,
        cols: &[AggColumn],
    ) -> Result<(HashMap<u64, TableAgg>, AggReport), StorageError> {
        let mut report = AggReport::default();
        let mut out = HashMap::new();
        if start > end {
            return Ok((out, report));
        }
        let snap = self.snapshot();
        let suids: HashSet<u64> = uids.iter().map(|u| u.1).collect();
        // Files that may hold rows, each with its blocks by table.
        let mut files = Vec::new();
        for f in snap.files.iter() {
            if !suids.contains(&f.meta.suid) || f.meta.ts_max < start || f.meta.ts_min > end {
                continue;
            }
            let loaded = f.load()?;
            let mut by_uid: HashMap<u64, Range<usize>> = HashMap::new();
            for (i, b) in loaded.blocks.iter().enumerate() {
                by_uid
                    .entry(b.uid)
                    .and_modify(|r| r.end = i + 1)
                    .or_insert(i..i + 1);
            }
            files.push((f.meta.version, loaded, by_uid));
        }
        let specs: Vec<(u16, DataType)> = cols.iter().map(|c| (c.id, c.ty)).collect();
        // Per table: accumulators and row count so far.
        let mut state: HashMap<u64, (Vec<Acc>, u64)> = HashMap::with_capacity(uids.len());
        // Parts of the range to merge like a scan, with the tables that need each: merged
        // once per distinct part for all its tables, as a scan of them would.
        let mut pending: BTreeMap<(i64, i64), Vec<(u64, u64)>> = BTreeMap::new();
        for &(uid, suid) in uids {
            let tombs: Vec<&Tomb> = snap.tombs.iter().filter(|t| t.hits(uid, suid)).collect();
            let mem_ts = memtable_ts(&snap, uid, start, end);
            // Blocks of this table that overlap the range: (ts_min, ts_max, file, block).
            let mut cands: Vec<(i64, i64, usize, usize)> = Vec::new();
            for (fi, (_, l, by_uid)) in files.iter().enumerate() {
                let Some(r) = by_uid.get(&uid) else { continue };
                for bi in r.clone() {
                    let b = &l.blocks[bi];
                    if b.uid == uid && b.ts_max >= start && b.ts_min <= end {
                        cands.push((b.ts_min, b.ts_max, fi, bi));
                    }
                }
            }
            cands.sort_unstable();
            let mut acc = vec![Acc::default(); cols.len()];
            let mut rows = 0u64;
            let mut used: Vec<(i64, i64)> = Vec::new();
            let mut dirty: Vec<(i64, i64)> = Vec::new();
            let mut prev_max = i64::MIN;
            for (k, &(lo, hi, fi, bi)) in cands.iter().enumerate() {
                let (ver, l, _) = &files[fi];
                let b = &l.blocks[bi];
                let alone = (k == 0 || prev_max < lo) && cands.get(k + 1).is_none_or(|n| n.0 > hi);
                prev_max = prev_max.max(hi);
                let in_mem = {
                    let p = mem_ts.partition_point(|&t| t < lo);
                    p < mem_ts.len() && mem_ts[p] <= hi
                };
                let deleted = tombs
                    .iter()
                    .any(|t| t.version > *ver && t.start <= hi && t.end >= lo);
                if lo >= start && hi <= end && alone && !in_mem && !deleted && stats_exact(b, cols)
                {
                    rows += b.rows as u64;
                    for (c, a) in cols.iter().zip(acc.iter_mut()) {
                        if let Some(s) = col_stat(b, c.id) {
                            a.add_stat(c, s);
                        }
                    }
                    used.push((lo, hi));
                    report.blocks_from_stats += 1;
                } else {
                    dirty.push((lo, hi));
                }
            }
            // The rest of the range, where anything else lies.
            for (a, b) in gaps(start, end, &used) {
                let blocks_here = dirty.iter().any(|&(lo, hi)| lo <= b && hi >= a);
                let p = mem_ts.partition_point(|&t| t < a);
                let mem_here = p < mem_ts.len() && mem_ts[p] <= b;
                if blocks_here || mem_here {
                    pending.entry((a, b)).or_default().push((uid, suid));
                }
            }
            state.insert(uid, (acc, rows));
        }
        for ((a, b), tables) in pending {
            let merged = self.scan_rows(&snap, &tables, a, b, &specs)?;
            for (uid, r) in merged {
                if let Some((acc, rows)) = state.get_mut(&uid) {
                    *rows += r.len() as u64;
                    fold_rows(&r, cols, acc, &mut report);
                }
            }
        }
        for (uid, (acc, rows)) in state {
            if rows > 0 {
                out.insert(
                    uid,
                    TableAgg {
                        rows,
                        cols: cols.iter().zip(&acc).map(|(c, a)| a.finish(c)).collect(),
                    },
                );
            }
        }
        Ok((out, report))
    }
}

/// Sorted timestamps of `uid`'s rows in the frozen and active memtables within the range.
fn memtable_ts(snap: &Snapshot, uid: u64, start: i64, end: i64) -> Vec<i64> {
    let mut ts = Vec::new();
    for m in snap.frozen.iter().chain(std::iter::once(&snap.active)) {
        if let Some(t) = m.tables.read().get(&uid) {
            ts.extend(
                t.rows
                    .ts
                    .iter()
                    .copied()
                    .filter(|&x| x >= start && x <= end),
            );
        }
    }
    ts.sort_unstable();
    ts
}

#[cfg(test)]
mod tests {
    use super::gaps;

    #[test]
    fn gaps_cover_the_rest_of_the_range() {
        assert_eq!(gaps(0, 100, &[]), vec![(0, 100)]);
        assert_eq!(
            gaps(0, 100, &[(0, 10), (20, 30)]),
            vec![(11, 19), (31, 100)]
        );
        assert_eq!(gaps(0, 100, &[(5, 100)]), vec![(0, 4)]);
        assert_eq!(
            gaps(i64::MIN, i64::MAX, &[(1, i64::MAX)]),
            vec![(i64::MIN, 0)]
        );
        assert_eq!(gaps(0, 10, &[(0, 4), (5, 10)]), Vec::<(i64, i64)>::new());
    }
}
