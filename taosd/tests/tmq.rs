//! Data subscription against a real taosd: topic kinds, consumer groups and rebalance, offsets,
//! push on write, errors with TDengine's codes, and a consumer killed with SIGKILL whose group
//! resumes from the committed offsets without losing a row.

mod support;

use common::tmq::{TmqMessage, NO_COMMITTED_OFFSET};
use common::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::TestServer;
use taosc::{ConnectOptions, Connection, Consumer};

fn opts(port: u16) -> ConnectOptions {
    ConnectOptions::new("127.0.0.1", port)
}

async fn conn(port: u16) -> Connection {
    Connection::connect(opts(port)).await.expect("connect")
}

async fn consumer(port: u16, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut pairs = vec![
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    pairs.extend_from_slice(extra);
    Consumer::new(opts(port), &pairs).await.expect("consumer")
}

fn code(e: &common::TaosError) -> u16 {
    e.short_code()
}

/// Every `v` value of the messages, with the table each row came from.
fn rows_of(msgs: &[TmqMessage]) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for m in msgs {
        for b in &m.blocks {
            for i in 0..b.block.rows {
                out.push((
                    b.table_name.clone(),
                    b.block.row(i).into_iter().cloned().collect(),
                ));
            }
        }
    }
    out
}

/// Poll until `want` rows arrived or nothing came for `idle`.
async fn drain(c: &mut Consumer, want: usize, idle: Duration) -> Vec<TmqMessage> {
    let mut msgs = Vec::new();
    let mut n = 0;
    while n < want {
        match c.poll(idle).await.expect("poll") {
            Some(m) => {
                n += m.rows();
                msgs.push(m);
            }
            None => break,
        }
    }
    msgs
}

/// power.meters over 4 vgroups, 8 child tables, `rows` rows each with v = 0..rows.
async fn setup(c: &Connection, rows: usize) {
    c.exec("CREATE DATABASE power VGROUPS 4 WAL_RETENTION_PERIOD 3600")
        .await
        .expect("db");
    c.exec("CREATE STABLE power.meters (ts TIMESTAMP, current FLOAT, v INT) TAGS (groupid INT, location VARCHAR(24))")
        .await
        .expect("stable");
    insert(c, 0, rows).await;
}

async fn insert(c: &Connection, from: usize, to: usize) {
    for t in 0..8 {
        let mut sql = format!(
            "INSERT INTO power.d{t} USING power.meters TAGS ({}, 'loc{t}') VALUES ",
            t % 2
        );
        for v in from..to {
            sql.push_str(&format!(
                "({}, {}.5, {v}) ",
                1_700_000_000_000i64 + v as i64,
                v % 10
            ));
        }
        c.exec(&sql).await.expect("insert");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_kinds_filters_and_errors() {
    let server = TestServer::start();
    let c = conn(server.port).await;
    setup(&c, 50).await;
    c.exec("CREATE TOPIC t_db AS DATABASE power").await.unwrap();
    c.exec("CREATE TOPIC t_stb AS STABLE power.meters WHERE groupid = 1")
        .await
        .unwrap();
    c.exec("CREATE TOPIC t_q AS SELECT ts, v, current * 2 AS c2, tbname FROM power.meters WHERE v >= 40 AND location = 'loc3'")
        .await
        .unwrap();
    // Errors at creation.
    let e = c
        .exec("CREATE TOPIC t_db AS DATABASE power")
        .await
        .unwrap_err();
    assert_eq!(code(&e), 0x03E0, "{e}");
    c.exec("CREATE TOPIC IF NOT EXISTS t_db AS DATABASE power")
        .await
        .unwrap();
    let e = c
        .exec("CREATE TOPIC t_bad AS SELECT count(*) FROM power.meters")
        .await
        .unwrap_err();
    assert_eq!(code(&e), 0x03E4, "{e}");
    let e = c
        .exec("CREATE TOPIC t_bad AS SELECT nosuch FROM power.meters")
        .await
        .unwrap_err();
    assert_eq!(code(&e), 0x2602, "{e}");
    let e = c
        .exec("CREATE TOPIC t_bad AS DATABASE nodb")
        .await
        .unwrap_err();
    assert_eq!(code(&e), 0x0388, "{e}");
    let e = c
        .exec("CREATE TOPIC t_bad AS STABLE power.nostb")
        .await
        .unwrap_err();
    assert_eq!(code(&e), 0x0361, "{e}");

    let rows = c
        .query("SHOW TOPICS")
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    let names: BTreeSet<String> = rows.iter().map(|r| r[0].render()).collect();
    assert_eq!(names, ["t_db", "t_q", "t_stb"].map(String::from).into());
    let n = c
        .query("SELECT count(*) FROM information_schema.ins_topics WHERE db_name = 'power'")
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    assert_eq!(n[0][0], Value::BigInt(3));

    // Database topic: every row of every table, all columns.
    let mut a = consumer(server.port, "g_db", &[]).await;
    a.subscribe(&["t_db"]).await.unwrap();
    let msgs = drain(&mut a, 400, Duration::from_secs(2)).await;
    let rows = rows_of(&msgs);
    assert_eq!(rows.len(), 400);
    assert_eq!(msgs[0].blocks[0].fields.len(), 3);
    assert!(rows.iter().all(|(t, _)| t.starts_with('d')));
    assert!(msgs.iter().all(|m| m.db == "power" && m.topic == "t_db"));

    // Stable topic with a tag filter: only groupid = 1 tables (d1, d3, d5, d7).
    let mut b = consumer(server.port, "g_stb", &[]).await;
    b.subscribe(&["t_stb"]).await.unwrap();
    let rows = rows_of(&drain(&mut b, 200, Duration::from_secs(2)).await);
    assert_eq!(rows.len(), 200);
    let tables: BTreeSet<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tables, ["d1", "d3", "d5", "d7"].into());

    // Query topic: only matching rows, only the projected columns, computed values.
    let mut q = consumer(server.port, "g_q", &[]).await;
    q.subscribe(&["t_q"]).await.unwrap();
    let msgs = drain(&mut q, 10, Duration::from_secs(2)).await;
    let rows = rows_of(&msgs);
    assert_eq!(rows.len(), 10, "{rows:?}");
    let fields: Vec<&str> = msgs[0].blocks[0]
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(fields, ["ts", "v", "c2", "tbname"]);
    for (_, r) in &rows {
        let v = r[1].as_i64().unwrap();
        assert!(v >= 40);
        assert_eq!(r[2].as_f64().unwrap(), ((v % 10) as f64 + 0.5) * 2.0);
        assert_eq!(r[3], Value::VarChar("d3".into()));
    }

    // A subscribed topic cannot be dropped; its database neither.
    let e = c.exec("DROP TOPIC t_q").await.unwrap_err();
    assert_eq!(code(&e), 0x03EB, "{e}");
    let e = c.exec("DROP DATABASE power").await.unwrap_err();
    assert_eq!(code(&e), 0x03ED, "{e}");
    let e = c.exec("DROP CONSUMER GROUP g_q ON t_q").await.unwrap_err();
    assert_eq!(code(&e), 0x03EC, "{e}");
    let subs = c
        .query("SHOW SUBSCRIPTIONS")
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    assert_eq!(subs.len(), 3 * 4, "one row per group x vgroup: {subs:?}");
    let consumers = c
        .query("SHOW CONSUMERS")
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    assert_eq!(consumers.len(), 3);
    q.close().await.unwrap();
    c.exec("DROP CONSUMER GROUP g_q ON t_q").await.unwrap();
    let e = c.exec("DROP CONSUMER GROUP g_q ON t_q").await.unwrap_err();
    assert_eq!(code(&e), 0x03E8, "{e}");
    c.exec("DROP TOPIC t_q").await.unwrap();
    c.exec("DROP TOPIC IF EXISTS t_q").await.unwrap();
    let e = c.exec("DROP TOPIC t_q").await.unwrap_err();
    assert_eq!(code(&e), 0x03E1, "{e}");
    c.exec("DROP TOPIC FORCE t_stb").await.unwrap();

    // Subscribing to a missing topic and bad configuration are refused.
    let mut m = consumer(server.port, "g_x", &[]).await;
    let e = m.subscribe(&["nosuch"]).await.unwrap_err();
    assert_eq!(code(&e), 0x03E1, "{e}");
    let e = Consumer::new(opts(server.port), &[("group.id", "g"), ("bogus", "1")])
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), 0x0118, "{e}");
    let e = Consumer::new(opts(server.port), &[("auto.offset.reset", "earliest")])
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), 0x0118, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_are_independent_and_offsets_are_kept() {
    let server = TestServer::start();
    let c = conn(server.port).await;
    setup(&c, 100).await;
    c.exec("CREATE TOPIC tp AS STABLE power.meters")
        .await
        .unwrap();
    let mut g1 = consumer(server.port, "g1", &[]).await;
    let mut g2 = consumer(server.port, "g2", &[]).await;
    g1.subscribe(&["tp"]).await.unwrap();
    g2.subscribe(&["tp"]).await.unwrap();
    assert_eq!(
        rows_of(&drain(&mut g1, 800, Duration::from_secs(2)).await).len(),
        800
    );
    assert_eq!(
        rows_of(&drain(&mut g2, 800, Duration::from_secs(2)).await).len(),
        800
    );

    // Offsets: assignment ranges, commit, committed, position, seek and their errors.
    let asg = g1.assignment("tp").await.unwrap();
    assert_eq!(asg.len(), 4);
    for a in &asg {
        assert!(a.begin <= a.offset && a.offset == a.end, "{a:?}");
        assert_eq!(
            g1.committed("tp", a.vgroup_id).await.unwrap(),
            NO_COMMITTED_OFFSET
        );
        assert_eq!(g1.position("tp", a.vgroup_id).await.unwrap(), a.offset);
    }
    g1.commit_all().await.unwrap();
    for a in &asg {
        assert_eq!(g1.committed("tp", a.vgroup_id).await.unwrap(), a.end);
    }
    let vg = asg[0].vgroup_id;
    let e = g1.seek("tp", vg, asg[0].end + 100).await.unwrap_err();
    assert_eq!(code(&e), 0x4007, "{e}");
    let e = g1.seek("tp", 9999, 1).await.unwrap_err();
    assert!(
        code(&e) == 0x4008 || code(&e) == 0x0529 || e.message.contains("vgroup"),
        "{e}"
    );
    let e = g1.commit_offset("other", vg, 1).await.unwrap_err();
    assert_eq!(code(&e), 0x4009, "{e}");
    // Seeking back replays that vgroup's rows.
    g1.seek("tp", vg, asg[0].begin).await.unwrap();
    let again = rows_of(&drain(&mut g1, 1, Duration::from_secs(2)).await);
    assert!(!again.is_empty());

    // A new consumer of g1 after close resumes from the committed offsets: nothing to read.
    g1.close().await.unwrap();
    let mut g1b = consumer(server.port, "g1", &[]).await;
    g1b.subscribe(&["tp"]).await.unwrap();
    assert!(g1b
        .poll(Duration::from_millis(500))
        .await
        .unwrap()
        .is_none());
    // Push: a poll parked on idle vgroups is answered by the next write.
    let port = server.port;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = conn(port).await;
        c.exec("INSERT INTO power.d0 VALUES (1800000000000, 1.0, 7)")
            .await
            .unwrap();
    });
    let m = g1b
        .poll(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("pushed message");
    assert_eq!(m.rows(), 1);
    assert_eq!(rows_of(&[m])[0].1[2], Value::Int(7));
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn three_consumers_over_four_vgroups_rebalance() {
    let server = TestServer::start();
    let c = conn(server.port).await;
    setup(&c, 10).await;
    c.exec("CREATE TOPIC tp AS DATABASE power").await.unwrap();
    let mut cs = Vec::new();
    for i in 0..3 {
        let client = format!("c{i}");
        let mut k = consumer(server.port, "grp", &[("client.id", client.as_str())]).await;
        k.subscribe(&["tp"]).await.unwrap();
        cs.push(k);
    }
    let mut counts = Vec::new();
    for k in &cs {
        counts.push(k.assignment("tp").await.unwrap().len());
    }
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 1, 2]);
    // Together they read every row once.
    let mut total = 0;
    for k in cs.iter_mut() {
        total += rows_of(&drain(k, usize::MAX, Duration::from_millis(700)).await).len();
    }
    assert_eq!(total, 80);
    // One leaves: the other two split the four vgroups 2/2.
    let gone = cs.remove(0);
    gone.close().await.unwrap();
    let mut counts = Vec::new();
    for k in &cs {
        counts.push(k.assignment("tp").await.unwrap().len());
    }
    assert_eq!(counts, vec![2, 2]);
    // A fourth and fifth join: one vgroup each, one idles.
    for i in 3..6 {
        let client = format!("c{i}");
        let mut k = consumer(server.port, "grp", &[("client.id", client.as_str())]).await;
        k.subscribe(&["tp"]).await.unwrap();
        cs.push(k);
    }
    let mut counts = Vec::new();
    for k in &cs {
        counts.push(k.assignment("tp").await.unwrap().len());
    }
    counts.sort_unstable();
    assert_eq!(counts, vec![0, 1, 1, 1, 1]);
}

/// The child side of the SIGKILL test: consume group `crash` and print each row's `v` (and
/// table) before committing that message; runs only when the parent sets TMQ_CHILD_PORT.
#[tokio::test(flavor = "multi_thread")]
async fn crash_child_consumer() {
    let Ok(port) = std::env::var("TMQ_CHILD_PORT") else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let mut k = consumer(port, "crash", &[("session.timeout.ms", "6000")]).await;
    k.subscribe(&["tp"]).await.unwrap();
    use std::io::Write;
    loop {
        if let Some(m) = k.poll(Duration::from_secs(1)).await.unwrap() {
            let mut out = std::io::stdout().lock();
            for (t, r) in rows_of(std::slice::from_ref(&m)) {
                writeln!(out, "ROW {t} {}", r[2].render()).unwrap();
            }
            out.flush().unwrap();
            drop(out);
            k.commit(&m).await.unwrap();
            // Slow enough that the parent kills it mid-stream.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_consumer_group_resumes_from_committed_offsets() {
    let server = TestServer::start();
    let c = conn(server.port).await;
    setup(&c, 500).await;
    c.exec("CREATE TOPIC tp AS STABLE power.meters")
        .await
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out_path = server.path().join("child.out");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "crash_child_consumer", "--nocapture"])
        .env("TMQ_CHILD_PORT", server.port.to_string())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it consume part of the data, then SIGKILL it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .lines()
            .count();
        if seen >= 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "child consumed only {seen} rows");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    insert(&c, 500, 600).await;
    let printed: Vec<(String, i64)> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("ROW")).then(|| {
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().parse::<i64>().unwrap(),
                )
            })
        })
        .collect();
    assert!(printed.len() < 4800, "the child must not have finished");
    // The survivor joins the same group; once the killed member's session expires it holds
    // every vgroup and resumes from the committed offsets.
    let mut k = consumer(server.port, "crash", &[]).await;
    k.subscribe(&["tp"]).await.unwrap();
    let mut seen: BTreeSet<(String, i64)> = printed.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 4800 && Instant::now() < deadline {
        if let Some(m) = k.poll(Duration::from_secs(1)).await.unwrap() {
            for (t, r) in rows_of(&[m]) {
                seen.insert((t, r[2].as_i64().unwrap()));
            }
        }
    }
    let missing = 4800 - seen.len();
    assert_eq!(missing, 0, "rows lost after the consumer crash");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_meta_topics_deliver_table_changes_before_rows() {
    let server = TestServer::start();
    let c = conn(server.port).await;
    c.exec("CREATE DATABASE mdb VGROUPS 1").await.unwrap();
    c.exec("CREATE STABLE mdb.st (ts TIMESTAMP, v INT) TAGS (site VARCHAR(8))")
        .await
        .unwrap();
    c.exec("CREATE TOPIC tm WITH META AS STABLE mdb.st")
        .await
        .unwrap();
    c.exec("CREATE TOPIC tplain AS STABLE mdb.st")
        .await
        .unwrap();
    c.exec("CREATE TABLE mdb.a USING mdb.st TAGS ('x')")
        .await
        .unwrap();
    c.exec("INSERT INTO mdb.a VALUES (1700000000000, 1)")
        .await
        .unwrap();
    c.exec("INSERT INTO mdb.b USING mdb.st TAGS ('y') VALUES (1700000000000, 2)")
        .await
        .unwrap();
    let mut k = consumer(server.port, "gm", &[]).await;
    k.subscribe(&["tm"]).await.unwrap();
    let msgs = drain(&mut k, 2, Duration::from_secs(2)).await;
    let kinds: Vec<u8> = msgs.iter().map(|m| m.message_type()).collect();
    // CREATE TABLE a (meta), a's row (data), then b auto-created with its row (meta + data).
    assert_eq!(kinds, vec![2, 1, 3], "{msgs:?}");
    assert!(
        msgs[0].meta[0].contains("\"tableName\":\"a\"")
            && msgs[0].meta[0].contains("\"using\":\"st\"")
    );
    assert!(
        msgs[2].meta[0].contains("\"value\":\"y\""),
        "{}",
        msgs[2].meta[0]
    );
    // Without WITH META only rows come.
    let mut p = consumer(server.port, "gp", &[]).await;
    p.subscribe(&["tplain"]).await.unwrap();
    let msgs = drain(&mut p, 2, Duration::from_secs(2)).await;
    assert!(msgs
        .iter()
        .all(|m| m.meta.is_empty() && m.message_type() == 1));
    assert_eq!(rows_of(&msgs).len(), 2);
}
