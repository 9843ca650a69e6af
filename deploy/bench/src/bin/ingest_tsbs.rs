//! ingest_tsbs: the TSBS devops "cpu-only" workload as InfluxDB line protocol over HTTP, sent
//! in one run to taosadapter (→ taosd), InfluxDB 1.6 and VictoriaMetrics; prints values/s for
//! each, then reads the counts back so a system that drops data cannot look fast. See `--help`.
//!
//! Peers are started on loopback with temp dirs and stopped by PID; a peer whose binary is not
//! installed is skipped with a message. The HTTP client is a minimal HTTP/1.1 keep-alive client
//! on `tokio::net::TcpStream` (one connection per writer).

use bench::flags::Flags;
use bench::spawn::{free_port, Taosd};
use bench::tsbs::{
    host_tags, parse_url, query_escape, sibling, start_influx, which, Http, Peer, Rng, Url, FIELDS,
    VALUE_SEED,
};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
Usage: ingest_tsbs [--flag value]...
  --hosts N              simulated hosts (default 1000)
  --duration SECS        simulated time span (default 3600)
  --interval SECS        seconds between readings of a host (default 10)
  --start EPOCH_SECS     first timestamp (default: now - duration - 1h, so it is inside KEEP)
  --batch N              lines per HTTP request (default 5000)
  --writers N            concurrent writers, one keep-alive connection each (default 4)
  --db NAME              database (default benchmark)
  --targets LIST         comma list of taos,influx,vm (default taos,influx,vm)
  --adapter URL          taosadapter write URL, e.g. http://127.0.0.1:6041/influxdb/v1/write?db=benchmark
                         (Basic root/taosdata); without it taosd + taosadapter are spawned
  --host HOST / --port P taosd for CREATE DATABASE and the count check with --adapter (default 127.0.0.1:6030)
  --taosd PATH           taosd to spawn (default: next to this program, then ~/.cache/taos-target/debug)
  --taosadapter PATH     taosadapter to spawn (same lookup)
  --influxd PATH         influxd binary (default: influxd on PATH)
  --victoria PATH        victoria-metrics binary (default: victoria-metrics on PATH)
  --keep                 keep the temp dirs of spawned servers
  --out FILE             also append the summary line to FILE
";

struct Config {
    hosts: usize,
    duration: u64,
    interval: u64,
    start: i64,
    batch: usize,
    writers: usize,
    db: String,
    targets: Vec<String>,
    adapter: Option<String>,
    taos_host: String,
    taos_port: u16,
    taosd: Option<PathBuf>,
    taosadapter: Option<PathBuf>,
    influxd: Option<PathBuf>,
    victoria: Option<PathBuf>,
    keep: bool,
    out: Option<PathBuf>,
}

fn config() -> Result<Option<Config>, String> {
    let mut f = Flags::parse(std::env::args().skip(1), &["help", "keep"])?;
    if f.switch("help") {
        print!("{USAGE}");
        return Ok(None);
    }
    let duration = f.get("duration", 3600u64)?.max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let default_start = (now - duration as i64 - 3600) / 60 * 60;
    let c = Config {
        hosts: f.get("hosts", 1000usize)?.max(1),
        duration,
        interval: f.get("interval", 10u64)?.max(1),
        start: f.get("start", default_start)?,
        batch: f.get("batch", 5000usize)?.max(1),
        writers: f.get("writers", 4usize)?.max(1),
        db: f.get("db", "benchmark".to_string())?,
        targets: f
            .get("targets", "taos,influx,vm".to_string())?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        adapter: f.opt("adapter"),
        taos_host: f.get("host", "127.0.0.1".to_string())?,
        taos_port: f.get("port", 6030u16)?,
        taosd: f.opt("taosd").map(PathBuf::from),
        taosadapter: f.opt("taosadapter").map(PathBuf::from),
        influxd: f.opt("influxd").map(PathBuf::from),
        victoria: f.opt("victoria").map(PathBuf::from),
        keep: f.switch("keep"),
        out: f.opt("out").map(PathBuf::from),
    };
    f.finish()?;
    for t in &c.targets {
        if !["taos", "influx", "vm"].contains(&t.as_str()) {
            return Err(format!("unknown target '{t}' (taos, influx, vm)"));
        }
    }
    Ok(Some(c))
}

#[tokio::main]
async fn main() -> ExitCode {
    match config() {
        Ok(Some(c)) => match run(c).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ingest_tsbs: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingest_tsbs: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

// ------------------------------------------------------------------ workload

/// Request bodies, time-major like TSBS (every host at t, then every host at t + interval).
fn generate(c: &Config) -> (Vec<Arc<Vec<u8>>>, usize) {
    let tags = host_tags(c.hosts);
    let steps = c.duration / c.interval;
    let mut r = Rng(VALUE_SEED);
    let mut bodies = Vec::new();
    let mut body = Vec::with_capacity(c.batch * 360);
    let mut in_body = 0;
    let mut lines = 0;
    for s in 0..steps {
        let ts_ns = (c.start + (s * c.interval) as i64) as i128 * 1_000_000_000;
        for t in &tags {
            body.extend_from_slice(t.as_bytes());
            for (i, f) in FIELDS.iter().enumerate() {
                let _ = write!(
                    body,
                    "{}{f}={}i",
                    if i == 0 { ' ' } else { ',' },
                    r.below(101)
                );
            }
            let _ = writeln!(body, " {ts_ns}");
            in_body += 1;
            lines += 1;
            if in_body == c.batch {
                bodies.push(Arc::new(std::mem::replace(
                    &mut body,
                    Vec::with_capacity(c.batch * 360),
                )));
                in_body = 0;
            }
        }
    }
    if in_body > 0 {
        bodies.push(Arc::new(body));
    }
    (bodies, lines)
}

// ------------------------------------------------------------------ the run

struct Outcome {
    name: &'static str,
    secs: f64,
    lines: usize,
    verified: Result<u64, String>,
}

impl Outcome {
    fn values_per_sec(&self) -> f64 {
        (self.lines * FIELDS.len()) as f64 / self.secs
    }
}

/// Send every body with `writers` concurrent keep-alive connections; all must answer 2xx.
async fn blast(
    url: &Url,
    basic: Option<(&str, &str)>,
    bodies: &[Arc<Vec<u8>>],
    writers: usize,
) -> Result<f64, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Vec<Arc<Vec<u8>>>> = Arc::new(bodies.to_vec());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (next, bodies, url) = (next.clone(), bodies.clone(), url.clone());
        let mut http = Http::new(&url.host, url.port, basic);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = bodies.get(i) else {
                    return Ok::<(), String>(());
                };
                let (status, resp) = http.request("POST", &url.target, b).await?;
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "request {i}: HTTP {status}: {}",
                        String::from_utf8_lossy(&resp)
                    ));
                }
            }
        }));
    }
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => first_err = first_err.or(Some(format!("writer task: {e}"))),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(start.elapsed().as_secs_f64()),
    }
}

fn report(o: &Outcome, expected: usize) {
    let check = match &o.verified {
        Ok(n) if *n as usize == expected => format!("verified {n} rows"),
        Ok(n) => format!("MISMATCH: {n} rows stored, {expected} sent"),
        Err(e) => format!("not verified ({e})"),
    };
    println!(
        "{:<16} {:>10.0} values/s  {:>9.0} lines/s  {:>7.2} s  {check}",
        o.name,
        o.values_per_sec(),
        o.lines as f64 / o.secs,
        o.secs
    );
}

async fn run(c: Config) -> Result<(), String> {
    let t0 = Instant::now();
    let (bodies, lines) = generate(&c);
    let bytes: usize = bodies.iter().map(|b| b.len()).sum();
    println!(
        "TSBS cpu-only: {} hosts x {} s at {} s = {lines} lines, {} values, {} requests of {} lines, {:.1} MB, {} writers (generated in {:.1} s)",
        c.hosts,
        c.duration,
        c.interval,
        lines * FIELDS.len(),
        bodies.len(),
        c.batch,
        bytes as f64 / 1e6,
        c.writers,
        t0.elapsed().as_secs_f64()
    );
    let mut outcomes = Vec::new();
    for t in c.targets.clone() {
        let r = match t.as_str() {
            "taos" => run_taos(&c, &bodies, lines).await,
            "influx" => run_influx(&c, &bodies, lines).await,
            _ => run_vm(&c, &bodies, lines).await,
        };
        match r {
            Ok(Some(o)) => {
                report(&o, lines);
                outcomes.push(o);
            }
            Ok(None) => {}
            Err(e) => println!("{t:<16} FAILED: {e}"),
        }
    }
    let summary =
        format!(
        "ingest_tsbs summary: hosts={} lines={lines} values={} batch={} writers={} build={} | {}",
        c.hosts,
        lines * FIELDS.len(),
        c.batch,
        c.writers,
        if cfg!(debug_assertions) { "debug" } else { "release" },
        outcomes
            .iter()
            .map(|o| format!(
                "{}={:.0} values/s{}",
                o.name,
                o.values_per_sec(),
                match &o.verified {
                    Ok(n) if *n as usize == lines => " (verified)".to_string(),
                    Ok(n) => format!(" (MISMATCH {n})"),
                    Err(_) => " (unverified)".to_string(),
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{summary}");
    if let Some(out) = &c.out {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut f| writeln!(f, "{summary}"))
            .map_err(|e| format!("write {}: {e}", out.display()))?;
    }
    Ok(())
}

async fn run_taos(
    c: &Config,
    bodies: &[Arc<Vec<u8>>],
    lines: usize,
) -> Result<Option<Outcome>, String> {
    let mut spawned: Vec<Peer> = Vec::new();
    let mut _taosd = None;
    let (url, taos_host, taos_port) = match &c.adapter {
        Some(u) => (parse_url(u)?, c.taos_host.clone(), c.taos_port),
        None => {
            let Some(taosd) = c.taosd.clone().or_else(|| sibling("taosd")) else {
                println!("taos             SKIPPED: no taosd binary (build it or pass --taosd)");
                return Ok(None);
            };
            let Some(adapter) = c.taosadapter.clone().or_else(|| sibling("taosadapter")) else {
                println!("taos             SKIPPED: no taosadapter binary (build it, pass --taosadapter, or --adapter URL)");
                return Ok(None);
            };
            let mut t = Taosd::start(&taosd)?;
            t.keep = c.keep;
            t.wait_ready(Duration::from_secs(60))?;
            let port = free_port().map_err(|e| e.to_string())?;
            let dir = bench::tsbs::temp_dir("ingest-tsbs", "taosadapter")?;
            let args = vec![
                "-P".to_string(),
                port.to_string(),
                "--host".into(),
                "127.0.0.1".into(),
                "--taosConfigDir".into(),
                t.dir.display().to_string(),
                "--logLevel".into(),
                "warn".into(),
            ];
            let mut p = Peer::spawn("taosadapter", &adapter, &args, dir, c.keep)?;
            p.wait_http(port, "/-/ping", Duration::from_secs(30))
                .await?;
            println!(
                "taos: started {} (port {}) and {} (port {port})",
                taosd.display(),
                t.port,
                adapter.display()
            );
            let taos_port = t.port;
            _taosd = Some(t);
            spawned.push(p);
            (
                parse_url(&format!(
                    "http://127.0.0.1:{port}/influxdb/v1/write?db={}",
                    query_escape(&c.db)
                ))?,
                "127.0.0.1".to_string(),
                taos_port,
            )
        }
    };
    let conn = taosc::Connection::connect(taosc::ConnectOptions::new(taos_host, taos_port))
        .await
        .map_err(|e| format!("connect to taosd: {e}"))?;
    conn.exec(&format!("DROP DATABASE IF EXISTS `{}`", c.db))
        .await
        .map_err(|e| format!("drop database: {e}"))?;
    conn.exec(&format!(
        "CREATE DATABASE `{}` PRECISION 'ns' VGROUPS 4",
        c.db
    ))
    .await
    .map_err(|e| format!("create database: {e}"))?;
    let secs = blast(&url, Some(("root", "taosdata")), bodies, c.writers).await?;
    let verified = async {
        let rows = conn
            .query(&format!("SELECT count(*) FROM `{}`.`cpu`", c.db))
            .await?
            .collect_rows()
            .await?;
        Ok::<_, common::TaosError>(
            rows.first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_i64())
                .unwrap_or(0) as u64,
        )
    }
    .await
    .map_err(|e| e.to_string());
    drop(spawned);
    Ok(Some(Outcome {
        name: "taosadapter",
        secs,
        lines,
        verified,
    }))
}

async fn run_influx(
    c: &Config,
    bodies: &[Arc<Vec<u8>>],
    lines: usize,
) -> Result<Option<Outcome>, String> {
    let Some(bin) = c.influxd.clone().or_else(|| which("influxd")) else {
        println!("influxdb         SKIPPED: influxd not installed (apt-get install -y --no-install-recommends influxdb)");
        return Ok(None);
    };
    let (p, http_port) = start_influx(&bin, "ingest-tsbs", "", c.keep).await?;
    println!(
        "influxdb: started {} on 127.0.0.1:{http_port}",
        bin.display()
    );
    let mut h = Http::new("127.0.0.1", http_port, None);
    let (s, b) = h
        .request(
            "POST",
            &format!(
                "/query?q={}",
                query_escape(&format!("CREATE DATABASE \"{}\"", c.db))
            ),
            b"",
        )
        .await?;
    if s != 200 {
        return Err(format!(
            "CREATE DATABASE: HTTP {s}: {}",
            String::from_utf8_lossy(&b)
        ));
    }
    let url = Url {
        host: "127.0.0.1".into(),
        port: http_port,
        target: format!("/write?db={}", query_escape(&c.db)),
    };
    let secs = blast(&url, None, bodies, c.writers).await?;
    let q = "SELECT count(usage_user) FROM cpu";
    let verified = async {
        let (s, b) = h
            .request(
                "GET",
                &format!("/query?db={}&q={}", query_escape(&c.db), query_escape(q)),
                b"",
            )
            .await?;
        if s != 200 {
            return Err(format!("HTTP {s}"));
        }
        let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
        v.pointer("/results/0/series/0/values/0/1")
            .and_then(|n| n.as_u64())
            .ok_or_else(|| format!("unexpected answer {v}"))
    }
    .await;
    drop(p);
    Ok(Some(Outcome {
        name: "influxdb-1.6",
        secs,
        lines,
        verified,
    }))
}

async fn run_vm(
    c: &Config,
    bodies: &[Arc<Vec<u8>>],
    lines: usize,
) -> Result<Option<Outcome>, String> {
    let Some(bin) = c.victoria.clone().or_else(|| which("victoria-metrics")) else {
        println!("victoria-metrics SKIPPED: not installed (apt-get install -y --no-install-recommends victoria-metrics)");
        return Ok(None);
    };
    let dir = bench::tsbs::temp_dir("ingest-tsbs", "victoria")?;
    let port = free_port().map_err(|e| e.to_string())?;
    let args = vec![
        format!("-httpListenAddr=127.0.0.1:{port}"),
        format!("-storageDataPath={}", dir.join("data").display()),
        // The default retention (1 month) silently drops older samples.
        "-retentionPeriod=100y".into(),
        "-search.latencyOffset=0s".into(),
        "-loggerLevel=WARN".into(),
    ];
    let mut p = Peer::spawn("victoria-metrics", &bin, &args, dir, c.keep)?;
    p.wait_http(port, "/health", Duration::from_secs(60))
        .await?;
    println!(
        "victoria-metrics: started {} on 127.0.0.1:{port}",
        bin.display()
    );
    let url = Url {
        host: "127.0.0.1".into(),
        port,
        target: format!("/write?db={}", query_escape(&c.db)),
    };
    let secs = blast(&url, None, bodies, c.writers).await?;
    let verified = async {
        let mut h = Http::new("127.0.0.1", port, None);
        let (s, _) = h.request("GET", "/internal/force_flush", b"").await?;
        if s != 200 {
            return Err(format!("force_flush: HTTP {s}"));
        }
        // Samples of one field across all hosts: each exported line is one series.
        let m = query_escape("{__name__=\"cpu_usage_user\"}");
        let (s, b) = h
            .request("GET", &format!("/api/v1/export?match[]={m}&start=0"), b"")
            .await?;
        if s != 200 {
            return Err(format!("export: HTTP {s}: {}", String::from_utf8_lossy(&b)));
        }
        let mut n = 0u64;
        for l in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(l).map_err(|e| e.to_string())?;
            n += v
                .get("values")
                .and_then(|a| a.as_array())
                .map_or(0, |a| a.len() as u64);
        }
        Ok(n)
    }
    .await;
    drop(p);
    Ok(Some(Outcome {
        name: "victoria-metrics",
        secs,
        lines,
        verified,
    }))
}
