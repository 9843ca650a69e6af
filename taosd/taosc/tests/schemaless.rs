//! Schemaless writes against a real taosd: tables created on the fly, fields and tags added
//! later (ALTER STABLE), strings widened, type conflicts named by line, values read back.
//!
//! The taosd binary is looked up next to this test's target dir (`<target>/debug/taosd`), then
//! in `$CARGO_TARGET_DIR/debug`, then `$HOME/.cache/taos-target/debug`. Build the workspace
//! first (`cargo build -p taosd`); the tests are skipped, loudly, only if no binary exists.

use common::{Precision, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use taosc::schemaless::{TsPrecision, Writer};
use taosc::{ConnectOptions, Connection};

fn taosd_binary() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // <target>/debug/deps/schemaless-<hash>
        if let Some(profile_dir) = exe.parent().and_then(|d| d.parent()) {
            candidates.push(profile_dir.join("taosd"));
        }
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug/taosd"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(h).join(".cache/taos-target/debug/taosd"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start() -> Option<Server> {
        let Some(bin) = taosd_binary() else {
            eprintln!(
                "\n!!! SKIPPED: no taosd binary found (build it: cargo build -p taosd) !!!\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("taosc-sml-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        std::fs::write(
            dir.join("taos.cfg"),
            format!(
                "fqdn 127.0.0.1\nserverPort {port}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
                dir.join("data").display(),
                dir.display()
            ),
        )
        .expect("write taos.cfg");
        let log = std::fs::File::create(dir.join("taosd.out")).expect("log file");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn taosd");
        let mut s = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("taosd exited early ({st}): {}", s.log());
            }
            if s.log().contains("taosd is ready") {
                return Some(s);
            }
            assert!(Instant::now() < deadline, "taosd not ready: {}", s.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("taosd.out")).unwrap_or_default()
    }

    async fn connect(&self) -> Connection {
        Connection::connect(ConnectOptions::new("127.0.0.1", self.port))
            .await
            .expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn rows(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    match conn.query(sql).await {
        Ok(r) => r
            .collect_rows()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn count(conn: &Connection, sql: &str) -> i64 {
    rows(conn, sql)
        .await
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(-1)
}

/// `(field, type, length, note)` of DESCRIBE.
async fn describe(conn: &Connection, t: &str) -> Vec<(String, String, i64, String)> {
    rows(conn, &format!("DESCRIBE {t}"))
        .await
        .into_iter()
        .map(|r| {
            let s = |i: usize| match r.get(i) {
                Some(Value::VarChar(s)) => s.clone(),
                _ => String::new(),
            };
            (
                s(0),
                s(1),
                r.get(2).and_then(|v| v.as_i64()).unwrap_or(0),
                s(3),
            )
        })
        .collect()
}

#[tokio::test]
async fn influx_create_evolve_and_read_back() {
    let Some(srv) = Server::start() else { return };
    let conn = srv.connect().await;
    conn.exec("CREATE DATABASE sml PRECISION 'ns'")
        .await
        .expect("create db");
    let w = Writer::new(conn.clone());

    // Created on the fly: stable, tags NCHAR, typed columns, child tables.
    // Timestamps near 2023-11 (inside the default KEEP of 10 years).
    let body = b"cpu,host=a,dc=x usage=1.5,n=3i,ok=t,s=\"hi there\" 1700000000000001000\n\
                 # comment\n\
                 cpu,host=b,dc=x usage=2.5,n=4i,ok=f,s=\"yo\" 1700000000000002000\n";
    let s = w
        .write_influx("sml", body, Precision::Ns)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.lines, s.rows, s.tables), (2, 2, 2));
    let d = describe(&conn, "sml.cpu").await;
    let names: Vec<&str> = d.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["_ts", "usage", "n", "ok", "s", "host", "dc"]);
    assert_eq!(d[1].1, "DOUBLE");
    assert_eq!(d[2].1, "BIGINT");
    assert_eq!(d[3].1, "BOOL");
    assert_eq!((d[4].1.as_str(), d[4].2), ("VARCHAR", 8));
    assert_eq!((d[5].1.as_str(), d[5].3.as_str()), ("NCHAR", "TAG"));
    let got = rows(
        &conn,
        "SELECT _ts, usage, n, ok, s, host FROM sml.cpu ORDER BY _ts",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![
                Value::Timestamp(1_700_000_000_000_001_000),
                Value::Double(1.5),
                Value::BigInt(3),
                Value::Bool(true),
                Value::VarChar("hi there".into()),
                Value::NChar("a".into())
            ],
            vec![
                Value::Timestamp(1_700_000_000_000_002_000),
                Value::Double(2.5),
                Value::BigInt(4),
                Value::Bool(false),
                Value::VarChar("yo".into()),
                Value::NChar("b".into())
            ],
        ]
    );
    // The child table's name is the documented hash.
    let child = taosc::schemaless::child_table_name(
        "cpu",
        &[
            (
                "host".into(),
                taosc::schemaless::FieldValue::NChar("a".into()),
            ),
            (
                "dc".into(),
                taosc::schemaless::FieldValue::NChar("x".into()),
            ),
        ],
    );
    assert_eq!(
        count(&conn, &format!("SELECT count(*) FROM sml.{child}")).await,
        1
    );

    // Absent fields stay NULL, precision is honoured (ms → ns database).
    w.write_influx(
        "sml",
        b"cpu,host=a,dc=x usage=9 1700000000003",
        Precision::Ms,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let got = rows(
        &conn,
        "SELECT usage, n, s FROM sml.cpu WHERE _ts = 1700000000003000000",
    )
    .await;
    assert_eq!(
        got,
        vec![vec![Value::Double(9.0), Value::Null, Value::Null]]
    );

    // A type conflict with the stored schema: error names the line; nothing of the body written.
    let e = w
        .write_influx("sml", b"cpu,host=a,dc=x usage=1 1700000000000005000\ncpu,host=a,dc=x usage=2i 1700000000000006000\n", Precision::Ns)
        .await
        .expect_err("conflict");
    assert_eq!(e.line, Some(2), "{e}");
    assert_eq!(e.code(), 0x3004, "{e}");
    assert!(e.to_string().starts_with("line 2: "), "{e}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM sml.cpu").await,
        3,
        "all-or-nothing"
    );

    // Syntax error: same rule.
    let e = w
        .write_influx(
            "sml",
            b"cpu,host=a usage=1 1700000000000007000\ncpu,host=a usage= 1700000000000008000\n",
            Precision::Ns,
        )
        .await
        .expect_err("syntax");
    assert_eq!((e.line, e.code()), (Some(2), 0x3002), "{e}");
    assert_eq!(count(&conn, "SELECT count(*) FROM sml.cpu").await, 3);

    // Missing database.
    let e = w
        .write_influx("nodb", b"cpu f=1 1", Precision::Ns)
        .await
        .expect_err("no db");
    assert_eq!(e.code(), 0x0388, "{e}");

    // Tag-less lines and a missing timestamp (now).
    let before = Precision::Ns.now();
    w.write_influx("sml", b"bare value=7i", Precision::Ns)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = rows(&conn, "SELECT _ts, value FROM sml.bare").await;
    assert_eq!(got.len(), 1);
    assert!(got[0][0].as_i64().unwrap_or(0) >= before);
    assert_eq!(got[0][1], Value::BigInt(7));
    assert!(describe(&conn, "sml.bare")
        .await
        .iter()
        .any(|c| c.0 == "_tag_null" && c.3 == "TAG"));

    // s/m/h precisions.
    w.write_influx("sml", b"prec,k=v f=1 472222", TsPrecision::H)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows(&conn, "SELECT _ts FROM sml.prec").await,
        vec![vec![Value::Timestamp(472_222 * 3_600_000_000_000)]]
    );
}

#[tokio::test]
async fn influx_schema_changes_need_alter_stable() {
    let Some(srv) = Server::start() else { return };
    let conn = srv.connect().await;
    conn.exec("CREATE DATABASE sml2").await.expect("create db");
    let w = Writer::new(conn.clone());
    w.write_influx("sml2", b"m,t=a x=1,s=\"ab\" 1700000000001", Precision::Ms)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // New field (ALTER STABLE ADD COLUMN).
    w.write_influx("sml2", b"m,t=a x=2,y=5i 1700000000002", Precision::Ms)
        .await
        .unwrap_or_else(|e| panic!("new field needs ALTER STABLE ADD COLUMN: {e}"));
    // Longer string (MODIFY COLUMN), new tag (ADD TAG), longer tag (MODIFY TAG).
    let long = "x".repeat(100);
    let body = format!("m,t=a s=\"{long}\" 1700000000003\nm,t=a,u=new x=4 1700000000004\nm,t={long} x=5 1700000000005\n");
    w.write_influx("sml2", body.as_bytes(), Precision::Ms)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = describe(&conn, "sml2.m").await;
    let find = |n: &str| d.iter().find(|c| c.0 == n).cloned().unwrap_or_default();
    assert_eq!(find("y").1, "BIGINT");
    assert_eq!(
        find("s"),
        ("s".into(), "VARCHAR".into(), 128, String::new())
    );
    assert_eq!(
        (find("u").1.as_str(), find("u").3.as_str()),
        ("NCHAR", "TAG")
    );
    assert_eq!(find("t").2, 128);
    let got = rows(&conn, "SELECT _ts, x, y, s FROM sml2.m ORDER BY _ts").await;
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[1],
        vec![
            Value::Timestamp(1_700_000_000_002),
            Value::Double(2.0),
            Value::BigInt(5),
            Value::Null
        ]
    );
    assert_eq!(got[2][3], Value::VarChar(long.clone()));
    let got = rows(&conn, "SELECT t, u FROM sml2.m WHERE _ts = 1700000000004").await;
    assert_eq!(
        got,
        vec![vec![Value::NChar("a".into()), Value::NChar("new".into())]]
    );

    // A second writer with a cold cache sees the evolved schema and conflicts by line.
    let w2 = Writer::new(srv.connect().await);
    let e = w2
        .write_influx(
            "sml2",
            b"m,t=a x=1 1700000000010\nm,t=a x=1 1700000000011\nm,t=a y=1.5 1700000000012\n",
            Precision::Ms,
        )
        .await
        .expect_err("conflict");
    assert_eq!((e.line, e.code()), (Some(3), 0x3004), "{e}");

    // Concurrent writers racing to create and widen the same stable.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let wi = Writer::new(srv.connect().await);
        tasks.push(tokio::spawn(async move {
            let body = format!("race,h=h{i} f{i}=1,common=\"{}\" 1700000000001\nrace,h=h{i} common=2 1700000000002\n", "z".repeat(10 * (i + 1)));
            wi.write_influx("sml2", body.as_bytes(), Precision::Ms).await
        }));
    }
    let mut errs = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errs.push(e.to_string()),
            Err(e) => errs.push(e.to_string()),
        }
    }
    // `common` is VARCHAR in line 1 and DOUBLE in line 2 of each body: every writer must fail
    // at line 2 before writing anything.
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs.iter().all(|e| e.starts_with("line 2: ")), "{errs:?}");
    let mut tasks = Vec::new();
    for i in 0..4 {
        let wi = Writer::new(srv.connect().await);
        tasks.push(tokio::spawn(async move {
            let body = format!("race,h=h{i} f{i}=1,common=\"{}\" 1700000000001\nrace,h=h{i} common=\"b\" 1700000000002\n", "z".repeat(10 * (i + 1)));
            wi.write_influx("sml2", body.as_bytes(), Precision::Ms).await
        }));
    }
    for t in tasks {
        t.await
            .expect("join")
            .unwrap_or_else(|e| panic!("racing writer: {e}"));
    }
    assert_eq!(count(&conn, "SELECT count(*) FROM sml2.race").await, 8);
    let d = describe(&conn, "sml2.race").await;
    assert_eq!(d.len(), 1 + 5 + 1, "{d:?}");
}

#[tokio::test]
async fn opentsdb_telnet_and_json() {
    let Some(srv) = Server::start() else { return };
    let conn = srv.connect().await;
    conn.exec("CREATE DATABASE tsdb").await.expect("create db");
    let w = Writer::new(conn.clone());
    let s = w
        .write_opentsdb_telnet("tsdb", b"put sys.cpu 1700000000 42.5 host=a\nsys.cpu 1700000000500 43 host=a\nsys.cpu 1700000001 1 host=b\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.lines, s.rows, s.tables), (3, 3, 2));
    let got = rows(
        &conn,
        "SELECT _ts, _value, host FROM tsdb.sys_cpu ORDER BY _ts",
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![
                Value::Timestamp(1_700_000_000_000),
                Value::Double(42.5),
                Value::NChar("a".into())
            ],
            vec![
                Value::Timestamp(1_700_000_000_500),
                Value::Double(43.0),
                Value::NChar("a".into())
            ],
            vec![
                Value::Timestamp(1_700_000_001_000),
                Value::Double(1.0),
                Value::NChar("b".into())
            ],
        ]
    );
    let json = br#"[{"metric":"j","timestamp":1700000000000,"value":1.5,"tags":{"host":"a"}},
                    {"metric":"j","timestamp":{"value":1700000001,"type":"s"},"value":2,"tags":{"host":"a"}}]"#;
    let s = w
        .write_opentsdb_json("tsdb", json)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.rows, 2);
    assert_eq!(
        rows(&conn, "SELECT _value FROM tsdb.j ORDER BY _ts").await,
        vec![vec![Value::Double(1.5)], vec![Value::Double(2.0)]]
    );
    let e = w
        .write_opentsdb_json("tsdb", br#"[{"metric":"j","timestamp":1700000002000,"value":1,"tags":{"host":"a"}},{"metric":"j","timestamp":1700000003000,"value":"s","tags":{"host":"a"}}]"#)
        .await
        .expect_err("type conflict");
    assert_eq!((e.line, e.code()), (Some(2), 0x3004), "{e}");
}

#[tokio::test]
async fn big_bodies_are_split_into_several_writes() {
    let Some(srv) = Server::start() else { return };
    let conn = srv.connect().await;
    conn.exec("CREATE DATABASE big").await.expect("create db");
    let w = Writer::new(conn.clone());
    // More rows than one Write request carries, and one table with more than that alone.
    let n = taosc::schemaless::MAX_ROWS_PER_WRITE + 10_000;
    let mut body = String::with_capacity(n * 40);
    for i in 0..n {
        let host = if i < n - 100 { "a" } else { "b" };
        body.push_str(&format!(
            "big,h={host} v={i}i {}\n",
            1_700_000_000_000i64 + i as i64
        ));
    }
    let s = w
        .write_influx("big", body.as_bytes(), Precision::Ms)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.lines, s.rows, s.tables), (n, n as i64, 2));
    assert_eq!(count(&conn, "SELECT count(*) FROM big.big").await, n as i64);
    let last = rows(
        &conn,
        &format!(
            "SELECT v, h FROM big.big WHERE _ts = {}",
            1_700_000_000_000i64 + n as i64 - 1
        ),
    )
    .await;
    assert_eq!(
        last,
        vec![vec![Value::BigInt(n as i64 - 1), Value::NChar("b".into())]]
    );
}
