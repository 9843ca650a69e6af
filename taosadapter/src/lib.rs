//! taosadapter: the HTTP gateway (default port 6041) in front of taosd.
//!
//! Stateless by design: every request carries its credentials, talks to taosd through taosc
//! only, and leaves nothing behind but idle pooled connections, so several instances can run
//! behind a load balancer. Routes:
//!
//! | route | module |
//! |---|---|
//! | `POST /rest/sql[/<db>]` | [`rest::sql`] |
//! | `GET /rest/login/<user>/<password>` | [`rest::login`] |
//! | `POST /influxdb/v1/write` | [`schemaless::influx`] |
//! | `POST /opentsdb/v1/put/{json,telnet}/<db>` | [`schemaless::opentsdb`] |
//! | `GET /ws` (and legacy `/rest/ws`, `/rest/stmt`, `/rest/schemaless`) | [`ws`] |
//! | `GET /-/ping`, `GET /metrics` | here, [`metrics`] |

pub mod auth;
pub mod body;
pub mod config;
pub mod metrics;
pub mod pool;
pub mod rest;
pub mod schemaless;
pub mod ws;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use config::Config;
use metrics::{ErrorKind, Metrics};
use pool::Pool;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Everything a handler needs; shared by all requests.
pub struct App {
    pub config: Config,
    pub pool: Pool,
    pub metrics: Metrics,
    /// Holds the schema cache shared by all schemaless writes.
    sml: OnceLock<taosc::schemaless::Writer>,
}

impl App {
    /// Reads taos.cfg from `taosConfigDir` for the endpoints (a missing file means
    /// localhost:6030, as in TDengine).
    pub fn new(config: Config) -> std::io::Result<App> {
        let base = taosc::ConnectOptions::from_cfg_dir(&config.taos_config_dir)?;
        let pool = Pool::new(base, &config);
        Ok(App {
            config,
            pool,
            metrics: Metrics::default(),
            sml: OnceLock::new(),
        })
    }

    /// A schemaless writer on `conn` sharing the adapter-wide schema cache.
    pub fn sml_writer(&self, conn: taosc::Connection) -> taosc::schemaless::Writer {
        schemaless::new_writer(&self.sml, conn)
    }
}

/// All routes with CORS and metrics around them.
pub fn router(app: Arc<App>) -> Router {
    let mut r = Router::new()
        .route("/rest/sql", post(rest::sql::sql_root))
        .route("/rest/sql/", post(rest::sql::sql_root))
        .route("/rest/sql/{db}", post(rest::sql::sql_db))
        .route("/rest/sql/{db}/", post(rest::sql::sql_db))
        .route("/rest/login/{user}/{password}", get(rest::login::login))
        .route("/ws", get(ws::handler))
        .route("/rest/ws", get(ws::handler))
        .route("/rest/stmt", get(ws::handler))
        .route("/rest/schemaless", get(ws::handler))
        .route("/rest/tmq", get(ws::tmq::handler))
        .route("/-/ping", get(ping))
        .route("/metrics", get(metrics_page));
    if app.config.influxdb_enable {
        r = r.route(
            "/influxdb/v1/write",
            post(schemaless::influx::write_handler),
        );
    }
    if app.config.opentsdb_enable {
        r = r
            .route(
                "/opentsdb/v1/put/json/{db}",
                post(schemaless::opentsdb::put_json),
            )
            .route(
                "/opentsdb/v1/put/telnet/{db}",
                post(schemaless::opentsdb::put_telnet),
            );
    }
    r.layer(middleware::from_fn_with_state(app.clone(), count))
        .layer(middleware::from_fn_with_state(app.clone(), cors))
        .with_state(app)
}

async fn ping() -> StatusCode {
    StatusCode::OK
}

async fn metrics_page(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(app.pool.in_use(), app.pool.idle_count());
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Count every request by route template and status, and errors by kind.
async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    app.metrics.request_started();
    let resp = next.run(req).await;
    if let Some(kind) = resp.extensions().get::<ErrorKind>() {
        app.metrics.error(*kind);
    }
    let status = resp.status().as_u16();
    app.metrics.request_finished(&route, status);
    tracing::debug!(%method, route = %route, status, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

const CORS_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const CORS_HEADERS: &str = "Origin, Content-Length, Content-Type, Content-Encoding, Authorization";

/// CORS: `*` when `allowAllOrigins`, else the request's origin if listed. Preflights are
/// answered here, before routing, so they work on every route.
async fn cors(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allow = if app.config.cors_allow_all_origins {
        Some(HeaderValue::from_static("*"))
    } else {
        origin.clone().filter(|o| {
            o.to_str()
                .map(|o| app.config.cors_allow_origins.iter().any(|a| a == o))
                .unwrap_or(false)
        })
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(allow) = allow else {
            return StatusCode::FORBIDDEN.into_response();
        };
        let req_headers = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(CORS_HEADERS));
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("43200"),
        );
        if !app.config.cors_allow_all_origins {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        return r;
    }
    let mut resp = next.run(req).await;
    if let Some(allow) = allow {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if !app.config.cors_allow_all_origins {
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    resp
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serve until `shutdown` resolves, then stop accepting, let in-flight requests finish (at most
/// [`SHUTDOWN_GRACE`]) and return.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if !app.config.pool_idle_timeout.is_zero() {
        let pool = app.pool.clone();
        let every = (app.config.pool_idle_timeout / 2).max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                pool.reap();
            }
        });
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signalled = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let _ = tx.send(true);
    };
    // Small request/reply frames (WebSocket binds, REST calls) must not wait on Nagle's
    // algorithm: without TCP_NODELAY a bind followed by an exec costs a delayed-ACK round.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(signalled);
    let mut rx2 = rx.clone();
    tokio::select! {
        r = server => r,
        _ = async move {
            let _ = rx2.wait_for(|v| *v).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("in-flight requests did not finish within {:?}; exiting", SHUTDOWN_GRACE);
            drop(rx);
            Ok(())
        }
    }
}
