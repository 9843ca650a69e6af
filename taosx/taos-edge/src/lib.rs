//! The edge link shared by `taosx` and `taosx-agent`.
//!
//! | module | what |
//! |---|---|
//! | [`link`] | messages between agent and taosx over QUIC (framing, limits) |
//! | [`tls`] | self-signed certificates, fingerprints, the pinning verifier |
//! | [`task`] | task definitions: source DSN, sink database, mapping |
//! | [`dsn`] | helpers of every source's DSN parser (percent-decoding, durations) |
//! | [`mapping`] | JSON payloads to rows of a super table |
//! | [`commit`] | the collector contract (commit, then ack), task counters, the error policy |
//! | [`sources`] | the sources (CSV, PI, MQTT, OPC-UA) and running a task's source |
//! | [`ship`] | shipping the buffer over a QUIC session with acks |
//! | [`buffer`] | the agent's durable SQLite point buffer |
//! | [`config`] | TOML + environment + flags, with unknown keys reported |

pub mod buffer;
pub mod commit;
pub mod config;
pub mod dsn;
pub mod link;
pub mod mapping;
pub mod ship;
pub mod sources;
pub mod task;
pub mod tls;
pub mod transform;

/// Points (rows) for one task in the shape taosd writes them.
pub type Batch = common::wire::WriteRequest;

/// Rows in a batch.
pub fn points(b: &Batch) -> u64 {
    b.tables.iter().map(|t| t.rows.len() as u64).sum()
}
