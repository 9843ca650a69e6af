//! Durability: what taosd acknowledged survives `kill -9` (WAL_LEVEL 2) and clean restarts
//! (WAL_LEVEL 1), across flushed files and WAL replay; a second taosd cannot share the data dir.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::TestServer;
use taosc::blocking::Connection;
use taosc::{ConnectOptions, Value};

fn connect(port: u16) -> Connection {
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.tz = Some("UTC".into());
    Connection::connect(opts).expect("connect")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    let rows = conn
        .query(sql)
        .expect("query")
        .collect_rows()
        .expect("rows");
    match rows.first().and_then(|r| r.first()) {
        Some(Value::BigInt(n)) => *n,
        other => panic!("unexpected count result {other:?}"),
    }
}

const BASE_TS: i64 = 1_700_000_000_000;

/// One INSERT of `rows` rows into table `t`, timestamps continuing from `start`.
fn batch(t: usize, start: i64, rows: usize) -> String {
    let mut sql = format!("INSERT INTO k.d{t} USING k.m TAGS ({t}) VALUES ");
    for i in 0..rows {
        let ts = BASE_TS + start + i as i64;
        sql.push_str(&format!("({ts}, {}, {}.5)", i % 1000, i % 7));
    }
    sql
}

#[test]
fn kill9_during_ingest_loses_no_acknowledged_row() {
    let mut server = TestServer::start();
    let conn = connect(server.port);
    conn.exec("CREATE DATABASE k VGROUPS 2 WAL_LEVEL 2 KEEP 36500")
        .expect("create db");
    conn.exec("CREATE STABLE k.m (ts TIMESTAMP, v INT, f DOUBLE) TAGS (t INT)")
        .expect("create stable");
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = connect(port);
            let mut next = [0i64; 4];
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = i % 4;
                match conn.exec(&batch(t, next[t], 500)) {
                    Ok(n) => {
                        assert_eq!(n, 500);
                        next[t] += 500;
                        acked.fetch_add(500, Ordering::SeqCst);
                    }
                    Err(_) => break, // the server is gone: whatever was acknowledged must survive
                }
                i += 1;
            }
        })
    };
    // Let some batches land, then pull the plug mid-stream.
    while acked.load(Ordering::SeqCst) < 20_000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    let acked = acked.load(Ordering::SeqCst) as i64;
    server.spawn();
    let conn = connect(server.port);
    let n = count(&conn, "SELECT count(*) FROM k.m");
    assert!(
        n >= acked,
        "acknowledged {acked} rows but only {n} survived kill -9"
    );
    // At most the one batch in flight when the server died may also have landed.
    assert!(
        n <= acked + 500,
        "more rows ({n}) than were ever sent ({acked} + 500 in flight)"
    );
    // Rows are whole: every surviving row has its values.
    assert_eq!(count(&conn, "SELECT count(v) FROM k.m"), n);
}

#[test]
fn clean_restart_with_wal_level_1_and_flushed_files() {
    let mut server = TestServer::start();
    let conn = connect(server.port);
    conn.exec("CREATE DATABASE k VGROUPS 2 WAL_LEVEL 1 KEEP 36500")
        .expect("create db");
    conn.exec("CREATE STABLE k.m (ts TIMESTAMP, v INT, f DOUBLE) TAGS (t INT)")
        .expect("create stable");
    for t in 0..3 {
        conn.exec(&batch(t, 0, 1000)).expect("insert");
    }
    // Part of the data in files, part only in the WAL.
    conn.exec("FLUSH DATABASE k").expect("flush");
    for t in 0..3 {
        conn.exec(&batch(t, 1000, 1000)).expect("insert");
    }
    // Overwrite one row after the flush: the newer value must win after replay.
    conn.exec(&format!(
        "INSERT INTO k.d0 (ts, v) VALUES ({}, 424242)",
        BASE_TS + 5
    ))
    .expect("overwrite");
    drop(conn);
    server.stop();
    server.spawn();
    let conn = connect(server.port);
    assert_eq!(count(&conn, "SELECT count(*) FROM k.m"), 6000);
    let rows = conn
        .query(&format!("SELECT v, f FROM k.d0 WHERE ts = {}", BASE_TS + 5))
        .expect("q")
        .collect_rows()
        .expect("rows");
    assert_eq!(rows, vec![vec![Value::Int(424242), Value::Double(5.5)]]);
    // And once more through kill -9 with WAL_LEVEL 1: the WAL is written before the ack.
    for t in 0..3 {
        conn.exec(&batch(t, 2000, 1000)).expect("insert");
    }
    drop(conn);
    server.kill9();
    server.spawn();
    let conn = connect(server.port);
    assert_eq!(count(&conn, "SELECT count(*) FROM k.m"), 9000);
    let tables = conn
        .query("SHOW k.TABLES")
        .expect("show")
        .collect_rows()
        .expect("rows");
    assert_eq!(tables.len(), 3);
}

#[test]
fn second_taosd_on_the_same_data_dir_refuses_to_start() {
    let server = TestServer::start();
    let cfg = server.path().join("cfg2");
    std::fs::create_dir_all(&cfg).expect("cfg dir");
    let other_port = support::free_port();
    std::fs::write(
        cfg.join("taos.cfg"),
        format!(
            "fqdn 127.0.0.1\nserverPort {other_port}\ndataDir {}\n",
            server.data_dir().display()
        ),
    )
    .expect("write cfg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_taosd"))
        .arg("-c")
        .arg(&cfg)
        .output()
        .expect("run taosd");
    assert!(!out.status.success(), "second taosd must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another taosd"),
        "unexpected error: {err}"
    );
}
