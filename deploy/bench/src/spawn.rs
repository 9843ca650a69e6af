//! Start a throwaway taosd for a benchmark: its own temp dir with a taos.cfg, data and log dirs,
//! a free port; stopped (and the dir removed) on drop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Taosd {
    child: Child,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    /// Leave the temp dir behind (to inspect files after the run).
    pub keep: bool,
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Taosd {
    /// Write `<tmp>/taos.cfg` and run `bin -c <tmp>`; stdout/stderr go to `<tmp>/log/`.
    pub fn start(bin: &Path) -> Result<Taosd, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("taos-bench-{}-{nanos}", std::process::id()));
        let data_dir = dir.join("data");
        let log_dir = dir.join("log");
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir_all(&data_dir).map_err(|e| io("create data dir", e))?;
        std::fs::create_dir_all(&log_dir).map_err(|e| io("create log dir", e))?;
        let port = free_port().map_err(|e| io("find a free port", e))?;
        let cfg = format!(
            "fqdn 127.0.0.1\nfirstEp 127.0.0.1:{port}\nserverPort {port}\ndataDir {}\nlogDir {}\n",
            data_dir.display(),
            log_dir.display()
        );
        std::fs::File::create(dir.join("taos.cfg"))
            .and_then(|mut f| f.write_all(cfg.as_bytes()))
            .map_err(|e| io("write taos.cfg", e))?;
        let out = std::fs::File::create(log_dir.join("taosd.stdout"))
            .map_err(|e| io("create stdout log", e))?;
        let err = std::fs::File::create(log_dir.join("taosd.stderr"))
            .map_err(|e| io("create stderr log", e))?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                format!("cannot start {}: {e}", bin.display())
            })?;
        Ok(Taosd {
            child,
            dir,
            data_dir,
            port,
            keep: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until the server accepts TCP connections.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.join("log/taosd.stderr")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "taosd exited with {status} before accepting connections:\n{}",
                    tail.join("\n")
                ));
            }
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "taosd did not accept connections on port {} within {timeout:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Taosd {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A program built next to the running one (`target/release/taosx` beside `edge_bench`).
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// One JSON request to a local HTTP API (taosx's), `Connection: close`.
pub fn http_json(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Result<serde_json::Value, String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut r = String::new();
    s.read_to_string(&mut r).map_err(|e| e.to_string())?;
    let b = r.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(b).map_err(|e| format!("{e}: {r}"))
}
