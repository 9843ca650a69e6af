//! TMQ (data subscription) vocabulary shared by taosd, taosc and taosadapter: consumer
//! configuration as TDengine's `tmq_conf_set` keys, and the subscription requests carried by
//! [`crate::wire::Request::Tmq`].
//!
//! Offsets are WAL versions of a vgroup. A *position* is the next version a consumer will read;
//! committing stores positions, so after a restart the group resumes exactly there.

use crate::block::{Block, Field};
use crate::error::{Code, TaosError, TaosResult};
use crate::time::Precision;
use serde::{Deserialize, Serialize};

/// What `committed()` reports for a partition without a committed offset: TDengine's
/// TSDB_CODE_TMQ_NO_COMMITTED as a negative int32, which its clients expect.
pub const NO_COMMITTED_OFFSET: i64 = -2147467247;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OffsetReset {
    #[default]
    Earliest,
    Latest,
    /// No committed offset is an error.
    None,
}

impl OffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "none",
        }
    }
}

/// A consumer's settings, parsed from TDengine's configuration keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerConfig {
    pub group_id: String,
    pub client_id: String,
    pub auto_offset_reset: OffsetReset,
    /// Committing is done by the client library every `auto_commit_interval_ms`.
    pub auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub with_table_name: bool,
    /// Accepted for compatibility; data is read from the WAL only.
    pub snapshot: bool,
    /// A consumer without a heartbeat for this long is dropped and its vgroups rebalanced.
    pub session_timeout_ms: u64,
    /// A consumer that heartbeats but does not poll for this long is dropped too.
    pub max_poll_interval_ms: u64,
    /// Connection settings (`td.connect.*`), used by clients, not sent to the server.
    #[serde(skip)]
    pub connect: ConnectKeys,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectKeys {
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub db: Option<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: String::new(),
            client_id: String::new(),
            auto_offset_reset: OffsetReset::Earliest,
            auto_commit: true,
            auto_commit_interval_ms: 5000,
            with_table_name: true,
            snapshot: false,
            session_timeout_ms: 12_000,
            max_poll_interval_ms: 300_000,
            connect: ConnectKeys::default(),
        }
    }
}

fn invalid_value(key: &str, v: &str) -> TaosError {
    TaosError::new(
        Code::INVALID_PARA,
        format!("invalid value for key '{key}': {v}"),
    )
}

fn parse_bool(key: &str, v: &str) -> TaosResult<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid_value(key, v)),
    }
}

fn parse_ms(key: &str, v: &str, min: u64, max: u64) -> TaosResult<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid_value(key, v)),
    }
}

impl ConsumerConfig {
    /// Build from `(key, value)` pairs as `tmq_conf_set` takes them. Unknown keys and bad values
    /// are refused (code 0x0118) so a typo does not silently change delivery semantics.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> TaosResult<ConsumerConfig> {
        let mut c = ConsumerConfig::default();
        for (k, v) in pairs {
            c.set(k, v)?;
        }
        c.validate()?;
        Ok(c)
    }

    pub fn set(&mut self, key: &str, v: &str) -> TaosResult<()> {
        match key {
            "group.id" => {
                let g = v.trim();
                if g.is_empty() || g.len() > 192 {
                    return Err(invalid_value(key, v));
                }
                self.group_id = g.to_string();
            }
            "client.id" => {
                if v.len() > 256 {
                    return Err(invalid_value(key, v));
                }
                self.client_id = v.to_string();
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match v.trim().to_ascii_lowercase().as_str() {
                    "earliest" | "smallest" => OffsetReset::Earliest,
                    "latest" | "largest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    _ => return Err(invalid_value(key, v)),
                }
            }
            "enable.auto.commit" => self.auto_commit = parse_bool(key, v)?,
            "auto.commit.interval.ms" => {
                self.auto_commit_interval_ms = parse_ms(key, v, 0, i32::MAX as u64)?
            }
            "msg.with.table.name" => self.with_table_name = parse_bool(key, v)?,
            "experimental.snapshot.enable" => self.snapshot = parse_bool(key, v)?,
            "session.timeout.ms" => self.session_timeout_ms = parse_ms(key, v, 6000, 1_800_000)?,
            "max.poll.interval.ms" => {
                self.max_poll_interval_ms = parse_ms(key, v, 1000, i32::MAX as u64)?
            }
            "td.connect.ip" | "td.connect.host" => self.connect.ip = Some(v.to_string()),
            "td.connect.port" => {
                self.connect.port = Some(v.trim().parse().map_err(|_| invalid_value(key, v))?)
            }
            "td.connect.user" => self.connect.user = Some(v.to_string()),
            "td.connect.pass" => self.connect.pass = Some(v.to_string()),
            "td.connect.db" => self.connect.db = Some(v.to_string()).filter(|d| !d.is_empty()),
            // Accepted and without effect here: batch meta, excluded/raw-data consumption, replay,
            // and client-side tuning keys of newer clients.
            "msg.enable.batchmeta"
            | "msg.consume.excluded"
            | "msg.consume.rawdata"
            | "enable.replay"
            | "fetch.max.wait.ms"
            | "min.poll.rows"
            | "td.connect.token"
            | "timezone"
            | "td.connect.tz" => {}
            _ => {
                return Err(TaosError::new(
                    Code::INVALID_PARA,
                    format!("unknown configuration key: {key}"),
                ))
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> TaosResult<()> {
        if self.group_id.is_empty() {
            return Err(TaosError::new(
                Code::INVALID_PARA,
                "invalid value for key 'group.id': group.id is required",
            ));
        }
        Ok(())
    }
}

/// One vgroup of one topic, and an offset in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicVgroup {
    pub topic: String,
    pub vgroup_id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicOffset {
    pub topic: String,
    pub vgroup_id: u32,
    pub offset: i64,
}

/// A vgroup assigned to a consumer: its position and the WAL range it can seek in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub vgroup_id: u32,
    pub offset: i64,
    pub begin: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TmqRequest {
    /// Join `config.group_id` with these topics (replacing any earlier subscription).
    /// `consumer_id` re-uses an identity after a reconnect or a server restart.
    Subscribe {
        consumer_id: Option<u64>,
        config: ConsumerConfig,
        topics: Vec<String>,
    },
    /// Next message of any assigned vgroup; waits up to `timeout_ms` for a write.
    Poll {
        consumer_id: u64,
        timeout_ms: u64,
    },
    /// Store offsets; an empty list commits every current position of the consumer.
    Commit {
        consumer_id: u64,
        offsets: Vec<TopicOffset>,
    },
    Committed {
        consumer_id: u64,
        parts: Vec<TopicVgroup>,
    },
    Position {
        consumer_id: u64,
        parts: Vec<TopicVgroup>,
    },
    Seek {
        consumer_id: u64,
        topic: String,
        vgroup_id: u32,
        offset: i64,
    },
    Assignment {
        consumer_id: u64,
        topic: String,
    },
    Heartbeat {
        consumer_id: u64,
    },
    Unsubscribe {
        consumer_id: u64,
    },
    Close {
        consumer_id: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TmqResponse {
    Subscribed { consumer_id: u64 },
    Message(Option<TmqMessage>),
    Offsets(Vec<i64>),
    Assignment(Vec<Assignment>),
    Done,
}

/// Rows of one table in a message, with the schema they were read with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TmqBlock {
    /// Empty unless the consumer set `msg.with.table.name`.
    pub table_name: String,
    pub fields: Vec<Field>,
    pub block: Block,
}

/// What one poll returns: data of one vgroup of one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TmqMessage {
    pub topic: String,
    pub db: String,
    pub vgroup_id: u32,
    /// The vgroup position after this message (what committing it stores).
    pub offset: i64,
    pub precision: Precision,
    pub blocks: Vec<TmqBlock>,
    /// Table changes (topics `WITH META`), as TDengine's JSON meta objects
    /// (`{"type":"create","tableType":"child",...}`, `{"type":"drop",...}`).
    pub meta: Vec<String>,
}

impl TmqMessage {
    pub fn rows(&self) -> usize {
        self.blocks.iter().map(|b| b.block.rows).sum()
    }

    /// TDengine's message type: 1 data, 2 table meta, 3 meta and data.
    pub fn message_type(&self) -> u8 {
        match (self.meta.is_empty(), self.blocks.is_empty()) {
            (true, _) => 1,
            (false, true) => 2,
            (false, false) => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_and_errors() {
        let c = ConsumerConfig::from_pairs([
            ("group.id", "g1"),
            ("client.id", "c1"),
            ("auto.offset.reset", "latest"),
            ("enable.auto.commit", "false"),
            ("msg.with.table.name", "true"),
            ("session.timeout.ms", "6000"),
        ])
        .unwrap();
        assert_eq!(c.group_id, "g1");
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert!(!c.auto_commit);
        assert_eq!(c.session_timeout_ms, 6000);
        let e = ConsumerConfig::from_pairs([("group.id", "g"), ("bogus.key", "1")]).unwrap_err();
        assert!(e.is(Code::INVALID_PARA));
        assert!(e
            .to_string()
            .contains("unknown configuration key: bogus.key"));
        let e = ConsumerConfig::from_pairs([("group.id", "g"), ("auto.offset.reset", "x")])
            .unwrap_err();
        assert!(e
            .to_string()
            .contains("invalid value for key 'auto.offset.reset'"));
        assert!(ConsumerConfig::from_pairs([("client.id", "c")]).is_err());
        assert!(
            ConsumerConfig::from_pairs([("group.id", "g"), ("session.timeout.ms", "10")]).is_err()
        );
    }
}
