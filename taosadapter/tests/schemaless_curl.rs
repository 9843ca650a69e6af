//! InfluxDB and OpenTSDB HTTP endpoints driven by curl (PROTOCOLS.md §3.1, §3.2): status codes,
//! error shapes, smlAutoCreateDB and reading the rows back over REST. The parsing and writing
//! underneath is `taosc::schemaless`.

mod support;

use support::Stack;

#[test]
fn influx_and_opentsdb_over_curl() {
    let s = Stack::start_with("smlAutoCreateDB = true\n", &[]);
    let url = s.url();
    let c = support::curl;
    // Missing db, missing auth, auto-created database, gzip body.
    let (st, body) = c(&[
        "--data-binary",
        "m v=1",
        &format!("{url}/influxdb/v1/write?u=root&p=taosdata"),
    ]);
    assert_eq!(st, 400, "{body}");
    assert_eq!(support::json(&body)["message"], "db required");
    let (st, body) = c(&[
        "--data-binary",
        "m v=1",
        &format!("{url}/influxdb/v1/write?db=auto"),
    ]);
    assert_eq!(st, 401, "{body}");
    assert_eq!(support::json(&body)["code"], "forbidden");
    let (st, body) = c(&[
        "--data-binary",
        "m,t=a v=1 1700000000",
        &format!("{url}/influxdb/v1/write?db=auto&precision=s&u=root&p=taosdata"),
    ]);
    assert_eq!(st, 204, "{body}");
    let (st, body) = c(&[
        "--data-binary",
        "m v=1",
        &format!("{url}/influxdb/v1/write?db=auto&precision=fortnight&u=root&p=taosdata"),
    ]);
    assert_eq!(st, 400, "{body}");
    let v = s.sql_ok("select * from auto.m");
    assert_eq!(v["rows"], 1, "{v}");
    assert_eq!(
        v["data"][0][0], "2023-11-14T22:13:20.000000000Z",
        "auto-created databases are ns"
    );
    // OpenTSDB telnet and JSON.
    let (st, body) = c(&[
        "-u",
        "root:taosdata",
        "--data-binary",
        "sys.cpu 1700000000 3.5 host=web01\nsys.cpu 1700000001 4.5 host=web01",
        &format!("{url}/opentsdb/v1/put/telnet/auto"),
    ]);
    assert_eq!(st, 204, "{body}");
    let (st, body) = c(&[
        "-u",
        "root:taosdata",
        "--data-binary",
        r#"[{"metric":"sys.mem","timestamp":1700000000000,"value":7,"tags":{"host":"a"}}]"#,
        &format!("{url}/opentsdb/v1/put/json/auto"),
    ]);
    assert_eq!(st, 204, "{body}");
    let (st, body) = c(&[
        "--data-binary",
        "sys.cpu 1700000000 1 host=x",
        &format!("{url}/opentsdb/v1/put/telnet/auto"),
    ]);
    assert_eq!(
        (st, support::json(&body)["code"].as_i64()),
        (401, Some(401)),
        "{body}"
    );
    let (st, body) = c(&[
        "-u",
        "root:taosdata",
        "--data-binary",
        r#"[{"metric":"sys.mem","value":1}]"#,
        &format!("{url}/opentsdb/v1/put/json/auto"),
    ]);
    assert_eq!(st, 400, "{body}");
    assert!(
        support::json(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("line 1"),
        "{body}"
    );
    let v = s.sql_ok("select count(*) from auto.sys_cpu");
    assert_eq!(v["data"][0][0], 2, "{v}");
    let v = s.sql_ok("select _value from auto.sys_mem");
    assert_eq!(v["data"][0][0], 7.0, "{v}");
}
