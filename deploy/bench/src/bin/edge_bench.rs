//! edge_bench: points per second from an agent's SQLite buffer through QUIC and taosx into
//! taosd on loopback, and bytes sent per point. It starts taosd and taosx, registers an agent
//! and a task, fills a buffer like the agent's with N points, then ships it with the agent's
//! own shipping code until taosx has acknowledged everything. See `--help`.

use bench::flags::Flags;
use bench::spawn::{http_json as http, sibling, Taosd};
use common::wire::{WriteRequest, WriteTable, WriteUsing};
use common::{Precision, Value};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taos_edge::buffer::{Buffer, FullPolicy};
use taos_edge::link::AgentMsg;
use taos_edge::ship::{SessionEnd, Shipper};

const USAGE: &str = "\
Usage: edge_bench [--flag value]...
  --points N        points to ship (default 2000000)
  --tables N        subtables the points spread over (default 1000)
  --per-entry N     points per buffer entry, i.e. per collector group commit (default 5000)
  --window N        batches in flight (default 16)
  --taosd PATH      taosd binary (default: next to this program)
  --taosx PATH      taosx binary (default: next to this program)
  --out FILE        also append the result lines to FILE
";

fn free_port() -> u16 {
    bench::spawn::free_port().unwrap_or(0)
}

fn mapping() -> serde_json::Value {
    serde_json::json!({
        "stable": "sensors", "table": "d_{id}", "ts": {"field": "ts"},
        "columns": [{"name": "v", "type": "BIGINT"}, {"name": "temp", "type": "DOUBLE"}],
        "tags": [{"name": "id", "type": "INT"}, {"name": "site", "type": "VARCHAR(16)"}]
    })
}

/// One buffer entry: `per` points over the tables, rows in time order per table.
fn entry(start: u64, per: u64, tables: u64) -> WriteRequest {
    let mut ts: Vec<WriteTable> = Vec::new();
    let first = start;
    for k in 0..tables.min(per) {
        ts.push(WriteTable {
            name: format!("d_{k}"),
            using: Some(WriteUsing {
                stable: "sensors".into(),
                tag_names: vec!["id".into(), "site".into()],
                tags: vec![Value::Int(k as i32), Value::VarChar(format!("s{}", k % 3))],
            }),
            columns: vec!["ts".into(), "v".into(), "temp".into()],
            rows: Vec::new(),
        });
    }
    let n = ts.len() as u64;
    for i in first..first + per {
        let t = &mut ts[(i % n) as usize];
        t.rows.push(vec![
            Value::Timestamp(1_700_000_000_000 + (i / n) as i64),
            Value::BigInt(i as i64),
            Value::Double(20.0 + (i % 100) as f64 * 0.1),
        ]);
    }
    WriteRequest {
        db: "edgebench".into(),
        precision: Precision::Ms,
        tables: ts,
    }
}

async fn run(f: &mut Flags) -> Result<Vec<String>, String> {
    let points: u64 = f.get("points", 2_000_000)?;
    let tables: u64 = f.get("tables", 1000)?;
    let per: u64 = f.get("per-entry", 5000)?;
    let window: usize = f.get("window", 16)?;
    let taosd_bin = f
        .opt("taosd")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling("taosd"));
    let taosx_bin = f
        .opt("taosx")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling("taosx"));
    let mut taosd = Taosd::start(&taosd_bin)?;
    taosd.wait_ready(Duration::from_secs(60))?;
    let dir = taosd.dir.join("edge");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (api, quic) = (free_port(), free_port());
    let log = dir.join("taosx.out");
    let mut taosx = Command::new(&taosx_bin)
        .args(["serve", "--serve.listen", &format!("127.0.0.1:{api}")])
        .args(["--serve.quic", &format!("127.0.0.1:{quic}")])
        .args(["--serve.data_dir", &dir.join("taosx").display().to_string()])
        .args([
            "--taos.dsn",
            &format!("taos://root:taosdata@127.0.0.1:{}", taosd.port),
        ])
        .args(["--log.level", "warn"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("{}: {e}", taosx_bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let fingerprint = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(fp) = text.lines().find_map(|l| l.split("sha256:").nth(1)) {
            if std::net::TcpStream::connect(("127.0.0.1", api)).is_ok() {
                break fp.trim().to_string();
            }
        }
        if Instant::now() > deadline {
            let _ = taosx.kill();
            return Err(format!("taosx did not start:\n{text}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let a = http(api, "POST", "/api/v1/agents", r#"{"name":"bench"}"#)?;
    let token = a["token"].as_str().ok_or("no token")?.to_string();
    let agent_id = a["id"].as_str().ok_or("no agent id")?.to_string();
    let task = http(
        api,
        "POST",
        "/api/v1/tasks",
        &serde_json::json!({
            "name": "bench", "from": "mqtt://127.0.0.1:1?topics=x", "to": "edgebench",
            "mapping": mapping(), "agent": agent_id, "start": false
        })
        .to_string(),
    )?;
    let task_id = task["id"]
        .as_str()
        .ok_or(format!("task: {task}"))?
        .to_string();

    // Fill the buffer as collectors would (not timed).
    let buffer = Arc::new(
        Buffer::open(&dir.join("buffer"), 0, FullPolicy::Block).map_err(|e| e.to_string())?,
    );
    let t_fill = Instant::now();
    let mut done = 0;
    while done < points {
        let n = per.min(points - done);
        buffer
            .append(&task_id, &entry(done, n, tables))
            .map_err(|e| e.to_string())?;
        done += n;
    }
    let fill_s = t_fill.elapsed().as_secs_f64();
    let buffer_bytes = buffer.used_bytes();

    let client = taos_edge::tls::client_config(&taos_edge::tls::Trust::Pin(fingerprint))
        .map_err(|e| e.to_string())?;
    let (ep, conn) =
        taos_edge::ship::connect(&format!("127.0.0.1:{quic}"), "localhost", client).await?;
    let shipper = Shipper {
        buffer: buffer.clone(),
        notify: Arc::new(tokio::sync::Notify::new()),
        window,
    };
    let (tasks_tx, _tasks_rx) = tokio::sync::mpsc::channel(4);
    let hello = AgentMsg::Hello {
        token,
        instance_id: "bench".into(),
        version: "bench".into(),
    };
    let t0 = Instant::now();
    let end = shipper
        .session(&conn, hello, tasks_tx, &Vec::new, true)
        .await;
    let secs = t0.elapsed().as_secs_f64();
    if end != SessionEnd::Drained {
        let _ = taosx.kill();
        return Err(format!("shipping ended early: {end:?}"));
    }
    let stats = conn.stats();
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    // Every point is in taosd.
    let c = taosc::Connection::connect(taosc::ConnectOptions::new("127.0.0.1", taosd.port))
        .await
        .map_err(|e| e.to_string())?;
    let rows = c
        .query("SELECT count(*) FROM edgebench.sensors")
        .await
        .map_err(|e| e.to_string())?
        .collect_rows()
        .await
        .map_err(|e| e.to_string())?;
    let count = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let _ = taosx.kill();
    let _ = taosx.wait();
    taosd.stop(Duration::from_secs(30));
    if count != points as i64 {
        return Err(format!("taosd has {count} rows, expected {points}"));
    }
    Ok(vec![
        format!(
            "buffer: {points} points in {} entries of {per} over {tables} tables, filled in {fill_s:.1} s, {:.2} bytes/point stored",
            points.div_ceil(per),
            buffer_bytes as f64 / points as f64
        ),
        format!(
            "shipped {points} points agent buffer -> QUIC -> taosx -> taosd in {secs:.2} s = {:.0} points/s (window {window}); {count} rows in taosd",
            points as f64 / secs
        ),
        format!(
            "UDP bytes sent by the agent: {} = {:.2} bytes/point (received {} bytes)",
            stats.udp_tx.bytes,
            stats.udp_tx.bytes as f64 / points as f64,
            stats.udp_rx.bytes
        ),
    ])
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut f = match Flags::parse(std::env::args().skip(1), &["help"]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("edge_bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if f.switch("help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let out = f.opt("out").map(PathBuf::from);
    let result = run(&mut f).await;
    bench::results::report("edge_bench", out.as_deref(), result)
}
