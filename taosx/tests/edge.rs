//! The edge link end to end with real processes: paho-mqtt publishers -> mosquitto -> MQTT
//! collector (in an agent or in taosx) -> SQLite buffer -> QUIC -> taosx -> taosd. Faults:
//! an agent killed with SIGKILL, taosx killed mid-batch, taosx stopped for 60 s while
//! publishing goes on: every point arrives exactly once.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{mapping, publish, python, Stack};

fn create_agent(s: &Stack, name: &str) -> (String, String) {
    let (status, a) = s.api("POST", "/api/v1/agents", Some(&json!({ "name": name })));
    assert_eq!(status, 201, "{a}");
    (
        a["id"].as_str().unwrap().to_string(),
        a["token"].as_str().unwrap().to_string(),
    )
}

fn create_task(s: &Stack, name: &str, topic: &str, agent: Option<&str>) -> String {
    let body = json!({
        "name": name,
        "from": format!("mqtt://127.0.0.1:{}?topics={topic}::1&client_id=c-{name}", s.mqtt_port),
        "to": "taos:///edge",
        "mapping": mapping(),
        "agent": agent,
    });
    let (status, t) = s.api("POST", "/api/v1/tasks", Some(&body));
    assert_eq!(status, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

fn task(s: &Stack, id: &str) -> serde_json::Value {
    let (status, t) = s.api("GET", &format!("/api/v1/tasks/{id}"), None);
    assert_eq!(status, 200, "{t}");
    t
}

/// Run `body` (Python with a connected paho client `c` and `json`) against the broker.
fn paho(py: &std::path::Path, port: u16, client_id: &str, body: &str) {
    let script = format!(
        "import json\nimport paho.mqtt.client as mqtt\n\
         c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=\"{client_id}\")\n\
         c.connect(\"127.0.0.1\", {port})\nc.loop_start()\n{body}\nc.loop_stop(); c.disconnect()\n"
    );
    let mut c = std::process::Command::new(py)
        .args(["-c", &script])
        .spawn()
        .unwrap();
    assert!(c.wait().unwrap().success(), "{script}");
}

#[test]
fn mqtt_through_agent_and_taosx_with_bad_input() {
    let Some(py) = python() else { return };
    let mut s = Stack::start();
    let (agent_id, token) = create_agent(&s, "field-1");
    let mut agent = s.agent("a1", &token);
    agent.wait_log("connected to taosx", Duration::from_secs(20));
    let on_agent = create_task(&s, "via-agent", "site/+/+", Some(&agent_id));
    agent.wait_log("MQTT connected", Duration::from_secs(20));
    // A task running inside taosx itself, on other topics, into the same super table.
    let body = json!({
        "name": "in-taosx",
        "from": format!("mqtt://127.0.0.1:{}?topics=plant/%23::1&version=5", s.mqtt_port),
        "to": "taos:///edge",
        "mapping": mapping(),
    });
    let (status, t) = s.api("POST", "/api/v1/tasks", Some(&body));
    assert_eq!(status, 201, "{t}");
    let local = t["id"].as_str().unwrap().to_string();
    s.taosx
        .wait_log("MQTT 5 connected", Duration::from_secs(20));

    let out = s.dir.path().join("pub1.out");
    let mut p = publish(&py, s.mqtt_port, 2000, 20, 0, 1_700_000_000_000, &out);
    assert!(p.wait().unwrap().success());
    assert_eq!(
        s.wait_count("edge.sensors", 2000, Duration::from_secs(60)),
        2000
    );
    // Devices 1, 4, ..., 19 publish on site/s1/...: 7 devices x 100 points, tagged from the topic.
    assert_eq!(s.count("edge.sensors WHERE site = 's1'"), 700);
    // The in-taosx task: 500 points on plant/... topics (paho, MQTT 3.1.1 publisher).
    paho(
        &py,
        s.mqtt_port,
        "pub-plant",
        r#"
ms = [c.publish(f"plant/p{i % 5}", json.dumps({"id": 1000 + i % 5, "ts": 1700001000000 + i, "v": i, "temp": 1.5}), qos=1) for i in range(500)]
for m in ms: m.wait_for_publish(60)
# Bad payloads: not JSON, and a point without its id.
c.publish("plant/bad", "this is not json", qos=1).wait_for_publish(60)
c.publish("plant/bad", json.dumps({"ts": 1, "v": 1}), qos=1).wait_for_publish(60)
"#,
    );
    assert_eq!(
        s.wait_count("edge.sensors", 2500, Duration::from_secs(60)),
        2500
    );
    // Status and metrics.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = task(&s, &local);
        if t["metrics"]["errors"].as_u64() >= Some(2) {
            assert_eq!(t["metrics"]["rows_written"], 500, "{t}");
            assert!(t["metrics"]["last_error"].as_str().is_some(), "{t}");
            break;
        }
        assert!(Instant::now() < deadline, "errors not counted: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let archive = s
        .dir
        .path()
        .join("taosx/tasks")
        .join(&local)
        .join("errors.jsonl");
    let archived = std::fs::read_to_string(&archive).unwrap_or_default();
    assert!(archived.contains("this is not json"), "{archived}");
    let t = task(&s, &on_agent);
    assert_eq!(t["metrics"]["rows_written"], 2000, "{t}");
    assert_eq!(t["agent"], agent_id.as_str());
    let (_, agents) = s.api("GET", "/api/v1/agents", None);
    assert_eq!(agents[0]["online"], true, "{agents}");

    // A device with its clock in 1970: the agent's batch holds a row taosd refuses (outside
    // KEEP). taosx sets that row aside in the task's archive and writes the rest, so the
    // agent's buffer moves on instead of resending the batch forever.
    paho(
        &py,
        s.mqtt_port,
        "pub-clock",
        r#"
c.publish("site/s0/dev3", json.dumps({"id": 3, "ts": 1, "v": 1, "temp": 1.0}), qos=1).wait_for_publish(60)
c.publish("site/s0/dev3", json.dumps({"id": 3, "ts": 1700000009999, "v": 2, "temp": 2.0}), qos=1).wait_for_publish(60)
"#,
    );
    assert_eq!(
        s.wait_count("edge.sensors", 2501, Duration::from_secs(60)),
        2501
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = task(&s, &on_agent);
        if t["metrics"]["rows_written"] == 2001 && t["metrics"]["buffered_points"] == 0 {
            let why = t["metrics"]["last_error"].as_str().unwrap_or("");
            assert!(why.contains("refused") && why.contains("d_3"), "{t}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refused row blocks the agent: {t}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let archived = std::fs::read_to_string(
        s.dir
            .path()
            .join("taosx/tasks")
            .join(&on_agent)
            .join("errors.jsonl"),
    )
    .unwrap_or_default();
    assert!(archived.contains("out of range"), "{archived}");

    // Refused definitions say why.
    for (bad, why) in [
        (
            json!({"name": "x", "from": "mqtt://h?topics=a/#/b", "to": "edge", "mapping": mapping()}),
            "topic filter",
        ),
        (
            json!({"name": "x", "from": "kafka://h", "to": "edge", "mapping": mapping()}),
            "not supported",
        ),
        (
            json!({"name": "x", "from": "mqtt://h?topics=a", "to": "taos:///", "mapping": mapping()}),
            "database",
        ),
        (
            json!({"name": "x", "from": "mqtt://h?topics=a", "to": "edge", "mapping": {"stable": "s", "table": "t", "columns": []}}),
            "mapping",
        ),
        (
            json!({"name": "x", "from": "mqtt://h?topics=a", "to": "edge", "mapping": mapping(), "agent": "nope"}),
            "agent",
        ),
    ] {
        let (status, e) = s.api("POST", "/api/v1/tasks", Some(&bad));
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(
            e["error"].as_str().unwrap_or("").contains(why),
            "{e} lacks '{why}'"
        );
    }

    // A wrong token is refused and logged; garbage on the QUIC port changes nothing.
    let mut intruder = s.agent("intruder", "not-a-token");
    intruder.wait_log("refused", Duration::from_secs(20));
    s.taosx
        .wait_log("invalid or revoked token", Duration::from_secs(5));
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..(i % 1300) + 1).map(|k| (k * 31 + i) as u8).collect();
        let _ = u.send_to(&junk, ("127.0.0.1", s.quic_port));
    }
    let (status, _) = s.api("GET", "/api/v1/health", None);
    assert_eq!(status, 200);
    // An agent that pins another certificate never talks to this taosx.
    let mut wrong_pin = {
        let dir = s.dir.path().join("wrong-pin");
        std::fs::create_dir_all(&dir).unwrap();
        let toml = format!(
            "endpoint = \"127.0.0.1:{}\"\ntoken = \"{token}\"\nfingerprint = \"sha256:{}\"\n[buffer]\ndir = \"{}\"\n",
            s.quic_port,
            "ab".repeat(32),
            dir.join("buffer").display()
        );
        std::fs::write(dir.join("agent.toml"), toml).unwrap();
        support::Proc::spawn(
            std::process::Command::new(support::bin("taosx-agent"))
                .arg("-c")
                .arg(dir.join("agent.toml")),
            dir.join("agent.out"),
        )
    };
    wrong_pin.wait_log("not the pinned one", Duration::from_secs(20));
    assert!(!wrong_pin.log().contains("connected to taosx"));
    wrong_pin.kill9();

    // Revoking the agent closes its link.
    let (status, _) = s.api("DELETE", &format!("/api/v1/agents/{agent_id}"), None);
    assert_eq!(status, 204);
    agent.wait_log("refused", Duration::from_secs(20));
    intruder.kill9();
}

/// SIGKILL the agent mid-stream, SIGKILL taosx mid-batch, stop taosx for 60 s: publishing never
/// stops, and at the end every point is in taosd exactly once.
#[test]
fn faults_lose_nothing() {
    let Some(py) = python() else { return };
    let mut s = Stack::start();
    let (agent_id, token) = create_agent(&s, "field-2");
    let mut agent = s.agent("a2", &token);
    agent.wait_log("connected to taosx", Duration::from_secs(20));
    create_task(&s, "faults", "site/+/+", Some(&agent_id));
    agent.wait_log("MQTT connected", Duration::from_secs(20));
    // 80 s of publishing at 250 points/s.
    let total = 20_000usize;
    let out = s.dir.path().join("pub2.out");
    let mut publisher = publish(&py, s.mqtt_port, total, 50, 250, 1_710_000_000_000, &out);
    let t0 = Instant::now();
    let at = |secs: u64| {
        let due = t0 + Duration::from_secs(secs);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    };
    // (2) SIGKILL the agent, restart it: it resumes from its buffer and the broker's queue.
    at(4);
    agent.kill9();
    at(6);
    let mut agent = s.agent("a2", &token);
    agent.wait_log("connected to taosx", Duration::from_secs(20));
    // (3) SIGKILL taosx while batches are in flight, restart it.
    at(10);
    s.taosx.kill9();
    at(12);
    s.start_taosx();
    // (1) stop taosx for 60 s while publishing continues.
    at(16);
    s.taosx.stop();
    let buffered_at_stop = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    s.start_taosx();
    assert!(buffered_at_stop.elapsed() >= Duration::from_secs(60));
    assert!(publisher.wait().unwrap().success());
    let n = s.wait_count("edge.sensors", total as i64, Duration::from_secs(120));
    assert_eq!(
        n,
        total as i64,
        "points lost or duplicated; agent log:\n{}",
        agent.log()
    );
    // Exactly once: one row per published point, no more.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.count("edge.sensors"), total as i64);
    assert_eq!(
        s.count("(SELECT DISTINCT v FROM edge.sensors)"),
        total as i64
    );
}
