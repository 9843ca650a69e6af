//! The HTTP API on 6050 (JSON): tasks and agents.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /api/v1/health | `{"status":"ok","fingerprint":..}` |
//! | POST | /api/v1/tasks | create `{name, from, to, mapping, agent?, start?}` -> 201 `{id}` |
//! | GET | /api/v1/tasks | list with status and metrics |
//! | GET | /api/v1/tasks/{id} | one task |
//! | POST | /api/v1/tasks/{id}/start, /stop | run or stop it |
//! | DELETE | /api/v1/tasks/{id} | stop and delete |
//! | GET | /api/v1/agents | agents and whether they are connected |
//! | POST | /api/v1/agents | `{name}` -> 201 `{id, token}` (the token is shown only here) |
//! | DELETE | /api/v1/agents/{id} | revoke: its token stops working, a live link is closed |
//! | POST | /api/v1/preview | `{from, mapping?, limit?}`: the points an OPC-UA source selects, with values and targets |
//!
//! A definition that cannot work is refused with 400 and `{"error": "why"}`.

use crate::runtime::Runtime;
use crate::store::{random_hex, AgentRow, TaskRow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use taos_edge::mapping::{Mapper, Mapping};
use taos_edge::task::{validate_db, Source, TaskSpec};

pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/tasks", get(list_tasks).post(create_task))
        .route("/api/v1/tasks/{id}", get(show_task).delete(delete_task))
        .route("/api/v1/tasks/{id}/start", post(start_task))
        .route("/api/v1/tasks/{id}/stop", post(stop_task))
        .route("/api/v1/preview", post(preview))
        .route("/api/v1/agents", get(list_agents).post(create_agent))
        .route("/api/v1/agents/{id}", axum::routing::delete(revoke_agent))
        .with_state(rt)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn health(State(rt): State<Arc<Runtime>>) -> Response {
    Json(json!({"status": "ok", "fingerprint": format!("sha256:{}", rt.fingerprint)}))
        .into_response()
}

#[derive(Deserialize)]
struct NewTask {
    name: String,
    from: String,
    to: String,
    mapping: Value,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default = "yes")]
    start: bool,
}

fn yes() -> bool {
    true
}

/// `taos:///db`, `taos://host:6030/db` or just `db`: the target database.
fn sink_db(to: &str) -> Result<String, String> {
    let db = match to.split_once("://") {
        Some((scheme, rest)) => {
            if !matches!(scheme, "taos" | "taos+ws" | "taos+tcp") {
                return Err(format!(
                    "sink '{scheme}' is not supported (use taos://.../db)"
                ));
            }
            let path = rest.split('?').next().unwrap_or("");
            path.rsplit_once('/')
                .map(|(_, db)| db.to_string())
                .unwrap_or_default()
        }
        None => to.to_string(),
    };
    if db.is_empty() {
        return Err(format!("sink '{to}' names no database (taos:///db)"));
    }
    validate_db(&db).map_err(|e| e.0)?;
    Ok(db)
}

fn task_json(rt: &Runtime, t: &TaskRow) -> Value {
    let m = rt.metrics(&t.spec.id);
    let local = rt.local_stats(&t.spec.id);
    let connected = match &t.agent {
        Some(a) => rt
            .agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(a),
        None => local
            .as_ref()
            .map(|s| s.connected.load(Ordering::Relaxed))
            .unwrap_or(false),
    };
    let (collector_errors, last_collector_error) = match &local {
        Some(s) => (s.errors.load(Ordering::Relaxed), s.last_error()),
        None => (m.agent_errors.load(Ordering::Relaxed), None),
    };
    let last_error = m
        .last_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .or(last_collector_error);
    json!({
        "id": t.spec.id,
        "name": t.spec.name,
        "from": t.from,
        "to": t.to,
        "agent": t.agent,
        "status": if t.running { "running" } else { "stopped" },
        "created": t.created,
        "metrics": {
            "points_received": m.received.load(Ordering::Relaxed),
            "rows_written": m.written.load(Ordering::Relaxed),
            "errors": m.errors.load(Ordering::Relaxed) + collector_errors,
            "buffered_points": m.agent_buffered.load(Ordering::Relaxed),
            "dropped_points": m.agent_dropped.load(Ordering::Relaxed)
                + local.as_ref().map_or(0, |s| s.dropped.load(Ordering::Relaxed)),
            "lag_ms": m.lag_ms.load(Ordering::Relaxed),
            "source_connected": connected,
            "last_error": last_error,
        }
    })
}

async fn create_task(State(rt): State<Arc<Runtime>>, body: axum::body::Bytes) -> Response {
    let t: NewTask = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid task JSON: {e}")),
    };
    if t.name.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "the task needs a name");
    }
    let source = match Source::parse(&t.from) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    let db = match sink_db(&t.to) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mapping: Mapping = match serde_json::from_value(t.mapping) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid mapping: {e}")),
    };
    if let Err(e) = Mapper::new(&mapping) {
        return error(StatusCode::BAD_REQUEST, format!("invalid mapping: {}", e.0));
    }
    if let Some(a) = &t.agent {
        match rt.store.agents() {
            Ok(list) if list.iter().any(|x| &x.id == a && !x.revoked) => {}
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("agent '{a}' does not exist or is revoked"),
                )
            }
            Err(e) => return internal(e),
        }
    }
    let id = random_hex(8);
    let row = TaskRow {
        spec: TaskSpec {
            id: id.clone(),
            name: t.name,
            source,
            db,
            mapping,
        },
        agent: t.agent,
        running: t.start,
        created: chrono::Utc::now().timestamp_millis(),
        from: t.from,
        to: t.to,
    };
    if let Err(e) = rt.store.put_task(&row) {
        return internal(e);
    }
    rt.apply(&row).await;
    tracing::info!(task = %id, agent = ?row.agent, "task created");
    (StatusCode::CREATED, Json(task_json(&rt, &row))).into_response()
}

#[derive(Deserialize)]
struct PreviewRequest {
    from: String,
    #[serde(default)]
    mapping: Option<Mapping>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Most points a preview lists (the total is always counted).
const PREVIEW_MAX: usize = 10_000;

/// Connect to an OPC-UA source as taosx sees it, resolve its point selection (list, point
/// file or browse filters) and show what a task would collect, before creating one.
async fn preview(State(rt): State<Arc<Runtime>>, body: axum::body::Bytes) -> Response {
    let r: PreviewRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid preview JSON: {e}"),
            )
        }
    };
    let src = match Source::parse(&r.from) {
        Ok(Source::OpcUa(s)) => s,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "preview is for OPC-UA sources (opcua://...)",
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    let limit = r.limit.unwrap_or(100).min(PREVIEW_MAX);
    let archive = Some(rt.archive_dir("preview"));
    match taos_edge::sources::opcua::preview(&src, &archive, r.mapping.as_ref(), limit).await {
        Ok(v) => Json(v).into_response(),
        Err(e @ taos_edge::sources::opcua::OpcUaError::Points(_)) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn list_tasks(State(rt): State<Arc<Runtime>>) -> Response {
    match rt.store.tasks() {
        Ok(list) => Json(Value::Array(
            list.iter().map(|t| task_json(&rt, t)).collect(),
        ))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn show_task(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    match rt.store.task(&id) {
        Ok(Some(t)) => Json(task_json(&rt, &t)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no task '{id}'")),
        Err(e) => internal(e),
    }
}

async fn set_running(rt: Arc<Runtime>, id: String, running: bool) -> Response {
    let mut t = match rt.store.task(&id) {
        Ok(Some(t)) => t,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no task '{id}'")),
        Err(e) => return internal(e),
    };
    t.running = running;
    if let Err(e) = rt.store.put_task(&t) {
        return internal(e);
    }
    rt.apply(&t).await;
    Json(task_json(&rt, &t)).into_response()
}

async fn start_task(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    set_running(rt, id, true).await
}

async fn stop_task(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    set_running(rt, id, false).await
}

async fn delete_task(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    let t = match rt.store.task(&id) {
        Ok(Some(t)) => t,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no task '{id}'")),
        Err(e) => return internal(e),
    };
    if let Err(e) = rt.store.delete_task(&id) {
        return internal(e);
    }
    rt.stop_local(&id);
    if let Some(a) = &t.agent {
        rt.push_tasks(a).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_agents(State(rt): State<Arc<Runtime>>) -> Response {
    let agents = match rt.store.agents() {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let online = rt.agents.lock().unwrap_or_else(|p| p.into_inner());
    let list: Vec<Value> = agents
        .iter()
        .map(|a| {
            let s = online.get(&a.id);
            json!({
                "id": a.id,
                "name": a.name,
                "created": a.created,
                "revoked": a.revoked,
                "online": s.is_some(),
                "remote": s.map(|s| s.remote.clone()),
                "connected_since": s.map(|s| s.since),
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

#[derive(Deserialize)]
struct NewAgent {
    name: String,
}

async fn create_agent(State(rt): State<Arc<Runtime>>, body: axum::body::Bytes) -> Response {
    let a: NewAgent = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid agent JSON: {e}")),
    };
    if a.name.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "the agent needs a name");
    }
    let row = AgentRow {
        id: random_hex(6),
        name: a.name,
        created: chrono::Utc::now().timestamp_millis(),
        revoked: false,
    };
    let token = random_hex(24);
    if let Err(e) = rt.store.add_agent(&row, &token) {
        return internal(e);
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "id": row.id,
            "name": row.name,
            "token": token,
            "fingerprint": format!("sha256:{}", rt.fingerprint),
        })),
    )
        .into_response()
}

async fn revoke_agent(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    match rt.store.revoke_agent(&id) {
        Ok(true) => {
            let s = rt
                .agents
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if let Some(s) = s {
                let _ =
                    s.tx.send(taos_edge::link::ServerMsg::Refused {
                        reason: "agent revoked".into(),
                    })
                    .await;
            }
            tracing::info!(agent = %id, "agent revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no agent '{id}'")),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sink_dsns() {
        assert_eq!(super::sink_db("taos:///edge").unwrap(), "edge");
        assert_eq!(super::sink_db("taos://h:6030/edge_2").unwrap(), "edge_2");
        assert_eq!(super::sink_db("edge").unwrap(), "edge");
        assert!(super::sink_db("taos://h:6030").is_err());
        assert!(super::sink_db("kafka://x/y").is_err());
        assert!(super::sink_db("taos:///bad.db").is_err());
    }
}
