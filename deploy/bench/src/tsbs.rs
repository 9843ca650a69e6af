//! The TSBS devops "cpu-only" data set shared by the TSBS benchmarks (ingest_tsbs, query_tsbs):
//! host tags and the deterministic value stream, a minimal HTTP/1.1 keep-alive client, and
//! peer servers (InfluxDB and friends) started on loopback in temp dirs and stopped by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

pub const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];

pub struct Rng(pub u64);

/// Seed of the value stream: `Rng(VALUE_SEED).below(101)` per field, per host, per time step.
pub const VALUE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Tag keys of the `cpu` measurement, in line-protocol order.
pub const TAG_NAMES: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

/// The tag values of each host, in [`TAG_NAMES`] order (parsed from [`host_tags`]).
pub fn host_tag_values(hosts: usize) -> Vec<Vec<String>> {
    host_tags(hosts)
        .iter()
        .map(|l| {
            l.split(',')
                .skip(1)
                .map(|kv| kv.split_once('=').map_or("", |(_, v)| v).to_string())
                .collect()
        })
        .collect()
}

/// Every value of a data set of `hosts` x `steps` rows, time-major (all hosts at step 0, then
/// step 1, ...), 10 fields per row: the same stream ingest_tsbs sends, one byte per value.
pub fn values(hosts: usize, steps: usize) -> Vec<u8> {
    let mut r = Rng(VALUE_SEED);
    let n = hosts * steps * FIELDS.len();
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.below(101) as u8);
    }
    v
}

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The tag part (`cpu,hostname=...,service_environment=...`) of each host, as TSBS draws them.
pub fn host_tags(hosts: usize) -> Vec<String> {
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    (0..hosts)
        .map(|i| {
            let (region, dcs) = REGIONS[r.below(REGIONS.len() as u64) as usize];
            let dc = dcs[r.below(dcs.len() as u64) as usize];
            format!(
                "cpu,hostname=host_{i},region={region},datacenter={dc},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
                r.below(100),
                ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"][r.below(3) as usize],
                ["x64", "x86"][r.below(2) as usize],
                ["SF", "NYC", "LON", "CHI"][r.below(4) as usize],
                r.below(20),
                r.below(2),
                ["production", "staging", "test"][r.below(3) as usize],
            )
        })
        .collect()
}

// ------------------------------------------------------------------ HTTP/1.1 client

#[derive(Clone, Debug)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query.
    pub target: String,
}

pub fn parse_url(u: &str) -> Result<Url, String> {
    let rest = u
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs: {u}"))?;
    let (hostport, target) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse().map_err(|_| format!("bad port in {u}"))?,
        ),
        None => (hostport.to_string(), 80),
    };
    Ok(Url { host, port, target })
}

/// One keep-alive connection.
pub struct Http {
    host: String,
    port: u16,
    auth: Option<String>,
    conn: Option<BufReader<TcpStream>>,
}

pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Http {
    pub fn new(host: &str, port: u16, basic: Option<(&str, &str)>) -> Http {
        Http {
            host: host.to_string(),
            port,
            auth: basic.map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            conn: None,
        }
    }

    /// Send a request, reconnecting once if the kept-alive connection was closed under us.
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let reused = self.conn.is_some();
        match self.try_request(method, target, body).await {
            Err(_) if reused => {
                self.conn = None;
                self.try_request(method, target, body).await
            }
            r => r,
        }
    }

    async fn try_request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let io = |e: std::io::Error| format!("{}:{}: {e}", self.host, self.port);
        if self.conn.is_none() {
            let s = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(io)?;
            let _ = s.set_nodelay(true);
            self.conn = Some(BufReader::with_capacity(64 << 10, s));
        }
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\n",
            self.host,
            self.port,
            body.len()
        );
        if let Some(a) = &self.auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let result = async {
            let conn = self.conn.as_mut().ok_or("no connection")?;
            conn.get_mut()
                .write_all(head.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            conn.get_mut()
                .write_all(body)
                .await
                .map_err(|e| e.to_string())?;
            read_response(conn, method == "HEAD").await
        }
        .await;
        match result {
            Ok((status, body, keep)) => {
                if !keep {
                    self.conn = None;
                }
                Ok((status, body))
            }
            Err(e) => {
                self.conn = None;
                Err(format!("{}:{}: {e}", self.host, self.port))
            }
        }
    }
}

/// Status, body, and whether the connection may be reused.
pub async fn read_response(
    r: &mut BufReader<TcpStream>,
    head_only: bool,
) -> Result<(u16, Vec<u8>, bool), String> {
    let mut line = String::new();
    if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut len: Option<usize> = None;
    let mut chunked = false;
    let mut keep = !line.starts_with("HTTP/1.0");
    loop {
        line.clear();
        if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => len = v.parse().ok(),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "connection" => keep = !v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
    } else if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).await.map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0
                        || line.trim().is_empty()
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])
                .await
                .map_err(|e| e.to_string())?;
            line.clear();
            r.read_line(&mut line).await.map_err(|e| e.to_string())?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        keep = false;
    }
    Ok((status, body, keep))
}

pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ------------------------------------------------------------------ spawned peers

/// A server process we started: stopped by PID (SIGTERM, then SIGKILL) on drop.
pub struct Peer {
    pub name: &'static str,
    pub child: Child,
    pub dir: PathBuf,
    pub keep: bool,
}

impl Peer {
    pub fn spawn(
        name: &'static str,
        bin: &Path,
        args: &[String],
        dir: PathBuf,
        keep: bool,
    ) -> Result<Peer, String> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))
            .map_err(|e| format!("{name} log: {e}"))?;
        let err = log.try_clone().map_err(|e| format!("{name} log: {e}"))?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Peer {
            name,
            child,
            dir,
            keep,
        })
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("{}.log", self.name)))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Poll `GET path` until it answers 2xx.
    pub async fn wait_http(
        &mut self,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited with {st}:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            let mut h = Http::new("127.0.0.1", port, None);
            if let Ok((s, _)) = h.request("GET", path, b"").await {
                if (200..300).contains(&s) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready on port {port} after {timeout:?}:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn temp_dir(prefix: &str, name: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!("{prefix}-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| format!("create {}: {e}", d.display()))?;
    Ok(d)
}

/// `name` on PATH.
/// Start InfluxDB 1.x (`influxd run`) on loopback ports with meta/data/wal under a temp dir
/// and wait for `/ping`. `data_cfg` is appended to the `[data]` section (one `key = value` per
/// line, may be empty). Returns the process and its HTTP port.
pub async fn start_influx(
    bin: &Path,
    prefix: &str,
    data_cfg: &str,
    keep: bool,
) -> Result<(Peer, u16), String> {
    let dir = temp_dir(prefix, "influxdb")?;
    let (http_port, rpc_port) = (
        crate::spawn::free_port().map_err(|e| e.to_string())?,
        crate::spawn::free_port().map_err(|e| e.to_string())?,
    );
    let d = dir.display();
    let cfg = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc_port}\"\n\
         [meta]\n  dir = \"{d}/meta\"\n\
         [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n{data_cfg}\n\
         [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [subscriber]\n  enabled = false\n\
         [continuous_queries]\n  enabled = false\n"
    );
    std::fs::write(dir.join("influxdb.conf"), cfg)
        .map_err(|e| format!("write influxdb.conf: {e}"))?;
    let args = vec![
        "run".to_string(),
        "-config".into(),
        dir.join("influxdb.conf").display().to_string(),
    ];
    let mut p = Peer::spawn("influxd", bin, &args, dir, keep)?;
    p.wait_http(http_port, "/ping", Duration::from_secs(60))
        .await?;
    Ok((p, http_port))
}

/// `q` against InfluxDB's `/query` (POST, so statements that write work too); the parsed JSON
/// answer, or the HTTP status and body as the error.
pub async fn influx_query(h: &mut Http, db: &str, q: &str) -> Result<serde_json::Value, String> {
    let target = if db.is_empty() {
        format!("/query?q={}", query_escape(q))
    } else {
        format!("/query?db={}&q={}", query_escape(db), query_escape(q))
    };
    let (s, b) = h.request("POST", &target, b"").await?;
    if s != 200 {
        return Err(format!("HTTP {s}: {}", String::from_utf8_lossy(&b)));
    }
    let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
    if let Some(e) = v.pointer("/results/0/error").and_then(|e| e.as_str()) {
        return Err(e.to_string());
    }
    Ok(v)
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// One of our binaries: next to this program, then in the shared target dir.
pub fn sibling(name: &str) -> Option<PathBuf> {
    let mut c = Vec::new();
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        c.push(d.join(name));
    }
    if let Some(h) = std::env::var_os("HOME") {
        c.push(
            PathBuf::from(&h)
                .join(".cache/taos-target/release")
                .join(name),
        );
        c.push(
            PathBuf::from(&h)
                .join(".cache/taos-target/debug")
                .join(name),
        );
    }
    c.into_iter().find(|p| p.is_file())
}
