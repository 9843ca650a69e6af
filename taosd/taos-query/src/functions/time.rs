//! Time and conversion scalars: TO_ISO8601, TO_UNIXTIMESTAMP, TIMEDIFF, TO_CHAR, TO_TIMESTAMP,
//! WEEK, WEEKOFYEAR, WEEKDAY, DAYOFWEEK, DATE.
//!
//! Timestamp-like arguments are accepted as TIMESTAMP (any unit), integers (epoch in the
//! database precision) or strings (ISO 8601 / RFC 3339, read in the session zone), as TDengine
//! does; a string that is not a time gives NULL.

use super::{n_args, precision_of, rescale, scalar_i64, ts_type, valid, Env, Udf};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use common::time::parse_timestamp;
use common::{Precision, SessionTz};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use std::fmt::Write;
use std::sync::Arc;

pub(super) fn functions(env: Env) -> Vec<Udf> {
    vec![
        Udf::new("to_iso8601", env, ret_to_iso8601, eval_to_iso8601),
        Udf::new(
            "to_unixtimestamp",
            env,
            ret_to_unixtimestamp,
            eval_to_unixtimestamp,
        ),
        Udf::new("timediff", env, ret_timediff, eval_timediff),
        Udf::new("to_char", env, ret_to_char, eval_to_char),
        Udf::new("to_timestamp", env, ret_to_timestamp, eval_to_timestamp),
        Udf::new("weekday", env, ret_one_ts, eval_weekday),
        Udf::new("dayofweek", env, ret_one_ts, eval_dayofweek),
        Udf::new("weekofyear", env, ret_one_ts, eval_weekofyear),
        Udf::new("week", env, ret_week, eval_week),
        Udf::new("date", env, ret_date, eval_date),
    ]
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The precision timestamp-like arguments are read in: the unit of the first TIMESTAMP
/// argument, else the database precision.
fn call_precision(env: &Env, args: &[&ArrayRef]) -> Precision {
    args.iter()
        .find_map(|a| match a.data_type() {
            DataType::Timestamp(u, _) => Some(precision_of(u)),
            _ => None,
        })
        .unwrap_or(env.precision)
}

/// A timestamp-like argument in units of `p`.
pub(super) fn ts_values(env: &Env, a: &ArrayRef, p: Precision) -> Result<Vec<Option<i64>>> {
    let n = a.len();
    match a.data_type() {
        DataType::Null => Ok(vec![None; n]),
        DataType::Timestamp(u, _) => {
            let from = super::unit_per_second(u);
            let ints = cast(a, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            Ok((0..n)
                .map(|i| {
                    if ints.is_valid(i) {
                        rescale(ints.value(i), from, p.per_second())
                    } else {
                        None
                    }
                })
                .collect())
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            Ok((0..n)
                .map(|i| {
                    if s.is_valid(i) {
                        parse_timestamp(s.value(i), p, env.tz).ok()
                    } else {
                        None
                    }
                })
                .collect())
        }
        t if t.is_integer() || t.is_floating() || t == &DataType::Boolean => {
            let ints = cast(a, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            Ok((0..n)
                .map(|i| {
                    if ints.is_valid(i) {
                        Some(ints.value(i))
                    } else {
                        None
                    }
                })
                .collect())
        }
        t => exec_err!("Invalid parameter data type : {t} is not a timestamp"),
    }
}

/// A string argument, row by row.
fn str_values(a: &ArrayRef) -> Result<Vec<Option<String>>> {
    if a.data_type() == &DataType::Null {
        return Ok(vec![None; a.len()]);
    }
    let s = cast(a, &DataType::Utf8)?;
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

/// An integer argument, row by row.
fn int_values(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let ints = cast(a, &DataType::Int64)?;
    let ints = ints.as_primitive::<Int64Type>();
    Ok((0..ints.len())
        .map(|i| {
            if valid(ints, i) {
                Some(ints.value(i))
            } else {
                None
            }
        })
        .collect())
}

/// Split a value in precision `p` into seconds and nanoseconds.
fn split(v: i64, p: Precision) -> (i64, u32) {
    let per = p.per_second();
    let secs = v.div_euclid(per);
    let sub = v.rem_euclid(per) * (1_000_000_000 / per);
    (secs, sub as u32)
}

/// Wall-clock time in a zone and the zone's offset (seconds east of UTC) at that instant.
fn local_time(v: i64, p: Precision, tz: &SessionTz) -> Option<(NaiveDateTime, i32)> {
    let (secs, nanos) = split(v, p);
    let utc = DateTime::from_timestamp(secs, nanos)?.naive_utc();
    let off = tz.offset_at(utc);
    Some((utc + chrono::Duration::seconds(off as i64), off))
}

/// UTC time of a wall-clock time in a zone (the earlier instant when ambiguous).
fn local_to_utc(local: NaiveDateTime, tz: &SessionTz) -> NaiveDateTime {
    let off1 = tz.offset_at(local);
    let utc = local - chrono::Duration::seconds(off1 as i64);
    let off2 = tz.offset_at(utc);
    if off2 == off1 {
        utc
    } else {
        local - chrono::Duration::seconds(off2 as i64)
    }
}

/// Instant of a UTC time plus nanoseconds in precision `p`.
fn to_precision(utc: NaiveDateTime, extra_ns: i64, p: Precision) -> Option<i64> {
    let ns = (utc.and_utc().timestamp() as i128) * 1_000_000_000
        + utc.nanosecond() as i128
        + extra_ns as i128;
    i64::try_from(ns / (1_000_000_000 / p.per_second()) as i128).ok()
}

/// `Z`, `±hh`, `±hh:mm`, `±hhmm` to seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match (rest.len(), rest.find(':')) {
        (1 | 2, None) => (rest.parse::<i32>().ok()?, 0),
        (4, None) => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        (_, Some(c)) if c <= 2 && rest.len() - c == 3 => {
            (rest[..c].parse().ok()?, rest[c + 1..].parse().ok()?)
        }
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn fmt_offset(off: i32) -> String {
    format!(
        "{}{:02}:{:02}",
        if off < 0 { '-' } else { '+' },
        off.abs() / 3600,
        off.abs() % 3600 / 60
    )
}

// ---------------------------------------------------------------------------------------------
// TO_ISO8601(ts [, tz]) -> VARCHAR

fn ret_to_iso8601(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("to_iso8601", t, 1, 2)?;
    Ok(DataType::Utf8)
}

fn eval_to_iso8601(env: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let p = call_precision(env, &[&a[0]]);
    let vals = ts_values(env, &a[0], p)?;
    let zones = match a.get(1) {
        Some(z) => str_values(z)?,
        None => vec![None; rows],
    };
    let mut out = Vec::with_capacity(rows);
    for (v, z) in vals.into_iter().zip(zones) {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        if a.len() > 1 && z.is_none() {
            out.push(None);
            continue;
        }
        let fixed = match &z {
            Some(z) => match parse_offset(z) {
                Some(off) => Some((off, z.trim().to_string())),
                None => return exec_err!("Invalid timzone format : {z}"),
            },
            None => None,
        };
        let (secs, nanos) = split(v, p);
        let Some(utc) = DateTime::from_timestamp(secs, nanos).map(|d| d.naive_utc()) else {
            out.push(None);
            continue;
        };
        let (off, suffix) = match fixed {
            Some((off, s)) => (off, s),
            None => {
                let off = env.tz.offset_at(utc);
                (off, fmt_offset(off))
            }
        };
        let local = utc + chrono::Duration::seconds(off as i64);
        let frac = match p {
            Precision::Ms => format!("{:03}", nanos / 1_000_000),
            Precision::Us => format!("{:06}", nanos / 1_000),
            Precision::Ns => format!("{:09}", nanos),
        };
        out.push(Some(format!(
            "{}.{frac}{suffix}",
            local.format("%Y-%m-%dT%H:%M:%S")
        )));
    }
    Ok(Arc::new(StringArray::from(out)))
}

// ---------------------------------------------------------------------------------------------
// TO_UNIXTIMESTAMP(str [, return_timestamp]) -> BIGINT | TIMESTAMP

fn ret_to_unixtimestamp(env: &Env, t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("to_unixtimestamp", t, 1, 2)?;
    if t.len() == 2 {
        return match scalar_i64(s.get(1).copied().flatten()) {
            Some(1) => Ok(ts_type(env.precision)),
            Some(0) => Ok(DataType::Int64),
            // Planning asks for the type before constants are known; a constant is required.
            None if s.get(1).copied().flatten().is_none() => Ok(DataType::Int64),
            _ => plan_err!(
                "Invalid parameter value : to_unixtimestamp's second parameter must be 0 or 1"
            ),
        };
    }
    Ok(DataType::Int64)
}

fn eval_to_unixtimestamp(env: &Env, a: &[ArrayRef], _: usize, ret: &DataType) -> Result<ArrayRef> {
    let vals: Vec<Option<i64>> = if matches!(
        a[0].data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    ) {
        ts_values(env, &a[0], env.precision)?
    } else {
        return exec_err!("Invalid parameter data type : to_unixtimestamp needs a string");
    };
    let out: ArrayRef = Arc::new(Int64Array::from(vals));
    if ret == &DataType::Int64 {
        Ok(out)
    } else {
        Ok(cast(&out, ret)?)
    }
}

// ---------------------------------------------------------------------------------------------
// TIMEDIFF(a, b [, unit]) -> BIGINT

fn ret_timediff(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("timediff", t, 2, 3)?;
    Ok(DataType::Int64)
}

/// `a - b` in the timestamps' precision, divided by `unit` (an integer in that precision, as
/// the lowering turns `1s` into); a missing, NULL or sub-precision unit means the precision.
fn eval_timediff(env: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let p = call_precision(env, &[&a[0], &a[1]]);
    let x = ts_values(env, &a[0], p)?;
    let y = ts_values(env, &a[1], p)?;
    let units = match a.get(2) {
        Some(u)
            if matches!(
                u.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            // A unit spelled as a string ('1s'): read it in the precision.
            str_values(u)?
                .into_iter()
                .map(|s| {
                    s.and_then(|s| common::time::DurationLit::parse(&s, None))
                        .and_then(|d| d.in_precision(p))
                })
                .collect()
        }
        Some(u) => int_values(u)?,
        None => vec![None; rows],
    };
    let out: Vec<Option<i64>> = (0..rows)
        .map(|i| {
            let d = x[i]?.checked_sub(y[i]?)?;
            let unit = units[i].filter(|u| *u > 0).unwrap_or(1);
            Some(d / unit)
        })
        .collect();
    Ok(Arc::new(Int64Array::from(out)))
}

// ---------------------------------------------------------------------------------------------
// TO_CHAR(ts, fmt) / TO_TIMESTAMP(str, fmt) with TDengine's (Oracle-style) format tokens.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Cap,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// AM/PM; `dots` for A.M./P.M.
    Meridian {
        upper: bool,
        dots: bool,
    },
    Year(usize),
    Month(Case),
    Mon(Case),
    Mm,
    Ddd,
    Dd,
    Day(Case),
    Dy(Case),
    D,
    Hh24,
    Hh12,
    Mi,
    Ss,
    Ms,
    Us,
    Ns,
    Tzh,
    Lit(String),
}

const MONTHS: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];
const DAYS: [&str; 7] = [
    "SUNDAY",
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
];

fn case_of(s: &str) -> Case {
    let b = s.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(a), Some(c)) if a.is_ascii_uppercase() && c.is_ascii_uppercase() => Case::Upper,
        (Some(a), _) if a.is_ascii_uppercase() => Case::Cap,
        _ => Case::Lower,
    }
}

fn apply_case(name: &str, c: Case) -> String {
    match c {
        Case::Upper => name.to_string(),
        Case::Lower => name.to_ascii_lowercase(),
        Case::Cap => {
            let lower = name.to_ascii_lowercase();
            let mut out = String::with_capacity(lower.len());
            for (i, ch) in lower.chars().enumerate() {
                out.push(if i == 0 { ch.to_ascii_uppercase() } else { ch });
            }
            out
        }
    }
}

/// Split a format string into tokens.
fn tokenize(fmt: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let starts = |i: usize, pat: &str| -> bool {
        let n = pat.chars().count();
        i + n <= chars.len()
            && chars[i..i + n]
                .iter()
                .zip(pat.chars())
                .all(|(a, b)| a.eq_ignore_ascii_case(&b))
    };
    let exact = |i: usize, pat: &str| -> bool {
        let n = pat.chars().count();
        i + n <= chars.len() && chars[i..i + n].iter().copied().eq(pat.chars())
    };
    while i < chars.len() {
        let c = chars[i];
        let text: String = chars[i..].iter().take(5).collect();
        let (tok, len): (Option<Tok>, usize) = if c == '"' {
            // Quoted text is output as is.
            let mut j = i + 1;
            let mut s = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() && chars[j + 1] == '"' {
                    j += 1;
                }
                s.push(chars[j]);
                j += 1;
            }
            (Some(Tok::Lit(s)), j + 1 - i)
        } else if c == '\\' && i + 1 < chars.len() && chars[i + 1] == '"' {
            (Some(Tok::Lit("\"".into())), 2)
        } else if exact(i, "A.M.") || exact(i, "P.M.") {
            (
                Some(Tok::Meridian {
                    upper: true,
                    dots: true,
                }),
                4,
            )
        } else if exact(i, "a.m.") || exact(i, "p.m.") {
            (
                Some(Tok::Meridian {
                    upper: false,
                    dots: true,
                }),
                4,
            )
        } else if exact(i, "AM") || exact(i, "PM") {
            (
                Some(Tok::Meridian {
                    upper: true,
                    dots: false,
                }),
                2,
            )
        } else if exact(i, "am") || exact(i, "pm") {
            (
                Some(Tok::Meridian {
                    upper: false,
                    dots: false,
                }),
                2,
            )
        } else if starts(i, "YYYY") {
            (Some(Tok::Year(4)), 4)
        } else if starts(i, "YYY") {
            (Some(Tok::Year(3)), 3)
        } else if starts(i, "YY") {
            (Some(Tok::Year(2)), 2)
        } else if starts(i, "Y") {
            (Some(Tok::Year(1)), 1)
        } else if starts(i, "MONTH") {
            (Some(Tok::Month(case_of(&text))), 5)
        } else if starts(i, "MON") {
            (Some(Tok::Mon(case_of(&text))), 3)
        } else if starts(i, "MM") {
            (Some(Tok::Mm), 2)
        } else if starts(i, "MI") {
            (Some(Tok::Mi), 2)
        } else if starts(i, "MS") {
            (Some(Tok::Ms), 2)
        } else if starts(i, "DDD") {
            (Some(Tok::Ddd), 3)
        } else if starts(i, "DAY") {
            (Some(Tok::Day(case_of(&text))), 3)
        } else if starts(i, "DD") {
            (Some(Tok::Dd), 2)
        } else if starts(i, "DY") {
            (Some(Tok::Dy(case_of(&text))), 2)
        } else if starts(i, "D") {
            (Some(Tok::D), 1)
        } else if starts(i, "HH24") {
            (Some(Tok::Hh24), 4)
        } else if starts(i, "HH12") {
            (Some(Tok::Hh12), 4)
        } else if starts(i, "HH") {
            (Some(Tok::Hh12), 2)
        } else if starts(i, "SS") {
            (Some(Tok::Ss), 2)
        } else if starts(i, "US") {
            (Some(Tok::Us), 2)
        } else if starts(i, "NS") {
            (Some(Tok::Ns), 2)
        } else if starts(i, "TZH") {
            (Some(Tok::Tzh), 3)
        } else {
            (None, 1)
        };
        match tok {
            Some(t) => {
                if !lit.is_empty() {
                    out.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                out.push(t);
            }
            None => lit.push(c),
        }
        i += len;
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    out
}

/// Render a wall-clock time (`off`: the zone offset in seconds) with format tokens.
fn render(toks: &[Tok], t: &NaiveDateTime, off: i32) -> String {
    let mut s = String::new();
    let h12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let pm = t.hour() >= 12;
    let nanos = t.nanosecond() % 1_000_000_000;
    for tok in toks {
        let _ = match tok {
            Tok::Lit(l) => write!(s, "{l}"),
            Tok::Meridian { upper, dots } => {
                let m = match (pm, dots) {
                    (false, false) => "AM",
                    (true, false) => "PM",
                    (false, true) => "A.M.",
                    (true, true) => "P.M.",
                };
                write!(
                    s,
                    "{}",
                    if *upper {
                        m.to_string()
                    } else {
                        m.to_ascii_lowercase()
                    }
                )
            }
            Tok::Year(4) => write!(s, "{:04}", t.year()),
            Tok::Year(n) => {
                let m = 10i32.pow(*n as u32);
                write!(s, "{:0w$}", t.year().rem_euclid(m), w = *n)
            }
            Tok::Month(c) => write!(s, "{:<9}", apply_case(MONTHS[t.month0() as usize], *c)),
            Tok::Mon(c) => write!(s, "{}", apply_case(&MONTHS[t.month0() as usize][..3], *c)),
            Tok::Mm => write!(s, "{:02}", t.month()),
            Tok::Dd => write!(s, "{:02}", t.day()),
            Tok::Ddd => write!(s, "{:03}", t.ordinal()),
            Tok::Day(c) => {
                write!(
                    s,
                    "{:<9}",
                    apply_case(DAYS[t.weekday().num_days_from_sunday() as usize], *c)
                )
            }
            Tok::Dy(c) => write!(
                s,
                "{}",
                apply_case(&DAYS[t.weekday().num_days_from_sunday() as usize][..3], *c)
            ),
            Tok::D => write!(s, "{}", t.weekday().num_days_from_sunday() + 1),
            Tok::Hh24 => write!(s, "{:02}", t.hour()),
            Tok::Hh12 => write!(s, "{:02}", h12),
            Tok::Mi => write!(s, "{:02}", t.minute()),
            Tok::Ss => write!(s, "{:02}", t.second()),
            Tok::Ms => write!(s, "{:03}", nanos / 1_000_000),
            Tok::Us => write!(s, "{:06}", nanos / 1_000),
            Tok::Ns => write!(s, "{:09}", nanos),
            Tok::Tzh => write!(
                s,
                "{}{:02}",
                if off < 0 { '-' } else { '+' },
                off.abs() / 3600
            ),
        };
    }
    s
}

/// Parse a string with format tokens into UTC nanoseconds-precision parts: the UTC wall time
/// and extra nanoseconds. Fields not given default to 1970-01-01 00:00:00 in the zone.
fn parse_with(toks: &[Tok], input: &str, tz: &SessionTz) -> Option<(NaiveDateTime, i64)> {
    let b: Vec<char> = input.chars().collect();
    let mut i = 0usize;
    let (mut year, mut month, mut day, mut doy) = (1970i32, None::<u32>, None::<u32>, None::<u32>);
    let (mut hour, mut minute, mut second) = (0u32, 0u32, 0u32);
    let mut frac_ns: i64 = 0;
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_whitespace() {
            *i += 1;
        }
    };
    let digits = |i: &mut usize, max: usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        b[start..*i].iter().collect::<String>().parse().ok()
    };
    let word = |i: &mut usize, names: &[&str], len: Option<usize>| -> Option<usize> {
        let rest: String = b[*i..].iter().collect::<String>().to_ascii_uppercase();
        for (k, n) in names.iter().enumerate() {
            let n = match len {
                Some(l) => &n[..l],
                None => n,
            };
            if rest.starts_with(n) {
                *i += n.len();
                return Some(k);
            }
        }
        None
    };
    for tok in toks {
        skip_ws(&mut i);
        match tok {
            Tok::Lit(l) => {
                for c in l.chars() {
                    if c.is_whitespace() {
                        continue;
                    }
                    skip_ws(&mut i);
                    // Tolerance: a format character that does not match is dropped.
                    if i < b.len() && b[i] == c {
                        i += 1;
                    }
                }
            }
            Tok::Meridian { dots, .. } => {
                let names: &[&str] = if *dots {
                    &["A.M.", "P.M."]
                } else {
                    &["AM", "PM"]
                };
                pm = Some(word(&mut i, names, None)? == 1);
            }
            Tok::Year(n) => {
                let v = digits(&mut i, *n)? as i32;
                year = if *n == 4 {
                    v
                } else {
                    2000 / 10i32.pow(*n as u32) * 10i32.pow(*n as u32) + v
                };
            }
            Tok::Month(_) => {
                month = Some(word(&mut i, &MONTHS, None)? as u32 + 1);
                skip_ws(&mut i);
            }
            Tok::Mon(_) => month = Some(word(&mut i, &MONTHS, Some(3))? as u32 + 1),
            Tok::Mm => month = Some(digits(&mut i, 2)? as u32),
            Tok::Dd => day = Some(digits(&mut i, 2)? as u32),
            Tok::Ddd => doy = Some(digits(&mut i, 3)? as u32),
            Tok::Day(_) => {
                word(&mut i, &DAYS, None)?;
            }
            Tok::Dy(_) => {
                word(&mut i, &DAYS, Some(3))?;
            }
            Tok::D => {
                digits(&mut i, 1)?;
            }
            Tok::Hh24 | Tok::Hh12 => hour = digits(&mut i, 2)? as u32,
            Tok::Mi => minute = digits(&mut i, 2)? as u32,
            Tok::Ss => second = digits(&mut i, 2)? as u32,
            Tok::Ms => frac_ns += digits(&mut i, 3)? * 1_000_000,
            Tok::Us => frac_ns += digits(&mut i, 6)? * 1_000,
            Tok::Ns => frac_ns += digits(&mut i, 9)?,
            Tok::Tzh => {
                let sign = match b.get(i) {
                    Some('+') => 1,
                    Some('-') => -1,
                    _ => return None,
                };
                i += 1;
                let h = digits(&mut i, 2)? as i32;
                let mut m = 0;
                if b.get(i) == Some(&':') {
                    i += 1;
                    m = digits(&mut i, 2)? as i32;
                } else if i + 1 < b.len() && b[i].is_ascii_digit() && b[i + 1].is_ascii_digit() {
                    m = digits(&mut i, 2)? as i32;
                }
                offset = Some(sign * (h * 3600 + m * 60));
            }
        }
    }
    // A zone left at the end of the input (`... 10:10:10+08`).
    let rest: String = b[i.min(b.len())..].iter().collect();
    if offset.is_none() && !rest.trim().is_empty() {
        offset = parse_offset(&rest);
    }
    if let Some(is_pm) = pm {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if is_pm { 12 } else { 0 };
    }
    let date = match (doy, month, day) {
        (Some(d), None, None) => NaiveDate::from_yo_opt(year, d)?,
        _ => NaiveDate::from_ymd_opt(year, month.unwrap_or(1), day.unwrap_or(1))?,
    };
    let local = date.and_hms_opt(hour, minute, second)?;
    let utc = match offset {
        Some(off) => local - chrono::Duration::seconds(off as i64),
        None => local_to_utc(local, tz),
    };
    Some((utc, frac_ns))
}

fn ret_to_char(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("to_char", t, 2, 2)?;
    Ok(DataType::Utf8)
}

fn eval_to_char(env: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let p = call_precision(env, &[&a[0]]);
    let vals = ts_values(env, &a[0], p)?;
    let fmts = str_values(&a[1])?;
    let mut cache: Option<(String, Vec<Tok>)> = None;
    let mut out = Vec::with_capacity(rows);
    for (v, f) in vals.into_iter().zip(fmts) {
        let (Some(v), Some(f)) = (v, f) else {
            out.push(None);
            continue;
        };
        if cache.as_ref().map(|(c, _)| c != &f).unwrap_or(true) {
            let toks = tokenize(&f);
            cache = Some((f, toks));
        }
        let toks = cache.as_ref().map(|(_, t)| t.as_slice()).unwrap_or(&[]);
        out.push(local_time(v, p, &env.tz).map(|(t, off)| render(toks, &t, off)));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn ret_to_timestamp(env: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("to_timestamp", t, 2, 2)?;
    Ok(ts_type(env.precision))
}

fn eval_to_timestamp(env: &Env, a: &[ArrayRef], rows: usize, ret: &DataType) -> Result<ArrayRef> {
    let strs = str_values(&a[0])?;
    let fmts = str_values(&a[1])?;
    let mut cache: Option<(String, Vec<Tok>)> = None;
    let mut out = Vec::with_capacity(rows);
    for (s, f) in strs.into_iter().zip(fmts) {
        let (Some(s), Some(f)) = (s, f) else {
            out.push(None);
            continue;
        };
        if cache.as_ref().map(|(c, _)| c != &f).unwrap_or(true) {
            let toks = tokenize(&f);
            cache = Some((f, toks));
        }
        let toks = cache.as_ref().map(|(_, t)| t.as_slice()).unwrap_or(&[]);
        out.push(
            parse_with(toks, &s, &env.tz)
                .and_then(|(utc, ns)| to_precision(utc, ns, env.precision)),
        );
    }
    let ints: ArrayRef = Arc::new(Int64Array::from(out));
    Ok(cast(&ints, ret)?)
}

// ---------------------------------------------------------------------------------------------
// WEEKDAY / DAYOFWEEK / WEEKOFYEAR / WEEK / DATE (wall-clock date in the session zone)

fn ret_one_ts(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("weekday", t, 1, 1)?;
    Ok(DataType::Int64)
}

fn ret_week(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("week", t, 1, 2)?;
    Ok(DataType::Int64)
}

fn ret_date(_: &Env, t: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    n_args("date", t, 1, 1)?;
    Ok(DataType::Utf8)
}

fn local_dates(env: &Env, a: &ArrayRef) -> Result<Vec<Option<NaiveDate>>> {
    let p = call_precision(env, &[a]);
    Ok(ts_values(env, a, p)?
        .into_iter()
        .map(|v| {
            v.and_then(|v| local_time(v, p, &env.tz))
                .map(|(t, _)| t.date())
        })
        .collect())
}

fn by_date(env: &Env, a: &ArrayRef, f: impl Fn(NaiveDate) -> i64) -> Result<ArrayRef> {
    let out: Vec<Option<i64>> = local_dates(env, a)?
        .into_iter()
        .map(|d| d.map(&f))
        .collect();
    Ok(Arc::new(Int64Array::from(out)))
}

fn eval_weekday(env: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    by_date(env, &a[0], |d| d.weekday().num_days_from_monday() as i64)
}

fn eval_dayofweek(env: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    by_date(env, &a[0], |d| {
        d.weekday().num_days_from_sunday() as i64 + 1
    })
}

fn eval_weekofyear(env: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    by_date(env, &a[0], |d| week_of(d, 3))
}

fn eval_week(env: &Env, a: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
    let dates = local_dates(env, &a[0])?;
    let modes = match a.get(1) {
        Some(m) => int_values(m)?,
        None => vec![Some(0); rows],
    };
    let mut out = Vec::with_capacity(rows);
    for (d, m) in dates.into_iter().zip(modes) {
        match (d, m) {
            (Some(d), Some(m)) if (0..=7).contains(&m) => out.push(Some(week_of(d, m as u32))),
            (Some(_), Some(m)) => {
                return exec_err!("Invalid parameter value : week mode {m} is not in [0, 7]")
            }
            _ => out.push(None),
        }
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn eval_date(env: &Env, a: &[ArrayRef], _: usize, _: &DataType) -> Result<ArrayRef> {
    let out: Vec<Option<String>> = local_dates(env, &a[0])?
        .into_iter()
        .map(|d| d.map(|d| d.format("%Y-%m-%d").to_string()))
        .collect();
    Ok(Arc::new(StringArray::from(out)))
}

fn days_in_year(y: i32) -> i64 {
    if NaiveDate::from_ymd_opt(y, 2, 29).is_some() {
        366
    } else {
        365
    }
}

/// MySQL's WEEK(date, mode), which TDengine follows (modes 0-7).
fn week_of(d: NaiveDate, mode: u32) -> i64 {
    let mut behaviour = mode & 7;
    if behaviour & 1 == 0 {
        behaviour ^= 4;
    }
    let monday_first = behaviour & 1 != 0;
    let mut week_year = behaviour & 2 != 0;
    let first_weekday = behaviour & 4 != 0;
    let mut year = d.year();
    let daynr = d.num_days_from_ce() as i64;
    let Some(jan1) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return 0;
    };
    let mut first_daynr = jan1.num_days_from_ce() as i64;
    let mut weekday = if monday_first {
        jan1.weekday().num_days_from_monday() as i64
    } else {
        jan1.weekday().num_days_from_sunday() as i64
    };
    if d.month() == 1 && (d.day() as i64) <= 7 - weekday {
        if !week_year && ((first_weekday && weekday != 0) || (!first_weekday && weekday >= 4)) {
            return 0;
        }
        week_year = true;
        year -= 1;
        let days = days_in_year(year);
        first_daynr -= days;
        weekday = (weekday + 53 * 7 - days) % 7;
    }
    let days = if (first_weekday && weekday != 0) || (!first_weekday && weekday >= 4) {
        daynr - (first_daynr + (7 - weekday))
    } else {
        daynr - (first_daynr - weekday)
    };
    if week_year && days >= 52 * 7 {
        let wd = (weekday + days_in_year(year)) % 7;
        if (!first_weekday && wd < 4) || (first_weekday && wd == 0) {
            return 1;
        }
    }
    days / 7 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("Z"), Some(0));
        assert_eq!(parse_offset("+08"), Some(8 * 3600));
        assert_eq!(parse_offset("+0530"), Some(5 * 3600 + 1800));
        assert_eq!(parse_offset("-08:00"), Some(-8 * 3600));
        assert_eq!(parse_offset("8"), None);
        assert_eq!(parse_offset("+8:0"), None);
    }

    #[test]
    fn mysql_weeks() {
        let d = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
        assert_eq!([0, 1, 2, 3].map(|m| week_of(d, m)), [0, 0, 52, 52]);
        let d = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default();
        assert_eq!(week_of(d, 3), 1);
        assert_eq!(week_of(d, 3), d.iso_week().week() as i64);
    }

    #[test]
    fn format_round_trip() {
        let toks = tokenize("yyyy-mm-dd hh24:mi:ss.ms Month Dy DDD d AM \"yyyy\"");
        let t = NaiveDate::from_ymd_opt(2023, 10, 10)
            .and_then(|d| d.and_hms_milli_opt(13, 5, 9, 123))
            .unwrap_or_default();
        assert_eq!(
            render(&toks, &t, 0),
            "2023-10-10 13:05:09.123 October   Tue 283 3 PM yyyy"
        );
        let toks = tokenize("yyyy-mm-dd hh:mi:ss.ms.us.ns");
        let (utc, ns) = parse_with(
            &toks,
            "2023-10-10 10:10:10.123.000456.000000789",
            &SessionTz::Utc,
        )
        .unwrap_or_default();
        assert_eq!(utc.to_string(), "2023-10-10 10:10:10");
        assert_eq!(ns, 123_456_789);
        let toks = tokenize("yyyyMM1/dd");
        let (utc, _) = parse_with(&toks, "200101/2", &SessionTz::Utc).unwrap_or_default();
        assert_eq!(utc.to_string(), "2001-01-02 00:00:00");
    }
}
