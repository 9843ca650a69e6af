//! The `Authorization` header and `Taosd` tokens.
//!
//! A Taosd token is what `GET /rest/login/<user>/<password>` hands out and what older clients send
//! back as `Authorization: Taosd <token>`. It is not a secret store: it is the user and password,
//! DES-encrypted with a key every TDengine build shares, so clients that cached tokens from the
//! real adapter keep working with ours. Layout of the plaintext: 48 zero bytes, the user copied at
//! offset 0 (1..=24 bytes), the password at offset 24; a password longer than 24 bytes grows the
//! buffer to the next multiple of 8. Each 8-byte block is encrypted on its own (ECB), then the
//! whole is base64 (standard alphabet).

use base64::Engine;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// TDengine's token key (decimal 64,182,122,48,86,115,253,68).
const TOKEN_KEY: [u8; 8] = [0x40, 0xb6, 0x7a, 0x30, 0x56, 0x73, 0xfd, 0x44];
const USER_LEN: usize = 24;
const PLAIN_LEN: usize = 48;

/// Who the request claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Password {
        user: String,
        password: String,
    },
    /// A `Bearer` token, for TDengine's token login.
    Token(String),
}

/// Why the `Authorization` header was refused; each maps to the adapter's code (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no auth info input")]
    Missing,
    #[error("invalid basic Authorization")]
    BadBasic,
    #[error("invalid taosd Authorization")]
    BadTaosd,
    #[error("invalid type of Authorization")]
    BadType,
}

impl AuthError {
    /// The adapter's error code (0x1105, 0x1124, 0x1125, 0x1122).
    pub fn code(self) -> u32 {
        match self {
            AuthError::Missing => 0x1105,
            AuthError::BadBasic => 0x1124,
            AuthError::BadTaosd => 0x1125,
            AuthError::BadType => 0x1122,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("generate taosd token error")]
pub struct TokenError;

fn cipher() -> des::Des {
    // `from_slice` only panics on a length mismatch, and the key is a fixed 8-byte array.
    des::Des::new(GenericArray::from_slice(&TOKEN_KEY))
}

/// Encode a Taosd token. The user must be 1..=24 bytes.
pub fn encode_token(user: &str, password: &str) -> Result<String, TokenError> {
    if user.is_empty() || user.len() > USER_LEN {
        return Err(TokenError);
    }
    let len = PLAIN_LEN.max((USER_LEN + password.len()).div_ceil(8) * 8);
    let mut buf = vec![0u8; len];
    buf[..user.len()].copy_from_slice(user.as_bytes());
    buf[USER_LEN..USER_LEN + password.len()].copy_from_slice(password.as_bytes());
    let c = cipher();
    for block in buf.chunks_exact_mut(8) {
        c.encrypt_block(GenericArray::from_mut_slice(block));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Decode a Taosd token into (user, password); `None` when it is not one.
pub fn decode_token(token: &str) -> Option<(String, String)> {
    let mut buf = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    if buf.len() < PLAIN_LEN || buf.len() % 8 != 0 {
        return None;
    }
    let c = cipher();
    for block in buf.chunks_exact_mut(8) {
        c.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let cstr = |b: &[u8]| -> Option<String> {
        let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
        String::from_utf8(b[..end].to_vec()).ok()
    };
    let user = cstr(&buf[..USER_LEN])?;
    let password = cstr(&buf[USER_LEN..])?;
    Some((user, password))
}

/// Parse `Basic`, `Taosd` and `Bearer` headers in the real adapter's order of checks.
/// `bearer_allowed` is false when the request carries a `?token=` parameter.
pub fn parse_authorization(
    header: Option<&[u8]>,
    bearer_allowed: bool,
) -> Result<Credentials, AuthError> {
    let raw = header.unwrap_or_default();
    let text = std::str::from_utf8(raw)
        .map_err(|_| AuthError::BadType)?
        .trim();
    if text.is_empty() {
        return Err(AuthError::Missing);
    }
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("Basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthError::BadBasic)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::BadBasic)?;
        let (user, password) = decoded.split_once(':').ok_or(AuthError::BadBasic)?;
        if user.is_empty() || password.is_empty() {
            return Err(AuthError::BadBasic);
        }
        Ok(Credentials::Password {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("Taosd") {
        match decode_token(rest) {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Credentials::Password { user, password })
            }
            _ => Err(AuthError::BadTaosd),
        }
    } else if scheme.eq_ignore_ascii_case("Bearer") && bearer_allowed && !rest.is_empty() {
        Ok(Credentials::Token(rest.to_string()))
    } else {
        Err(AuthError::BadType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "/KfeAzX/f9na8qdtNZmtONryp201ma04bEl8LcvLUd7a8qdtNZmtONryp201ma04";

    #[test]
    fn token_matches_the_real_adapter() {
        assert_eq!(encode_token("root", "taosdata").unwrap(), VECTOR);
        assert_eq!(
            decode_token(VECTOR),
            Some(("root".to_string(), "taosdata".to_string()))
        );
    }

    #[test]
    fn token_round_trips_long_passwords_and_rejects_bad_users() {
        let pw = "p".repeat(40);
        let t = encode_token("u", &pw).unwrap();
        assert_eq!(decode_token(&t), Some(("u".to_string(), pw)));
        let t24 = encode_token(&"x".repeat(24), "y").unwrap();
        assert_eq!(decode_token(&t24).unwrap().0, "x".repeat(24));
        assert_eq!(encode_token("", "p"), Err(TokenError));
        assert_eq!(encode_token(&"x".repeat(25), "p"), Err(TokenError));
        assert_eq!(decode_token("not base64!"), None);
        assert_eq!(decode_token("AAAA"), None);
    }

    #[test]
    fn header_schemes_and_errors() {
        let ok = Credentials::Password {
            user: "root".into(),
            password: "taosdata".into(),
        };
        let p = |h: &str| parse_authorization(Some(h.as_bytes()), true);
        assert_eq!(p("Basic cm9vdDp0YW9zZGF0YQ=="), Ok(ok.clone()));
        assert_eq!(p(&format!("Taosd {VECTOR}")), Ok(ok));
        assert_eq!(p("Bearer abc"), Ok(Credentials::Token("abc".into())));
        assert_eq!(parse_authorization(None, true), Err(AuthError::Missing));
        assert_eq!(p(""), Err(AuthError::Missing));
        assert_eq!(p("Basic !!!"), Err(AuthError::BadBasic));
        // "root" without a colon; "root:" with an empty password.
        assert_eq!(p("Basic cm9vdA=="), Err(AuthError::BadBasic));
        assert_eq!(p("Basic cm9vdDo="), Err(AuthError::BadBasic));
        assert_eq!(p("Taosd xyz"), Err(AuthError::BadTaosd));
        assert_eq!(p("Digest x"), Err(AuthError::BadType));
        assert_eq!(
            parse_authorization(Some(b"Bearer abc"), false),
            Err(AuthError::BadType)
        );
        // A password may contain ':'; the split is at the first one.
        assert_eq!(
            p("Basic dTpwOnE="),
            Ok(Credentials::Password {
                user: "u".into(),
                password: "p:q".into()
            })
        );
    }
}
