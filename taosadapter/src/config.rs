//! Configuration: `taosadapter.toml` (the real adapter's key names), then `TAOS_ADAPTER_*`
//! environment variables, then command-line flags, each layer overriding the one before.
//!
//! Every key lives in one table ([`KEYS`]) so the three sources, `--help` and `--dump-config`
//! cannot drift apart. A dotted key `pool.maxConnect` is the TOML key `maxConnect` in section
//! `[pool]`, the environment variable `TAOS_ADAPTER_POOL_MAX_CONNECT` and the flag
//! `--pool.maxConnect`. Unknown TOML keys and unknown `TAOS_ADAPTER_*` variables are reported as
//! warnings rather than ignored silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the file is read from when `-c` is not given (and it exists).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/taos/taosadapter.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("invalid value '{value}' for {key}: {why}")]
    Value {
        key: String,
        value: String,
        why: String,
    },
    #[error("{0}")]
    Usage(String),
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen address. Defaults to loopback: exposing the adapter is an explicit decision.
    pub host: String,
    pub port: u16,
    pub taos_config_dir: PathBuf,
    pub log_level: String,
    /// Directory for `taosadapter.log`; empty logs to stderr only.
    pub log_path: String,
    /// Report TDengine errors with 4xx/5xx statuses instead of 200.
    pub http_code_server_error: bool,
    pub sml_auto_create_db: bool,
    /// Rows returned by one REST query at most; negative means unlimited.
    pub restful_row_limit: i64,
    pub cors_allow_all_origins: bool,
    pub cors_allow_origins: Vec<String>,
    /// Connections checked out at once; 0 means twice the CPU count, like the real adapter.
    pub pool_max_connect: usize,
    /// Idle connections kept (all users and databases together); 0 means `maxConnect`.
    pub pool_max_idle: usize,
    /// Idle connections older than this are closed; zero keeps them forever.
    pub pool_idle_timeout: Duration,
    /// How long a request waits for a free connection before 503.
    pub pool_wait_timeout: Duration,
    pub influxdb_enable: bool,
    pub opentsdb_enable: bool,
    /// Largest accepted request body, after gzip decompression.
    pub max_body_size: u64,
    /// Accepted for compatibility with the real adapter's files; informational only.
    pub instance_id: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 6041,
            taos_config_dir: PathBuf::from("/etc/taos"),
            log_level: "info".into(),
            log_path: String::new(),
            http_code_server_error: false,
            sml_auto_create_db: false,
            restful_row_limit: -1,
            cors_allow_all_origins: true,
            cors_allow_origins: Vec::new(),
            pool_max_connect: 0,
            pool_max_idle: 0,
            pool_idle_timeout: Duration::ZERO,
            pool_wait_timeout: Duration::from_secs(60),
            influxdb_enable: true,
            opentsdb_enable: true,
            max_body_size: 64 << 20,
            instance_id: 32,
        }
    }
}

/// One configuration key: dotted name and what it means.
pub struct Key {
    pub name: &'static str,
    pub help: &'static str,
}

/// Every key the adapter understands.
pub const KEYS: &[Key] = &[
    Key {
        name: "host",
        help: "listen address (default 127.0.0.1; 0.0.0.0 to accept remote clients)",
    },
    Key {
        name: "port",
        help: "HTTP port (default 6041)",
    },
    Key {
        name: "taosConfigDir",
        help: "directory of taos.cfg, read for firstEp/secondEp (default /etc/taos)",
    },
    Key {
        name: "logLevel",
        help: "trace|debug|info|warn|error (default info)",
    },
    Key {
        name: "httpCodeServerError",
        help: "answer TDengine errors with 4xx/5xx instead of 200 (default false)",
    },
    Key {
        name: "smlAutoCreateDB",
        help: "create a missing database on schemaless writes (default false)",
    },
    Key {
        name: "restfulRowLimit",
        help: "max rows per REST result, -1 unlimited (default -1)",
    },
    Key {
        name: "instanceId",
        help: "instance id (informational, default 32)",
    },
    Key {
        name: "log.level",
        help: "same as logLevel; wins when both are set",
    },
    Key {
        name: "log.path",
        help: "directory for taosadapter.log (default: stderr only)",
    },
    Key {
        name: "cors.allowAllOrigins",
        help: "send Access-Control-Allow-Origin: * (default true)",
    },
    Key {
        name: "cors.allowOrigins",
        help: "origins allowed when allowAllOrigins is false (list)",
    },
    Key {
        name: "pool.maxConnect",
        help: "connections in use at once, 0 = 2 x CPUs (default 0)",
    },
    Key {
        name: "pool.maxIdle",
        help: "idle connections kept in all, 0 = maxConnect (default 0)",
    },
    Key {
        name: "pool.idleTimeout",
        help: "close idle connections after this long, 0 = never (seconds or 30s/5m/1h)",
    },
    Key {
        name: "pool.waitTimeout",
        help: "wait this long for a connection before 503 (default 60s)",
    },
    Key {
        name: "influxdb.enable",
        help: "serve /influxdb/v1/write (default true)",
    },
    Key {
        name: "opentsdb.enable",
        help: "serve /opentsdb/v1/put/* (default true)",
    },
    Key {
        name: "request.maxBodySize",
        help: "largest request body in bytes after gunzip (default 67108864)",
    },
];

/// What the command line asked for besides configuration values.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Run,
    Help,
    DumpConfig,
    Version,
}

/// The loaded configuration and what was odd about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub action: Action,
    pub warnings: Vec<String>,
}

/// Environment variable for a dotted key: `pool.maxConnect` → `TAOS_ADAPTER_POOL_MAX_CONNECT`.
pub fn env_name(key: &str) -> String {
    let mut out = String::from("TAOS_ADAPTER_");
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '.' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c);
            prev_lower = false;
        } else {
            out.push(c.to_ascii_uppercase());
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad(key, v, "expected true or false")),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    v.trim().parse::<T>().map_err(|e| bad(key, v, e))
}

/// Seconds as a plain number, or a number with a unit: `ms`, `s`, `m`, `h`.
pub fn parse_duration(key: &str, v: &str) -> Result<Duration, ConfigError> {
    let t = v.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| bad(key, v, "expected a duration like 60, 30s, 5m, 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad(key, v, "unknown duration unit (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| bad(key, v, e))
}

fn bad(key: &str, value: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Value {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

impl Config {
    /// Set one key from its text form. `Ok(false)` when the key is unknown.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let Some(k) = find_key(key) else {
            return Ok(false);
        };
        let v = value;
        match k.name {
            "host" => self.host = v.trim().to_string(),
            "port" => self.port = parse_num(k.name, v)?,
            "taosConfigDir" => self.taos_config_dir = PathBuf::from(v.trim()),
            "logLevel" | "log.level" => self.log_level = v.trim().to_ascii_lowercase(),
            "log.path" => self.log_path = v.trim().to_string(),
            "httpCodeServerError" => self.http_code_server_error = parse_bool(k.name, v)?,
            "smlAutoCreateDB" => self.sml_auto_create_db = parse_bool(k.name, v)?,
            "restfulRowLimit" => self.restful_row_limit = parse_num(k.name, v)?,
            "instanceId" => self.instance_id = parse_num(k.name, v)?,
            "cors.allowAllOrigins" => self.cors_allow_all_origins = parse_bool(k.name, v)?,
            "cors.allowOrigins" => {
                self.cors_allow_origins = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "pool.maxConnect" => self.pool_max_connect = parse_num(k.name, v)?,
            "pool.maxIdle" => self.pool_max_idle = parse_num(k.name, v)?,
            "pool.idleTimeout" => self.pool_idle_timeout = parse_duration(k.name, v)?,
            "pool.waitTimeout" => self.pool_wait_timeout = parse_duration(k.name, v)?,
            "influxdb.enable" => self.influxdb_enable = parse_bool(k.name, v)?,
            "opentsdb.enable" => self.opentsdb_enable = parse_bool(k.name, v)?,
            "request.maxBodySize" => self.max_body_size = parse_num(k.name, v)?,
            other => return Err(ConfigError::Usage(format!("key {other} has no setter"))),
        }
        Ok(true)
    }

    /// The text form of a key's current value (for `--dump-config`).
    pub fn get(&self, key: &str) -> String {
        match key {
            "host" => self.host.clone(),
            "port" => self.port.to_string(),
            "taosConfigDir" => self.taos_config_dir.display().to_string(),
            "logLevel" | "log.level" => self.log_level.clone(),
            "log.path" => self.log_path.clone(),
            "httpCodeServerError" => self.http_code_server_error.to_string(),
            "smlAutoCreateDB" => self.sml_auto_create_db.to_string(),
            "restfulRowLimit" => self.restful_row_limit.to_string(),
            "instanceId" => self.instance_id.to_string(),
            "cors.allowAllOrigins" => self.cors_allow_all_origins.to_string(),
            "cors.allowOrigins" => self.cors_allow_origins.join(","),
            "pool.maxConnect" => self.pool_max_connect.to_string(),
            "pool.maxIdle" => self.pool_max_idle.to_string(),
            "pool.idleTimeout" => format!("{}s", self.pool_idle_timeout.as_secs_f64()),
            "pool.waitTimeout" => format!("{}s", self.pool_wait_timeout.as_secs_f64()),
            "influxdb.enable" => self.influxdb_enable.to_string(),
            "opentsdb.enable" => self.opentsdb_enable.to_string(),
            "request.maxBodySize" => self.max_body_size.to_string(),
            _ => String::new(),
        }
    }

    /// Connections that may be checked out at once.
    pub fn effective_max_connect(&self) -> usize {
        if self.pool_max_connect > 0 {
            self.pool_max_connect
        } else {
            let cpus = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            cpus * 2
        }
    }

    pub fn effective_max_idle(&self) -> usize {
        if self.pool_max_idle > 0 {
            self.pool_max_idle
        } else {
            self.effective_max_connect()
        }
    }

    /// Apply a TOML document. Unknown keys become warnings.
    pub fn apply_toml(
        &mut self,
        path: &Path,
        text: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat);
        for (key, value) in flat {
            if !self.set(&key, &value)? {
                warnings.push(format!("{}: unknown key '{key}' ignored", path.display()));
            }
        }
        Ok(())
    }

    /// Apply `TAOS_ADAPTER_*` variables from `vars`. Unknown ones become warnings.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            if !name.starts_with("TAOS_ADAPTER_") {
                continue;
            }
            match KEYS.iter().find(|k| env_name(k.name) == name) {
                Some(k) => {
                    self.set(k.name, &value)?;
                }
                None => warnings.push(format!(
                    "environment variable {name} is not a known key; ignored"
                )),
            }
        }
        Ok(())
    }

    /// `--dump-config`: every key with its effective value, as TOML.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for k in KEYS {
            if k.name == "logLevel" {
                continue;
            }
            let (sec, name) = k.name.split_once('.').unwrap_or(("", k.name));
            if sec != section {
                out.push_str(&format!("\n[{sec}]\n"));
                section = sec;
            }
            let v = self.get(k.name);
            let rendered = match k.name {
                "port"
                | "restfulRowLimit"
                | "instanceId"
                | "pool.maxConnect"
                | "pool.maxIdle"
                | "request.maxBodySize" => v,
                "httpCodeServerError"
                | "smlAutoCreateDB"
                | "cors.allowAllOrigins"
                | "influxdb.enable"
                | "opentsdb.enable" => v,
                "cors.allowOrigins" => format!(
                    "[{}]",
                    self.cors_allow_origins
                        .iter()
                        .map(|o| format!("{o:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => format!("{v:?}"),
            };
            out.push_str(&format!("{name} = {rendered}\n"));
        }
        out.trim_start().to_string()
    }
}

/// `[a] b = 1` → `("a.b", "1")`; arrays join with commas.
fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), items.join(",")));
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

pub fn help() -> String {
    let mut s = String::from(
        "Usage: taosadapter [-c FILE] [-P PORT] [--host ADDR] [--taosConfigDir DIR] [--KEY VALUE ...]\n\n\
         REST gateway for taosd: POST /rest/sql, /influxdb/v1/write, /opentsdb/v1/put/{json,telnet}/<db>,\n\
         GET /-/ping, /metrics.\n\n\
         Options:\n\
         \x20 -c, --config FILE    TOML configuration (default /etc/taos/taosadapter.toml when it exists)\n\
         \x20 -P, --port PORT      HTTP port\n\
         \x20 --host ADDR          listen address (default 127.0.0.1)\n\
         \x20 --taosConfigDir DIR  directory of taos.cfg\n\
         \x20 --dump-config        print the effective configuration as TOML and exit\n\
         \x20 -V, --version        print the version and exit\n\
         \x20 -h, --help           this help\n\n\
         Keys (TOML key in its [section]; flag --KEY VALUE; environment variable):\n",
    );
    for k in KEYS {
        s.push_str(&format!(
            "  {:<22} {:<36} {}\n",
            k.name,
            env_name(k.name),
            k.help
        ));
    }
    s
}

/// Build the configuration from the file named by `-c` (or the default file), the environment
/// and the command-line flags in `args` (without the program name).
pub fn load(
    args: &[String],
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut action = Action::Run;
    let mut file: Option<PathBuf> = None;
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, ConfigError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| ConfigError::Usage(format!("{name} needs a value"))),
            }
        };
        match name.as_str() {
            "-h" | "--help" => action = Action::Help,
            "-V" | "--version" => action = Action::Version,
            "--dump-config" => action = Action::DumpConfig,
            "-c" | "--config" => file = Some(PathBuf::from(value(&name)?)),
            "-P" | "--port" => flags.push(("port".into(), value(&name)?)),
            other => {
                let key = other.strip_prefix("--").and_then(find_key);
                match key {
                    Some(k) => flags.push((k.name.to_string(), value(other)?)),
                    None => {
                        return Err(ConfigError::Usage(format!(
                            "unknown argument {other} (see --help)"
                        )))
                    }
                }
            }
        }
    }
    let mut config = Config::default();
    let mut warnings = Vec::new();
    let path = match file {
        Some(p) => Some(p),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
    };
    if let Some(path) = path {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        config.apply_toml(&path, &text, &mut warnings)?;
    }
    config.apply_env(env, &mut warnings)?;
    for (k, v) in flags {
        config.set(&k, &v)?;
    }
    Ok(Loaded {
        config,
        action,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_names_follow_the_real_adapter() {
        assert_eq!(env_name("port"), "TAOS_ADAPTER_PORT");
        assert_eq!(env_name("taosConfigDir"), "TAOS_ADAPTER_TAOS_CONFIG_DIR");
        assert_eq!(env_name("pool.maxConnect"), "TAOS_ADAPTER_POOL_MAX_CONNECT");
        assert_eq!(
            env_name("smlAutoCreateDB"),
            "TAOS_ADAPTER_SML_AUTO_CREATE_DB"
        );
        assert_eq!(
            env_name("cors.allowAllOrigins"),
            "TAOS_ADAPTER_CORS_ALLOW_ALL_ORIGINS"
        );
    }

    #[test]
    fn defaults_run_on_a_laptop() {
        let l = load(&[], Vec::new()).unwrap();
        assert_eq!(l.config.port, 6041);
        assert_eq!(l.config.host, "127.0.0.1");
        assert_eq!(l.config.restful_row_limit, -1);
        assert!(!l.config.http_code_server_error);
        assert!(l.config.cors_allow_all_origins);
        assert_eq!(l.config.max_body_size, 64 << 20);
        assert_eq!(l.action, Action::Run);
    }

    #[test]
    fn toml_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taosadapter.toml");
        std::fs::write(
            &file,
            "port = 7000\ntaosConfigDir = \"/tmp/cfg\"\nhttpCodeServerError = true\nrestfulRowLimit = 100\n\
             bogus = 1\n[log]\nlevel = \"debug\"\n[pool]\nmaxConnect = 8\nidleTimeout = \"5m\"\nwaitTimeout = 3\n\
             [cors]\nallowAllOrigins = false\nallowOrigins = [\"http://a\", \"http://b\"]\n\
             [influxdb]\nenable = false\n[request]\nmaxBodySize = 1024\n",
        )
        .unwrap();
        let env = vec![
            ("TAOS_ADAPTER_PORT".to_string(), "7001".to_string()),
            ("TAOS_ADAPTER_POOL_MAX_IDLE".to_string(), "3".to_string()),
            ("TAOS_ADAPTER_NOPE".to_string(), "x".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let l = load(
            &args(&[
                "-c",
                file.to_str().unwrap(),
                "-P",
                "7002",
                "--pool.maxConnect=9",
                "--host",
                "0.0.0.0",
            ]),
            env,
        )
        .unwrap();
        let c = &l.config;
        assert_eq!(c.port, 7002, "flag wins over env and file");
        assert_eq!(c.pool_max_connect, 9);
        assert_eq!(c.pool_max_idle, 3, "env applies");
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.taos_config_dir, PathBuf::from("/tmp/cfg"));
        assert!(c.http_code_server_error);
        assert_eq!(c.restful_row_limit, 100);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.pool_idle_timeout, Duration::from_secs(300));
        assert_eq!(c.pool_wait_timeout, Duration::from_secs(3));
        assert!(!c.cors_allow_all_origins);
        assert_eq!(c.cors_allow_origins, vec!["http://a", "http://b"]);
        assert!(!c.influxdb_enable);
        assert!(c.opentsdb_enable);
        assert_eq!(c.max_body_size, 1024);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(l.warnings.iter().any(|w| w.contains("bogus")));
        assert!(l.warnings.iter().any(|w| w.contains("TAOS_ADAPTER_NOPE")));
    }

    #[test]
    fn bad_values_and_flags_are_errors() {
        assert!(load(&args(&["-P", "notaport"]), Vec::new()).is_err());
        assert!(load(&args(&["--nope", "1"]), Vec::new()).is_err());
        assert!(load(&args(&["-P"]), Vec::new()).is_err());
        let env = vec![(
            "TAOS_ADAPTER_HTTP_CODE_SERVER_ERROR".to_string(),
            "maybe".to_string(),
        )];
        assert!(load(&[], env).is_err());
        assert_eq!(
            load(&args(&["--help"]), Vec::new()).unwrap().action,
            Action::Help
        );
        assert_eq!(
            load(&args(&["--dump-config"]), Vec::new()).unwrap().action,
            Action::DumpConfig
        );
    }

    #[test]
    fn dump_is_valid_toml_and_round_trips() {
        let mut c = Config::default();
        c.port = 7777;
        c.cors_allow_origins = vec!["http://x".into()];
        let text = c.dump();
        let mut back = Config::default();
        let mut w = Vec::new();
        back.apply_toml(Path::new("dump"), &text, &mut w).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(back, c);
        assert!(help().contains("TAOS_ADAPTER_POOL_MAX_CONNECT"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("k", "60").unwrap(), Duration::from_secs(60));
        assert_eq!(
            parse_duration("k", "1h").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_duration("k", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_duration("k", "soon").is_err());
    }
}
