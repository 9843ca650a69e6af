//! The `taos.cfg` reader: `key value` lines, `#` comments, keys case-insensitive, as TDengine
//! writes them. Every key can be overridden by an environment variable `TAOS_<KEY>` (upper case).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Raw key/value pairs of a taos.cfg, keys lower-cased, in file order of last occurrence.
#[derive(Debug, Clone, Default)]
pub struct CfgFile {
    pub path: Option<PathBuf>,
    entries: BTreeMap<String, String>,
}

impl CfgFile {
    /// Read `DIR/taos.cfg` (or the file itself if `path` is a file). A missing file gives an
    /// empty config: everything has a default.
    pub fn load(path: &Path) -> std::io::Result<CfgFile> {
        let file = if path.is_dir() {
            path.join("taos.cfg")
        } else {
            path.to_path_buf()
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(CfgFile {
                path: Some(file),
                ..CfgFile::parse(&text)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CfgFile::default()),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> CfgFile {
        let mut entries = BTreeMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut it = line.splitn(2, char::is_whitespace);
            let key = it.next().unwrap_or("").to_ascii_lowercase();
            let value = it.next().unwrap_or("").trim().to_string();
            entries.insert(key, value);
        }
        CfgFile {
            path: None,
            entries,
        }
    }

    /// The value of a key: environment `TAOS_<KEY>` first, then the file.
    pub fn get(&self, key: &str) -> Option<String> {
        let env_key = format!("TAOS_{}", key.to_ascii_uppercase());
        if let Ok(v) = std::env::var(env_key) {
            return Some(v);
        }
        self.entries.get(&key.to_ascii_lowercase()).cloned()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| k.as_str())
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.entries
            .insert(key.to_ascii_lowercase(), value.to_string());
    }
}

/// `host:port` split with a default port.
pub fn split_ep(ep: &str, default_port: u16) -> (String, u16) {
    match ep.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h.to_string(), p.parse().unwrap_or(default_port)),
        _ => (ep.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_value_lines() {
        let c = CfgFile::parse(
            "# comment\nfirstEp  host1:6030\n\nserverPort 7000 # trailing\ndataDir /x/y\n",
        );
        assert_eq!(c.get("firstep").as_deref(), Some("host1:6030"));
        assert_eq!(c.get("serverPort").as_deref(), Some("7000"));
        assert_eq!(c.get("datadir").as_deref(), Some("/x/y"));
        assert_eq!(split_ep("h:1", 6030), ("h".to_string(), 1));
        assert_eq!(split_ep("h", 6030), ("h".to_string(), 6030));
    }
}
