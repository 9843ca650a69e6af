//! `GET /rest/login/<user>/<password>`: check the credentials against taosd and hand out a
//! `Taosd` token (see [`crate::auth`]) that later requests may send instead of Basic auth.

use super::{RestError, JSON, TOKEN_ERROR};
use crate::auth::encode_token;
use crate::metrics::ErrorKind;
use crate::pool::{PoolError, PoolKey};
use crate::App;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

pub async fn login(
    State(app): State<Arc<App>>,
    Path((user, password)): Path<(String, String)>,
) -> Response {
    let started = Instant::now();
    let token = match encode_token(&user, &password) {
        Ok(t) => t,
        Err(e) => return RestError::bad_request(TOKEN_ERROR, e.to_string()).respond(started),
    };
    let strict = app.config.http_code_server_error;
    match app.pool.get(&PoolKey::new(&user, &password)).await {
        Ok(_conn) => {}
        Err(PoolError::Taos(e)) if is_auth_error(e.short_code()) => {
            let err = RestError {
                status: StatusCode::UNAUTHORIZED,
                code: 0x0003,
                desc: "Authentication failure".into(),
                kind: ErrorKind::Auth,
            };
            return err.respond(started);
        }
        Err(e) => return RestError::pool(&e, strict).respond(started),
    }
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"code\":0,\"desc\":");
    super::encode::write_str(&mut out, &token);
    out.push(b'}');
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// Codes that mean "these credentials are wrong" rather than "the server is unwell".
fn is_auth_error(code: u16) -> bool {
    matches!(code, 0x0003 | 0x0350..=0x0357)
}
