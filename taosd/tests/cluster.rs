//! Two dnodes in one process, each with its own data dir, one coordinator reaching both only
//! through encoded messages (`SimTransport`): a database's two vgroups land on different
//! dnodes, and DDL, inserts, queries and SHOW see both; a cut-off dnode fails statements with
//! TDengine's network error instead of hanging or answering partly.

use common::config::CfgFile;
use common::{Code, SessionTz, Value};
use std::sync::Arc;
use taosd::config::DnodeConfig;
use taosd::coordinator::{Coordinator, DnodeInfo};
use taosd::dnode::Dnode;
use taosd::exec::{Output, Session};
use taosd::rpc::SimTransport;

fn config(dir: &std::path::Path, port: u16) -> DnodeConfig {
    let text = format!(
        "fqdn 127.0.0.1\nserverPort {port}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
        dir.join("data").display(),
        dir.join("log").display()
    );
    DnodeConfig::from_cfg(&CfgFile::parse(&text))
}

fn session() -> Session {
    Session {
        conn_id: 1,
        user: "root".into(),
        superuser: true,
        db: None,
        tz: SessionTz::default(),
        app: "cluster-test".into(),
    }
}

async fn rows(c: &Arc<Coordinator>, s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    match c.execute(s, sql).await {
        Ok(Output::Rows(r)) => r.rows,
        Ok(Output::Affected(n)) => panic!("{sql}: affected {n}, expected rows"),
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn run(c: &Arc<Coordinator>, s: &mut Session, sql: &str) {
    if let Err(e) = c.execute(s, sql).await {
        panic!("{sql}: {e}");
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::BigInt(n) => *n,
        Value::Int(n) => *n as i64,
        Value::SmallInt(n) => *n as i64,
        other => panic!("not an integer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_vnodes_on_two_dnodes() {
    let (d1dir, d2dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (c1, c2) = (config(d1dir.path(), 16030), config(d2dir.path(), 16031));
    let dnode1 = Dnode::open(1, c1.clone(), true).await.expect("dnode 1");
    let dnode2 = Dnode::open(2, c2.clone(), false).await.expect("dnode 2");
    let sim = Arc::new(SimTransport::new([dnode1.clone(), dnode2.clone()]));
    let dnodes = vec![
        DnodeInfo {
            id: 1,
            endpoint: c1.endpoint(),
            support_vnodes: 4,
        },
        DnodeInfo {
            id: 2,
            endpoint: c2.endpoint(),
            support_vnodes: 4,
        },
    ];
    let mnode = dnode1.mnode.clone().expect("dnode 1 hosts the mnode");
    let c = Coordinator::open(c1, mnode.clone(), sim.clone(), dnodes, dnode1.clone())
        .await
        .expect("coordinator");
    let mut s = session();

    run(&c, &mut s, "CREATE DATABASE db VGROUPS 2").await;
    let placed: Vec<u32> = mnode.read(|cat| {
        cat.dbs["db"].vgroups.iter().map(|v| v.dnode_id).collect()
    });
    assert_eq!(placed, vec![1, 2], "one vgroup per dnode");
    assert_eq!((dnode1.vnode_count(), dnode2.vnode_count()), (1, 1));

    run(&c, &mut s, "USE db").await;
    run(
        &c,
        &mut s,
        "CREATE STABLE st (ts TIMESTAMP, v INT) TAGS (t INT, loc VARCHAR(16))",
    )
    .await;
    // 40 child tables, 5 rows each: names hash into both vgroups.
    for t in 0..40 {
        let mut sql = format!("INSERT INTO d{t} USING st TAGS ({t}, 'site{}') VALUES", t % 3);
        for r in 0..5 {
            sql.push_str(&format!(" ({}, {})", 1_700_000_000_000i64 + r, t * 10 + r));
        }
        run(&c, &mut s, &sql).await;
    }
    let vg2 = mnode.read(|cat| cat.dbs["db"].vgroups[1].id);
    let on2 = dnode2.vnode(vg2).expect("vnode on dnode 2");
    let d2_tables = (0..40)
        .filter(|t| on2.table_meta(&format!("d{t}")).is_some())
        .count();
    assert!(
        d2_tables > 0 && d2_tables < 40,
        "both dnodes hold tables ({d2_tables} on dnode 2)"
    );

    let r = rows(&c, &mut s, "SELECT COUNT(*), SUM(v) FROM st").await;
    let want_sum: i64 = (0..40).flat_map(|t| (0..5).map(move |r| t * 10 + r)).sum();
    assert_eq!((int(&r[0][0]), int(&r[0][1])), (200, want_sum));
    let r = rows(&c, &mut s, "SELECT COUNT(*) FROM st WHERE t >= 20 AND loc = 'site1'").await;
    let want = (20..40).filter(|t| t % 3 == 1).count() as i64 * 5;
    assert_eq!(int(&r[0][0]), want);
    let r = rows(&c, &mut s, "SELECT tbname, LAST(v) FROM st PARTITION BY tbname").await;
    assert_eq!(r.len(), 40);
    assert_eq!(rows(&c, &mut s, "SHOW TABLES").await.len(), 40);
    let dn = rows(&c, &mut s, "SHOW DNODES").await;
    assert_eq!(dn.len(), 2);
    assert!(dn.iter().all(|row| row[4] == Value::VarChar("ready".into())));

    // A schema change reaches the vnodes of both dnodes before rows use it.
    run(&c, &mut s, "ALTER STABLE st ADD COLUMN w DOUBLE").await;
    for t in 0..40 {
        run(
            &c,
            &mut s,
            &format!("INSERT INTO d{t} (ts, v, w) VALUES ({}, 1, 0.5)", 1_700_000_001_000i64),
        )
        .await;
    }
    let r = rows(&c, &mut s, "SELECT COUNT(w), SUM(w) FROM st").await;
    assert_eq!(int(&r[0][0]), 40);
    assert_eq!(r[0][1], Value::Double(20.0));

    // Cut dnode 2 off: statements that need it fail with the network error, others still work.
    sim.isolate(2);
    let err = c
        .execute(&mut s, "SELECT COUNT(*) FROM st")
        .await
        .expect_err("dnode 2 is unreachable");
    assert_eq!(err.code & 0xffff, Code::RPC_NETWORK_UNAVAIL.0 as u32, "{err}");
    let dn = rows(&c, &mut s, "SHOW DNODES").await;
    assert_eq!(dn[1][4], Value::VarChar("offline".into()));
    sim.heal(2);
    let r = rows(&c, &mut s, "SELECT COUNT(*) FROM st").await;
    assert_eq!(int(&r[0][0]), 240);

    // Restart both dnodes: each reopens its own vnodes from its own dir.
    drop(c);
    dnode1.shutdown().await;
    dnode2.shutdown().await;
    drop((on2, sim, mnode, dnode1, dnode2));
    let (c1, c2) = (config(d1dir.path(), 16030), config(d2dir.path(), 16031));
    let dnode1 = Dnode::open(1, c1.clone(), true).await.expect("dnode 1 again");
    let dnode2 = Dnode::open(2, c2.clone(), false).await.expect("dnode 2 again");
    let sim = Arc::new(SimTransport::new([dnode1.clone(), dnode2.clone()]));
    let dnodes = vec![
        DnodeInfo {
            id: 1,
            endpoint: c1.endpoint(),
            support_vnodes: 4,
        },
        DnodeInfo {
            id: 2,
            endpoint: c2.endpoint(),
            support_vnodes: 4,
        },
    ];
    let mnode = dnode1.mnode.clone().expect("mnode");
    let c = Coordinator::open(c1, mnode, sim, dnodes, dnode1.clone())
        .await
        .expect("coordinator again");
    let mut s = session();
    let r = rows(&c, &mut s, "SELECT COUNT(*), COUNT(w) FROM db.st").await;
    assert_eq!((int(&r[0][0]), int(&r[0][1])), (240, 40));
    assert_eq!(dnode2.vnode_count(), 1);
}
