//! JSON encoding of REST results, written straight into byte buffers so a large result set can
//! be streamed block by block without building a `serde_json::Value` tree (PROTOCOLS.md §2.3,
//! §2.5).

use common::{DataType, Field, Precision, SessionTz, Value};

/// Length reported in `column_meta` (§1.3): what users declared, not the storage width.
pub fn meta_length(ty: DataType) -> u32 {
    match ty {
        DataType::Json => 4095,
        t => t.bytes(),
    }
}

/// `[["ts","TIMESTAMP",8],...]`
pub fn write_column_meta(out: &mut Vec<u8>, fields: &[Field]) {
    out.push(b'[');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_str(out, &f.name);
        out.push(b',');
        write_str(out, f.ty.name());
        out.push(b',');
        out.extend_from_slice(meta_length(f.ty).to_string().as_bytes());
        out.push(b']');
    }
    out.push(b']');
}

/// A JSON string. Only `"`, `\` and control characters are escaped, as the real adapter does;
/// everything else (including non-ASCII) is copied.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Go's `encoding/json` float rule: shortest text that reads back as the same value at its
/// width, plain decimal unless |v| < 1e-6 or ≥ 1e21; NaN and infinities become `null`.
pub fn format_float(v: f64, as_f32: bool) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let abs = v.abs();
    let exp = abs != 0.0 && (abs < 1e-6 || abs >= 1e21);
    let s = match (as_f32, exp) {
        (true, false) => format!("{}", v as f32),
        (true, true) => format!("{:e}", v as f32),
        (false, false) => format!("{v}"),
        (false, true) => format!("{v:e}"),
    };
    if exp && !s.contains("e-") {
        // Rust writes 1e21, Go 1e+21.
        return Some(s.replacen('e', "e+", 1));
    }
    Some(s)
}

fn write_hex(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for x in b {
        out.push(HEX[(x >> 4) as usize]);
        out.push(HEX[(x & 15) as usize]);
    }
    out.push(b'"');
}

fn write_display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{v}");
}

/// One cell. Timestamps become RFC 3339 strings in `tz` with 3/6/9 fraction digits.
pub fn write_value(out: &mut Vec<u8>, v: &Value, precision: Precision, tz: SessionTz) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::TinyInt(x) => write_display(out, x),
        Value::SmallInt(x) => write_display(out, x),
        Value::Int(x) => write_display(out, x),
        Value::BigInt(x) => write_display(out, x),
        Value::UTinyInt(x) => write_display(out, x),
        Value::USmallInt(x) => write_display(out, x),
        Value::UInt(x) => write_display(out, x),
        Value::UBigInt(x) => write_display(out, x),
        Value::Float(f) => match format_float(*f as f64, true) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => out.extend_from_slice(b"null"),
        },
        Value::Double(f) => match format_float(*f, false) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => out.extend_from_slice(b"null"),
        },
        Value::Timestamp(t) => write_str(out, &common::time::format_rfc3339(*t, precision, tz)),
        Value::VarChar(s) | Value::NChar(s) => write_str(out, s),
        Value::Json(s) => write_json_text(out, s),
        Value::VarBinary(b) | Value::Geometry(b) => write_hex(out, b),
    }
}

/// A JSON tag is embedded as JSON, not as a string holding JSON. Text that is not valid JSON
/// (it should not happen) is sent as a string rather than breaking the whole response.
fn write_json_text(out: &mut Vec<u8>, s: &str) {
    let t = s.trim();
    if t.is_empty() {
        out.extend_from_slice(b"null");
    } else if serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok() {
        out.extend_from_slice(t.as_bytes());
    } else {
        write_str(out, s);
    }
}

/// Rows of one block, each preceded by a comma unless it is the very first row of the result.
/// `first` is updated; `max_rows` caps how many are written. Returns rows written.
#[allow(clippy::too_many_arguments)]
pub fn write_rows(
    out: &mut Vec<u8>,
    block: &common::Block,
    fields: &[Field],
    with_meta: bool,
    precision: Precision,
    tz: SessionTz,
    first: &mut bool,
    max_rows: usize,
) -> usize {
    let n = block.rows.min(max_rows);
    for r in 0..n {
        if !*first {
            out.push(b',');
        }
        *first = false;
        out.push(if with_meta { b'{' } else { b'[' });
        for (c, col) in block.columns.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            if with_meta {
                let name = fields.get(c).map(|f| f.name.as_str()).unwrap_or("");
                write_str(out, name);
                out.push(b':');
            }
            match col.values.get(r) {
                Some(v) => write_value(out, v, precision, tz),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(if with_meta { b'}' } else { b']' });
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{Block, Field};

    fn enc(v: Value) -> String {
        enc_p(v, Precision::Ms)
    }

    fn enc_p(v: Value, p: Precision) -> String {
        let mut out = Vec::new();
        write_value(&mut out, &v, p, SessionTz::Utc);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_type() {
        assert_eq!(enc(Value::Null), "null");
        assert_eq!(enc(Value::Bool(true)), "true");
        assert_eq!(enc(Value::Bool(false)), "false");
        assert_eq!(enc(Value::TinyInt(-128)), "-128");
        assert_eq!(enc(Value::SmallInt(-32768)), "-32768");
        assert_eq!(enc(Value::Int(i32::MIN)), "-2147483648");
        assert_eq!(enc(Value::BigInt(i64::MIN)), "-9223372036854775808");
        assert_eq!(enc(Value::UTinyInt(255)), "255");
        assert_eq!(enc(Value::USmallInt(65535)), "65535");
        assert_eq!(enc(Value::UInt(u32::MAX)), "4294967295");
        assert_eq!(enc(Value::UBigInt(u64::MAX)), "18446744073709551615");
        assert_eq!(enc(Value::Float(10.3)), "10.3");
        assert_eq!(enc(Value::Double(10.3)), "10.3");
        assert_eq!(
            enc(Value::VarChar("a\"b\\c\n\u{1}é".into())),
            r#""a\"b\\c\n\u0001é""#
        );
        assert_eq!(enc(Value::NChar("北京".into())), "\"北京\"");
        assert_eq!(
            enc(Value::Json(r#"{"table":"t1"}"#.into())),
            r#"{"table":"t1"}"#
        );
        assert_eq!(enc(Value::Json(r#""t1""#.into())), r#""t1""#);
        assert_eq!(enc(Value::Json(String::new())), "null");
        assert_eq!(enc(Value::Json("not json".into())), "\"not json\"");
        assert_eq!(enc(Value::VarBinary(vec![0x7f, 0x82, 0x90])), "\"7f8290\"");
        let point = common::value::wkt_to_wkb("point(100 100)").unwrap();
        assert_eq!(
            enc(Value::Geometry(point)),
            "\"010100000000000000000059400000000000005940\""
        );
    }

    #[test]
    fn timestamps_by_precision_and_zone() {
        let ms = 1_500_000_000_123i64;
        assert_eq!(
            enc_p(Value::Timestamp(ms), Precision::Ms),
            "\"2017-07-14T02:40:00.123Z\""
        );
        assert_eq!(
            enc_p(Value::Timestamp(ms * 1000 + 456), Precision::Us),
            "\"2017-07-14T02:40:00.123456Z\""
        );
        assert_eq!(
            enc_p(Value::Timestamp(ms * 1_000_000 + 456_789), Precision::Ns),
            "\"2017-07-14T02:40:00.123456789Z\""
        );
        let mut out = Vec::new();
        let tz = SessionTz::parse("Asia/Shanghai").unwrap();
        write_value(&mut out, &Value::Timestamp(ms), Precision::Ms, tz);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2017-07-14T10:40:00.123+08:00\""
        );
        assert_eq!(enc(Value::Timestamp(-1)), "\"1969-12-31T23:59:59.999Z\"");
    }

    #[test]
    fn floats_like_go() {
        let f = |v: f32| format_float(v as f64, true).unwrap();
        let d = |v: f64| format_float(v, false).unwrap();
        assert_eq!(f(10.3), "10.3");
        assert_eq!(f(-2.498076), "-2.498076");
        assert_eq!(f(10.0), "10");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1.5e21), "1.5e+21");
        assert_eq!(f(3.4028235e38), "3.4028235e+38");
        assert_eq!(f(123456.79), "123456.79");
        assert_eq!(d(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(d(1e20), "100000000000000000000");
        assert_eq!(d(1e21), "1e+21");
        assert_eq!(d(1.2345e-7), "1.2345e-7");
        assert_eq!(format_float(f64::NAN, false), None);
        assert_eq!(enc(Value::Float(f32::INFINITY)), "null");
    }

    #[test]
    fn meta_and_rows() {
        let fields = vec![
            Field::new("ts", DataType::Timestamp),
            Field::new("name", DataType::NChar(10)),
            Field::new("j", DataType::Json),
            Field::new("u", DataType::UBigInt),
            Field::new("b", DataType::VarBinary(20)),
        ];
        let mut out = Vec::new();
        write_column_meta(&mut out, &fields);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[["ts","TIMESTAMP",8],["name","NCHAR",10],["j","JSON",4095],["u","BIGINT UNSIGNED",8],["b","VARBINARY",20]]"#
        );
        let block = Block::from_rows(
            2,
            vec![
                vec![Value::Timestamp(0), Value::NChar("a".into())],
                vec![Value::Timestamp(1), Value::Null],
            ],
        );
        let two = &fields[..2];
        let mut out = Vec::new();
        let mut first = true;
        let n = write_rows(
            &mut out,
            &block,
            two,
            false,
            Precision::Ms,
            SessionTz::Utc,
            &mut first,
            usize::MAX,
        );
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"["1970-01-01T00:00:00.000Z","a"],["1970-01-01T00:00:00.001Z",null]"#
        );
        let mut out = Vec::new();
        let mut first = false;
        let n = write_rows(
            &mut out,
            &block,
            two,
            true,
            Precision::Ms,
            SessionTz::Utc,
            &mut first,
            1,
        );
        assert_eq!(n, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#",{"ts":"1970-01-01T00:00:00.000Z","name":"a"}"#
        );
    }
}
