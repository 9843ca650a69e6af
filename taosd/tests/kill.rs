//! SHOW CONNECTIONS / SHOW QUERIES list live sessions and running statements; KILL QUERY ends a
//! slow SELECT running on another connection with 0x022D "Query killed"; KILL CONNECTION
//! closes a connection (taosc then reconnects with a new session).

mod support;

use common::Value;
use std::time::{Duration, Instant};
use support::TestServer;
use taosc::blocking::Connection;
use taosc::ConnectOptions;

fn connect(port: u16, app: &str) -> Connection {
    let mut o = ConnectOptions::new("127.0.0.1", port);
    o.app = app.into();
    Connection::connect(o).expect("connect")
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<Value>> {
    c.query(sql)
        .and_then(|r| r.collect_rows())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn text(v: &Value) -> String {
    match v {
        Value::VarChar(s) => s.clone(),
        other => other.render(),
    }
}

#[test]
fn kill_query_and_kill_connection() {
    let server = TestServer::start();
    let admin = connect(server.port, "admin");
    admin.exec("CREATE DATABASE k1").expect("db");
    admin
        .exec("CREATE TABLE k1.t (ts TIMESTAMP, v INT)")
        .expect("table");
    let base = 1_704_067_200_000i64;
    for chunk in 0..20 {
        let vals: Vec<String> = (0..10_000)
            .map(|i| {
                let k = chunk * 10_000 + i;
                format!("({}, {})", base + k * 10, k % 97)
            })
            .collect();
        admin
            .exec(&format!("INSERT INTO k1.t VALUES {}", vals.join(" ")))
            .expect("insert");
    }

    let worker = connect(server.port, "worker");
    let worker_id = worker.as_async().conn_id();
    let conns = rows(&admin, "SHOW CONNECTIONS");
    let apps: Vec<String> = conns.iter().map(|r| text(&r[2])).collect();
    assert!(apps.contains(&"admin".to_string()), "{apps:?}");
    assert!(apps.contains(&"worker".to_string()), "{apps:?}");
    assert_eq!(
        rows(
            &admin,
            "SELECT count(*) FROM performance_schema.perf_connections"
        )[0][0],
        Value::BigInt(conns.len() as i64)
    );

    // 100 overlapping windows per row: seconds of work even in a release build.
    let slow = "SELECT _wstart, count(*), avg(v) FROM k1.t INTERVAL(100s) SLIDING(1s)";
    let t = std::thread::spawn(move || {
        let started = Instant::now();
        let r = worker.query(slow).and_then(|r| r.collect_rows());
        (r.map(|rows| rows.len()), started.elapsed(), worker)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let kill_id = loop {
        let qs = rows(&admin, "SHOW QUERIES");
        if let Some(q) = qs.iter().find(|q| text(&q[12]).contains("SLIDING")) {
            assert_eq!(q[2], Value::UInt(worker_id as u32));
            assert_eq!(text(&q[3]), "worker");
            break text(&q[0]);
        }
        assert!(Instant::now() < deadline, "the slow query never showed up");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(kill_id, format!("{worker_id}:1"));
    admin
        .exec(&format!("KILL QUERY '{kill_id}'"))
        .expect("kill query");
    let (r, took, worker) = t.join().expect("worker thread");
    let e = r.expect_err("the query was killed");
    assert_eq!(e.code & 0xFFFF, 0x022D, "{e}");
    assert!(took < Duration::from_secs(60));
    // The connection is still usable, and the query is gone.
    assert_eq!(
        rows(&worker, "SELECT count(*) FROM k1.t")[0][0],
        Value::BigInt(200_000)
    );
    assert!(!rows(&admin, "SHOW QUERIES")
        .iter()
        .any(|q| text(&q[12]).contains("SLIDING")));

    // Unknown ids are TDengine's errors.
    let e = admin.exec("KILL QUERY '9999:1'").unwrap_err();
    assert_eq!(e.code & 0xFFFF, 0x030E, "{e}");
    let e = admin.exec("KILL QUERY 'nonsense'").unwrap_err();
    assert_eq!(e.code & 0xFFFF, 0x030C, "{e}");
    let e = admin.exec("KILL CONNECTION 9999").unwrap_err();
    assert_eq!(e.code & 0xFFFF, 0x030E, "{e}");

    admin
        .exec(&format!("KILL CONNECTION {worker_id}"))
        .expect("kill connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&admin, "SHOW CONNECTIONS")
        .iter()
        .any(|r| r[0] == Value::UInt(worker_id as u32))
    {
        assert!(
            Instant::now() < deadline,
            "the killed connection is still listed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // taosc reconnects on the next request: a new session, not the killed one.
    let _ = worker.query("SELECT 1");
    assert_eq!(rows(&worker, "SELECT 1").len(), 1);
    assert_ne!(worker.as_async().conn_id(), worker_id);
}
