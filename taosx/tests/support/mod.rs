//! The edge-link stack for integration tests: taosd, taosx, mosquitto and agents, each a real
//! process on free loopback ports under one temp dir, stopped by PID. paho-mqtt publishes (the
//! venv made by `taosadapter/tests/setup_peers.sh`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This package's directory, read when the test runs: a build cache shared by checkouts at
/// other paths can hold a test binary compiled elsewhere, whose compile-time path is gone.
pub fn manifest_dir() -> PathBuf {
    std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A binary of this workspace: next to the test's target dir (built by `cargo build --bins`).
pub fn bin(name: &str) -> PathBuf {
    if name == "taosx" {
        return PathBuf::from(env!("CARGO_BIN_EXE_taosx"));
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

pub fn mosquitto_bin() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub fn python() -> Option<PathBuf> {
    let venv = std::env::var("TAOS_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/taos-venv")
        });
    let py = venv.join("bin/python");
    if py.exists() {
        return Some(py);
    }
    if std::env::var("TAOS_SKIP_PEERS").is_ok() {
        return None;
    }
    panic!(
        "{} missing: run taosadapter/tests/setup_peers.sh (or set TAOS_SKIP_PEERS=1)",
        py.display()
    );
}

pub struct Proc {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let f = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    panic!("exited ({s}) before '{needle}':\n{}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no '{needle}' within {within:?}:\n{}", self.log());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: a signal to our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Just taosd, in `dir`, on a free port.
pub fn taosd(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let cfg = dir.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("taos.cfg"),
        format!(
            "fqdn 127.0.0.1\nserverPort {port}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
            dir.join("data").display(),
            dir.join("log").display()
        ),
    )
    .unwrap();
    let mut p = Proc::spawn(
        Command::new(bin("taosd")).arg("-c").arg(&cfg),
        dir.join("taosd.out"),
    );
    p.wait_log("taosd is ready", Duration::from_secs(60));
    (p, port)
}

/// `SELECT count(*) FROM what` against taosd on `port` (0 on any error).
pub fn count_on(port: u16, what: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Ok(c) = taosc::Connection::connect(taosc::ConnectOptions::new("127.0.0.1", port)).await
        else {
            return 0;
        };
        let Ok(r) = c.query(&format!("SELECT count(*) FROM {what}")).await else {
            return 0;
        };
        r.collect_rows()
            .await
            .ok()
            .and_then(|rows| {
                rows.first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_i64())
            })
            .unwrap_or(0)
    })
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub taosd_port: u16,
    pub api_port: u16,
    pub quic_port: u16,
    pub mqtt_port: u16,
    pub taosd: Proc,
    pub taosx: Proc,
    pub mosquitto: Proc,
    pub fingerprint: String,
}

impl Stack {
    pub fn start() -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let taosd_port = free_port();
        let cfg = dir.path().join("cfg");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("taos.cfg"),
            format!(
                "fqdn 127.0.0.1\nserverPort {taosd_port}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
                dir.path().join("data").display(),
                dir.path().join("log").display()
            ),
        )
        .unwrap();
        let mut taosd = Proc::spawn(
            Command::new(bin("taosd")).arg("-c").arg(&cfg),
            dir.path().join("taosd.out"),
        );
        taosd.wait_log("taosd is ready", Duration::from_secs(60));
        let mqtt_port = free_port();
        let mconf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &mconf,
            format!(
                "listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 1000\nlog_dest stderr\n"
            ),
        )
        .unwrap();
        let mosq = mosquitto_bin().expect("mosquitto is not installed (apt-get install mosquitto)");
        let mut mosquitto = Proc::spawn(
            Command::new(mosq).arg("-c").arg(&mconf),
            dir.path().join("mosquitto.out"),
        );
        wait_tcp(mqtt_port, &mut mosquitto);
        let mut s = Stack {
            taosd_port,
            api_port: free_port(),
            quic_port: free_udp_port(),
            mqtt_port,
            taosd,
            taosx: Proc {
                child: None,
                log: dir.path().join("taosx.out"),
            },
            mosquitto,
            fingerprint: String::new(),
            dir,
        };
        s.start_taosx();
        s
    }

    pub fn start_taosx(&mut self) {
        let log = self.dir.path().join(format!(
            "taosx-{}.out",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ));
        let mut p = Proc::spawn(
            Command::new(bin("taosx"))
                .arg("serve")
                .args(["--serve.listen", &format!("127.0.0.1:{}", self.api_port)])
                .args(["--serve.quic", &format!("127.0.0.1:{}", self.quic_port)])
                .args([
                    "--serve.data_dir",
                    &self.dir.path().join("taosx").display().to_string(),
                ])
                .args([
                    "--taos.dsn",
                    &format!("taos://root:taosdata@127.0.0.1:{}", self.taosd_port),
                ])
                .env("RUST_LOG", "info"),
            log,
        );
        p.wait_log("taosx is ready", Duration::from_secs(30));
        let fp = p
            .log()
            .lines()
            .find_map(|l| l.split("sha256:").nth(1).map(|s| s.trim().to_string()))
            .expect("fingerprint printed");
        self.fingerprint = fp;
        self.taosx = p;
    }

    /// An agent with `token`, its buffer under `name`.
    pub fn agent(&self, name: &str, token: &str) -> Proc {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let toml = format!(
            "endpoint = \"127.0.0.1:{}\"\ntoken = \"{token}\"\nfingerprint = \"sha256:{}\"\n\
             instanceId = \"{name}\"\n[buffer]\ndir = \"{}\"\n[log]\nlevel = \"info\"\n",
            self.quic_port,
            self.fingerprint,
            dir.join("buffer").display()
        );
        std::fs::write(dir.join("agent.toml"), toml).unwrap();
        let log = dir.join(format!(
            "agent-{}.out",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ));
        Proc::spawn(
            Command::new(bin("taosx-agent"))
                .arg("-c")
                .arg(dir.join("agent.toml")),
            log,
        )
    }

    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        http(self.api_port, method, path, body)
    }

    /// `SELECT count(*)` of a table or super table (0 when it does not exist yet).
    pub fn count(&self, sql_from: &str) -> i64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = match taosc::Connection::connect(taosc::ConnectOptions::new(
                "127.0.0.1",
                self.taosd_port,
            ))
            .await
            {
                Ok(c) => c,
                Err(_) => return 0,
            };
            let r = match c.query(&format!("SELECT count(*) FROM {sql_from}")).await {
                Ok(r) => r,
                Err(_) => return 0,
            };
            match r.collect_rows().await {
                Ok(rows) => rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                Err(_) => 0,
            }
        })
    }

    /// The rows of a query (empty when it fails).
    pub fn rows(&self, sql: &str) -> Vec<Vec<common::Value>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Ok(c) = taosc::Connection::connect(taosc::ConnectOptions::new(
                "127.0.0.1",
                self.taosd_port,
            ))
            .await
            else {
                return Vec::new();
            };
            match c.query(sql).await {
                Ok(r) => r.collect_rows().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        })
    }

    pub fn wait_count(&self, sql_from: &str, want: i64, within: Duration) -> i64 {
        let deadline = Instant::now() + within;
        let mut n = 0;
        while Instant::now() < deadline {
            n = self.count(sql_from);
            if n >= want {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        n
    }
}

fn wait_tcp(port: u16, p: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not listening on {port}:\n{}", p.log());
}

/// A minimal HTTP/1.1 client: one request per connection.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect API");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let payload = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked bodies are not expected (axum sets Content-Length for JSON).
    let json = serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Publish `n` JSON points with paho-mqtt (QoS 1) to `site/<s>/dev<d>`, `rate` per second
/// (0 = as fast as possible). Returns the running publisher.
pub fn publish(
    py: &Path,
    port: u16,
    n: usize,
    devices: usize,
    rate: usize,
    base_ts: i64,
    out: &Path,
) -> Child {
    let script = format!(
        r#"
import json, sys, time
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-{base_ts}", clean_session=True)
c.max_inflight_messages_set(100)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", {port})
c.loop_start()
rate = {rate}
t0 = time.time()
infos = []
for i in range({n}):
    d = i % {devices}
    msg = {{"id": d, "ts": {base_ts} + i, "v": i, "temp": 20.5 + (i % 7)}}
    infos.append(c.publish(f"site/s{{d % 3}}/dev{{d}}", json.dumps(msg), qos=1))
    if rate:
        ahead = (i + 1) / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
for m in infos:
    m.wait_for_publish(120)
c.loop_stop()
c.disconnect()
print("published", {n}, flush=True)
"#
    );
    let f = std::fs::File::create(out).unwrap();
    let mut child = Command::new(py)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(f)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child
}

/// The mapping the tests use: `site/<site>/<dev>` topics into `edge.sensors`.
pub fn mapping() -> serde_json::Value {
    serde_json::json!({
        "stable": "sensors",
        "table": "d_{id}",
        "topic_vars": "_/site",
        "ts": {"field": "ts", "format": "ms"},
        "columns": [
            {"name": "v", "type": "BIGINT"},
            {"name": "temp", "type": "DOUBLE"}
        ],
        "tags": [
            {"name": "id", "type": "INT"},
            {"name": "site", "type": "VARCHAR(16)"}
        ]
    })
}
