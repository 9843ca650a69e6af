//! The OPC-UA collector (async-opcua client), in taosx or in an agent.
//!
//! A reader keeps a session to one of the task's endpoints (the next one after a failure),
//! resolves the points, and either creates a subscription with one monitored item per point or
//! reads every point each interval. Values go through a channel to the writer half, which maps
//! them to rows (see [`values`] for the fields a mapping can use), groups them like the MQTT
//! collector and commits each group before taking more. OPC-UA has no acknowledgement to give
//! back: what the collector holds when it stops is lost, as with taosX.
//!
//! Back-pressure: values wait in a backlog (`backlog=`, default [`BACKLOG`]) between the reader and the
//! writer. Polling waits for room; a subscription cannot make the server wait, so when the
//! sink is slower than the server for long enough the newest values are let go and counted
//! (`dropped_points`), as an OPC-UA server does with a monitored item's full queue. Memory
//! stays bounded whatever the sink does.
//!
//! Reconnects: a lost connection ends the session; the reader builds a new session (on the
//! next endpoint when there are several), resolves the points again and subscribes again, with
//! a backoff of 0.5 s doubling to 10 s.

mod client;
mod points;
pub mod source;
pub mod values;

pub use source::OpcUaSource;

use crate::collect::{Committer, TaskStats, GROUP_DELAY, GROUP_POINTS};
use crate::mapping::{BatchBuilder, ErrorPolicy, Mapper};
use crate::task::TaskSpec;
use opcua::client::{DataChangeCallback, Session};
use opcua::types::{
    DataChangeFilter, DataChangeTrigger, DataValue, ExtensionObject, MonitoredItemCreateRequest,
    NodeId, ReadValueId, TimestampsToReturn,
};
use source::Mode;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use values::PointInfo;

#[derive(Debug, thiserror::Error)]
pub enum OpcUaError {
    /// The client cannot be set up (PKI directory, certificates): the task cannot run.
    #[error("OPC-UA setup: {0}")]
    Setup(String),
    #[error("OPC-UA endpoint {endpoint}: {msg}")]
    Connect { endpoint: String, msg: String },
    #[error("OPC-UA session: {0}")]
    Session(String),
    #[error("OPC-UA points: {0}")]
    Points(String),
}

/// Values held between the reader and the writer by default (a few hundred bytes each;
/// `backlog=` in the DSN).
pub const BACKLOG: usize = 500_000;

/// One value of one point, as received.
struct Sample {
    point: Arc<PointInfo>,
    value: DataValue,
    arrival_ms: i64,
}

/// Run an OPC-UA task until `stop`.
pub async fn run(
    src: OpcUaSource,
    task: TaskSpec,
    commit: Committer,
    stats: Arc<TaskStats>,
    archive_dir: Option<PathBuf>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mapper = Mapper::new(&task.mapping).map_err(|e| e.0)?;
    let pki = client::pki_dir(&src, &archive_dir);
    let (tx, mut rx) = mpsc::channel::<Sample>(src.backlog.max(1));
    let mut reader = tokio::spawn(read_loop(
        src,
        pki,
        tx,
        stats.clone(),
        stop.clone(),
        task.id.clone(),
    ));
    let mut builder = BatchBuilder::new(&task.db);
    let mut stop_rx = stop;
    let result = loop {
        let first = tokio::select! {
            _ = stop_rx.changed() => break Ok(()),
            s = rx.recv() => s,
        };
        let Some(first) = first else {
            // The reader ended: a setup error it could not get past.
            break match (&mut reader).await {
                Ok(Err(e)) => Err(e.to_string()),
                _ => Ok(()),
            };
        };
        let deadline = tokio::time::Instant::now() + GROUP_DELAY;
        let mut next = Some(first);
        let mut failed = None;
        loop {
            if let Some(s) = next.take() {
                if let Err(e) = map_one(&mapper, &task, &s, &mut builder, &stats, &archive_dir) {
                    failed = Some(e);
                    break;
                }
            }
            if builder.points() >= GROUP_POINTS {
                break;
            }
            tokio::select! {
                s = rx.recv() => match s { Some(s) => next = Some(s), None => break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if let Some(e) = failed {
            break Err(e);
        }
        match commit_group(&mut builder, &commit, &stats, &task.id, &mut stop_rx).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    reader.abort();
    result
}

/// Map one value into the group; a record the mapping rejects follows the error policy.
fn map_one(
    mapper: &Mapper,
    task: &TaskSpec,
    s: &Sample,
    builder: &mut BatchBuilder,
    stats: &TaskStats,
    archive_dir: &Option<PathBuf>,
) -> Result<(), String> {
    stats.messages.fetch_add(1, Ordering::Relaxed);
    let fields = values::fields(&s.point, &s.value, s.arrival_ms);
    match mapper.row(&fields, s.arrival_ms, builder) {
        Ok(()) => {
            stats.points.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            let node = s.point.node.to_string();
            stats.error(format!("node {node}: {}", e.0));
            match task.mapping.on_error {
                ErrorPolicy::Archive => {
                    let record = serde_json::to_vec(&fields).unwrap_or_default();
                    crate::collect::archive(archive_dir, &node, &record, &e.0);
                    Ok(())
                }
                ErrorPolicy::Discard => Ok(()),
                ErrorPolicy::Error => {
                    Err(format!("stopped by the error policy: node {node}: {}", e.0))
                }
            }
        }
    }
}

/// Commit the group, retrying while the receiver refuses it. `Ok(false)`: stopped meanwhile.
async fn commit_group(
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
            return Err("the task's writer stopped".into());
        }
        match answer.await {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                stats.error(e.clone());
                tracing::warn!(task = %task, error = %e, "commit failed; retrying");
            }
            Err(_) => return Err("the task's writer stopped".into()),
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

/// Keep a session on one of the endpoints and feed `tx` until `stop`.
async fn read_loop(
    src: OpcUaSource,
    pki: PathBuf,
    tx: mpsc::Sender<Sample>,
    stats: Arc<TaskStats>,
    mut stop: watch::Receiver<bool>,
    task: String,
) -> Result<(), OpcUaError> {
    let mut client = match client::make_client(&src, &pki).await {
        Ok(c) => c,
        Err(e) => {
            stats.error(e.to_string());
            tracing::error!(task = %task, error = %e, "OPC-UA task cannot start");
            return Err(e);
        }
    };
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0usize;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let url = &src.endpoints[attempt % src.endpoints.len()];
        let mut collected = false;
        let r = session_run(
            &mut client,
            &src,
            &pki,
            url,
            &tx,
            &stats,
            stop.clone(),
            &task,
            &mut collected,
        )
        .await;
        stats.connected.store(false, Ordering::Relaxed);
        match r {
            Ok(()) => return Ok(()),
            Err(e) => {
                stats.error(e.to_string());
                tracing::warn!(task = %task, error = %e, "OPC-UA session ended; trying again");
            }
        }
        if collected {
            backoff = Duration::from_millis(500);
        }
        attempt += 1;
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One session: connect, resolve points, collect until the session gives up or `stop`.
#[allow(clippy::too_many_arguments)]
async fn session_run(
    client: &mut opcua::client::Client,
    src: &OpcUaSource,
    pki: &Path,
    url: &str,
    tx: &mpsc::Sender<Sample>,
    stats: &Arc<TaskStats>,
    mut stop: watch::Receiver<bool>,
    task: &str,
    collected: &mut bool,
) -> Result<(), OpcUaError> {
    let mut conn = client::connect(client, src, pki, url, stats.clone(), task).await?;
    let session = conn.session.clone();
    let points = points::resolve(&session, &src.points).await?;
    tracing::info!(task = %task, endpoint = %url, points = points.len(), mode = ?src.mode, "OPC-UA collecting");
    *collected = true;
    let points: Vec<Arc<PointInfo>> = points.into_iter().map(Arc::new).collect();
    let ended = match src.mode {
        Mode::Subscribe => {
            subscribe(&session, src, &points, tx.clone(), stats).await?;
            tokio::select! {
                _ = stop.changed() => None,
                status = &mut conn.driver => Some(status),
            }
        }
        Mode::Poll => {
            let interval = Duration::from_millis(src.interval_ms);
            loop {
                if let Err(e) = poll_once(&session, &points, tx).await {
                    stats.error(e.to_string());
                    tracing::warn!(task = %task, error = %e, "OPC-UA read failed");
                }
                tokio::select! {
                    _ = stop.changed() => break None,
                    status = &mut conn.driver => break Some(status),
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    };
    match ended {
        None => {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
            Ok(())
        }
        Some(status) => Err(OpcUaError::Session(format!(
            "the session to {url} ended: {}",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string())
        ))),
    }
}

/// One subscription, one monitored item per point, values to `tx`.
async fn subscribe(
    session: &Session,
    src: &OpcUaSource,
    points: &[Arc<PointInfo>],
    tx: mpsc::Sender<Sample>,
    stats: &Arc<TaskStats>,
) -> Result<(), OpcUaError> {
    let by_node: HashMap<NodeId, Arc<PointInfo>> =
        points.iter().map(|p| (p.node.clone(), p.clone())).collect();
    let cb_stats = stats.clone();
    let callback = DataChangeCallback::new(move |value, item| {
        if let Some(point) = by_node.get(&item.item_to_monitor().node_id) {
            let sample = Sample {
                point: point.clone(),
                value,
                arrival_ms: chrono::Utc::now().timestamp_millis(),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(sample) {
                let n = cb_stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(100_000) {
                    cb_stats.error(format!(
                        "the sink is slower than the server: {n} values dropped so far"
                    ));
                    tracing::warn!(dropped = n, "OPC-UA backlog full: values dropped");
                }
            }
        }
    });
    let id = session
        .create_subscription(
            Duration::from_millis(src.interval_ms),
            60,
            10,
            0,
            0,
            true,
            callback,
        )
        .await
        .map_err(|e| OpcUaError::Session(format!("create subscription: {e}")))?;
    let filter = if src.deadband > 0.0 {
        ExtensionObject::from_message(DataChangeFilter {
            trigger: DataChangeTrigger::StatusValue,
            deadband_type: src.deadband_type,
            deadband_value: src.deadband,
        })
    } else {
        ExtensionObject::null()
    };
    let mut failed = 0usize;
    for chunk in points.chunks(points::CHUNK) {
        let items: Vec<MonitoredItemCreateRequest> = chunk
            .iter()
            .map(|p| {
                let mut r: MonitoredItemCreateRequest = p.node.clone().into();
                r.requested_parameters.sampling_interval = src.sampling_ms as f64;
                r.requested_parameters.queue_size = src.queue_size;
                r.requested_parameters.discard_oldest = true;
                r.requested_parameters.filter = filter.clone();
                r
            })
            .collect();
        let created = session
            .create_monitored_items(id, TimestampsToReturn::Both, items)
            .await
            .map_err(|e| OpcUaError::Session(format!("create monitored items: {e}")))?;
        for (p, c) in chunk.iter().zip(created.iter()) {
            if c.result.status_code.is_bad() {
                failed += 1;
                stats.error(format!("node {}: {}", p.node, c.result.status_code));
            }
        }
    }
    if failed == points.len() {
        return Err(OpcUaError::Points(
            "the server refused every monitored item".into(),
        ));
    }
    if failed > 0 {
        tracing::warn!(
            failed,
            total = points.len(),
            "some OPC-UA monitored items were refused"
        );
    }
    Ok(())
}

/// The current values of some nodes (one Read; callers keep to [`points::CHUNK`] nodes).
async fn read_values(
    session: &Session,
    nodes: impl Iterator<Item = &NodeId>,
) -> Result<Vec<DataValue>, OpcUaError> {
    let reads: Vec<ReadValueId> = nodes.map(|n| n.clone().into()).collect();
    session
        .read(&reads, TimestampsToReturn::Both, 0.0)
        .await
        .map_err(|e| OpcUaError::Session(format!("read: {e}")))
}

/// Read every point once (in chunks), values to `tx`.
async fn poll_once(
    session: &Session,
    points: &[Arc<PointInfo>],
    tx: &mpsc::Sender<Sample>,
) -> Result<(), OpcUaError> {
    for chunk in points.chunks(points::CHUNK) {
        let values = read_values(session, chunk.iter().map(|p| &p.node)).await?;
        let arrival_ms = chrono::Utc::now().timestamp_millis();
        for (p, v) in chunk.iter().zip(values) {
            // Waits for room: polling slows down to what the sink takes.
            let sample = Sample {
                point: p.clone(),
                value: v,
                arrival_ms,
            };
            if tx.send(sample).await.is_err() {
                return Ok(()); // the writer stopped
            }
        }
    }
    Ok(())
}

/// What a task with this source would collect, for the API's preview: how many points the
/// selection resolves to and, for the first `limit`, their attributes, current value and (given
/// a mapping) the super table and subtable each would go to. Tries the endpoints in turn.
/// `archive_dir` places the client certificate store as for a task (see [`run`]).
pub async fn preview(
    src: &OpcUaSource,
    archive_dir: &Option<PathBuf>,
    mapping: Option<&crate::mapping::Mapping>,
    limit: usize,
) -> Result<serde_json::Value, OpcUaError> {
    let pki = &client::pki_dir(src, archive_dir);
    let mapper = mapping
        .map(Mapper::new)
        .transpose()
        .map_err(|e| OpcUaError::Points(format!("mapping: {}", e.0)))?;
    let mut client = client::make_client(src, pki).await?;
    let stats = Arc::new(TaskStats::default());
    let mut last = None;
    for url in &src.endpoints {
        let conn = match client::connect(&mut client, src, pki, url, stats.clone(), "preview").await
        {
            Ok(c) => c,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let session = conn.session.clone();
        let result = preview_on(&session, src, mapper.as_ref(), limit).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
        return result.map(|mut v| {
            v["endpoint"] = serde_json::json!(url);
            v
        });
    }
    Err(last.unwrap_or_else(|| OpcUaError::Setup("no endpoint".into())))
}

async fn preview_on(
    session: &Session,
    src: &OpcUaSource,
    mapper: Option<&Mapper>,
    limit: usize,
) -> Result<serde_json::Value, OpcUaError> {
    let points = points::resolve(session, &src.points).await?;
    let shown = &points[..points.len().min(limit)];
    let mut out = Vec::with_capacity(shown.len());
    for chunk in shown.chunks(points::CHUNK) {
        let values = read_values(session, chunk.iter().map(|p| &p.node)).await?;
        let now = chrono::Utc::now().timestamp_millis();
        for (p, v) in chunk.iter().zip(values.iter()) {
            let f = values::fields(p, v, now);
            let mut item = serde_json::json!({
                "node_id": f["node_id"], "name": f["name"], "display_name": f["display_name"],
                "description": f["description"], "path": f["path"], "type": f["type"],
                "value": f["value"], "quality": f["quality_text"], "source_ts": f["source_ts"],
            });
            if let Some(m) = mapper {
                match m.target(&f) {
                    Ok((stable, table)) => {
                        item["stable"] = serde_json::json!(stable);
                        item["table"] = serde_json::json!(table);
                    }
                    Err(e) => item["mapping_error"] = serde_json::json!(e.0),
                }
            }
            out.push(item);
        }
    }
    Ok(serde_json::json!({"total": points.len(), "points": out}))
}
