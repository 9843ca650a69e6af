//! `taosx.toml` (the real taosX's section and key names), `TAOSX_*` environment variables and
//! `--section.key` flags. Defaults run on a laptop against a local taosd.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub serve: Serve,
    pub taos: Taos,
    pub log: Log,
    pub monitor: Monitor,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Serve {
    /// HTTP API.
    pub listen: String,
    /// QUIC endpoint for agents (UDP).
    pub quic: String,
    /// Task store, certificates and error archives; empty = /var/lib/taos/taosx (or
    /// ~/.local/share/taos/taosx when that is not writable).
    pub data_dir: String,
    /// Certificate and key (PEM) for the agent endpoint; empty = `<data_dir>/taosx.crt|.key`,
    /// generated self-signed on first start.
    pub ssl_cert: String,
    pub ssl_key: String,
    /// Names written into a generated certificate.
    pub cert_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Taos {
    /// Where rows go: `taos://user:password@host:port`.
    pub dsn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Log {
    pub level: String,
    /// Directory for `taosx.log`; empty logs to stderr.
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Monitor {
    /// taosKeeper host; empty disables reporting.
    pub fqdn: String,
    pub port: i64,
    pub interval: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            serve: Serve::default(),
            taos: Taos::default(),
            log: Log::default(),
            monitor: Monitor::default(),
        }
    }
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            listen: "0.0.0.0:6050".into(),
            quic: "0.0.0.0:6055".into(),
            data_dir: String::new(),
            ssl_cert: String::new(),
            ssl_key: String::new(),
            cert_names: vec!["localhost".into(), "127.0.0.1".into()],
        }
    }
}

impl Default for Taos {
    fn default() -> Self {
        Taos {
            dsn: "taos://root:taosdata@localhost:6030".into(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            path: String::new(),
        }
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            fqdn: String::new(),
            port: 6043,
            interval: 10,
        }
    }
}

impl Config {
    pub fn data_dir(&self) -> PathBuf {
        if !self.serve.data_dir.is_empty() {
            return PathBuf::from(&self.serve.data_dir);
        }
        let system = PathBuf::from("/var/lib/taos/taosx");
        if std::fs::create_dir_all(&system).is_ok() {
            return system;
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".local/share/taos/taosx")
    }

    pub fn cert_paths(&self, data_dir: &std::path::Path) -> (PathBuf, PathBuf) {
        let pick = |s: &str, default: &str| {
            if s.is_empty() {
                data_dir.join(default)
            } else {
                PathBuf::from(s)
            }
        };
        (
            pick(&self.serve.ssl_cert, "taosx.crt"),
            pick(&self.serve.ssl_key, "taosx.key"),
        )
    }
}
