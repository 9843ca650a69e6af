//! InfluxDB line protocol, parsed without copying: names and strings borrow from the body
//! unless an escape forces a copy.
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! * Lines are split on `\n` (a trailing `\r` is dropped); blank lines and lines whose first
//!   non-blank character is `#` are skipped but still counted for line numbers.
//! * Escapes: a backslash keeps the next byte from ending a token. In the measurement `\,` and
//!   `\ ` stand for `,` and space; in tag keys, tag values and field keys also `\=`. Any other
//!   backslash stays as written (InfluxDB's rule). In string field values `\"` and `\\`.
//! * Field values: see [`parse_value`]. Tag values must not be empty; a line needs a field.
//! * Timestamp: an optional signed integer in the request's precision.

use super::{FieldValue, ParseError, Point};
use std::borrow::Cow;

/// Lines of a body, in order; each item is a data line or the error of a bad one.
pub fn parse_lines(body: &[u8]) -> Lines<'_> {
    Lines {
        body,
        pos: 0,
        line: 0,
        caps: (4, 4),
    }
}

/// Iterator of [`parse_lines`].
pub struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
    /// Tag and field counts of the last line: the next line's vectors start that big.
    caps: (usize, usize),
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Point<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.body.len() {
            let rest = &self.body[self.pos..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let mut raw = &rest[..end];
            self.pos += end + 1;
            self.line += 1;
            if let [head @ .., b'\r'] = raw {
                raw = head;
            }
            let start = raw
                .iter()
                .position(|&c| c != b' ' && c != b'\t')
                .unwrap_or(raw.len());
            let raw = &raw[start..];
            if raw.is_empty() || raw[0] == b'#' {
                continue;
            }
            return Some(match std::str::from_utf8(raw) {
                Ok(s) => parse_line_sized(s, self.line, self.caps)
                    .inspect(|p| self.caps = (p.tags.len(), p.fields.len())),
                Err(e) => Err(ParseError::new(
                    self.line,
                    format!("invalid UTF-8 at byte {}", start + e.valid_up_to()),
                )),
            });
        }
        None
    }
}

/// Bytes that end a token (plus the backslash, which escapes the next byte).
struct Stops([bool; 256]);

const fn stops(list: &[u8]) -> Stops {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    let mut i = 0;
    while i < list.len() {
        t[list[i] as usize] = true;
        i += 1;
    }
    Stops(t)
}

static MEASUREMENT_END: Stops = stops(b", ");
static KEY_END: Stops = stops(b"=, ");
static QUOTE_END: Stops = stops(b"\"");

/// Where a token ends: the first unescaped stop byte (or the end). Also says whether a
/// backslash was seen.
#[inline]
fn scan(b: &[u8], mut i: usize, stops: &Stops) -> (usize, bool) {
    let mut esc = false;
    loop {
        while i < b.len() && !stops.0[b[i] as usize] {
            i += 1;
        }
        if i >= b.len() {
            return (b.len(), esc);
        }
        if b[i] != b'\\' {
            return (i, esc);
        }
        esc = true;
        i += 2;
    }
}

/// Remove backslashes before the bytes in `specials`.
fn unescape<'a>(raw: &'a str, esc: bool, specials: &[u8]) -> Cow<'a, str> {
    if !esc {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && specials.contains(&b[i + 1]) {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were removed, so this is still UTF-8.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

const MEASUREMENT_ESC: &[u8] = b", ";
const KEY_ESC: &[u8] = b",= ";

/// Parse one line (without its newline). `line` is its 1-based number, used in errors.
pub fn parse_line(s: &str, line: usize) -> Result<Point<'_>, ParseError> {
    parse_line_sized(s, line, (4, 4))
}

/// [`parse_line`] with the expected numbers of tags and fields.
fn parse_line_sized(s: &str, line: usize, caps: (usize, usize)) -> Result<Point<'_>, ParseError> {
    let b = s.as_bytes();
    let n = b.len();
    let err = |msg: String| ParseError::new(line, msg);

    // Measurement.
    let (mut i, esc) = scan(b, 0, &MEASUREMENT_END);
    let i_end = i.min(n);
    let measurement = unescape(&s[..i_end], esc, MEASUREMENT_ESC);
    if measurement.is_empty() {
        return Err(err("missing measurement".into()));
    }
    i = i_end;

    // Tags.
    let mut tags = Vec::with_capacity(caps.0);
    while i < n && b[i] == b',' {
        i += 1;
        let (k_end, k_esc) = scan(b, i, &KEY_END);
        if k_end >= n || b[k_end] != b'=' {
            return Err(err(format!("tag without '=' at byte {}", i)));
        }
        if k_end == i {
            return Err(err(format!("empty tag key at byte {}", i)));
        }
        let key = unescape(&s[i..k_end], k_esc, KEY_ESC);
        let v_start = k_end + 1;
        let (v_end, v_esc) = scan(b, v_start, &KEY_END);
        if v_end < n && b[v_end] == b'=' {
            return Err(err(format!("unescaped '=' in the value of tag {key}")));
        }
        if v_end == v_start {
            return Err(err(format!("missing value of tag {key}")));
        }
        let value = unescape(&s[v_start..v_end], v_esc, KEY_ESC);
        tags.push((key, FieldValue::NChar(value)));
        i = v_end;
    }

    // Field set.
    while i < n && b[i] == b' ' {
        i += 1;
    }
    if i >= n {
        return Err(err("missing fields".into()));
    }
    let mut fields = Vec::with_capacity(caps.1);
    loop {
        let (k_end, k_esc) = scan(b, i, &KEY_END);
        if k_end >= n || b[k_end] != b'=' {
            return Err(err(format!("field without '=' at byte {i}")));
        }
        if k_end == i {
            return Err(err(format!("empty field key at byte {i}")));
        }
        let key = unescape(&s[i..k_end], k_esc, KEY_ESC);
        i = k_end + 1;
        let (value, next) = field_value(s, i).map_err(|m| err(format!("field {key}: {m}")))?;
        fields.push((key, value));
        i = next;
        if i < n && b[i] == b',' {
            i += 1;
            continue;
        }
        if i < n && b[i] != b' ' {
            let key = fields.last().map(|f| f.0.as_ref()).unwrap_or("");
            return Err(err(format!(
                "field {key}: unexpected '{}' after the value",
                char::from(b[i])
            )));
        }
        break;
    }

    // Timestamp.
    while i < n && b[i] == b' ' {
        i += 1;
    }
    let mut timestamp = None;
    if i < n {
        let start = i;
        while i < n && b[i] != b' ' {
            i += 1;
        }
        let t = &s[start..i];
        timestamp = Some(
            t.parse::<i64>()
                .map_err(|_| err(format!("invalid timestamp '{}'", clip(t))))?,
        );
        while i < n && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < n {
            return Err(err(format!(
                "unexpected text after the timestamp: '{}'",
                clip(&s[i..])
            )));
        }
    }
    Ok(Point {
        line,
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// At most 40 characters of `s`, for error messages.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A field value starting at byte `i`: the value and where it ended.
fn field_value(s: &str, i: usize) -> Result<(FieldValue<'_>, usize), String> {
    let b = s.as_bytes();
    let n = b.len();
    if i >= n {
        return Err("missing value".into());
    }
    let (prefix, q) = match b[i] {
        b'"' => (None, i),
        c @ (b'L' | b'G' | b'B') if i + 1 < n && b[i + 1] == b'"' => (Some(c), i + 1),
        _ => {
            let mut j = i;
            while j < n && b[j] != b',' && b[j] != b' ' {
                j += 1;
            }
            return Ok((parse_value(&s[i..j])?, j));
        }
    };
    // Quoted string: up to the next unescaped quote.
    let start = q + 1;
    let (end, esc) = scan(b, start, &QUOTE_END);
    if end >= n {
        return Err("unterminated string".into());
    }
    let text = unescape(&s[start..end], esc, b"\"\\");
    let v = match prefix {
        None => FieldValue::VarChar(text),
        Some(b'L') => FieldValue::NChar(text),
        Some(b'G') => FieldValue::Geometry(text),
        _ => FieldValue::VarBinary(varbinary(text)),
    };
    Ok((v, end + 1))
}

/// `B"\x0aff"` is hex; anything else is the text's bytes.
fn varbinary(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    if let Some(hex) = text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        if hex.len() % 2 == 0 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Cow::Owned(common::value::parse_hex_literal(&text));
        }
    }
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// An unquoted value: a bool (`t T true True TRUE f F false False FALSE`) or a number with an
/// optional type suffix: none or `f64` DOUBLE, `f32` FLOAT, `i8 i16 i32`, `i64`/`i` BIGINT,
/// `u8 u16 u32`, `u64`/`u` BIGINT UNSIGNED.
pub fn parse_value(t: &str) -> Result<FieldValue<'static>, String> {
    match t {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        "" => return Err("missing value".into()),
        _ => {}
    }
    let b = t.as_bytes();
    let last = b[b.len() - 1];
    if last.is_ascii_digit() || last == b'.' {
        // Possibly a 2- or 3-character suffix (i8, u16, f64 ...), else a plain DOUBLE.
        for (suffix, kind) in SUFFIXES {
            if let Some(num) = t.strip_suffix(suffix) {
                return number(num, *kind, t);
            }
        }
        return number(t, Kind::F64, t);
    }
    match last {
        b'i' => number(&t[..t.len() - 1], Kind::I64, t),
        b'u' => number(&t[..t.len() - 1], Kind::U64, t),
        _ => Err(format!("invalid value '{}'", clip(t))),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

const SUFFIXES: &[(&str, Kind)] = &[
    ("i16", Kind::I16),
    ("i32", Kind::I32),
    ("i64", Kind::I64),
    ("u16", Kind::U16),
    ("u32", Kind::U32),
    ("u64", Kind::U64),
    ("f32", Kind::F32),
    ("f64", Kind::F64),
    ("i8", Kind::I8),
    ("u8", Kind::U8),
];

fn number(num: &str, kind: Kind, whole: &str) -> Result<FieldValue<'static>, String> {
    let bad = || format!("invalid number '{}'", clip(whole));
    let range = || format!("value '{}' out of range", clip(whole));
    let nb = num.as_bytes();
    // Digits, sign, point and exponent only: no "inf", "nan", "0x..", "1_000".
    if nb.is_empty()
        || !nb
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E'))
        || !nb.iter().any(u8::is_ascii_digit)
    {
        return Err(bad());
    }
    macro_rules! int {
        ($t:ty, $v:ident) => {{
            let i: i128 = num.parse().map_err(|_| bad())?;
            <$t>::try_from(i).map(FieldValue::$v).map_err(|_| range())
        }};
    }
    match kind {
        Kind::I8 => int!(i8, TinyInt),
        Kind::I16 => int!(i16, SmallInt),
        Kind::I32 => int!(i32, Int),
        Kind::I64 => num.parse::<i64>().map(FieldValue::BigInt).map_err(|_| {
            if num.parse::<i128>().is_ok() {
                range()
            } else {
                bad()
            }
        }),
        Kind::U8 => int!(u8, UTinyInt),
        Kind::U16 => int!(u16, USmallInt),
        Kind::U32 => int!(u32, UInt),
        Kind::U64 => int!(u64, UBigInt),
        Kind::F32 => {
            let f: f64 = num.parse().map_err(|_| bad())?;
            if !f.is_finite() || f.abs() > f32::MAX as f64 {
                return Err(range());
            }
            Ok(FieldValue::Float(f as f32))
        }
        Kind::F64 => {
            let f: f64 = num.parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(range());
            }
            Ok(FieldValue::Double(f))
        }
    }
}
