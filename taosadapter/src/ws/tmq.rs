//! `/rest/tmq`: TDengine's subscription protocol over WebSocket (PROTOCOLS.md §5).
//!
//! One consumer per socket, on its own taosc connection (polls park on the server, so they
//! must not share a pooled session). Only the last polled message can be fetched, either in
//! one `fetch_raw_data` (clients of 3.3.2+) or block by block with `fetch` + `fetch_block`.
//! Closing the socket closes the consumer, which leaves its group at once.

use super::block;
use super::conn::{parse_args, req_id_of, Out};
use super::{json_reply, timing, Reply, WsError, WsResult};
use crate::pool::PoolKey;
use crate::App;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use common::tmq::TmqMessage;
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taosc::Consumer;

/// `GET /rest/tmq`.
pub async fn handler(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(super::MAX_MESSAGE)
        .on_upgrade(move |socket| serve(app, socket))
}

struct Current {
    id: u64,
    msg: TmqMessage,
    /// Next block for the legacy `fetch`; the block `fetch` described, for `fetch_block`.
    next_block: usize,
    described: Option<usize>,
}

struct TmqSession {
    app: Arc<App>,
    consumer: Option<Consumer>,
    current: Option<Current>,
    next_message_id: u64,
}

async fn serve(app: Arc<App>, mut socket: WebSocket) {
    let mut s = TmqSession {
        app,
        consumer: None,
        current: None,
        next_message_id: 0,
    };
    while let Some(msg) = socket.recv().await {
        let out = match msg {
            Ok(Message::Text(t)) => s.on_text(t.as_str()).await,
            Ok(Message::Binary(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => break,
        };
        let msg = match out {
            Some(Out::Text(t)) => Message::Text(t.into()),
            Some(Out::Binary(b)) => Message::Binary(b.into()),
            None => continue,
        };
        if socket.send(msg).await.is_err() {
            break;
        }
    }
    if let Some(c) = s.consumer.take() {
        if let Err(e) = c.close().await {
            tracing::debug!(error = %e, "closing TMQ consumer");
        }
    }
}

#[derive(serde::Deserialize)]
struct Envelope {
    action: String,
    #[serde(default)]
    args: Json,
}

/// A boolean-ish or numeric setting as the string `tmq_conf_set` wants; `null` is absent.
fn setting(args: &Json, key: &str) -> Option<String> {
    match args.get(key)? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn not_init() -> WsError {
    WsError::new("tmq not init")
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct MessageArgs {
    message_id: u64,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PollArgs {
    blocking_time: u64,
    message_id: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct OffsetArgs {
    topic: String,
    vgroup_id: u32,
    offset: i64,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct TopicArgs {
    topic: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PartsArgs {
    topic_vgroup_ids: Vec<TopicArgsVg>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct TopicArgsVg {
    topic: String,
    vgroup_id: u32,
}

impl TmqSession {
    async fn on_text(&mut self, text: &str) -> Option<Out> {
        let started = Instant::now();
        // The Go server drops unparsable requests without a reply; so do we.
        let env: Envelope = serde_json::from_str(text).ok()?;
        let req_id = req_id_of(&env.args);
        let action = env.action.as_str();
        let result = match action {
            "version" => Ok(fields![("version", common::SERVER_VERSION)]),
            "subscribe" => self.subscribe(&env.args).await,
            "poll" => self.poll(&env.args).await,
            "fetch_raw_data" => self.fetch_raw_data(&env.args, req_id, started),
            "fetch" => self.fetch(&env.args),
            "fetch_block" => self.fetch_block(&env.args, req_id, started),
            "fetch_json_meta" => self.fetch_json_meta(&env.args),
            "fetch_raw" => Err(WsError::new(
                "raw meta is not supported by this server; use fetch_json_meta",
            )),
            "commit" => self.commit(&env.args).await,
            "commit_offset" => self.commit_offset(&env.args).await,
            "assignment" => self.assignment(&env.args).await,
            "seek" => self.seek(&env.args).await,
            "committed" => self.offsets(&env.args, true).await,
            "position" => self.offsets(&env.args, false).await,
            "list_topics" => match &self.consumer {
                Some(c) => Ok(fields![("topics", c.topics())]),
                None => Err(not_init()),
            },
            "unsubscribe" => self.unsubscribe().await,
            _ => return None,
        };
        match result {
            Ok(Reply::Json(extra)) => {
                Some(Out::Text(json_reply(action, req_id, started, 0, "", extra)))
            }
            Ok(Reply::Binary(b)) => Some(Out::Binary(b)),
            Ok(Reply::None) => None,
            Err(e) => {
                let mut extra = Map::new();
                if let Some(id) = env.args.get("message_id").and_then(Json::as_u64) {
                    extra.insert("message_id".into(), json!(id));
                }
                Some(Out::Text(json_reply(
                    action, req_id, started, e.code, &e.message, extra,
                )))
            }
        }
    }

    fn consumer(&mut self) -> WsResult<&mut Consumer> {
        self.consumer.as_mut().ok_or_else(not_init)
    }

    async fn subscribe(&mut self, args: &Json) -> WsResult<Reply> {
        if self
            .consumer
            .as_ref()
            .is_some_and(|c| !c.topics().is_empty())
        {
            return Err(WsError::new("tmq should have unsubscribed first"));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                pairs.push((k.to_string(), v));
            }
        };
        put("group.id", setting(args, "group_id"));
        put("client.id", setting(args, "client_id"));
        // `offset_reset` wins over the historical typo `offset_rest`.
        put(
            "auto.offset.reset",
            setting(args, "offset_reset").or_else(|| setting(args, "offset_rest")),
        );
        put(
            "experimental.snapshot.enable",
            setting(args, "snapshot_enable"),
        );
        put("msg.with.table.name", setting(args, "with_table_name"));
        put("enable.auto.commit", setting(args, "auto_commit"));
        put(
            "auto.commit.interval.ms",
            setting(args, "auto_commit_interval_ms"),
        );
        put("session.timeout.ms", setting(args, "session_timeout_ms"));
        put(
            "max.poll.interval.ms",
            setting(args, "max_poll_interval_ms"),
        );
        if let Some(Json::Object(extra)) = args.get("config") {
            for (k, v) in extra {
                if k.starts_with("td.connect.") {
                    continue;
                }
                if let Some(v) = setting(&json!({ "v": v }), "v") {
                    put(k, Some(v));
                }
            }
        }
        let config = common::tmq::ConsumerConfig::from_pairs(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let topics: Vec<String> = args
            .get("topics")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let user = setting(args, "user").unwrap_or_else(|| "root".into());
        let password = setting(args, "password").unwrap_or_default();
        let db = setting(args, "db").filter(|d| !d.is_empty());
        let tz = setting(args, "tz").filter(|t| !t.is_empty());
        let key = PoolKey::new(&user, &password)
            .with_db(db.as_deref())
            .with_tz(tz.as_deref());
        let conn = self.app.pool.connect_session(&key).await?;
        let mut consumer = Consumer::with_connection(conn, config);
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs).await?;
        if let Some(old) = self.consumer.replace(consumer) {
            let _ = old.close().await;
        }
        self.current = None;
        Ok(fields![("version", common::SERVER_VERSION)])
    }

    fn describe(&self, c: &Current) -> Map<String, Json> {
        let m = &c.msg;
        let mut out = Map::new();
        out.insert("have_message".into(), json!(true));
        out.insert("topic".into(), json!(m.topic));
        out.insert("database".into(), json!(m.db));
        out.insert("vgroup_id".into(), json!(m.vgroup_id));
        out.insert("message_type".into(), json!(m.message_type()));
        out.insert("message_id".into(), json!(c.id));
        out.insert("offset".into(), json!(m.offset));
        out
    }

    async fn poll(&mut self, args: &Json) -> WsResult<Reply> {
        let a: PollArgs = parse_args(args)?;
        // Reconnect recovery: the client missed the reply carrying the current message.
        if let (Some(c), Some(seen)) = (&self.current, a.message_id) {
            if seen != c.id {
                return Ok(Reply::Json(self.describe(c)));
            }
        }
        self.current = None;
        // The client waits blocking_time * 2 for the reply; cap it so a bogus value cannot park
        // the socket for ever.
        let timeout = Duration::from_millis(a.blocking_time.min(60_000));
        let msg = self.consumer()?.poll(timeout).await?;
        match msg {
            Some(msg) => {
                self.next_message_id += 1;
                let c = Current {
                    id: self.next_message_id,
                    msg,
                    next_block: 0,
                    described: None,
                };
                let reply = self.describe(&c);
                self.current = Some(c);
                Ok(Reply::Json(reply))
            }
            None => Ok(fields![
                ("have_message", false),
                ("topic", ""),
                ("database", ""),
                ("vgroup_id", 0),
                ("message_type", 0),
                ("message_id", 0),
                ("offset", 0)
            ]),
        }
    }

    fn current(&mut self, message_id: u64) -> WsResult<&mut Current> {
        if self.consumer.is_none() {
            return Err(not_init());
        }
        match self.current.as_mut() {
            None => Err(WsError::new("message has been freed")),
            Some(c) if c.id != message_id => Err(WsError::new("message ID are not equal")),
            Some(c) => Ok(c),
        }
    }

    /// Every block of the current message in one binary reply (§5.4, new path).
    fn fetch_raw_data(&mut self, args: &Json, req_id: u64, started: Instant) -> WsResult<Reply> {
        let a: MessageArgs = parse_args(args)?;
        let (code, message, body) = match self.current(a.message_id) {
            Ok(c) => (0u32, String::new(), Some(raw_data(&c.msg))),
            Err(e) => (e.code, e.message, None),
        };
        let mut out = Vec::with_capacity(64 + body.as_ref().map_or(0, Vec::len));
        out.extend_from_slice(&u64::MAX.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&timing(started).to_le_bytes());
        out.extend_from_slice(&req_id.to_le_bytes());
        out.extend_from_slice(&code.to_le_bytes());
        out.extend_from_slice(&(message.len() as u32).to_le_bytes());
        out.extend_from_slice(message.as_bytes());
        out.extend_from_slice(&a.message_id.to_le_bytes());
        if let Some(body) = body {
            // meta_type 2 = TDMT_VND_TMQ_CONSUME (data), then the raw data.
            out.extend_from_slice(&2u16.to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
        Ok(Reply::Binary(out))
    }

    /// Table changes of the current message (topics WITH META), as TDengine's JSON meta.
    fn fetch_json_meta(&mut self, args: &Json) -> WsResult<Reply> {
        let a: MessageArgs = parse_args(args)?;
        let c = self.current(a.message_id)?;
        let metas: Vec<Json> = c
            .msg
            .meta
            .iter()
            .filter_map(|m| serde_json::from_str(m).ok())
            .collect();
        let data = match metas.len() {
            0 => return Err(WsError::new("message type is not meta")),
            1 => metas.into_iter().next().unwrap_or(Json::Null),
            _ => json!({"tmq_meta_version": "1.0", "metas": metas}),
        };
        Ok(fields![("message_id", c.id), ("data", data)])
    }

    /// Legacy path: describe the next block, or say the message is done.
    fn fetch(&mut self, args: &Json) -> WsResult<Reply> {
        let a: MessageArgs = parse_args(args)?;
        let c = self.current(a.message_id)?;
        let precision = c.msg.precision;
        let Some(b) = c.msg.blocks.get(c.next_block) else {
            c.described = None;
            return Ok(fields![("message_id", c.id), ("completed", true)]);
        };
        let mut m = super::query::describe(&b.fields, precision);
        m.insert("message_id".into(), json!(c.id));
        m.insert("completed".into(), json!(false));
        m.insert("table_name".into(), json!(b.table_name));
        m.insert("rows".into(), json!(b.block.rows));
        c.described = Some(c.next_block);
        c.next_block += 1;
        Ok(Reply::Json(m))
    }

    fn fetch_block(&mut self, args: &Json, req_id: u64, started: Instant) -> WsResult<Reply> {
        let a: MessageArgs = parse_args(args)?;
        let c = self.current(a.message_id)?;
        let Some(i) = c.described else {
            return Err(WsError::new("no fetch data"));
        };
        let b = &c.msg.blocks[i];
        let mut out = Vec::with_capacity(24 + 64 * b.block.rows);
        out.extend_from_slice(&timing(started).to_le_bytes());
        out.extend_from_slice(&req_id.to_le_bytes());
        out.extend_from_slice(&c.id.to_le_bytes());
        block::encode(&mut out, &b.fields, &b.block);
        Ok(Reply::Binary(out))
    }

    async fn commit(&mut self, args: &Json) -> WsResult<Reply> {
        let a: MessageArgs = parse_args(args)?;
        self.consumer()?.commit_all().await?;
        Ok(fields![("message_id", a.message_id)])
    }

    async fn commit_offset(&mut self, args: &Json) -> WsResult<Reply> {
        let a: OffsetArgs = parse_args(args)?;
        self.consumer()?
            .commit_offset(&a.topic, a.vgroup_id, a.offset)
            .await?;
        Ok(fields![
            ("topic", a.topic),
            ("vgroup_id", a.vgroup_id),
            ("offset", a.offset)
        ])
    }

    async fn assignment(&mut self, args: &Json) -> WsResult<Reply> {
        let a: TopicArgs = parse_args(args)?;
        let list = self.consumer()?.assignment(&a.topic).await?;
        let v: Vec<Json> = list
            .iter()
            .map(|x| {
                json!({"vgroup_id": x.vgroup_id, "offset": x.offset, "begin": x.begin, "end": x.end})
            })
            .collect();
        Ok(fields![("assignment", v)])
    }

    async fn seek(&mut self, args: &Json) -> WsResult<Reply> {
        let a: OffsetArgs = parse_args(args)?;
        self.consumer()?
            .seek(&a.topic, a.vgroup_id, a.offset)
            .await?;
        Ok(Reply::empty())
    }

    async fn offsets(&mut self, args: &Json, committed: bool) -> WsResult<Reply> {
        let a: PartsArgs = parse_args(args)?;
        let c = self.consumer()?;
        let mut out = Vec::with_capacity(a.topic_vgroup_ids.len());
        for p in &a.topic_vgroup_ids {
            out.push(if committed {
                c.committed(&p.topic, p.vgroup_id).await?
            } else {
                c.position(&p.topic, p.vgroup_id).await?
            });
        }
        let key = if committed { "committed" } else { "position" };
        Ok(fields![(key, out)])
    }

    async fn unsubscribe(&mut self) -> WsResult<Reply> {
        self.current = None;
        match self.consumer.take() {
            Some(c) => {
                c.close().await?;
                Ok(Reply::empty())
            }
            None => Err(not_init()),
        }
    }
}

/// LEB128 varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A NUL-terminated string with its length (NUL included) in front.
fn cstr(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// TMQ raw data of a data message (PROTOCOLS.md §5.4): offsets head, then per block a raw
/// block framed by its length and followed by its schema and table name.
pub fn raw_data(m: &TmqMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + m
            .blocks
            .iter()
            .map(|b| 64 + b.block.rows * 16 * b.fields.len())
            .sum::<usize>(),
    );
    // Request offset and response offset, both of the "log version" kind.
    out.push(1);
    out.extend_from_slice(&m.offset.to_le_bytes());
    out.push(1);
    out.extend_from_slice(&m.offset.to_le_bytes());
    out.extend_from_slice(&(m.blocks.len() as i32).to_le_bytes());
    let with_table_name = m.blocks.iter().any(|b| !b.table_name.is_empty());
    out.push(with_table_name as u8);
    out.push(1);
    let mut raw = Vec::new();
    for b in &m.blocks {
        raw.clear();
        block::encode(&mut raw, &b.fields, &b.block);
        varint(&mut out, 18 + raw.len() as u64);
        out.extend_from_slice(&m.offset.to_le_bytes());
        out.extend_from_slice(&(b.block.rows as i64).to_le_bytes());
        out.push(0);
        out.push(m.precision.id());
        out.extend_from_slice(&raw);
        zigzag(&mut out, b.fields.len() as i64);
        zigzag(&mut out, 1);
        for (i, f) in b.fields.iter().enumerate() {
            out.push(f.ty.id());
            out.push(0);
            zigzag(&mut out, block::user_length(f.ty) as i64);
            zigzag(&mut out, i as i64 + 1);
            cstr(&mut out, &f.name);
        }
        if with_table_name {
            cstr(&mut out, &b.table_name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::tmq::TmqBlock;
    use common::{Block, DataType, Field, Precision, Value};

    #[test]
    fn varints_and_raw_data_layout() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        v.clear();
        zigzag(&mut v, -1);
        zigzag(&mut v, 2);
        assert_eq!(v, [1, 4]);
        let m = TmqMessage {
            topic: "t".into(),
            db: "d".into(),
            vgroup_id: 2,
            offset: 9,
            precision: Precision::Ms,
            blocks: vec![TmqBlock {
                table_name: "d0".into(),
                fields: vec![
                    Field::new("ts", DataType::Timestamp),
                    Field::new("v", DataType::Int),
                ],
                block: Block::from_rows(2, vec![vec![Value::Timestamp(1), Value::Int(7)]]),
            }],
            meta: vec![],
        };
        let raw = raw_data(&m);
        assert_eq!(raw[0], 1);
        assert_eq!(i64::from_le_bytes(raw[1..9].try_into().unwrap()), 9);
        assert_eq!(i32::from_le_bytes(raw[18..22].try_into().unwrap()), 1);
        assert_eq!((raw[22], raw[23]), (1, 1));
        // The block length varint, then the 18-byte header whose rows field is 1.
        let (len, at) = (raw[24] as usize, 25);
        assert_eq!(
            i64::from_le_bytes(raw[at + 8..at + 16].try_into().unwrap()),
            1
        );
        let schema = &raw[at + len..];
        assert_eq!(&schema[..2], &[4, 2]);
        assert!(raw.ends_with(b"d0\0"));
    }
}
