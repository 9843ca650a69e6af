//! Arrow <-> TDengine: result batches become typed rows for the wire, tag values become
//! arrays for the provider, and Arrow result types map back to TDengine type names.

use crate::provider::META_TYPE;
use common::{Code, DataType, Precision, TaosError, TaosResult, Value};
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::{DataType as A, Field};
use std::sync::Arc;

fn conv_err(e: impl std::fmt::Display) -> TaosError {
    TaosError::new(Code::INTERNAL, format!("result conversion: {e}"))
}

/// The TDengine type of a result column: its metadata when it is a source column, else mapped
/// from the Arrow type (strings get the longest value's length).
pub fn taos_type(field: &Field, col: &ArrayRef) -> DataType {
    if let Some(t) = field.metadata().get(META_TYPE).and_then(|s| parse_type(s)) {
        if crate::catalog::arrow_type(t, Precision::Ms).equals_datatype(field.data_type())
            || matches!(
                (t, field.data_type()),
                (DataType::Timestamp, A::Timestamp(..))
            )
        {
            return t;
        }
    }
    match field.data_type() {
        A::Boolean => DataType::Bool,
        A::Int8 => DataType::TinyInt,
        A::Int16 => DataType::SmallInt,
        A::Int32 => DataType::Int,
        A::Int64 => DataType::BigInt,
        A::UInt8 => DataType::UTinyInt,
        A::UInt16 => DataType::USmallInt,
        A::UInt32 => DataType::UInt,
        A::UInt64 => DataType::UBigInt,
        A::Float16 | A::Float32 => DataType::Float,
        A::Float64 | A::Decimal128(..) | A::Decimal256(..) => DataType::Double,
        A::Timestamp(..) | A::Date32 | A::Date64 => DataType::Timestamp,
        A::Binary | A::LargeBinary | A::BinaryView => DataType::VarBinary(max_len(col).max(1)),
        A::Null => DataType::VarChar(0),
        _ => DataType::VarChar(max_len(col)),
    }
}

fn max_len(col: &ArrayRef) -> u32 {
    let mut m = 0usize;
    if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
        for i in 0..s.len() {
            if s.is_valid(i) {
                m = m.max(s.value(i).len());
            }
        }
    } else if let Some(s) = col.as_any().downcast_ref::<StringViewArray>() {
        for i in 0..s.len() {
            if s.is_valid(i) {
                m = m.max(s.value(i).len());
            }
        }
    } else if let Some(s) = col.as_any().downcast_ref::<BinaryArray>() {
        for i in 0..s.len() {
            if s.is_valid(i) {
                m = m.max(s.value(i).len());
            }
        }
    }
    m as u32
}

/// `DataType::sql()` text back to the type.
pub fn parse_type(s: &str) -> Option<DataType> {
    let (name, len) = match s.split_once('(') {
        Some((n, rest)) => (n, rest.trim_end_matches(')').parse::<u32>().ok()),
        None => (s, None),
    };
    Some(match (name, len) {
        ("BOOL", _) => DataType::Bool,
        ("TINYINT", _) => DataType::TinyInt,
        ("SMALLINT", _) => DataType::SmallInt,
        ("INT", _) => DataType::Int,
        ("BIGINT", _) => DataType::BigInt,
        ("TINYINT UNSIGNED", _) => DataType::UTinyInt,
        ("SMALLINT UNSIGNED", _) => DataType::USmallInt,
        ("INT UNSIGNED", _) => DataType::UInt,
        ("BIGINT UNSIGNED", _) => DataType::UBigInt,
        ("FLOAT", _) => DataType::Float,
        ("DOUBLE", _) => DataType::Double,
        ("TIMESTAMP", _) => DataType::Timestamp,
        ("JSON", _) => DataType::Json,
        ("VARCHAR", Some(n)) => DataType::VarChar(n),
        ("NCHAR", Some(n)) => DataType::NChar(n),
        ("VARBINARY", Some(n)) => DataType::VarBinary(n),
        ("GEOMETRY", Some(n)) => DataType::Geometry(n),
        _ => return None,
    })
}

/// One column of a result batch as values of `ty`; timestamps are rescaled to `p`.
pub fn column_values(a: &ArrayRef, ty: DataType, p: Precision) -> TaosResult<Vec<Value>> {
    let n = a.len();
    let mut out = Vec::with_capacity(n);
    macro_rules! prim {
        ($t:ty, $mk:expr) => {{
            let arr = a.as_primitive::<$t>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    $mk(arr.value(i))
                });
            }
        }};
    }
    use datafusion::arrow::datatypes::{
        Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
        Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
        UInt8Type,
    };
    let rescale = |v: i64, per_sec: i64| -> i64 {
        let t = p.per_second();
        if t >= per_sec {
            v.saturating_mul(t / per_sec)
        } else {
            v.div_euclid(per_sec / t)
        }
    };
    match a.data_type() {
        A::Null => out.resize(n, Value::Null),
        A::Boolean => {
            let arr = a.as_boolean();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    Value::Bool(arr.value(i))
                });
            }
        }
        A::Int8 => prim!(Int8Type, Value::TinyInt),
        A::Int16 => prim!(Int16Type, Value::SmallInt),
        A::Int32 => prim!(Int32Type, Value::Int),
        A::Int64 if ty == DataType::Timestamp => prim!(Int64Type, Value::Timestamp),
        A::Int64 => prim!(Int64Type, Value::BigInt),
        A::UInt8 => prim!(UInt8Type, Value::UTinyInt),
        A::UInt16 => prim!(UInt16Type, Value::USmallInt),
        A::UInt32 => prim!(UInt32Type, Value::UInt),
        A::UInt64 => prim!(UInt64Type, Value::UBigInt),
        A::Float32 => prim!(Float32Type, Value::Float),
        A::Float64 => prim!(Float64Type, Value::Double),
        A::Timestamp(TimeUnit::Second, _) => {
            prim!(TimestampSecondType, |v| Value::Timestamp(rescale(v, 1)))
        }
        A::Timestamp(TimeUnit::Millisecond, _) => {
            prim!(TimestampMillisecondType, |v| Value::Timestamp(rescale(
                v, 1_000
            )))
        }
        A::Timestamp(TimeUnit::Microsecond, _) => {
            prim!(TimestampMicrosecondType, |v| Value::Timestamp(rescale(
                v, 1_000_000
            )))
        }
        A::Timestamp(TimeUnit::Nanosecond, _) => {
            prim!(TimestampNanosecondType, |v| Value::Timestamp(rescale(
                v,
                1_000_000_000
            )))
        }
        A::Date32 => prim!(Date32Type, |v: i32| Value::Timestamp(rescale(
            v as i64 * 86_400,
            1
        ))),
        A::Date64 => prim!(Date64Type, |v: i64| Value::Timestamp(rescale(v, 1_000))),
        A::Utf8 | A::LargeUtf8 | A::Utf8View => {
            let strings = datafusion::arrow::compute::cast(a, &A::Utf8).map_err(conv_err)?;
            let arr = strings.as_string::<i32>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    let s = arr.value(i).to_string();
                    match ty {
                        DataType::NChar(_) => Value::NChar(s),
                        DataType::Json => Value::Json(s),
                        _ => Value::VarChar(s),
                    }
                });
            }
        }
        A::Binary | A::LargeBinary | A::BinaryView => {
            let bin = datafusion::arrow::compute::cast(a, &A::Binary).map_err(conv_err)?;
            let arr = bin.as_binary::<i32>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else if matches!(ty, DataType::Geometry(_)) {
                    Value::Geometry(arr.value(i).to_vec())
                } else {
                    Value::VarBinary(arr.value(i).to_vec())
                });
            }
        }
        A::Decimal128(..) | A::Decimal256(..) | A::Float16 => {
            let f = datafusion::arrow::compute::cast(a, &A::Float64).map_err(conv_err)?;
            let arr = f.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    Value::Double(arr.value(i))
                });
            }
        }
        other => {
            let s = datafusion::arrow::compute::cast(a, &A::Utf8)
                .map_err(|_| conv_err(format!("unsupported result type {other}")))?;
            let arr = s.as_string::<i32>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    Value::VarChar(arr.value(i).to_string())
                });
            }
        }
    }
    Ok(out)
}

/// Values of one TDengine type as an Arrow array (tag batches, system tables).
pub fn values_to_array(vals: &[Value], ty: DataType, p: Precision) -> TaosResult<ArrayRef> {
    macro_rules! build {
        ($b:ty, $pat:pat => $e:expr) => {{
            let mut b = <$b>::new();
            for v in vals {
                match v {
                    $pat => b.append_value($e),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        DataType::Null => new_null_array(&A::Null, vals.len()),
        DataType::Bool => build!(BooleanBuilder, Value::Bool(x) => *x),
        DataType::TinyInt => build!(Int8Builder, Value::TinyInt(x) => *x),
        DataType::SmallInt => build!(Int16Builder, Value::SmallInt(x) => *x),
        DataType::Int => build!(Int32Builder, Value::Int(x) => *x),
        DataType::BigInt => build!(Int64Builder, Value::BigInt(x) => *x),
        DataType::UTinyInt => build!(UInt8Builder, Value::UTinyInt(x) => *x),
        DataType::USmallInt => build!(UInt16Builder, Value::USmallInt(x) => *x),
        DataType::UInt => build!(UInt32Builder, Value::UInt(x) => *x),
        DataType::UBigInt => build!(UInt64Builder, Value::UBigInt(x) => *x),
        DataType::Float => build!(Float32Builder, Value::Float(x) => *x),
        DataType::Double => build!(Float64Builder, Value::Double(x) => *x),
        DataType::Timestamp => {
            let ints = build!(Int64Builder, Value::Timestamp(x) => *x);
            datafusion::arrow::compute::cast(&ints, &crate::catalog::arrow_type(ty, p))
                .map_err(conv_err)?
        }
        DataType::VarChar(_) | DataType::NChar(_) | DataType::Json => {
            build!(StringBuilder, Value::VarChar(x) | Value::NChar(x) | Value::Json(x) => x)
        }
        DataType::VarBinary(_) | DataType::Geometry(_) => {
            build!(BinaryBuilder, Value::VarBinary(x) | Value::Geometry(x) => x)
        }
    })
}

/// A constant column of `rows` copies of one value (a table's tags in its scan batches).
pub fn repeat_value(v: &Value, ty: DataType, p: Precision, rows: usize) -> TaosResult<ArrayRef> {
    let one = values_to_array(std::slice::from_ref(v), ty, p)?;
    let idx = UInt32Array::from(vec![0u32; rows]);
    datafusion::arrow::compute::take(one.as_ref(), &idx, None).map_err(conv_err)
}
