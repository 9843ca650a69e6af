//! Task definitions: where points come from (a source DSN), how payloads become rows of a super
//! table (the mapping), which database they go to, and optionally which agent runs the task.
//! taosx validates a definition when it is created, so a task that cannot work is refused with
//! the reason instead of failing later at a field site.

use crate::mapping::Mapping;
use crate::sources::mqtt::MqttSource;
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
    Csv(crate::sources::csv::CsvSource),
    /// AVEVA PI through the PI Web API (`pi://host?points=...`).
    Pi(crate::sources::pi::PiSource),
    /// An OPC-UA server (`opcua://host:4840/path?nodes=...`).
    OpcUa(crate::sources::opcua::OpcUaSource),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SpecError(pub String);

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

impl Source {
    /// Parse a source DSN: `pi://`, `csv:`, `opcua://` (see each source), or
    /// `mqtt://[user[:pass]@]host[:port]?topics=a/+/c::1,b::0[&version=5]
    /// [&client_id=x][&keep_alive=30][&ca=/path/ca.pem]`; `mqtts://` is MQTT over TLS.
    pub fn parse(dsn: &str) -> Result<Source, SpecError> {
        if dsn.starts_with("pi://") || dsn.starts_with("pis://") {
            return crate::sources::pi::PiSource::parse(dsn)
                .map(Source::Pi)
                .map_err(SpecError);
        }
        if dsn.starts_with("csv:") {
            return crate::sources::csv::CsvSource::parse(dsn)
                .map(Source::Csv)
                .map_err(SpecError);
        }
        if crate::sources::opcua::source::is_opcua_dsn(dsn) {
            return crate::sources::opcua::OpcUaSource::parse(dsn)
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
        MqttSource::parse(rest, tls)
            .map(Source::Mqtt)
            .map_err(SpecError)
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
        use crate::sources::mqtt::topic_matches;
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(validate_db("edge_1").is_ok());
        assert!(validate_db("1x").is_err() && validate_db("a.b").is_err());
    }
}
