//! query_tsbs: the TSBS devops query benchmark on the cpu-only data set, in one run against our
//! taosd, InfluxDB 1.6 and DuckDB over the same rows. See `--help`.
//!
//! The data is ingest_tsbs's stream (bench::tsbs): `hosts` hosts, one row every `interval`,
//! 10 integer fields and 10 tags. Each system is loaded, queried, and stopped before the next
//! starts (the machine is small): taosd through taosc `write()` then `FLUSH DATABASE`, so the
//! queries read files; InfluxDB through `/write` line protocol with concurrent writers; DuckDB
//! from a CSV by `deploy/bench/query_tsbs_duckdb.py` into a file-backed database.
//!
//! The queries follow TSBS's devops generators (lastpoint, single-groupby-M-H-N, cpu-max-all-N,
//! double-groupby-M, high-cpu-N, groupby-orderby-limit) with the same seeded hosts and time
//! windows for every system. Each answer is reduced to (rows, sum of its numeric values,
//! timestamps and strings excluded) and compared across systems, so a wrong answer is flagged.

use bench::flags::Flags;
use bench::spawn::Taosd;
use bench::tsbs::{
    host_tag_values, influx_query, query_escape, sibling, start_influx, which, Http, Rng, Url,
    FIELDS, TAG_NAMES,
};
use common::wire::{WriteRequest, WriteTable, WriteUsing};
use common::{Precision, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taosc::{ConnectOptions, Connection};

const USAGE: &str = "\
Usage: query_tsbs [--flag value]...
  --hosts N              simulated hosts (default 1000)
  --hours H              simulated hours (default 24)
  --interval D           time between readings of a host: 10s, 1m, or seconds (default 10s)
  --start EPOCH_SECS     first timestamp (default: top of the hour before now - hours - 1h)
  --runs N               timed runs per query after 1 warm-up (default 5)
  --seed N               seed of the random hosts and time windows (default 1)
  --queries LIST         comma list of query names (default: all seven)
  --db NAME              database (default tsbs)
  --vgroups N            VGROUPS of our database (default 2)
  --cachemodel M         CACHEMODEL of our database: none (default), last_row, last_value, both
  --host HOST / --port P our taosd (default 127.0.0.1:6030) when not spawning
  --spawn                start taosd on a free port in a temp dir (binary: --taosd, else
                         ~/.cache/taos-target/release/taosd, else next to this program, else debug)
  --taosd PATH           taosd binary to spawn (implies --spawn)
  --influxd PATH         influxd binary (default: influxd on PATH)
  --python PATH          python with duckdb (default ~/.cache/taos-venv/bin/python, else python3)
  --duckdb-script PATH   (default deploy/bench/query_tsbs_duckdb.py, next to the crate)
  --writers N            concurrent loaders (default 4 for taosd, 2x for InfluxDB)
  --batch N              lines per InfluxDB write request (default 5000)
  --skip-taos / --skip-influx / --skip-duckdb
  --keep                 keep temp dirs of spawned servers and the CSV
  --out FILE             append the table and summary lines to FILE
";

#[derive(Clone)]
struct Config {
    hosts: usize,
    steps: usize,
    interval_s: i64,
    start_s: i64,
    runs: usize,
    seed: u64,
    queries: Option<Vec<String>>,
    db: String,
    vgroups: u32,
    /// CACHEMODEL of our database ('none', 'last_row', 'last_value', 'both').
    cachemodel: String,
    host: String,
    port: u16,
    spawn: Option<PathBuf>,
    influxd: Option<PathBuf>,
    python: PathBuf,
    script: PathBuf,
    writers: usize,
    batch: usize,
    skip_taos: bool,
    skip_influx: bool,
    skip_duckdb: bool,
    keep: bool,
    out: Option<PathBuf>,
    command: String,
}

fn parse_duration_s(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        return n
            .parse::<i64>()
            .map(|ms| (ms / 1000).max(1))
            .map_err(|_| format!("bad duration {s}"));
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600)
    } else {
        (s, 1)
    };
    num.parse::<i64>()
        .map(|v| v * mult)
        .map_err(|_| format!("bad duration {s}"))
}

fn config() -> Result<Option<Config>, String> {
    let args: Vec<String> = std::env::args().collect();
    let mut f = Flags::parse(
        args.iter().skip(1).cloned(),
        &[
            "help",
            "spawn",
            "skip-taos",
            "skip-influx",
            "skip-duckdb",
            "keep",
        ],
    )?;
    if f.switch("help") {
        print!("{USAGE}");
        return Ok(None);
    }
    let hosts = f.get("hosts", 1000usize)?.max(1);
    let hours = f.get("hours", 24f64)?;
    let interval_s = parse_duration_s(&f.get("interval", "10s".to_string())?)?.max(1);
    let span_s = (hours * 3600.0).round() as i64;
    let steps = (span_s / interval_s).max(1) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let start_s = f.get("start", (now - span_s - 3600) / 3600 * 3600)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let venv_py = home.as_ref().map(|h| h.join(".cache/taos-venv/bin/python"));
    let python = match f.opt("python") {
        Some(p) => PathBuf::from(p),
        None => venv_py
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("python3")),
    };
    let script = f
        .opt("duckdb-script")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("query_tsbs_duckdb.py"));
    let taosd = f.opt("taosd").map(PathBuf::from);
    let spawn = f.switch("spawn") || taosd.is_some();
    let spawn = if spawn {
        Some(
            taosd
                .or_else(|| {
                    home.as_ref()
                        .map(|h| h.join(".cache/taos-target/release/taosd"))
                        .filter(|p| p.is_file())
                })
                .or_else(|| sibling("taosd"))
                .ok_or("no taosd binary found: pass --taosd PATH")?,
        )
    } else {
        None
    };
    let c = Config {
        hosts,
        steps,
        interval_s,
        start_s,
        runs: f.get("runs", 5usize)?.max(1),
        seed: f.get("seed", 1u64)?,
        queries: f.opt("queries").map(|q| {
            q.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        db: f.get("db", "tsbs".to_string())?,
        vgroups: f.get("vgroups", 2u32)?.max(1),
        cachemodel: f.get("cachemodel", "none".to_string())?,
        host: f.get("host", "127.0.0.1".to_string())?,
        port: f.get("port", 6030u16)?,
        spawn,
        influxd: f.opt("influxd").map(PathBuf::from),
        python,
        script,
        writers: f.get("writers", 4usize)?.max(1),
        batch: f.get("batch", 5000usize)?.max(1),
        skip_taos: f.switch("skip-taos"),
        skip_influx: f.switch("skip-influx"),
        skip_duckdb: f.switch("skip-duckdb"),
        keep: f.switch("keep"),
        out: f.opt("out").map(PathBuf::from),
        command: args.join(" "),
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
                eprintln!("query_tsbs: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("query_tsbs: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

// ------------------------------------------------------------------ time formatting

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) of epoch seconds.
fn utc(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// RFC 3339 (InfluxQL time literal).
fn rfc3339(secs: i64) -> String {
    format!("{}Z", utc(secs).replace(' ', "T"))
}

// ------------------------------------------------------------------ the queries

/// One TSBS query in the dialect of each system.
struct Query {
    name: &'static str,
    taos: String,
    influx: String,
    duck: String,
}

/// Random distinct hosts, as TSBS's GetRandomHosts (a seeded choice here).
fn random_hosts(r: &mut Rng, hosts: usize, n: usize) -> Vec<String> {
    let n = n.min(hosts);
    let mut picked: Vec<usize> = Vec::new();
    while picked.len() < n {
        let h = r.below(hosts as u64) as usize;
        if !picked.contains(&h) {
            picked.push(h);
        }
    }
    picked.into_iter().map(|h| format!("host_{h}")).collect()
}

/// A random window of `len_s` inside the data (TSBS RandWindow), starting on a whole minute.
fn random_window(r: &mut Rng, c: &Config, len_s: i64) -> (i64, i64) {
    let span = c.steps as i64 * c.interval_s;
    let room = (span - len_s).max(0);
    let start = c.start_s + (r.below(room as u64 + 1) as i64) / 60 * 60;
    (start, start + len_s)
}

fn build_queries(c: &Config) -> Vec<Query> {
    let mut r = Rng(0x5DEE_CE66_D1CE_5EED ^ c.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::new();
    let in_list = |hs: &[String]| {
        hs.iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let influx_or = |hs: &[String]| {
        format!(
            "({})",
            hs.iter()
                .map(|h| format!("hostname = '{h}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    let ms = |s: i64| s * 1000;
    let ts = |s: i64| format!("TIMESTAMP '{}'", utc(s));
    let iq = |s: i64| format!("'{}'", rfc3339(s));

    // lastpoint
    out.push(Query {
        name: "lastpoint",
        taos: "SELECT last_row(*), hostname FROM cpu PARTITION BY hostname".into(),
        influx: "SELECT * FROM cpu GROUP BY \"hostname\" ORDER BY time DESC LIMIT 1".into(),
        duck: "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC".into(),
    });

    // single-groupby-M-H-N: max of M metrics per minute over H hosts for N hours.
    for (name, m, h, n) in [
        ("single-groupby-1-1-1", 1usize, 1usize, 1i64),
        ("single-groupby-5-8-1", 5, 8, 1),
    ] {
        let hs = random_hosts(&mut r, c.hosts, h);
        let (a, b) = random_window(&mut r, c, n * 3600);
        let metrics = &FIELDS[..m];
        let sel = |f: &dyn Fn(&str) -> String| {
            metrics.iter().map(|x| f(x)).collect::<Vec<_>>().join(", ")
        };
        out.push(Query {
            name,
            taos: format!(
                "SELECT _wstart, {} FROM cpu WHERE hostname IN ({}) AND ts >= {} AND ts < {} INTERVAL(1m)",
                sel(&|x| format!("max({x})")),
                in_list(&hs),
                ms(a),
                ms(b)
            ),
            influx: format!(
                "SELECT {} FROM cpu WHERE {} AND time >= {} AND time < {} GROUP BY time(1m)",
                sel(&|x| format!("max({x})")),
                influx_or(&hs),
                iq(a),
                iq(b)
            ),
            duck: format!(
                "SELECT date_trunc('minute', time) AS minute, {} FROM cpu WHERE hostname IN ({}) AND time >= {} AND time < {} GROUP BY minute ORDER BY minute",
                sel(&|x| format!("max({x}) AS max_{x}")),
                in_list(&hs),
                ts(a),
                ts(b)
            ),
        });
    }

    // cpu-max-all-8: max of all 10 metrics per hour over 8 hosts for 8 hours.
    {
        let hs = random_hosts(&mut r, c.hosts, 8);
        let (a, b) = random_window(&mut r, c, 8 * 3600);
        let sel =
            |f: &dyn Fn(&str) -> String| FIELDS.iter().map(|x| f(x)).collect::<Vec<_>>().join(", ");
        out.push(Query {
            name: "cpu-max-all-8",
            taos: format!(
                "SELECT _wstart, {} FROM cpu WHERE hostname IN ({}) AND ts >= {} AND ts < {} INTERVAL(1h)",
                sel(&|x| format!("max({x})")),
                in_list(&hs),
                ms(a),
                ms(b)
            ),
            influx: format!(
                "SELECT {} FROM cpu WHERE {} AND time >= {} AND time < {} GROUP BY time(1h)",
                sel(&|x| format!("max({x})")),
                influx_or(&hs),
                iq(a),
                iq(b)
            ),
            duck: format!(
                "SELECT date_trunc('hour', time) AS hour, {} FROM cpu WHERE hostname IN ({}) AND time >= {} AND time < {} GROUP BY hour ORDER BY hour",
                sel(&|x| format!("max({x}) AS max_{x}")),
                in_list(&hs),
                ts(a),
                ts(b)
            ),
        });
    }

    // double-groupby-1: mean of 1 metric per hour per host, all hosts, 12 hours.
    {
        let (a, b) = random_window(&mut r, c, 12 * 3600);
        out.push(Query {
            name: "double-groupby-1",
            taos: format!(
                "SELECT _wstart, hostname, avg(usage_user) FROM cpu WHERE ts >= {} AND ts < {} PARTITION BY hostname INTERVAL(1h)",
                ms(a),
                ms(b)
            ),
            influx: format!(
                "SELECT mean(usage_user) FROM cpu WHERE time >= {} AND time < {} GROUP BY time(1h),hostname",
                iq(a),
                iq(b)
            ),
            duck: format!(
                "WITH cpu_avg AS (SELECT date_trunc('hour', time) AS hour, hostname, avg(usage_user) AS mean_usage_user FROM cpu WHERE time >= {} AND time < {} GROUP BY hour, hostname) SELECT hour, hostname, mean_usage_user FROM cpu_avg ORDER BY hour, hostname",
                ts(a),
                ts(b)
            ),
        });
    }

    // high-cpu-1: every reading of one host over 12 hours where usage_user > 90.
    {
        let hs = random_hosts(&mut r, c.hosts, 1);
        let (a, b) = random_window(&mut r, c, 12 * 3600);
        out.push(Query {
            name: "high-cpu-1",
            taos: format!(
                "SELECT * FROM cpu WHERE usage_user > 90 AND ts >= {} AND ts < {} AND hostname IN ({})",
                ms(a),
                ms(b),
                in_list(&hs)
            ),
            influx: format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= {} AND time < {} AND {}",
                iq(a),
                iq(b),
                influx_or(&hs)
            ),
            duck: format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= {} AND time < {} AND hostname IN ({})",
                ts(a),
                ts(b),
                in_list(&hs)
            ),
        });
    }

    // groupby-orderby-limit: the last 5 one-minute max(usage_user) before a random end.
    {
        let (_, e) = random_window(&mut r, c, 3600);
        out.push(Query {
            name: "groupby-orderby-limit",
            taos: format!(
                "SELECT _wstart, max(usage_user) FROM cpu WHERE ts < {} INTERVAL(1m) ORDER BY _wstart DESC LIMIT 5",
                ms(e)
            ),
            influx: format!(
                "SELECT max(usage_user) FROM cpu WHERE time < {} GROUP BY time(1m) ORDER BY time DESC LIMIT 5",
                iq(e)
            ),
            duck: format!(
                "SELECT date_trunc('minute', time) AS minute, max(usage_user) AS max_usage_user FROM cpu WHERE time < {} GROUP BY minute ORDER BY minute DESC LIMIT 5",
                ts(e)
            ),
        });
    }
    out
}

// ------------------------------------------------------------------ measurements

/// What one system answered to one query.
#[derive(Clone, Debug, Default)]
struct Measured {
    /// Timed runs, ms.
    times: Vec<f64>,
    rows: u64,
    /// Sum of the numeric values of the answer (timestamps and strings excluded).
    checksum: f64,
    error: Option<String>,
}

impl Measured {
    fn failed(e: String) -> Measured {
        Measured {
            error: Some(e),
            ..Default::default()
        }
    }
    fn median(&self) -> Option<f64> {
        if self.times.is_empty() || self.error.is_some() {
            return None;
        }
        let mut t = self.times.clone();
        t.sort_by(|a, b| a.total_cmp(b));
        let n = t.len();
        Some(if n % 2 == 1 {
            t[n / 2]
        } else {
            (t[n / 2 - 1] + t[n / 2]) / 2.0
        })
    }
    fn min(&self) -> Option<f64> {
        if self.error.is_some() {
            return None;
        }
        self.times.iter().copied().min_by(|a, b| a.total_cmp(b))
    }
}

/// One system's results, in query order; `load` is how it was loaded.
struct SystemRun {
    name: &'static str,
    load: String,
    results: Vec<Measured>,
}

fn same_answer(a: &Measured, b: &Measured) -> bool {
    a.rows == b.rows
        && (a.checksum - b.checksum).abs() <= 1e-6 * a.checksum.abs().max(b.checksum.abs()).max(1.0)
}

// ------------------------------------------------------------------ our taosd

fn taos_err(what: &str) -> impl Fn(common::TaosError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn run_taos(c: &Config, values: &Arc<Vec<u8>>, qs: &[Query]) -> Result<SystemRun, String> {
    let mut spawned = None;
    let (host, port) = match &c.spawn {
        Some(bin) => {
            let mut t = Taosd::start(bin)?;
            t.keep = c.keep;
            t.wait_ready(Duration::from_secs(60))?;
            println!(
                "taosd: started {} (pid {}) on port {}",
                bin.display(),
                t.pid(),
                t.port
            );
            let port = t.port;
            spawned = Some(t);
            ("127.0.0.1".to_string(), port)
        }
        None => (c.host.clone(), c.port),
    };
    let mut opts = ConnectOptions::new(host, port);
    opts.app = "query_tsbs".into();
    let conn = Connection::connect(opts.clone())
        .await
        .map_err(taos_err("connect"))?;
    conn.exec(&format!("DROP DATABASE IF EXISTS `{}`", c.db))
        .await
        .map_err(taos_err("drop database"))?;
    conn.exec(&format!(
        "CREATE DATABASE `{}` VGROUPS {} CACHEMODEL '{}'",
        c.db, c.vgroups, c.cachemodel
    ))
    .await
    .map_err(taos_err("create database"))?;
    conn.exec(&format!("USE `{}`", c.db))
        .await
        .map_err(taos_err("use"))?;
    let cols: Vec<String> = FIELDS.iter().map(|f| format!("{f} BIGINT")).collect();
    let tags: Vec<String> = TAG_NAMES
        .iter()
        .map(|t| format!("{t} VARCHAR(32)"))
        .collect();
    conn.exec(&format!(
        "CREATE STABLE cpu (ts TIMESTAMP, {}) TAGS ({})",
        cols.join(", "),
        tags.join(", ")
    ))
    .await
    .map_err(taos_err("create stable"))?;

    // Load: requests of ~50k rows (a slice of time steps x every host), `writers` connections.
    let t0 = Instant::now();
    let tag_values = Arc::new(host_tag_values(c.hosts));
    let steps_per_req = (50_000 / c.hosts).max(1);
    let n_req = c.steps.div_ceil(steps_per_req);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c.writers {
        let conn = Connection::connect(opts.clone())
            .await
            .map_err(taos_err("connect"))?;
        let (next, values, tag_values, cfg) =
            (next.clone(), values.clone(), tag_values.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut columns = vec!["ts".to_string()];
            columns.extend(FIELDS.iter().map(|f| f.to_string()));
            let tag_names: Vec<String> = TAG_NAMES.iter().map(|t| t.to_string()).collect();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n_req {
                    return Ok::<(), String>(());
                }
                let (s0, s1) = (i * steps_per_req, ((i + 1) * steps_per_req).min(cfg.steps));
                let mut tables = Vec::with_capacity(cfg.hosts);
                for h in 0..cfg.hosts {
                    let mut rows = Vec::with_capacity(s1 - s0);
                    for s in s0..s1 {
                        let base = (s * cfg.hosts + h) * FIELDS.len();
                        let mut row = Vec::with_capacity(1 + FIELDS.len());
                        row.push(Value::Timestamp(
                            (cfg.start_s + s as i64 * cfg.interval_s) * 1000,
                        ));
                        row.extend(
                            values[base..base + FIELDS.len()]
                                .iter()
                                .map(|&v| Value::BigInt(v as i64)),
                        );
                        rows.push(row);
                    }
                    tables.push(WriteTable {
                        name: tag_values[h][0].clone(),
                        using: Some(WriteUsing {
                            stable: "cpu".into(),
                            tag_names: tag_names.clone(),
                            tags: tag_values[h]
                                .iter()
                                .map(|t| Value::VarChar(t.clone()))
                                .collect(),
                        }),
                        columns: columns.clone(),
                        rows,
                    });
                }
                let n = conn
                    .write(WriteRequest {
                        db: cfg.db.clone(),
                        precision: Precision::Ms,
                        tables,
                    })
                    .await
                    .map_err(|e| format!("write request {i}: {e}"))?;
                let want = (s1 - s0) * cfg.hosts;
                if n as usize != want {
                    return Err(format!("write request {i}: {n} rows written, {want} sent"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("writer: {e}"))??;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    conn.exec(&format!("FLUSH DATABASE `{}`", c.db))
        .await
        .map_err(taos_err("flush database"))?;
    let flush_s = t1.elapsed().as_secs_f64();
    let rows = c.hosts * c.steps;
    let count = conn
        .query("SELECT count(*) FROM cpu")
        .await
        .map_err(taos_err("count"))?
        .collect_rows()
        .await
        .map_err(taos_err("count"))?
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(-1);
    let load = format!(
        "taosd: loaded {rows} rows in {load_s:.1} s ({:.0} rows/s, {} writers) + FLUSH {flush_s:.1} s; count(*) = {count}{}",
        rows as f64 / load_s,
        c.writers,
        if count as usize == rows { "" } else { "  MISMATCH" }
    );
    println!("{load}");

    let mut results = Vec::new();
    for q in qs {
        let m = time_taos(&conn, &q.taos, c.runs).await;
        print_one("taosd", q.name, &m);
        results.push(m);
    }
    drop(conn);
    drop(spawned);
    Ok(SystemRun {
        name: "taosd",
        load,
        results,
    })
}

async fn taos_once(conn: &Connection, sql: &str) -> Result<(f64, Vec<Vec<Value>>), String> {
    let t = Instant::now();
    let rows = conn
        .query(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect_rows()
        .await
        .map_err(|e| e.to_string())?;
    Ok((t.elapsed().as_secs_f64() * 1000.0, rows))
}

async fn time_taos(conn: &Connection, sql: &str, runs: usize) -> Measured {
    let rows = match taos_once(conn, sql).await {
        Ok((_, rows)) => rows,
        Err(e) => return Measured::failed(e),
    };
    let mut m = Measured {
        rows: rows.len() as u64,
        checksum: rows
            .iter()
            .flatten()
            .filter(|v| !matches!(v, Value::Timestamp(_)))
            .filter_map(|v| v.as_f64())
            .sum(),
        ..Default::default()
    };
    for _ in 0..runs {
        match taos_once(conn, sql).await {
            Ok((ms, _)) => m.times.push(ms),
            Err(e) => return Measured::failed(e),
        }
    }
    m
}

// ------------------------------------------------------------------ InfluxDB 1.6

async fn run_influx(
    c: &Config,
    values: &Arc<Vec<u8>>,
    qs: &[Query],
) -> Result<Option<SystemRun>, String> {
    let Some(bin) = c.influxd.clone().or_else(|| which("influxd")) else {
        println!("influxdb SKIPPED: influxd not installed (apt-get install -y --no-install-recommends influxdb)");
        return Ok(None);
    };
    // Snapshot the cache and fully compact shards soon after writes stop, so the queries read
    // compacted TSM files (as ours read flushed files), not a fresh cache + level-1 files.
    let (peer, port) = start_influx(
        &bin,
        "query-tsbs",
        "  cache-snapshot-write-cold-duration = \"5s\"\n  compact-full-write-cold-duration = \"5s\"",
        c.keep,
    )
    .await?;
    println!("influxdb: started {} on 127.0.0.1:{port}", bin.display());
    let mut h = Http::new("127.0.0.1", port, None);
    influx_query(&mut h, "", &format!("CREATE DATABASE \"{}\"", c.db)).await?;

    // Load: line protocol (second precision), `batch` lines per request, built by each writer.
    let t0 = Instant::now();
    let prefixes: Arc<Vec<String>> = Arc::new(bench::tsbs::host_tags(c.hosts));
    let total = c.hosts * c.steps;
    let n_req = total.div_ceil(c.batch);
    let next = Arc::new(AtomicUsize::new(0));
    let url = Url {
        host: "127.0.0.1".into(),
        port,
        target: format!("/write?db={}&precision=s", query_escape(&c.db)),
    };
    let writers = c.writers * 2;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (next, values, prefixes, url, cfg) = (
            next.clone(),
            values.clone(),
            prefixes.clone(),
            url.clone(),
            c.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut http = Http::new(&url.host, url.port, None);
            let mut body = Vec::with_capacity(cfg.batch * 340);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n_req {
                    return Ok::<(), String>(());
                }
                body.clear();
                for row in i * cfg.batch..((i + 1) * cfg.batch).min(total) {
                    let (s, hst) = (row / cfg.hosts, row % cfg.hosts);
                    body.extend_from_slice(prefixes[hst].as_bytes());
                    let v = &values[row * FIELDS.len()..(row + 1) * FIELDS.len()];
                    for (k, f) in FIELDS.iter().enumerate() {
                        let _ = write!(body, "{}{f}={}i", if k == 0 { ' ' } else { ',' }, v[k]);
                    }
                    let _ = writeln!(body, " {}", cfg.start_s + s as i64 * cfg.interval_s);
                }
                let (status, resp) = http.request("POST", &url.target, &body).await?;
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "write request {i}: HTTP {status}: {}",
                        String::from_utf8_lossy(&resp)
                    ));
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("writer: {e}"))??;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let settled = wait_quiet(&peer.dir.join("data"), Duration::from_secs(240)).await;
    let settle_s = t1.elapsed().as_secs_f64();
    let count = influx_query(&mut h, &c.db, "SELECT count(usage_user) FROM cpu")
        .await
        .ok()
        .and_then(|v| {
            v.pointer("/results/0/series/0/values/0/1")
                .and_then(|n| n.as_u64())
        })
        .map_or(-1, |n| n as i64);
    let load = format!(
        "influxdb: loaded {total} rows in {load_s:.1} s ({:.0} rows/s, {writers} writers x {} lines) + compaction wait {settle_s:.1} s{}; count = {count}{}",
        total as f64 / load_s,
        c.batch,
        if settled { "" } else { " (still busy, timed out)" },
        if count as usize == total { "" } else { "  MISMATCH" }
    );
    println!("{load}");

    let mut results = Vec::new();
    for q in qs {
        let m = time_influx(&mut h, &c.db, &q.influx, c.runs).await;
        print_one("influxdb", q.name, &m);
        results.push(m);
    }
    drop(peer);
    Ok(Some(SystemRun {
        name: "influxdb",
        load,
        results,
    }))
}

/// Wait until no file under `dir` has changed (count, total size, no `.tmp`) for 10 s, at most
/// `limit`; true when it went quiet.
async fn wait_quiet(dir: &std::path::Path, limit: Duration) -> bool {
    fn scan(d: &std::path::Path, acc: &mut (u64, u64, bool)) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                scan(&p, acc);
            } else {
                acc.0 += 1;
                acc.1 += e.metadata().map_or(0, |m| m.len());
                acc.2 |= p.extension().is_some_and(|x| x == "tmp");
            }
        }
    }
    let t0 = Instant::now();
    let (mut last, mut since) = ((0, 0, true), Instant::now());
    while t0.elapsed() < limit {
        let mut now = (0, 0, false);
        scan(dir, &mut now);
        if now != last || now.2 {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(10) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

async fn influx_once(h: &mut Http, db: &str, q: &str) -> Result<(f64, Vec<u8>), String> {
    let target = format!("/query?db={}&q={}", query_escape(db), query_escape(q));
    let t = Instant::now();
    let (s, b) = h.request("GET", &target, b"").await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if s != 200 {
        return Err(format!("HTTP {s}: {}", String::from_utf8_lossy(&b)));
    }
    Ok((ms, b))
}

/// Rows and numeric sum of an InfluxDB answer (the `time` column and tag strings excluded;
/// rows without any value not counted).
fn influx_summary(body: &[u8]) -> Result<(u64, f64), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(e) = v.pointer("/results/0/error").and_then(|e| e.as_str()) {
        return Err(e.to_string());
    }
    let (mut rows, mut sum) = (0u64, 0f64);
    for series in v
        .pointer("/results/0/series")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
    {
        let cols: Vec<&str> = series
            .get("columns")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().map(|c| c.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        for row in series
            .get("values")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            // fill(null) windows (no data) are all-null rows: the SQL systems emit no row.
            let mut any = false;
            for (i, x) in row.as_array().into_iter().flatten().enumerate() {
                if cols.get(i) != Some(&"time") && !x.is_null() {
                    any = true;
                    sum += x.as_f64().unwrap_or(0.0);
                }
            }
            rows += any as u64;
        }
    }
    Ok((rows, sum))
}

async fn time_influx(h: &mut Http, db: &str, q: &str, runs: usize) -> Measured {
    let summary = match influx_once(h, db, q).await {
        Ok((_, b)) => influx_summary(&b),
        Err(e) => Err(e),
    };
    let (rows, checksum) = match summary {
        Ok(x) => x,
        Err(e) => return Measured::failed(e),
    };
    let mut m = Measured {
        rows,
        checksum,
        ..Default::default()
    };
    for _ in 0..runs {
        match influx_once(h, db, q).await {
            Ok((ms, _)) => m.times.push(ms),
            Err(e) => return Measured::failed(e),
        }
    }
    m
}

// ------------------------------------------------------------------ DuckDB

fn run_duckdb(c: &Config, values: &[u8], qs: &[Query]) -> Result<Option<SystemRun>, String> {
    if !c.script.is_file() {
        println!("duckdb SKIPPED: no script {}", c.script.display());
        return Ok(None);
    }
    let dir = bench::tsbs::temp_dir("query-tsbs", "duckdb")?;
    let t0 = Instant::now();
    let csv = dir.join("cpu.csv");
    {
        let f = std::fs::File::create(&csv).map_err(|e| format!("create csv: {e}"))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let io = |e: std::io::Error| format!("write csv: {e}");
        writeln!(w, "time_ms,hostname,{}", FIELDS.join(",")).map_err(io)?;
        let mut line = String::with_capacity(128);
        for row in 0..c.hosts * c.steps {
            let (s, h) = (row / c.hosts, row % c.hosts);
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                "{},host_{h}",
                (c.start_s + s as i64 * c.interval_s) * 1000
            );
            for v in &values[row * FIELDS.len()..(row + 1) * FIELDS.len()] {
                let _ = write!(line, ",{v}");
            }
            line.push('\n');
            w.write_all(line.as_bytes()).map_err(io)?;
        }
        w.flush().map_err(io)?;
    }
    let csv_s = t0.elapsed().as_secs_f64();
    let spec = serde_json::json!({
        "csv": csv.display().to_string(),
        "db": dir.join("tsbs.duckdb").display().to_string(),
        "fields": FIELDS,
        "runs": c.runs,
        "queries": qs.iter().map(|q| serde_json::json!({"name": q.name, "sql": q.duck})).collect::<Vec<_>>(),
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| format!("write spec: {e}"))?;
    let out = Command::new(&c.python)
        .arg(&c.script)
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    if !c.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = out.map_err(|e| format!("run {}: {e}", c.python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} exited with {}: {}",
            c.python.display(),
            c.script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("duckdb script output: {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        println!("duckdb SKIPPED: {e}");
        return Ok(None);
    }
    let total = c.hosts * c.steps;
    let count = v.get("rows").and_then(|n| n.as_i64()).unwrap_or(-1);
    let load = format!(
        "duckdb {}: CSV written in {csv_s:.1} s, loaded {count} rows in {:.1} s{}",
        v.get("version").and_then(|s| s.as_str()).unwrap_or("?"),
        v.get("load_secs").and_then(|s| s.as_f64()).unwrap_or(0.0),
        if count as usize == total {
            ""
        } else {
            "  MISMATCH"
        }
    );
    println!("{load}");
    let mut results = Vec::new();
    let answers = v
        .get("queries")
        .and_then(|q| q.as_array())
        .cloned()
        .unwrap_or_default();
    for q in qs {
        let a = answers
            .iter()
            .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(q.name));
        let m = match a {
            None => Measured::failed("no answer from the script".into()),
            Some(a) => match a.get("error").and_then(|e| e.as_str()) {
                Some(e) => Measured::failed(e.to_string()),
                None => Measured {
                    times: a
                        .get("times_ms")
                        .and_then(|t| t.as_array())
                        .map(|t| t.iter().filter_map(|x| x.as_f64()).collect())
                        .unwrap_or_default(),
                    rows: a.get("rows").and_then(|n| n.as_u64()).unwrap_or(0),
                    checksum: a.get("checksum").and_then(|n| n.as_f64()).unwrap_or(0.0),
                    error: None,
                },
            },
        };
        print_one("duckdb", q.name, &m);
        results.push(m);
    }
    Ok(Some(SystemRun {
        name: "duckdb",
        load,
        results,
    }))
}

// ------------------------------------------------------------------ report

fn print_one(system: &str, query: &str, m: &Measured) {
    match (&m.error, m.median(), m.min()) {
        (Some(e), _, _) => println!("  {system:<9} {query:<22} FAILED: {e}"),
        (None, Some(med), Some(min)) => println!(
            "  {system:<9} {query:<22} median {med:>9.2} ms  min {min:>9.2} ms  rows {:>6}  sum {:.3}",
            m.rows, m.checksum
        ),
        _ => println!("  {system:<9} {query:<22} no timings"),
    }
}

fn fmt_ms(m: Option<&Measured>) -> String {
    match m {
        None => "-".into(),
        Some(m) => match (m.median(), m.min()) {
            (Some(a), Some(b)) => format!("{a:.2} / {b:.2}"),
            _ => "FAILED".into(),
        },
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |k| format!("{:.0} GiB", k as f64 / 1048576.0));
    format!("{cores} cores ({cpu}), {mem} RAM")
}

fn report(c: &Config, qs: &[Query], runs: &[SystemRun]) -> String {
    let get = |name: &str, i: usize| {
        runs.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.results.get(i))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(s, "== query_tsbs {} UTC", utc(now));
    let _ = writeln!(s, "command: {}", c.command);
    let _ = writeln!(
        s,
        "build: {}; machine: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine()
    );
    let _ = writeln!(
        s,
        "data: TSBS devops cpu-only, {} hosts x {} steps of {} s ({} .. {} UTC) = {} rows, 10 fields, 10 tags; {} timed runs after 1 warm-up",
        c.hosts,
        c.steps,
        c.interval_s,
        utc(c.start_s),
        utc(c.start_s + c.steps as i64 * c.interval_s),
        c.hosts * c.steps,
        c.runs
    );
    for r in runs {
        let _ = writeln!(s, "{}", r.load);
    }
    let _ = writeln!(
        s,
        "\n{:<22} {:>21} {:>21} {:>21} {:>12} {:>12}  check",
        "query (median / min ms)", "taosd", "influxdb 1.6", "duckdb", "influx/ours", "ours/duckdb"
    );
    let mut summaries = Vec::new();
    for (i, q) in qs.iter().enumerate() {
        let (o, fx, d) = (get("taosd", i), get("influxdb", i), get("duckdb", i));
        let om = o.and_then(|m| m.median());
        let ratio_i = match (fx.and_then(|m| m.median()), om) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let ratio_d = match (om, d.and_then(|m| m.median())) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        // Agreement: every pair of systems that answered.
        let answered: Vec<(&str, &Measured)> = [("taosd", o), ("influxdb", fx), ("duckdb", d)]
            .into_iter()
            .filter_map(|(n, m)| m.filter(|m| m.error.is_none()).map(|m| (n, m)))
            .collect();
        let mut check = Vec::new();
        for a in 0..answered.len() {
            for b in a + 1..answered.len() {
                let ((na, ma), (nb, mb)) = (answered[a], answered[b]);
                if !same_answer(ma, mb) {
                    check.push(format!(
                        "MISMATCH {na} rows={} sum={:.3} vs {nb} rows={} sum={:.3}",
                        ma.rows, ma.checksum, mb.rows, mb.checksum
                    ));
                }
            }
        }
        let check = if answered.len() < 2 {
            "unchecked".to_string()
        } else if check.is_empty() {
            format!("ok ({} rows)", answered[0].1.rows)
        } else {
            check.join("; ")
        };
        let r = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            s,
            "{:<22} {:>21} {:>21} {:>21} {:>12} {:>12}  {check}",
            q.name,
            fmt_ms(o),
            fmt_ms(fx),
            fmt_ms(d),
            r(ratio_i),
            r(ratio_d)
        );
        let goal_i = ratio_i.map_or("n/a", |x| if x >= 5.0 { "met" } else { "NOT met" });
        let goal_d = ratio_d.map_or("n/a", |x| if x <= 2.0 { "met" } else { "NOT met" });
        summaries.push(format!(
            "summary {}: ours {} ms, influx {} ms ({} faster; goal >= 5x {goal_i}), duckdb {} ms (ours/duckdb {}; goal <= 2x {goal_d}); answers {}",
            q.name,
            om.map_or("-".into(), |x| format!("{x:.2}")),
            fx.and_then(|m| m.median()).map_or("-".into(), |x| format!("{x:.2}")),
            r(ratio_i),
            d.and_then(|m| m.median()).map_or("-".into(), |x| format!("{x:.2}")),
            r(ratio_d),
            if check.starts_with("ok") { "agree" } else { &check }
        ));
    }
    for (i, q) in qs.iter().enumerate() {
        for r in runs {
            if let Some(e) = r.results.get(i).and_then(|m| m.error.as_ref()) {
                let sql = match r.name {
                    "taosd" => &q.taos,
                    "influxdb" => &q.influx,
                    _ => &q.duck,
                };
                let _ = writeln!(s, "FAILED {} {}: {e}\n  SQL: {sql}", r.name, q.name);
            }
        }
    }
    let _ = writeln!(s);
    for l in summaries {
        let _ = writeln!(s, "{l}");
    }
    s
}

async fn run(c: Config) -> Result<(), String> {
    let t0 = Instant::now();
    let values = Arc::new(bench::tsbs::values(c.hosts, c.steps));
    println!(
        "TSBS cpu-only: {} hosts x {} steps of {} s = {} rows ({} values) generated in {:.1} s",
        c.hosts,
        c.steps,
        c.interval_s,
        c.hosts * c.steps,
        values.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut qs = build_queries(&c);
    if let Some(only) = &c.queries {
        for n in only {
            if !qs.iter().any(|q| q.name == n) {
                return Err(format!("unknown query '{n}'"));
            }
        }
        qs.retain(|q| only.iter().any(|n| n == q.name));
    }
    println!("queries:");
    for q in &qs {
        println!(
            "  {}\n    taosd:  {}\n    influx: {}\n    duckdb: {}",
            q.name, q.taos, q.influx, q.duck
        );
    }
    let mut runs = Vec::new();
    if !c.skip_taos {
        runs.push(run_taos(&c, &values, &qs).await?);
    }
    if !c.skip_influx {
        match run_influx(&c, &values, &qs).await {
            Ok(Some(r)) => runs.push(r),
            Ok(None) => {}
            Err(e) => println!("influxdb FAILED: {e}"),
        }
    }
    if !c.skip_duckdb {
        let (c2, v2) = (c.clone(), values.clone());
        let qs2: Vec<Query> = qs
            .iter()
            .map(|q| Query {
                name: q.name,
                taos: String::new(),
                influx: String::new(),
                duck: q.duck.clone(),
            })
            .collect();
        match tokio::task::spawn_blocking(move || run_duckdb(&c2, &v2, &qs2))
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(Some(r)) => runs.push(r),
            Ok(None) => {}
            Err(e) => println!("duckdb FAILED: {e}"),
        }
    }
    let text = report(&c, &qs, &runs);
    println!("\n{text}");
    if let Some(out) = &c.out {
        let mut sqls = String::from("queries:\n");
        for q in &qs {
            sqls.push_str(&format!(
                "  {}\n    taosd:  {}\n    influx: {}\n    duckdb: {}\n",
                q.name, q.taos, q.influx, q.duck
            ));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut f| writeln!(f, "{text}{sqls}"))
            .map_err(|e| format!("write {}: {e}", out.display()))?;
    }
    Ok(())
}
