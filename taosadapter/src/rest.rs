//! `/rest/*`: SQL over HTTP and token login (PROTOCOLS.md §2).
//!
//! Every error leaves as `{"code":<decimal>,"desc":"...","timing":<ns>}`. Request problems get
//! 4xx; TDengine's own errors get HTTP 200 unless `httpCodeServerError` is on, because that is
//! what clients and the TDengine docs expect.

pub mod encode;
pub mod login;
pub mod sql;

use crate::auth::{AuthError, Credentials};
use crate::body::BodyError;
use crate::metrics::ErrorKind;
use crate::pool::PoolError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{Code, TaosError};
use std::time::Instant;

/// The adapter's generic error code (0xFFFF).
pub const GENERIC: u32 = 0xFFFF;
/// 0x1106 / 0x1107: empty body, whitespace-only body.
pub const REQUEST_EMPTY: u32 = 0x1106;
pub const NO_SQL: u32 = 0x1107;
/// 0x110A: `/rest/login` with an unusable user name.
pub const TOKEN_ERROR: u32 = 0x110A;
/// 0x1121: unreadable body.
pub const BAD_CONTENT_LENGTH: u32 = 0x1121;

pub const JSON: &str = "application/json; charset=utf-8";

/// A failed `/rest/*` request.
#[derive(Debug, Clone)]
pub struct RestError {
    pub status: StatusCode,
    /// Reported as `code & 0xFFFF`.
    pub code: u32,
    pub desc: String,
    pub kind: ErrorKind,
}

impl RestError {
    pub fn bad_request(code: u32, desc: impl Into<String>) -> RestError {
        RestError {
            status: StatusCode::BAD_REQUEST,
            code,
            desc: desc.into(),
            kind: ErrorKind::Request,
        }
    }

    pub fn auth(e: AuthError) -> RestError {
        RestError {
            status: StatusCode::UNAUTHORIZED,
            code: e.code(),
            desc: e.to_string(),
            kind: ErrorKind::Auth,
        }
    }

    pub fn body(e: BodyError) -> RestError {
        let code = match e {
            BodyError::Read(_) | BodyError::BadLength => BAD_CONTENT_LENGTH,
            _ => GENERIC,
        };
        RestError {
            status: e.status(),
            code,
            desc: e.to_string(),
            kind: ErrorKind::Request,
        }
    }

    /// An error TDengine reported (or taosc on its behalf).
    pub fn taos(e: &TaosError, http_code_server_error: bool) -> RestError {
        RestError {
            status: taos_status(e.short_code(), http_code_server_error),
            code: e.short_code() as u32,
            desc: e.message.clone(),
            kind: ErrorKind::Taos,
        }
    }

    pub fn pool(e: &PoolError, http_code_server_error: bool) -> RestError {
        match e {
            PoolError::Timeout => RestError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: GENERIC,
                desc: e.to_string(),
                kind: ErrorKind::Pool,
            },
            PoolError::Taos(t) => RestError::taos(t, http_code_server_error),
        }
    }

    /// Bearer tokens need TDengine's token login, which our taosd does not offer.
    pub fn token_login_unsupported(http_code_server_error: bool) -> RestError {
        let e = TaosError::new(
            Code::AUTH_FAILURE,
            "Authentication failure: token login is not supported by this server",
        );
        RestError::taos(&e, http_code_server_error)
    }

    pub fn respond(&self, started: Instant) -> Response {
        let mut out = Vec::with_capacity(64 + self.desc.len());
        out.extend_from_slice(b"{\"code\":");
        out.extend_from_slice((self.code & 0xFFFF).to_string().as_bytes());
        out.extend_from_slice(b",\"desc\":");
        encode::write_str(&mut out, &self.desc);
        out.extend_from_slice(b",\"timing\":");
        out.extend_from_slice(started.elapsed().as_nanos().to_string().as_bytes());
        out.push(b'}');
        let mut resp = (self.status, out).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        resp.extensions_mut().insert(self.kind);
        resp
    }
}

/// HTTP status for a TDengine error code (§2.4).
pub fn taos_status(code: u16, http_code_server_error: bool) -> StatusCode {
    if !http_code_server_error {
        return StatusCode::OK;
    }
    match code {
        0x0216 | 0x021B | 0x2600 | 0x060B | 0x0224 | 0x263B => StatusCode::BAD_REQUEST,
        0x0350..=0x0357 => StatusCode::UNAUTHORIZED,
        0x000B => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// User and password from a REST request's headers, or the error to send.
pub fn credentials(
    headers: &axum::http::HeaderMap,
    has_token_param: bool,
    http_code_server_error: bool,
) -> Result<(String, String), RestError> {
    let h = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match crate::auth::parse_authorization(h, !has_token_param) {
        Ok(Credentials::Password { user, password }) => Ok((user, password)),
        Ok(Credentials::Token(_)) => {
            Err(RestError::token_login_unsupported(http_code_server_error))
        }
        Err(e) => Err(RestError::auth(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(taos_status(0x2600, false), StatusCode::OK);
        assert_eq!(taos_status(0x2600, true), StatusCode::BAD_REQUEST);
        assert_eq!(taos_status(0x0357, true), StatusCode::UNAUTHORIZED);
        assert_eq!(taos_status(0x000B, true), StatusCode::BAD_GATEWAY);
        assert_eq!(taos_status(0x0388, true), StatusCode::INTERNAL_SERVER_ERROR);
        let e = TaosError::new(Code::PAR_SYNTAX_ERROR, "syntax error near \"1\"");
        let r = RestError::taos(&e, false);
        assert_eq!((r.status, r.code), (StatusCode::OK, 9728));
    }
}
