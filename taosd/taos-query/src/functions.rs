//! TDengine's functions that DataFusion lacks, as UDFs/UDAFs registered under TDengine's names.
//! The lowering (`lower.rs`) maps the functions whose spelling differs; everything else is
//! called by name, so a function listed here is usable as soon as it is registered.
//!
//! Session settings the functions depend on (see [`Env`]):
//! - the database precision (`to_unixtimestamp`, `to_timestamp`, string/integer arguments of
//!   `timediff`): given to [`register_for`]; [`register`] uses milliseconds, TDengine's
//!   precision when no table is queried;
//! - the session zone (rendering and parsing of wall-clock times): given to [`register_for`];
//!   [`register`] takes DataFusion's `datafusion.execution.time_zone` when it is set (a zone
//!   name such as `Asia/Shanghai` or an offset such as `+08:00`), else UTC.
//!
//! Timestamp-typed arguments always carry their own unit (the Arrow `TimeUnit`), which wins
//! over the configured precision.
//!
//! Names registered here that replace DataFusion built-ins of the same name, on purpose:
//! `to_timestamp` and `to_char` (TDengine's format tokens instead of chrono's), `concat` and
//! `concat_ws` (NULL when any argument is NULL), `ascii` (first byte as BIGINT), `rand` (with
//! TDengine's seeded generator).

mod agg;
mod json;
mod misc;
mod time;
mod window;

use common::{Precision, SessionTz};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Time-series functions that need the primary timestamp: the lowering appends it as the
/// last argument (`twa(v)` becomes `twa(v, ts)`).
pub fn needs_ts(name: &str) -> bool {
    TS_FUNCTIONS.contains(&name)
}

const TS_FUNCTIONS: &[&str] = &["twa", "irate", "leastsquares"];

/// Aggregate UDFs (one row per group), so the lowering groups correctly.
pub fn is_aggregate(name: &str) -> bool {
    UDAFS.contains(&name)
}

const UDAFS: &[&str] = &[
    "twa",
    "irate",
    "mode",
    "leastsquares",
    "histogram",
    "histogram_bins",
];

/// Register every TDengine function on a session: millisecond precision, and the zone from
/// `datafusion.execution.time_zone` (UTC when unset).
pub fn register(ctx: &SessionContext) {
    let tz = ctx
        .state()
        .config_options()
        .execution
        .time_zone
        .as_deref()
        .and_then(SessionTz::parse)
        .unwrap_or(SessionTz::Utc);
    register_for(ctx, Precision::Ms, tz);
}

/// Register every TDengine function for a query on a database of precision `precision`, in a
/// session whose zone is `tz`.
pub fn register_for(ctx: &SessionContext, precision: Precision, tz: SessionTz) {
    Registry::new(precision, tz).register(ctx);
}

/// Our functions for one precision and zone, built once and registered into many sessions.
#[derive(Debug, Clone)]
pub struct Registry {
    scalars: Vec<ScalarUDF>,
    aggregates: Vec<datafusion::logical_expr::AggregateUDF>,
    windows: Vec<datafusion::logical_expr::WindowUDF>,
}

impl Registry {
    pub fn new(precision: Precision, tz: SessionTz) -> Registry {
        let env = Env { precision, tz };
        Registry {
            scalars: time::functions(env)
                .into_iter()
                .chain(misc::functions(env))
                .chain(json::functions(env))
                .map(ScalarUDF::new_from_impl)
                .collect(),
            aggregates: agg::functions(),
            windows: window::functions(),
        }
    }

    /// Register ours over whatever the session has under the same names (a DataFusion built-in
    /// of that name or alias goes first, aliases included), so ours always win.
    pub fn register(&self, ctx: &SessionContext) {
        for f in &self.scalars {
            let _ = ctx.deregister_udf(f.name());
            ctx.register_udf(f.clone());
        }
        for f in &self.aggregates {
            let _ = ctx.deregister_udaf(f.name());
            ctx.register_udaf(f.clone());
        }
        for f in &self.windows {
            let _ = ctx.deregister_udwf(f.name());
            ctx.register_udwf(f.clone());
        }
    }
}

/// What a function needs from the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Env {
    pub precision: Precision,
    pub tz: SessionTz,
}

/// Result type of a scalar function from its argument types and constant arguments.
type RetFn = fn(&Env, &[DataType], &[Option<&ScalarValue>]) -> Result<DataType>;
/// Evaluate a scalar function over arrays of equal length (`rows`).
type EvalFn = fn(&Env, &[ArrayRef], usize, &DataType) -> Result<ArrayRef>;

/// A scalar UDF described by plain functions: any argument types are accepted (the
/// evaluation casts what it needs), argument counts are checked in `ret`.
#[derive(Debug)]
pub(crate) struct Udf {
    name: &'static str,
    signature: Signature,
    ret: RetFn,
    eval: EvalFn,
    env: Env,
}

impl Udf {
    pub(crate) fn new(name: &'static str, env: Env, ret: RetFn, eval: EvalFn) -> Udf {
        Udf {
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
            ret,
            eval,
            env,
        }
    }

    /// Also callable without arguments.
    pub(crate) fn nullary_ok(mut self, volatility: Volatility) -> Udf {
        self.signature = Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            volatility,
        );
        self
    }
}

impl PartialEq for Udf {
    fn eq(&self, o: &Udf) -> bool {
        self.name == o.name && self.env == o.env
    }
}
impl Eq for Udf {}
impl Hash for Udf {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h);
        self.env.precision.hash(h);
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let none = vec![None; arg_types.len()];
        (self.ret)(&self.env, arg_types, &none)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let ty = (self.ret)(&self.env, &types, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name, ty, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let out = (self.eval)(&self.env, &arrays, rows, args.return_field.data_type())?;
        if out.len() != rows {
            return exec_err!("{}: produced {} rows for {}", self.name, out.len(), rows);
        }
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Check an argument count in a `ret` function.
pub(crate) fn n_args(name: &str, types: &[DataType], lo: usize, hi: usize) -> Result<()> {
    if types.len() < lo || types.len() > hi {
        return plan_err!("Invalid number of parameters : {name}");
    }
    Ok(())
}

/// Arrow's timestamp type for a precision.
pub(crate) fn ts_type(p: Precision) -> DataType {
    DataType::Timestamp(time_unit(p), None)
}

pub(crate) fn time_unit(p: Precision) -> TimeUnit {
    match p {
        Precision::Ms => TimeUnit::Millisecond,
        Precision::Us => TimeUnit::Microsecond,
        Precision::Ns => TimeUnit::Nanosecond,
    }
}

/// The precision a timestamp unit corresponds to (seconds count as milliseconds, scaled).
pub(crate) fn unit_per_second(u: &TimeUnit) -> i64 {
    match u {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

pub(crate) fn precision_of(u: &TimeUnit) -> Precision {
    match u {
        TimeUnit::Second | TimeUnit::Millisecond => Precision::Ms,
        TimeUnit::Microsecond => Precision::Us,
        TimeUnit::Nanosecond => Precision::Ns,
    }
}

/// A value in units of `from` per second converted to units of `to` per second (floor).
pub(crate) fn rescale(v: i64, from: i64, to: i64) -> Option<i64> {
    if from == to {
        Some(v)
    } else if from < to {
        v.checked_mul(to / from)
    } else {
        Some(v.div_euclid(from / to))
    }
}

/// A constant argument as an integer, if it is one.
pub(crate) fn scalar_i64(s: Option<&ScalarValue>) -> Option<i64> {
    let s = s?;
    if s.is_null() {
        return None;
    }
    match s.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(v) => v,
        _ => None,
    }
}

/// Row `i` of an array is valid (not NULL).
pub(crate) fn valid(a: &dyn Array, i: usize) -> bool {
    a.is_valid(i) && a.data_type() != &DataType::Null
}
