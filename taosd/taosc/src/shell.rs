//! The `taos` shell: flags, statement splitting, result rendering (pure, tested without a
//! server) and the loop that runs statements over a [`crate::blocking::Connection`].

pub mod args;
pub mod render;
pub mod script;

use crate::blocking::Connection;
use render::RenderOptions;
use script::Statement;
use std::io::Write;
use std::time::Instant;

/// Words that leave the interactive shell (with or without `;`).
pub fn is_quit(line: &str) -> bool {
    let w = line.trim().trim_end_matches(';').trim();
    ["quit", "exit", "q"]
        .iter()
        .any(|q| w.eq_ignore_ascii_case(q))
}

/// `source FILE` (the shell's own command), returning the path.
pub fn source_target(sql: &str) -> Option<&str> {
    let (kw, rest) = sql.trim().split_once(char::is_whitespace)?;
    kw.eq_ignore_ascii_case("source")
        .then(|| rest.trim().trim_matches(['\'', '"']))
}

/// Runs statements and prints their results; counts failures for the exit status.
pub struct Session {
    pub conn: Connection,
    pub render: RenderOptions,
    pub failures: usize,
}

impl Session {
    pub fn new(conn: Connection, render: RenderOptions) -> Session {
        Session {
            conn,
            render,
            failures: 0,
        }
    }

    /// Run each statement, continuing after failures. Returns whether all succeeded.
    pub fn run_all(&mut self, stmts: &[Statement]) -> bool {
        let mut ok = true;
        for s in stmts {
            ok &= self.run(s);
        }
        ok
    }

    /// Run one statement and print its outcome: results on stdout, errors on stderr.
    pub fn run(&mut self, stmt: &Statement) -> bool {
        let ok = match source_target(&stmt.sql) {
            Some(path) => self.source(path),
            None => self.query(stmt),
        };
        if !ok {
            self.failures += 1;
        }
        ok
    }

    fn source(&mut self, path: &str) -> bool {
        match std::fs::read_to_string(path) {
            Ok(text) => self.run_all(&script::script_statements(&text)),
            Err(e) => {
                eprintln!("failed to open file {path}: {e}");
                false
            }
        }
    }

    fn query(&mut self, stmt: &Statement) -> bool {
        let start = Instant::now();
        let mut res = match self.conn.query(&stmt.sql) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}", render::db_error(&e, start.elapsed()));
                return false;
            }
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if !res.has_result_set() {
            let is_use = stmt
                .sql
                .split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("use"));
            let _ = if is_use {
                writeln!(out, "Database changed.\n")
            } else {
                writeln!(
                    out,
                    "{}\n",
                    render::rows_affected(res.affected_rows(), start.elapsed())
                )
            };
            return true;
        }
        let fields = res.fields().to_vec();
        let precision = res.precision();
        let widths: Vec<usize> = fields
            .iter()
            .map(|f| render::column_width(f, precision, &self.render))
            .collect();
        let mut rows: u64 = 0;
        loop {
            let block = match res.next_block() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("{}", render::db_error(&e, start.elapsed()));
                    return false;
                }
            };
            if rows == 0 && !stmt.vertical {
                let _ = out.write_all(render::format_header(&fields, &widths).as_bytes());
            }
            for i in 0..block.rows {
                let row = block.row(i);
                rows += 1;
                let line = if stmt.vertical {
                    render::format_vertical_row(
                        rows as usize,
                        &fields,
                        &row,
                        precision,
                        &self.render,
                    )
                } else {
                    render::format_row(row, &widths, precision, &self.render)
                };
                let _ = out.write_all(line.as_bytes());
            }
        }
        let _ = writeln!(out, "{}\n", render::rows_in_set(rows, start.elapsed()));
        let _ = out.flush();
        true
    }
}
