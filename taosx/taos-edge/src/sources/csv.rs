//! The CSV source: `csv:///path/file.csv[?header=true&delimiter=,]` (a `.gz` file is read
//! through gzip). The first record names the fields unless `header=false` (then they are `c0`,
//! `c1`, ...). Quoted fields may hold the delimiter, doubled quotes and line breaks. Each record
//! becomes one row through the task's mapping; a record that does not fit follows the task's
//! error policy. A finite source: [`import`] returns when the file is done.

use crate::commit::{commit_once, reject, CollectorCtx};
use crate::mapping::{BatchBuilder, Mapper};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvSource {
    pub path: String,
    pub header: bool,
    pub delimiter: char,
}

impl CsvSource {
    /// `csv:///abs/path.csv`, `csv://./relative.csv`, `csv:relative.csv`, with options.
    pub fn parse(dsn: &str) -> Result<CsvSource, String> {
        let rest = dsn
            .strip_prefix("csv://")
            .or_else(|| dsn.strip_prefix("csv:"))
            .ok_or_else(|| format!("'{dsn}' is not a csv:// DSN"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err("the CSV DSN names no file (csv:///path/file.csv)".into());
        }
        let mut s = CsvSource {
            path: path.to_string(),
            header: true,
            delimiter: ',',
        };
        for kv in query.split('&').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "header" | "has_header" => s.header = !matches!(v, "false" | "0"),
                "delimiter" => {
                    s.delimiter = match v {
                        "tab" | "%09" | "\\t" => '\t',
                        "%2C" => ',',
                        _ => v
                            .chars()
                            .next()
                            .filter(|_| v.chars().count() == 1)
                            .ok_or_else(|| format!("invalid CSV delimiter '{v}'"))?,
                    }
                }
                other => return Err(format!("unknown CSV option '{other}'")),
            }
        }
        Ok(s)
    }
}

/// Split one record. `Ok(None)` asks for the next line (an open quote continues there).
fn split(line: &str, delim: char) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(out)
}

/// Records of a CSV stream, with the number of the line each starts on.
pub struct Records<R> {
    reader: R,
    delim: char,
    line_no: usize,
}

impl<R: BufRead> Records<R> {
    pub fn new(reader: R, delim: char) -> Self {
        Records {
            reader,
            delim,
            line_no: 0,
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<(usize, Vec<String>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = String::new();
        let start = self.line_no + 1;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) if buf.is_empty() => return None,
                Ok(0) => return Some(Err(format!("line {start}: unterminated quoted field"))),
                Ok(_) => {}
                Err(e) => return Some(Err(format!("line {}: {e}", self.line_no + 1))),
            }
            self.line_no += 1;
            let trimmed = line.trim_end_matches(['\n', '\r']);
            if buf.is_empty() && trimmed.is_empty() {
                continue;
            }
            if !buf.is_empty() {
                buf.push('\n');
            }
            buf.push_str(trimmed);
            if let Some(fields) = split(&buf, self.delim) {
                return Some(Ok((start, fields)));
            }
        }
    }
}

/// Import the whole file: rows in batches of `batch` through `ctx.commit`. Returns
/// (rows committed, records rejected). The file is read to its end: `ctx.stop` is not watched.
pub async fn import(src: CsvSource, ctx: CollectorCtx, batch: usize) -> Result<(u64, u64), String> {
    let mapper = Mapper::new(&ctx.mapping).map_err(|e| e.0)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<crate::Batch, String>>(4);
    let policy = ctx.mapping.on_error;
    let db = ctx.db.clone();
    let st = ctx.stats.clone();
    let archive_dir = ctx.archive_dir.clone();
    // Parsing is CPU work on its own thread, a few batches ahead of the writes.
    let reader = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        let file = std::fs::File::open(&src.path).map_err(|e| format!("{}: {e}", src.path))?;
        let reader: Box<dyn BufRead> = if src.path.ends_with(".gz") {
            Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                flate2::read::GzDecoder::new(file),
            ))
        } else {
            Box::new(std::io::BufReader::with_capacity(1 << 20, file))
        };
        let mut records = Records::new(reader, src.delimiter);
        let names: Vec<String> = if src.header {
            match records.next() {
                Some(Ok((_, h))) => h.into_iter().map(|n| n.trim().to_string()).collect(),
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        } else {
            Vec::new()
        };
        let mut builder = BatchBuilder::new(&db);
        let mut rejected = 0u64;
        let now = chrono::Utc::now().timestamp_millis();
        let mut fields: HashMap<String, Json> = HashMap::new();
        for rec in records {
            let (line, values) = rec?;
            fields.clear();
            for (i, v) in values.into_iter().enumerate() {
                let key = names.get(i).cloned().unwrap_or_else(|| format!("c{i}"));
                fields.insert(
                    key,
                    if v.is_empty() {
                        Json::Null
                    } else {
                        Json::String(v)
                    },
                );
            }
            st.messages.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = mapper.row(&fields, now, &mut builder) {
                rejected += 1;
                reject(
                    policy,
                    &st,
                    &archive_dir,
                    &src.path,
                    format!("line {line}: {}", e.0),
                    || serde_json::to_vec(&fields).unwrap_or_default(),
                )?;
                continue;
            }
            st.points.fetch_add(1, Ordering::Relaxed);
            if builder.points() >= batch && tx.blocking_send(Ok(builder.take())).is_err() {
                return Ok(rejected);
            }
        }
        if !builder.is_empty() {
            let _ = tx.blocking_send(Ok(builder.take()));
        }
        Ok(rejected)
    });
    let mut written = 0u64;
    while let Some(b) = rx.recv().await {
        let b = b?;
        let n = crate::points(&b);
        commit_once(&ctx.commit, b).await?;
        written += n;
        ctx.stats.committed.fetch_add(n, Ordering::Relaxed);
    }
    let rejected = reader.await.map_err(|e| e.to_string())??;
    Ok((written, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_quotes_and_dsns() {
        let text = "ts,name,v\n1,\"a,b\",2\n\n3,\"say \"\"hi\"\"\",4\n5,\"two\nlines\",6\n";
        let recs: Vec<(usize, Vec<String>)> = Records::new(text.as_bytes(), ',')
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[1].1, vec!["1", "a,b", "2"]);
        assert_eq!(recs[2].1, vec!["3", "say \"hi\"", "4"]);
        assert_eq!(
            recs[3],
            (5, vec!["5".into(), "two\nlines".into(), "6".into()])
        );
        let bad: Vec<_> = Records::new("a,\"open\n".as_bytes(), ',').collect();
        assert!(bad[0].is_err());
        let s = CsvSource::parse("csv:///tmp/x.csv?header=false&delimiter=;").unwrap();
        assert_eq!(
            (s.path.as_str(), s.header, s.delimiter),
            ("/tmp/x.csv", false, ';')
        );
        assert_eq!(CsvSource::parse("csv://./a.csv").unwrap().path, "./a.csv");
        assert!(CsvSource::parse("csv://").is_err());
        assert!(CsvSource::parse("csv:///a?bogus=1").is_err());
    }
}
