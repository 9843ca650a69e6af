//! INTERP(expr [, ignore_null]) with `RANGE(start[, end]) [EVERY(d)] FILL(mode)`.
//!
//! Why after execution: DataFusion has no operator that makes rows at instants where no data
//! exists. The lowering (`lower.rs`) selects the input rows (the primary timestamp, each
//! INTERP argument, constant columns and partition keys) in time order per partition; this
//! module walks the time slices `start, start + every, ..., end` of every partition and
//! computes each INTERP value:
//! - a row exactly at the slice gives its value (even NULL, unless `ignore_null` is 1) and
//!   `_isfilled` false;
//! - otherwise FILL decides: NULL / VALUE give a value at every slice; PREV / NEXT / NEAR take
//!   the nearest row before / after / either side, and the slice is skipped when there is none;
//!   LINEAR interpolates between the rows around the slice and is skipped at the ends; NONE
//!   outputs only exact hits.
//!
//! The neighbours may lie outside RANGE (TDengine scans the whole WHERE range), so the input is
//! not cut to RANGE.

use common::{Code, DataType, Field, TaosError, TaosResult, Value};
use taos_sql::ast::Fill;

/// Most slices one query may generate (TDengine refuses larger fills too).
pub const MAX_SLICES: i64 = 10_000_000;

/// What the lowering leaves for after execution.
#[derive(Debug, Clone)]
pub struct InterpPlan {
    /// First and last slice and the step, in precision units.
    pub start: i64,
    pub end: i64,
    pub every: i64,
    pub fill: Fill,
    /// FILL(VALUE, ...) constants, one per INTERP column.
    pub values: Vec<Value>,
    /// Output columns in select-list order.
    pub outputs: Vec<Output>,
    /// Input column of the primary timestamp, and of the partition keys.
    pub ts: usize,
    pub keys: Vec<usize>,
    /// OFFSET / LIMIT per partition (TDengine's LIMIT with PARTITION BY).
    pub limit: Option<(i64, i64)>,
}

/// One output column and where its value comes from.
#[derive(Debug, Clone)]
pub enum Output {
    /// `_irowts`: the slice time.
    IRowTs(String),
    /// `_isfilled`: whether some INTERP value was not read at the slice.
    IsFilled(String),
    /// `interp(expr)`: input column `col`.
    Interp {
        name: String,
        col: usize,
        ignore_null: bool,
    },
    /// A value that is constant in the partition (tbname, a tag, a key, a literal).
    Constant { name: String, col: usize },
}

/// One INTERP column's known points of a partition: (time, value).
struct Series {
    points: Vec<(i64, Value)>,
}

/// How one INTERP value at a slice came out.
enum Slot {
    Exact(Value),
    Filled(Value),
    /// No value for this fill mode: the slice is not output.
    Skip,
}

impl Series {
    fn at(&self, t: i64, plan: &InterpPlan, value_i: usize) -> Slot {
        let pos = self.points.partition_point(|(pt, _)| *pt < t);
        if let Some((pt, v)) = self.points.get(pos) {
            if *pt == t {
                return Slot::Exact(v.clone());
            }
        }
        let prev = pos.checked_sub(1).and_then(|i| self.points.get(i));
        let next = self.points.get(pos);
        match &plan.fill {
            Fill::None => Slot::Skip,
            Fill::Null | Fill::NullF => Slot::Filled(Value::Null),
            Fill::Value(_) => Slot::Filled(plan.values.get(value_i).cloned().unwrap_or_default()),
            Fill::Prev => prev.map_or(Slot::Skip, |(_, v)| Slot::Filled(v.clone())),
            Fill::Next => next.map_or(Slot::Skip, |(_, v)| Slot::Filled(v.clone())),
            Fill::Near => match (prev, next) {
                (Some((pt, pv)), Some((nt, nv))) => Slot::Filled(if nt - t < t - pt {
                    nv.clone()
                } else {
                    pv.clone()
                }),
                (Some((_, v)), None) | (None, Some((_, v))) => Slot::Filled(v.clone()),
                (None, None) => Slot::Skip,
            },
            Fill::Linear => match (prev, next) {
                (Some((pt, pv)), Some((nt, nv))) => {
                    Slot::Filled(match (pv.as_f64(), nv.as_f64()) {
                        (Some(a), Some(b)) => {
                            Value::Double(a + (b - a) * (t - pt) as f64 / (nt - pt) as f64)
                        }
                        _ => Value::Null,
                    })
                }
                _ => Slot::Skip,
            },
        }
    }
}

/// Output fields: `_irowts` is a TIMESTAMP, `_isfilled` a BOOL, the rest keep their input type.
pub fn fields(plan: &InterpPlan, input: &[Field]) -> Vec<Field> {
    let ty = |col: usize| input.get(col).map(|f| f.ty).unwrap_or(DataType::Null);
    plan.outputs
        .iter()
        .map(|o| match o {
            Output::IRowTs(n) => Field::new(n, DataType::Timestamp),
            Output::IsFilled(n) => Field::new(n, DataType::Bool),
            Output::Interp { name, col, .. } | Output::Constant { name, col } => {
                Field::new(name, ty(*col))
            }
        })
        .collect()
}

/// Compute the slices of every partition. `rows` arrive sorted by partition keys, then time.
pub fn apply(plan: &InterpPlan, rows: Vec<Vec<Value>>) -> TaosResult<Vec<Vec<Value>>> {
    if plan.every <= 0 || (plan.end - plan.start) / plan.every >= MAX_SLICES {
        return Err(TaosError::of(Code::PAR_INVALID_FILL_TIME_RANGE));
    }
    let mut parts: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    for r in rows {
        let key: Vec<Value> = plan.keys.iter().map(|&k| r[k].clone()).collect();
        match parts.last_mut() {
            Some((k, v)) if *k == key => v.push(r),
            _ => parts.push((key, vec![r])),
        }
    }
    let mut out = Vec::new();
    for (_, prows) in parts {
        let interp_cols: Vec<(usize, bool)> = plan
            .outputs
            .iter()
            .filter_map(|o| match o {
                Output::Interp {
                    col, ignore_null, ..
                } => Some((*col, *ignore_null)),
                _ => None,
            })
            .collect();
        let series: Vec<Series> = interp_cols
            .iter()
            .map(|&(col, ignore_null)| {
                let mut points: Vec<(i64, Value)> = Vec::with_capacity(prows.len());
                for r in &prows {
                    let Some(t) = r[plan.ts].as_i64() else {
                        continue;
                    };
                    if ignore_null && r[col].is_null() {
                        continue;
                    }
                    // Equal timestamps (several subtables): the first row wins.
                    if points.last().map(|(lt, _)| *lt == t).unwrap_or(false) {
                        continue;
                    }
                    points.push((t, r[col].clone()));
                }
                Series { points }
            })
            .collect();
        let template = &prows[0];
        let mut emitted = 0i64;
        let (offset, limit) = plan.limit.unwrap_or((0, i64::MAX));
        let mut t = plan.start;
        while t <= plan.end {
            let mut vals = Vec::with_capacity(series.len());
            let mut filled = false;
            let mut skip = false;
            for (i, s) in series.iter().enumerate() {
                match s.at(t, plan, i) {
                    Slot::Exact(v) => vals.push(v),
                    Slot::Filled(v) => {
                        filled = true;
                        vals.push(v)
                    }
                    Slot::Skip => skip = true,
                }
            }
            if !skip {
                if emitted >= offset && emitted - offset < limit {
                    let mut vi = vals.into_iter();
                    let row = plan
                        .outputs
                        .iter()
                        .map(|o| match o {
                            Output::IRowTs(_) => Value::Timestamp(t),
                            Output::IsFilled(_) => Value::Bool(filled),
                            Output::Interp { .. } => vi.next().unwrap_or_default(),
                            Output::Constant { col, .. } => template[*col].clone(),
                        })
                        .collect();
                    out.push(row);
                }
                emitted += 1;
            }
            match t.checked_add(plan.every) {
                Some(n) => t = n,
                None => break,
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(fill: Fill) -> InterpPlan {
        InterpPlan {
            start: 4,
            end: 16,
            every: 1,
            fill,
            values: vec![Value::BigInt(1)],
            outputs: vec![
                Output::IRowTs("_irowts".into()),
                Output::Interp {
                    name: "interp(v)".into(),
                    col: 1,
                    ignore_null: false,
                },
                Output::IsFilled("_isfilled".into()),
            ],
            ts: 0,
            keys: vec![],
            limit: None,
        }
    }

    fn rows() -> Vec<Vec<Value>> {
        [(5, 5), (10, 10), (15, 15)]
            .iter()
            .map(|&(t, v)| vec![Value::Timestamp(t), Value::Int(v)])
            .collect()
    }

    fn values(out: &[Vec<Value>]) -> Vec<Option<f64>> {
        out.iter().map(|r| r[1].as_f64()).collect()
    }

    #[test]
    fn null_and_value_fill_every_slice() {
        let out = apply(&plan(Fill::Null), rows()).unwrap();
        assert_eq!(out.len(), 13);
        assert_eq!(out[1][1], Value::Int(5));
        assert_eq!(out[1][2], Value::Bool(false));
        assert_eq!(out[0][1], Value::Null);
        assert_eq!(out[0][2], Value::Bool(true));
        let out = apply(&plan(Fill::Value(vec![])), rows()).unwrap();
        assert_eq!(out[0][1], Value::BigInt(1));
    }

    #[test]
    fn prev_next_linear_skip_the_ends() {
        let out = apply(&plan(Fill::Prev), rows()).unwrap();
        assert_eq!(out.len(), 12);
        assert_eq!(out[0][0], Value::Timestamp(5));
        let out = apply(&plan(Fill::Next), rows()).unwrap();
        assert_eq!(out.len(), 12);
        assert_eq!(out.last().map(|r| r[0].clone()), Some(Value::Timestamp(15)));
        let out = apply(&plan(Fill::Linear), rows()).unwrap();
        assert_eq!(out.len(), 11);
        assert_eq!(values(&out)[1], Some(6.0));
        let out = apply(&plan(Fill::None), rows()).unwrap();
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn too_many_slices_is_refused() {
        let mut p = plan(Fill::Null);
        p.end = i64::MAX;
        assert!(apply(&p, rows()).is_err());
    }
}
