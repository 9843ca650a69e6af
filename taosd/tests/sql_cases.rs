//! SQL case files, like GreptimeDB's sqlness: every `cases/*.sql` runs against a real taosd
//! (fresh connection, UTC session) and its rendered output must equal `cases/*.result`.
//! `UPDATE_RESULTS=1` rewrites the `.result` files instead of comparing.

mod support;

use common::time::format_timestamp;
use common::{SessionTz, Value};
use std::path::{Path, PathBuf};
use support::TestServer;
use taosc::blocking::Connection;
use taosc::ConnectOptions;

/// Split a case file into statements: `;` at the end of a line ends one; `--` lines are kept
/// as comments in the output.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with("--")) {
            if t.starts_with("--") {
                out.push(t.to_string());
            }
            continue;
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line.trim_end());
        if t.ends_with(';') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn render_value(v: &Value, precision: common::Precision) -> String {
    match v {
        Value::Timestamp(t) => format_timestamp(*t, precision, SessionTz::Utc),
        other => other.render(),
    }
}

fn run_statement(conn: &Connection, sql: &str) -> String {
    let stmt = sql.trim_end_matches(';');
    match conn.query(stmt) {
        Err(e) => format!("Error: [0x{:04X}] {}", e.code & 0xFFFF, e.message),
        Ok(r) if !r.has_result_set() => format!("Query OK, {} row(s) affected", r.affected_rows()),
        Ok(r) => {
            let fields: Vec<String> = r.fields().iter().map(|f| f.name.clone()).collect();
            let precision = r.precision();
            let rows = match r.collect_rows() {
                Ok(rows) => rows,
                Err(e) => return format!("Error: [0x{:04X}] {}", e.code & 0xFFFF, e.message),
            };
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|row| row.iter().map(|v| render_value(v, precision)).collect())
                .collect();
            let mut widths: Vec<usize> = fields.iter().map(|f| f.chars().count()).collect();
            for row in &cells {
                for (i, c) in row.iter().enumerate() {
                    if i < widths.len() {
                        widths[i] = widths[i].max(c.chars().count());
                    }
                }
            }
            let sep = format!(
                "+{}+",
                widths
                    .iter()
                    .map(|w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("+")
            );
            let line = |vals: &[String]| {
                format!(
                    "|{}|",
                    vals.iter()
                        .zip(&widths)
                        .map(|(v, w)| format!(" {v:<w$} "))
                        .collect::<Vec<_>>()
                        .join("|")
                )
            };
            let mut out = vec![sep.clone(), line(&fields), sep.clone()];
            for row in &cells {
                out.push(line(row));
            }
            out.push(sep);
            out.push(format!("Query OK, {} row(s) in set", rows.len()));
            out.join("\n")
        }
    }
}

fn case_files() -> Vec<PathBuf> {
    // The runtime value first: a build cache shared by checkouts at other paths can hold a
    // binary compiled elsewhere, whose compile-time path is gone.
    let root =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let dir = Path::new(&root).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().map(|x| x == "sql").unwrap_or(false))
        .collect();
    files.sort();
    files
}

#[test]
fn sql_case_files() {
    let server = TestServer::start();
    let update = std::env::var("UPDATE_RESULTS")
        .map(|v| v == "1")
        .unwrap_or(false);
    let mut failures = Vec::new();
    let mut statements_run = 0;
    for file in case_files() {
        let mut opts = ConnectOptions::new("127.0.0.1", server.port);
        opts.tz = Some("UTC".into());
        let conn = Connection::connect(opts).expect("connect");
        let text = std::fs::read_to_string(&file).expect("read case");
        let mut out = String::new();
        for st in statements(&text) {
            if st.starts_with("--") {
                out.push_str(&st);
                out.push_str("\n\n");
                continue;
            }
            statements_run += 1;
            out.push_str(&st);
            out.push_str("\n\n");
            out.push_str(&run_statement(&conn, &st));
            out.push_str("\n\n");
        }
        let result = file.with_extension("result");
        if update {
            std::fs::write(&result, &out).expect("write result");
            continue;
        }
        let expected = std::fs::read_to_string(&result).unwrap_or_default();
        if expected != out {
            let diff: Vec<String> = expected
                .lines()
                .zip(out.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| {
                    format!("  line {}:\n    expected: {a}\n    actual:   {b}", i + 1)
                })
                .collect();
            failures.push(format!(
                "{}: output differs ({} vs {} lines)\n{}",
                file.display(),
                expected.lines().count(),
                out.lines().count(),
                diff.join("\n")
            ));
        }
    }
    println!(
        "ran {statements_run} statements from {} case files",
        case_files().len()
    );
    assert!(
        failures.is_empty(),
        "SQL case failures (rerun with UPDATE_RESULTS=1 to accept):\n{}\n--- server log:\n{}",
        failures.join("\n"),
        server.log()
    );
}
