//! The collector contract, the lowest floor under every source: a collector hands its batches
//! to a [`Committer`] (the agent's buffer, or taosd when the task runs in taosx) and
//! acknowledges its source only after the commit; it counts into [`TaskStats`] and treats
//! records the mapping refuses by the task's error policy ([`reject`]). Kept apart from the
//! dispatch ([`crate::sources`]) so the sources can use it without importing each other.

use crate::mapping::{BatchBuilder, ErrorPolicy, Mapping};
use crate::Batch;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Where a collector hands its batches: the receiver commits durably and answers.
pub type Committer = mpsc::Sender<(Batch, oneshot::Sender<Result<(), String>>)>;

/// What a running collector is given: the part of its task it needs, where its batches go, its
/// counters, the error archive directory and the stop signal. It holds no
/// [`TaskSpec`](crate::task::TaskSpec), which names every source's options: [`crate::sources`]
/// builds it from one (`CollectorCtx::new`).
pub struct CollectorCtx {
    /// The task's id (logs, the default MQTT client id).
    pub task: String,
    /// The database the batches go to.
    pub db: String,
    pub mapping: Mapping,
    pub commit: Committer,
    pub stats: Arc<TaskStats>,
    pub archive_dir: Option<PathBuf>,
    pub stop: watch::Receiver<bool>,
}

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

/// A record the mapping refused, under the task's error policy: counted as an error with `why`,
/// then archived (`record()` under `topic`), dropped, or the end of the task.
pub fn reject(
    policy: ErrorPolicy,
    stats: &TaskStats,
    archive_dir: &Option<PathBuf>,
    topic: &str,
    why: String,
    record: impl FnOnce() -> Vec<u8>,
) -> Result<(), String> {
    match policy {
        ErrorPolicy::Archive => archive(archive_dir, topic, &record(), &why),
        ErrorPolicy::Discard => {}
        ErrorPolicy::Error => return Err(format!("stopped by the error policy: {why}")),
    }
    stats.error(why);
    Ok(())
}

const WRITER_STOPPED: &str = "the task's writer stopped";

/// Hand one batch to the writer and wait for its answer (finite sources: a refusal ends them).
pub async fn commit_once(commit: &Committer, batch: Batch) -> Result<(), String> {
    let (reply, answer) = oneshot::channel();
    commit
        .send((batch, reply))
        .await
        .map_err(|_| WRITER_STOPPED.to_string())?;
    answer.await.map_err(|_| WRITER_STOPPED.to_string())?
}

/// Commit the group, retrying with backoff while the writer refuses it (a full buffer, taosd
/// away); the source acknowledges only after. `Ok(false)`: stopped meanwhile.
pub async fn commit_group(
    builder: &mut BatchBuilder,
    commit: &Committer,
    stats: &TaskStats,
    task: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, String> {
    if builder.is_empty() {
        return Ok(true);
    }
    let batch = builder.take();
    let points = crate::points(&batch);
    let mut backoff = Duration::from_millis(50);
    loop {
        let (reply, answer) = oneshot::channel();
        if commit.send((batch.clone(), reply)).await.is_err() {
            return Err(WRITER_STOPPED.into());
        }
        match answer.await {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                stats.error(e.clone());
                tracing::warn!(task = %task, error = %e, "commit failed; retrying");
            }
            Err(_) => return Err(WRITER_STOPPED.into()),
        }
        tokio::select! {
            _ = stop.changed() => return Ok(false),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    stats.committed.fetch_add(points, Ordering::Relaxed);
    Ok(true)
}
