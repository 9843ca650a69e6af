//! The agent <-> taosx protocol on QUIC (UDP 6055, ALPN `taosx-agent/1`, TLS 1.3).
//!
//! The agent dials out and opens one bidirectional stream. On it, each message is a frame:
//! `u32 length (big endian) | bincode(message)`. The agent says `Hello` with its token; taosx
//! answers `Welcome` (then the agent's tasks as `Tasks`, and again whenever they change) or
//! `Refused` and closes. Batches flow agent -> taosx, each naming the buffer sequence numbers it
//! carries; taosx answers `Ack` once taosd has the rows, and only then does the agent delete them.
//! Batches are pipelined (a window of them in flight) and acknowledged in order per task.

pub use crate::tls::ALPN;

use crate::task::TaskSpec;
use serde::{Deserialize, Serialize};

/// A value as JSON text inside a bincode frame.
mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}
/// Largest frame accepted: a compressed batch of many thousand points fits easily.
pub const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AgentMsg {
    Hello {
        token: String,
        instance_id: String,
        version: String,
    },
    /// Rows of buffer entries `first_seq..=last_seq` of one task, lz4-compressed bincode of a
    /// [`crate::Batch`] when `compressed`.
    Batch {
        task_id: String,
        first_seq: u64,
        last_seq: u64,
        points: u64,
        compressed: bool,
        payload: Vec<u8>,
    },
    /// Collector counters of a task running on the agent.
    Status {
        task_id: String,
        received: u64,
        errors: u64,
        buffered: u64,
        dropped: u64,
        /// Age of the oldest point still buffered (0 when none).
        lag_ms: i64,
        last_error: Option<String>,
    },
    Heartbeat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ServerMsg {
    Welcome {
        agent_id: String,
    },
    Refused {
        reason: String,
    },
    /// The tasks this agent must run now (replaces the previous list). Carried as JSON inside
    /// the frame: task definitions gain options over time, and JSON lets an agent read a
    /// definition with fields it does not know, or without ones it expects (defaults).
    Tasks(#[serde(with = "json_text")] Vec<TaskSpec>),
    /// Entries up to `upto` of `task_id` are in taosd: delete them.
    Ack {
        task_id: String,
        upto: u64,
    },
    /// The batch could not be written (taosd error): the agent keeps it and retries later.
    Nack {
        task_id: String,
        seq: u64,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("link read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("link write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
}

pub async fn send<T: Serialize>(w: &mut quinn::SendStream, msg: &T) -> Result<(), LinkError> {
    let body = bincode::serialize(msg).map_err(|e| LinkError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(LinkError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    Ok(())
}

/// Next message, or `None` when the peer finished the stream.
pub async fn recv<T: for<'de> Deserialize<'de>>(
    r: &mut quinn::RecvStream,
) -> Result<Option<T>, LinkError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(LinkError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

/// Bounded decode: a hostile length inside the body cannot make us allocate more than it holds.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, LinkError> {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(body.len() as u64 * 4 + 1024)
        .deserialize(body)
        .map_err(|e| LinkError::Malformed(e.to_string()))
}

/// Compress a batch for the link.
pub fn pack(batch: &crate::Batch, compress: bool) -> Result<Vec<u8>, LinkError> {
    let raw = bincode::serialize(batch).map_err(|e| LinkError::Malformed(e.to_string()))?;
    Ok(if compress {
        lz4_flex::compress_prepend_size(&raw)
    } else {
        raw
    })
}

pub fn unpack(payload: &[u8], compressed: bool) -> Result<crate::Batch, LinkError> {
    if compressed {
        // The prepended size is checked against the frame limit before allocating.
        if payload.len() >= 4 {
            let n = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
            if n > MAX_FRAME * 4 {
                return Err(LinkError::TooLarge(n));
            }
        }
        let raw = lz4_flex::decompress_size_prepended(payload)
            .map_err(|e| LinkError::Malformed(e.to_string()))?;
        decode(&raw)
    } else {
        decode(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::{WriteRequest, WriteTable};
    use common::Value;

    #[test]
    fn batches_round_trip_and_garbage_is_refused() {
        let b = WriteRequest {
            db: "edge".into(),
            tables: vec![WriteTable {
                name: "t_1".into(),
                columns: vec!["ts".into(), "v".into()],
                rows: vec![vec![Value::Timestamp(1), Value::Double(2.5)]],
                ..Default::default()
            }],
            ..Default::default()
        };
        for compress in [true, false] {
            let p = pack(&b, compress).unwrap();
            let back = unpack(&p, compress).unwrap();
            assert_eq!(back.tables[0].rows, b.tables[0].rows);
        }
        assert!(unpack(&[0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3], true).is_err());
        assert!(unpack(&[1, 2, 3], false).is_err());
        assert!(decode::<AgentMsg>(&[9, 9, 9, 9, 9]).is_err());
    }

    #[test]
    fn task_lists_travel_as_json() {
        let mapping: crate::mapping::Mapping = serde_json::from_value(serde_json::json!({
            "stable": "opc_{type}", "table": "t_{id}",
            "columns": [{"name": "val", "type": "{type}", "field": "value", "transform": "val*2"}],
            "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
        }))
        .unwrap();
        let spec = TaskSpec {
            id: "t1".into(),
            name: "opc".into(),
            source: crate::task::Source::parse("opcua://127.0.0.1:4840?nodes=ns=2;s=v1").unwrap(),
            db: "plant".into(),
            mapping,
        };
        let body = bincode::serialize(&ServerMsg::Tasks(vec![spec.clone()])).unwrap();
        match decode::<ServerMsg>(&body).unwrap() {
            ServerMsg::Tasks(list) => assert_eq!(list, vec![spec.clone()]),
            other => panic!("{other:?}"),
        }
        // A newer taosx's definition with a field this agent does not know still reads.
        let mut json = serde_json::to_value(vec![&spec]).unwrap();
        json[0]["mapping"]["columns"][0]["unit"] = serde_json::json!("degC");
        let body = bincode::serialize(&json.to_string()).unwrap();
        let mut framed = bincode::serialize(&ServerMsg::Tasks(Vec::new())).unwrap();
        framed.truncate(4); // the variant index
        framed.extend_from_slice(&body);
        match decode::<ServerMsg>(&framed).unwrap() {
            ServerMsg::Tasks(list) => assert_eq!(list[0].mapping, spec.mapping),
            other => panic!("{other:?}"),
        }
    }
}
