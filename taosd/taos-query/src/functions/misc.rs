//! Scalars TDengine has that DataFusion 55 (with this crate's features) lacks or spells with
//! different semantics: TO_JSON, CRC32, MOD, SIGN, RAND([seed]), CHAR, ASCII, CONCAT,
//! CONCAT_WS, MD5, SHA1/SHA, TO_BASE64, FROM_BASE64.

use super::{n_args, valid, Env, Udf};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, UInt32Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::Volatility;
use std::sync::Arc;

pub(super) fn functions(env: Env) -> Vec<Udf> {
    vec![
        Udf::new("to_json", env, ret_utf8, eval_to_json),
        Udf::new("crc32", env, ret_crc32, eval_crc32),
        Udf::new("mod", env, ret_mod, eval_mod),
        Udf::new("sign", env, ret_sign, eval_sign),
        Udf::new("rand", env, ret_rand, eval_rand).nullary_ok(Volatility::Volatile),
        Udf::new("char", env, ret_utf8_any, eval_char),
        Udf::new("ascii", env, ret_ascii, eval_ascii),
        Udf::new("concat", env, ret_concat, eval_concat),
        Udf::new("concat_ws", env, ret_concat_ws, eval_concat_ws),
        Udf::new("md5", env, ret_utf8, eval_md5),
        Udf::new("sha1", env, ret_utf8, eval_sha1),
        Udf::new("sha", env, ret_utf8, eval_sha1),
        Udf::new("to_base64", env, ret_utf8, eval_to_base64),
        Udf::new("from_base64", env, ret_utf8, eval_from_base64),
    ]
}

fn ret_utf8(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("function", t, 1, 1)?;
    Ok(DataType::Utf8)
}

fn ret_utf8_any(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("char", t, 1, usize::MAX)?;
    Ok(DataType::Utf8)
}

/// An argument as strings (numbers in their usual decimal spelling; timestamps as integers).
fn strings(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    if a.data_type() == &DataType::Null {
        return Ok(vec![None; a.len()]);
    }
    let a = match a.data_type() {
        DataType::Timestamp(..) => cast(a, &DataType::Int64)?,
        _ => a.clone(),
    };
    let s = cast(&a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok((0..s.len())
        .map(|i| {
            if s.is_valid(i) {
                Some(s.value(i).to_string())
            } else {
                None
            }
        })
        .collect())
}

/// An argument as bytes (VARBINARY as is, everything else as its string).
fn bytes(a: &ArrayRef) -> Result<Vec<Option<Vec<u8>>>> {
    match a.data_type() {
        DataType::Binary => {
            let b = a.as_binary::<i32>();
            Ok((0..b.len())
                .map(|i| {
                    if b.is_valid(i) {
                        Some(b.value(i).to_vec())
                    } else {
                        None
                    }
                })
                .collect())
        }
        _ => Ok(strings(a)?
            .into_iter()
            .map(|s| s.map(String::into_bytes))
            .collect()),
    }
}

fn floats(a: &ArrayRef) -> Result<Vec<Option<f64>>> {
    let f = cast(a, &DataType::Float64)?;
    let f = f.as_primitive::<Float64Type>();
    Ok((0..f.len())
        .map(|i| if valid(f, i) { Some(f.value(i)) } else { None })
        .collect())
}

fn utf8_out(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

// TO_JSON(str) -> the JSON text (validated).
fn eval_to_json(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    let mut out = Vec::with_capacity(a[0].len());
    for s in strings(&a[0])? {
        match s {
            Some(s) => {
                let t = s.trim();
                if !json_ok(t) || !t.starts_with('{') {
                    return exec_err!("Invalid json format : {s}");
                }
                out.push(Some(t.to_string()));
            }
            None => out.push(None),
        }
    }
    Ok(utf8_out(out))
}

/// A small JSON syntax check.
fn json_ok(s: &str) -> bool {
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(b: &[u8], i: &mut usize, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        ws(b, i);
        match b.get(*i) {
            Some(b'{') | Some(b'[') => {
                let close = if b[*i] == b'{' { b'}' } else { b']' };
                let obj = close == b'}';
                *i += 1;
                ws(b, i);
                if b.get(*i) == Some(&close) {
                    *i += 1;
                    return true;
                }
                loop {
                    if obj {
                        ws(b, i);
                        if b.get(*i) != Some(&b'"') || !string(b, i) {
                            return false;
                        }
                        ws(b, i);
                        if b.get(*i) != Some(&b':') {
                            return false;
                        }
                        *i += 1;
                    }
                    if !value(b, i, depth + 1) {
                        return false;
                    }
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(c) if *c == close => {
                            *i += 1;
                            return true;
                        }
                        _ => return false,
                    }
                }
            }
            Some(b'"') => string(b, i),
            Some(b't') => lit(b, i, b"true"),
            Some(b'f') => lit(b, i, b"false"),
            Some(b'n') => lit(b, i, b"null"),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = *i;
                while *i < b.len()
                    && matches!(b[*i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    *i += 1;
                }
                std::str::from_utf8(&b[start..*i])
                    .ok()
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some()
            }
            _ => false,
        }
    }
    fn string(b: &[u8], i: &mut usize) -> bool {
        *i += 1;
        while *i < b.len() {
            match b[*i] {
                b'\\' => *i += 2,
                b'"' => {
                    *i += 1;
                    return true;
                }
                _ => *i += 1,
            }
        }
        false
    }
    fn lit(b: &[u8], i: &mut usize, w: &[u8]) -> bool {
        if b[*i..].starts_with(w) {
            *i += w.len();
            true
        } else {
            false
        }
    }
    let b = s.as_bytes();
    let mut i = 0;
    if !value(b, &mut i, 0) {
        return false;
    }
    ws(b, &mut i);
    i == b.len()
}

// CRC32(expr) -> INT UNSIGNED; non-strings are hashed as their string.
fn ret_crc32(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("crc32", t, 1, 1)?;
    Ok(DataType::UInt32)
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (!(crc & 1)).wrapping_add(1);
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn eval_crc32(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    let out: Vec<Option<u32>> = bytes(&a[0])?
        .into_iter()
        .map(|b| b.map(|b| crc32(&b)))
        .collect();
    Ok(Arc::new(UInt32Array::from(out)))
}

// MOD(a, b) -> DOUBLE, NULL when b is 0.
fn ret_mod(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("mod", t, 2, 2)?;
    Ok(DataType::Float64)
}

fn eval_mod(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    let (x, y) = (floats(&a[0])?, floats(&a[1])?);
    let out: Vec<Option<f64>> = x
        .into_iter()
        .zip(y)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if y != 0.0 => Some(x % y),
            _ => None,
        })
        .collect();
    Ok(Arc::new(Float64Array::from(out)))
}

// SIGN(x) -> -1/0/1 in x's type.
fn ret_sign(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("sign", t, 1, 1)?;
    match &t[0] {
        t if t.is_numeric() => Ok(t.clone()),
        DataType::Null => Ok(DataType::Int64),
        other => plan_err!("Invalid parameter data type : sign({other})"),
    }
}

fn eval_sign(_: &Env, a: &[ArrayRef], _: usize, ret: &DataType) -> Result<ArrayRef> {
    let out: Vec<Option<f64>> = floats(&a[0])?
        .into_iter()
        .map(|v| {
            v.map(|v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            })
        })
        .collect();
    let arr: ArrayRef = Arc::new(Float64Array::from(out));
    Ok(cast(&arr, ret)?)
}

// RAND([seed]) -> DOUBLE in [0, 1). With a seed the sequence is TDengine's (Park-Miller
// "minimal standard" generator: rand(1) = 16807 / (2^31 - 1)), restarted for each batch.
fn ret_rand(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("rand", t, 0, 1)?;
    Ok(DataType::Float64)
}

const RAND_MAX: i64 = 2_147_483_647;

fn eval_rand(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let seed = match a.first() {
        Some(s) => {
            let s = cast(s, &DataType::Int64)?;
            let s = s.as_primitive::<Int64Type>();
            if s.is_empty() || !valid(s, 0) {
                None
            } else {
                Some(s.value(0))
            }
        }
        None => None,
    };
    let mut out = Vec::with_capacity(rows);
    match seed {
        Some(seed) => {
            let mut state = seed.rem_euclid(RAND_MAX);
            if state == 0 {
                state = 1;
            }
            for _ in 0..rows {
                state = state * 16_807 % RAND_MAX;
                out.push(state as f64 / RAND_MAX as f64);
            }
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15);
            static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut x = (nanos ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
            for _ in 0..rows {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
                out.push((r >> 11) as f64 / (1u64 << 53) as f64);
            }
        }
    }
    Ok(Arc::new(Float64Array::from(out)))
}

// CHAR(n1, n2, ...) -> VARCHAR of the bytes (values above 255 give several bytes; NULLs skipped).
fn eval_char(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let cols: Vec<Vec<Option<f64>>> = a.iter().map(floats).collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut buf = Vec::new();
        for c in &cols {
            let Some(v) = c[r] else { continue };
            let v = v as i64 as u32;
            let bytes = v.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
            buf.extend_from_slice(&bytes[skip..]);
        }
        out.push(Some(String::from_utf8_lossy(&buf).into_owned()));
    }
    Ok(utf8_out(out))
}

// ASCII(str) -> BIGINT code of the first byte (0 for an empty string).
fn ret_ascii(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("ascii", t, 1, 1)?;
    Ok(DataType::Int64)
}

fn eval_ascii(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    let out: Vec<Option<i64>> = bytes(&a[0])?
        .into_iter()
        .map(|b| b.map(|b| b.first().copied().unwrap_or(0) as i64))
        .collect();
    Ok(Arc::new(Int64Array::from(out)))
}

// CONCAT / CONCAT_WS: NULL when any argument is NULL (TDengine), unlike DataFusion's.
fn ret_concat(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("concat", t, 1, usize::MAX)?;
    Ok(DataType::Utf8)
}

fn ret_concat_ws(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("concat_ws", t, 2, usize::MAX)?;
    Ok(DataType::Utf8)
}

fn concat_rows(
    cols: &[Vec<Option<String>>],
    rows: usize,
    sep: Option<&[Option<String>]>,
) -> Vec<Option<String>> {
    (0..rows)
        .map(|r| {
            let sep = match sep {
                Some(s) => Some(s[r].as_deref()?),
                None => None,
            };
            let mut s = String::new();
            for (k, c) in cols.iter().enumerate() {
                if k > 0 {
                    s.push_str(sep.unwrap_or(""));
                }
                s.push_str(c[r].as_deref()?);
            }
            Some(s)
        })
        .collect()
}

fn eval_concat(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let cols: Vec<Vec<Option<String>>> = a.iter().map(strings).collect::<Result<_>>()?;
    Ok(utf8_out(concat_rows(&cols, rows, None)))
}

fn eval_concat_ws(_: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let sep = strings(&a[0])?;
    let cols: Vec<Vec<Option<String>>> = a[1..].iter().map(strings).collect::<Result<_>>()?;
    Ok(utf8_out(concat_rows(&cols, rows, Some(&sep))))
}

// MD5 / SHA1 -> lowercase hex.
fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) = (
        0x6745_2301u32,
        0xefcd_ab89u32,
        0x98ba_dcfeu32,
        0x1032_5476u32,
    );
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A82_7999),
                1 => (b ^ c ^ d, 0x6ED9_EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6u32),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
    out
}

fn eval_md5(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    Ok(utf8_out(
        bytes(&a[0])?
            .into_iter()
            .map(|b| b.map(|b| hex(&md5(&b))))
            .collect(),
    ))
}

fn eval_sha1(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    Ok(utf8_out(
        bytes(&a[0])?
            .into_iter()
            .map(|b| b.map(|b| hex(&sha1(&b))))
            .collect(),
    ))
}

// TO_BASE64 / FROM_BASE64 (standard alphabet, padded).
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn to_base64(d: &[u8]) -> String {
    let mut s = String::with_capacity(d.len().div_ceil(3) * 4);
    for c in d.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

pub(crate) fn from_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes().filter(|b| !b.is_ascii_whitespace()) {
        if ch == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == ch)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xFF) as u8);
        }
    }
    Some(out)
}

fn eval_to_base64(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    Ok(utf8_out(
        bytes(&a[0])?
            .into_iter()
            .map(|b| b.map(|b| to_base64(&b)))
            .collect(),
    ))
}

fn eval_from_base64(_: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    Ok(utf8_out(
        strings(&a[0])?
            .into_iter()
            .map(|s| {
                s.and_then(|s| from_base64(&s))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        assert_eq!(hex(&md5(b"mytext")), "947ef8c8db156a568d5974d71f7638f4");
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&sha1(b"mytext")),
            "65d922aad93c7e165ed888a2ab85befe9841fd39"
        );
        assert_eq!(to_base64(b"Hello, world!"), "SGVsbG8sIHdvcmxkIQ==");
        assert_eq!(to_base64("你好 世界".as_bytes()), "5L2g5aW9IOS4lueVjA==");
        assert_eq!(
            from_base64("SGVsbG8sIHdvcmxkIQ==").unwrap_or_default(),
            b"Hello, world!"
        );
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"This is a string"), 141_976_383);
        assert_eq!(crc32("这是一个字符串".as_bytes()), 1_902_862_441);
        assert_eq!(crc32(b"123"), 2_286_445_522);
        assert_eq!(crc32(b"123.456"), 844_093_190);
    }

    #[test]
    fn json() {
        assert!(json_ok(
            r#"{"a": 1, "b": [true, null, "x\"y"], "c": {"d": -1.5e3}}"#
        ));
        assert!(json_ok("{}"));
        assert!(!json_ok("{a:1}"));
        assert!(!json_ok(r#"{"a":1"#));
    }
}
