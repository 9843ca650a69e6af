//! A small HTTP/1.1 GET client (plain or TLS through rustls/ring) for REST sources such as the
//! PI Web API: keep-alive on one connection, Basic auth, `Content-Length` and chunked bodies.
//! Trust for HTTPS: a pinned SHA-256 fingerprint, a CA file, or the system roots.

use crate::tls::Trust;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest response body accepted.
const MAX_BODY: usize = 64 << 20;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

pub struct Client {
    host: String,
    port: u16,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    auth: Option<String>,
    conn: Option<BufReader<Box<dyn Stream>>>,
    timeout: std::time::Duration,
}

fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Percent-encode a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(
        host: &str,
        port: u16,
        tls: Option<Trust>,
        user: Option<&str>,
        password: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<Client, String> {
        let tls = match tls {
            None => None,
            Some(trust) => {
                let cfg = crate::tls::rustls_client(&trust).map_err(|e| e.to_string())?;
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("TLS name {host}: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(cfg)), name))
            }
        };
        Ok(Client {
            host: host.to_string(),
            port,
            tls,
            auth: user.map(|u| {
                format!(
                    "Basic {}",
                    base64(format!("{u}:{}", password.unwrap_or("")).as_bytes())
                )
            }),
            conn: None,
            timeout,
        })
    }

    async fn connect(&self) -> Result<BufReader<Box<dyn Stream>>, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let s: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some((c, name)) => Box::new(
                c.connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.host))?,
            ),
        };
        Ok(BufReader::new(s))
    }

    /// GET `path` (with query); returns the status and body. Retries once on a stale
    /// keep-alive connection.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(self.connect().await?);
            }
            let r = tokio::time::timeout(self.timeout, self.exchange(path)).await;
            match r {
                Ok(Ok(x)) => return Ok(x),
                Ok(Err(e)) if attempt == 0 => {
                    tracing::debug!(error = %e, "HTTP exchange failed; reconnecting");
                    self.conn = None;
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    return Err(e);
                }
                Err(_) => {
                    self.conn = None;
                    return Err(format!("GET {path}: no answer within {:?}", self.timeout));
                }
            }
        }
        Err("unreachable".into())
    }

    async fn exchange(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let auth = self
            .auth
            .as_ref()
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}:{}\r\n{auth}Accept: application/json\r\nConnection: keep-alive\r\n\r\n",
            self.host, self.port
        );
        let conn = self.conn.as_mut().ok_or("not connected")?;
        conn.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        if conn.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line '{}'", line.trim()))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.parse().ok(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size '{}'", line.trim()))?;
                if body.len() + n > MAX_BODY {
                    return Err("response too large".into());
                }
                let start = body.len();
                body.resize(start + n, 0);
                conn.read_exact(&mut body[start..])
                    .await
                    .map_err(|e| e.to_string())?;
                line.clear();
                conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err("response too large".into());
            }
            body.resize(n, 0);
            conn.read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
        } else {
            conn.read_to_end(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            close = true;
        }
        if close {
            self.conn = None;
        }
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_and_percent_encoding() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::encode("\\\\srv\\tag 1"), "%5C%5Csrv%5Ctag%201");
    }
}
