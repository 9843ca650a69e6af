//! OpenTSDB telnet lines and JSON data points.
//!
//! Telnet: `[put] metric timestamp value tagk=tagv ...`, separated by spaces. The value is
//! typed like an influx field value (plain numbers are DOUBLE). Tags are NCHAR.
//!
//! JSON: an object `{"metric":..,"timestamp":..,"value":..,"tags":{..}}` or an array of them.
//! `value` and tag values: number → DOUBLE, bool → BOOL, string → VARCHAR for the value and
//! NCHAR for tags, or `{"value":..,"type":"bool|tinyint|smallint|int|bigint|tinyint unsigned|
//! ..|float|double|binary|varchar|nchar|varbinary|geometry"}`.
//!
//! Timestamps come out in nanoseconds. Their unit is inferred from the digit count: 10 s, 13 ms,
//! 16 us, 19 ns; 0 means now. JSON also takes `{"value":N,"type":"s|ms|us|ns"}`.

use super::{influx, FieldValue, ParseError, Point, SML_INVALID_PRECISION, VALUE_COLUMN};
use serde_json::Value as Json;
use std::borrow::Cow;

/// Nanoseconds for a timestamp whose unit is given by its digit count; `Ok(None)` for 0 (now).
pub fn infer_ts(ts: i64, line: usize) -> Result<Option<i64>, ParseError> {
    if ts == 0 {
        return Ok(None);
    }
    if ts < 0 {
        return Err(ParseError::new(line, format!("negative timestamp {ts}")));
    }
    let digits = ts.ilog10() + 1;
    let mul = match digits {
        10 => 1_000_000_000,
        13 => 1_000_000,
        16 => 1_000,
        19 => 1,
        _ => {
            return Err(ParseError {
                line,
                code: SML_INVALID_PRECISION,
                message: format!(
                "timestamp {ts} has {digits} digits: expected 10 (s), 13 (ms), 16 (us) or 19 (ns)"
            ),
            })
        }
    };
    ts.checked_mul(mul)
        .map(Some)
        .ok_or_else(|| ParseError::new(line, format!("timestamp {ts} out of range")))
}

/// Telnet lines of a body; blank lines and `#` comments are skipped.
pub fn parse_telnet(body: &[u8]) -> impl Iterator<Item = Result<Point<'_>, ParseError>> {
    body.split(|&c| c == b'\n')
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let s = match std::str::from_utf8(raw) {
                Ok(s) => s.trim(),
                Err(e) => {
                    return Some(Err(ParseError::new(
                        line,
                        format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    )))
                }
            };
            if s.is_empty() || s.starts_with('#') {
                return None;
            }
            Some(parse_telnet_line(s, line))
        })
}

/// One telnet line (trimmed, non-empty).
pub fn parse_telnet_line(s: &str, line: usize) -> Result<Point<'_>, ParseError> {
    let mut parts = s.split(' ').filter(|p| !p.is_empty());
    let mut metric = parts.next().unwrap_or("");
    if metric == "put" {
        metric = parts.next().unwrap_or("");
    }
    if metric.is_empty() {
        return Err(ParseError::new(line, "missing metric"));
    }
    let ts = parts
        .next()
        .ok_or_else(|| ParseError::new(line, "missing timestamp"))?;
    let ts: i64 = ts
        .parse()
        .map_err(|_| ParseError::new(line, format!("invalid timestamp '{ts}'")))?;
    let timestamp = infer_ts(ts, line)?;
    let value = parts
        .next()
        .ok_or_else(|| ParseError::new(line, "missing value"))?;
    let value =
        influx::parse_value(value).map_err(|m| ParseError::new(line, format!("value: {m}")))?;
    let mut tags = Vec::new();
    for kv in parts {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ParseError::new(line, format!("tag '{kv}' without '='")))?;
        if k.is_empty() || v.is_empty() {
            return Err(ParseError::new(
                line,
                format!("empty key or value in tag '{kv}'"),
            ));
        }
        tags.push((Cow::Borrowed(k), FieldValue::NChar(Cow::Borrowed(v))));
    }
    Ok(Point {
        line,
        measurement: Cow::Borrowed(metric),
        tags,
        fields: vec![(Cow::Borrowed(VALUE_COLUMN), value)],
        timestamp,
    })
}

/// The data points of a JSON body; "line" numbers are 1-based indexes into the array.
pub fn parse_json(body: &[u8]) -> Result<Vec<Point<'static>>, ParseError> {
    let doc: Json = serde_json::from_slice(body)
        .map_err(|e| ParseError::new(e.line(), format!("invalid JSON: {e}")))?;
    match doc {
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, o)| json_point(o, i + 1))
            .collect(),
        o @ Json::Object(_) => Ok(vec![json_point(&o, 1)?]),
        _ => Err(ParseError::new(
            1,
            "expected a JSON object or an array of objects",
        )),
    }
}

fn json_point(o: &Json, line: usize) -> Result<Point<'static>, ParseError> {
    let err = |m: String| ParseError::new(line, m);
    let o = o
        .as_object()
        .ok_or_else(|| err("data point is not a JSON object".into()))?;
    let metric = match o.get("metric") {
        Some(Json::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(err("missing or invalid \"metric\"".into())),
    };
    let timestamp = match o.get("timestamp") {
        Some(Json::Number(n)) => {
            let t = n
                .as_i64()
                .ok_or_else(|| err(format!("invalid timestamp {n}")))?;
            infer_ts(t, line)?
        }
        Some(Json::Object(t)) => {
            let v = t
                .get("value")
                .and_then(Json::as_i64)
                .ok_or_else(|| err("invalid timestamp value".into()))?;
            let unit = t.get("type").and_then(Json::as_str).unwrap_or("");
            let mul: i64 = match unit.to_ascii_lowercase().as_str() {
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" => 1_000,
                "ns" => 1,
                _ => {
                    return Err(ParseError {
                        line,
                        code: SML_INVALID_PRECISION,
                        message: format!("invalid timestamp type '{unit}'"),
                    })
                }
            };
            if v == 0 {
                None
            } else {
                Some(
                    v.checked_mul(mul)
                        .ok_or_else(|| err(format!("timestamp {v} out of range")))?,
                )
            }
        }
        _ => return Err(err("missing or invalid \"timestamp\"".into())),
    };
    let value = json_value(
        o.get("value")
            .ok_or_else(|| err("missing \"value\"".into()))?,
        false,
    )
    .map_err(|m| err(format!("value: {m}")))?;
    let mut tags = Vec::new();
    match o.get("tags") {
        Some(Json::Object(t)) => {
            for (k, v) in t {
                let v = json_value(v, true).map_err(|m| err(format!("tag {k}: {m}")))?;
                tags.push((Cow::Owned(k.clone()), v));
            }
        }
        None | Some(Json::Null) => {}
        Some(_) => return Err(err("\"tags\" is not an object".into())),
    }
    Ok(Point {
        line,
        measurement: Cow::Owned(metric),
        tags,
        fields: vec![(Cow::Borrowed(VALUE_COLUMN), value)],
        timestamp,
    })
}

fn json_value(v: &Json, tag: bool) -> Result<FieldValue<'static>, String> {
    match v {
        Json::Number(n) => n
            .as_f64()
            .map(FieldValue::Double)
            .ok_or_else(|| format!("invalid number {n}")),
        Json::Bool(b) => Ok(FieldValue::Bool(*b)),
        Json::String(s) if tag => Ok(FieldValue::NChar(Cow::Owned(s.clone()))),
        Json::String(s) => Ok(FieldValue::VarChar(Cow::Owned(s.clone()))),
        Json::Object(o) => {
            let ty = o
                .get("type")
                .and_then(Json::as_str)
                .ok_or("missing \"type\"")?;
            let v = o.get("value").ok_or("missing \"value\"")?;
            typed(v, &ty.to_ascii_lowercase())
        }
        _ => Err(format!("unsupported value {v}")),
    }
}

/// `{"value": v, "type": ty}`.
fn typed(v: &Json, ty: &str) -> Result<FieldValue<'static>, String> {
    let int = || -> Result<i128, String> {
        match v {
            Json::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                        .map(|f| f as i128)
                })
                .ok_or_else(|| format!("{n} is not an integer")),
            Json::Bool(b) => Ok(*b as i128),
            other => Err(format!("{other} is not a number")),
        }
    };
    macro_rules! int {
        ($t:ty, $var:ident) => {{
            let i = int()?;
            <$t>::try_from(i)
                .map(FieldValue::$var)
                .map_err(|_| format!("{i} out of range for {ty}"))
        }};
    }
    let text = || -> Result<String, String> {
        match v {
            Json::String(s) => Ok(s.clone()),
            other => Err(format!("{other} is not a string")),
        }
    };
    let float =
        || -> Result<f64, String> { v.as_f64().ok_or_else(|| format!("{v} is not a number")) };
    match ty {
        "bool" => match v {
            Json::Bool(b) => Ok(FieldValue::Bool(*b)),
            other => Err(format!("{other} is not a bool")),
        },
        "tinyint" => int!(i8, TinyInt),
        "smallint" => int!(i16, SmallInt),
        "int" => int!(i32, Int),
        "bigint" => int!(i64, BigInt),
        "tinyint unsigned" | "utinyint" => int!(u8, UTinyInt),
        "smallint unsigned" | "usmallint" => int!(u16, USmallInt),
        "int unsigned" | "uint" => int!(u32, UInt),
        "bigint unsigned" | "ubigint" => int!(u64, UBigInt),
        "float" => {
            let f = float()?;
            if f.is_finite() && f.abs() > f32::MAX as f64 {
                return Err(format!("{f} out of range for float"));
            }
            Ok(FieldValue::Float(f as f32))
        }
        "double" => Ok(FieldValue::Double(float()?)),
        "binary" | "varchar" => Ok(FieldValue::VarChar(Cow::Owned(text()?))),
        "nchar" => Ok(FieldValue::NChar(Cow::Owned(text()?))),
        "varbinary" => Ok(FieldValue::VarBinary(Cow::Owned(text()?.into_bytes()))),
        "geometry" => Ok(FieldValue::Geometry(Cow::Owned(text()?))),
        other => Err(format!("unknown type '{other}'")),
    }
}
