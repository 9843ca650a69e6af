//! REST behaviour against the real binaries, driven by curl (PROTOCOLS.md §2): success shapes,
//! every error path of §2.1/§2.2/§2.4, login tokens, limits, gzip, CORS, metrics, config
//! plumbing and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::time::Duration;
use support::{curl, curl_with_headers, json, Stack};

const ROOT: &str = "root:taosdata";
const TOKEN: &str = "/KfeAzX/f9na8qdtNZmtONryp201ma04bEl8LcvLUd7a8qdtNZmtONryp201ma04";

fn post(s: &Stack, path_q: &str, auth: &[&str], body: &str) -> (u16, serde_json::Value) {
    let url = format!("{}{path_q}", s.url());
    let mut args: Vec<&str> = auth.to_vec();
    args.extend(["--data-binary", body, url.as_str()]);
    let (status, text) = curl(&args);
    (status, json(&text))
}

fn assert_err(r: (u16, serde_json::Value), status: u16, code: i64) -> serde_json::Value {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["code"].as_i64(), Some(code), "{}", r.1);
    assert!(r.1["desc"].is_string(), "{}", r.1);
    assert!(r.1["timing"].is_u64(), "errors carry timing: {}", r.1);
    r.1
}

#[test]
fn error_paths() {
    let s = Stack::start();
    let basic = ["-u", ROOT];
    // §2.2 header problems → 401.
    let e = assert_err(post(&s, "/rest/sql", &[], "select 1"), 401, 4357);
    assert_eq!(e["desc"], "no auth info input");
    let e = assert_err(
        post(
            &s,
            "/rest/sql",
            &["-H", "Authorization: Basic !!!"],
            "select 1",
        ),
        401,
        4388,
    );
    assert_eq!(e["desc"], "invalid basic Authorization");
    assert_err(
        post(
            &s,
            "/rest/sql",
            &["-H", "Authorization: Basic cm9vdA=="],
            "select 1",
        ),
        401,
        4388,
    );
    let e = assert_err(
        post(
            &s,
            "/rest/sql",
            &["-H", "Authorization: Taosd bogus"],
            "select 1",
        ),
        401,
        4389,
    );
    assert_eq!(e["desc"], "invalid taosd Authorization");
    let e = assert_err(
        post(
            &s,
            "/rest/sql",
            &["-H", "Authorization: Digest abc"],
            "select 1",
        ),
        401,
        4386,
    );
    assert_eq!(e["desc"], "invalid type of Authorization");
    // §2.1 body and parameters → 400.
    let e = assert_err(post(&s, "/rest/sql", &basic, ""), 400, 4358);
    assert_eq!(e["desc"], "request is empty");
    let e = assert_err(post(&s, "/rest/sql", &basic, " \n\t "), 400, 4359);
    assert_eq!(e["desc"], "no sql input");
    let e = assert_err(
        post(&s, "/rest/sql?req_id=abc", &basic, "select 1"),
        400,
        65535,
    );
    assert!(e["desc"]
        .as_str()
        .unwrap()
        .starts_with("illegal param, req_id must be numeric"));
    let e = assert_err(
        post(&s, "/rest/sql?row_with_meta=yes", &basic, "select 1"),
        400,
        65535,
    );
    assert!(e["desc"]
        .as_str()
        .unwrap()
        .starts_with("illegal param, row_with_meta must be boolean"));
    assert_err(
        post(&s, "/rest/sql?tz=Mars/Olympus", &basic, "select 1"),
        400,
        65535,
    );
    assert_err(
        post(&s, "/rest/sql?conn_tz=Nowhere", &basic, "select 1"),
        400,
        65535,
    );
    // TDengine errors → 200 with the code (§2.4 default).
    let e = assert_err(
        post(&s, "/rest/sql", &["-u", "root:wrong"], "select 1"),
        200,
        855,
    );
    assert_eq!(e["desc"], "Authentication failure");
    let e = assert_err(post(&s, "/rest/sql", &basic, "selec 1"), 200, 9728);
    assert!(e["desc"].as_str().unwrap().contains("syntax error"), "{e}");
    assert_err(
        post(
            &s,
            "/rest/sql",
            &["-H", "Authorization: Bearer sometoken"],
            "select 1",
        ),
        200,
        855,
    );
    // Removed 2.x endpoints and wrong methods.
    assert_eq!(
        curl(&[
            "-u",
            ROOT,
            "-d",
            "select 1",
            &format!("{}/rest/sqlt", s.url())
        ])
        .0,
        404
    );
    assert_eq!(curl(&["-u", ROOT, &format!("{}/rest/sql", s.url())]).0, 405);
    // The adapter survived all of it.
    s.sql_ok("select server_version()");
}

#[test]
fn login_tokens() {
    let s = Stack::start();
    let (status, body) = curl(&[&format!("{}/rest/login/root/taosdata", s.url())]);
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["code"], 0);
    assert_eq!(v["desc"], TOKEN);
    // The token works as `Authorization: Taosd`.
    let auth = format!("Authorization: Taosd {TOKEN}");
    let (status, v) = post(&s, "/rest/sql", &["-H", &auth], "select server_version()");
    assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
    // Wrong password → 401 code 3; unusable user name → 400 code 4362.
    let (status, body) = curl(&[&format!("{}/rest/login/root/nope", s.url())]);
    assert_eq!(status, 401, "{body}");
    let v = json(&body);
    assert_eq!(
        (v["code"].as_i64(), v["desc"].as_str()),
        (Some(3), Some("Authentication failure"))
    );
    let long = "u".repeat(25);
    let (status, body) = curl(&[&format!("{}/rest/login/{long}/pw", s.url())]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["code"], 4362);
}

#[test]
fn success_shapes() {
    let s = Stack::start();
    let basic = ["-u", ROOT];
    // `/rest/sql/<db>` runs `USE db` first and ignores its error, so this creates it.
    let (st, v) = post(
        &s,
        "/rest/sql/shapes",
        &basic,
        "create database if not exists shapes",
    );
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json(r#"{"code":0,"column_meta":[["affected_rows","INT",4]],"data":[[0]],"rows":1}"#)
    );
    s.sql_ok("create table shapes.t (ts timestamp, v float, name nchar(8))");
    let (_, v) = post(
        &s,
        "/rest/sql/shapes",
        &basic,
        "insert into t values ('2017-07-14 02:40:00.000', -2.498076, '加州') ('2017-07-14 02:40:01.000', 10.3, null)",
    );
    assert_eq!(v["data"], json("[[2]]"));
    let (_, v) = post(&s, "/rest/sql/shapes/", &basic, "select * from t");
    assert_eq!(
        v,
        json(
            r#"{"code":0,"column_meta":[["ts","TIMESTAMP",8],["v","FLOAT",4],["name","NCHAR",8]],
               "data":[["2017-07-14T02:40:00.000Z",-2.498076,"加州"],["2017-07-14T02:40:01.000Z",10.3,null]],"rows":2}"#
        )
    );
    // Trailing slash on the bare path, row_with_meta, tz and timing.
    let (_, v) = post(
        &s,
        "/rest/sql/?row_with_meta=true&tz=Asia/Shanghai&timing=true&req_id=7&app=curl",
        &basic,
        "select ts, v from shapes.t limit 1",
    );
    assert_eq!(
        v["data"],
        json(r#"[{"ts":"2017-07-14T10:40:00.000+08:00","v":-2.498076}]"#)
    );
    assert!(v["timing"].is_u64(), "{v}");
    let (_, v) = post(
        &s,
        "/rest/sql?row_with_meta=1",
        &basic,
        "insert into shapes.t values (now, 1, 'x')",
    );
    assert_eq!(v["data"], json(r#"[{"affected_rows":1}]"#));
    // Empty result.
    let (_, v) = post(
        &s,
        "/rest/sql",
        &basic,
        "select * from shapes.t where v > 1000",
    );
    assert_eq!(
        (v["rows"].as_i64(), v["data"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    // REST is stateless: a USE in one request does not leak into the next.
    s.sql_ok("use shapes");
    let (st, v) = post(&s, "/rest/sql", &basic, "select * from t");
    assert_eq!(st, 200);
    assert_ne!(v["code"], 0, "USE must not persist across requests: {v}");
    // gzip request bodies.
    let gz = gzip(b"select count(*) from shapes.t");
    let file = s.dir.path().join("q.gz");
    std::fs::write(&file, gz).unwrap();
    let (st, body) = curl(&[
        "-u",
        ROOT,
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(json(&body)["data"], json("[[3]]"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn streams_large_results_chunked() {
    let s = Stack::start();
    s.sql_ok("create database big");
    s.sql_ok("create table big.t (ts timestamp, v int, s varchar(16))");
    let base = 1_700_000_000_000i64;
    for chunk in 0..4 {
        let mut sql = String::from("insert into big.t values ");
        for i in 0..5000 {
            let n = chunk * 5000 + i;
            sql.push_str(&format!("({} , {n}, 'row{n}') ", base + n));
        }
        let file = s.dir.path().join("ins.sql");
        std::fs::write(&file, sql).unwrap();
        let (st, body) = curl(&[
            "-u",
            ROOT,
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{}/rest/sql", s.url()),
        ]);
        assert_eq!(
            (st, json(&body)["data"].clone()),
            (200, json("[[5000]]")),
            "{body}"
        );
    }
    let (st, text) = curl_with_headers(&[
        "-u",
        ROOT,
        "-d",
        "select * from big.t",
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 200);
    let (head, body) = text.split_once("\r\n\r\n").expect("headers");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert!(head.contains("application/json; charset=utf-8"), "{head}");
    let v = json(body);
    assert_eq!(v["rows"], 20000);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 20000);
    assert_eq!(data[19999][2], "row19999");
}

#[test]
fn config_file_env_and_limits() {
    let toml = "restfulRowLimit = 2\nmysteryKey = 1\n[influxdb]\nenable = false\n[request]\nmaxBodySize = 1024\n";
    let s = Stack::start_with(toml, &[("TAOS_ADAPTER_HTTP_CODE_SERVER_ERROR", "true")]);
    assert!(
        s.adapter_log().contains("mysteryKey"),
        "unknown keys are warned about:\n{}",
        s.adapter_log()
    );
    s.sql_ok("create database lim");
    s.sql_ok("create table lim.t (ts timestamp, v int)");
    s.sql_ok("insert into lim.t values (1700000000000, 1) (1700000000001, 2) (1700000000002, 3)");
    let v = s.sql_ok("select * from lim.t");
    assert_eq!(
        (v["rows"].as_i64(), v["data"].as_array().map(Vec::len)),
        (Some(2), Some(2))
    );
    // httpCodeServerError=true: a syntax error becomes 400, an auth failure 401.
    assert_err(post(&s, "/rest/sql", &["-u", ROOT], "selec 1"), 400, 9728);
    assert_err(
        post(&s, "/rest/sql", &["-u", "root:bad"], "select 1"),
        401,
        855,
    );
    // Body limit: from Content-Length, and after gunzip.
    let big = "x".repeat(2000);
    let (st, body) = curl(&[
        "-u",
        ROOT,
        "--data-binary",
        &big,
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 413, "{body}");
    let bomb = gzip(&vec![b' '; 100_000]);
    assert!(bomb.len() < 1024);
    let file = s.dir.path().join("bomb.gz");
    std::fs::write(&file, bomb).unwrap();
    let (st, _) = curl(&[
        "-u",
        ROOT,
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 413);
    // Chunked upload without Content-Length is cut off while streaming.
    let (st, _) = curl(&[
        "-u",
        ROOT,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 413);
    // [influxdb] enable = false → the route does not exist.
    let (st, _) = curl(&[
        "-d",
        "m v=1",
        &format!("{}/influxdb/v1/write?db=lim&u=root&p=taosdata", s.url()),
    ]);
    assert_eq!(st, 404);
}

#[test]
fn ping_metrics_cors() {
    let s = Stack::start();
    let (st, body) = curl(&[&format!("{}/-/ping", s.url())]);
    assert_eq!((st, body.as_str()), (200, ""));
    s.sql_ok("select server_version()");
    let _ = curl(&["-d", "select 1", &format!("{}/rest/sql", s.url())]);
    let (st, text) = curl(&[&format!("{}/metrics", s.url())]);
    assert_eq!(st, 200);
    assert!(
        text.contains(r#"taosadapter_http_requests_total{route="/rest/sql",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"taosadapter_http_requests_total{route="/rest/sql",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"taosadapter_errors_total{kind="auth"} 1"#),
        "{text}"
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")),
            "{name}"
        );
    }
    // promtool is the real linter; run it when this machine has it.
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: checked HELP/TYPE lines only");
    }
    // CORS: preflight answered on any route, and the header on normal replies.
    let (st, text) = curl_with_headers(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: http://example.com",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: authorization",
        &format!("{}/rest/sql", s.url()),
    ]);
    assert_eq!(st, 204, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("access-control-allow-origin: *"), "{text}");
    assert!(
        lower.contains("access-control-allow-headers: authorization"),
        "{text}"
    );
    let (_, text) = curl_with_headers(&[
        "-u",
        ROOT,
        "-H",
        "Origin: http://example.com",
        "-d",
        "select 1",
        &format!("{}/rest/sql", s.url()),
    ]);
    assert!(
        text.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{text}"
    );
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let mut s = Stack::start();
    s.sql_ok("create database gs");
    s.sql_ok("create table gs.t (ts timestamp, v int)");
    s.sql_ok("insert into gs.t values (1700000000000, 1)");
    // A request accepted before the signal gets its complete answer.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let body = "select * from gs.t";
    write!(
        conn,
        "POST /rest/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Basic cm9vdDp0YW9zZGF0YQ==\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let status = s
        .stop_adapter(Duration::from_secs(20))
        .expect("adapter exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let text = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""rows":1"#), "{text}");
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err());
}
