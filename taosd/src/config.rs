//! taosd's configuration: `taos.cfg` in TDengine's format (see `common::config`), then
//! `TAOS_<KEY>` environment variables, then command-line flags. Everything has a default that
//! runs on a laptop; unknown keys are warned about, not fatal.

use common::config::{split_ep, CfgFile};
use common::SessionTz;
use std::path::{Path, PathBuf};

/// Keys we understand (others are TDengine keys we accept and ignore with a warning).
const KNOWN: &[&str] = &[
    "firstep",
    "secondep",
    "fqdn",
    "serverport",
    "datadir",
    "logdir",
    "supportvnodes",
    "timezone",
    "statusinterval",
    "monitor",
    "monitorfqdn",
    "monitorport",
    "monitorinterval",
    "debugflag",
    "locale",
    "charset",
    "tempdir",
    "numofcommitthreads",
    "maxsqllength",
    "shellactivitytimer",
];

#[derive(Debug, Clone)]
pub struct DnodeConfig {
    pub first_ep: String,
    pub second_ep: Option<String>,
    pub fqdn: String,
    pub server_port: u16,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub support_vnodes: u32,
    pub timezone: SessionTz,
    pub timezone_name: String,
    pub status_interval: u32,
    pub monitor: bool,
    pub monitor_fqdn: Option<String>,
    pub monitor_port: u16,
    pub monitor_interval: u32,
    /// Where the config came from, for `--dump-config`.
    pub source: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl DnodeConfig {
    /// Load from a config dir (or file). A missing file gives the defaults.
    pub fn load(dir: Option<&Path>) -> std::io::Result<DnodeConfig> {
        let cfg = match dir {
            Some(d) => CfgFile::load(d)?,
            None => {
                let etc = Path::new("/etc/taos");
                if etc.join("taos.cfg").exists() {
                    CfgFile::load(etc)?
                } else {
                    CfgFile::default()
                }
            }
        };
        Ok(Self::from_cfg(&cfg))
    }

    pub fn from_cfg(cfg: &CfgFile) -> DnodeConfig {
        let mut warnings = Vec::new();
        for k in cfg.keys() {
            if !KNOWN.contains(&k) {
                warnings.push(format!(
                    "unknown or unsupported configuration key ignored: {k}"
                ));
            }
        }
        let num = |key: &str, default: u64, warnings: &mut Vec<String>| -> u64 {
            match cfg.get(key) {
                Some(v) => v.parse().unwrap_or_else(|_| {
                    warnings.push(format!("invalid value for {key}: {v}; using {default}"));
                    default
                }),
                None => default,
            }
        };
        let fqdn = cfg.get("fqdn").unwrap_or_else(|| "localhost".to_string());
        let server_port = num("serverPort", 6030, &mut warnings) as u16;
        let first_ep = cfg
            .get("firstEp")
            .unwrap_or_else(|| format!("{fqdn}:{server_port}"));
        let default_data = default_dir("data");
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(2);
        let tz_text = cfg.get("timezone").unwrap_or_default();
        let timezone = SessionTz::parse(&tz_text).unwrap_or_else(|| {
            warnings.push(format!("invalid timezone {tz_text}; using the local zone"));
            SessionTz::Local
        });
        DnodeConfig {
            first_ep,
            second_ep: cfg.get("secondEp"),
            fqdn,
            server_port,
            data_dir: cfg
                .get("dataDir")
                .map(|d| PathBuf::from(d.split_whitespace().next().unwrap_or(&d)))
                .unwrap_or(default_data),
            log_dir: cfg
                .get("logDir")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_dir("log")),
            support_vnodes: num("supportVnodes", cores * 2 + 5, &mut warnings) as u32,
            timezone_name: timezone.name(),
            timezone,
            status_interval: num("statusInterval", 1, &mut warnings) as u32,
            monitor: num("monitor", 0, &mut warnings) != 0,
            monitor_fqdn: cfg.get("monitorFqdn"),
            monitor_port: num("monitorPort", 6043, &mut warnings) as u16,
            monitor_interval: num("monitorInterval", 30, &mut warnings) as u32,
            source: cfg.path.clone(),
            warnings,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.fqdn, self.server_port)
    }

    /// Host and port to listen on: the fqdn's port on all local addresses of that name.
    pub fn listen_addr(&self) -> (String, u16) {
        let (host, _) = split_ep(&self.endpoint(), self.server_port);
        (host, self.server_port)
    }

    pub fn dump(&self) -> String {
        let from = match &self.source {
            Some(p) => format!("# from {}\n", p.display()),
            None => "# no taos.cfg found: built-in defaults\n".to_string(),
        };
        from + &format!(
            "firstEp          {}\nsecondEp         {}\nfqdn             {}\nserverPort       {}\ndataDir          {}\nlogDir           {}\nsupportVnodes    {}\ntimezone         {}\nstatusInterval   {}\nmonitor          {}\nmonitorFqdn      {}\nmonitorPort      {}\nmonitorInterval  {}\n",
            self.first_ep,
            self.second_ep.clone().unwrap_or_default(),
            self.fqdn,
            self.server_port,
            self.data_dir.display(),
            self.log_dir.display(),
            self.support_vnodes,
            self.timezone_name,
            self.status_interval,
            self.monitor as u8,
            self.monitor_fqdn.clone().unwrap_or_default(),
            self.monitor_port,
            self.monitor_interval
        )
    }
}

/// `/var/lib/taos` when writable (root installs), else `~/.local/share/taos/<what>`.
fn default_dir(what: &str) -> PathBuf {
    let system = if what == "data" {
        PathBuf::from("/var/lib/taos")
    } else {
        PathBuf::from("/var/log/taos")
    };
    let writable = std::fs::create_dir_all(&system).is_ok() && tempfile_probe(&system);
    if writable {
        return system;
    }
    let home = std::env::var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    home.join(".local/share/taos").join(what)
}

fn tempfile_probe(dir: &Path) -> bool {
    let p = dir.join(".write-probe");
    let ok = std::fs::write(&p, b"x").is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = DnodeConfig::from_cfg(&CfgFile::parse(
            "serverPort 7100\nfqdn 127.0.0.1\nfooBar 1\ntimezone UTC\n",
        ));
        assert_eq!(c.server_port, 7100);
        assert_eq!(c.first_ep, "127.0.0.1:7100");
        assert_eq!(c.timezone, SessionTz::Utc);
        assert!(c.warnings.iter().any(|w| w.contains("foobar")));
    }
}
