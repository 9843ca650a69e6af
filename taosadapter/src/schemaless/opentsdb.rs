//! `POST /opentsdb/v1/put/json/<db>` and `/opentsdb/v1/put/telnet/<db>` (§3.2).
//!
//! Auth is required (`Authorization: Basic`). Success is 204; errors are
//! `{"code":<http status>,"message":"..."}`. As for InfluxDB, a bad data point is 400 with its
//! number, not 500.

use super::{write, Protocol, WriteError};
use crate::auth::{parse_authorization, AuthError, Credentials};
use crate::metrics::ErrorKind;
use crate::pool::PoolError;
use crate::App;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

fn error(status: StatusCode, message: impl Into<String>, kind: ErrorKind) -> Response {
    let body = json!({"code": status.as_u16(), "message": message.into()});
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.extensions_mut().insert(kind);
    r
}

pub async fn put_json(
    State(app): State<Arc<App>>,
    Path(db): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    put(app, db, uri, headers, body, Protocol::OpenTsdbJson).await
}

pub async fn put_telnet(
    State(app): State<Arc<App>>,
    Path(db): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    put(app, db, uri, headers, body, Protocol::OpenTsdbTelnet).await
}

async fn put(
    app: Arc<App>,
    db: String,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    protocol: Protocol,
) -> Response {
    let q: HashMap<String, String> = match Query::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text(), ErrorKind::Request),
    };
    let auth = parse_authorization(
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        true,
    );
    let (user, password) = match auth {
        Ok(Credentials::Password { user, password }) => (user, password),
        Ok(Credentials::Token(_)) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "token login is not supported by this server",
                ErrorKind::Auth,
            )
        }
        Err(AuthError::Missing) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "auth info required",
                ErrorKind::Auth,
            )
        }
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.to_string(), ErrorKind::Auth),
    };
    for key in ["ttl", "req_id"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            if v.parse::<u64>().is_err() {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("illegal param, {key} must be numeric: {v}"),
                    ErrorKind::Request,
                );
            }
        }
    }
    let data = match crate::body::read_body(&headers, body, app.config.max_body_size).await {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.to_string(), ErrorKind::Request),
    };
    match write(&app, &user, &password, &db, &data, protocol).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(&e),
    }
}

fn write_error(e: &WriteError) -> Response {
    match e {
        WriteError::Pool(PoolError::Timeout) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
            ErrorKind::Pool,
        ),
        WriteError::Sml(s) if super::is_client_error(s) => {
            error(StatusCode::BAD_REQUEST, s.to_string(), ErrorKind::Request)
        }
        _ => {
            let taos = super::taos_error(e);
            if taos.is_some_and(|t| matches!(t.short_code(), 0x0003 | 0x0350..=0x0357)) {
                return error(StatusCode::UNAUTHORIZED, super::message(e), ErrorKind::Taos);
            }
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                super::message(e),
                ErrorKind::Taos,
            )
        }
    }
}
