//! The OPC-UA source against a server we did not write (PyPI asyncua, `support/opcua_server.py`)
//! with real taosd, taosx and agent processes: subscription in taosx, polling in an agent, a
//! server restart mid-run, `taosx run`, and a SignAndEncrypt (Basic256Sha256) channel with
//! username and X.509 user logins.

mod support;

use common::Value;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{free_port, python, Proc, Stack};

/// The asyncua server on `port` with `count` variables changing every 200 ms.
fn opc_server(py: &Path, dir: &Path, port: u16, count: usize, extra: &[&str]) -> Proc {
    let log = dir.join(format!(
        "opcua-{port}-{}.out",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    ));
    let mut p = Proc::spawn(
        Command::new(py)
            .arg(support::manifest_dir().join("tests/support/opcua_server.py"))
            .arg(port.to_string())
            .arg(count.to_string())
            .args(extra),
        log,
    );
    p.wait_log("READY", Duration::from_secs(90));
    p
}

fn create_task(s: &Stack, body: serde_json::Value) -> String {
    let (status, t) = s.api("POST", "/api/v1/tasks", Some(&body));
    assert_eq!(status, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

fn task(s: &Stack, id: &str) -> serde_json::Value {
    s.api("GET", &format!("/api/v1/tasks/{id}"), None).1
}

/// Values as the subscription mapping writes them: source timestamp, value, quality; tags
/// node id, browse name, type and node attributes.
fn sub_mapping() -> serde_json::Value {
    json!({
        "stable": "opc_sub",
        "table": "t_{id}",
        "ts": {"field": "source_ts"},
        "columns": [
            {"name": "val", "type": "DOUBLE", "field": "value"},
            {"name": "quality", "type": "BIGINT"}
        ],
        "tags": [
            {"name": "node", "type": "VARCHAR(64)", "field": "node_id"},
            {"name": "pname", "type": "VARCHAR(64)", "field": "name"},
            {"name": "vtype", "type": "VARCHAR(16)", "field": "type"},
            {"name": "dname", "type": "VARCHAR(64)", "field": "DisplayName"},
            {"name": "descr", "type": "NCHAR(64)", "field": "Description"},
            {"name": "path", "type": "VARCHAR(128)", "field": "Path"}
        ]
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::VarChar(s) | Value::NChar(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Wait until `count(*)` of `from` exceeds `above`.
fn wait_above(s: &Stack, from: &str, above: i64, within: Duration) -> i64 {
    s.wait_count(from, above + 1, within)
}

#[test]
fn opcua_subscribe_in_taosx_poll_in_agent_and_server_restart() {
    let Some(py) = python() else { return };
    let s = Stack::start();
    let port = free_port();
    let mut server = opc_server(&py, s.dir.path(), port, 300, &[]);

    // Subscription inside taosx: every variable under Plant, found by browsing.
    let sub = create_task(
        &s,
        json!({
            "name": "opc-sub",
            "from": format!("opcua://127.0.0.1:{port}/taos/test?root=ns=2;s=Plant&name_regex=^v&sampling=100ms&interval=200ms"),
            "to": "taos:///plant",
            "mapping": sub_mapping(),
        }),
    );
    // A deadband: v3 moves by 0.001 a tick, so an absolute deadband of 0.5 reports only the
    // first value for the whole test while the task above gets every change.
    let _deadband = create_task(
        &s,
        json!({
            "name": "opc-deadband",
            "from": format!("opcua://127.0.0.1:{port}/taos/test?nodes=ns=2;s=v3&sampling=100ms&interval=200ms&deadband=0.5&deadband_type=absolute"),
            "to": "taos:///plant",
            "mapping": {
                "stable": "opc_deadband", "table": "d_{id}",
                "columns": [{"name": "val", "type": "DOUBLE", "field": "value"}],
                "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
            },
        }),
    );

    // Polling inside an agent: two listed nodes every 500 ms, arrival time as timestamp, one
    // super table per value type as taosX names them (`opc_{type}`), created by taosx when the
    // first rows of each type arrive from the agent, and a value transform.
    let (status, a) = s.api("POST", "/api/v1/agents", Some(&json!({"name": "opc-edge"})));
    assert_eq!(status, 201, "{a}");
    let agent_id = a["id"].as_str().unwrap().to_string();
    let mut agent = s.agent("opc-agent", a["token"].as_str().unwrap());
    agent.wait_log("connected to taosx", Duration::from_secs(20));
    let poll = create_task(
        &s,
        json!({
            "name": "opc-poll",
            "from": format!("opc.tcp://127.0.0.1:{port}/taos/test?nodes=ns=2;s=v1,ns=2;s=v19&mode=poll&interval=500ms"),
            "to": "taos:///plant",
            "agent": agent_id,
            "mapping": {
                "stable": "opc_{type}",
                "table": "p_{id}",
                "columns": [
                    {"name": "val", "type": "{type}", "field": "value", "transform": "val*2"},
                    {"name": "quality", "type": "INT"}
                ],
                "tags": [
                    {"name": "node", "type": "VARCHAR(64)", "field": "node_id"},
                    {"name": "descr", "type": "VARCHAR(64)", "field": "description"}
                ]
            },
        }),
    );

    // Every one of the 300 variables gets its table; values keep arriving.
    let t0 = Instant::now();
    for t in ["t_v0", "t_v3", "t_v9", "t_v150", "t_v299"] {
        assert!(
            s.wait_count(&format!("plant.{t}"), 3, Duration::from_secs(90)) >= 3,
            "no rows in {t}; task: {}\ntaosx log:\n{}",
            task(&s, &sub),
            s.taosx.log()
        );
    }
    assert!(
        s.wait_count("plant.opc_sub", 900, Duration::from_secs(60)) >= 900,
        "{}",
        task(&s, &sub)
    );
    eprintln!("subscription: 300 tables filled in {:?}", t0.elapsed());
    // Tags from the node; the Int32 variable is typed int, the others double.
    let r = s.rows("SELECT node, pname, vtype FROM plant.t_v9 LIMIT 1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (text(&r[0][0]), text(&r[0][1]), text(&r[0][2])),
        ("ns=2;s=v9".into(), "v9".into(), "int".into())
    );
    let r = s.rows("SELECT vtype, dname, descr, path FROM plant.t_v3 LIMIT 1");
    assert_eq!(
        r[0].iter().map(text).collect::<Vec<_>>(),
        ["double", "Sensor 3", "variable 3 of the plant", "Plant/v3"]
    );
    // Values and source timestamps: v9 is 9000 + tick, v3 is 3 + tick/1000; quality Good.
    let r = s.rows("SELECT ts, val, quality FROM plant.t_v9 ORDER BY ts DESC LIMIT 1");
    let (ts, val) = (r[0][0].as_i64().unwrap(), r[0][1].as_f64().unwrap());
    assert!(val >= 9000.0 && val.fract() == 0.0, "{val}");
    assert!(
        (now_ms() - ts).abs() < 60_000,
        "source ts {ts} far from now"
    );
    assert_eq!(r[0][2].as_i64(), Some(0));
    let r = s.rows("SELECT val FROM plant.t_v3 ORDER BY ts DESC LIMIT 1");
    let v3 = r[0][0].as_f64().unwrap();
    assert!((3.0..4000.0).contains(&v3), "{v3}");

    // The preview shows what a browse filter selects before a task exists, with current
    // values and the tables a mapping would write.
    let (status, p) = s.api(
        "POST",
        "/api/v1/preview",
        Some(&json!({
            "from": format!("opcua://127.0.0.1:{port}/taos/test?root=ns=2;s=Plant&name_regex=^v1"),
            "mapping": {"stable": "opc_{type}", "table": "t_{id}",
                        "columns": [{"name": "val", "type": "{type}", "field": "value"}],
                        "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]},
            "limit": 1000
        })),
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["total"], 111, "v1, v10-v19, v100-v199: {p}");
    let v19 = p["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["node_id"] == "ns=2;s=v19")
        .unwrap_or_else(|| panic!("no v19 in {p}"));
    assert_eq!(
        (
            &v19["type"],
            &v19["stable"],
            &v19["table"],
            &v19["path"],
            &v19["quality"]
        ),
        (
            &json!("int"),
            &json!("opc_int"),
            &json!("t_v19"),
            &json!("Plant/v19"),
            &json!("Good")
        ),
        "{v19}"
    );
    assert!(v19["value"].as_i64() >= Some(19_000), "{v19}");
    let (status, p) = s.api(
        "POST",
        "/api/v1/preview",
        Some(&json!({"from": format!("opcua://127.0.0.1:{port}/taos/test?root=ns=2;s=Plant&name_regex=^nothing$")})),
    );
    assert_eq!(status, 400, "{p}");
    assert!(
        p["error"].as_str().unwrap_or("").contains("no point"),
        "{p}"
    );

    // Polling in the agent.
    for t in ["p_v1", "p_v19"] {
        assert!(
            s.wait_count(&format!("plant.{t}"), 4, Duration::from_secs(60)) >= 4,
            "no polled rows in {t}: {}\nagent log:\n{}",
            task(&s, &poll),
            agent.log()
        );
    }
    let r = s.rows("SELECT node, descr FROM plant.p_v19 LIMIT 1");
    assert_eq!(
        (text(&r[0][0]), text(&r[0][1])),
        ("ns=2;s=v19".into(), "variable 19 of the plant".into())
    );
    // v1 is a Double, v19 an Int32: each went to the super table of its type, whose value
    // column has that type.
    let tables = |stb: &str| {
        s.rows(&format!(
            "SELECT table_name FROM information_schema.ins_tables WHERE db_name = 'plant' AND stable_name = '{stb}' ORDER BY table_name"
        ))
        .iter()
        .map(|r| text(&r[0]))
        .collect::<Vec<_>>()
    };
    assert_eq!(tables("opc_double"), ["p_v1"]);
    assert_eq!(tables("opc_int"), ["p_v19"]);
    let val_type = |stb: &str| {
        s.rows(&format!("DESCRIBE plant.{stb}"))
            .iter()
            .find(|r| text(&r[0]) == "val")
            .map(|r| text(&r[1]))
            .unwrap_or_default()
    };
    assert_eq!(
        (val_type("opc_double"), val_type("opc_int")),
        ("DOUBLE".into(), "INT".into())
    );
    // The agent applied the value transform (`val*2`) to v19 = 19000 + tick.
    let r = s.rows("SELECT val FROM plant.p_v19 ORDER BY ts DESC LIMIT 1");
    assert!(
        matches!(r[0][0], Value::Int(v) if v >= 38_000 && v % 2 == 0),
        "{r:?}"
    );

    assert_eq!(s.wait_count("plant.d_v3", 1, Duration::from_secs(30)), 1);
    let changes = s.wait_count("plant.t_v3", 10, Duration::from_secs(30));
    assert!(changes >= 10, "{changes}");
    assert_eq!(
        s.count("plant.d_v3"),
        1,
        "the deadband let a change through"
    );

    // The server restarts: both tasks reconnect, subscribe again, and values keep arriving.
    server.kill9();
    std::thread::sleep(Duration::from_secs(3));
    let sub_before = s.count("plant.t_v3");
    let poll_before = s.count("plant.p_v1");
    let _server = opc_server(&py, s.dir.path(), port, 300, &[]);
    let restarted = Instant::now();
    assert!(
        wait_above(&s, "plant.t_v3", sub_before + 10, Duration::from_secs(90)) > sub_before + 10,
        "subscription did not resume: {}\ntaosx log:\n{}",
        task(&s, &sub),
        s.taosx.log()
    );
    let n299 = s.count("plant.t_v299");
    assert!(
        wait_above(&s, "plant.t_v299", n299 + 5, Duration::from_secs(60)) > n299 + 5,
        "not every item resubscribed"
    );
    assert!(
        wait_above(&s, "plant.p_v1", poll_before + 4, Duration::from_secs(90)) > poll_before + 4,
        "polling did not resume: {}\nagent log:\n{}",
        task(&s, &poll),
        agent.log()
    );
    eprintln!(
        "after the restart, values again within {:?}",
        restarted.elapsed()
    );
    let t = task(&s, &sub);
    assert_eq!(t["metrics"]["source_connected"], true, "{t}");
    assert!(t["metrics"]["rows_written"].as_u64() > Some(900), "{t}");

    // The same source as a one-off `taosx run` job, stopped with Ctrl-C.
    let mapping = json!({
        "stable": "opc_run", "table": "r_{id}", "ts": {"field": "server_ts"},
        "columns": [{"name": "val", "type": "DOUBLE", "field": "value"}],
        "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
    });
    let run = Command::new(support::bin("taosx"))
        .args(["run", "-f"])
        .arg(format!(
            "opcua://127.0.0.1:{port}/taos/test?nodes=ns=2;s=v5&mode=poll&interval=300ms"
        ))
        .args([
            "-t",
            &format!("taos://root:taosdata@127.0.0.1:{}/plant", s.taosd_port),
        ])
        .args(["--parser", &mapping.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(s.wait_count("plant.r_v5", 3, Duration::from_secs(60)) >= 3);
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let out = run.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("rows written"),
        "{text}"
    );
}

#[test]
fn opcua_sign_and_encrypt_with_username() {
    let Some(py) = python() else { return };
    let s = Stack::start();
    let port = free_port();
    let server_pki = s.dir.path().join("server-pki");
    let server_pki = server_pki.display().to_string();
    let _server = opc_server(
        &py,
        s.dir.path(),
        port,
        50,
        &["--secure", &server_pki, "--user", "op:s3cret"],
    );
    let dsn = |user: &str, extra: &str| {
        format!(
            "opcua://{user}@127.0.0.1:{port}/taos/test?security_mode=SignAndEncrypt&security_policy=Basic256Sha256\
             &nodes=ns=2;s=v1,ns=2;s=v2,ns=2;s=v9&sampling=100ms&interval=200ms&connect_timeout=60s{extra}"
        )
    };
    let mapping = {
        let mut m = sub_mapping();
        m["stable"] = json!("opc_secure");
        m["table"] = json!("s_{id}");
        m
    };
    let good = create_task(
        &s,
        json!({"name": "secure", "from": dsn("op:s3cret", ""), "to": "taos:///plant", "mapping": mapping}),
    );
    let t0 = Instant::now();
    assert!(
        s.wait_count("plant.s_v9", 5, Duration::from_secs(120)) >= 5,
        "{}\ntaosx log:\n{}",
        task(&s, &good),
        s.taosx.log()
    );
    eprintln!(
        "SignAndEncrypt: first values after {:?} (client key made on first use)",
        t0.elapsed()
    );
    let r = s.rows("SELECT val, vtype FROM plant.s_v9 ORDER BY ts DESC LIMIT 1");
    assert!(r[0][0].as_f64().unwrap() >= 9000.0, "{r:?}");
    assert_eq!(text(&r[0][1]), "int");
    // The client certificate an operator would trust, made once under taosx's task data.
    let pki = s.dir.path().join("taosx/tasks/opcua-pki");
    assert!(
        pki.join("own/cert.der").exists(),
        "no client certificate in {}",
        pki.display()
    );
    assert!(pki.join("private/private.pem").exists());

    // X.509 user identity: the client's own certificate (made above) signs the token. The
    // points come from a CSV point list in taosX's format: each row names its super table and
    // subtable (templates) and a tag; v3 is disabled; v2 is read as FLOAT.
    let list = s.dir.path().join("points.csv");
    std::fs::write(
        &list,
        "\u{feff}point_id,stable,tbname,type,tag::VARCHAR(32)::location,enable\n\
         ns=2;s=v9,opc_{type},x_{id},,hall 9,1\n\
         ns=2;s=v2,opc_{type},x_{ns}_{id},float,hall 2,1\n\
         ns=2;s=v3,opc_{type},x_{id},,hall 3,0\n",
    )
    .unwrap();
    let x509 = create_task(
        &s,
        json!({"name": "x509", "from": dsn("", &format!("&auth=certificate&points={}", list.display()))
                .replace("opcua://@", "opcua://").replace("nodes=ns=2;s=v1,ns=2;s=v2,ns=2;s=v9&", ""),
               "to": "taos:///plant", "mapping": {
            "stable": "{stable}", "table": "{tbname}",
            "columns": [{"name": "val", "type": "{type}", "field": "value"}],
            "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"},
                     {"name": "location", "type": "VARCHAR(32)"}]
        }}),
    );
    for t in ["plant.x_v9", "plant.x_2_v2"] {
        assert!(
            s.wait_count(t, 3, Duration::from_secs(60)) >= 3,
            "{t}: {}\ntaosx log:\n{}",
            task(&s, &x509),
            s.taosx.log()
        );
    }
    let r = s.rows("SELECT val, location FROM plant.x_v9 LIMIT 1");
    assert!(matches!(r[0][0], Value::Int(v) if v >= 9000), "{r:?}");
    assert_eq!(text(&r[0][1]), "hall 9");
    let r = s.rows("SELECT val, location FROM plant.x_2_v2 LIMIT 1");
    assert!(matches!(r[0][0], Value::Float(_)), "{r:?}");
    assert_eq!(text(&r[0][1]), "hall 2");
    let r = s.rows(
        "SELECT stable_name FROM information_schema.ins_tables WHERE db_name = 'plant' AND table_name IN ('x_v9', 'x_2_v2', 'x_v3') ORDER BY table_name",
    );
    assert_eq!(
        r.iter().map(|r| text(&r[0])).collect::<Vec<_>>(),
        ["opc_float", "opc_int"],
        "v3 is disabled"
    );

    // Sign without encryption, same login.
    let sign = create_task(
        &s,
        json!({"name": "sign", "from": dsn("op:s3cret", "").replace("SignAndEncrypt", "Sign"),
               "to": "taos:///plant", "mapping": {
            "stable": "opc_sign", "table": "g_{id}",
            "columns": [{"name": "val", "type": "DOUBLE", "field": "value"}],
            "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
        }}),
    );
    assert!(
        s.wait_count("plant.g_v1", 3, Duration::from_secs(60)) >= 3,
        "{}\ntaosx log:\n{}",
        task(&s, &sign),
        s.taosx.log()
    );

    // A wrong password never writes and says why.
    let bad = create_task(
        &s,
        json!({"name": "bad-login", "from": dsn("op:wrong", "").replace("nodes=ns=2;s=v1,ns=2;s=v2,", "nodes="), "to": "taos:///plant", "mapping": {
            "stable": "opc_bad", "table": "b_{id}",
            "columns": [{"name": "val", "type": "DOUBLE", "field": "value"}],
            "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
        }}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = task(&s, &bad);
        if t["metrics"]["errors"].as_u64() >= Some(1) {
            assert_eq!(t["metrics"]["rows_written"], 0, "{t}");
            let why = t["metrics"]["last_error"].as_str().unwrap_or("");
            assert!(why.contains("Bad"), "{t}");
            eprintln!("wrong password: {why}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no error for a wrong password: {t}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // An unsupported definition is refused when the task is created.
    let (status, e) = s.api(
        "POST",
        "/api/v1/tasks",
        Some(&json!({"name": "x", "from": format!("opcua://127.0.0.1:{port}?security_mode=Sign&security_policy=None"), "to": "taos:///plant", "mapping": sub_mapping()})),
    );
    assert_eq!(status, 400, "{e}");
}

/// A primary endpoint that is down, then a sink that stops answering (taosd paused) while the
/// server keeps reporting: the collector
/// keeps at most `backlog` values, counts the ones it lets go, stays up, and writes again once
/// taosd answers.
#[test]
fn opcua_slow_sink_keeps_memory_bounded() {
    let Some(py) = python() else { return };
    let s = Stack::start();
    let port = free_port();
    let _server = opc_server(&py, s.dir.path(), port, 100, &[]);
    let mut mapping = sub_mapping();
    mapping["stable"] = json!("opc_slow");
    let id = create_task(
        &s,
        json!({
            "name": "slow-sink",
            // The first endpoint has no server: the task goes on to the failover one.
            "from": format!("opcua://127.0.0.1:{}/taos/test?failover=127.0.0.1:{port}/taos/test&root=ns=2;s=Plant&sampling=100ms&interval=200ms&backlog=200", free_port()),
            "to": "taos:///plant",
            "mapping": mapping,
        }),
    );
    assert!(
        s.wait_count("plant.opc_slow", 200, Duration::from_secs(60)) >= 200,
        "{}",
        task(&s, &id)
    );
    let pid = s.taosd.child.as_ref().unwrap().id() as i32;
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // 100 variables every 200 ms: the 200-value backlog is full within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let dropped = loop {
        let t = task(&s, &id);
        let d = t["metrics"]["dropped_points"].as_u64().unwrap_or(0);
        if d > 0 {
            break d;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGCONT) };
            panic!("nothing dropped while taosd was paused: {t}");
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    unsafe { libc::kill(pid, libc::SIGCONT) };
    eprintln!("taosd paused: {dropped} values dropped");
    let before = s.count("plant.opc_slow");
    assert!(
        wait_above(&s, "plant.opc_slow", before + 500, Duration::from_secs(90)) > before + 500,
        "no writes after taosd answered again: {}\ntaosx log:\n{}",
        task(&s, &id),
        s.taosx.log()
    );
    let t = task(&s, &id);
    assert_eq!(t["status"], "running", "{t}");
    // The drops stay counted after the sink recovers.
    assert!(
        t["metrics"]["dropped_points"].as_u64() >= Some(dropped),
        "{t}"
    );
}

/// taosX's dynamic point update: variables added to the server while tasks run are collected
/// after the next rescan, by a subscription (update: the deleted v0 is dropped) and by polling
/// (append).
#[test]
fn opcua_point_update_follows_the_address_space() {
    let Some(py) = python() else { return };
    let s = Stack::start();
    let port = free_port();
    let mut server = opc_server(&py, s.dir.path(), port, 20, &["--grow-after", "3"]);
    let task_for = |name: &str, extra: &str, table: &str| {
        let mut mapping = sub_mapping();
        mapping["stable"] = json!(format!("opc_{name}"));
        mapping["table"] = json!(table);
        create_task(
            &s,
            json!({
                "name": name,
                "from": format!("opcua://127.0.0.1:{port}/taos/test?root=ns=2;s=Plant&sampling=100ms&interval=200ms&rescan=2s{extra}"),
                "to": "taos:///plant",
                "mapping": mapping,
            }),
        )
    };
    let sub = task_for("grow_sub", "&point_update=update", "u_{id}");
    let poll = task_for("grow_poll", "&point_update=append&mode=poll", "q_{id}");
    server.wait_log("GREW", Duration::from_secs(30));
    for t in ["u_n0", "u_n4", "q_n0", "q_n4"] {
        assert!(
            s.wait_count(&format!("plant.{t}"), 2, Duration::from_secs(60)) >= 2,
            "{t} not collected after the rescan: {} {}\ntaosx log:\n{}",
            task(&s, &sub),
            task(&s, &poll),
            s.taosx.log()
        );
    }
    // The log's colour codes out, then the subscription's rescan: 5 new items, v0 dropped.
    let mut log = String::new();
    let mut in_escape = false;
    for c in s.taosx.log().chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => log.push(c),
        }
    }
    assert!(
        log.lines()
            .any(|l| l.contains("OPC-UA points rescanned") && l.contains("added=5 removed=1")),
        "{log}"
    );
    let r = s.rows("SELECT path FROM plant.u_n3 LIMIT 1");
    assert_eq!(text(&r[0][0]), "Plant/n3");
}
