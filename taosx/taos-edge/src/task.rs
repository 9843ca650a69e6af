//! Task definitions: where points come from (a source DSN), how payloads become rows of a super
//! table (the mapping), which database they go to, and optionally which agent runs the task.
//! taosx validates a definition when it is created, so a task that cannot work is refused with
//! the reason instead of failing later at a field site.

use crate::mapping::Mapping;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: String,
    pub name: String,
    pub source: Source,
    /// Target database (created if missing).
    pub db: String,
    pub mapping: Mapping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    Mqtt(MqttSource),
    /// A file imported once (`csv:///path/file.csv`).
    Csv(crate::csv::CsvSource),
    /// AVEVA PI through the PI Web API (`pi://host?points=...`).
    Pi(crate::pi::PiSource),
    /// An OPC-UA server (`opcua://host:4840/path?nodes=...`).
    OpcUa(crate::opcua::OpcUaSource),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttSource {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// 3 (3.1.1) or 5.
    pub version: u8,
    pub client_id: String,
    /// (topic filter, QoS).
    pub topics: Vec<(String, u8)>,
    pub tls: bool,
    /// CA certificate (PEM) for TLS; without it the system roots are not consulted, so TLS
    /// needs a CA here.
    pub ca: Option<String>,
    pub keep_alive_s: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SpecError(pub String);

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

/// Percent-decoding for DSN user, password and values.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        // `+` stays `+`: it is MQTT's single-level wildcard, not a space.
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `10s`, `500ms`, `1m`, or a bare number of seconds.
pub fn parse_duration_ms(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (v, 1000.0)
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * mult < 1e12 => Ok((n * mult) as u64),
        _ => Err(format!("invalid duration '{v}' (e.g. 10s, 500ms, 1m)")),
    }
}

impl Source {
    /// Parse a source DSN: `mqtt://[user[:pass]@]host[:port]?topics=a/+/c::1,b::0[&version=5]
    /// [&client_id=x][&keep_alive=30][&ca=/path/ca.pem]`; `mqtts://` is MQTT over TLS.
    pub fn parse(dsn: &str) -> Result<Source, SpecError> {
        if dsn.starts_with("pi://") || dsn.starts_with("pis://") {
            return crate::pi::PiSource::parse(dsn)
                .map(Source::Pi)
                .map_err(SpecError);
        }
        if dsn.starts_with("csv:") {
            return crate::csv::CsvSource::parse(dsn)
                .map(Source::Csv)
                .map_err(SpecError);
        }
        if crate::opcua::source::is_opcua_dsn(dsn) {
            return crate::opcua::OpcUaSource::parse(dsn)
                .map(Source::OpcUa)
                .map_err(SpecError);
        }
        let (scheme, rest) = dsn.split_once("://").ok_or_else(|| {
            bad(format!(
                "source DSN '{dsn}' has no scheme (expected mqtt://...)"
            ))
        })?;
        let tls = match scheme {
            "mqtt" | "mqtt+tcp" => false,
            "mqtts" | "mqtt+tls" => true,
            other => {
                return Err(bad(format!(
                    "source '{other}' is not supported (supported: mqtt, mqtts, csv, pi, opcua)"
                )))
            }
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(unescape(a)), Some(unescape(b))),
                None => (Some(unescape(u)), None),
            },
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| bad(format!("invalid MQTT port '{p}'")))?,
            ),
            None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(bad("the MQTT broker host is missing"));
        }
        let mut m = MqttSource {
            host,
            port,
            username,
            password,
            version: 3,
            client_id: String::new(),
            topics: Vec::new(),
            tls,
            ca: None,
            keep_alive_s: 30,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = unescape(v);
            match k {
                "topics" | "topic" => {
                    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let (name, qos) = match t.rsplit_once("::") {
                            Some((n, q)) => (
                                n,
                                q.parse::<u8>().ok().filter(|q| *q <= 2).ok_or_else(|| {
                                    bad(format!("invalid QoS in '{t}' (0, 1 or 2)"))
                                })?,
                            ),
                            None => (t, 1),
                        };
                        m.topics.push((name.to_string(), qos));
                    }
                }
                "version" => {
                    m.version = match v.as_str() {
                        "3" | "3.1" | "3.1.1" | "4" => 3,
                        "5" | "5.0" => 5,
                        _ => return Err(bad(format!("MQTT version '{v}' (3.1.1 or 5)"))),
                    }
                }
                "client_id" => m.client_id = v,
                "keep_alive" => {
                    m.keep_alive_s = v
                        .parse()
                        .map_err(|_| bad(format!("invalid keep_alive '{v}'")))?
                }
                "ca" => m.ca = Some(v),
                "tls" => m.tls = matches!(v.as_str(), "true" | "1"),
                other => return Err(bad(format!("unknown MQTT option '{other}'"))),
            }
        }
        if m.topics.is_empty() {
            return Err(bad("no MQTT topics (add ?topics=a/b::1,c/#::0)"));
        }
        for (t, _) in &m.topics {
            validate_filter(t)?;
        }
        Ok(Source::Mqtt(m))
    }
}

/// MQTT topic filter rules: `#` only last and alone in its level, `+` alone in its level.
fn validate_filter(t: &str) -> Result<(), SpecError> {
    let levels: Vec<&str> = t.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if (l.contains('#') && (*l != "#" || i + 1 != levels.len()))
            || (l.contains('+') && *l != "+")
        {
            return Err(bad(format!("invalid MQTT topic filter '{t}'")));
        }
    }
    Ok(())
}

/// Does topic `name` match filter `filter`?
pub fn topic_matches(filter: &str, name: &str) -> bool {
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

pub fn validate_db(db: &str) -> Result<(), SpecError> {
    if db.is_empty()
        || db.len() > 64
        || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || db.chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        return Err(bad(format!(
            "invalid target database name '{db}' (letters, digits and _, not starting with a digit)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_dsns() {
        let Source::Mqtt(m) = Source::parse(
            "mqtt://u%40x:p%3Aw@broker.local:11883?topics=a/+/c::1,b/%23::0&version=5&client_id=edge1",
        )
        .unwrap() else {
            panic!("not mqtt")
        };
        assert_eq!(m.username.as_deref(), Some("u@x"));
        assert_eq!(m.password.as_deref(), Some("p:w"));
        assert_eq!(
            (m.host.as_str(), m.port, m.version),
            ("broker.local", 11883, 5)
        );
        assert_eq!(m.topics, vec![("a/+/c".into(), 1), ("b/#".into(), 0)]);
        let Source::Mqtt(m) = Source::parse("mqtts://h?topics=x").unwrap() else {
            panic!("not mqtt")
        };
        assert!(matches!(
            Source::parse("csv:///tmp/a.csv"),
            Ok(Source::Csv(_))
        ));
        assert_eq!((m.port, m.tls, m.topics[0].1), (8883, true, 1));
        for bad in [
            "http://h?topics=x",
            "mqtt://h",
            "mqtt://h:99999?topics=x",
            "mqtt://h?topics=a/#/b",
            "mqtt://h?topics=a::7",
            "mqtt://h?topics=x&bogus=1",
            "mqtt://?topics=x",
            "nonsense",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(validate_db("edge_1").is_ok());
        assert!(validate_db("1x").is_err() && validate_db("a.b").is_err());
    }
}
