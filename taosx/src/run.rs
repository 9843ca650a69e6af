//! `taosx run -f <source DSN> -t <sink DSN> [--parser @file.json | --parser JSON]
//! [--on-error archive|discard|error] [--archive DIR] [--batch N]`: a one-off job without the
//! service. A file source (`csv://`) ends when the file is imported; a stream source (`mqtt://`,
//! `opcua://`) runs until Ctrl-C. Prints rows written, records rejected and rows/s.

use crate::runtime::Writer;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use taos_edge::commit::{CollectorCtx, TaskStats};
use taos_edge::mapping::Mapping;
use taos_edge::task::{Source, TaskSpec};
use tokio::sync::{mpsc, oneshot, watch};

pub const USAGE: &str = "\
Usage: taosx run -f <source DSN> -t <sink DSN> --parser <@file.json | JSON> [options]
  -f, --from DSN       csv:///path/file.csv[?header=true&delimiter=,], mqtt://host:1883?topics=a/+::1,
                       opcua://host:4840/path?nodes=ns=2;s=Temp1[&mode=poll&interval=1s]
  -t, --to DSN         taos://user:password@host:6030/db
  --parser SPEC        parser/mapping JSON ({\"parse\":{..},\"model\":{..}} or a task mapping), or @file
  --on-error POLICY    archive (default) | discard | error, for records that do not fit
  --archive DIR        where rejected records go (default ./taosx-archive)
  --batch N            rows per write (default 10000)
";

fn arg(args: &[String], short: &str, long: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == short || a == long {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some(v.to_string());
        }
    }
    None
}

pub async fn main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    let from = arg(args, "-f", "--from").ok_or("missing -f <source DSN>")?;
    let to = arg(args, "-t", "--to").ok_or("missing -t <sink DSN>")?;
    let parser = arg(args, "-p", "--parser").ok_or("missing --parser (the mapping JSON)")?;
    let text = match parser.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => parser,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("--parser is not JSON: {e}"))?;
    let mut mapping = if json.get("model").is_some() {
        Mapping::from_parser_json(&json).map_err(|e| format!("--parser: {}", e.0))?
    } else {
        serde_json::from_value(json).map_err(|e| format!("--parser: {e}"))?
    };
    if let Some(p) = arg(args, "", "--on-error") {
        mapping.on_error = p.parse()?;
    }
    taos_edge::mapping::Mapper::new(&mapping).map_err(|e| format!("--parser: {}", e.0))?;
    let batch: usize = arg(args, "", "--batch")
        .map(|b| b.parse().map_err(|_| format!("invalid --batch {b}")))
        .transpose()?
        .unwrap_or(10_000)
        .max(1);
    let archive =
        PathBuf::from(arg(args, "", "--archive").unwrap_or_else(|| "taosx-archive".into()));
    let source = Source::parse(&from).map_err(|e| e.0)?;
    let opts = taosc::ConnectOptions::from_dsn(&to).map_err(|e| e.to_string())?;
    let db = opts
        .db
        .clone()
        .ok_or_else(|| format!("sink '{to}' names no database (taos://host:6030/db)"))?;
    taos_edge::task::validate_db(&db).map_err(|e| e.0)?;
    let spec = TaskSpec {
        id: "run".into(),
        name: "taosx run".into(),
        source,
        db,
        mapping,
    };
    let mut wopts = opts.clone();
    wopts.db = None;
    let writer = Arc::new(Writer::new(wopts));
    writer.prepare(&spec).await.map_err(|e| e.to_string())?;

    let (commit_tx, mut commit_rx) =
        mpsc::channel::<(taos_edge::Batch, oneshot::Sender<Result<(), String>>)>(4);
    let stats = Arc::new(TaskStats::default());
    let (w, s2, st, arch) = (
        writer.clone(),
        spec.clone(),
        stats.clone(),
        Some(archive.clone()),
    );
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let wr = written.clone();
    let sink = tokio::spawn(async move {
        while let Some((b, reply)) = commit_rx.recv().await {
            let r = w.write(&s2, b, &arch).await;
            if let Ok(done) = &r {
                wr.fetch_add(done.rows, Ordering::Relaxed);
                if done.refused > 0 {
                    // Rows taosd refused count with the records the mapping rejected.
                    st.errors.fetch_add(done.refused, Ordering::Relaxed);
                }
            }
            let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let t0 = Instant::now();
    let job = {
        let (spec, stats, archive) = (spec.clone(), stats.clone(), Some(archive.clone()));
        tokio::spawn(async move {
            let ctx = CollectorCtx::new(&spec, commit_tx, stats, archive, stop_rx);
            match spec.source {
                Source::Csv(src) => taos_edge::sources::csv::import(src, ctx, batch)
                    .await
                    .map(|_| ()),
                source => taos_edge::sources::run(source, ctx).await,
            }
        })
    };
    let result = tokio::select! {
        r = job => r.map_err(|e| e.to_string()).and_then(|r| r),
        _ = tokio::signal::ctrl_c() => { let _ = stop_tx.send(true); Ok(()) }
    };
    let _ = sink.await;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    let rows = written.load(Ordering::Relaxed);
    let rejected = stats.errors.load(Ordering::Relaxed);
    println!(
        "taosx run: {rows} rows written to {} in {secs:.2} s = {:.0} rows/s; {rejected} records rejected ({})",
        spec.db,
        rows as f64 / secs,
        match spec.mapping.on_error {
            taos_edge::mapping::ErrorPolicy::Archive =>
                format!("archived in {}", archive.join("errors.jsonl").display()),
            taos_edge::mapping::ErrorPolicy::Discard => "discarded".to_string(),
            taos_edge::mapping::ErrorPolicy::Error => "policy error".to_string(),
        }
    );
    result
}
