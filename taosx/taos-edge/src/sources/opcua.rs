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
//! Point updates (taosX's dynamic point update): with `point_update=append|update` the
//! selection is resolved again every `rescan`; new points are collected from then on and,
//! with `update`, points gone from the selection are dropped, without restarting the task.
//!
//! Reconnects: a lost connection ends the session; the reader builds a new session (on the
//! next endpoint when there are several), resolves the points again and subscribes again, with
//! a backoff of 0.5 s doubling to 10 s.

mod client;
mod points;
pub mod source;
pub mod values;

pub use source::OpcUaSource;

use crate::commit::{commit_group, reject, CollectorCtx, TaskStats, GROUP_DELAY, GROUP_POINTS};
use crate::mapping::{BatchBuilder, Mapper};
use opcua::client::{DataChangeCallback, Session};
use opcua::types::{
    DataChangeFilter, DataChangeTrigger, DataValue, ExtensionObject, MonitoredItemCreateRequest,
    NodeId, ReadValueId, TimestampsToReturn,
};
use source::{Mode, PointUpdate};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
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

/// Run an OPC-UA task until `ctx.stop`.
pub async fn run(src: OpcUaSource, mut ctx: CollectorCtx) -> Result<(), String> {
    let mapper = Mapper::new(&ctx.mapping).map_err(|e| e.0)?;
    let pki = client::pki_dir(&src, &ctx.archive_dir);
    let (tx, mut rx) = mpsc::channel::<Sample>(src.backlog.max(1));
    let mut reader = tokio::spawn(read_loop(
        src,
        pki,
        tx,
        ctx.stats.clone(),
        ctx.stop.clone(),
        ctx.task.clone(),
    ));
    let mut builder = BatchBuilder::new(&ctx.db);
    let result = loop {
        let first = tokio::select! {
            _ = ctx.stop.changed() => break Ok(()),
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
                if let Err(e) = map_one(&mapper, &ctx, &s, &mut builder) {
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
        match commit_group(
            &mut builder,
            &ctx.commit,
            &ctx.stats,
            &ctx.task,
            &mut ctx.stop,
        )
        .await
        {
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
    ctx: &CollectorCtx,
    s: &Sample,
    builder: &mut BatchBuilder,
) -> Result<(), String> {
    let stats = &ctx.stats;
    stats.messages.fetch_add(1, Ordering::Relaxed);
    let fields = values::fields(&s.point, &s.value, s.arrival_ms);
    match mapper.row(&fields, s.arrival_ms, builder) {
        Ok(()) => {
            stats.points.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            let node = s.point.node.to_string();
            reject(
                ctx.mapping.on_error,
                stats,
                &ctx.archive_dir,
                &node,
                format!("node {node}: {}", e.0),
                || serde_json::to_vec(&fields.to_json()).unwrap_or_default(),
            )
        }
    }
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
    let mut points: Vec<Arc<PointInfo>> = points.into_iter().map(Arc::new).collect();
    let rescans = src.point_update != PointUpdate::None;
    let rescan_every = Duration::from_millis(src.rescan_ms.max(1000));
    let ended = match src.mode {
        Mode::Subscribe => {
            let mut live = subscribe(&session, src, &points, tx.clone(), stats).await?;
            loop {
                tokio::select! {
                    _ = stop.changed() => break None,
                    status = &mut conn.driver => break Some(status),
                    _ = tokio::time::sleep(rescan_every), if rescans => {
                        if let Err(e) = rescan(&session, src, &mut live, stats, task).await {
                            stats.error(e.to_string());
                            tracing::warn!(task = %task, error = %e, "OPC-UA rescan failed");
                        }
                    }
                }
            }
        }
        Mode::Poll => {
            let interval = Duration::from_millis(src.interval_ms);
            let mut next_rescan = tokio::time::Instant::now() + rescan_every;
            loop {
                if rescans && tokio::time::Instant::now() >= next_rescan {
                    if let Err(e) = rescan_polled(&session, src, &mut points, task).await {
                        stats.error(e.to_string());
                        tracing::warn!(task = %task, error = %e, "OPC-UA rescan failed");
                    }
                    next_rescan = tokio::time::Instant::now() + rescan_every;
                }
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

/// A subscription as it stands: the point of each monitored node (read by the callback) and
/// each node's monitored item, so a rescan can add and drop items.
struct Live {
    id: u32,
    by_node: Arc<std::sync::RwLock<HashMap<NodeId, Arc<PointInfo>>>>,
    items: HashMap<NodeId, u32>,
}

/// One subscription, one monitored item per point, values to `tx`.
async fn subscribe(
    session: &Session,
    src: &OpcUaSource,
    points: &[Arc<PointInfo>],
    tx: mpsc::Sender<Sample>,
    stats: &Arc<TaskStats>,
) -> Result<Live, OpcUaError> {
    let by_node: Arc<std::sync::RwLock<HashMap<NodeId, Arc<PointInfo>>>> = Default::default();
    let (cb_stats, cb_points) = (stats.clone(), by_node.clone());
    let callback = DataChangeCallback::new(move |value, item| {
        let point = cb_points
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&item.item_to_monitor().node_id)
            .cloned();
        if let Some(point) = point {
            let sample = Sample {
                point,
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
    let mut live = Live {
        id,
        by_node,
        items: HashMap::new(),
    };
    let failed = add_items(session, src, &mut live, points, stats).await?;
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
    Ok(live)
}

/// Monitored items for `points` in the live subscription; returns how many the server refused.
async fn add_items(
    session: &Session,
    src: &OpcUaSource,
    live: &mut Live,
    points: &[Arc<PointInfo>],
    stats: &TaskStats,
) -> Result<usize, OpcUaError> {
    let filter = if src.deadband > 0.0 {
        ExtensionObject::from_message(DataChangeFilter {
            trigger: DataChangeTrigger::StatusValue,
            deadband_type: src.deadband_type,
            deadband_value: src.deadband,
        })
    } else {
        ExtensionObject::null()
    };
    // Known to the callback before the first value can arrive.
    {
        let mut map = live.by_node.write().unwrap_or_else(|p| p.into_inner());
        for p in points {
            map.insert(p.node.clone(), p.clone());
        }
    }
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
            .create_monitored_items(live.id, TimestampsToReturn::Both, items)
            .await
            .map_err(|e| OpcUaError::Session(format!("create monitored items: {e}")))?;
        for (p, c) in chunk.iter().zip(created.iter()) {
            if c.result.status_code.is_bad() {
                failed += 1;
                stats.error(format!("node {}: {}", p.node, c.result.status_code));
                live.by_node
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&p.node);
            } else {
                live.items
                    .insert(p.node.clone(), c.result.monitored_item_id);
            }
        }
    }
    Ok(failed)
}

/// Resolve the selection again and apply the task's point update: new points get monitored
/// items; with `update`, items of points gone from the selection are deleted.
async fn rescan(
    session: &Session,
    src: &OpcUaSource,
    live: &mut Live,
    stats: &TaskStats,
    task: &str,
) -> Result<(), OpcUaError> {
    let now: Vec<Arc<PointInfo>> = points::resolve(session, &src.points)
        .await?
        .into_iter()
        .map(Arc::new)
        .collect();
    let fresh: Vec<Arc<PointInfo>> = now
        .iter()
        .filter(|p| !live.items.contains_key(&p.node))
        .cloned()
        .collect();
    let mut gone = Vec::new();
    if src.point_update == PointUpdate::Update {
        let keep: std::collections::HashSet<&NodeId> = now.iter().map(|p| &p.node).collect();
        gone = live
            .items
            .keys()
            .filter(|n| !keep.contains(n))
            .cloned()
            .collect();
    }
    let refused = if fresh.is_empty() {
        0
    } else {
        add_items(session, src, live, &fresh, stats).await?
    };
    if !gone.is_empty() {
        let ids: Vec<u32> = gone.iter().filter_map(|n| live.items.remove(n)).collect();
        {
            let mut map = live.by_node.write().unwrap_or_else(|p| p.into_inner());
            for n in &gone {
                map.remove(n);
            }
        }
        for chunk in ids.chunks(points::CHUNK) {
            session
                .delete_monitored_items(live.id, chunk)
                .await
                .map_err(|e| OpcUaError::Session(format!("delete monitored items: {e}")))?;
        }
    }
    if !fresh.is_empty() || !gone.is_empty() {
        tracing::info!(
            task = %task,
            added = fresh.len() - refused,
            removed = gone.len(),
            points = live.items.len(),
            "OPC-UA points rescanned"
        );
    }
    Ok(())
}

/// The polled points after a rescan under the task's point update.
async fn rescan_polled(
    session: &Session,
    src: &OpcUaSource,
    points: &mut Vec<Arc<PointInfo>>,
    task: &str,
) -> Result<(), OpcUaError> {
    let now = points::resolve(session, &src.points).await?;
    let known: std::collections::HashSet<NodeId> = points.iter().map(|p| p.node.clone()).collect();
    let before = points.len();
    if src.point_update == PointUpdate::Update {
        let keep: std::collections::HashSet<&NodeId> = now.iter().map(|p| &p.node).collect();
        points.retain(|p| keep.contains(&p.node));
    }
    let removed = before - points.len();
    let mut added = 0;
    for p in now {
        if !known.contains(&p.node) {
            points.push(Arc::new(p));
            added += 1;
        }
    }
    if added + removed > 0 {
        tracing::info!(task = %task, added, removed, points = points.len(), "OPC-UA points rescanned");
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
