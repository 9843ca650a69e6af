//! Layered configuration for taosx and the agent: a TOML file, then environment variables,
//! then command-line flags. A key `serve.listen` is `listen` in section `[serve]`, the
//! variable `<PREFIX>_SERVE_LISTEN` and the flag `--serve.listen=v` (or `--serve.listen v`).
//! Keys the program does not know are reported back as warnings, never silently dropped.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Toml(String, String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Set `path` (dotted) in `root` to `raw`, typed like the default's value at that path.
fn set(root: &mut toml::Table, path: &str, raw: &str, like: &toml::Table) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut want: Option<&toml::Value> = None;
    let mut cur_like = Some(like);
    for (i, p) in parts.iter().enumerate() {
        let v = cur_like.and_then(|t| t.get(*p));
        if i + 1 == parts.len() {
            want = v;
        } else {
            cur_like = v.and_then(|v| v.as_table());
        }
    }
    let value = match want {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("{path}: '{raw}' is not an integer"))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match raw {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("{path}: '{raw}' is not true or false")),
        }),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            raw.parse()
                .map_err(|_| format!("{path}: '{raw}' is not a number"))?,
        ),
        _ => toml::Value::String(raw.to_string()),
    };
    let mut t = root;
    for p in &parts[..parts.len() - 1] {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{path}: '{p}' is not a section"))?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Dotted paths of every leaf key.
fn leaves(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(sub) => leaves(&p, sub, out),
            _ => out.push(p),
        }
    }
}

/// Load `T`: defaults, then `file` (if any), then `env` variables starting with `prefix_`,
/// then `flags` (`(dotted key, value)`). Returns the config and warnings about unknown keys.
pub fn load<T: DeserializeOwned + Serialize + Default>(
    file: Option<&Path>,
    env_prefix: &str,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &[(String, String)],
) -> Result<(T, Vec<String>), ConfigError> {
    let defaults =
        toml::Table::try_from(T::default()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let mut root = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| ConfigError::Read(p.display().to_string(), e))?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Toml(p.display().to_string(), e.to_string()))?
        }
        None => toml::Table::new(),
    };
    let mut warnings = Vec::new();
    let mut known = Vec::new();
    leaves("", &defaults, &mut known);
    let env_prefix = format!("{}_", env_prefix.to_ascii_uppercase());
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(&env_prefix) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        match known.iter().find(|p| p.replace('.', "_") == rest) {
            Some(p) => set(&mut root, &p.clone(), &v, &defaults).map_err(ConfigError::Invalid)?,
            None => warnings.push(format!("unknown environment variable {k}")),
        }
    }
    for (k, v) in flags {
        if !known.contains(k) {
            return Err(ConfigError::Invalid(format!("unknown option --{k}")));
        }
        set(&mut root, k, v, &defaults).map_err(ConfigError::Invalid)?;
    }
    let mut given = Vec::new();
    leaves("", &root, &mut given);
    for g in given {
        if !known.contains(&g) {
            warnings.push(format!("unknown configuration key '{g}' (ignored)"));
        }
    }
    let cfg: T = toml::Value::Table(root)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
    Ok((cfg, warnings))
}

/// The effective configuration as TOML (for `--dump-config`).
pub fn dump<T: Serialize>(cfg: &T) -> String {
    toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// Split `--key=value` / `--key value` flags; bare words and `-x` shorthands are returned apart.
pub fn split_flags(args: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut flags = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        if let Some(f) = a.strip_prefix("--") {
            if let Some((k, v)) = f.split_once('=') {
                flags.push((k.to_string(), v.to_string()));
            } else if let Some(v) = it.next_if(|n| !n.starts_with("--")) {
                flags.push((f.to_string(), v.clone()));
            } else {
                flags.push((f.to_string(), "true".to_string()));
            }
        } else {
            rest.push(a.clone());
        }
    }
    (flags, rest)
}

/// What the command line asked for, after the common options are taken out.
#[derive(Debug, Default)]
pub struct Cli {
    /// `-c FILE` / `--config FILE`, else `default_file` when it exists.
    pub file: Option<std::path::PathBuf>,
    /// `--section.key value` overrides.
    pub flags: Vec<(String, String)>,
    /// Other arguments (subcommands, `-v`...), in order.
    pub words: Vec<String>,
    /// `--dump-config`.
    pub dump: bool,
}

/// Parse the arguments every daemon shares; `--help`/`-h` and `--version`/`-V` print and exit.
pub fn cli(args: &[String], usage: &str, version: &str, default_file: &str) -> Cli {
    let (mut flags, rest) = split_flags(args);
    let mut out = Cli::default();
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "-c" => {
                out.file = rest.get(i + 1).map(std::path::PathBuf::from);
                i += 1;
            }
            "-h" => {
                print!("{usage}");
                std::process::exit(0);
            }
            "-V" => {
                println!("{version}");
                std::process::exit(0);
            }
            w => out.words.push(w.to_string()),
        }
        i += 1;
    }
    if let Some((_, v)) = flags.iter().find(|(k, _)| k == "config") {
        out.file = Some(v.into());
    }
    for (k, _) in &flags {
        match k.as_str() {
            "help" => {
                print!("{usage}");
                std::process::exit(0);
            }
            "version" => {
                println!("{version}");
                std::process::exit(0);
            }
            "dump-config" => out.dump = true,
            _ => {}
        }
    }
    flags.retain(|(k, _)| !matches!(k.as_str(), "dump-config" | "config"));
    out.flags = flags;
    if out.file.is_none() && Path::new(default_file).exists() {
        out.file = Some(default_file.into());
    }
    out
}

/// Logs to stderr, or to `<path>/<file_name>` when `path` is set; `RUST_LOG` overrides `level`.
pub fn init_logging(level: &str, path: &str, file_name: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    let file = (!path.is_empty())
        .then(|| {
            let _ = std::fs::create_dir_all(path);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(path).join(file_name))
                .map_err(|e| eprintln!("cannot open the log in {path}: {e}; logging to stderr"))
                .ok()
        })
        .flatten();
    match file {
        Some(f) => b
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => b.with_writer(std::io::stderr).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Cfg {
        name: String,
        serve: Serve,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Serve {
        listen: String,
        port: i64,
        tls: bool,
    }
    impl Default for Cfg {
        fn default() -> Self {
            Cfg {
                name: "x".into(),
                serve: Serve::default(),
            }
        }
    }
    impl Default for Serve {
        fn default() -> Self {
            Serve {
                listen: "0.0.0.0:1".into(),
                port: 1,
                tls: false,
            }
        }
    }

    #[test]
    fn file_env_flags_layer_and_unknowns_warn() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "name = \"file\"\nbogus = 1\n[serve]\nport = 7\n").unwrap();
        let env = vec![
            ("APP_SERVE_LISTEN".to_string(), "1.2.3.4:5".to_string()),
            ("APP_NOPE".to_string(), "1".to_string()),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let (flags, rest) = split_flags(&[
            "serve".into(),
            "--serve.tls".into(),
            "--serve.port=9".into(),
        ]);
        assert_eq!(rest, vec!["serve"]);
        let (c, w): (Cfg, _) = load(Some(&f), "app", env, &flags).unwrap();
        assert_eq!(c.name, "file");
        assert_eq!(c.serve.listen, "1.2.3.4:5");
        assert_eq!(c.serve.port, 9);
        assert!(c.serve.tls);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(load::<Cfg>(None, "app", vec![], &[("serve.port".into(), "x".into())]).is_err());
        assert!(load::<Cfg>(None, "app", vec![], &[("nope".into(), "x".into())]).is_err());
        assert!(dump(&c).contains("[serve]"));
    }
}
