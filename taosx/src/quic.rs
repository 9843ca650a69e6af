//! The agent endpoint (QUIC on UDP 6055). Per connection: the agent opens one bidirectional
//! stream and says `Hello` with its token; a wrong token is refused and logged. Then taosx pushes
//! the agent's tasks and answers each batch with `Ack` once taosd has the rows (or `Nack`), in
//! the order the batches came. Anything malformed closes the connection, never the server.

use crate::runtime::{AgentSession, Runtime};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use taos_edge::link::{self, AgentMsg, ServerMsg};
use tokio::sync::mpsc;

/// An agent must say who it is within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(rt: Arc<Runtime>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let rt = rt.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => {
                    if let Err(e) = handle(rt, conn, remote).await {
                        tracing::warn!(%remote, error = %e, "agent link closed");
                    }
                }
                Err(e) => tracing::warn!(%remote, error = %e, "QUIC handshake refused"),
            }
        });
    }
}

async fn handle(
    rt: Arc<Runtime>,
    conn: quinn::Connection,
    remote: SocketAddr,
) -> Result<(), String> {
    let (mut send, mut recv) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| "no stream opened in time".to_string())?
        .map_err(|e| e.to_string())?;
    let hello = tokio::time::timeout(HELLO_TIMEOUT, link::recv::<AgentMsg>(&mut recv))
        .await
        .map_err(|_| "no hello in time".to_string())?
        .map_err(|e| e.to_string())?;
    let (token, instance) = match hello {
        Some(AgentMsg::Hello {
            token, instance_id, ..
        }) => (token, instance_id),
        _ => {
            conn.close(1u32.into(), b"expected hello");
            return Err("first message was not a hello".into());
        }
    };
    let agent = match rt.store.agent_by_token(&token) {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::warn!(%remote, %instance, "agent refused: invalid or revoked token");
            let _ = link::send(
                &mut send,
                &ServerMsg::Refused {
                    reason: "invalid or revoked token".into(),
                },
            )
            .await;
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(200)).await;
            conn.close(2u32.into(), b"refused");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    tracing::info!(agent = %agent.id, name = %agent.name, %remote, %instance, "agent connected");
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(1024);
    tx.send(ServerMsg::Welcome {
        agent_id: agent.id.clone(),
    })
    .await
    .map_err(|e| e.to_string())?;
    rt.agents.lock().unwrap_or_else(|p| p.into_inner()).insert(
        agent.id.clone(),
        AgentSession {
            tx: tx.clone(),
            remote: remote.to_string(),
            since: chrono::Utc::now().timestamp_millis(),
        },
    );
    rt.push_tasks(&agent.id).await;
    // Replies go out from one task, so task pushes and acks never interleave mid-frame.
    let conn2 = conn.clone();
    let sender = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let refused = matches!(m, ServerMsg::Refused { .. });
            if link::send(&mut send, &m).await.is_err() {
                break;
            }
            if refused {
                let _ = send.finish();
                tokio::time::sleep(Duration::from_millis(200)).await;
                conn2.close(3u32.into(), b"revoked");
                break;
            }
        }
    });
    let result = batches(&rt, &agent.id, &mut recv, &tx).await;
    {
        let mut agents = rt.agents.lock().unwrap_or_else(|p| p.into_inner());
        // Only forget the session if it is still this one (a reconnect may have replaced it).
        if agents
            .get(&agent.id)
            .is_some_and(|s| s.tx.same_channel(&tx))
        {
            agents.remove(&agent.id);
        }
    }
    drop(tx);
    let _ = sender.await;
    tracing::info!(agent = %agent.id, %remote, "agent disconnected");
    result
}

/// Batches written to taosd at once per agent link; acks still go out in arrival order.
const WRITES_IN_FLIGHT: usize = 4;

async fn batches(
    rt: &Arc<Runtime>,
    agent: &str,
    recv: &mut quinn::RecvStream,
    tx: &mpsc::Sender<ServerMsg>,
) -> Result<(), String> {
    // Writes run concurrently; their replies are taken in order by the acker, so an ack never
    // overtakes the ack of an earlier batch.
    let (pending_tx, mut pending_rx) =
        mpsc::channel::<tokio::task::JoinHandle<ServerMsg>>(WRITES_IN_FLIGHT);
    let acks = tx.clone();
    let acker = tokio::spawn(async move {
        while let Some(h) = pending_rx.recv().await {
            let Ok(m) = h.await else { return };
            if acks.send(m).await.is_err() {
                return;
            }
        }
    });
    let result = loop {
        let msg = match link::recv::<AgentMsg>(recv).await {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.to_string()),
        };
        match msg {
            AgentMsg::Batch {
                task_id,
                first_seq,
                last_seq,
                points,
                compressed,
                payload,
            } => {
                let (rt, agent) = (rt.clone(), agent.to_string());
                let h = tokio::spawn(async move {
                    match write(&rt, &agent, &task_id, points, compressed, &payload).await {
                        Ok(()) => ServerMsg::Ack {
                            task_id,
                            upto: last_seq,
                        },
                        Err(error) => {
                            rt.metrics(&task_id).error(error.clone());
                            tracing::warn!(%agent, task = %task_id, %error, "batch not written");
                            ServerMsg::Nack {
                                task_id,
                                seq: first_seq,
                                error,
                            }
                        }
                    }
                });
                if pending_tx.send(h).await.is_err() {
                    break Ok(());
                }
            }
            AgentMsg::Status {
                task_id,
                received,
                errors,
                buffered,
                dropped,
                lag_ms,
                last_error,
            } => {
                let m = rt.metrics(&task_id);
                m.agent_received.store(received, Ordering::Relaxed);
                m.agent_errors.store(errors, Ordering::Relaxed);
                m.agent_buffered.store(buffered, Ordering::Relaxed);
                m.agent_dropped.store(dropped, Ordering::Relaxed);
                m.lag_ms.store(lag_ms, Ordering::Relaxed);
                if let Some(e) = last_error {
                    *m.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
            AgentMsg::Heartbeat => {}
            AgentMsg::Hello { .. } => break Err("a second hello".into()),
        }
    };
    drop(pending_tx);
    let _ = acker.await;
    result
}

async fn write(
    rt: &Arc<Runtime>,
    agent: &str,
    task_id: &str,
    points: u64,
    compressed: bool,
    payload: &[u8],
) -> Result<(), String> {
    let task = rt
        .store
        .task(task_id)
        .map_err(|e| e.to_string())?
        .filter(|t| t.agent.as_deref() == Some(agent))
        .ok_or_else(|| format!("task '{task_id}' is not assigned to this agent"))?;
    let batch = link::unpack(payload, compressed).map_err(|e| e.to_string())?;
    let m = rt.metrics(task_id);
    m.received.fetch_add(points, Ordering::Relaxed);
    let w = rt
        .writer
        .write(&task.spec, batch, &Some(rt.archive_dir(task_id)))
        .await
        .map_err(|e| e.to_string())?;
    m.record(&w);
    Ok(())
}
