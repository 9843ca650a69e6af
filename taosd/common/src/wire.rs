//! The client <-> taosd protocol on serverPort (TCP).
//!
//! Frame: `u32 length (big endian, of what follows) | u64 request id | bincode(message)`.
//! A connection starts with `Connect`, which authenticates it; every later request names its
//! request id, echoed in the reply, so a client may pipeline. Query results are fetched in
//! blocks: `Query` answers with the header and the first block, `Fetch` gives the next ones.

use crate::block::{Block, Field};
use crate::error::{Code, TaosError, TaosResult};
use crate::time::Precision;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted: a 64 MiB SQL statement plus headroom.
pub const MAX_FRAME: usize = 80 << 20;
/// Rows per result block.
pub const BLOCK_ROWS: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Connect {
        user: String,
        password: String,
        db: Option<String>,
        tz: Option<String>,
        app: String,
    },
    /// Run one or more `;`-separated statements; the reply describes the last.
    Query {
        sql: String,
    },
    Fetch {
        result_id: u64,
    },
    /// Bulk rows without SQL text (schemaless, stmt, taosX): typed values, timestamps in
    /// `precision` (converted to the database's precision by the server).
    Write(WriteRequest),
    FreeResult {
        result_id: u64,
    },
    Ping,
    /// Data subscription (consumers, polls, offsets).
    Tmq(crate::tmq::TmqRequest),
}

/// Rows for several tables of one database.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteRequest {
    pub db: String,
    pub precision: Precision,
    pub tables: Vec<WriteTable>,
}

/// Rows of one table. `columns` names the values of each row; the first must be the table's
/// timestamp column. Columns not named are NONE (keep older values on overwrite).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteTable {
    pub name: String,
    /// Create the child table first if it does not exist (ignored when it does).
    pub using: Option<WriteUsing>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<crate::Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteUsing {
    pub stable: String,
    pub tag_names: Vec<String>,
    pub tags: Vec<crate::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Connected {
        conn_id: u64,
        server_version: String,
        cluster_id: u64,
        db: Option<String>,
    },
    /// The request must go to another endpoint (e.g. the mnode or a vgroup leader).
    Redirect {
        ep: String,
    },
    /// A statement without a result set (DDL, INSERT).
    Executed {
        affected_rows: i64,
        db: Option<String>,
    },
    ResultSet {
        result_id: u64,
        fields: Vec<Field>,
        precision: Precision,
        block: Block,
        completed: bool,
    },
    Block {
        block: Block,
        completed: bool,
    },
    Error(TaosError),
    Pong,
    Freed,
    Tmq(crate::tmq::TmqResponse),
}

fn frame_err(msg: impl Into<String>) -> TaosError {
    TaosError::new(Code::INVALID_MSG, msg)
}

pub fn encode<T: Serialize>(req_id: u64, msg: &T) -> TaosResult<Vec<u8>> {
    let body = bincode::serialize(msg).map_err(|e| frame_err(format!("encode: {e}")))?;
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(&req_id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decode a frame body (after the length prefix).
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> TaosResult<(u64, T)> {
    if frame.len() < 8 {
        return Err(frame_err("truncated frame"));
    }
    let req_id = u64::from_be_bytes(
        frame[..8]
            .try_into()
            .map_err(|_| frame_err("truncated frame"))?,
    );
    // Same encoding as `bincode::serialize`, with a size limit so a hostile length prefix
    // cannot make the decoder allocate more than the frame could hold.
    use bincode::Options;
    let m = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(frame.len() as u64)
        .deserialize(&frame[8..])
        .map_err(|e| frame_err(format!("malformed message: {e}")))?;
    Ok((req_id, m))
}

/// Read one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> TaosResult<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_FRAME).contains(&len) {
        return Err(frame_err(format!("invalid frame length {len}")));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    req_id: u64,
    msg: &T,
) -> TaosResult<()> {
    let bytes = encode(req_id, msg)?;
    w.write_all(&bytes).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_reject_garbage() {
        let bytes = encode(
            7,
            &Request::Query {
                sql: "select 1".into(),
            },
        )
        .unwrap();
        let mut r = &bytes[..];
        let f = read_frame(&mut r).await.unwrap().unwrap();
        let (id, m): (u64, Request) = decode(&f).unwrap();
        assert_eq!(id, 7);
        assert!(matches!(m, Request::Query { sql } if sql == "select 1"));
        let garbage = [0xFFu8, 0xFF, 0xFF, 0xFF, 1, 2];
        let mut g = &garbage[..];
        assert!(read_frame(&mut g).await.is_err());
        assert!(decode::<Request>(&[0, 0, 0, 0, 0, 0, 0, 1, 0xEE, 0xEE, 0xEE]).is_err());
    }

    /// Random and mutated frames never panic the decoder (the server reads untrusted bytes).
    #[test]
    fn garbage_frames_never_panic() {
        let valid = [
            encode(
                1,
                &Request::Query {
                    sql: "select * from t".into(),
                },
            )
            .unwrap(),
            encode(
                2,
                &Request::Connect {
                    user: "root".into(),
                    password: "taosdata".into(),
                    db: None,
                    tz: None,
                    app: "x".into(),
                },
            )
            .unwrap(),
            encode(
                3,
                &Request::Write(WriteRequest {
                    db: "d".into(),
                    ..Default::default()
                }),
            )
            .unwrap(),
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..100_000 {
            let mut f = valid[i % valid.len()][4..].to_vec();
            for _ in 0..(next() % 6 + 1) {
                let r = next();
                match r % 4 {
                    0 if !f.is_empty() => {
                        let at = (r as usize / 4) % f.len();
                        f[at] = (r >> 32) as u8;
                    }
                    1 => f.truncate((r as usize / 4) % (f.len() + 1)),
                    2 => f.extend_from_slice(&(r.to_le_bytes())),
                    _ => {
                        let at = (r as usize / 4) % (f.len() + 1);
                        f.splice(at..at, [0xFF; 8]);
                    }
                }
            }
            let _ = decode::<Request>(&f);
            let _ = decode::<Response>(&f);
        }
    }
}
