//! tmq_bench: TMQ consume throughput (one consumer, then one consumer per vgroup) and the
//! write-to-poll latency of push mode, through taosc against a real taosd. See `--help`.

use bench::flags::Flags;
use bench::meters::{self, TableRows};
use bench::spawn::Taosd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taosc::{ConnectOptions, Connection, Consumer};

const USAGE: &str = "\
Usage: tmq_bench [--flag value]...
  --host HOST            server (default 127.0.0.1)
  --port PORT            serverPort (default 6030)
  --spawn-taosd PATH     start PATH on a free port in a temp dir (sets host and port)
  --vgroups N            VGROUPS of the database (default 4)
  --tables N             child tables (default 1000)
  --rows N               rows per child table (default 2000)
  --samples N            single-row writes timed for push latency (default 1000)
  --out FILE             also append the result lines to FILE
";

const DB: &str = "tmqbench";

struct Config {
    opts: ConnectOptions,
    vgroups: u32,
    tables: u64,
    rows: u64,
    samples: usize,
    spawn: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn config() -> Result<Option<Config>, String> {
    let mut f = Flags::parse(std::env::args().skip(1), &["help"])?;
    if f.switch("help") {
        print!("{USAGE}");
        return Ok(None);
    }
    let mut opts = ConnectOptions::new(
        f.get("host", "127.0.0.1".to_string())?,
        f.get("port", 6030u16)?,
    );
    opts.app = "tmq_bench".into();
    let c = Config {
        opts,
        vgroups: f.get("vgroups", 4)?,
        tables: f.get("tables", 1000)?,
        rows: f.get("rows", 2000)?,
        samples: f.get("samples", 1000)?,
        spawn: f.opt("spawn-taosd").map(PathBuf::from),
        out: f.opt("out").map(PathBuf::from),
    };
    f.finish()?;
    Ok(Some(c))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn load(c: &Config) -> Result<u64, String> {
    let conn = Connection::connect(c.opts.clone()).await.map_err(err)?;
    conn.exec(&format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .map_err(err)?;
    conn.exec(&format!(
        "{} WAL_RETENTION_PERIOD 3600",
        meters::create_database_sql(DB, c.vgroups)
    ))
    .await
    .map_err(err)?;
    conn.exec(&meters::create_stable_sql(DB))
        .await
        .map_err(err)?;
    for t in 0..c.tables {
        conn.exec(&meters::create_table_sql(DB, t))
            .await
            .map_err(err)?;
    }
    // Four writers, 10,000-row INSERTs, as insert_meters does.
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (opts, next, tables, rows) = (c.opts.clone(), next.clone(), c.tables, c.rows);
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(opts).await.map_err(err)?;
            let mut buf = String::new();
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= tables {
                    return Ok::<(), String>(());
                }
                let mut tr = TableRows::new(t, rows);
                while tr.remaining() > 0 {
                    tr.next_insert(&mut buf, DB, 10_000);
                    conn.exec(&buf).await.map_err(err)?;
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(err)??;
    }
    conn.exec(&format!("CREATE TOPIC tmq_bench_t AS STABLE {DB}.meters"))
        .await
        .map_err(err)?;
    Ok(c.tables * c.rows)
}

async fn consumer(c: &Config, group: &str, reset: &str) -> Result<Consumer, String> {
    let mut k = Consumer::new(
        c.opts.clone(),
        &[
            ("group.id", group),
            ("auto.offset.reset", reset),
            ("enable.auto.commit", "true"),
            ("msg.with.table.name", "true"),
        ],
    )
    .await
    .map_err(err)?;
    k.subscribe(&["tmq_bench_t"]).await.map_err(err)?;
    Ok(k)
}

/// Poll until `want` rows (or 5 s of silence); returns rows read.
async fn drain(k: &mut Consumer, want: u64) -> Result<u64, String> {
    let mut n = 0;
    while n < want {
        match k.poll(Duration::from_secs(5)).await.map_err(err)? {
            Some(m) => n += m.rows() as u64,
            None => break,
        }
    }
    Ok(n)
}

async fn one_consumer(c: &Config, total: u64) -> Result<(u64, f64), String> {
    let mut k = consumer(c, "bench_one", "earliest").await?;
    let t0 = Instant::now();
    let n = drain(&mut k, total).await?;
    let secs = t0.elapsed().as_secs_f64();
    k.close().await.map_err(err)?;
    Ok((n, secs))
}

async fn per_vgroup(c: &Config, total: u64) -> Result<(u64, f64), String> {
    let mut ks = Vec::new();
    for _ in 0..c.vgroups {
        ks.push(consumer(c, "bench_many", "earliest").await?);
    }
    // Start the clock once the group has settled on one vgroup each.
    for k in &ks {
        let a = k.assignment("tmq_bench_t").await.map_err(err)?;
        if a.len() != 1 {
            return Err(format!("expected one vgroup per consumer, got {}", a.len()));
        }
    }
    let each = total / c.vgroups as u64;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut k in ks {
        tasks.push(tokio::spawn(async move {
            // Each vgroup holds about total/vgroups rows: read until a poll comes back empty.
            let mut n = 0;
            while let Some(m) = k
                .poll(Duration::from_millis(if n >= each / 2 {
                    300
                } else {
                    5000
                }))
                .await
                .map_err(err)?
            {
                n += m.rows() as u64;
            }
            let _ = k.close().await;
            Ok::<u64, String>(n)
        }));
    }
    let mut n = 0;
    for t in tasks {
        n += t.await.map_err(err)??;
    }
    // The final empty poll waited 300 ms per consumer in parallel; do not count it.
    let secs = (t0.elapsed().as_secs_f64() - 0.3).max(1e-3);
    Ok((n, secs))
}

/// Single-row writes spaced 5 ms apart while a caught-up consumer waits: time from just before
/// the INSERT is sent to the moment the consumer holds the row.
async fn push_latency(c: &Config) -> Result<Vec<Duration>, String> {
    let mut k = consumer(c, "bench_push", "latest").await?;
    // Settle: nothing old is delivered with `latest`.
    while k
        .poll(Duration::from_millis(200))
        .await
        .map_err(err)?
        .is_some()
    {}
    let samples = c.samples;
    let sent: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..samples).map(|_| std::sync::Mutex::new(None)).collect());
    let writer = {
        let (opts, sent) = (c.opts.clone(), sent.clone());
        tokio::spawn(async move {
            let conn = Connection::connect(opts).await.map_err(err)?;
            let base = 1_800_000_000_000i64;
            for i in 0..samples {
                let sql = format!(
                    "INSERT INTO {DB}.d0 VALUES ({}, 1.0, {i}, 0.5)",
                    base + i as i64
                );
                *sent[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                conn.exec(&sql).await.map_err(err)?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<(), String>(())
        })
    };
    let mut lat = Vec::with_capacity(samples);
    while lat.len() < samples {
        let Some(m) = k.poll(Duration::from_secs(5)).await.map_err(err)? else {
            break;
        };
        let got = Instant::now();
        for b in &m.blocks {
            let vi = b
                .fields
                .iter()
                .position(|f| f.name == "voltage")
                .unwrap_or(2);
            for v in &b.block.columns[vi].values {
                if let Some(i) = v.as_i64() {
                    if let Some(at) = sent
                        .get(i as usize)
                        .and_then(|s| *s.lock().unwrap_or_else(|p| p.into_inner()))
                    {
                        lat.push(got - at);
                    }
                }
            }
        }
    }
    writer.await.map_err(err)??;
    k.close().await.map_err(err)?;
    lat.sort_unstable();
    Ok(lat)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

async fn run(mut c: Config) -> Result<Vec<String>, String> {
    let mut server = None;
    if let Some(bin) = &c.spawn {
        let mut s = Taosd::start(bin)?;
        s.wait_ready(Duration::from_secs(60))?;
        c.opts.host = "127.0.0.1".into();
        c.opts.port = s.port;
        server = Some(s);
    }
    let t0 = Instant::now();
    let total = load(&c).await?;
    let mut lines = vec![format!(
        "loaded {total} rows ({} tables x {} rows, {} vgroups) in {:.1} s",
        c.tables,
        c.rows,
        c.vgroups,
        t0.elapsed().as_secs_f64()
    )];
    println!("{}", lines[0]);
    let (n, secs) = one_consumer(&c, total).await?;
    lines.push(format!(
        "one consumer: {n} rows in {secs:.2} s = {:.0} rows/s",
        n as f64 / secs
    ));
    println!("{}", lines.last().map(String::as_str).unwrap_or(""));
    let (n, secs) = per_vgroup(&c, total).await?;
    lines.push(format!(
        "{} consumers (one per vgroup): {n} rows in {secs:.2} s = {:.0} rows/s",
        c.vgroups,
        n as f64 / secs
    ));
    println!("{}", lines.last().map(String::as_str).unwrap_or(""));
    let lat = push_latency(&c).await?;
    lines.push(format!(
        "push latency over {} single-row writes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    ));
    println!("{}", lines.last().map(String::as_str).unwrap_or(""));
    if let Some(mut s) = server {
        s.stop(Duration::from_secs(30));
    }
    Ok(lines)
}

#[tokio::main]
async fn main() -> ExitCode {
    let c = match config() {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tmq_bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let out = c.out.clone();
    match run(c).await {
        Ok(lines) => {
            if let Some(path) = out {
                if let Err(e) = bench::results::append(&path, &lines) {
                    eprintln!("tmq_bench: cannot write {}: {e}", path.display());
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tmq_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
