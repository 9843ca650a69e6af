//! One WebSocket session: the read–handle–reply loop, the handshake (`version`, `conn`), the
//! small actions, and dispatch of everything else (PROTOCOLS.md §4.1, §4.2).

use super::{fetch, json_reply, query, schemaless, stmt, stmt2, Reply, WsError, WsResult};
use crate::pool::PoolKey;
use crate::App;
use axum::extract::ws::{Message, WebSocket};
use common::Precision;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use taosc::Connection;

/// Per-socket state.
pub struct Session {
    pub app: Arc<App>,
    pub conn: Option<Connection>,
    pub results: HashMap<u64, fetch::Entry>,
    next_result: u64,
    pub stmts: HashMap<u64, stmt::Stmt>,
    pub stmts2: HashMap<u64, stmt2::Stmt2>,
    next_stmt: u64,
    /// Reused for every encoded block.
    pub scratch: Vec<u8>,
    /// Database precision by name (for stmt timestamps).
    pub precisions: HashMap<String, Precision>,
}

/// Serve one socket until it closes; everything it owned is dropped (and freed on taosd).
pub async fn serve(app: Arc<App>, mut socket: WebSocket) {
    let mut s = Session::new(app);
    while let Some(msg) = socket.recv().await {
        let reply = match msg {
            Ok(Message::Text(t)) => s.on_text(t.as_str()).await,
            Ok(Message::Binary(b)) => s.on_binary(&b).await,
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => break,
        };
        let msg = match reply {
            Some(Out::Text(t)) => Message::Text(t.into()),
            Some(Out::Binary(b)) => Message::Binary(b.into()),
            None => continue,
        };
        if socket.send(msg).await.is_err() {
            break;
        }
    }
    tracing::debug!(
        results = s.results.len(),
        stmts = s.stmts.len() + s.stmts2.len(),
        "websocket closed"
    );
}

/// A message to send.
pub enum Out {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(serde::Deserialize)]
struct Envelope {
    action: String,
    #[serde(default)]
    args: Json,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ConnArgs {
    user: Option<String>,
    password: Option<String>,
    db: Option<String>,
    tz: Option<String>,
    mode: Option<i64>,
    bearer_token: Option<String>,
}

/// `req_id` of a request's args (0 when absent or not a number).
pub fn req_id_of(args: &Json) -> u64 {
    args.get("req_id").and_then(Json::as_u64).unwrap_or(0)
}

/// Parse the args of an action; an unparsable shape is an error reply.
pub fn parse_args<T: serde::de::DeserializeOwned + Default>(args: &Json) -> WsResult<T> {
    if args.is_null() {
        return Ok(T::default());
    }
    T::deserialize(args).map_err(|e| WsError::new(format!("unmarshal request args error: {e}")))
}

impl Session {
    pub fn new(app: Arc<App>) -> Session {
        Session {
            app,
            conn: None,
            results: HashMap::new(),
            next_result: 0,
            stmts: HashMap::new(),
            stmts2: HashMap::new(),
            next_stmt: 0,
            scratch: Vec::new(),
            precisions: HashMap::new(),
        }
    }

    /// The session's taosc connection, or "server not connected".
    pub fn conn(&self) -> WsResult<Connection> {
        self.conn
            .clone()
            .ok_or_else(|| WsError::new("server not connected"))
    }

    pub fn next_result_id(&mut self) -> u64 {
        self.next_result += 1;
        self.next_result
    }

    pub fn next_stmt_id(&mut self) -> u64 {
        self.next_stmt += 1;
        self.next_stmt
    }

    /// Handle a text request; `None` when the action has no reply.
    pub async fn on_text(&mut self, text: &str) -> Option<Out> {
        let started = Instant::now();
        let env: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(_) => {
                return Some(Out::Text(json_reply(
                    "",
                    0,
                    started,
                    super::GENERIC,
                    "unmarshal request error",
                    Map::new(),
                )))
            }
        };
        let req_id = req_id_of(&env.args);
        let action = env.action.as_str();
        let result = self.dispatch(action, &env.args).await;
        match result {
            Ok(Reply::Json(extra)) => {
                Some(Out::Text(json_reply(action, req_id, started, 0, "", extra)))
            }
            Ok(Reply::Binary(b)) => Some(Out::Binary(b)),
            Ok(Reply::None) => None,
            Err(e) => {
                let mut extra = Map::new();
                // Stmt replies carry their statement id even on error.
                if let Some(id) = env.args.get("stmt_id").and_then(Json::as_u64) {
                    extra.insert("stmt_id".into(), Json::from(id));
                }
                // The v1 client's `prepare` reply type requires `is_insert`.
                if action == "prepare" || action == "stmt2_prepare" {
                    extra.insert("is_insert".into(), Json::from(false));
                }
                Some(Out::Text(json_reply(
                    action, req_id, started, e.code, &e.message, extra,
                )))
            }
        }
    }

    async fn dispatch(&mut self, action: &str, args: &Json) -> WsResult<Reply> {
        match action {
            "version" => return Ok(fields![("version", common::SERVER_VERSION)]),
            "conn" => return self.connect(args).await,
            "check_server_status" => return Ok(fields![("status", 0), ("details", "")]),
            _ => {}
        }
        if self.conn.is_none() {
            return Err(WsError::new("server not connected"));
        }
        match action {
            "query" => query::json_query(self, args).await,
            "fetch" => fetch::fetch(self, args).await,
            "fetch_block" => fetch::fetch_block(self, args),
            "free_result" => fetch::free_result(self, args),
            "num_fields" => fetch::num_fields(self, args),
            "get_current_db" => {
                let db = self.conn()?.current_db().unwrap_or_default();
                Ok(fields![("db", db)])
            }
            "get_server_info" => Ok(fields![("info", self.conn()?.server_version())]),
            "get_connection_info" => Ok(fields![("info", "")]),
            "options_connection" => Ok(Reply::empty()),
            "insert" => schemaless::insert(self, args).await,
            a if stmt::ACTIONS.contains(&a) => stmt::handle(self, a, args).await,
            a if a.starts_with("stmt2_") => stmt2::handle(self, a, args).await,
            other => Err(WsError::new(format!("unknown action {other}"))),
        }
    }

    async fn connect(&mut self, args: &Json) -> WsResult<Reply> {
        if self.conn.is_some() {
            return Err(WsError::new("duplicate connections"));
        }
        let a: ConnArgs = parse_args(args)?;
        if let Some(m) = a.mode {
            if m != 0 {
                return Err(WsError::new(format!("unexpected mode:{m}")));
            }
        }
        if a.bearer_token.as_deref().is_some_and(|t| !t.is_empty()) && a.user.is_none() {
            return Err(WsError::from(common::TaosError::new(
                common::Code::AUTH_FAILURE,
                "Authentication failure: token login is not supported by this server",
            )));
        }
        let user = a.user.unwrap_or_else(|| "root".into());
        let password = a.password.unwrap_or_default();
        let db = a.db.filter(|d| !d.is_empty());
        let key = PoolKey::new(&user, &password)
            .with_db(db.as_deref())
            .with_tz(a.tz.as_deref().filter(|t| !t.is_empty()));
        let conn = self.app.pool.connect_session(&key).await?;
        self.conn = Some(conn);
        Ok(fields![("version", common::SERVER_VERSION)])
    }

    /// Handle a binary request (24-byte header `req_id, resource id, action`).
    pub async fn on_binary(&mut self, b: &[u8]) -> Option<Out> {
        let started = Instant::now();
        let Some((req_id, id, action)) = header(b) else {
            return Some(Out::Text(json_reply(
                "",
                0,
                started,
                super::GENERIC,
                "message length is too short",
                Map::new(),
            )));
        };
        let payload = &b[24..];
        if action == 7 {
            return Some(Out::Binary(
                fetch::binary_fetch(self, req_id, id, payload, started).await,
            ));
        }
        let name = match action {
            1 => "set_tags",
            2 => "bind",
            3 => "write_raw",
            4 => "write_raw_block",
            5 => "write_raw_block_with_fields",
            6 => "binary_query",
            9 => "stmt2_bind",
            10 => "validate_sql",
            11 => "stmt2_bind_exec",
            _ => "",
        };
        let result = if self.conn.is_none() {
            Err(WsError::new("server not connected"))
        } else {
            match action {
                1 => stmt::bind_binary(self, id, payload, true).await,
                2 => stmt::bind_binary(self, id, payload, false).await,
                6 => query::binary_query(self, payload).await,
                9 => stmt2::bind_binary(self, id, payload).await,
                3..=5 | 10 | 11 => Err(WsError::new(format!("{name} is not supported"))),
                a => Err(WsError::new(format!("unknown binary action {a}"))),
            }
        };
        let stmt_id = matches!(action, 1 | 2 | 9).then_some(id);
        let (code, message, mut extra) = match result {
            Ok(Reply::Json(extra)) => (0, String::new(), extra),
            Ok(Reply::Binary(b)) => return Some(Out::Binary(b)),
            Ok(Reply::None) => return None,
            Err(e) => (e.code, e.message, Map::new()),
        };
        if let Some(id) = stmt_id {
            extra.entry("stmt_id").or_insert(Json::from(id));
        }
        Some(Out::Text(json_reply(
            name, req_id, started, code, &message, extra,
        )))
    }
}

/// `(req_id, resource id, action)` of a binary request, or `None` when shorter than 24 bytes.
pub fn header(b: &[u8]) -> Option<(u64, u64, u64)> {
    let u =
        |i: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?)) };
    Some((u(0)?, u(8)?, u(16)?))
}
