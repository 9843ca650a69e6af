//! The npm package `@tdengine/rest` against the real binaries. Install it with
//! `tests/setup_peers.sh`; a missing peer fails the test unless `TAOS_SKIP_PEERS=1`.

mod support;

use std::path::Path;
use support::{node_modules, run_script, Stack};

const SCRIPT: &str = r#"
const assert = require('assert');
const { options, connect } = require('@tdengine/rest');
options.host = '127.0.0.1';
options.port = Number(process.env.ADAPTER_PORT);
options.path = '/rest/sql/';   // the package's documented default, with a trailing slash
options.user = 'root';
options.passwd = 'taosdata';
(async () => {
  const cursor = connect(options).cursor();
  let r = await cursor.query('create database if not exists nodedb');
  assert.strictEqual(r.getErrCode(), 0, r.getErrStr());
  r = await cursor.query('create table if not exists nodedb.t (ts timestamp, v double, name nchar(8), b bool, u bigint unsigned)');
  r = await cursor.query("insert into nodedb.t values ('2024-05-06 07:08:09.010', 1.25, '风速', true, 42) ('2024-05-06 07:08:10.000', null, null, null, null)");
  assert.strictEqual(r.getAffectRows(), 2);
  r = await cursor.query('select * from nodedb.t order by ts');
  assert.strictEqual(r.getErrCode(), 0, r.getErrStr());
  assert.deepStrictEqual(r.getMeta().map(m => [m.columnName, m.typeName, m.size]),
    [['ts', 'TIMESTAMP', 8], ['v', 'DOUBLE', 8], ['name', 'NCHAR', 8], ['b', 'BOOL', 1], ['u', 'BIGINT UNSIGNED', 8]]);
  assert.deepStrictEqual(r.getData(), [
    ['2024-05-06T07:08:09.010Z', 1.25, '风速', true, 42],
    ['2024-05-06T07:08:10.000Z', null, null, null, null],
  ]);
  r = await cursor.query('selec 1');
  assert.strictEqual(r.getErrCode(), 9728);
  assert.ok(r.getErrStr().includes('syntax error'), r.getErrStr());
  const bad = connect(Object.assign({}, options, { passwd: 'wrong' })).cursor();
  r = await bad.query('select 1');
  assert.strictEqual(r.getErrCode(), 855);
  console.log('node ok');
})().catch(e => { console.error(e); process.exit(1); });
"#;

#[test]
fn tdengine_rest_npm_client() {
    let Some(nm) = node_modules() else { return };
    let s = Stack::start();
    let out = run_script(
        Path::new("node"),
        &[],
        &[
            ("NODE_PATH", nm.display().to_string()),
            ("ADAPTER_PORT", s.port.to_string()),
        ],
        SCRIPT,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node ok"));
}
