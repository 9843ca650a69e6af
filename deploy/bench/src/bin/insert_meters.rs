//! insert_meters: the taosBenchmark "meters" insert workload through taosc, printing rows/s,
//! bytes on disk per row and the server's peak memory. See `--help`.

use bench::flags::Flags;
use bench::meters::{self, TableRows};
use bench::spawn::Taosd;
use bench::sys;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taosc::{ConnectOptions, Connection};

const USAGE: &str = "\
Usage: insert_meters [--flag value]...
  --host HOST            server (default 127.0.0.1)
  --port PORT            serverPort (default 6030)
  --user USER            (default root)
  --password PASS        (default taosdata)
  --db NAME              database (default test); dropped first unless --no-drop
  --vgroups N            VGROUPS of the database (default 4)
  --tables N             child tables d0..d<N-1> (default 1000)
  --rows N               rows per child table (default 10000)
  --batch N              rows per INSERT statement (default 10000)
  --writers N            concurrent writers, one connection each (default 4)
  --data-dir DIR         server dataDir: report bytes under DIR/vnode/*/tsdb and */wal
  --taosd-pid PID        report VmHWM of this process
  --spawn-taosd PATH     start PATH -c <tmpdir> on a free port (sets host, port, data dir, pid)
  --keep                 keep the spawned server's temp dir
  --no-drop              do not drop the database first
  --no-verify            skip SELECT COUNT(*) after inserting
  --out FILE             also append the final line to FILE
";

struct Config {
    opts: ConnectOptions,
    db: String,
    vgroups: u32,
    tables: u64,
    rows: u64,
    batch: u64,
    writers: u64,
    data_dir: Option<PathBuf>,
    taosd_pid: Option<u32>,
    spawn: Option<PathBuf>,
    keep: bool,
    drop: bool,
    verify: bool,
    out: Option<PathBuf>,
}

fn config() -> Result<Option<Config>, String> {
    let mut f = Flags::parse(
        std::env::args().skip(1),
        &["help", "keep", "no-drop", "no-verify"],
    )?;
    if f.switch("help") {
        print!("{USAGE}");
        return Ok(None);
    }
    let mut opts = ConnectOptions::new(
        f.get("host", "127.0.0.1".to_string())?,
        f.get("port", 6030u16)?,
    );
    opts.user = f.get("user", opts.user.clone())?;
    opts.password = f.get("password", opts.password.clone())?;
    opts.app = "insert_meters".into();
    let c = Config {
        opts,
        db: f.get("db", "test".to_string())?,
        vgroups: f.get("vgroups", 4)?,
        tables: f.get("tables", 1000)?,
        rows: f.get("rows", 10_000)?,
        batch: f.get("batch", 10_000u64)?.max(1),
        writers: f.get("writers", 4u64)?.max(1),
        data_dir: f.opt("data-dir").map(PathBuf::from),
        taosd_pid: f
            .opt("taosd-pid")
            .map(|p| p.parse().map_err(|_| format!("invalid --taosd-pid {p}")))
            .transpose()?,
        spawn: f.opt("spawn-taosd").map(PathBuf::from),
        keep: f.switch("keep"),
        drop: !f.switch("no-drop"),
        verify: !f.switch("no-verify"),
        out: f.opt("out").map(PathBuf::from),
    };
    f.finish()?;
    Ok(Some(c))
}

#[tokio::main]
async fn main() -> ExitCode {
    match config() {
        Ok(Some(c)) => match run(c).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("insert_meters: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("insert_meters: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn db_err(what: &str) -> impl Fn(common::TaosError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn run(mut c: Config) -> Result<(), String> {
    let mut spawned = None;
    if let Some(bin) = &c.spawn {
        let mut t = Taosd::start(bin)?;
        t.keep = c.keep;
        println!(
            "started {} (pid {}) on port {} in {}",
            bin.display(),
            t.pid(),
            t.port,
            t.dir.display()
        );
        t.wait_ready(Duration::from_secs(60))?;
        c.opts.host = "127.0.0.1".into();
        c.opts.port = t.port;
        c.data_dir = Some(t.data_dir.clone());
        c.taosd_pid = Some(t.pid());
        spawned = Some(t);
    }
    let result = workload(&c).await;
    drop(spawned);
    result
}

async fn workload(c: &Config) -> Result<(), String> {
    let db = c.db.as_str();
    let admin = Connection::connect(c.opts.clone())
        .await
        .map_err(db_err("connect"))?;
    if c.drop {
        admin
            .exec(&format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .map_err(db_err("drop database"))?;
    }
    admin
        .exec(&meters::create_database_sql(db, c.vgroups))
        .await
        .map_err(db_err("create database"))?;
    admin
        .exec(&meters::create_stable_sql(db))
        .await
        .map_err(db_err("create stable"))?;

    // Each writer owns the tables i with i % writers == w, creates them, then fills them.
    let mut conns = Vec::new();
    for _ in 0..c.writers {
        conns.push(
            Connection::connect(c.opts.clone())
                .await
                .map_err(db_err("connect writer"))?,
        );
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, conn) in conns.iter().enumerate() {
        let (conn, db, tables, writers) = (conn.clone(), db.to_string(), c.tables, c.writers);
        tasks.push(tokio::spawn(async move {
            for t in (w as u64..tables).step_by(writers as usize) {
                conn.exec(&meters::create_table_sql(&db, t))
                    .await
                    .map_err(|e| format!("create d{t}: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    join_all(tasks).await?;
    let create_secs = start.elapsed().as_secs_f64();
    println!("created {} child tables in {create_secs:.3}s", c.tables);

    let done = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn({
        let done = done.clone();
        let total = c.tables * c.rows;
        async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = done.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                eprintln!("  {n}/{total} rows, {:.0} rows/s", n as f64 / secs);
            }
        }
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, conn) in conns.iter().enumerate() {
        let (conn, db, done) = (conn.clone(), db.to_string(), done.clone());
        let (tables, writers, rows, batch) = (c.tables, c.writers, c.rows, c.batch);
        tasks.push(tokio::spawn(async move {
            let mut buf = String::with_capacity((batch.min(rows) as usize) * 40 + 64);
            let mut affected = 0u64;
            for t in (w as u64..tables).step_by(writers as usize) {
                let mut gen = TableRows::new(t, rows);
                while gen.remaining() > 0 {
                    let n = gen.next_insert(&mut buf, &db, batch);
                    let a = conn
                        .exec(&buf)
                        .await
                        .map_err(|e| format!("insert into d{t}: {e}"))?;
                    affected += a.max(0) as u64;
                    done.fetch_add(n, Ordering::Relaxed);
                }
            }
            Ok::<u64, String>(affected)
        }));
    }
    let affected: u64 = join_all(tasks).await?.into_iter().sum();
    let secs = start.elapsed().as_secs_f64();
    progress.abort();
    let total = c.tables * c.rows;
    let rows_per_sec = total as f64 / secs.max(1e-9);
    println!(
        "rows: {total} ({} tables x {} rows, {} writers, batch {})",
        c.tables, c.rows, c.writers, c.batch
    );
    println!("elapsed: {secs:.3}s");
    println!("rows/s: {rows_per_sec:.0}");
    if affected != total {
        println!("warning: server reported {affected} affected rows, expected {total}");
    }

    let flush_start = Instant::now();
    match admin.exec(&format!("FLUSH DATABASE {db}")).await {
        Ok(_) => println!("flush: {:.3}s", flush_start.elapsed().as_secs_f64()),
        Err(e) => println!("warning: FLUSH DATABASE failed: {e}"),
    }
    if c.verify {
        let sql = format!("SELECT COUNT(*) FROM {db}.meters");
        match admin.query(&sql).await {
            Ok(r) => match r.collect_rows().await {
                Ok(rows) => {
                    let n = rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(|v| v.as_i64());
                    println!("count(*): {}", n.map_or("?".into(), |n| n.to_string()));
                    if n != Some(total as i64) {
                        println!("warning: count(*) differs from rows inserted ({total})");
                    }
                }
                Err(e) => println!("warning: {sql}: {e}"),
            },
            Err(e) => println!("warning: {sql}: {e}"),
        }
    }

    let (mut tsdb, mut wal) = (None, None);
    if let Some(dir) = &c.data_dir {
        let (t, w) = settled_sizes(dir).await;
        println!(
            "tsdb bytes: {t} ({:.2} bytes/row)",
            t as f64 / total.max(1) as f64
        );
        println!("wal bytes: {w}");
        println!("data dir bytes: {}", sys::dir_bytes(dir));
        (tsdb, wal) = (Some(t), Some(w));
    }
    let rss_mb = c
        .taosd_pid
        .and_then(sys::peak_rss_kib)
        .map(|k| k as f64 / 1024.0);
    if let Some(mb) = rss_mb {
        println!("taosd peak RSS: {mb:.1} MiB");
    }

    let na = || "na".to_string();
    let line = format!(
        "insert_meters: rows={total} tables={} writers={} batch={} elapsed_s={secs:.3} rows_per_sec={rows_per_sec:.0} \
         bytes_per_row={} wal_bytes={} peak_rss_mb={}",
        c.tables,
        c.writers,
        c.batch,
        tsdb.map_or_else(na, |t| format!("{:.2}", t as f64 / total.max(1) as f64)),
        wal.map_or_else(na, |w| w.to_string()),
        rss_mb.map_or_else(na, |m| format!("{m:.1}")),
    );
    println!("{line}");
    if let Some(out) = &c.out {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|e| format!("write {}: {e}", out.display()))?;
    }
    Ok(())
}

/// tsdb and WAL bytes once they stop changing (a flush may finish in the background), waiting
/// at most 10 s.
async fn settled_sizes(dir: &std::path::Path) -> (u64, u64) {
    let read = || (sys::vnode_bytes(dir, "tsdb"), sys::vnode_bytes(dir, "wal"));
    let mut last = read();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, String>>>,
) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.map_err(|e| format!("writer task failed: {e}"))??);
    }
    Ok(out)
}
