//! The PI source against a small PI Web API server that follows the documented endpoints
//! (tests/pi_server.py): back-fill of recorded values, then new values as they come, one table
//! per point with tags from point attributes, and a taosx restart that resumes where it stopped.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{free_port, python, Stack};

#[test]
fn pi_backfill_poll_and_resume() {
    let Some(py) = python() else { return };
    let mut s = Stack::start();
    let pi_port = free_port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now / 1000 - 300) * 1000;
    let mut server = support::Proc::spawn(
        std::process::Command::new(&py)
            .arg(support::manifest_dir().join("tests/pi_server.py"))
            .arg(pi_port.to_string())
            .arg(base.to_string()),
        s.dir.path().join("pi.out"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", pi_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "PI server did not start: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = chrono_iso(base);
    let body = json!({
        "name": "pi",
        "from": format!(
            "pi://piuser:pipass@127.0.0.1:{pi_port}?points=\\\\pisrv\\sinusoid,\\\\pisrv\\cdt158,\\\\pisrv\\valve&start={start}&interval=1s"
        ),
        "to": "taos:///plant",
        "mapping": {
            "stable": "pi_values",
            "table": "{name}",
            "ts": {"field": "ts"},
            "columns": [{"name": "val", "type": "DOUBLE", "field": "value"}, {"name": "good", "type": "BOOL"}],
            "tags": [
                {"name": "path", "type": "VARCHAR(64)"},
                {"name": "units", "type": "VARCHAR(16)"},
                {"name": "descriptor", "type": "VARCHAR(64)"},
                {"name": "point_type", "type": "VARCHAR(16)"}
            ]
        }
    });
    let (status, t) = s.api("POST", "/api/v1/tasks", Some(&body));
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    // Back-fill: at least the 301 values per point recorded before the task started.
    let n = s.wait_count("plant.pi_values", 3 * 301, Duration::from_secs(60));
    assert!(n >= 3 * 301, "{n} rows; taosx:\n{}", s.taosx.log());
    assert!(s.count("plant.`CDT158`") >= 301);
    assert!(s.count("plant.pi_values WHERE units = '%' AND point_type = 'Float64'") >= 301);
    assert_eq!(s.count("plant.`VALVE1` WHERE val > 1"), 0);
    // New values keep coming (one per second per point).
    let before = s.count("plant.pi_values");
    let later = s.wait_count("plant.pi_values", before + 6, Duration::from_secs(20));
    assert!(later >= before + 6, "no new values: {before} -> {later}");
    // Points found by a name search on the data server.
    let mut by_search = body.clone();
    by_search["name"] = json!("pi-search");
    by_search["to"] = json!("taos:///plant2");
    by_search["from"] = json!(format!(
        "pi://piuser:pipass@127.0.0.1:{pi_port}?server=\\\\pisrv&search=CDT*&start={start}&interval=1s"
    ));
    let (status, t2) = s.api("POST", "/api/v1/tasks", Some(&by_search));
    assert_eq!(status, 201, "{t2}");
    assert!(s.wait_count("plant2.`CDT158`", 301, Duration::from_secs(30)) >= 301);
    assert_eq!(s.count("plant2.pi_values"), s.count("plant2.`CDT158`"));
    // Restart taosx: it resumes after the last value committed instead of back-filling again.
    s.taosx.stop();
    std::thread::sleep(Duration::from_secs(2));
    s.start_taosx();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, t) = s.api("GET", &format!("/api/v1/tasks/{id}"), None);
        let written = t["metrics"]["rows_written"].as_u64().unwrap_or(0);
        if written > 0 {
            assert!(written < 100, "re-read the history after a restart: {t}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing written after restart: {t}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    server.kill9();
}

fn chrono_iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
