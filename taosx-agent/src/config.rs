//! `agent.toml` (the real agent's keys plus what our durable buffer needs), `TAOSX_AGENT_*`
//! environment variables and `--key` flags.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// taosx's agent endpoint: `host:6055` (`quic://` or `http://` prefixes accepted).
    pub endpoint: String,
    /// Issued by taosx (`POST /api/v1/agents`).
    pub token: String,
    /// SHA-256 fingerprint of taosx's certificate (printed by taosx on first start).
    pub fingerprint: String,
    /// Or: a CA certificate (PEM path) that signed taosx's certificate.
    pub ca: String,
    /// TLS server name to ask for (default: the endpoint's host).
    pub server_name: String,
    #[serde(rename = "instanceId")]
    pub instance_id: String,
    /// Points are always stored and sent lz4-compressed; kept for the real agent's files.
    pub compression: bool,
    /// Keep running and reconnecting while taosx is away.
    pub keep_online: bool,
    pub buffer: Buffer,
    pub log: Log,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Buffer {
    /// Where `buffer.db` and the last task list live.
    pub dir: String,
    /// Size limit in MB (0 = no limit).
    pub size_limit_mb: i64,
    /// `block` (collectors wait, MQTT messages stay at the broker) or `drop_oldest`.
    pub policy: String,
    /// Batches in flight on the link.
    pub window: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Log {
    pub level: String,
    pub path: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "localhost:6055".into(),
            token: String::new(),
            fingerprint: String::new(),
            ca: String::new(),
            server_name: String::new(),
            instance_id: "1".into(),
            compression: true,
            keep_online: true,
            buffer: Buffer::default(),
            log: Log::default(),
        }
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer {
            dir: String::new(),
            size_limit_mb: 1024,
            policy: "block".into(),
            window: 16,
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

impl Config {
    pub fn buffer_dir(&self) -> std::path::PathBuf {
        if !self.buffer.dir.is_empty() {
            return self.buffer.dir.clone().into();
        }
        let system = std::path::PathBuf::from("/var/lib/taos/agent");
        if std::fs::create_dir_all(&system).is_ok() {
            return system;
        }
        std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".local/share/taos/agent")
    }

    /// Refuse settings that cannot work, saying why.
    pub fn check(&self) -> Result<(), String> {
        if self.token.is_empty() {
            return Err("token is required (issue one with taosx: POST /api/v1/agents)".into());
        }
        if self.fingerprint.is_empty() && self.ca.is_empty() {
            return Err(
                "set fingerprint (printed by taosx on first start) or ca: the agent never trusts an unknown server"
                    .into(),
            );
        }
        self.buffer
            .policy
            .parse::<taos_edge::buffer::FullPolicy>()?;
        if self.buffer.size_limit_mb < 0 || self.buffer.window < 1 {
            return Err("buffer.size_limit_mb must be >= 0 and buffer.window >= 1".into());
        }
        Ok(())
    }
}
