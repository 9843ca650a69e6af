//! Aggregate UDFs: TWA, IRATE, MODE, LEASTSQUARES, HISTOGRAM.
//!
//! DataFusion aggregates in partitions and merges partial states in any order, so every state
//! here is order-independent: functions that depend on time order (TWA, LEASTSQUARES) keep
//! their points and sort them by timestamp when evaluating; IRATE keeps the two latest points.

use super::{unit_per_second, valid};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(Agg::new(Kind::Twa)),
        AggregateUDF::new_from_impl(Agg::new(Kind::Irate)),
        AggregateUDF::new_from_impl(Agg::new(Kind::Mode)),
        AggregateUDF::new_from_impl(Agg::new(Kind::LeastSquares)),
        AggregateUDF::new_from_impl(Agg::new(Kind::Histogram)),
        AggregateUDF::new_from_impl(Agg::new(Kind::HistogramBins)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Twa,
    Irate,
    Mode,
    LeastSquares,
    /// One VARCHAR per group: the bins as a JSON array.
    Histogram,
    /// One `List<VARCHAR>` per group (one bin each), for `unnest(histogram_bins(...))`.
    HistogramBins,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Agg {
    kind: Kind,
    signature: Signature,
}

impl Agg {
    fn new(kind: Kind) -> Agg {
        Agg {
            kind,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn list_of(dt: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(dt, true)))
}

fn state_field(args: &StateFieldsArgs, what: &str, dt: DataType) -> FieldRef {
    Arc::new(Field::new(format!("{}[{what}]", args.name), dt, true))
}

fn list_scalar(arr: ArrayRef) -> ScalarValue {
    ScalarValue::List(Arc::new(
        SingleRowListArrayBuilder::new(arr).build_list_array(),
    ))
}

fn is_ts(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..))
}

fn is_num(t: &DataType) -> bool {
    t.is_numeric() || t == &DataType::Boolean || t == &DataType::Null
}

/// A constant argument of the aggregate.
fn constant(args: &AccumulatorArgs, i: usize, what: &str) -> Result<ScalarValue> {
    match args.exprs.get(i).and_then(|e| e.downcast_ref::<Literal>()) {
        Some(l) => Ok(l.value().clone()),
        None => plan_err!(
            "Invalid parameter : {} {what} must be a constant",
            args.name
        ),
    }
}

fn const_f64(args: &AccumulatorArgs, i: usize, what: &str) -> Result<f64> {
    match constant(args, i, what)?.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(v)) => Ok(v),
        _ => plan_err!("Invalid parameter : {} {what} must be a number", args.name),
    }
}

fn const_str(args: &AccumulatorArgs, i: usize, what: &str) -> Result<String> {
    match constant(args, i, what)?.cast_to(&DataType::Utf8)? {
        ScalarValue::Utf8(Some(v)) => Ok(v),
        _ => plan_err!("Invalid parameter : {} {what} must be a string", args.name),
    }
}

impl AggregateUDFImpl for Agg {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Twa => "twa",
            Kind::Irate => "irate",
            Kind::Mode => "mode",
            Kind::LeastSquares => "leastsquares",
            Kind::Histogram => "histogram",
            Kind::HistogramBins => "histogram_bins",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        let name = self.name();
        let bad = || plan_err!("Invalid number of parameters : {name}");
        match self.kind {
            Kind::Twa | Kind::Irate => {
                if t.len() != 2 || !is_ts(&t[1]) {
                    return plan_err!(
                        "Invalid parameter : {name}(expr) needs the table's primary timestamp"
                    );
                }
                if !is_num(&t[0]) {
                    return plan_err!("Invalid parameter data type : {name}({})", t[0]);
                }
                Ok(DataType::Float64)
            }
            Kind::Mode => {
                if t.len() != 1 {
                    return bad();
                }
                Ok(t[0].clone())
            }
            Kind::LeastSquares => {
                if !(t.len() == 3 || (t.len() == 4 && is_ts(&t[3]))) {
                    return bad();
                }
                if !is_num(&t[0]) {
                    return plan_err!("Invalid parameter data type : leastsquares({})", t[0]);
                }
                Ok(DataType::Utf8)
            }
            Kind::Histogram | Kind::HistogramBins => {
                if t.len() != 4 {
                    return bad();
                }
                if !is_num(&t[0]) {
                    return plan_err!("Invalid parameter data type : histogram({})", t[0]);
                }
                Ok(if self.kind == Kind::Histogram {
                    DataType::Utf8
                } else {
                    list_of(DataType::Utf8)
                })
            }
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(match self.kind {
            Kind::Twa => Box::new(Points::new(Finish::Twa, false)),
            Kind::LeastSquares => {
                let start = const_f64(&args, 1, "start_val")?;
                let step = const_f64(&args, 2, "step_val")?;
                Box::new(Points::new(
                    Finish::LeastSquares { start, step },
                    args.exprs.len() == 3,
                ))
            }
            Kind::Irate => {
                let per_sec = match args.expr_fields.get(1).map(|f| f.data_type()) {
                    Some(DataType::Timestamp(u, _)) => unit_per_second(u),
                    _ => {
                        return plan_err!(
                            "Invalid parameter : irate needs the table's primary timestamp"
                        )
                    }
                };
                Box::new(Irate {
                    per_sec,
                    last: None,
                    prev: None,
                })
            }
            Kind::Mode => Box::new(Mode {
                dt: args.return_type().clone(),
                counts: HashMap::new(),
            }),
            Kind::Histogram | Kind::HistogramBins => {
                let bin_type = const_str(&args, 1, "bin_type")?;
                let desc = const_str(&args, 2, "bin_description")?;
                let normalized = match constant(&args, 3, "normalized")?
                    .cast_to(&DataType::Int64)?
                {
                    ScalarValue::Int64(Some(0)) => false,
                    ScalarValue::Int64(Some(1)) => true,
                    _ => {
                        return plan_err!("Invalid parameter : histogram normalized must be 0 or 1")
                    }
                };
                let edges = bin_edges(&bin_type, &desc)?;
                let counts = vec![0; edges.len() - 1];
                Box::new(Histogram {
                    edges,
                    counts,
                    normalized,
                    list: self.kind == Kind::HistogramBins,
                })
            }
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(match self.kind {
            Kind::Twa | Kind::LeastSquares => vec![
                state_field(&args, "ts", list_of(DataType::Int64)),
                state_field(&args, "v", list_of(DataType::Float64)),
            ],
            Kind::Irate => vec![
                state_field(&args, "t1", DataType::Int64),
                state_field(&args, "v1", DataType::Float64),
                state_field(&args, "t2", DataType::Int64),
                state_field(&args, "v2", DataType::Float64),
            ],
            Kind::Mode => vec![
                state_field(&args, "values", list_of(args.return_type().clone())),
                state_field(&args, "counts", list_of(DataType::Int64)),
            ],
            Kind::Histogram | Kind::HistogramBins => {
                vec![state_field(&args, "counts", list_of(DataType::Int64))]
            }
        })
    }
}

fn f64s(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Float64)?)
}

fn i64s(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Int64)?)
}

// ---------------------------------------------------------------------------------------------
// Point collections (TWA, LEASTSQUARES)

#[derive(Debug, Clone, Copy)]
enum Finish {
    Twa,
    LeastSquares { start: f64, step: f64 },
}

#[derive(Debug)]
struct Points {
    finish: Finish,
    /// No timestamp argument: points are numbered in arrival order.
    seq: bool,
    ts: Vec<i64>,
    v: Vec<f64>,
}

impl Points {
    fn new(finish: Finish, seq: bool) -> Points {
        Points {
            finish,
            seq,
            ts: Vec::new(),
            v: Vec::new(),
        }
    }

    /// Points sorted by time (arrival order among equal times).
    fn sorted(&self) -> Vec<(i64, f64)> {
        let mut p: Vec<(i64, f64)> = self
            .ts
            .iter()
            .copied()
            .zip(self.v.iter().copied())
            .collect();
        p.sort_by_key(|x| x.0);
        p
    }
}

impl Accumulator for Points {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = f64s(&values[0])?;
        let v = v.as_primitive::<Float64Type>();
        let ts = if self.seq {
            None
        } else {
            Some(i64s(&values[values.len() - 1])?)
        };
        let ts = ts.as_ref().map(|t| t.as_primitive::<Int64Type>());
        for i in 0..v.len() {
            if !valid(v, i) {
                continue;
            }
            let t = match ts {
                Some(t) if valid(t, i) => t.value(i),
                Some(_) => continue,
                None => self.ts.len() as i64,
            };
            self.ts.push(t);
            self.v.push(v.value(i));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            list_scalar(Arc::new(Int64Array::from(self.ts.clone()))),
            list_scalar(Arc::new(Float64Array::from(self.v.clone()))),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (ts, vs) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for r in 0..ts.len() {
            if !ts.is_valid(r) || !vs.is_valid(r) {
                continue;
            }
            let t = i64s(&ts.value(r))?;
            let t = t.as_primitive::<Int64Type>();
            let v = f64s(&vs.value(r))?;
            let v = v.as_primitive::<Float64Type>();
            if t.len() != v.len() {
                return exec_err!("corrupt partial state of {:?}", self.finish);
            }
            let base = self.ts.len() as i64;
            for i in 0..t.len() {
                // Sequence numbers continue after ours.
                let tv = if self.seq {
                    base + i as i64
                } else {
                    t.value(i)
                };
                self.ts.push(tv);
                self.v.push(v.value(i));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let p = self.sorted();
        match self.finish {
            Finish::Twa => Ok(ScalarValue::Float64(twa(&p))),
            Finish::LeastSquares { start, step } => {
                Ok(ScalarValue::Utf8(leastsquares(&p, start, step)))
            }
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.ts.capacity() * 8 + self.v.capacity() * 8
    }
}

/// Time-weighted average of points sorted by time: the area under the line through them
/// (trapezoids) divided by the time span; a single instant gives its value. Without a window
/// the span is first..last point; TDengine extends it to the window edges inside INTERVAL by
/// interpolating, which this does not do.
fn twa(p: &[(i64, f64)]) -> Option<f64> {
    let (first, last) = (p.first()?, p.last()?);
    if first.0 == last.0 {
        return Some(last.1);
    }
    let mut area = 0.0;
    for w in p.windows(2) {
        area += (w[0].1 + w[1].1) * (w[1].0 - w[0].0) as f64 / 2.0;
    }
    Some(area / (last.0 - first.0) as f64)
}

/// `{slop:%.6lf, intercept:%.6lf}` of the least-squares line through (start + i*step, v_i),
/// computed as TDengine does (so degenerate inputs print the same NaNs).
fn leastsquares(p: &[(i64, f64)], start: f64, step: f64) -> Option<String> {
    if p.is_empty() {
        return None;
    }
    let (mut sxx, mut sx, mut sxy, mut sy) = (0.0, 0.0, 0.0, 0.0);
    let mut x = start;
    for (_, y) in p {
        sxx += x * x;
        sx += x;
        sxy += x * y;
        sy += y;
        x += step;
    }
    let n = p.len() as f64;
    let p00 = sxx - sx * (sx / n);
    let mut p02 = sxy - sy * (sx / n);
    let mut p12 = sy - p02 * (sx / p00);
    p02 /= p00;
    p12 /= n;
    Some(format!(
        "{{slop:{}, intercept:{}}}",
        c_f(p02, 6),
        c_f(p12, 6)
    ))
}

/// printf's `%.Nf` (glibc spells NaN from 0/0 as `-nan` on x86).
fn c_f(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "-nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:.prec$}")
    }
}

/// printf's `%g`: 6 significant digits, exponent form outside [1e-4, 1e6), no trailing zeros.
fn c_g(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{v:.5e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        format!(
            "{}e{}{:02}",
            trim(mant),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

// ---------------------------------------------------------------------------------------------
// IRATE

#[derive(Debug)]
struct Irate {
    per_sec: i64,
    last: Option<(i64, f64)>,
    prev: Option<(i64, f64)>,
}

impl Irate {
    /// Keep the two latest points (a repeated timestamp keeps the first value seen).
    fn add(&mut self, t: i64, v: f64) {
        match self.last {
            None => self.last = Some((t, v)),
            Some(l) if t > l.0 => {
                self.prev = Some(l);
                self.last = Some((t, v));
            }
            Some(l) if t == l.0 => {}
            Some(_) => match self.prev {
                Some(p) if t <= p.0 => {}
                _ => self.prev = Some((t, v)),
            },
        }
    }
}

impl Accumulator for Irate {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = f64s(&values[0])?;
        let v = v.as_primitive::<Float64Type>();
        let t = i64s(&values[1])?;
        let t = t.as_primitive::<Int64Type>();
        for i in 0..v.len() {
            if valid(v, i) && valid(t, i) {
                self.add(t.value(i), v.value(i));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (t1, v1) = self
            .prev
            .map(|(t, v)| (Some(t), Some(v)))
            .unwrap_or((None, None));
        let (t2, v2) = self
            .last
            .map(|(t, v)| (Some(t), Some(v)))
            .unwrap_or((None, None));
        Ok(vec![
            ScalarValue::Int64(t1),
            ScalarValue::Float64(v1),
            ScalarValue::Int64(t2),
            ScalarValue::Float64(v2),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for k in [0, 2] {
            let t = i64s(&states[k])?;
            let t = t.as_primitive::<Int64Type>();
            let v = f64s(&states[k + 1])?;
            let v = v.as_primitive::<Float64Type>();
            for i in 0..t.len() {
                if valid(t, i) && valid(v, i) {
                    self.add(t.value(i), v.value(i));
                }
            }
        }
        Ok(())
    }

    /// Per-second rate between the last two points; when the value went down (a counter
    /// reset) the last value itself is the increase. One point gives 0, none NULL.
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some((t2, v2)) = self.last else {
            return Ok(ScalarValue::Float64(None));
        };
        let Some((t1, v1)) = self.prev else {
            return Ok(ScalarValue::Float64(Some(0.0)));
        };
        let mut diff = v2;
        if diff >= v1 {
            diff -= v1;
        }
        let dur = (t2 - t1) as f64 / self.per_sec as f64;
        Ok(ScalarValue::Float64(Some(if dur > 0.0 {
            diff / dur
        } else {
            0.0
        })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

// ---------------------------------------------------------------------------------------------
// MODE

#[derive(Debug)]
struct Mode {
    dt: DataType,
    counts: HashMap<ScalarValue, i64>,
}

impl Mode {
    fn add_array(&mut self, a: &ArrayRef, counts: Option<&Int64Array>) -> Result<()> {
        let a = if a.data_type() == &self.dt {
            a.clone()
        } else {
            cast(a, &self.dt)?
        };
        for i in 0..a.len() {
            if !valid(a.as_ref(), i) {
                continue;
            }
            let n = match counts {
                Some(c) if valid(c, i) => c.value(i),
                Some(_) => continue,
                None => 1,
            };
            *self
                .counts
                .entry(ScalarValue::try_from_array(&a, i)?)
                .or_insert(0) += n;
        }
        Ok(())
    }
}

impl Accumulator for Mode {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add_array(&values[0], None)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (vals, counts): (Vec<ScalarValue>, Vec<i64>) =
            self.counts.iter().map(|(k, v)| (k.clone(), *v)).unzip();
        let vals = if vals.is_empty() {
            datafusion::arrow::array::new_empty_array(&self.dt)
        } else {
            ScalarValue::iter_to_array(vals)?
        };
        Ok(vec![
            list_scalar(vals),
            list_scalar(Arc::new(Int64Array::from(counts))),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (vals, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for r in 0..vals.len() {
            if !vals.is_valid(r) || !counts.is_valid(r) {
                continue;
            }
            let c = i64s(&counts.value(r))?;
            self.add_array(&vals.value(r), Some(c.as_primitive::<Int64Type>()))?;
        }
        Ok(())
    }

    /// The most frequent non-NULL value; among equally frequent values the smallest (TDengine
    /// picks any one of them).
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut best: Option<(&ScalarValue, i64)> = None;
        for (k, n) in &self.counts {
            let better = match best {
                None => true,
                Some((bk, bn)) => {
                    *n > bn || (*n == bn && k.partial_cmp(bk) == Some(std::cmp::Ordering::Less))
                }
            };
            if better {
                best = Some((k, *n));
            }
        }
        match best {
            Some((k, _)) => Ok(k.clone()),
            None => ScalarValue::try_from(&self.dt),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.iter().map(|(k, _)| k.size() + 8).sum::<usize>()
    }
}

// ---------------------------------------------------------------------------------------------
// HISTOGRAM

/// Parse `user_input` (`[1, 3, 5]`), `linear_bin` (`{"start", "width", "count", "infinity"}`)
/// or `log_bin` (`{"start", "factor", "count", "infinity"}`) into ascending bin edges.
fn bin_edges(bin_type: &str, desc: &str) -> Result<Vec<f64>> {
    let bad = |why: &str| plan_err!("Invalid parameter : histogram {why}: {desc}");
    let d = desc.trim();
    let mut edges: Vec<f64> = match bin_type.to_ascii_lowercase().as_str() {
        "user_input" => {
            let Some(inner) = d.strip_prefix('[').and_then(|x| x.strip_suffix(']')) else {
                return bad("user_input bins must be a JSON array of numbers");
            };
            let mut v = Vec::new();
            for x in inner.split(',') {
                match x.trim().parse::<f64>() {
                    Ok(f) if f.is_finite() => v.push(f),
                    _ => return bad("user_input bins must be a JSON array of numbers"),
                }
            }
            if v.windows(2).any(|w| w[0] >= w[1]) {
                return bad("user_input bins must be ascending");
            }
            v
        }
        t @ ("linear_bin" | "log_bin") => {
            let Some(inner) = d.strip_prefix('{').and_then(|x| x.strip_suffix('}')) else {
                return bad("bin description must be a JSON object");
            };
            let mut kv: HashMap<String, String> = HashMap::new();
            for item in inner.split(',') {
                let Some((k, v)) = item.split_once(':') else {
                    return bad("malformed bin description");
                };
                kv.insert(
                    k.trim().trim_matches('"').to_ascii_lowercase(),
                    v.trim().to_ascii_lowercase(),
                );
            }
            let num = |k: &str| {
                kv.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|f| f.is_finite())
            };
            let (Some(start), Some(count)) = (num("start"), num("count")) else {
                return bad("start and count are required numbers");
            };
            let infinity = match kv.get("infinity").map(String::as_str) {
                Some("true") => true,
                Some("false") => false,
                _ => return bad("infinity must be true or false"),
            };
            if count <= 0.0 || count > 1000.0 {
                return bad("count must be in [1, 1000]");
            }
            let count = count as i64;
            let mut v = Vec::new();
            if t == "linear_bin" {
                let Some(width) = num("width").filter(|w| *w != 0.0 && !kv.contains_key("factor"))
                else {
                    return bad("linear_bin needs a non-zero width");
                };
                for i in 0..=count {
                    v.push(start + i as f64 * width);
                }
            } else {
                let Some(factor) =
                    num("factor").filter(|f| *f > 0.0 && *f != 1.0 && !kv.contains_key("width"))
                else {
                    return bad("log_bin needs a positive factor other than 1");
                };
                if start == 0.0 {
                    return bad("log_bin start must not be 0");
                }
                for i in 0..=count {
                    v.push(start * factor.powi(i as i32));
                }
            }
            if v.iter().any(|x| !x.is_finite()) {
                return bad("bins overflow");
            }
            v.sort_by(|a, b| a.total_cmp(b));
            if infinity {
                v.insert(0, f64::NEG_INFINITY);
                v.push(f64::INFINITY);
            }
            v
        }
        _ => return bad("bin_type must be user_input, linear_bin or log_bin"),
    };
    edges.dedup();
    if edges.len() < 2 {
        return bad("needs at least two bin edges");
    }
    Ok(edges)
}

#[derive(Debug)]
struct Histogram {
    edges: Vec<f64>,
    counts: Vec<i64>,
    normalized: bool,
    list: bool,
}

impl Histogram {
    fn lines(&self) -> Vec<String> {
        let total: i64 = self.counts.iter().sum();
        (0..self.counts.len())
            .map(|k| {
                let (lo, hi) = (c_g(self.edges[k]), c_g(self.edges[k + 1]));
                if self.normalized {
                    let pct = if total != 0 {
                        self.counts[k] as f64 / total as f64
                    } else {
                        0.0
                    };
                    format!(
                        "{{\"lower_bin\":{lo}, \"upper_bin\":{hi}, \"count\":{}}}",
                        c_f(pct, 6)
                    )
                } else {
                    format!(
                        "{{\"lower_bin\":{lo}, \"upper_bin\":{hi}, \"count\":{}}}",
                        self.counts[k]
                    )
                }
            })
            .collect()
    }
}

impl Accumulator for Histogram {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = f64s(&values[0])?;
        let v = v.as_primitive::<Float64Type>();
        for i in 0..v.len() {
            if !valid(v, i) {
                continue;
            }
            let x = v.value(i);
            // Bins are (lower, upper].
            let idx = self.edges.partition_point(|e| *e < x);
            if idx >= 1 && idx < self.edges.len() {
                self.counts[idx - 1] += 1;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![list_scalar(Arc::new(Int64Array::from(
            self.counts.clone(),
        )))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let l = states[0].as_list::<i32>();
        for r in 0..l.len() {
            if !l.is_valid(r) {
                continue;
            }
            let c = i64s(&l.value(r))?;
            let c = c.as_primitive::<Int64Type>();
            if c.len() != self.counts.len() {
                return exec_err!("corrupt partial state of histogram");
            }
            for (k, n) in self.counts.iter_mut().enumerate() {
                if valid(c, k) {
                    *n += c.value(k);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let lines = self.lines();
        if self.list {
            let arr: ArrayRef = Arc::new(StringArray::from(lines));
            Ok(list_scalar(arr))
        } else {
            Ok(ScalarValue::Utf8(Some(format!("[{}]", lines.join(", ")))))
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.edges.capacity() * 8 + self.counts.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_like() {
        assert_eq!(c_g(0.0), "0");
        assert_eq!(c_g(5.0), "5");
        assert_eq!(c_g(2.5), "2.5");
        assert_eq!(c_g(1e6), "1e+06");
        assert_eq!(c_g(123456.0), "123456");
        assert_eq!(c_g(0.0001), "0.0001");
        assert_eq!(c_g(0.00001), "1e-05");
        assert_eq!(c_g(f64::NEG_INFINITY), "-inf");
        assert_eq!(c_f(1.5, 6), "1.500000");
    }

    #[test]
    fn bins() {
        let e = bin_edges(
            "linear_bin",
            r#"{"start": 0.0, "width": 5.0, "count": 2, "infinity": true}"#,
        )
        .unwrap_or_default();
        assert_eq!(e, vec![f64::NEG_INFINITY, 0.0, 5.0, 10.0, f64::INFINITY]);
        let e = bin_edges(
            "log_bin",
            r#"{"start":1.0, "factor": 2.0, "count": 3, "infinity": false}"#,
        )
        .unwrap_or_default();
        assert_eq!(e, vec![1.0, 2.0, 4.0, 8.0]);
        assert!(bin_edges("user_input", "[3, 1]").is_err());
        assert!(bin_edges("other", "[1, 3]").is_err());
    }

    #[test]
    fn twa_and_lsq() {
        assert_eq!(twa(&[(0, 1.0), (10, 3.0)]), Some(2.0));
        assert_eq!(twa(&[(5, 7.0)]), Some(7.0));
        assert_eq!(twa(&[]), None);
        let p: Vec<(i64, f64)> = (0..5).map(|i| (i, 2.0 * i as f64 + 1.0)).collect();
        assert_eq!(
            leastsquares(&p, 0.0, 1.0).as_deref(),
            Some("{slop:2.000000, intercept:1.000000}")
        );
    }
}
