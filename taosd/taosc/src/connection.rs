//! One authenticated TCP session with taosd, speaking [`common::wire`].
//!
//! Requests on a connection are strictly sequential: a tokio mutex is held from writing a request
//! until its reply is read. Clones share the session, so a pool can hand one connection to several
//! tasks. If a caller's future is dropped mid-request, the stream is out of step with the server;
//! the next request notices (`in_flight`) and reconnects instead of reading someone else's reply.

use crate::options::ConnectOptions;
use common::config::split_ep;
use common::time::Precision;
use common::tmq::{TmqRequest, TmqResponse};
use common::wire::{self, Request, Response, WriteRequest, MAX_FRAME};
use common::{Block, Code, Field, TaosError, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Redirects followed for one request before giving up.
pub const MAX_REDIRECTS: usize = 3;

/// TDengine's TSDB_CODE_RPC_BROKEN_LINK: the session broke under a request.
pub const BROKEN_LINK: Code = Code(0x0018);

type Stream = BufReader<TcpStream>;

/// A cheap-to-clone handle on one session with taosd.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ConnectOptions,
    link: tokio::sync::Mutex<Link>,
    session: std::sync::Mutex<Session>,
    next_req_id: AtomicU64,
    /// Results dropped before completion, as (link generation, result id); freed before the next
    /// request on the same link, so dropping never needs a runtime.
    orphans: std::sync::Mutex<Vec<(u64, u64)>>,
}

struct Link {
    stream: Option<Stream>,
    /// Where the current (or last) stream went; tried first on reconnect.
    ep: (String, u16),
    /// Bumped on every (re)connect: result ids belong to one generation.
    generation: u64,
    /// A request was written whose reply has not been read.
    in_flight: bool,
}

#[derive(Debug, Clone, Default)]
struct Session {
    db: Option<String>,
    server_version: String,
    conn_id: u64,
    cluster_id: u64,
}

/// What a `Connect` handshake returned.
struct Welcome {
    conn_id: u64,
    server_version: String,
    cluster_id: u64,
    db: Option<String>,
}

/// Why opening a session failed: the endpoint could not be reached (try the next one), or the
/// server answered with an error (stop: another endpoint would say the same).
enum OpenError {
    Unreachable(TaosError),
    Server(TaosError),
}

fn unreachable_err(host: &str, port: u16, why: impl std::fmt::Display) -> TaosError {
    TaosError::new(
        Code::RPC_NETWORK_UNAVAIL,
        format!(
            "{}: {host}:{port} ({why})",
            Code::RPC_NETWORK_UNAVAIL.message()
        ),
    )
}

fn broken(why: impl std::fmt::Display) -> TaosError {
    TaosError::new(BROKEN_LINK, format!("Conn is broken: {why}"))
}

fn unexpected(what: &str, resp: &Response) -> TaosError {
    let name = format!("{resp:?}");
    let name = name
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("?")
        .to_string();
    TaosError::new(
        Code::INVALID_MSG,
        format!("unexpected reply {name} to {what}"),
    )
}

/// Read one frame (length prefix excluded); `Ok(None)` when the peer closed cleanly.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_FRAME).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid frame length {len}"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// How a failed exchange ended: whether the request may have reached the server.
enum CallError {
    /// Failed before or while writing: the server cannot have run the request.
    NotSent(TaosError),
    /// Failed after the request was written: it may have run.
    Lost(TaosError),
    /// The server answered, or the reply was malformed.
    Fatal(TaosError),
}

/// Write `req` and read the reply carrying its id, skipping replies to earlier fire-and-forget
/// requests (FreeResult).
async fn exchange(stream: &mut Stream, req_id: u64, req: &Request) -> Result<Response, CallError> {
    let bytes = wire::encode(req_id, req).map_err(CallError::Fatal)?;
    stream
        .get_mut()
        .write_all(&bytes)
        .await
        .map_err(|e| CallError::NotSent(broken(e)))?;
    loop {
        let frame = match read_frame(stream).await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(CallError::Lost(broken("connection closed by server"))),
            Err(e) => return Err(CallError::Lost(broken(e))),
        };
        let (id, resp): (u64, Response) = wire::decode(&frame).map_err(CallError::Fatal)?;
        if id == req_id {
            return Ok(resp);
        }
    }
}

/// Statements that can be re-sent after a lost reply without changing anything twice.
pub fn is_idempotent(sql: &str) -> bool {
    let word: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        word.as_str(),
        "select" | "show" | "describe" | "desc" | "use" | "explain"
    )
}

/// The database named by a `USE db` statement, if `sql` is one.
fn use_target(sql: &str) -> Option<String> {
    let s = sql.trim().trim_end_matches(';').trim();
    let (kw, rest) = s.split_once(char::is_whitespace)?;
    if !kw.eq_ignore_ascii_case("use") {
        return None;
    }
    let db = rest.trim().trim_matches('`');
    (!db.is_empty() && !db.contains(char::is_whitespace)).then(|| db.to_string())
}

impl Connection {
    /// Open a session: try `host:port`, then `secondEp`; follow at most [`MAX_REDIRECTS`]
    /// redirects. An unreachable cluster gives code 0x000B "Unable to establish connection".
    pub async fn connect(opts: ConnectOptions) -> Result<Connection, TaosError> {
        let next_req_id = AtomicU64::new(1);
        let (stream, ep, welcome) = open(&opts, None, opts.db.clone(), &next_req_id).await?;
        let session = Session {
            db: welcome.db.or_else(|| opts.db.clone()),
            server_version: welcome.server_version,
            conn_id: welcome.conn_id,
            cluster_id: welcome.cluster_id,
        };
        let link = Link {
            stream: Some(stream),
            ep,
            generation: 1,
            in_flight: false,
        };
        Ok(Connection {
            inner: Arc::new(Inner {
                opts,
                link: tokio::sync::Mutex::new(link),
                session: std::sync::Mutex::new(session),
                next_req_id,
                orphans: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Run one statement (or several `;`-separated; the server describes the last).
    pub async fn query(&self, sql: &str) -> Result<QueryResult, TaosError> {
        let req = Request::Query {
            sql: sql.to_owned(),
        };
        let (resp, generation) = self.call(&req, is_idempotent(sql), None).await?;
        match resp {
            Response::Executed { affected_rows, db } => {
                if let Some(db) = db.or_else(|| use_target(sql)) {
                    self.session().db = Some(db);
                }
                Ok(QueryResult::Affected(affected_rows))
            }
            Response::ResultSet {
                result_id,
                fields,
                precision,
                block,
                completed,
            } => Ok(QueryResult::Rows(ResultSet {
                conn: self.clone(),
                result_id,
                generation,
                fields,
                precision,
                pending: Some(block),
                completed,
            })),
            Response::Error(e) => Err(e),
            other => Err(unexpected("Query", &other)),
        }
    }

    /// Run a statement for its effect; a result set is discarded. Returns affected rows.
    pub async fn exec(&self, sql: &str) -> Result<i64, TaosError> {
        Ok(self.query(sql).await?.affected_rows())
    }

    /// Write typed rows without SQL text (schemaless, stmt, taosX). Returns rows written.
    /// Safe to resend after a broken link: rows are keyed by (table, timestamp), so a repeat
    /// overwrites with the same values.
    pub async fn write(&self, req: WriteRequest) -> Result<i64, TaosError> {
        self.write_keeping(req).await.0
    }

    /// [`Connection::write`] that hands the request back, for a caller that may split and
    /// resend it after a refusal without copying every batch up front.
    pub async fn write_keeping(&self, req: WriteRequest) -> (Result<i64, TaosError>, WriteRequest) {
        let r = Request::Write(req);
        let out = match self.call(&r, true, None).await {
            Ok((Response::Executed { affected_rows, .. }, ..)) => Ok(affected_rows),
            Ok((Response::Error(e), ..)) => Err(e),
            Ok((other, ..)) => Err(unexpected("Write", &other)),
            Err(e) => Err(e),
        };
        let Request::Write(req) = r else {
            unreachable!("built above")
        };
        (out, req)
    }

    /// One data-subscription request (see [`crate::tmq::Consumer`]). Only requests that change
    /// nothing twice are resent after a broken link; a poll is not (it advances the position).
    pub async fn tmq(&self, req: TmqRequest) -> Result<TmqResponse, TaosError> {
        let idempotent = !matches!(req, TmqRequest::Poll { .. });
        match self.call(&Request::Tmq(req), idempotent, None).await?.0 {
            Response::Tmq(r) => Ok(r),
            Response::Error(e) => Err(e),
            other => Err(unexpected("Tmq", &other)),
        }
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<(), TaosError> {
        match self.call(&Request::Ping, true, None).await?.0 {
            Response::Pong => Ok(()),
            Response::Error(e) => Err(e),
            other => Err(unexpected("Ping", &other)),
        }
    }

    /// The database in use, as last reported by the server (or set by `USE`).
    pub fn current_db(&self) -> Option<String> {
        self.session().db.clone()
    }

    pub fn server_version(&self) -> String {
        self.session().server_version.clone()
    }

    pub fn conn_id(&self) -> u64 {
        self.session().conn_id
    }

    pub fn cluster_id(&self) -> u64 {
        self.session().cluster_id
    }

    pub fn options(&self) -> &ConnectOptions {
        &self.inner.opts
    }

    /// Close the TCP stream now; the next request reconnects.
    pub async fn close(&self) {
        let mut link = self.inner.link.lock().await;
        link.stream = None;
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.inner.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn orphans(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        self.inner.orphans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn req_id(&self) -> u64 {
        self.inner.next_req_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Send one request and return its reply with the link generation it travelled on.
    ///
    /// A broken stream is re-established once (new Connect, same db) and the request resent if
    /// it cannot have run (failed while writing) or is `idempotent`. `Redirect` replies are
    /// followed up to [`MAX_REDIRECTS`] times. With `generation` set (Fetch), the request is only
    /// sent on that link: result ids do not survive a reconnect.
    async fn call(
        &self,
        req: &Request,
        idempotent: bool,
        generation: Option<u64>,
    ) -> Result<(Response, u64), TaosError> {
        let mut guard = self.inner.link.lock().await;
        let link: &mut Link = &mut guard;
        if link.in_flight {
            // A cancelled request left its reply unread.
            link.stream = None;
            link.in_flight = false;
        }
        let mut retried = false;
        let mut redirects = 0;
        loop {
            if let Some(g) = generation {
                if link.generation != g || link.stream.is_none() {
                    return Err(broken("result set lost: the connection was re-established"));
                }
            }
            if link.stream.is_none() {
                self.reconnect(link).await?;
            }
            self.free_orphans(link).await;
            let Some(stream) = link.stream.as_mut() else {
                continue;
            };
            let req_id = self.inner.next_req_id.fetch_add(1, Ordering::Relaxed);
            link.in_flight = true;
            let result = exchange(stream, req_id, req).await;
            link.in_flight = false;
            match result {
                Ok(Response::Redirect { ep }) if generation.is_none() => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(TaosError::new(
                            Code::RPC_NETWORK_UNAVAIL,
                            format!("too many redirects (last to {ep})"),
                        ));
                    }
                    tracing::debug!(%ep, "request redirected");
                    link.ep = split_ep(&ep, self.inner.opts.port);
                    link.stream = None;
                }
                Ok(resp) => return Ok((resp, link.generation)),
                Err(CallError::Fatal(e)) => {
                    link.stream = None;
                    return Err(e);
                }
                Err(CallError::NotSent(e)) | Err(CallError::Lost(e))
                    if retried || generation.is_some() =>
                {
                    link.stream = None;
                    return Err(e);
                }
                Err(CallError::NotSent(e)) => {
                    tracing::debug!(error = %e, "connection broken before sending; reconnecting");
                    link.stream = None;
                    retried = true;
                }
                Err(CallError::Lost(e)) => {
                    link.stream = None;
                    if !idempotent {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "connection broken; resending idempotent request");
                    retried = true;
                }
            }
        }
    }

    async fn reconnect(&self, link: &mut Link) -> Result<(), TaosError> {
        let db = self.current_db();
        let first = Some(link.ep.clone());
        let (stream, ep, welcome) =
            open(&self.inner.opts, first, db, &self.inner.next_req_id).await?;
        {
            let mut s = self.session();
            s.conn_id = welcome.conn_id;
            s.cluster_id = welcome.cluster_id;
            s.server_version = welcome.server_version;
            if welcome.db.is_some() {
                s.db = welcome.db;
            }
        }
        link.stream = Some(stream);
        link.ep = ep;
        link.generation += 1;
        Ok(())
    }

    /// Best effort: send FreeResult for dropped result sets of this link without waiting for
    /// the replies (`exchange` skips them by request id).
    async fn free_orphans(&self, link: &mut Link) {
        let orphans: Vec<(u64, u64)> = std::mem::take(&mut *self.orphans());
        let generation = link.generation;
        let mut bytes = Vec::new();
        for (g, result_id) in orphans {
            if g == generation {
                if let Ok(b) = wire::encode(self.req_id(), &Request::FreeResult { result_id }) {
                    bytes.extend_from_slice(&b);
                }
            }
        }
        if bytes.is_empty() {
            return;
        }
        if let Some(stream) = link.stream.as_mut() {
            if stream.get_mut().write_all(&bytes).await.is_err() {
                link.stream = None;
            }
        }
    }
}

/// Connect to the first reachable endpoint: `first` (the last one used), then the configured ones.
async fn open(
    opts: &ConnectOptions,
    first: Option<(String, u16)>,
    db: Option<String>,
    req_ids: &AtomicU64,
) -> Result<(Stream, (String, u16), Welcome), TaosError> {
    let mut eps: Vec<(String, u16)> = first.into_iter().collect();
    for ep in opts.endpoints() {
        if !eps.contains(&ep) {
            eps.push(ep);
        }
    }
    let mut last = None;
    for (host, port) in eps {
        match open_at(opts, host, port, &db, req_ids).await {
            Ok(ok) => return Ok(ok),
            Err(OpenError::Server(e)) => return Err(e),
            Err(OpenError::Unreachable(e)) => {
                tracing::debug!(error = %e, "endpoint unreachable");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| TaosError::of(Code::RPC_NETWORK_UNAVAIL)))
}

/// Connect to one endpoint and authenticate, following redirects.
async fn open_at(
    opts: &ConnectOptions,
    mut host: String,
    mut port: u16,
    db: &Option<String>,
    req_ids: &AtomicU64,
) -> Result<(Stream, (String, u16), Welcome), OpenError> {
    let timeout = opts.connect_timeout;
    for _hop in 0..=MAX_REDIRECTS {
        let tcp =
            match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(OpenError::Unreachable(unreachable_err(&host, port, e))),
                Err(_) => {
                    return Err(OpenError::Unreachable(unreachable_err(
                        &host,
                        port,
                        "timed out",
                    )))
                }
            };
        let _ = tcp.set_nodelay(true);
        let mut stream = BufReader::with_capacity(64 << 10, tcp);
        let req = Request::Connect {
            user: opts.user.clone(),
            password: opts.password.clone(),
            db: db.clone(),
            tz: opts.tz.clone(),
            app: opts.app.clone(),
        };
        let req_id = req_ids.fetch_add(1, Ordering::Relaxed);
        let reply = match tokio::time::timeout(timeout, exchange(&mut stream, req_id, &req)).await {
            Ok(r) => r,
            Err(_) => {
                let e = unreachable_err(&host, port, "no reply to Connect");
                return Err(OpenError::Unreachable(e));
            }
        };
        match reply {
            Ok(Response::Connected {
                conn_id,
                server_version,
                cluster_id,
                db,
            }) => {
                let welcome = Welcome {
                    conn_id,
                    server_version,
                    cluster_id,
                    db,
                };
                return Ok((stream, (host, port), welcome));
            }
            Ok(Response::Redirect { ep }) => {
                tracing::debug!(from = %format!("{host}:{port}"), to = %ep, "connect redirected");
                (host, port) = split_ep(&ep, port);
            }
            Ok(Response::Error(e)) => return Err(OpenError::Server(e)),
            Ok(other) => return Err(OpenError::Server(unexpected("Connect", &other))),
            Err(CallError::Fatal(e)) => return Err(OpenError::Server(e)),
            Err(CallError::NotSent(e)) | Err(CallError::Lost(e)) => {
                return Err(OpenError::Unreachable(unreachable_err(
                    &host, port, e.message,
                )))
            }
        }
    }
    Err(OpenError::Unreachable(TaosError::new(
        Code::RPC_NETWORK_UNAVAIL,
        format!("too many redirects while connecting (last to {host}:{port})"),
    )))
}

/// What a statement produced.
pub enum QueryResult {
    /// DDL, INSERT, USE ...: rows affected.
    Affected(i64),
    /// A result set, fetched block by block.
    Rows(ResultSet),
}

impl QueryResult {
    /// Rows affected; 0 for a result set.
    pub fn affected_rows(&self) -> i64 {
        match self {
            QueryResult::Affected(n) => *n,
            QueryResult::Rows(_) => 0,
        }
    }

    /// Result columns; empty when the statement had no result set.
    pub fn fields(&self) -> &[Field] {
        match self {
            QueryResult::Affected(_) => &[],
            QueryResult::Rows(r) => r.fields(),
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            QueryResult::Affected(_) => Precision::Ms,
            QueryResult::Rows(r) => r.precision(),
        }
    }

    pub fn has_result_set(&self) -> bool {
        matches!(self, QueryResult::Rows(_))
    }

    pub async fn next_block(&mut self) -> Result<Option<Block>, TaosError> {
        match self {
            QueryResult::Affected(_) => Ok(None),
            QueryResult::Rows(r) => r.next_block().await,
        }
    }

    pub async fn collect_rows(self) -> Result<Vec<Vec<Value>>, TaosError> {
        match self {
            QueryResult::Affected(_) => Ok(Vec::new()),
            QueryResult::Rows(r) => r.collect_rows().await,
        }
    }
}

/// A result set on the server, read block by block. Dropping it before the end frees it on the
/// server (FreeResult is sent ahead of the connection's next request).
pub struct ResultSet {
    conn: Connection,
    result_id: u64,
    generation: u64,
    fields: Vec<Field>,
    precision: Precision,
    /// The block that came with the header, not yet handed out.
    pending: Option<Block>,
    /// The server has sent the last block (and forgotten the result).
    completed: bool,
}

impl ResultSet {
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The next non-empty block, or `None` at the end.
    pub async fn next_block(&mut self) -> Result<Option<Block>, TaosError> {
        loop {
            if let Some(b) = self.pending.take() {
                if b.rows > 0 {
                    return Ok(Some(b));
                }
            }
            if self.completed {
                return Ok(None);
            }
            let req = Request::Fetch {
                result_id: self.result_id,
            };
            let resp = match self.conn.call(&req, false, Some(self.generation)).await {
                Ok((resp, _)) => resp,
                Err(e) => {
                    self.completed = true;
                    return Err(e);
                }
            };
            match resp {
                Response::Block { block, completed } => {
                    self.completed = completed;
                    self.pending = Some(block);
                }
                Response::Error(e) => {
                    self.completed = true;
                    return Err(e);
                }
                other => {
                    self.completed = true;
                    return Err(unexpected("Fetch", &other));
                }
            }
        }
    }

    /// All remaining rows, row-major.
    pub async fn collect_rows(mut self) -> Result<Vec<Vec<Value>>, TaosError> {
        let mut rows = Vec::new();
        while let Some(b) = self.next_block().await? {
            append_rows(&mut rows, b);
        }
        Ok(rows)
    }
}

impl Drop for ResultSet {
    fn drop(&mut self) {
        if !self.completed {
            self.conn.orphans().push((self.generation, self.result_id));
        }
    }
}

/// Transpose a column-major block onto `rows`.
pub fn append_rows(rows: &mut Vec<Vec<Value>>, block: Block) {
    let mut cols: Vec<_> = block
        .columns
        .into_iter()
        .map(|c| c.values.into_iter())
        .collect();
    rows.reserve(block.rows);
    for _ in 0..block.rows {
        rows.push(
            cols.iter_mut()
                .map(|c| c.next().unwrap_or(Value::Null))
                .collect(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_statements() {
        assert!(is_idempotent("  SELECT * from t"));
        assert!(is_idempotent("show databases"));
        assert!(is_idempotent("(select 1)"));
        assert!(!is_idempotent("insert into t values (now, 1)"));
        assert!(!is_idempotent("create table t (ts timestamp, v int)"));
        assert_eq!(use_target("USE `power`;").as_deref(), Some("power"));
        assert_eq!(use_target("user_x"), None);
    }
}
