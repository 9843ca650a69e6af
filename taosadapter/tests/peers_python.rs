//! Real Python clients against the real binaries: `taosrest` (PyPI `taospy`) and the InfluxDB v1
//! client (PyPI `influxdb`). Install them with `tests/setup_peers.sh`; a missing peer fails the
//! test unless `TAOS_SKIP_PEERS=1`.

mod support;

use support::{run_script, venv_python, Stack};

const TAOSREST_SCRIPT: &str = r#"
import datetime, os, sys
import taosrest
from taosrest.errors import ConnectError, HTTPError

url = os.environ["ADAPTER_URL"]
conn = taosrest.connect(url=url, user="root", password="taosdata")
assert conn.server_info.startswith("3."), conn.server_info
cur = conn.cursor()
cur.execute("create database if not exists pydb precision 'us'")
cur.execute(
    "create stable pydb.st (ts timestamp, b bool, ti tinyint, si smallint, i int, bi bigint, "
    "uti tinyint unsigned, usi smallint unsigned, ui int unsigned, ubi bigint unsigned, "
    "f float, d double, vc varchar(20), nc nchar(10), vb varbinary(16), g geometry(64)) tags (info json)"
)
n = cur.execute(
    "insert into pydb.t1 using pydb.st tags ('{\"city\":\"北京\",\"n\":1}') values "
    "('2024-01-02 03:04:05.123456', true, -128, -32768, -2147483648, -9223372036854775808, "
    "255, 65535, 4294967295, 18446744073709551615, 10.3, 2.718281828459045, 'hello', '温度', "
    "'\\x7f8290', 'point(100 100)') "
    "('2024-01-02 03:04:06.000000', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)"
)
assert n == 2, n
assert cur.affected_rows == 2, cur.affected_rows

# A database-scoped connection (/rest/sql/pydb).
dbconn = taosrest.connect(url=url, user="root", password="taosdata", database="pydb")
c2 = dbconn.cursor()
c2.execute("select * from st order by ts")
assert c2.rowcount == 2, c2.rowcount
names = [d[0] for d in c2.description]
assert names[:3] == ["ts", "b", "ti"] and names[-1] == "info", names
rows = c2.fetchall()
r = rows[0]
ts = r[0]
assert isinstance(ts, datetime.datetime), type(ts)
assert ts.astimezone(datetime.timezone.utc).replace(tzinfo=None) == datetime.datetime(2024, 1, 2, 3, 4, 5, 123456), ts
expect = [True, -128, -32768, -2147483648, -9223372036854775808, 255, 65535, 4294967295,
          18446744073709551615, 10.3, 2.718281828459045, "hello", "温度", "7f8290",
          "010100000000000000000059400000000000005940"]
assert list(r[1:16]) == expect, list(r[1:16])
assert r[16] == {"city": "北京", "n": 1}, r[16]
nulls = rows[1]
assert isinstance(nulls[0], datetime.datetime)
assert all(v is None for v in nulls[1:16]), nulls
assert nulls[16] == {"city": "北京", "n": 1}

# Errors carry TDengine's code.
try:
    cur.execute("selec 1")
    raise SystemExit("syntax error not raised")
except ConnectError as e:
    assert e.errno == 9728, (e.errno, str(e))
try:
    cur.execute("select * from pydb.no_such_table")
    raise SystemExit("missing table not raised")
except ConnectError as e:
    assert e.errno != 0, str(e)
bad = taosrest.connect(url=url, user="root", password="wrong")
try:
    bad.cursor().execute("select 1")
    raise SystemExit("wrong password not raised")
except ConnectError as e:
    assert e.errno == 855, (e.errno, str(e))
empty = taosrest.connect(url=url, user="root", password="")
try:
    empty.cursor().execute("select 1")
    raise SystemExit("empty password not refused")
except HTTPError as e:
    assert e.status_code == 401, e.status_code

# req_id goes as a query parameter.
assert conn.execute("insert into pydb.t1 values (now, true, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 'a', 'b', 'c', 'point(1 1)')", req_id=12345) == 1
res = conn.query("select count(*) from pydb.st")
assert res.data[0][0] == 3, res.data
print("taosrest ok")
"#;

#[test]
fn taosrest_every_type_and_errors() {
    let Some(py) = venv_python() else { return };
    let s = Stack::start();
    let out = run_script(&py, &["-"], &[("ADAPTER_URL", s.url())], TAOSREST_SCRIPT);
    assert!(String::from_utf8_lossy(&out.stdout).contains("taosrest ok"));
}

/// Depends on `taosc::schemaless` (written by another engineer): InfluxDB line protocol through
/// the real `influxdb` Python client, then read back over REST.
const INFLUX_SCRIPT: &str = r#"
import os
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

port = int(os.environ["ADAPTER_PORT"])
client = InfluxDBClient(host="127.0.0.1", port=port, username="root", password="taosdata",
                        database="influx", path="influxdb/v1")
points = [
    {"measurement": "cpu", "tags": {"host": "server01", "region": "us-west"},
     "time": 1700000000000000000, "fields": {"usage": 0.64, "cores": 4}},
    {"measurement": "cpu", "tags": {"host": "server02", "region": "us-west"},
     "time": 1700000001000000000, "fields": {"usage": 0.5, "cores": 8}},
]
assert client.write_points(points) is True
assert client.write(["mem,host=server01 used=1024i,free=2.5 1700000000000"],
                    params={"db": "influx", "precision": "ms"}, protocol="line") is True
assert client.write_points([{"measurement": "gz", "fields": {"v": 1.0}, "time": 1700000000000000000}]) is True
try:
    client.write(["cpu,host=a usage=1 1700000000000000000", "this is not line protocol"],
                 params={"db": "influx"}, protocol="line")
    raise SystemExit("bad line accepted")
except InfluxDBClientError as e:
    assert e.code == 400, e.code
    assert "line 2" in str(e.content), e.content
print("influx ok")
"#;

#[test]
fn influxdb_client_writes_line_protocol() {
    let Some(py) = venv_python() else { return };
    let s = Stack::start_with("smlAutoCreateDB = false\n", &[]);
    s.sql_ok("create database influx precision 'ns'");
    let out = run_script(
        &py,
        &["-"],
        &[("ADAPTER_PORT", s.port.to_string())],
        INFLUX_SCRIPT,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("influx ok"));
    let v = s.sql_ok("select _ts, usage, cores, host, region from influx.cpu order by _ts");
    assert_eq!(v["rows"], 2, "{v}");
    assert_eq!(v["data"][0][0], "2023-11-14T22:13:20.000000000Z");
    assert_eq!(v["data"][0][1], 0.64);
    assert_eq!(v["data"][1][3], "server02");
    let v = s.sql_ok("select used, free from influx.mem");
    assert_eq!(v["data"], serde_json::json!([[1024, 2.5]]));
    // The adapter counted what it wrote.
    let (_, metrics) = support::curl(&[&format!("{}/metrics", s.url())]);
    assert!(
        metrics.contains(r#"taosadapter_rows_written_total{protocol="influxdb"} 4"#),
        "{metrics}"
    );
}
