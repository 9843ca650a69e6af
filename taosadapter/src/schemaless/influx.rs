//! `POST /influxdb/v1/write?db=&precision=&u=&p=`: InfluxDB v1 line protocol (§3.1).
//!
//! Answers 204 on success. Errors use InfluxDB-style bodies where `code` is a *string*. One
//! deliberate difference from the real adapter: a line that does not parse or does not fit the
//! schema is 400 (with the line number), not 500, because writers such as Telegraf retry 5xx
//! forever and drop 4xx, and a bad line never gets better by retrying.

use super::{write, Protocol, WriteError};
use crate::auth::{parse_authorization, Credentials};
use crate::metrics::ErrorKind;
use crate::pool::PoolError;
use crate::App;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use taosc::schemaless::TsPrecision;

fn reply(status: StatusCode, body: serde_json::Value, kind: ErrorKind) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.extensions_mut().insert(kind);
    r
}

fn error(status: StatusCode, code: &str, message: impl Into<String>, kind: ErrorKind) -> Response {
    reply(
        status,
        json!({"code": code, "message": message.into()}),
        kind,
    )
}

/// User and password from `u`/`p` (which win) or the Authorization header.
fn credentials(q: &HashMap<String, String>, headers: &HeaderMap) -> Option<(String, String)> {
    let (mut user, mut password) = (None, None);
    if let Ok(Credentials::Password {
        user: u,
        password: p,
    }) = parse_authorization(
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        true,
    ) {
        user = Some(u);
        password = Some(p);
    }
    if let Some(u) = q.get("u").filter(|u| !u.is_empty()) {
        user = Some(u.clone());
    }
    if let Some(p) = q.get("p").filter(|p| !p.is_empty()) {
        password = Some(p.clone());
    }
    Some((user?, password?))
}

pub async fn write_handler(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q: HashMap<String, String> = match Query::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal param",
                e.body_text(),
                ErrorKind::Request,
            )
        }
    };
    let Some((user, password)) = credentials(&q, &headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "forbidden",
            "no auth info found",
            ErrorKind::Auth,
        );
    };
    let Some(db) = q.get("db").filter(|d| !d.is_empty()) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"code": "not found", "message": "db required", "op": "get db query", "err": "db required", "line": 0}),
            ErrorKind::Request,
        );
    };
    let precision_text = q.get("precision").map(String::as_str).unwrap_or("");
    let Some(precision) = TsPrecision::parse(precision_text) else {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal param",
            format!("precision not configured: {precision_text}"),
            ErrorKind::Request,
        );
    };
    for key in ["ttl", "req_id"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            if v.parse::<u64>().is_err() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "illegal param",
                    format!("illegal param, {key} must be numeric: {v}"),
                    ErrorKind::Request,
                );
            }
        }
    }
    let data = match crate::body::read_body(&headers, body, app.config.max_body_size).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                "illegal param",
                e.to_string(),
                ErrorKind::Request,
            )
        }
    };
    match write(
        &app,
        &user,
        &password,
        db,
        &data,
        Protocol::Influx(precision),
    )
    .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => write_error(&e),
    }
}

fn write_error(e: &WriteError) -> Response {
    match e {
        WriteError::Pool(PoolError::Timeout) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal error",
            e.to_string(),
            ErrorKind::Pool,
        ),
        WriteError::Sml(s) if super::is_client_error(s) => reply(
            StatusCode::BAD_REQUEST,
            json!({"code": "invalid", "message": s.to_string(), "line": s.line}),
            ErrorKind::Request,
        ),
        _ => {
            let taos = super::taos_error(e);
            if taos.is_some_and(|t| matches!(t.short_code(), 0x0003 | 0x0350..=0x0357)) {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "forbidden",
                    super::message(e),
                    ErrorKind::Taos,
                );
            }
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                super::message(e),
                ErrorKind::Taos,
            )
        }
    }
}
