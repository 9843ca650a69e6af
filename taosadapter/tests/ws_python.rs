//! The official Python WebSocket connector (PyPI `taos-ws-py`, module `taosws`) against the real
//! binaries: handshake, DDL, inserts, every data type incl. NCHAR, JSON tags, VARBINARY, GEOMETRY
//! and NULLs, a 100k-row result fetched in blocks, stmt (`TaosStmt`), stmt2 (`TaosStmt2`,
//! insert and query), schemaless, errors. Install it with `tests/setup_peers.sh`; a missing peer
//! fails the test unless `TAOS_SKIP_PEERS=1`.

mod support;

use support::{run_script, venv_python, Stack};

const SCRIPT: &str = r#"
import datetime, os, time
import taosws

port = os.environ["ADAPTER_PORT"]
url = f"ws://root:taosdata@127.0.0.1:{port}"
conn = taosws.connect(url)
conn.execute("create database if not exists wsdb precision 'ms'")
conn.execute("use wsdb")
assert list(conn.query("select database()")) == [("wsdb",)]
assert list(conn.query("select server_version()"))[0][0].startswith("3.")

# Every data type, NULLs, a JSON tag.
conn.execute(
    "create stable st (ts timestamp, b bool, ti tinyint, si smallint, i int, bi bigint, "
    "uti tinyint unsigned, usi smallint unsigned, ui int unsigned, ubi bigint unsigned, "
    "f float, d double, vc varchar(20), nc nchar(10), vb varbinary(16), g geometry(64)) tags (info json)")
n = conn.execute(
    "insert into t1 using st tags ('{\"city\":\"北京\",\"n\":1}') values "
    "(1700000000123, true, -128, -32768, -2147483648, -9223372036854775808, 255, 65535, 4294967295, "
    "18446744073709551615, 10.3, 2.718281828459045, 'hello', '温度', '\\x7f8290', 'point(100 100)') "
    "(1700000001000, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)")
assert n == 2, n
res = conn.query("select * from st order by ts")
fields = [(f.name(), f.type(), f.bytes()) for f in res.fields]
assert fields[0] == ("ts", "TIMESTAMP", 8), fields
assert fields[12] == ("vc", "BINARY", 20) or fields[12] == ("vc", "VARCHAR", 20), fields
assert fields[13] == ("nc", "NCHAR", 10), fields
assert fields[16] == ("info", "JSON", 4095), fields
rows = list(res)
assert len(rows) == 2, rows
r = rows[0]
assert str(r[0]).startswith("2023-11-14 22:13:20.123"), r[0]
expect = [True, -128, -32768, -2147483648, -9223372036854775808, 255, 65535, 4294967295,
          18446744073709551615]
assert list(r[1:10]) == expect, r
assert abs(r[10] - 10.3) < 1e-5 and r[11] == 2.718281828459045, r
assert r[12] == "hello" and r[13] == "温度", r
assert bytes(r[14]) == b"\x7f\x82\x90", r[14]
assert bytes(r[15]).hex() == "010100000000000000000059400000000000005940", r[15]
assert r[16] == '{"city":"北京","n":1}', r[16]
nulls = rows[1]
assert all(v is None for v in nulls[1:16]), nulls

# Cursor API.
cur = conn.cursor()
cur.execute("select ts, i, nc from wsdb.st order by ts")
got = cur.fetchall()
assert len(got) == 2 and got[0][1] == -2147483648 and got[0][2] == "温度", got

# A large result fetched block by block.
conn.execute("create table big (ts timestamp, v bigint, s varchar(16))")
for k in range(10):
    conn.execute("insert into big values " + " ".join(
        f"({1700000000000 + k * 10000 + i}, {k * 10000 + i}, 's{i}')" for i in range(10000)))
t0 = time.time()
count = 0
total = 0
for row in conn.query("select * from big"):
    count += 1
    total += row[1]
assert count == 100000 and total == sum(range(100000)), (count, total)
print(f"fetched 100000 rows in {time.time() - t0:.2f}s")

# stmt (v1): 3 child tables x 100 rows, with NULLs and NCHAR.
conn.execute("create stable meters (ts timestamp, current float, voltage int, phase float, note nchar(8)) "
             "tags (groupid int, location varchar(24))")
stmt = conn.statement()
stmt.prepare("insert into ? using meters tags (?, ?) values (?, ?, ?, ?, ?)")
for t in range(3):
    stmt.set_tbname_tags(f"d{t}", [taosws.int_to_tag(t), taosws.varchar_to_tag(f"loc{t}")])
    stmt.bind_param([
        taosws.millis_timestamps_to_column([1700000000000 + i for i in range(100)]),
        taosws.floats_to_column([1.5] * 99 + [None]),
        taosws.ints_to_column(list(range(100))),
        taosws.floats_to_column([0.5] * 100),
        taosws.nchar_to_column(["温度"] * 100),
    ])
    stmt.add_batch()
assert stmt.execute() == 300
assert list(conn.query("select count(*), sum(voltage), count(current) from meters")) == [(300, 14850, 297)]
assert list(conn.query("select note, location from d2 limit 1")) == [("温度", "loc2")]

# stmt2: 3 more tables x 1000 rows in one bind.
s2 = conn.stmt2_statement()
s2.prepare("insert into ? using meters tags (?, ?) values (?, ?, ?, ?, ?)")
params = []
for t in range(3, 6):
    params.append(taosws.stmt2_bind_param_view(
        f"d{t}", [taosws.int_to_tag(t), taosws.varchar_to_tag(f"loc{t}")], [
            taosws.millis_timestamps_to_column([1700000000000 + i for i in range(1000)]),
            taosws.floats_to_column([2.5] * 1000),
            taosws.ints_to_column([None] + list(range(1, 1000))),
            taosws.floats_to_column([0.5] * 1000),
            taosws.nchar_to_column(["ab"] * 1000),
        ]))
s2.bind(params)
assert s2.execute() == 3000
assert list(conn.query("select count(*) from meters where groupid >= 3")) == [(3000,)]
assert list(conn.query("select count(*) from meters where voltage is null")) == [(3,)]

# stmt2 query with parameters (quotes in a parameter stay data).
q = conn.stmt2_statement()
q.prepare("select tbname, count(*) from meters where groupid = ? and location = ? group by tbname")
q.bind([taosws.stmt2_bind_param_view(None, None, [taosws.ints_to_column([4]), taosws.varchar_to_column(["loc4"])])])
q.execute()
assert list(q.result_set()) == [("d4", 1000)]
q.bind([taosws.stmt2_bind_param_view(None, None, [taosws.ints_to_column([4]), taosws.varchar_to_column(["x' or '1'='1"])])])
q.execute()
assert list(q.result_set()) == []

# Schemaless (line protocol).
conn.schemaless_insert(["sml,t1=a c1=1i,c2=\"x\" 1700000000000", "sml,t1=b c1=2i,c2=\"y\" 1700000000001"],
                       taosws.PySchemalessProtocol.Line, taosws.PySchemalessPrecision.Millisecond, 0, 0)
assert list(conn.query("select count(*) from sml")) == [(2,)]

# Errors keep the connection usable.
try:
    conn.execute("selec 1")
    raise SystemExit("syntax error not raised")
except Exception as e:
    assert "0x2600" in str(e), str(e)
try:
    conn.query("select * from no_such_table")
    raise SystemExit("missing table not raised")
except Exception as e:
    pass
try:
    taosws.connect(f"ws://root:wrong@127.0.0.1:{port}")
    raise SystemExit("wrong password accepted")
except Exception as e:
    assert "0x0357" in str(e), str(e)
assert list(conn.query("select count(*) from big")) == [(100000,)]
conn.close()
print("ok")
"#;

#[test]
fn taos_ws_py_end_to_end() {
    let Some(py) = venv_python() else { return };
    let stack = Stack::start();
    let out = run_script(
        &py,
        &["-"],
        &[("ADAPTER_PORT", stack.port.to_string())],
        SCRIPT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    eprintln!("{stdout}");
}
