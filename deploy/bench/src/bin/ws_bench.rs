//! ws_bench: taosadapter's WebSocket API under load, speaking the protocol directly (no official
//! client): stmt2 bulk insert of the "meters" shape with binary binds (action 9), then a binary
//! fetch (actions 6 + 7) of the whole result. Prints rows/s for both. See `--help`.

use bench::flags::Flags;
use bench::spawn::{free_port, Taosd};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const USAGE: &str = "\
Usage: ws_bench [--flag value]...
  --host HOST            taosadapter host (default 127.0.0.1)
  --port PORT            taosadapter port (default 6041)
  --user USER            (default root)
  --password PASS        (default taosdata)
  --db NAME              database (default wsbench); dropped first unless --no-drop
  --vgroups N            VGROUPS of the database (default 4)
  --tables N             child tables d0..d<N-1> (default 1000)
  --rows N               rows per child table (default 10000)
  --batch N              rows per table in one stmt2 bind (default 5000)
  --tables-per-bind N    tables in one stmt2 bind (default 1)
  --writers N            concurrent WebSocket connections inserting (default 4)
  --spawn                start taosd and taosadapter (siblings of this binary, or --bin-dir)
  --bin-dir DIR          where taosd and taosadapter are (with --spawn)
  --keep                 keep the spawned server's temp dir
  --no-drop              do not drop the database first
  --skip-insert          only fetch (the data must be there)
  --skip-fetch           only insert
  --fetch-sql SQL        query to fetch (default: select * from <db>.meters)
";

struct Config {
    host: String,
    port: u16,
    user: String,
    password: String,
    db: String,
    vgroups: u32,
    tables: u64,
    rows: u64,
    batch: u64,
    per_bind: u64,
    writers: u64,
    spawn: bool,
    bin_dir: Option<PathBuf>,
    keep: bool,
    drop: bool,
    insert: bool,
    fetch: bool,
    fetch_sql: Option<String>,
}

fn config() -> Result<Option<Config>, String> {
    let mut f = Flags::parse(
        std::env::args().skip(1),
        &[
            "help",
            "spawn",
            "keep",
            "no-drop",
            "skip-insert",
            "skip-fetch",
        ],
    )?;
    if f.switch("help") {
        print!("{USAGE}");
        return Ok(None);
    }
    let c = Config {
        host: f.get("host", "127.0.0.1".to_string())?,
        port: f.get("port", 6041)?,
        user: f.get("user", "root".to_string())?,
        password: f.get("password", "taosdata".to_string())?,
        db: f.get("db", "wsbench".to_string())?,
        vgroups: f.get("vgroups", 4)?,
        tables: f.get("tables", 1000)?,
        rows: f.get("rows", 10_000)?,
        batch: f.get("batch", 5000)?,
        per_bind: f.get("tables-per-bind", 1)?,
        writers: f.get("writers", 4)?,
        spawn: f.switch("spawn"),
        bin_dir: f.opt("bin-dir").map(PathBuf::from),
        keep: f.switch("keep"),
        drop: !f.switch("no-drop"),
        insert: !f.switch("skip-insert"),
        fetch: !f.switch("skip-fetch"),
        fetch_sql: f.opt("fetch-sql"),
    };
    f.finish()?;
    if c.batch == 0 || c.per_bind == 0 || c.writers == 0 {
        return Err("--batch, --tables-per-bind and --writers must be > 0".into());
    }
    Ok(Some(c))
}

fn main() -> ExitCode {
    let c = match config() {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws_bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(c)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A spawned taosd + taosadapter (the adapter is killed first, by PID, on drop).
struct Spawned {
    taosd: Taosd,
    adapter: Child,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.adapter.kill();
        let _ = self.adapter.wait();
        self.taosd.stop(Duration::from_secs(10));
    }
}

fn spawn(c: &mut Config) -> Result<Spawned, String> {
    let dir = match &c.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("current exe: {e}"))?
            .parent()
            .map(PathBuf::from)
            .ok_or("no bin dir")?,
    };
    let mut taosd = Taosd::start(&dir.join("taosd"))?;
    taosd.keep = c.keep;
    taosd.wait_ready(Duration::from_secs(60))?;
    let port = free_port().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(taosd.dir.join("log/taosadapter.stderr"))
        .map_err(|e| e.to_string())?;
    let mut adapter = Command::new(dir.join("taosadapter"))
        .arg("--taosConfigDir")
        .arg(&taosd.dir)
        .args(["--host", "127.0.0.1", "-P", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start taosadapter: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline || matches!(adapter.try_wait(), Ok(Some(_))) {
            let _ = adapter.kill();
            return Err("taosadapter did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.host = "127.0.0.1".into();
    c.port = port;
    eprintln!(
        "spawned taosd (port {}) and taosadapter (port {port})",
        taosd.port
    );
    Ok(Spawned { taosd, adapter })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One client connection speaking the `/ws` protocol.
struct Client {
    ws: Ws,
    req_id: u64,
}

impl Client {
    async fn connect(c: &Config, db: Option<&str>) -> Result<Client, String> {
        let url = format!("ws://{}:{}/ws", c.host, c.port);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        let mut cl = Client { ws, req_id: 0 };
        cl.call("version", json!({})).await?;
        cl.call(
            "conn",
            json!({"user": c.user, "password": c.password, "db": db.unwrap_or("")}),
        )
        .await?;
        Ok(cl)
    }

    fn next_id(&mut self) -> u64 {
        self.req_id += 1;
        self.req_id
    }

    async fn send_text(&mut self, action: &str, mut args: Json) -> Result<(), String> {
        let id = self.next_id();
        if let Some(o) = args.as_object_mut() {
            o.insert("req_id".into(), json!(id));
        }
        let msg = json!({"action": action, "args": args}).to_string();
        self.ws
            .send(Message::Text(msg.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv_json(&mut self) -> Result<Json, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Json = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                    if v["code"].as_i64() != Some(0) {
                        return Err(format!("{} failed: {}", v["action"], v["message"]));
                    }
                    return Ok(v);
                }
                Some(Ok(Message::Binary(_))) => return Err("unexpected binary reply".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
        }
    }

    async fn call(&mut self, action: &str, args: Json) -> Result<Json, String> {
        self.send_text(action, args).await?;
        self.recv_json().await
    }

    async fn exec(&mut self, sql: &str) -> Result<Json, String> {
        self.call("query", json!({ "sql": sql })).await
    }

    async fn send_binary(
        &mut self,
        resource: u64,
        action: u64,
        payload: &[u8],
    ) -> Result<(), String> {
        let id = self.next_id();
        let mut b = Vec::with_capacity(24 + payload.len());
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&resource.to_le_bytes());
        b.extend_from_slice(&action.to_le_bytes());
        b.extend_from_slice(payload);
        self.ws
            .send(Message::Binary(b.into()))
            .await
            .map_err(|e| e.to_string())
    }
}

/// One stmt2 column buffer.
fn colbuf(
    out: &mut Vec<u8>,
    ty: u32,
    n: usize,
    fixed: impl Fn(usize, &mut Vec<u8>),
    var: Option<&[&[u8]]>,
) {
    let start = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, n));
    match var {
        Some(vals) => {
            out.push(1);
            for v in vals {
                out.extend_from_slice(&(v.len() as i32).to_le_bytes());
            }
            let total: usize = vals.iter().map(|v| v.len()).sum();
            out.extend_from_slice(&(total as u32).to_le_bytes());
            for v in vals {
                out.extend_from_slice(v);
            }
        }
        None => {
            out.push(0);
            let len_at = out.len();
            out.extend_from_slice(&0u32.to_le_bytes());
            let data_at = out.len();
            for r in 0..n {
                fixed(r, out);
            }
            let dl = (out.len() - data_at) as u32;
            out[len_at..len_at + 4].copy_from_slice(&dl.to_le_bytes());
        }
    }
    let total = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&total.to_le_bytes());
}

/// A stmt2 bind payload (`[u16 1][i32 -1][bind data]`) for `tables` × rows `from..from+n`.
fn bind_payload(tables: &[u64], from: u64, n: usize) -> Vec<u8> {
    let mut names = Vec::new();
    let tnames: Vec<String> = tables.iter().map(|t| format!("d{t}")).collect();
    for t in &tnames {
        names.extend_from_slice(&((t.len() + 1) as u16).to_le_bytes());
    }
    for t in &tnames {
        names.extend_from_slice(t.as_bytes());
        names.push(0);
    }
    let mut tag_parts = Vec::new();
    let mut col_parts = Vec::new();
    for &t in tables {
        let mut tb = Vec::new();
        colbuf(
            &mut tb,
            4,
            1,
            |_, o| o.extend_from_slice(&((t % 10) as i32).to_le_bytes()),
            None,
        );
        let loc = bench::meters::CITIES[(t % 10) as usize].as_bytes();
        colbuf(&mut tb, 8, 1, |_, _| {}, Some(&[loc]));
        tag_parts.push(tb);
        let mut cb = Vec::new();
        let ts0 = bench::meters::START_TS + from as i64 * bench::meters::STEP_MS;
        colbuf(
            &mut cb,
            9,
            n,
            |r, o| o.extend_from_slice(&(ts0 + r as i64 * bench::meters::STEP_MS).to_le_bytes()),
            None,
        );
        colbuf(
            &mut cb,
            6,
            n,
            |r, o| o.extend_from_slice(&(10.0f32 + (r % 7) as f32 * 0.1).to_le_bytes()),
            None,
        );
        colbuf(
            &mut cb,
            4,
            n,
            |r, o| o.extend_from_slice(&(215 + (r % 10) as i32).to_le_bytes()),
            None,
        );
        colbuf(
            &mut cb,
            6,
            n,
            |r, o| o.extend_from_slice(&(0.3f32 + (r % 5) as f32 * 0.01).to_le_bytes()),
            None,
        );
        col_parts.push(cb);
    }
    let section = |parts: &[Vec<u8>]| {
        let mut s = Vec::new();
        for p in parts {
            s.extend_from_slice(&(p.len() as u32).to_le_bytes());
        }
        for p in parts {
            s.extend_from_slice(p);
        }
        s
    };
    let tags = section(&tag_parts);
    let cols = section(&col_parts);
    let names_at = 28u32;
    let tags_at = names_at + names.len() as u32;
    let cols_at = tags_at + tags.len() as u32;
    let mut b = vec![1, 0];
    b.extend_from_slice(&(-1i32).to_le_bytes());
    let data_at = b.len();
    for v in [0u32, tables.len() as u32, 2, 4, names_at, tags_at, cols_at] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&names);
    b.extend_from_slice(&tags);
    b.extend_from_slice(&cols);
    let total = (b.len() - data_at) as u32;
    b[data_at..data_at + 4].copy_from_slice(&total.to_le_bytes());
    b
}

async fn writer(c: &Config, w: u64) -> Result<u64, String> {
    let mut cl = Client::connect(c, Some(&c.db)).await?;
    let init = cl
        .call(
            "stmt2_init",
            json!({"single_stb_insert": true, "single_table_bind_once": false}),
        )
        .await?;
    let stmt_id = init["stmt_id"].as_u64().ok_or("no stmt_id")?;
    cl.call(
        "stmt2_prepare",
        json!({"stmt_id": stmt_id, "sql": "insert into ? using meters tags (?, ?) values (?, ?, ?, ?)", "get_fields": false}),
    )
    .await?;
    let mine: Vec<u64> = (0..c.tables).filter(|t| t % c.writers == w).collect();
    let mut written = 0u64;
    for group in mine.chunks(c.per_bind as usize) {
        let mut from = 0;
        while from < c.rows {
            let n = (c.rows - from).min(c.batch) as usize;
            let payload = bind_payload(group, from, n);
            // Pipelined: bind and exec go out together, then both replies are read.
            cl.send_binary(stmt_id, 9, &payload).await?;
            cl.send_text("stmt2_exec", json!({"stmt_id": stmt_id}))
                .await?;
            cl.recv_json().await?;
            let r = cl.recv_json().await?;
            written += r["affected"].as_u64().unwrap_or(0);
            from += n as u64;
        }
    }
    cl.call("stmt2_close", json!({"stmt_id": stmt_id})).await?;
    Ok(written)
}

async fn fetch_all(c: &Config) -> Result<(u64, u64), String> {
    let mut cl = Client::connect(c, Some(&c.db)).await?;
    let sql = c
        .fetch_sql
        .clone()
        .unwrap_or_else(|| format!("select * from {}.meters", c.db));
    let mut q = vec![1, 0];
    q.extend_from_slice(&(sql.len() as u32).to_le_bytes());
    q.extend_from_slice(sql.as_bytes());
    cl.send_binary(0, 6, &q).await?;
    let r = cl.recv_json().await?;
    let id = r["id"].as_u64().ok_or("query returned no result id")?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    loop {
        cl.send_binary(id, 7, &[1, 0]).await?;
        let b = loop {
            match cl.ws.next().await {
                Some(Ok(Message::Binary(b))) => break b,
                Some(Ok(Message::Text(t))) => return Err(format!("unexpected text: {t}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
        };
        bytes += b.len() as u64;
        let u32_at = |at: usize| -> Result<u32, String> {
            b.get(at..at + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or_else(|| "short fetch frame".to_string())
        };
        let code = u32_at(34)?;
        let mlen = u32_at(38)? as usize;
        if code != 0 {
            let msg = String::from_utf8_lossy(b.get(42..42 + mlen).unwrap_or_default());
            return Err(format!("fetch failed: {code} {msg}"));
        }
        let finished = b.get(50 + mlen).copied().ok_or("short fetch frame")?;
        if finished != 0 {
            break;
        }
        rows += u32_at(55 + mlen + 8)? as u64;
    }
    Ok((rows, bytes))
}

async fn run(mut c: Config) -> Result<(), String> {
    let _spawned = if c.spawn { Some(spawn(&mut c)?) } else { None };
    let mut admin = Client::connect(&c, None).await?;
    if c.insert {
        if c.drop {
            admin
                .exec(&format!("drop database if exists {}", c.db))
                .await?;
        }
        admin
            .exec(&format!(
                "create database if not exists {} vgroups {} precision 'ms'",
                c.db, c.vgroups
            ))
            .await?;
        admin
            .exec(&format!(
                "create stable if not exists {}.meters (ts timestamp, current float, voltage int, phase float) \
                 tags (groupid int, location varchar(24))",
                c.db
            ))
            .await?;
        let total = c.tables * c.rows;
        eprintln!(
            "stmt2 insert: {} tables x {} rows, {} rows per table per bind, {} tables per bind, {} writers",
            c.tables, c.rows, c.batch, c.per_bind, c.writers
        );
        let started = Instant::now();
        let c2 = std::sync::Arc::new(Config { ..clone_cfg(&c) });
        let mut tasks = Vec::new();
        for w in 0..c.writers {
            let c2 = c2.clone();
            tasks.push(tokio::spawn(async move { writer(&c2, w).await }));
        }
        let mut written = 0;
        for t in tasks {
            written += t.await.map_err(|e| e.to_string())??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "stmt2 insert: {written} rows in {secs:.2}s = {:.0} rows/s (expected {total})",
            written as f64 / secs
        );
        let r = admin
            .exec(&format!("select count(*) from {}.meters", c.db))
            .await?;
        let _ = r;
    }
    if c.fetch {
        let started = Instant::now();
        let (rows, bytes) = fetch_all(&c).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "binary fetch: {rows} rows ({:.1} MiB of frames) in {secs:.2}s = {:.0} rows/s",
            bytes as f64 / (1 << 20) as f64,
            rows as f64 / secs
        );
    }
    Ok(())
}

fn clone_cfg(c: &Config) -> Config {
    Config {
        host: c.host.clone(),
        port: c.port,
        user: c.user.clone(),
        password: c.password.clone(),
        db: c.db.clone(),
        vgroups: c.vgroups,
        tables: c.tables,
        rows: c.rows,
        batch: c.batch,
        per_bind: c.per_bind,
        writers: c.writers,
        spawn: false,
        bin_dir: None,
        keep: c.keep,
        drop: c.drop,
        insert: c.insert,
        fetch: c.fetch,
        fetch_sql: c.fetch_sql.clone(),
    }
}
