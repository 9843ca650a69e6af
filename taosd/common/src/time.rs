//! Timestamps: database precision, the session time zone, literal parsing and rendering, and
//! duration literals (`1h`, `10d`) as used by NOW arithmetic, DURATION and KEEP.

use crate::error::{Code, TaosError, TaosResult};
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Precision {
    #[default]
    Ms,
    Us,
    Ns,
}

impl Precision {
    pub fn parse(s: &str) -> Option<Precision> {
        match s.to_ascii_lowercase().as_str() {
            "ms" => Some(Precision::Ms),
            "us" => Some(Precision::Us),
            "ns" => Some(Precision::Ns),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ms => "ms",
            Precision::Us => "us",
            Precision::Ns => "ns",
        }
    }
    /// Units of this precision in one second.
    pub fn per_second(self) -> i64 {
        match self {
            Precision::Ms => 1_000,
            Precision::Us => 1_000_000,
            Precision::Ns => 1_000_000_000,
        }
    }
    /// Wire id used by TDengine (0 ms, 1 us, 2 ns).
    pub fn id(self) -> u8 {
        match self {
            Precision::Ms => 0,
            Precision::Us => 1,
            Precision::Ns => 2,
        }
    }
    pub fn from_nanos(self, ns: i128) -> i64 {
        (ns / (1_000_000_000 / self.per_second()) as i128) as i64
    }
    pub fn to_nanos(self, v: i64) -> i128 {
        v as i128 * (1_000_000_000 / self.per_second()) as i128
    }
    /// Current time in this precision.
    pub fn now(self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.from_nanos(d.as_nanos() as i128)
    }
    /// Largest timestamp accepted (ns: year 2262, ms/us: ~year 2970).
    pub fn max_ts(self) -> i64 {
        match self {
            Precision::Ns => i64::MAX - 1,
            p => (1000 * 365 + 250) * 86_400 * p.per_second(),
        }
    }
}

/// The time zone that governs string timestamps and rendering for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionTz {
    /// The process's local zone (TZ environment or /etc/localtime).
    #[default]
    Local,
    Utc,
    Named(chrono_tz::Tz),
    Fixed(i32),
}

impl SessionTz {
    /// Parse taos.cfg style zones: `Asia/Shanghai`, `UTC`, `UTC+8`, `+08:00`, `Asia/Shanghai (CST, +0800)`.
    pub fn parse(s: &str) -> Option<SessionTz> {
        let s = s.trim();
        let s = s.split_whitespace().next().unwrap_or(s);
        if s.is_empty() {
            return Some(SessionTz::Local);
        }
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") || s == "Z" {
            return Some(SessionTz::Utc);
        }
        if let Ok(tz) = s.parse::<chrono_tz::Tz>() {
            return Some(SessionTz::Named(tz));
        }
        let rest = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("utc"))
            .or_else(|| s.strip_prefix("GMT"))
            .unwrap_or(s);
        parse_offset(rest).map(SessionTz::Fixed)
    }

    /// Offset in seconds east of UTC at a given UTC instant.
    pub fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        match self {
            SessionTz::Utc => 0,
            SessionTz::Fixed(s) => *s,
            SessionTz::Named(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
            SessionTz::Local => chrono::Local
                .offset_from_utc_datetime(&utc)
                .local_minus_utc(),
        }
    }

    /// Interpret a wall-clock time in this zone.
    fn local_to_utc(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        fn pick<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<NaiveDateTime> {
            match r {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Some(d.naive_utc()),
                LocalResult::None => None,
            }
        }
        match self {
            SessionTz::Utc => Some(local),
            SessionTz::Fixed(s) => pick(FixedOffset::east_opt(*s)?.from_local_datetime(&local)),
            SessionTz::Named(tz) => pick(tz.from_local_datetime(&local)),
            SessionTz::Local => pick(chrono::Local.from_local_datetime(&local)),
        }
    }

    pub fn name(&self) -> String {
        match self {
            SessionTz::Utc => "UTC".into(),
            SessionTz::Named(t) => t.name().into(),
            SessionTz::Fixed(s) => format!(
                "UTC{}{:02}:{:02}",
                if *s < 0 { '-' } else { '+' },
                s.abs() / 3600,
                s.abs() % 3600 / 60
            ),
            SessionTz::Local => std::env::var("TZ").unwrap_or_else(|_| "localtime".into()),
        }
    }
}

/// `+08:00`, `+0800`, `-5`, `+8` to seconds.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = if let Some((h, m)) = rest.split_once(':') {
        (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
    } else if rest.len() == 4 {
        (rest[..2].parse().ok()?, rest[2..].parse().ok()?)
    } else {
        (rest.parse().ok()?, 0)
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn bad_ts(s: &str) -> TaosError {
    TaosError::new(
        Code::PAR_WRONG_VALUE_TYPE,
        format!("Invalid timestamp format: '{s}'"),
    )
}

/// Parse a timestamp string literal into the given precision. Accepts
/// `YYYY-MM-DD[ HH:mm:ss[.fraction]]`, the same with `T`, and an optional `Z` or `±hh[:mm]`
/// offset; without an offset the session zone applies.
pub fn parse_timestamp(s: &str, precision: Precision, tz: SessionTz) -> TaosResult<i64> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad_ts(s));
    }
    let num = |r: std::ops::Range<usize>| -> TaosResult<u32> {
        t.get(r)
            .and_then(|x| x.parse::<u32>().ok())
            .ok_or_else(|| bad_ts(s))
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
        .ok_or_else(|| bad_ts(s))?;
    let mut i = 10;
    let (mut hh, mut mm, mut ss, mut frac_ns) = (0u32, 0u32, 0u32, 0i64);
    if i < b.len() && (b[i] == b' ' || b[i] == b'T' || b[i] == b't') {
        i += 1;
        hh = num(i..i + 2)?;
        if b.get(i + 2) != Some(&b':') {
            return Err(bad_ts(s));
        }
        mm = num(i + 3..i + 5)?;
        i += 5;
        if b.get(i) == Some(&b':') {
            ss = num(i + 1..i + 3)?;
            i += 3;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &t[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return Err(bad_ts(s));
            }
            let v: i64 = digits.parse().map_err(|_| bad_ts(s))?;
            frac_ns = v * 10i64.pow(9 - digits.len() as u32);
        }
    }
    let rest = t[i..].trim();
    let local = date.and_hms_opt(hh, mm, ss).ok_or_else(|| bad_ts(s))?;
    let utc = if rest.is_empty() {
        tz.local_to_utc(local).ok_or_else(|| bad_ts(s))?
    } else if rest == "Z" || rest == "z" {
        local
    } else {
        let off = parse_offset(rest).ok_or_else(|| bad_ts(s))?;
        local - chrono::Duration::seconds(off as i64)
    };
    let secs = utc.and_utc().timestamp() as i128;
    Ok(precision.from_nanos(secs * 1_000_000_000 + frac_ns as i128))
}

/// Render a timestamp as `YYYY-MM-DD HH:mm:ss.SSS[SSS[SSS]]` in the session zone (CLI style).
pub fn format_timestamp(v: i64, precision: Precision, tz: SessionTz) -> String {
    let ns = precision.to_nanos(v);
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let sub = ns.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = DateTime::<Utc>::from_timestamp(secs, 0) else {
        return v.to_string();
    };
    let local = utc.naive_utc() + chrono::Duration::seconds(tz.offset_at(utc.naive_utc()) as i64);
    let base = local.format("%Y-%m-%d %H:%M:%S");
    match precision {
        Precision::Ms => format!("{base}.{:03}", sub / 1_000_000),
        Precision::Us => format!("{base}.{:06}", sub / 1_000),
        Precision::Ns => format!("{base}.{:09}", sub),
    }
}

/// RFC 3339 rendering with the zone's offset, as REST returns timestamps.
pub fn format_rfc3339(v: i64, precision: Precision, tz: SessionTz) -> String {
    let ns = precision.to_nanos(v);
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let sub = ns.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = DateTime::<Utc>::from_timestamp(secs, sub) else {
        return v.to_string();
    };
    let off = tz.offset_at(utc.naive_utc());
    let fixed = FixedOffset::east_opt(off)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let d = utc.with_timezone(&fixed);
    let frac = match precision {
        Precision::Ms => format!("{:03}", sub / 1_000_000),
        Precision::Us => format!("{:06}", sub / 1_000),
        Precision::Ns => format!("{:09}", sub),
    };
    let offs = if off == 0 {
        "Z".to_string()
    } else {
        format!(
            "{}{:02}:{:02}",
            if off < 0 { '-' } else { '+' },
            off.abs() / 3600,
            off.abs() % 3600 / 60
        )
    };
    format!("{}.{frac}{offs}", d.format("%Y-%m-%dT%H:%M:%S"))
}

/// A duration literal: integer and a unit among b(ns) u(us) a(ms) s m h d w (also n/y for
/// calendar months/years, which only INTERVAL accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationLit {
    pub value: i64,
    pub unit: char,
}

impl DurationLit {
    /// Parse `10d`, `1h`, `500a`; `default_unit` is used for a bare number.
    pub fn parse(s: &str, default_unit: Option<char>) -> Option<DurationLit> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '-')
            .unwrap_or(s.len());
        let value: i64 = s[..split].parse().ok()?;
        let unit_str = &s[split..];
        let unit = if unit_str.is_empty() {
            default_unit?
        } else if unit_str.len() == 1 {
            unit_str.chars().next()?.to_ascii_lowercase()
        } else {
            return None;
        };
        if !"buasmhdwny".contains(unit) {
            return None;
        }
        Some(DurationLit { value, unit })
    }

    /// Length in nanoseconds; months and years as 30 and 365 days.
    pub fn nanos(&self) -> Option<i128> {
        let per: i128 = match self.unit {
            'b' => 1,
            'u' => 1_000,
            'a' => 1_000_000,
            's' => 1_000_000_000,
            'm' => 60_000_000_000,
            'h' => 3_600_000_000_000,
            'd' => 86_400_000_000_000,
            'w' => 7 * 86_400_000_000_000,
            'n' => 30 * 86_400_000_000_000,
            'y' => 365 * 86_400_000_000_000,
            _ => return None,
        };
        Some(self.value as i128 * per)
    }

    /// Length in units of a precision (truncated).
    pub fn in_precision(&self, p: Precision) -> Option<i64> {
        let ns = self.nanos()?;
        i64::try_from(ns / (1_000_000_000 / p.per_second()) as i128).ok()
    }

    pub fn minutes(&self) -> Option<i64> {
        self.nanos().map(|n| (n / 60_000_000_000) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let tz = SessionTz::parse("Asia/Shanghai").unwrap();
        let v = parse_timestamp("2024-01-01 08:00:00.123", Precision::Ms, tz).unwrap();
        assert_eq!(v, 1_704_067_200_123);
        assert_eq!(
            format_timestamp(v, Precision::Ms, tz),
            "2024-01-01 08:00:00.123"
        );
        assert_eq!(
            format_rfc3339(v, Precision::Ms, tz),
            "2024-01-01T08:00:00.123+08:00"
        );
        let u = parse_timestamp("2024-01-01T00:00:00.000001Z", Precision::Us, tz).unwrap();
        assert_eq!(u, 1_704_067_200_000_001);
        let n =
            parse_timestamp("2024-01-01T00:00:00+00:00", Precision::Ns, SessionTz::Utc).unwrap();
        assert_eq!(n, 1_704_067_200_000_000_000);
        assert!(parse_timestamp("2024-13-01", Precision::Ms, tz).is_err());
        assert!(parse_timestamp("yesterday", Precision::Ms, tz).is_err());
        assert_eq!(
            parse_timestamp("2024-01-01", Precision::Ms, SessionTz::Utc).unwrap(),
            1_704_067_200_000
        );
    }

    #[test]
    fn zones_and_durations() {
        assert_eq!(SessionTz::parse("UTC+8"), Some(SessionTz::Fixed(8 * 3600)));
        assert_eq!(
            SessionTz::parse("+05:30"),
            Some(SessionTz::Fixed(5 * 3600 + 1800))
        );
        assert_eq!(
            DurationLit::parse("10d", None).unwrap().minutes(),
            Some(14400)
        );
        assert_eq!(
            DurationLit::parse("3650", Some('d')).unwrap().minutes(),
            Some(3650 * 1440)
        );
        assert_eq!(
            DurationLit::parse("1h", None)
                .unwrap()
                .in_precision(Precision::Us),
            Some(3_600_000_000)
        );
        assert!(DurationLit::parse("1x", None).is_none());
    }
}
