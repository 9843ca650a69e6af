//! `POST /rest/sql[/<db>]`: one SQL statement per request, result as JSON.
//!
//! Result sets are streamed: the header and the first block go out as soon as the query
//! answers, then one chunk per block taosc fetches, so memory does not grow with the result.
//! Once the 200 header is out, a fetch error can no longer become an error body: the response
//! is cut off instead (the client sees a broken chunked body, never a silently short result).

use super::encode::{write_column_meta, write_rows};
use super::{RestError, GENERIC, JSON, NO_SQL, REQUEST_EMPTY};
use crate::pool::{PoolKey, Pooled};
use crate::App;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use common::{Block, Field, Precision, SessionTz};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use taosc::{QueryResult, ResultSet};

/// Query parameters of a REST request (§2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Zone used to render timestamps.
    pub tz: SessionTz,
    /// `conn_tz`: also the connection's session zone.
    pub conn_tz: Option<String>,
    pub req_id: i64,
    pub row_with_meta: bool,
    pub timing: bool,
    pub app: Option<String>,
    pub has_token: bool,
}

fn load_tz(name: &str) -> Result<SessionTz, RestError> {
    if name.is_empty() {
        return Ok(SessionTz::Utc);
    }
    SessionTz::parse(name)
        .ok_or_else(|| RestError::bad_request(GENERIC, format!("unknown time zone {name}")))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Params {
    pub fn parse(q: &HashMap<String, String>) -> Result<Params, RestError> {
        let mut p = Params {
            tz: SessionTz::Utc,
            conn_tz: None,
            req_id: 0,
            row_with_meta: false,
            timing: false,
            app: q.get("app").cloned(),
            has_token: q.contains_key("token"),
        };
        if let Some(tz) = q.get("tz") {
            p.tz = load_tz(tz)?;
        }
        if let Some(tz) = q.get("conn_tz") {
            p.tz = load_tz(tz)?;
            if !tz.is_empty() {
                p.conn_tz = Some(tz.clone());
            }
        }
        if let Some(r) = q.get("req_id").filter(|r| !r.is_empty()) {
            p.req_id = r.parse().map_err(|e| {
                RestError::bad_request(
                    GENERIC,
                    format!("illegal param, req_id must be numeric {e}"),
                )
            })?;
        }
        if let Some(v) = q.get("row_with_meta").filter(|r| !r.is_empty()) {
            p.row_with_meta = parse_go_bool(v).ok_or_else(|| {
                RestError::bad_request(
                    GENERIC,
                    format!("illegal param, row_with_meta must be boolean: invalid syntax {v:?}"),
                )
            })?;
        }
        p.timing = q.get("timing").map(|t| t == "true").unwrap_or(false);
        Ok(p)
    }
}

pub async fn sql_root(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(app, None, uri, headers, body).await
}

pub async fn sql_db(
    State(app): State<Arc<App>>,
    Path(db): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(app, Some(db), uri, headers, body).await
}

async fn run(
    app: Arc<App>,
    db: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    match execute(&app, db, &uri, &headers, body, started).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(code = e.code, desc = %e.desc, "rest request failed");
            e.respond(started)
        }
    }
}

async fn execute(
    app: &Arc<App>,
    db: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, RestError> {
    let strict = app.config.http_code_server_error;
    let query: HashMap<String, String> = match Query::try_from_uri(uri) {
        Ok(Query(q)) => q,
        Err(e) => return Err(RestError::bad_request(GENERIC, e.body_text())),
    };
    let (user, password) = super::credentials(headers, query.contains_key("token"), strict)?;
    let params = Params::parse(&query)?;
    let raw = crate::body::read_body(headers, body, app.config.max_body_size)
        .await
        .map_err(RestError::body)?;
    if raw.is_empty() {
        return Err(RestError::bad_request(REQUEST_EMPTY, "request is empty"));
    }
    let text = String::from_utf8_lossy(&raw);
    let sql = text.trim();
    if sql.is_empty() {
        return Err(RestError::bad_request(NO_SQL, "no sql input"));
    }
    tracing::debug!(req_id = params.req_id, user = %user, db = ?db, app = ?params.app, sql = %sql, "rest sql");
    let key = PoolKey::new(&user, &password)
        .with_db(db.as_deref())
        .with_tz(params.conn_tz.as_deref());
    let conn = app
        .pool
        .get(&key)
        .await
        .map_err(|e| RestError::pool(&e, strict))?;
    let result = conn
        .query(sql)
        .await
        .map_err(|e| RestError::taos(&e, strict))?;
    match result {
        QueryResult::Affected(n) => {
            if n > 0 {
                app.metrics.rows_written("rest", n as u64);
            }
            Ok(json_response(affected_body(n, &params, started)))
        }
        QueryResult::Rows(mut rs) => {
            let first = rs
                .next_block()
                .await
                .map_err(|e| RestError::taos(&e, strict))?;
            let limit = usize::try_from(app.config.restful_row_limit).unwrap_or(usize::MAX);
            let stream = RowStream::new(rs, first, conn, params, limit, started);
            let body =
                Body::from_stream(futures_util::stream::unfold(stream, |mut s| async move {
                    let chunk = s.next_chunk().await?;
                    Some((chunk, s))
                }));
            Ok(json_response(body))
        }
    }
}

fn json_response(body: impl Into<Body>) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// `{"code":0,"column_meta":[["affected_rows","INT",4]],"data":[[n]],"rows":1}`
fn affected_body(n: i64, p: &Params, started: Instant) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(br#"{"code":0,"column_meta":[["affected_rows","INT",4]],"data":["#);
    if p.row_with_meta {
        out.extend_from_slice(br#"{"affected_rows":"#);
        out.extend_from_slice(n.to_string().as_bytes());
        out.push(b'}');
    } else {
        out.push(b'[');
        out.extend_from_slice(n.to_string().as_bytes());
        out.push(b']');
    }
    out.extend_from_slice(br#"],"rows":1"#);
    push_timing(&mut out, p.timing, started);
    out.push(b'}');
    out
}

fn push_timing(out: &mut Vec<u8>, timing: bool, started: Instant) {
    if timing {
        out.extend_from_slice(b",\"timing\":");
        out.extend_from_slice(started.elapsed().as_nanos().to_string().as_bytes());
    }
}

/// State of one streamed result. Field order matters: the result set is dropped before the
/// pooled connection, so the connection is never back in the pool while its result is open.
struct RowStream {
    rs: ResultSet,
    pending: Option<Block>,
    fields: Vec<Field>,
    precision: Precision,
    params: Params,
    head: Option<Vec<u8>>,
    first_row: bool,
    rows: usize,
    limit: usize,
    started: Instant,
    done: bool,
    _conn: Pooled,
}

impl RowStream {
    fn new(
        rs: ResultSet,
        first: Option<Block>,
        conn: Pooled,
        params: Params,
        limit: usize,
        started: Instant,
    ) -> RowStream {
        let fields = rs.fields().to_vec();
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(br#"{"code":0,"column_meta":"#);
        write_column_meta(&mut head, &fields);
        head.extend_from_slice(br#","data":["#);
        RowStream {
            precision: rs.precision(),
            rs,
            pending: first,
            fields,
            params,
            head: Some(head),
            first_row: true,
            rows: 0,
            limit,
            started,
            done: false,
            _conn: conn,
        }
    }

    /// The next piece of the body: the head with the first block, one block, or the tail.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let mut out = self.head.take().unwrap_or_default();
        let block = match self.pending.take() {
            Some(b) => Some(b),
            None if self.rows >= self.limit => None,
            None => match self.rs.next_block().await {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    tracing::warn!(error = %e, rows = self.rows, "fetch failed mid-stream; cutting the response");
                    return Some(Err(std::io::Error::other(e)));
                }
            },
        };
        match block {
            Some(b) if self.rows < self.limit => {
                self.rows += write_rows(
                    &mut out,
                    &b,
                    &self.fields,
                    self.params.row_with_meta,
                    self.precision,
                    self.params.tz,
                    &mut self.first_row,
                    self.limit - self.rows,
                );
            }
            _ => {
                out.extend_from_slice(b"],\"rows\":");
                out.extend_from_slice(self.rows.to_string().as_bytes());
                push_timing(&mut out, self.params.timing, self.started);
                out.push(b'}');
                self.done = true;
            }
        }
        Some(Ok(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn params_and_their_errors() {
        let p = Params::parse(&q(&[])).unwrap();
        assert_eq!(p.tz, SessionTz::Utc);
        assert!(!p.row_with_meta && !p.timing);
        let p = Params::parse(&q(&[
            ("tz", "Asia/Shanghai"),
            ("req_id", "42"),
            ("row_with_meta", "T"),
            ("timing", "true"),
        ]))
        .unwrap();
        assert_eq!(p.req_id, 42);
        assert!(p.row_with_meta && p.timing);
        assert_eq!(p.conn_tz, None);
        let p = Params::parse(&q(&[("tz", "UTC"), ("conn_tz", "Asia/Shanghai")])).unwrap();
        assert_eq!(p.tz, SessionTz::parse("Asia/Shanghai").unwrap());
        assert_eq!(p.conn_tz.as_deref(), Some("Asia/Shanghai"));

        let e = Params::parse(&q(&[("req_id", "abc")])).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 65535));
        assert!(e.desc.starts_with("illegal param, req_id must be numeric"));
        let e = Params::parse(&q(&[("row_with_meta", "yes")])).unwrap_err();
        assert!(e
            .desc
            .starts_with("illegal param, row_with_meta must be boolean"));
        let e = Params::parse(&q(&[("tz", "Mars/Olympus")])).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, 65535));
        assert_eq!(e.desc, "unknown time zone Mars/Olympus");
        assert!(Params::parse(&q(&[("conn_tz", "Nope")])).is_err());
    }

    #[test]
    fn affected_rows_shapes() {
        let p = Params::parse(&q(&[])).unwrap();
        let b = affected_body(3, &p, Instant::now());
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"code":0,"column_meta":[["affected_rows","INT",4]],"data":[[3]],"rows":1}"#
        );
        let p = Params::parse(&q(&[("row_with_meta", "true")])).unwrap();
        let b = affected_body(0, &p, Instant::now());
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"code":0,"column_meta":[["affected_rows","INT",4]],"data":[{"affected_rows":0}],"rows":1}"#
        );
        let p = Params::parse(&q(&[("timing", "true")])).unwrap();
        let b = String::from_utf8(affected_body(1, &p, Instant::now())).unwrap();
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert!(v["timing"].as_u64().is_some());
    }
}
