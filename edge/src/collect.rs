//! Running a task's source, whatever it is: every collector takes the task, a [`Committer`] to
//! hand its batches to (the agent's buffer, or taosd when the task runs in taosx), counters, an
//! error archive directory and a stop signal, and acknowledges its source only after a commit.

use crate::task::{Source, TaskSpec};
use crate::Batch;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// Where a collector hands its batches: the receiver commits durably and answers.
pub type Committer = mpsc::Sender<(Batch, oneshot::Sender<Result<(), String>>)>;

/// Commit after this many points...
pub const GROUP_POINTS: usize = 5000;
/// ...or this long after the first uncommitted point.
pub const GROUP_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

/// Counters of a running task (what the API's task status shows).
#[derive(Debug, Default)]
pub struct TaskStats {
    pub messages: AtomicU64,
    pub points: AtomicU64,
    pub errors: AtomicU64,
    pub committed: AtomicU64,
    /// Values the collector let go because its backlog was full (OPC-UA subscriptions, whose
    /// server cannot be made to wait).
    pub dropped: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub connected: std::sync::atomic::AtomicBool,
}

impl TaskStats {
    pub fn error(&self, e: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.into());
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Append a rejected payload to the task's error archive (`errors.jsonl`).
pub fn archive(dir: &Option<PathBuf>, topic: &str, payload: &[u8], why: &str) {
    let Some(dir) = dir else { return };
    use std::io::Write;
    let line = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339(),
        "topic": topic,
        "error": why,
        "payload": String::from_utf8_lossy(payload),
    });
    let r = std::fs::create_dir_all(dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("errors.jsonl"))
            .and_then(|mut f| writeln!(f, "{line}"))
    });
    if let Err(e) = r {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot write the error archive");
    }
}

/// Run `task` until `stop` fires (or it fails for good).
pub async fn run(
    task: TaskSpec,
    commit: Committer,
    stats: Arc<TaskStats>,
    archive_dir: Option<PathBuf>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    match &task.source {
        Source::Mqtt(src) => {
            let src = src.clone();
            crate::mqtt::run(src, task, commit, stats, archive_dir, stop).await
        }
        Source::Pi(src) => {
            let src = src.clone();
            crate::pi::run(src, task, commit, stats, archive_dir, stop).await
        }
        Source::Csv(src) => {
            let src = src.clone();
            let (rows, rejected) =
                crate::csv::import(src, task.clone(), commit, stats, archive_dir, 10_000).await?;
            tracing::info!(task = %task.id, rows, rejected, "CSV import finished");
            Ok(())
        }
        Source::OpcUa(src) => {
            let src = src.clone();
            crate::opcua::run(src, task, commit, stats, archive_dir, stop).await
        }
    }
}
