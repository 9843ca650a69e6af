//! taosx-agent: runs the collectors of the tasks taosx assigns to it, commits every point to a
//! durable SQLite buffer first, and ships the buffer to taosx over QUIC (it only dials out).
//! `taosx-agent -c agent.toml [--key value]...`
//!
//! The last task list taosx sent is kept in `<buffer dir>/tasks.json`, so after a restart the
//! agent collects again at once, even while taosx is unreachable.

mod config;

use config::Config;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use taos_edge::buffer::{Buffer, BufferError};
use taos_edge::commit::{CollectorCtx, TaskStats};
use taos_edge::link::AgentMsg;
use taos_edge::ship::{SessionEnd, Shipper};
use taos_edge::task::TaskSpec;
use tokio::sync::{mpsc, oneshot, watch, Notify};

const USAGE: &str = "\
Usage: taosx-agent [-c agent.toml] [--key VALUE]...   (also --dump-config, --version, --help)

Keys (agent.toml, TAOSX_AGENT_<KEY> variables, --key flags):
  endpoint             taosx agent endpoint, host:6055
  token                issued by taosx (POST /api/v1/agents)
  fingerprint          sha256 fingerprint of taosx's certificate to pin, or
  ca                   a CA certificate (PEM path) that signed it
  server_name          TLS name to ask for (default: the endpoint host)
  instanceId           name of this agent instance
  keep_online          keep running and reconnecting while taosx is away (true)
  buffer.dir           buffer.db and tasks.json (/var/lib/taos/agent)
  buffer.size_limit_mb size limit of the buffer in MB, 0 = none (1024)
  buffer.policy        when full: block | drop_oldest (block)
  buffer.window        batches in flight on the link (16)
  log.level, log.path  logging (info, stderr)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let version = format!("taosx-agent {} (Rust)", env!("CARGO_PKG_VERSION"));
    let cli = taos_edge::config::cli(&args, USAGE, &version, "/etc/taos/agent.toml");
    if let Some(w) = cli.words.first() {
        eprintln!("taosx-agent: unexpected argument '{w}'\n{USAGE}");
        std::process::exit(2);
    }
    let (cfg, warnings): (Config, Vec<String>) = match taos_edge::config::load(
        cli.file.as_deref(),
        "TAOSX_AGENT",
        std::env::vars(),
        &cli.flags,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("taosx-agent: {e}");
            std::process::exit(2);
        }
    };
    if cli.dump {
        print!("{}", taos_edge::config::dump(&cfg));
        return;
    }
    if let Err(e) = cfg.check() {
        eprintln!("taosx-agent: {e}");
        std::process::exit(2);
    }
    taos_edge::config::init_logging(&cfg.log.level, &cfg.log.path, "taosx-agent.log");
    for w in warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taosx-agent: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cfg)) {
        tracing::error!("{e}");
        eprintln!("taosx-agent: {e}");
        std::process::exit(1);
    }
}

/// A collector running here.
struct Running {
    spec: TaskSpec,
    stop: watch::Sender<bool>,
    stats: Arc<TaskStats>,
}

struct Agent {
    buffer: Arc<Buffer>,
    notify: Arc<Notify>,
    dir: PathBuf,
    running: std::sync::Mutex<HashMap<String, Running>>,
}

impl Agent {
    /// Start, restart or stop collectors to match `list`, and remember it.
    fn reconcile(self: &Arc<Self>, list: Vec<TaskSpec>) {
        if let Ok(json) = serde_json::to_vec(&list) {
            let tmp = self.dir.join("tasks.json.tmp");
            if std::fs::write(&tmp, json)
                .and_then(|_| std::fs::rename(&tmp, self.dir.join("tasks.json")))
                .is_err()
            {
                tracing::warn!("cannot save the task list; it is kept in memory only");
            }
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|id, r| {
            let keep = list.iter().any(|t| &t.id == id && *t == r.spec);
            if !keep {
                let _ = r.stop.send(true);
                tracing::info!(task = %id, "task stopped");
            }
            keep
        });
        for spec in list {
            if running.contains_key(&spec.id) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            let stats = Arc::new(TaskStats::default());
            let commit = self.committer(spec.id.clone());
            let archive = Some(self.dir.join("errors").join(&spec.id));
            let (s2, st) = (spec.clone(), stats.clone());
            tokio::spawn(async move {
                let id = s2.id.clone();
                let ctx = CollectorCtx::new(&s2, commit, st.clone(), archive, stop_rx);
                if let Err(e) = taos_edge::sources::run(s2.source, ctx).await {
                    tracing::error!(task = %id, error = %e, "task failed");
                    st.error(e);
                }
            });
            tracing::info!(task = %spec.id, name = %spec.name, "task started");
            running.insert(spec.id.clone(), Running { spec, stop, stats });
        }
    }

    /// Batches from a collector go into the buffer; the collector acks its source only after.
    fn committer(self: &Arc<Self>, task: String) -> taos_edge::commit::Committer {
        let (tx, mut rx) =
            mpsc::channel::<(taos_edge::Batch, oneshot::Sender<Result<(), String>>)>(4);
        let me = self.clone();
        tokio::spawn(async move {
            let mut warned = false;
            while let Some((batch, reply)) = rx.recv().await {
                let b = me.buffer.clone();
                let t = task.clone();
                let r = tokio::task::spawn_blocking(move || b.append(&t, &batch))
                    .await
                    .map_err(|e| BufferError::Encode(e.to_string()))
                    .and_then(|r| r);
                let answer = match r {
                    Ok(_) => {
                        warned = false;
                        me.notify.notify_one();
                        Ok(())
                    }
                    Err(e @ BufferError::Full { .. }) => {
                        if !warned {
                            tracing::warn!(task = %task, "{e}: collection waits (policy block)");
                            warned = true;
                        }
                        Err(e.to_string())
                    }
                    Err(e) => {
                        tracing::error!(task = %task, error = %e, "cannot buffer points");
                        Err(e.to_string())
                    }
                };
                let _ = reply.send(answer);
            }
        });
        tx
    }

    fn status(&self) -> Vec<AgentMsg> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let now = chrono_now();
        running
            .values()
            .map(|r| AgentMsg::Status {
                task_id: r.spec.id.clone(),
                received: r.stats.points.load(Ordering::Relaxed),
                errors: r.stats.errors.load(Ordering::Relaxed),
                buffered: self.buffer.buffered_points(),
                dropped: self.buffer.dropped_points() + r.stats.dropped.load(Ordering::Relaxed),
                lag_ms: self
                    .buffer
                    .oldest(&r.spec.id)
                    .ok()
                    .flatten()
                    .map(|t| (now - t).max(0))
                    .unwrap_or(0),
                last_error: r.stats.last_error(),
            })
            .collect()
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn run(cfg: Config) -> Result<(), String> {
    let dir = cfg.buffer_dir();
    let policy = cfg.buffer.policy.parse()?;
    let buffer = Arc::new(
        Buffer::open(
            &dir,
            (cfg.buffer.size_limit_mb as u64).saturating_mul(1 << 20),
            policy,
        )
        .map_err(|e| e.to_string())?,
    );
    tracing::info!(
        dir = %dir.display(),
        buffered_points = buffer.buffered_points(),
        "buffer open"
    );
    let agent = Arc::new(Agent {
        buffer: buffer.clone(),
        notify: Arc::new(Notify::new()),
        dir: dir.clone(),
        running: std::sync::Mutex::new(HashMap::new()),
    });
    // Collect at once with the last known tasks, before taosx is even reachable.
    if let Ok(b) = std::fs::read(dir.join("tasks.json")) {
        match serde_json::from_slice::<Vec<TaskSpec>>(&b) {
            Ok(list) => agent.reconcile(list),
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable tasks.json"),
        }
    }
    let trust = if !cfg.fingerprint.is_empty() {
        taos_edge::tls::Trust::Pin(cfg.fingerprint.clone())
    } else {
        taos_edge::tls::Trust::Ca(
            std::fs::read(&cfg.ca).map_err(|e| format!("ca {}: {e}", cfg.ca))?,
        )
    };
    let client = taos_edge::tls::client_config(&trust).map_err(|e| e.to_string())?;
    let (tasks_tx, mut tasks_rx) = mpsc::channel::<Vec<TaskSpec>>(16);
    {
        let agent = agent.clone();
        tokio::spawn(async move {
            while let Some(list) = tasks_rx.recv().await {
                agent.reconcile(list);
            }
        });
    }
    let shipper = Shipper {
        buffer: buffer.clone(),
        notify: agent.notify.clone(),
        window: cfg.buffer.window as usize,
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut backoff = Duration::from_millis(500);
    loop {
        let attempt = async {
            let (ep, conn) =
                taos_edge::ship::connect(&cfg.endpoint, &cfg.server_name, client.clone()).await?;
            let hello = AgentMsg::Hello {
                token: cfg.token.clone(),
                instance_id: cfg.instance_id.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            };
            let a = agent.clone();
            let status = move || a.status();
            let end = shipper
                .session(&conn, hello, tasks_tx.clone(), &status, false)
                .await;
            let stats = conn.stats();
            tracing::info!(
                udp_tx_bytes = stats.udp_tx.bytes,
                udp_rx_bytes = stats.udp_rx.bytes,
                "link closed"
            );
            conn.close(0u32.into(), b"bye");
            ep.wait_idle().await;
            Ok::<SessionEnd, String>(end)
        };
        let outcome = tokio::select! {
            r = attempt => r,
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        };
        let wait = match outcome {
            Ok(SessionEnd::Refused(reason)) => {
                tracing::error!(%reason, "taosx refused this agent; check its token");
                if !cfg.keep_online {
                    return Err(format!("refused by taosx: {reason}"));
                }
                Duration::from_secs(30)
            }
            Ok(SessionEnd::Lost(why)) => {
                tracing::warn!(%why, buffered_points = buffer.buffered_points(), "link lost; reconnecting");
                backoff = Duration::from_millis(500);
                backoff
            }
            Ok(SessionEnd::Drained) => backoff,
            Err(why) => {
                tracing::warn!(%why, buffered_points = buffer.buffered_points(), "cannot reach taosx; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}
