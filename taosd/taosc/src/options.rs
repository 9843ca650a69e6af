//! Where and how to connect: taos.cfg endpoints, DSNs, credentials.

use common::config::{split_ep, CfgFile};
use common::{Code, TaosError};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// TDengine's default serverPort.
pub const DEFAULT_PORT: u16 = 6030;

/// Everything needed to open a [`crate::Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    /// Tried when `host:port` cannot be reached (taos.cfg `secondEp`), as `host:port`.
    pub second_ep: Option<String>,
    pub user: String,
    pub password: String,
    /// Database to use once connected.
    pub db: Option<String>,
    /// Session time zone sent to the server (taos.cfg `timezone`).
    pub tz: Option<String>,
    /// Application name the server shows in `SHOW CONNECTIONS`.
    pub app: String,
    /// Limit on each TCP connect attempt.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            second_ep: None,
            user: "root".into(),
            password: "taosdata".into(),
            db: None,
            tz: None,
            app: default_app_name(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

fn default_app_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "taosc".into())
}

impl ConnectOptions {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            ..Default::default()
        }
    }

    /// Options from `DIR/taos.cfg` (or a cfg file path): `firstEp`, `secondEp`, `serverPort`,
    /// `timezone`. A missing file gives the defaults, as in TDengine.
    pub fn from_cfg_dir(path: impl AsRef<Path>) -> std::io::Result<ConnectOptions> {
        let cfg = CfgFile::load(path.as_ref())?;
        Ok(Self::from_cfg(&cfg))
    }

    /// Options from an already loaded taos.cfg.
    pub fn from_cfg(cfg: &CfgFile) -> ConnectOptions {
        let mut o = ConnectOptions::default();
        let server_port = cfg
            .get("serverPort")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let default_port = server_port.unwrap_or(DEFAULT_PORT);
        o.port = default_port;
        if let Some(ep) = cfg.get("firstEp").filter(|e| !e.trim().is_empty()) {
            let (h, p) = split_ep(ep.trim(), default_port);
            o.host = h;
            o.port = p;
        }
        if let Some(ep) = cfg.get("secondEp").filter(|e| !e.trim().is_empty()) {
            let (h, p) = split_ep(ep.trim(), default_port);
            o.second_ep = Some(format!("{h}:{p}"));
        }
        o.tz = cfg.get("timezone").filter(|t| !t.trim().is_empty());
        o
    }

    /// Parse `taos://user:pass@host:port/db?tz=UTC&app=name`. Every part is optional:
    /// `taos://` alone means the defaults. User and password may be percent-encoded.
    pub fn from_dsn(dsn: &str) -> Result<ConnectOptions, TaosError> {
        let bad =
            |why: &str| TaosError::new(Code::INVALID_PARA, format!("invalid DSN '{dsn}': {why}"));
        let rest = dsn
            .trim()
            .strip_prefix("taos://")
            .or_else(|| dsn.trim().strip_prefix("taos+tcp://"))
            .ok_or_else(|| bad("expected taos://[user[:password]@]host[:port][/db]"))?;
        let mut o = ConnectOptions::default();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        // The password may contain '@' or '/' when not encoded: split at the last '@'.
        let (auth, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        if let Some(auth) = auth {
            let (u, p) = match auth.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (auth, None),
            };
            if !u.is_empty() {
                o.user = percent_decode(u).ok_or_else(|| bad("bad percent-encoding in user"))?;
            }
            if let Some(p) = p {
                o.password =
                    percent_decode(p).ok_or_else(|| bad("bad percent-encoding in password"))?;
            }
        }
        let (ep, db) = match hostpart.split_once('/') {
            Some((ep, db)) => (ep, Some(db)),
            None => (hostpart, None),
        };
        if let Some(db) = db
            .map(|d| d.trim_end_matches('/'))
            .filter(|d| !d.is_empty())
        {
            o.db = Some(db.to_string());
        }
        if !ep.is_empty() {
            let (host, port) = if let Some(v6) = ep.strip_prefix('[') {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad("unclosed '[' in host"))?;
                (h, after.strip_prefix(':'))
            } else {
                match ep.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (ep, None),
                }
            };
            if !host.is_empty() {
                o.host = host.to_string();
            }
            if let Some(p) = port.filter(|p| !p.is_empty()) {
                o.port = p
                    .parse()
                    .map_err(|_| bad("port must be a number 1..65535"))?;
            }
        }
        for kv in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = percent_decode(v).ok_or_else(|| bad("bad percent-encoding in parameter"))?;
            match k {
                "tz" | "timezone" => o.tz = Some(v),
                "app" => o.app = v,
                _ => return Err(bad(&format!("unknown parameter '{k}'"))),
            }
        }
        Ok(o)
    }

    /// Endpoints to try, in order: `host:port`, then `secondEp`.
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        let mut eps = vec![(self.host.clone(), self.port)];
        if let Some(second) = &self.second_ep {
            let ep = split_ep(second, self.port);
            if !eps.contains(&ep) {
                eps.push(ep);
            }
        }
        eps
    }
}

impl FromStr for ConnectOptions {
    type Err = TaosError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectOptions::from_dsn(s)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_full_and_partial() {
        let o = ConnectOptions::from_dsn("taos://u:p%40ss@db1.example:7030/power?tz=UTC").unwrap();
        assert_eq!((o.user.as_str(), o.password.as_str()), ("u", "p@ss"));
        assert_eq!((o.host.as_str(), o.port), ("db1.example", 7030));
        assert_eq!(o.db.as_deref(), Some("power"));
        assert_eq!(o.tz.as_deref(), Some("UTC"));

        let d = ConnectOptions::from_dsn("taos://").unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.user.as_str()),
            ("localhost", 6030, "root")
        );
        assert_eq!(d.db, None);

        let v6 = ConnectOptions::from_dsn("taos://[::1]:6041").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6041));

        assert!(ConnectOptions::from_dsn("http://x").is_err());
        assert!(ConnectOptions::from_dsn("taos://h:notaport").is_err());
        assert!(ConnectOptions::from_dsn("taos://h?what=1").is_err());
    }

    #[test]
    fn cfg_endpoints() {
        let cfg =
            CfgFile::parse("firstEp node1:7100\nsecondEp node2\nserverPort 7000\ntimezone UTC\n");
        let o = ConnectOptions::from_cfg(&cfg);
        assert_eq!(
            o.endpoints(),
            vec![("node1".to_string(), 7100), ("node2".to_string(), 7000)]
        );
        assert_eq!(o.tz.as_deref(), Some("UTC"));
        let o = ConnectOptions::from_cfg(&CfgFile::parse("serverPort 7000\n"));
        assert_eq!((o.host.as_str(), o.port), ("localhost", 7000));
    }
}
