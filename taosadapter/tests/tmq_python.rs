//! TMQ over `/rest/tmq` with the official Python WebSocket connector (`taosws.Consumer`):
//! a query topic delivers only matching rows and columns, commit / committed / position /
//! assignment / seek work, and a second group consumes independently.

mod support;

use support::{run_script, venv_python, Stack};

const SCRIPT: &str = r#"
import os
import taosws

port = os.environ["ADAPTER_PORT"]
conn = taosws.connect(f"ws://root:taosdata@127.0.0.1:{port}")
conn.execute("create database tmqdb vgroups 2")
conn.execute("create stable tmqdb.meters (ts timestamp, current float, v int, note nchar(8)) tags (gid int)")
for t in range(4):
    conn.execute(f"insert into tmqdb.d{t} using tmqdb.meters tags ({t}) values " + " ".join(
        f"({1700000000000 + i}, {i}.5, {i}, '温{i % 3}')" for i in range(250)))
conn.execute("create topic tp_q as select ts, v, note from tmqdb.meters where v % 2 = 0")
conn.execute("create topic tp_db as database tmqdb")

def consumer(group):
    return taosws.Consumer(conf={
        "td.connect.websocket.scheme": "ws",
        "td.connect.ip": "127.0.0.1",
        "td.connect.port": port,
        "td.connect.user": "root",
        "td.connect.pass": "taosdata",
        "group.id": group,
        "client.id": "py-" + group,
        "auto.offset.reset": "earliest",
        "msg.with.table.name": "true",
        "enable.auto.commit": "false",
    })

def drain(c, want):
    rows, vgroups, msgs = [], set(), 0
    while len(rows) < want:
        msg = c.poll(timeout=2.0)
        if msg is None:
            break
        msgs += 1
        assert msg.topic() in ("tp_q", "tp_db"), msg.topic()
        assert msg.database() == "tmqdb", msg.database()
        vgroups.add(msg.vgroup())
        for block in msg:
            assert block.nrows() > 0 and block.ncols() in (3, 4), (block.nrows(), block.ncols())
            rows.extend(block.fetchall())
        c.commit(msg)
    return rows, vgroups, msgs

c = consumer("pyg")
c.subscribe(["tp_q"])
rows, vgroups, msgs = drain(c, 500)
assert len(rows) == 500, len(rows)
assert all(len(r) == 3 for r in rows), rows[0]
assert all(r[1] % 2 == 0 for r in rows), rows[:5]
assert {r[2] for r in rows} == {"温0", "温1", "温2"}, {r[2] for r in rows}
assert len(vgroups) == 2, vgroups
assert c.list_topics() == ["tp_q"], c.list_topics()

# Offsets: committed == position == end after committing everything.
for ta in c.assignment():
    assert ta.topic() == "tp_q"
    for a in ta.assignments():
        vg = a.vg_id()
        assert c.committed("tp_q", vg) == a.offset() == c.position("tp_q", vg), (vg, a.offset())
        assert a.begin() <= a.offset() <= a.end()
        first_vg, begin = vg, a.begin()
# Seek back: that vgroup's rows come again.
c.seek("tp_q", first_vg, begin)
again, _, _ = drain(c, 1)
assert len(again) > 0
c.unsubscribe()
c.close()

# A second group reads the database topic independently: every row, all columns.
d = consumer("pyg2")
d.subscribe(["tp_db"])
rows, vgroups, _ = drain(d, 1000)
assert len(rows) == 1000, len(rows)
assert all(len(r) == 4 for r in rows), rows[0]
d.close()

# A missing topic is refused.
e = consumer("pyg3")
try:
    e.subscribe(["no_such_topic"])
    raise SystemExit("missing topic accepted")
except SystemExit:
    raise
except Exception as err:
    assert "0x03E1" in str(err) or "Topic not exist" in str(err), str(err)
print("ok")
"#;

#[test]
fn taos_ws_py_consumer() {
    let Some(py) = venv_python() else { return };
    let stack = Stack::start();
    let out = run_script(
        &py,
        &["-"],
        &[("ADAPTER_PORT", stack.port.to_string())],
        SCRIPT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.adapter_log()
    );
}
