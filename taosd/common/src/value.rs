//! A single typed value: what INSERT literals become, what tags hold, what result cells carry.

use crate::error::{Code, TaosError, TaosResult};
use crate::types::DataType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    TinyInt(i8),
    SmallInt(i16),
    Int(i32),
    BigInt(i64),
    UTinyInt(u8),
    USmallInt(u16),
    UInt(u32),
    UBigInt(u64),
    Float(f32),
    Double(f64),
    /// Epoch in the precision of its database.
    Timestamp(i64),
    /// VARCHAR / BINARY bytes (UTF-8 in practice).
    VarChar(String),
    NChar(String),
    Json(String),
    VarBinary(Vec<u8>),
    Geometry(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            Value::Bool(b) => b as i64,
            Value::TinyInt(v) => v as i64,
            Value::SmallInt(v) => v as i64,
            Value::Int(v) => v as i64,
            Value::BigInt(v) => v,
            Value::UTinyInt(v) => v as i64,
            Value::USmallInt(v) => v as i64,
            Value::UInt(v) => v as i64,
            Value::UBigInt(v) => v as i64,
            Value::Float(v) => v as i64,
            Value::Double(v) => v as i64,
            Value::Timestamp(v) => v,
            _ => return None,
        })
    }

    pub fn as_f64(&self) -> Option<f64> {
        Some(match *self {
            Value::Float(v) => v as f64,
            Value::Double(v) => v,
            Value::UBigInt(v) => v as f64,
            _ => self.as_i64()? as f64,
        })
    }

    /// Check that the value fits a column of type `ty` and convert it; `what` names the column
    /// for the error message.
    pub fn coerce(self, ty: DataType, what: &str) -> TaosResult<Value> {
        fn range(what: &str, v: &dyn std::fmt::Display, ty: DataType) -> TaosError {
            TaosError::new(
                Code::PAR_WRONG_VALUE_TYPE,
                format!(
                    "Invalid value: {v} out of range for {} column {what}",
                    ty.name()
                ),
            )
        }
        fn int_of(v: &Value, ty: DataType, what: &str) -> TaosResult<i128> {
            match v {
                Value::Double(_) | Value::Float(_) => {
                    let f = v.as_f64().unwrap_or(f64::NAN);
                    if f.is_finite() {
                        Ok(f.trunc() as i128)
                    } else {
                        Err(range(what, &f, ty))
                    }
                }
                Value::UBigInt(u) => Ok(*u as i128),
                Value::VarChar(s) | Value::NChar(s) => {
                    let t = s.trim();
                    if let Ok(i) = t.parse::<i128>() {
                        Ok(i)
                    } else if let Ok(f) = t.parse::<f64>() {
                        Ok(f.trunc() as i128)
                    } else if t.eq_ignore_ascii_case("true") {
                        Ok(1)
                    } else if t.eq_ignore_ascii_case("false") {
                        Ok(0)
                    } else {
                        Err(TaosError::new(
                            Code::PAR_WRONG_VALUE_TYPE,
                            format!("Invalid value '{s}' for {} column {what}", ty.name()),
                        ))
                    }
                }
                other => other.as_i64().map(|i| i as i128).ok_or_else(|| {
                    TaosError::new(
                        Code::PAR_WRONG_VALUE_TYPE,
                        format!("Invalid value for {} column {what}", ty.name()),
                    )
                }),
            }
        }
        if self.is_null() {
            return Ok(Value::Null);
        }
        macro_rules! int {
            ($variant:ident, $t:ty) => {{
                let i = int_of(&self, ty, what)?;
                <$t>::try_from(i)
                    .map(Value::$variant)
                    .map_err(|_| range(what, &i, ty))
            }};
        }
        let var_len = |len: usize, max: u32| -> TaosResult<()> {
            if len > max as usize {
                Err(TaosError::new(
                    Code::PAR_VALUE_TOO_LONG,
                    format!("Value too long for column/tag: {what} (length {len} > {max})"),
                ))
            } else {
                Ok(())
            }
        };
        match ty {
            DataType::Null => Ok(Value::Null),
            DataType::Bool => match &self {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::VarChar(s) | Value::NChar(s) => match s.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    t => match t.parse::<f64>() {
                        Ok(f) => Ok(Value::Bool(f != 0.0)),
                        Err(_) => Err(TaosError::new(
                            Code::PAR_WRONG_VALUE_TYPE,
                            format!("Invalid bool value '{s}' for column {what}"),
                        )),
                    },
                },
                v => v.as_f64().map(|f| Value::Bool(f != 0.0)).ok_or_else(|| {
                    TaosError::new(
                        Code::PAR_WRONG_VALUE_TYPE,
                        format!("Invalid bool value for {what}"),
                    )
                }),
            },
            DataType::TinyInt => int!(TinyInt, i8),
            DataType::SmallInt => int!(SmallInt, i16),
            DataType::Int => int!(Int, i32),
            DataType::BigInt => int!(BigInt, i64),
            DataType::UTinyInt => int!(UTinyInt, u8),
            DataType::USmallInt => int!(USmallInt, u16),
            DataType::UInt => int!(UInt, u32),
            DataType::UBigInt => int!(UBigInt, u64),
            DataType::Timestamp => int!(Timestamp, i64),
            DataType::Float | DataType::Double => {
                let f = match &self {
                    Value::VarChar(s) | Value::NChar(s) => {
                        s.trim().parse::<f64>().map_err(|_| {
                            TaosError::new(
                                Code::PAR_WRONG_VALUE_TYPE,
                                format!("Invalid value '{s}' for column {what}"),
                            )
                        })?
                    }
                    v => v.as_f64().ok_or_else(|| {
                        TaosError::new(
                            Code::PAR_WRONG_VALUE_TYPE,
                            format!("Invalid value for {} column {what}", ty.name()),
                        )
                    })?,
                };
                if ty == DataType::Float {
                    if f.is_finite() && f.abs() > f32::MAX as f64 {
                        return Err(range(what, &f, ty));
                    }
                    Ok(Value::Float(f as f32))
                } else {
                    Ok(Value::Double(f))
                }
            }
            DataType::VarChar(n) => {
                let s = self.into_text(what)?;
                var_len(s.len(), n)?;
                Ok(Value::VarChar(s))
            }
            DataType::NChar(n) => {
                let s = self.into_text(what)?;
                var_len(s.chars().count(), n)?;
                Ok(Value::NChar(s))
            }
            DataType::Json => {
                let s = self.into_text(what)?;
                var_len(s.len(), crate::types::MAX_JSON_TAG_LEN)?;
                Ok(Value::Json(s))
            }
            DataType::VarBinary(n) => {
                let b = match self {
                    Value::VarChar(s) | Value::NChar(s) => parse_hex_literal(&s),
                    Value::VarBinary(b) => b,
                    other => other.into_text(what)?.into_bytes(),
                };
                var_len(b.len(), n)?;
                Ok(Value::VarBinary(b))
            }
            DataType::Geometry(n) => {
                let b = match self {
                    Value::Geometry(b) | Value::VarBinary(b) => b,
                    Value::VarChar(s) | Value::NChar(s) => crate::value::wkt_to_wkb(&s)
                        .ok_or_else(|| {
                            TaosError::new(
                                Code::PAR_WRONG_VALUE_TYPE,
                                format!("Invalid geometry value '{s}' for {what}"),
                            )
                        })?,
                    _ => {
                        return Err(TaosError::new(
                            Code::PAR_WRONG_VALUE_TYPE,
                            format!("Invalid geometry value for {what}"),
                        ))
                    }
                };
                var_len(b.len(), n)?;
                Ok(Value::Geometry(b))
            }
        }
    }

    fn into_text(self, what: &str) -> TaosResult<String> {
        Ok(match self {
            Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Double(f) => f.to_string(),
            Value::VarBinary(_) | Value::Geometry(_) => {
                return Err(TaosError::new(
                    Code::PAR_WRONG_VALUE_TYPE,
                    format!("Invalid value for {what}"),
                ))
            }
            v => v.as_i64().map(|i| i.to_string()).unwrap_or_default(),
        })
    }

    /// Plain text rendering (CLI, SHOW output). Timestamps are rendered by the caller, who
    /// knows precision and time zone.
    pub fn render(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => b.to_string(),
            Value::TinyInt(v) => v.to_string(),
            Value::SmallInt(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::BigInt(v) => v.to_string(),
            Value::UTinyInt(v) => v.to_string(),
            Value::USmallInt(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::UBigInt(v) => v.to_string(),
            Value::Float(v) => format_float(*v as f64, 7),
            Value::Double(v) => format_float(*v, 15),
            Value::Timestamp(v) => v.to_string(),
            Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => s.clone(),
            Value::VarBinary(b) | Value::Geometry(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for x in b {
                    s.push_str(&format!("{x:02X}"));
                }
                s
            }
        }
    }
}

/// Shortest rendering with at most `digits` significant digits, like TDengine's %.*g.
fn format_float(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -5 || exp >= digits as i32 {
        let s = format!("{:.*e}", digits.saturating_sub(1), v);
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// `'\x0a1b'` style VARBINARY literal; anything else is taken as its bytes.
pub fn parse_hex_literal(s: &str) -> Vec<u8> {
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        if hex.len() % 2 == 0 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
        }
    }
    s.as_bytes().to_vec()
}

/// WKT (`POINT(1 2)`, `LINESTRING(...)`, `POLYGON((...))`) to little-endian WKB.
pub fn wkt_to_wkb(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let open = s.find('(')?;
    let kind = s[..open].trim().to_ascii_uppercase();
    let body = s[open..].trim();
    let coords = |t: &str| -> Option<Vec<(f64, f64)>> {
        t.split(',')
            .map(|p| {
                let mut it = p.split_whitespace();
                let x = it.next()?.parse().ok()?;
                let y = it.next()?.parse().ok()?;
                if it.next().is_some() {
                    return None;
                }
                Some((x, y))
            })
            .collect()
    };
    let inner = body.strip_prefix('(')?.strip_suffix(')')?;
    let mut out = vec![1u8];
    let push_pts = |out: &mut Vec<u8>, pts: &[(f64, f64)]| {
        for (x, y) in pts {
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
    };
    match kind.as_str() {
        "POINT" => {
            let p = coords(inner)?;
            if p.len() != 1 {
                return None;
            }
            out.extend_from_slice(&1u32.to_le_bytes());
            push_pts(&mut out, &p);
        }
        "LINESTRING" => {
            let p = coords(inner)?;
            out.extend_from_slice(&2u32.to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            push_pts(&mut out, &p);
        }
        "POLYGON" => {
            out.extend_from_slice(&3u32.to_le_bytes());
            let rings: Vec<&str> = inner
                .split(')')
                .map(|r| r.trim().trim_start_matches(',').trim())
                .filter(|r| !r.is_empty())
                .collect();
            out.extend_from_slice(&(rings.len() as u32).to_le_bytes());
            for r in rings {
                let p = coords(r.strip_prefix('(')?)?;
                out.extend_from_slice(&(p.len() as u32).to_le_bytes());
                push_pts(&mut out, &p);
            }
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coerce_checks_ranges_and_lengths() {
        assert_eq!(
            Value::BigInt(127).coerce(DataType::TinyInt, "c").unwrap(),
            Value::TinyInt(127)
        );
        assert!(Value::BigInt(128).coerce(DataType::TinyInt, "c").is_err());
        assert!(Value::BigInt(-1).coerce(DataType::UInt, "c").is_err());
        let e = Value::VarChar("abcdef".into())
            .coerce(DataType::VarChar(3), "name")
            .unwrap_err();
        assert_eq!(e.short_code(), 0x2653);
        assert!(e.message.contains("name"));
        assert_eq!(
            Value::VarChar("\\x0aff".into())
                .coerce(DataType::VarBinary(8), "b")
                .unwrap(),
            Value::VarBinary(vec![10, 255])
        );
        assert_eq!(
            Value::Double(1.5).coerce(DataType::Float, "f").unwrap(),
            Value::Float(1.5)
        );
        assert_eq!(wkt_to_wkb("POINT(1 2)").unwrap().len(), 21);
    }

    #[test]
    fn float_rendering() {
        assert_eq!(Value::Float(10.3).render(), "10.3");
        assert_eq!(Value::Double(0.1 + 0.2).render(), "0.3");
        assert_eq!(Value::Double(1e20).render(), "1e+20");
    }
}
