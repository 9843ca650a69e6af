//! The sources, and running a task's source whatever it is: [`run`] dispatches on
//! [`Source`] to the collector of each kind. It sits on top: the collectors below import only
//! the commit contract ([`crate::commit`]), the DSN helpers ([`crate::dsn`]) and the mapping,
//! never this module or the task definition that names them all ([`crate::task`]).
//!
//! | module | what |
//! |---|---|
//! | [`csv`] | the CSV file source |
//! | [`pi`] | AVEVA PI over the PI Web API (back-fill, then polling; resumes where it stopped) |
//! | [`http`] | the small HTTP/1.1 client of the REST sources (today PI) |
//! | [`mqtt`] | the MQTT collector (3.1.1 and 5) with broker acks after durable hand-off |
//! | [`opcua`] | the OPC-UA collector (subscription or polling, security, failover) |

pub mod csv;
pub mod http;
pub mod mqtt;
pub mod opcua;
pub mod pi;

use crate::commit::{CollectorCtx, Committer, TaskStats};
use crate::task::{Source, TaskSpec};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

impl CollectorCtx {
    /// The context `task` runs in: its id, database and mapping, where its batches go
    /// (`commit`), its counters, its error archive directory and its stop signal.
    pub fn new(
        task: &TaskSpec,
        commit: Committer,
        stats: Arc<TaskStats>,
        archive_dir: Option<PathBuf>,
        stop: watch::Receiver<bool>,
    ) -> CollectorCtx {
        CollectorCtx {
            task: task.id.clone(),
            db: task.db.clone(),
            mapping: task.mapping.clone(),
            commit,
            stats,
            archive_dir,
            stop,
        }
    }
}

/// Run a task's `source` in `ctx` until `ctx.stop` fires (or it fails for good).
pub async fn run(source: Source, ctx: CollectorCtx) -> Result<(), String> {
    match source {
        Source::Mqtt(src) => mqtt::run(src, ctx).await,
        Source::Pi(src) => pi::run(src, ctx).await,
        Source::Csv(src) => {
            let task = ctx.task.clone();
            let (rows, rejected) = csv::import(src, ctx, 10_000).await?;
            tracing::info!(task = %task, rows, rejected, "CSV import finished");
            Ok(())
        }
        Source::OpcUa(src) => opcua::run(src, ctx).await,
    }
}
