//! Starts the real `taosd` and `taosadapter` binaries on free loopback ports with a temp dir,
//! and stops them by PID. Also finds the client peers `tests/setup_peers.sh` installs.
//!
//! `taosd` is a sibling of the adapter binary in the target dir. Cargo does not build another
//! package's binaries for this package's tests, so build the workspace first
//! (`cargo build --workspace`, as scripts/test.sh does).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

pub fn adapter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_taosadapter"))
}

pub fn taosd_bin() -> PathBuf {
    let p = adapter_bin().with_file_name("taosd");
    assert!(
        p.exists(),
        "{} not found: build it first (cargo build -p taosd, or cargo build --workspace)",
        p.display()
    );
    p
}

fn wait_for(log: &Path, needle: &str, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited early ({status}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::fs::read_to_string(log)
            .map(|l| l.contains(needle))
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not become ready; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// taosd plus one adapter in front of it.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub taosd_port: u16,
    pub port: u16,
    taosd: Option<Child>,
    adapter: Option<Child>,
}

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with("", &[])
    }

    /// `toml`: contents of a taosadapter.toml passed with `-c` (empty: none);
    /// `env`: extra environment for the adapter.
    pub fn start_with(toml: &str, env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Stack {
            dir,
            taosd_port: free_port(),
            port: 0,
            taosd: None,
            adapter: None,
        };
        s.spawn_taosd();
        s.spawn_adapter(toml, env);
        s
    }

    pub fn cfg_dir(&self) -> PathBuf {
        self.dir.path().join("cfg")
    }

    fn spawn_taosd(&mut self) {
        let cfg = self.cfg_dir();
        std::fs::create_dir_all(&cfg).expect("cfg dir");
        std::fs::write(
            cfg.join("taos.cfg"),
            format!(
                "fqdn 127.0.0.1\nfirstEp 127.0.0.1:{p}\nserverPort {p}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
                self.dir.path().join("data").display(),
                self.dir.path().join("log").display(),
                p = self.taosd_port,
            ),
        )
        .expect("write taos.cfg");
        let log_path = self.dir.path().join("taosd.out");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = Command::new(taosd_bin())
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn taosd");
        wait_for(&log_path, "taosd is ready", &mut child, "taosd");
        self.taosd = Some(child);
    }

    fn spawn_adapter(&mut self, toml: &str, env: &[(&str, &str)]) {
        self.port = free_port();
        let log_path = self.dir.path().join("adapter.out");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(adapter_bin());
        if !toml.is_empty() {
            let file = self.dir.path().join("taosadapter.toml");
            std::fs::write(&file, toml).expect("write toml");
            cmd.arg("-c").arg(file);
        }
        cmd.arg("--taosConfigDir")
            .arg(self.cfg_dir())
            .arg("--host")
            .arg("127.0.0.1")
            .arg("-P")
            .arg(self.port.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn taosadapter");
        wait_for(&log_path, "taosadapter is ready", &mut child, "taosadapter");
        self.adapter = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn adapter_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("adapter.out")).unwrap_or_default()
    }

    pub fn adapter_pid(&self) -> u32 {
        self.adapter.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM the adapter and wait for it; returns its exit status.
    pub fn stop_adapter(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.adapter.take()?;
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Run one SQL statement through curl with root/taosdata; returns (status, body).
    pub fn sql(&self, sql: &str) -> (u16, String) {
        curl(&[
            "-u",
            "root:taosdata",
            "--data-binary",
            sql,
            &format!("{}/rest/sql", self.url()),
        ])
    }

    /// Like [`Stack::sql`], and assert it succeeded.
    pub fn sql_ok(&self, sql: &str) -> serde_json::Value {
        let (status, body) = self.sql(sql);
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{sql}: bad JSON ({e}): {body}"));
        assert_eq!(
            (status, v["code"].as_i64()),
            (200, Some(0)),
            "{sql}: {body}"
        );
        v
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in [self.adapter.take(), self.taosd.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run curl (a real HTTP peer) and return (HTTP status, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl (is it installed?)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Like [`curl`], with headers too (`-D -`): returns (status, headers+body text).
pub fn curl_with_headers(args: &[&str]) -> (u16, String) {
    let mut a = vec!["-D", "-"];
    a.extend_from_slice(args);
    curl(&a)
}

/// Parse a JSON body or fail with it in the message.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `TAOS_SKIP_PEERS=1` lets a machine without the client peers skip those tests explicitly.
pub fn skip_peers() -> bool {
    std::env::var("TAOS_SKIP_PEERS")
        .map(|v| v == "1")
        .unwrap_or(false)
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// The venv python with taospy and influxdb, or `None` when skipping. A missing peer fails the
/// test: it must not pass silently.
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var("TAOS_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home().join(".cache/taos-venv"));
    let py = venv.join("bin/python");
    if py.exists() {
        return Some(py);
    }
    if skip_peers() {
        eprintln!(
            "SKIPPED: no python venv at {} (TAOS_SKIP_PEERS=1)",
            venv.display()
        );
        return None;
    }
    panic!(
        "python peer venv missing at {}: run taosadapter/tests/setup_peers.sh (or set TAOS_SKIP_PEERS=1)",
        venv.display()
    );
}

/// `node_modules` holding @tdengine/rest, or `None` when skipping.
pub fn node_modules() -> Option<PathBuf> {
    let nm = std::env::var("TAOS_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| home().join(".cache/taos-node/node_modules"));
    if nm.join("@tdengine/rest/package.json").exists() {
        return Some(nm);
    }
    if skip_peers() {
        eprintln!(
            "SKIPPED: no @tdengine/rest in {} (TAOS_SKIP_PEERS=1)",
            nm.display()
        );
        return None;
    }
    panic!(
        "node peer missing in {}: run taosadapter/tests/setup_peers.sh (or set TAOS_SKIP_PEERS=1)",
        nm.display()
    );
}

/// Run a script with an interpreter, feeding it on stdin; panic with its output on failure.
pub fn run_script(interp: &Path, args: &[&str], env: &[(&str, String)], script: &str) -> Output {
    let mut cmd = Command::new(interp);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn peer");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("peer output");
    assert!(
        out.status.success(),
        "peer script failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
