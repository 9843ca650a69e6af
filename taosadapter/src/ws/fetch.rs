//! Fetching results: binary fetch (action 7), legacy `fetch` + `fetch_block`, `free_result`,
//! `num_fields` (PROTOCOLS.md §4.3).
//!
//! Each registered result owns a taosc [`ResultSet`] streaming blocks from taosd, read ahead by
//! a task (see [`Entry`]). A block is encoded straight into a reused buffer behind the frame
//! header, so the hot path allocates once per block, not per value. A finished or failed result
//! is dropped at once; dropping an unfinished one frees it on taosd.

use super::block;
use super::conn::{parse_args, Session};
use super::{timing, Reply, WsError, WsResult};
use serde_json::Value as Json;
use std::time::Instant;
use taosc::ResultSet;

/// Blocks read ahead per result: taosd keeps streaming while the client reads the last one.
const READ_AHEAD: usize = 2;

/// One read-ahead item: a "new" fetch frame holding one block (header fields at fixed offsets,
/// `req_id` and `timing` patched at send time), or the end / an error.
type Item = Result<Option<Vec<u8>>, common::TaosError>;

/// Byte offset of the raw block in a successful fetch frame (message length 0).
const BLOCK_AT: usize = 55;

/// A registered result set. A task owns the taosc [`ResultSet`] and encodes blocks ahead of the
/// client's fetches into a bounded channel; dropping the entry stops the task, which drops the
/// result set (freeing it on taosd).
pub struct Entry {
    rx: tokio::sync::mpsc::Receiver<Item>,
    task: tokio::task::JoinHandle<()>,
    fields_count: usize,
    /// The block read by the last legacy `fetch`, for `fetch_block`.
    pending: Option<Vec<u8>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Entry {
    pub fn new(id: u64, mut rs: ResultSet) -> Entry {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let fields_count = rs.fields().len();
        let task = tokio::spawn(async move {
            // Reused for every block; each frame is copied out once (no per-value allocation).
            let mut scratch = Vec::new();
            loop {
                let item = match rs.next_block().await {
                    Ok(Some(b)) => {
                        scratch.clear();
                        frame_head(&mut scratch, 0, id, 0, "");
                        scratch.push(0);
                        scratch.extend_from_slice(&[0; 4]);
                        let n = block::encode(&mut scratch, rs.fields(), &b);
                        scratch[BLOCK_AT - 4..BLOCK_AT].copy_from_slice(&(n as u32).to_le_bytes());
                        Ok(Some(scratch.clone()))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                let last = !matches!(item, Ok(Some(_)));
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Entry {
            rx,
            task,
            fields_count,
            pending: None,
        }
    }

    pub fn fields_count(&self) -> usize {
        self.fields_count
    }

    async fn next(&mut self) -> Item {
        match self.rx.recv().await {
            Some(item) => item,
            None => Err(common::TaosError::new(
                common::Code::INTERNAL,
                "result reader stopped",
            )),
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct IdArgs {
    id: u64,
    result_id: Option<u64>,
}

/// Marker of the "new" binary reply shape.
const NEW_FRAME: u64 = u64::MAX;

/// Binary action 7: `[u16 version=1]`, resource id = result id. Always answers with a binary
/// frame: a block (`finished=0`) or the end / an error (`finished=1`).
pub async fn binary_fetch(
    s: &mut Session,
    req_id: u64,
    id: u64,
    payload: &[u8],
    started: Instant,
) -> Vec<u8> {
    let mut buf = std::mem::take(&mut s.scratch);
    buf.clear();
    if payload.len() < 2 {
        frame_head(&mut buf, req_id, id, 0xFFFF, "message length is too short");
        buf.push(1);
    } else if u16::from_le_bytes([payload[0], payload[1]]) != 1 {
        let v = u16::from_le_bytes([payload[0], payload[1]]);
        frame_head(
            &mut buf,
            req_id,
            id,
            0xFFFF,
            &format!("unknown fetch version:{v}"),
        );
        buf.push(1);
    } else if s.conn.is_none() {
        frame_head(&mut buf, req_id, id, 0xFFFF, "server not connected");
        buf.push(1);
    } else {
        match s.results.get_mut(&id) {
            None => {
                frame_head(&mut buf, req_id, id, 0xFFFF, "result is nil");
                buf.push(1);
            }
            Some(e) => match e.next().await {
                Ok(Some(frame)) => {
                    let mut frame = frame;
                    frame[18..26].copy_from_slice(&timing(started).to_le_bytes());
                    frame[26..34].copy_from_slice(&req_id.to_le_bytes());
                    s.scratch = buf;
                    return frame;
                }
                Ok(None) => {
                    s.results.remove(&id);
                    frame_head(&mut buf, req_id, id, 0, "");
                    buf.push(1);
                }
                Err(err) => {
                    s.results.remove(&id);
                    let code = err.short_code() as u32;
                    frame_head(&mut buf, req_id, id, code, &err.message);
                    buf.push(1);
                }
            },
        }
    }
    buf[18..26].copy_from_slice(&timing(started).to_le_bytes());
    let out = buf.clone();
    s.scratch = buf;
    out
}

/// `marker, action=7, version=1, timing (patched later), req_id, code, message, result id`.
fn frame_head(buf: &mut Vec<u8>, req_id: u64, id: u64, code: u32, message: &str) {
    buf.extend_from_slice(&NEW_FRAME.to_le_bytes());
    buf.extend_from_slice(&7u64.to_le_bytes());
    buf.extend_from_slice(&1u16.to_le_bytes());
    buf.extend_from_slice(&0u64.to_le_bytes());
    buf.extend_from_slice(&req_id.to_le_bytes());
    buf.extend_from_slice(&(code & 0xFFFF).to_le_bytes());
    buf.extend_from_slice(&(message.len() as u32).to_le_bytes());
    buf.extend_from_slice(message.as_bytes());
    buf.extend_from_slice(&id.to_le_bytes());
}

/// Legacy `fetch`: read the next block and describe it; `completed:true` frees the result.
pub async fn fetch(s: &mut Session, args: &Json) -> WsResult<Reply> {
    let a: IdArgs = parse_args(args)?;
    let id = a.result_id.unwrap_or(a.id);
    let Some(e) = s.results.get_mut(&id) else {
        return Err(WsError::new("result is nil"));
    };
    match e.next().await {
        Ok(Some(frame)) => {
            let block = frame.get(BLOCK_AT..).unwrap_or_default();
            let rows = block
                .get(8..12)
                .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                .unwrap_or(0);
            let ncols = e.fields_count;
            let lengths: Vec<i32> = (0..ncols)
                .map(|i| {
                    let at = block::HEADER_LEN + 5 * ncols + 4 * i;
                    block
                        .get(at..at + 4)
                        .map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                        .unwrap_or(0)
                })
                .collect();
            e.pending = Some(block.to_vec());
            Ok(fields![
                ("id", id),
                ("completed", false),
                ("lengths", lengths),
                ("rows", rows)
            ])
        }
        Ok(None) => {
            s.results.remove(&id);
            Ok(fields![
                ("id", id),
                ("completed", true),
                ("lengths", Json::Null),
                ("rows", 0)
            ])
        }
        Err(err) => {
            s.results.remove(&id);
            Err(err.into())
        }
    }
}

/// Legacy `fetch_block`: `[u64 timing][u64 result id][raw block]` of the last fetched block.
pub fn fetch_block(s: &mut Session, args: &Json) -> WsResult<Reply> {
    let started = Instant::now();
    let a: IdArgs = parse_args(args)?;
    let id = a.result_id.unwrap_or(a.id);
    let Some(e) = s.results.get_mut(&id) else {
        return Err(WsError::new("result is nil"));
    };
    let Some(block) = e.pending.take() else {
        return Err(WsError::new("no block fetched"));
    };
    let mut out = Vec::with_capacity(16 + block.len());
    out.extend_from_slice(&timing(started).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&block);
    Ok(Reply::Binary(out))
}

/// `free_result`: never answered; unknown ids are ignored.
pub fn free_result(s: &mut Session, args: &Json) -> WsResult<Reply> {
    if let Ok(a) = parse_args::<IdArgs>(args) {
        s.results.remove(&a.result_id.unwrap_or(a.id));
    }
    Ok(Reply::None)
}

/// `num_fields` `{result_id}`.
pub fn num_fields(s: &mut Session, args: &Json) -> WsResult<Reply> {
    let a: IdArgs = parse_args(args)?;
    let id = a.result_id.unwrap_or(a.id);
    let n = s
        .results
        .get(&id)
        .map(Entry::fields_count)
        .ok_or_else(|| WsError::new("result is nil"))?;
    Ok(fields![("num_fields", n)])
}
