//! The WebSocket API: `/ws` and the legacy `/rest/ws`, `/rest/stmt`, `/rest/schemaless`
//! (PROTOCOLS.md §4).
//!
//! One task per socket ([`conn::serve`]) reads a request, handles it, and sends the reply before
//! reading the next, so a slow client only slows itself and at most one reply per socket is
//! buffered. Each socket owns one taosc connection (opened by `conn`), its result sets and its
//! statements; closing the socket drops them all, which frees the results on taosd.
//!
//! | module | actions |
//! |---|---|
//! | [`conn`] | the socket loop, `version`, `conn`, small actions, dispatch |
//! | [`query`] | `query`, binary query (6) |
//! | [`fetch`] | `fetch`, `fetch_block`, binary fetch (7), `free_result`, `num_fields` |
//! | [`block`] | the raw block encoder/decoder |
//! | [`stmt`] | statement API v1 (`init` … `close`, binary 1/2) |
//! | [`stmt2`] | statement API v2 (`stmt2_*`, binary 9) |
//! | [`schemaless`] | `insert` |
//! | [`tmq`] | the separate `/rest/tmq` socket: subscribe, poll, fetch, offsets |

/// Build a map of extra fields: `fields![("id", 1), ("rows", 2)]`.
#[macro_export]
macro_rules! fields {
    ($(($k:expr, $v:expr)),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $( m.insert($k.to_string(), serde_json::json!($v)); )*
        $crate::ws::Reply::Json(m)
    }};
}

pub mod block;
pub mod conn;
pub mod fetch;
pub mod query;
pub mod schemaless;
pub mod stmt;
pub mod stmt2;
pub mod tmq;

use crate::App;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use common::TaosError;
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use std::time::Instant;

/// The adapter's generic error code.
pub const GENERIC: u32 = 0xFFFF;

/// Largest WebSocket message accepted (stmt binds of many thousand rows are big).
pub const MAX_MESSAGE: usize = 256 << 20;

/// `GET /ws` (and the legacy paths): upgrade and serve the socket.
pub async fn handler(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| conn::serve(app, socket))
}

/// A failed action: what goes into `code` and `message`.
#[derive(Debug, Clone)]
pub struct WsError {
    pub code: u32,
    pub message: String,
}

impl WsError {
    pub fn new(message: impl Into<String>) -> WsError {
        WsError {
            code: GENERIC,
            message: message.into(),
        }
    }
}

impl From<TaosError> for WsError {
    fn from(e: TaosError) -> WsError {
        WsError {
            code: e.short_code() as u32,
            message: e.message,
        }
    }
}

impl From<&TaosError> for WsError {
    fn from(e: &TaosError) -> WsError {
        WsError {
            code: e.short_code() as u32,
            message: e.message.clone(),
        }
    }
}

pub type WsResult<T> = Result<T, WsError>;

/// What an action sends back.
pub enum Reply {
    /// Extra fields of a JSON reply (the envelope is added by the dispatcher).
    Json(Map<String, Json>),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// Nothing (`free_result`, stmt `close`).
    None,
}

impl Reply {
    pub fn empty() -> Reply {
        Reply::Json(Map::new())
    }
}

/// The JSON reply text: envelope then extra fields.
pub fn json_reply(
    action: &str,
    req_id: u64,
    started: Instant,
    code: u32,
    message: &str,
    extra: Map<String, Json>,
) -> String {
    let mut m = Map::with_capacity(5 + extra.len());
    m.insert("code".into(), Json::from(code & 0xFFFF));
    m.insert("message".into(), Json::from(message));
    m.insert("action".into(), Json::from(action));
    m.insert("req_id".into(), Json::from(req_id));
    m.insert(
        "timing".into(),
        Json::from(started.elapsed().as_nanos() as u64),
    );
    for (k, v) in extra {
        m.insert(k, v);
    }
    Json::Object(m).to_string()
}

/// Nanoseconds since `started`, for `timing`.
pub fn timing(started: Instant) -> u64 {
    started.elapsed().as_nanos() as u64
}
