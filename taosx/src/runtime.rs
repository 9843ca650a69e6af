//! What a running taosx holds: the task store, the writer to taosd, tasks running here, the
//! agents connected now, and per-task metrics.

use crate::store::{Store, StoreError, TaskRow};
use common::TaosError;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use taos_edge::commit::{CollectorCtx, TaskStats};
use taos_edge::link::ServerMsg;
use taos_edge::mapping::{ErrorPolicy, Mapper};
use taos_edge::task::TaskSpec;
use taosc::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot, watch};

/// Counters shown by the task status API.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Points received (from the collector here, or from the agent's batches).
    pub received: AtomicU64,
    pub written: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// Reported by the agent: points waiting in its buffer, points dropped by its policy,
    /// collector errors, and the age of its oldest buffered point.
    pub agent_buffered: AtomicU64,
    pub agent_dropped: AtomicU64,
    pub agent_errors: AtomicU64,
    pub agent_received: AtomicU64,
    pub lag_ms: AtomicI64,
}

impl TaskMetrics {
    /// Count a write: rows written, and refused rows as errors.
    pub fn record(&self, w: &Written) {
        self.written.fetch_add(w.rows, Ordering::Relaxed);
        if w.refused > 0 {
            self.errors.fetch_add(w.refused - 1, Ordering::Relaxed);
            self.error(format!(
                "{} row(s) refused by taosd, last: {}",
                w.refused,
                w.last_refusal.as_deref().unwrap_or("")
            ));
        }
    }

    pub fn error(&self, e: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.into());
    }
}

pub struct LocalTask {
    stop: watch::Sender<bool>,
    pub stats: Arc<TaskStats>,
}

pub struct AgentSession {
    pub tx: mpsc::Sender<ServerMsg>,
    pub remote: String,
    pub since: i64,
}

/// Writes batches to taosd, creating the database and super table a task needs first.
pub struct Writer {
    opts: ConnectOptions,
    conns: tokio::sync::Mutex<Vec<Connection>>,
    next: AtomicUsize,
    prepared: Mutex<HashSet<(String, String)>>,
}

const WRITER_CONNECTIONS: usize = 4;

impl Writer {
    pub fn new(opts: ConnectOptions) -> Writer {
        Writer {
            opts,
            conns: tokio::sync::Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            prepared: Mutex::new(HashSet::new()),
        }
    }

    async fn conn(&self) -> Result<Connection, TaosError> {
        let mut g = self.conns.lock().await;
        if g.len() < WRITER_CONNECTIONS {
            let c = Connection::connect(self.opts.clone()).await?;
            g.push(c.clone());
            return Ok(c);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % g.len();
        Ok(g[i].clone())
    }

    /// The task's database (WAL_LEVEL 2: an acknowledged write is on disk) and super table
    /// (super tables named by a template are created as their first rows arrive, see
    /// [`Writer::prepare_stables`]).
    pub async fn prepare(&self, spec: &TaskSpec) -> Result<(), TaosError> {
        let key = (spec.db.clone(), spec.mapping.stable.clone());
        if self.is_prepared(&key) {
            return Ok(());
        }
        let mapper = Mapper::new(&spec.mapping)
            .map_err(|e| TaosError::new(common::Code::INVALID_PARA, e.0))?;
        let c = self.conn().await?;
        c.exec(&format!(
            "CREATE DATABASE IF NOT EXISTS `{}` WAL_LEVEL 2",
            spec.db
        ))
        .await?;
        if !mapper.stable_is_template() {
            c.exec(&mapper.create_stable_sql(&spec.db)).await?;
        }
        self.mark_prepared(key);
        Ok(())
    }

    fn is_prepared(&self, key: &(String, String)) -> bool {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    fn mark_prepared(&self, key: (String, String)) {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
    }

    /// Create the super tables a templated mapping named in `batch` that are not known yet,
    /// with the column types of their first rows.
    async fn prepare_stables(
        &self,
        spec: &TaskSpec,
        batch: &taos_edge::Batch,
    ) -> Result<(), TaosError> {
        let mut mapper = None;
        for t in &batch.tables {
            let Some(u) = &t.using else { continue };
            let key = (spec.db.clone(), u.stable.clone());
            if u.stable == spec.mapping.stable || self.is_prepared(&key) {
                continue;
            }
            if mapper.is_none() {
                mapper = Some(
                    Mapper::new(&spec.mapping)
                        .map_err(|e| TaosError::new(common::Code::INVALID_PARA, e.0))?,
                );
            }
            let Some(sql) = mapper
                .as_ref()
                .and_then(|m| m.create_stable_sql_for(&spec.db, t))
            else {
                continue;
            };
            self.conn().await?.exec(&sql).await?;
            self.mark_prepared(key);
        }
        Ok(())
    }

    /// Write a batch of the task. When taosd refuses its data (a value that does not fit its
    /// column, a bad name, a timestamp out of range: nothing of the request is written then),
    /// the batch is split until the refused rows are alone, the others are written, and the
    /// refused ones follow the task's error policy (archived in `archive`/errors.jsonl,
    /// discarded, or the whole batch fails with `error`), so one bad row never blocks a
    /// pipeline. Other errors (taosd unreachable, not ready) fail the batch for a retry.
    pub async fn write(
        &self,
        spec: &TaskSpec,
        mut batch: taos_edge::Batch,
        archive: &Option<PathBuf>,
    ) -> Result<Written, TaosError> {
        self.prepare(spec).await?;
        self.prepare_stables(spec, &batch).await?;
        // The task decides the database, whatever the batch says.
        batch.db = spec.db.clone();
        let n = taos_edge::points(&batch);
        let conn = self.conn().await?;
        let (result, batch) = conn.write_keeping(batch).await;
        match result {
            Ok(_) => Ok(Written {
                rows: n,
                ..Written::default()
            }),
            Err(e) if e.is_refused_data() && spec.mapping.on_error != ErrorPolicy::Error => {
                tracing::warn!(task = %spec.id, error = %e, "taosd refused rows of a batch; finding them");
                self.write_apart(&conn, spec, batch, archive).await
            }
            Err(e) => {
                // A dropped database or table: prepare again next time.
                if e.is(common::Code::DB_NOT_EXIST) || e.is(common::Code::STB_NOT_EXIST) {
                    self.prepared
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                }
                Err(e)
            }
        }
    }

    /// Write each table alone, halving the rows of a refused one until each refused row is
    /// alone (a few writes per refused row); those follow the error policy.
    async fn write_apart(
        &self,
        conn: &Connection,
        spec: &TaskSpec,
        batch: taos_edge::Batch,
        archive: &Option<PathBuf>,
    ) -> Result<Written, TaosError> {
        let mut out = Written::default();
        for t in batch.tables {
            let mut ranges = vec![0..t.rows.len()];
            while let Some(r) = ranges.pop() {
                if r.is_empty() {
                    continue;
                }
                let part = common::wire::WriteRequest {
                    db: batch.db.clone(),
                    precision: batch.precision,
                    tables: vec![common::wire::WriteTable {
                        name: t.name.clone(),
                        using: t.using.clone(),
                        columns: t.columns.clone(),
                        rows: t.rows[r.clone()].to_vec(),
                    }],
                };
                match conn.write(part).await {
                    Ok(_) => out.rows += r.len() as u64,
                    Err(e) if e.is_refused_data() && r.len() > 1 => {
                        let mid = r.start + r.len() / 2;
                        ranges.push(mid..r.end);
                        ranges.push(r.start..mid);
                    }
                    Err(e) if e.is_refused_data() => {
                        out.refused += 1;
                        if spec.mapping.on_error == ErrorPolicy::Archive {
                            let record = serde_json::json!({
                                "table": t.name,
                                "stable": t.using.as_ref().map(|u| u.stable.clone()),
                                "tags": t.using.as_ref().map(|u| u.tags.clone()),
                                "columns": t.columns,
                                "row": t.rows[r.start],
                            });
                            taos_edge::commit::archive(
                                archive,
                                &t.name,
                                record.to_string().as_bytes(),
                                &e.to_string(),
                            );
                        }
                        out.last_refusal = Some(format!("table {}: {e}", t.name));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}

/// What a write did: rows taosd has, and rows it refused (handled by the error policy).
#[derive(Debug, Default)]
pub struct Written {
    pub rows: u64,
    pub refused: u64,
    pub last_refusal: Option<String>,
}

pub struct Runtime {
    pub store: Store,
    pub writer: Writer,
    pub data_dir: PathBuf,
    pub fingerprint: String,
    pub local: Mutex<HashMap<String, LocalTask>>,
    pub agents: Mutex<HashMap<String, AgentSession>>,
    metrics: Mutex<HashMap<String, Arc<TaskMetrics>>>,
}

impl Runtime {
    pub fn new(
        store: Store,
        taos: ConnectOptions,
        data_dir: PathBuf,
        fingerprint: String,
    ) -> Runtime {
        Runtime {
            store,
            writer: Writer::new(taos),
            data_dir,
            fingerprint,
            local: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
            metrics: Mutex::new(HashMap::new()),
        }
    }

    pub fn metrics(&self, task: &str) -> Arc<TaskMetrics> {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(task.to_string())
            .or_default()
            .clone()
    }

    pub fn archive_dir(&self, task: &str) -> PathBuf {
        self.data_dir.join("tasks").join(task)
    }

    /// Start a task here (no agent): collector -> writer -> broker ack.
    pub fn start_local(self: &Arc<Self>, spec: TaskSpec) {
        self.stop_local(&spec.id);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(TaskStats::default());
        let (commit_tx, mut commit_rx) =
            mpsc::channel::<(taos_edge::Batch, oneshot::Sender<Result<(), String>>)>(4);
        let me = self.clone();
        let spec2 = spec.clone();
        let metrics = self.metrics(&spec.id);
        let archive = Some(self.archive_dir(&spec.id));
        tokio::spawn(async move {
            while let Some((batch, reply)) = commit_rx.recv().await {
                let n = taos_edge::points(&batch);
                metrics.received.fetch_add(n, Ordering::Relaxed);
                let r = me.writer.write(&spec2, batch, &archive).await;
                match &r {
                    Ok(w) => metrics.record(w),
                    Err(e) => metrics.error(e.to_string()),
                }
                let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
            }
        });
        let archive = Some(self.archive_dir(&spec.id));
        let id = spec.id.clone();
        let (id2, st) = (spec.id.clone(), stats.clone());
        let metrics = self.metrics(&spec.id);
        tokio::spawn(async move {
            let ctx = CollectorCtx::new(&spec, commit_tx, st, archive, stop_rx);
            if let Err(e) = taos_edge::sources::run(spec.source, ctx).await {
                tracing::error!(task = %id2, error = %e, "task stopped with an error");
                metrics.error(e);
            }
        });
        self.local.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id,
            LocalTask {
                stop: stop_tx,
                stats,
            },
        );
    }

    pub fn stop_local(&self, id: &str) {
        if let Some(t) = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            let _ = t.stop.send(true);
        }
    }

    pub fn local_stats(&self, id: &str) -> Option<Arc<TaskStats>> {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|t| t.stats.clone())
    }

    /// The running tasks assigned to `agent`.
    pub fn agent_tasks(&self, agent: &str) -> Result<Vec<TaskSpec>, StoreError> {
        Ok(self
            .store
            .tasks()?
            .into_iter()
            .filter(|t| t.running && t.agent.as_deref() == Some(agent))
            .map(|t| t.spec)
            .collect())
    }

    /// Tell a connected agent its current task list.
    pub async fn push_tasks(&self, agent: &str) {
        let tx = self
            .agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent)
            .map(|s| s.tx.clone());
        if let Some(tx) = tx {
            match self.agent_tasks(agent) {
                Ok(list) => {
                    let _ = tx.send(ServerMsg::Tasks(list)).await;
                }
                Err(e) => tracing::error!(error = %e, "cannot list agent tasks"),
            }
        }
    }

    /// Apply a task's stored state: run it here, push it to its agent, or stop it.
    pub async fn apply(self: &Arc<Self>, t: &TaskRow) {
        match (&t.agent, t.running) {
            (None, true) => self.start_local(t.spec.clone()),
            (None, false) => self.stop_local(&t.spec.id),
            (Some(a), _) => {
                self.stop_local(&t.spec.id);
                self.push_tasks(a).await;
            }
        }
    }
}
