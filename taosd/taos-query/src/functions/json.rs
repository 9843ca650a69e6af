//! JSON tag operators as scalar UDFs (the lowering turns the operators into these calls):
//!
//! - `td_json_get(tag, 'key')`: `tag->'key'` as TDengine shows it: strings in double quotes,
//!   numbers with nine decimals, `true` / `false`, `null`; NULL when the key is absent.
//! - `td_json_str(tag, 'key')`: the value for LIKE / MATCH: strings without quotes.
//! - `td_json_contains(tag, 'key')`: `tag CONTAINS 'key'`.
//! - `td_json_cmp(tag, 'key', 'op', literal)`: `tag->'key' op literal`. A string literal
//!   compares with string values, a number with numbers, a boolean with booleans; a value of
//!   another type is unequal (so only `<>` holds); an absent key gives NULL.

use super::{n_args, Env, Udf};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use serde_json::Value as Json;
use std::cmp::Ordering;
use std::sync::Arc;

pub(super) fn functions(env: Env) -> Vec<Udf> {
    vec![
        Udf::new("td_json_get", env, ret_utf8, eval_get),
        Udf::new("td_json_str", env, ret_utf8, eval_str),
        Udf::new("td_json_contains", env, ret_bool, eval_contains),
        Udf::new("td_json_cmp", env, ret_bool, eval_cmp),
    ]
}

fn ret_utf8(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("->", t, 2, 2)?;
    Ok(DataType::Utf8)
}

fn ret_bool(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("json operator", t, 2, 4)?;
    Ok(DataType::Boolean)
}

/// The value under `key` of each row's JSON text; `None` when the tag is NULL, not an object
/// or has no such key. Rows of one table share their tag text, so the last parse is reused.
fn values(a: &[ArrayRef], rows: usize) -> Result<Vec<Option<Json>>> {
    if a.len() < 2 {
        return exec_err!("Invalid number of parameters : json operator");
    }
    let tags = cast(&a[0], &DataType::Utf8)?;
    let tags = tags.as_string::<i32>();
    let keys = cast(&a[1], &DataType::Utf8)?;
    let keys = keys.as_string::<i32>();
    let mut last: Option<(String, Option<Json>)> = None;
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        if tags.is_null(i) || keys.is_null(i) {
            out.push(None);
            continue;
        }
        let text = tags.value(i);
        let parsed = match &last {
            Some((t, v)) if t == text => v.clone(),
            _ => {
                let v = serde_json::from_str::<Json>(text).ok();
                last = Some((text.to_string(), v.clone()));
                v
            }
        };
        out.push(parsed.and_then(|j| j.get(keys.value(i)).cloned()));
    }
    Ok(out)
}

/// How TDengine renders a JSON value selected with `->`.
pub(crate) fn render(v: &Json) -> String {
    match v {
        Json::String(s) => format!("\"{s}\""),
        Json::Number(n) => format!("{:.9}", n.as_f64().unwrap_or(0.0)),
        Json::Bool(b) => b.to_string(),
        Json::Null => "null".into(),
        other => other.to_string(),
    }
}

fn eval_get(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = values(a, rows)?
        .iter()
        .map(|v| v.as_ref().map(render))
        .collect();
    Ok(Arc::new(out))
}

fn eval_str(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = values(a, rows)?
        .iter()
        .map(|v| {
            v.as_ref().map(|v| match v {
                Json::String(s) => s.clone(),
                other => render(other),
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn eval_contains(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let tags = cast(&a[0], &DataType::Utf8)?;
    let tags = tags.as_string::<i32>();
    let out: BooleanArray = values(a, rows)?
        .iter()
        .enumerate()
        .map(|(i, v)| (!tags.is_null(i)).then_some(v.is_some()))
        .collect();
    Ok(Arc::new(out))
}

/// A comparison literal of one row.
enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
}

fn literals(a: &ArrayRef, rows: usize) -> Result<Vec<Option<Lit>>> {
    Ok(match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            (0..rows)
                .map(|i| (!s.is_null(i)).then(|| Lit::Str(s.value(i).to_string())))
                .collect()
        }
        DataType::Boolean => {
            let b = a.as_boolean();
            (0..rows)
                .map(|i| (!b.is_null(i)).then(|| Lit::Bool(b.value(i))))
                .collect()
        }
        DataType::Null => (0..rows).map(|_| None).collect(),
        _ => {
            let f = cast(a, &DataType::Float64)?;
            let f = f.as_primitive::<Float64Type>();
            (0..rows)
                .map(|i| (!f.is_null(i)).then(|| Lit::Num(f.value(i))))
                .collect()
        }
    })
}

fn eval_cmp(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    if a.len() != 4 {
        return exec_err!("Invalid number of parameters : json comparison");
    }
    let vals = values(a, rows)?;
    let ops = cast(&a[2], &DataType::Utf8)?;
    let ops = ops.as_string::<i32>();
    let lits = literals(&a[3], rows)?;
    let out: BooleanArray = (0..rows)
        .map(|i| {
            let v = vals[i].as_ref()?;
            let lit = lits[i].as_ref()?;
            let op = if ops.is_null(i) { "=" } else { ops.value(i) };
            let ord = match (v, lit) {
                (Json::String(s), Lit::Str(l)) => Some(s.as_str().cmp(l.as_str())),
                (Json::Number(n), Lit::Num(l)) => n.as_f64().and_then(|n| n.partial_cmp(l)),
                (Json::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
                _ => None,
            };
            Some(match ord {
                None => op == "<>",
                Some(o) => match op {
                    "=" => o == Ordering::Equal,
                    "<>" => o != Ordering::Equal,
                    "<" => o == Ordering::Less,
                    "<=" => o != Ordering::Greater,
                    ">" => o == Ordering::Greater,
                    ">=" => o != Ordering::Less,
                    _ => false,
                },
            })
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn env() -> Env {
        Env {
            precision: common::Precision::Ms,
            tz: common::SessionTz::Utc,
        }
    }

    fn strs(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    #[test]
    fn get_renders_like_tdengine() {
        let tags = strs(&[
            Some(r#"{"a":"x","b":35,"c":true,"d":null}"#),
            Some(r#"{"a":"x","b":35,"c":true,"d":null}"#),
            Some(r#"{"a":"x","b":35,"c":true,"d":null}"#),
            Some(r#"{"a":"x","b":35,"c":true,"d":null}"#),
            None,
        ]);
        let keys = strs(&[Some("a"), Some("b"), Some("c"), Some("d"), Some("a")]);
        let out = eval_get(&env(), &[tags, keys], 5, &DataType::Utf8).unwrap();
        let out: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
        assert_eq!(
            out,
            vec![
                Some("\"x\""),
                Some("35.000000000"),
                Some("true"),
                Some("null"),
                None
            ]
        );
    }

    #[test]
    fn comparisons_need_matching_types() {
        let tags = strs(&[Some(r#"{"a":5}"#), Some(r#"{"a":"5"}"#), Some(r#"{"b":1}"#)]);
        let keys = strs(&[Some("a"); 3]);
        let op = strs(&[Some("="); 3]);
        let lit: ArrayRef = Arc::new(Int64Array::from(vec![5; 3]));
        let out = eval_cmp(&env(), &[tags, keys, op, lit], 3, &DataType::Boolean).unwrap();
        let out: Vec<Option<bool>> = out.as_boolean().iter().collect();
        assert_eq!(out, vec![Some(true), Some(false), None]);
    }
}
