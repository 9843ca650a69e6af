//! The official Rust client (crates.io `taos` 0.12, WebSocket only) against the real `taosd` and
//! `taosadapter` binaries. The binaries are found next to this test executable's target dir
//! (`<target>/debug/taosd`, build them first with `cargo build -p taosd -p taosadapter` using the
//! same `CARGO_TARGET_DIR`), or in `$TAOS_BIN_DIR`.
//!
//! crates.io `taos-ws` 0.12.3 connects to the legacy `/rest/ws` and `/rest/stmt` paths and has no
//! `Stmt2`, so this covers query/fetch (binary, version >= 3.3.2.0) and stmt v1.

use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use taos::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("TAOS_BIN_DIR") {
        return PathBuf::from(d);
    }
    // <target>/debug/deps/<test exe>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .expect("target dir")
}

fn wait_for(log: &std::path::Path, needle: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            panic!(
                "exited early ({s}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::fs::read_to_string(log)
            .map(|l| l.contains(needle))
            .unwrap_or(false)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "not ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// taosd + taosadapter on free loopback ports in a temp dir; killed (by PID) on drop.
struct Stack {
    _dir: tempfile::TempDir,
    port: u16,
    children: Vec<Child>,
}

impl Stack {
    fn start() -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let bins = bin_dir();
        for b in ["taosd", "taosadapter"] {
            assert!(
                bins.join(b).exists(),
                "{} missing: build it first",
                bins.join(b).display()
            );
        }
        let taosd_port = free_port();
        let cfg = dir.path().join("cfg");
        std::fs::create_dir_all(&cfg).expect("cfg");
        std::fs::write(
            cfg.join("taos.cfg"),
            format!(
                "fqdn 127.0.0.1\nfirstEp 127.0.0.1:{p}\nserverPort {p}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
                dir.path().join("data").display(),
                dir.path().join("log").display(),
                p = taosd_port
            ),
        )
        .expect("taos.cfg");
        let mut children = Vec::new();
        let log = dir.path().join("taosd.out");
        let mut c = Command::new(bins.join("taosd"))
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn taosd");
        wait_for(&log, "taosd is ready", &mut c);
        children.push(c);
        let port = free_port();
        let log = dir.path().join("adapter.out");
        let mut c = Command::new(bins.join("taosadapter"))
            .arg("--taosConfigDir")
            .arg(&cfg)
            .args(["--host", "127.0.0.1", "-P", &port.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn taosadapter");
        wait_for(&log, "taosadapter is ready", &mut c);
        children.push(c);
        Stack {
            _dir: dir,
            port,
            children,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_rust_client_query_and_stmt() {
    let stack = Stack::start();
    let dsn = format!("ws://root:taosdata@127.0.0.1:{}", stack.port);
    let taos = TaosBuilder::from_dsn(&dsn)
        .expect("dsn")
        .build()
        .await
        .expect("connect");
    assert!(taos
        .server_version()
        .await
        .expect("server_version")
        .starts_with("3."));
    taos.exec_many([
        "create database if not exists rsdb precision 'ms'",
        "use rsdb",
        "create stable st (ts timestamp, b bool, ti tinyint, si smallint, i int, bi bigint, \
         uti tinyint unsigned, usi smallint unsigned, ui int unsigned, ubi bigint unsigned, \
         f float, d double, vc varchar(20), nc nchar(10), vb varbinary(16), g geometry(64)) tags (info json)",
    ])
    .await
    .expect("ddl");
    let n = taos
        .exec(
            "insert into t1 using st tags ('{\"k\":\"v\"}') values \
             (1700000000123, true, -128, -32768, -2147483648, -9223372036854775808, 255, 65535, 4294967295, \
             18446744073709551615, 10.5, 2.718281828459045, 'hello', '温度', '\\x7f8290', 'point(1 2)') \
             (1700000001000, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)",
        )
        .await
        .expect("insert");
    assert_eq!(n, 2);

    // Typed rows through serde.
    #[derive(Debug, Deserialize)]
    struct Row {
        ts: i64,
        b: Option<bool>,
        ti: Option<i8>,
        si: Option<i16>,
        i: Option<i32>,
        bi: Option<i64>,
        uti: Option<u8>,
        usi: Option<u16>,
        ui: Option<u32>,
        ubi: Option<u64>,
        f: Option<f32>,
        d: Option<f64>,
        vc: Option<String>,
        nc: Option<String>,
    }
    let mut rs = taos
        .query("select ts, b, ti, si, i, bi, uti, usi, ui, ubi, f, d, vc, nc from st order by ts")
        .await
        .expect("query");
    let names: Vec<String> = rs.fields().iter().map(|f| f.name().to_string()).collect();
    assert_eq!(names[0], "ts");
    assert_eq!(rs.fields()[13].ty(), Ty::NChar);
    let rows: Vec<Row> = rs.deserialize::<Row>().try_collect().await.expect("rows");
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.ts, 1700000000123);
    assert_eq!(
        (r.b, r.ti, r.si, r.i, r.bi, r.uti, r.usi, r.ui, r.ubi),
        (
            Some(true),
            Some(-128),
            Some(-32768),
            Some(i32::MIN),
            Some(i64::MIN),
            Some(255),
            Some(65535),
            Some(u32::MAX),
            Some(u64::MAX)
        )
    );
    assert_eq!((r.f, r.d), (Some(10.5), Some(std::f64::consts::E)));
    assert_eq!(
        (r.vc.as_deref(), r.nc.as_deref()),
        (Some("hello"), Some("温度"))
    );
    let n = &rows[1];
    assert!(n.b.is_none() && n.i.is_none() && n.vc.is_none() && n.nc.is_none() && n.f.is_none());

    // Raw values: VARBINARY, GEOMETRY, JSON tag.
    let mut rs = taos
        .query("select vb, g, info from st order by ts")
        .await
        .expect("query");
    let mut values = Vec::new();
    let mut rows = rs.rows();
    while let Some(row) = rows.try_next().await.expect("row") {
        let row: Vec<Value> = row.into_iter().map(|(_, v)| v.to_value()).collect();
        values.push(row);
    }
    assert_eq!(values.len(), 2);
    match &values[0][0] {
        Value::VarBinary(b) => assert_eq!(&b[..], &[0x7f, 0x82, 0x90]),
        other => panic!("varbinary: {other:?}"),
    }
    match &values[0][1] {
        Value::Geometry(b) => assert_eq!(b.len(), 21),
        other => panic!("geometry: {other:?}"),
    }
    match &values[0][2] {
        Value::Json(j) => assert_eq!(j["k"], "v"),
        other => panic!("json: {other:?}"),
    }
    assert!(values[1][0].is_null() && values[1][1].is_null());

    // A large result in many blocks.
    taos.exec("create table big (ts timestamp, v bigint)")
        .await
        .expect("big");
    for k in 0..5i64 {
        let vals: Vec<String> = (0..10_000i64)
            .map(|i| {
                format!(
                    "({}, {})",
                    1_700_000_000_000 + k * 10_000 + i,
                    k * 10_000 + i
                )
            })
            .collect();
        taos.exec(format!("insert into big values {}", vals.join(" ")))
            .await
            .expect("insert big");
    }
    let mut rs = taos
        .query("select ts, v from big")
        .await
        .expect("query big");
    let all: Vec<(i64, i64)> = rs
        .deserialize::<(i64, i64)>()
        .try_collect()
        .await
        .expect("big rows");
    assert_eq!(all.len(), 50_000);
    assert_eq!(
        all.iter().map(|r| r.1).sum::<i64>(),
        (0..50_000).sum::<i64>()
    );

    // Stmt (v1): two child tables, 1000 rows each, NULLs and NCHAR.
    taos.exec("create stable meters (ts timestamp, current float, voltage int, note nchar(8)) tags (groupid int, location varchar(24))")
        .await
        .expect("meters");
    let mut stmt = Stmt::init(&taos).await.expect("stmt init");
    stmt.prepare("insert into ? using meters tags (?, ?) values (?, ?, ?, ?)")
        .await
        .expect("prepare");
    for t in 0..2i32 {
        stmt.set_tbname(&format!("d{t}")).await.expect("tbname");
        stmt.set_tags(&[Value::Int(t), Value::VarChar(format!("loc{t}"))])
            .await
            .expect("tags");
        let ts: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i).collect();
        let cur: Vec<Option<f32>> = (0..1000)
            .map(|i| if i == 0 { None } else { Some(1.5) })
            .collect();
        let volt: Vec<i32> = (0..1000).collect();
        let note: Vec<&str> = vec!["温度"; 1000];
        stmt.bind(&[
            ColumnView::from_millis_timestamp(ts),
            ColumnView::from_floats(cur),
            ColumnView::from_ints(volt),
            ColumnView::from_nchar(note),
        ])
        .await
        .expect("bind");
        stmt.add_batch().await.expect("add_batch");
    }
    let n = stmt.execute().await.expect("execute");
    assert_eq!(n, 2000);
    let c: Option<(i64, i64, i64)> = taos
        .query_one("select count(*), sum(voltage), count(current) from meters")
        .await
        .expect("count");
    assert_eq!(c, Some((2000, 2 * (0..1000).sum::<i64>(), 1998)));
    let loc: Option<(String, String)> = taos
        .query_one("select location, note from d1 limit 1")
        .await
        .expect("loc");
    assert_eq!(loc, Some(("loc1".to_string(), "温度".to_string())));

    // Errors carry TDengine's codes and the connection stays usable.
    let e = taos.exec("selec 1").await.unwrap_err();
    assert_eq!(e.code(), Code::new(0x2600), "{e}");
    assert!(taos.query("select * from no_such_table").await.is_err());
    let bad = TaosBuilder::from_dsn(format!("ws://root:wrong@127.0.0.1:{}", stack.port))
        .expect("dsn")
        .build()
        .await;
    // The client may connect lazily: the wrong password fails at build or at first use.
    if let Ok(bad) = bad {
        let e = bad
            .exec("select 1")
            .await
            .expect_err("wrong password accepted");
        assert!(e.to_string().contains("Authentication failure"), "{e}");
    }
    let c: Option<i64> = taos
        .query_one("select count(*) from big")
        .await
        .expect("count");
    assert_eq!(c, Some(50_000));
}

/// TMQ through `/rest/tmq` with crates.io `taos` 0.12 (legacy `fetch` + `fetch_block` path):
/// every row of a stable topic, commits, committed offsets and assignments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_rust_client_consumer() {
    let stack = Stack::start();
    let dsn = format!("ws://root:taosdata@127.0.0.1:{}", stack.port);
    let taos = TaosBuilder::from_dsn(&dsn)
        .expect("dsn")
        .build()
        .await
        .expect("connect");
    taos.exec_many([
        "create database rtmq vgroups 2",
        "create stable rtmq.meters (ts timestamp, current float, v int) tags (gid int)",
    ])
    .await
    .expect("ddl");
    for t in 0..4 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, {i}.5, {i})", 1_700_000_000_000i64 + i))
            .collect();
        taos.exec(format!(
            "insert into rtmq.d{t} using rtmq.meters tags ({t}) values {}",
            values.join(" ")
        ))
        .await
        .expect("insert");
    }
    taos.exec("create topic rtp as stable rtmq.meters")
        .await
        .expect("topic");
    let tmq = TmqBuilder::from_dsn(format!(
        "{dsn}?group.id=rg&client.id=rust&auto.offset.reset=earliest&enable.auto.commit=false"
    ))
    .expect("tmq dsn");
    let mut consumer = tmq.build().await.expect("consumer");
    consumer.subscribe(["rtp"]).await.expect("subscribe");
    let mut rows = 0;
    let mut vgroups = std::collections::BTreeSet::new();
    while rows < 400 {
        let Some((offset, message)) = consumer
            .recv_timeout(Timeout::from_secs(3))
            .await
            .expect("poll")
        else {
            break;
        };
        assert_eq!(offset.topic(), "rtp");
        assert_eq!(offset.database(), "rtmq");
        vgroups.insert(offset.vgroup_id());
        if let Some(data) = message.into_data() {
            while let Some(block) = data.fetch_raw_block().await.expect("block") {
                assert_eq!(block.ncols(), 3);
                rows += block.nrows();
            }
        }
        consumer.commit(offset).await.expect("commit");
    }
    assert_eq!(rows, 400);
    assert_eq!(vgroups.len(), 2);
    let assignments = consumer.assignments().await.expect("assignments");
    assert_eq!(assignments.len(), 1);
    for a in &assignments[0].1 {
        let committed = consumer
            .committed("rtp", a.vgroup_id())
            .await
            .expect("committed");
        assert_eq!(committed, a.current_offset(), "{a:?}");
    }
    consumer.unsubscribe().await;
}
