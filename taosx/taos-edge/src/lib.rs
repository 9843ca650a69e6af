//! The edge link shared by `taosx` and `taosx-agent`.
//!
//! | module | what |
//! |---|---|
//! | [`link`] | messages between agent and taosx over QUIC (framing, limits) |
//! | [`tls`] | self-signed certificates, fingerprints, the pinning verifier |
//! | [`task`] | task definitions: source DSN, sink database, mapping |
//! | [`mapping`] | JSON payloads to rows of a super table |
//! | [`collect`] | running a task's source: the collector contract (commit, then ack) |
//! | [`csv`] | the CSV file source |
//! | [`pi`] | AVEVA PI over the PI Web API (back-fill, then polling; resumes where it stopped) |
//! | [`http`] | a small HTTP/1.1 client for REST sources |
//! | [`mqtt`] | the MQTT collector (3.1.1 and 5) with broker acks after durable hand-off |
//! | [`opcua`] | the OPC-UA collector (subscription or polling, security, failover) |
//! | [`ship`] | shipping the buffer over a QUIC session with acks |
//! | [`buffer`] | the agent's durable SQLite point buffer |
//! | [`config`] | TOML + environment + flags, with unknown keys reported |

pub mod buffer;
pub mod collect;
pub mod config;
pub mod csv;
pub mod http;
pub mod link;
pub mod mapping;
pub mod mqtt;
pub mod opcua;
pub mod pi;
pub mod ship;
pub mod task;
pub mod tls;
pub mod transform;

/// Points (rows) for one task in the shape taosd writes them.
pub type Batch = common::wire::WriteRequest;

/// Rows in a batch.
pub fn points(b: &Batch) -> u64 {
    b.tables.iter().map(|t| t.rows.len() as u64).sum()
}
