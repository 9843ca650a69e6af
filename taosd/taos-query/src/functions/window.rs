//! Window UDFs that walk one partition in time order with state no SQL window frame can hold:
//!
//! - `td_event_window(start_cond, end_cond)`: EVENT_WINDOW's window number of each row (NULL
//!   outside a window). A window opens at a row where `start_cond` holds and closes at the
//!   first row (the opening one included) where `end_cond` holds; a window still open when the
//!   partition ends is not a window, as in TDengine.
//! - `statecount(v, 'op', val)`: how many consecutive rows so far satisfy `v op val`, -1 on a
//!   row that does not; NULL rows give NULL and leave the run as it is.
//! - `stateduration(v, 'op', val, ts, unit)`: the time since the first row of the current run,
//!   in `unit` precision units (0 on the first), -1 on a row that does not satisfy; NULL rows
//!   give NULL.
//!
//! The lowering calls them as `f(...) OVER (PARTITION BY keys ORDER BY ts)`.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use std::sync::Arc;

pub(super) fn functions() -> Vec<WindowUDF> {
    [Kind::EventWindow, Kind::StateCount, Kind::StateDuration]
        .into_iter()
        .map(|k| WindowUDF::new_from_impl(Udwf::new(k)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    EventWindow,
    StateCount,
    StateDuration,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Udwf {
    kind: Kind,
    signature: Signature,
}

impl Udwf {
    fn new(kind: Kind) -> Udwf {
        Udwf {
            kind,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for Udwf {
    fn name(&self) -> &str {
        match self.kind {
            Kind::EventWindow => "td_event_window",
            Kind::StateCount => "statecount",
            Kind::StateDuration => "stateduration",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Eval { kind: self.kind }))
    }

    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let want = match self.kind {
            Kind::EventWindow => 2,
            Kind::StateCount => 3,
            Kind::StateDuration => 5,
        };
        if args.input_fields().len() != want {
            return exec_err!("Invalid number of parameters : {}", self.name());
        }
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, true)))
    }
}

#[derive(Debug)]
struct Eval {
    kind: Kind,
}

impl PartitionEvaluator for Eval {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        match self.kind {
            Kind::EventWindow => event_window(values, num_rows),
            Kind::StateCount | Kind::StateDuration => state(self.kind, values, num_rows),
        }
    }
}

/// A boolean argument; NULL counts as false.
fn flags(a: &ArrayRef) -> Result<Vec<bool>> {
    let b = cast(a, &DataType::Boolean)?;
    let b = b.as_boolean();
    Ok((0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
}

fn event_window(values: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let (Some(s), Some(e)) = (values.first(), values.get(1)) else {
        return exec_err!("Invalid number of parameters : td_event_window");
    };
    let (start, end) = (flags(s)?, flags(e)?);
    let mut out: Vec<Option<i64>> = vec![None; n];
    let mut id = 0i64;
    // Rows of the window opened and not yet closed.
    let mut open: Option<usize> = None;
    for i in 0..n {
        if open.is_none() && start[i] {
            id += 1;
            open = Some(i);
        }
        if let Some(first) = open {
            if end[i] {
                for slot in &mut out[first..=i] {
                    *slot = Some(id);
                }
                open = None;
            }
        }
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// The comparison of STATECOUNT / STATEDURATION, from its quoted name.
fn op_of(a: &ArrayRef) -> Result<fn(f64, f64) -> bool> {
    let s = cast(a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    let name = if s.is_empty() || s.is_null(0) {
        ""
    } else {
        s.value(0)
    };
    Ok(match name.to_ascii_uppercase().as_str() {
        "LT" => |a, b| a < b,
        "GT" => |a, b| a > b,
        "LE" => |a, b| a <= b,
        "GE" => |a, b| a >= b,
        "NE" => |a, b| a != b,
        "EQ" => |a, b| a == b,
        other => return exec_err!("Invalid parameter value : operator {other}"),
    })
}

fn state(kind: Kind, values: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    if values.len() < 3 {
        return exec_err!("Invalid number of parameters");
    }
    let v = cast(&values[0], &DataType::Float64)?;
    let v: &Float64Array = v.as_primitive::<Float64Type>();
    let op = op_of(&values[1])?;
    let val = cast(&values[2], &DataType::Float64)?;
    let val: &Float64Array = val.as_primitive::<Float64Type>();
    let bound = |i: usize| val.is_valid(i).then(|| val.value(i));
    let (ts, unit) = match kind {
        Kind::StateDuration => {
            let (Some(t), Some(u)) = (values.get(3), values.get(4)) else {
                return exec_err!("Invalid number of parameters : stateduration");
            };
            let t = cast(t, &DataType::Int64)?;
            let u = cast(u, &DataType::Int64)?;
            let unit = u.as_primitive::<Int64Type>();
            let unit = if unit.is_empty() || unit.is_null(0) {
                1
            } else {
                unit.value(0).max(1)
            };
            (Some(t), unit)
        }
        _ => (None, 1),
    };
    let ts = ts.as_ref().map(|t| t.as_primitive::<Int64Type>());
    let mut out: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut count = 0i64;
    let mut run_start: Option<i64> = None;
    for i in 0..n {
        let Some(b) = bound(i) else {
            out.push(None);
            continue;
        };
        if !v.is_valid(i) {
            out.push(None);
            continue;
        }
        if op(v.value(i), b) {
            match ts {
                Some(ts) => {
                    let t = ts.value(i);
                    let first = *run_start.get_or_insert(t);
                    out.push(Some((t - first) / unit));
                }
                None => {
                    count += 1;
                    out.push(Some(count));
                }
            }
        } else {
            count = 0;
            run_start = None;
            out.push(Some(-1));
        }
    }
    Ok(Arc::new(Int64Array::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, StringArray};

    fn bools(v: &[bool]) -> ArrayRef {
        Arc::new(BooleanArray::from(v.to_vec()))
    }

    #[test]
    fn event_windows_close_at_the_end_condition() {
        let start = bools(&[false, true, false, true, true, false]);
        let end = bools(&[false, false, true, true, false, false]);
        let out = event_window(&[start, end], 6).unwrap();
        let out = out.as_primitive::<Int64Type>();
        let got: Vec<Option<i64>> = out.iter().collect();
        // Row 3 opens and closes a window alone; rows 4.. never close.
        assert_eq!(got, vec![None, Some(1), Some(1), Some(2), None, None]);
    }

    #[test]
    fn statecount_and_duration_runs() {
        let v: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(3.0),
            None,
            Some(4.0),
            Some(0.0),
            Some(5.0),
        ]));
        let op: ArrayRef = Arc::new(StringArray::from(vec!["gt"; 6]));
        let val: ArrayRef = Arc::new(Float64Array::from(vec![2.0; 6]));
        let out = state(Kind::StateCount, &[v.clone(), op.clone(), val.clone()], 6).unwrap();
        let got: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(
            got,
            vec![Some(-1), Some(1), None, Some(2), Some(-1), Some(1)]
        );
        let ts: ArrayRef = Arc::new(Int64Array::from(vec![0, 10, 20, 30, 40, 50]));
        let unit: ArrayRef = Arc::new(Int64Array::from(vec![10; 6]));
        let out = state(Kind::StateDuration, &[v, op, val, ts, unit], 6).unwrap();
        let got: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(
            got,
            vec![Some(-1), Some(0), None, Some(2), Some(-1), Some(0)]
        );
    }
}
