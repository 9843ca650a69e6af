//! Shipping the agent's buffer over one QUIC connection: say hello, then keep a window of
//! batches in flight, oldest first per task, and delete entries only when taosx acks them. On
//! a new connection shipping restarts from the first entry not yet acknowledged, so nothing is
//! skipped; taosx may see an entry twice, which is harmless (rows are keyed by table and time).

use crate::buffer::Buffer;
use crate::link::{self, AgentMsg, ServerMsg};
use crate::task::TaskSpec;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Entries read from the buffer per task per round.
const READ_AHEAD: usize = 8;

/// How a session ended.
#[derive(Debug, PartialEq)]
pub enum SessionEnd {
    /// The link dropped or taosx went away: reconnect.
    Lost(String),
    /// taosx refused the agent (wrong or revoked token).
    Refused(String),
    /// `drain` mode: everything buffered was acknowledged.
    Drained,
}

pub struct Shipper {
    pub buffer: Arc<Buffer>,
    /// Signalled when collectors append.
    pub notify: Arc<Notify>,
    /// Batches in flight at most.
    pub window: usize,
}

impl Shipper {
    /// Run one session on `conn` until it ends. New task lists go to `tasks`; `status` is
    /// called every second for the counters to report.
    pub async fn session(
        &self,
        conn: &quinn::Connection,
        hello: AgentMsg,
        tasks: mpsc::Sender<Vec<TaskSpec>>,
        status: &(dyn Fn() -> Vec<AgentMsg> + Send + Sync),
        drain: bool,
    ) -> SessionEnd {
        let (mut send, mut recv) = match conn.open_bi().await {
            Ok(s) => s,
            Err(e) => return SessionEnd::Lost(e.to_string()),
        };
        if let Err(e) = link::send(&mut send, &hello).await {
            return SessionEnd::Lost(e.to_string());
        }
        match link::recv::<ServerMsg>(&mut recv).await {
            Ok(Some(ServerMsg::Welcome { agent_id })) => {
                tracing::info!(%agent_id, "connected to taosx");
            }
            Ok(Some(ServerMsg::Refused { reason })) => return SessionEnd::Refused(reason),
            Ok(_) => return SessionEnd::Lost("taosx did not welcome the agent".into()),
            Err(e) => return SessionEnd::Lost(e.to_string()),
        }
        // Frames are read by their own task: a read cut by `select!` would lose its place.
        let (in_tx, mut inbox) = mpsc::channel::<Result<ServerMsg, String>>(1024);
        let reader = tokio::spawn(async move {
            loop {
                let m = match link::recv::<ServerMsg>(&mut recv).await {
                    Ok(Some(m)) => Ok(m),
                    Ok(None) => Err("taosx closed the link".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let end = m.is_err();
                if in_tx.send(m).await.is_err() || end {
                    return;
                }
            }
        });
        let end = self
            .pump(&mut send, &mut inbox, &tasks, status, drain)
            .await;
        reader.abort();
        let _ = send.finish();
        end
    }

    async fn pump(
        &self,
        send: &mut quinn::SendStream,
        inbox: &mut mpsc::Receiver<Result<ServerMsg, String>>,
        tasks: &mpsc::Sender<Vec<TaskSpec>>,
        status: &(dyn Fn() -> Vec<AgentMsg> + Send + Sync),
        drain: bool,
    ) -> SessionEnd {
        // Per task: the last sequence number sent on this link.
        let mut sent: HashMap<String, u64> = HashMap::new();
        // (task, last seq) of batches awaiting an ack, in send order.
        let mut in_flight: VecDeque<(String, u64)> = VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            // Fill the window.
            if in_flight.len() < self.window {
                let tasks_waiting = match self.buffer.tasks() {
                    Ok(t) => t,
                    Err(e) => return SessionEnd::Lost(format!("buffer: {e}")),
                };
                for t in tasks_waiting {
                    let after = *sent.get(&t).unwrap_or(&0);
                    let room = self.window - in_flight.len();
                    if room == 0 {
                        break;
                    }
                    let entries = match self.buffer.read(&t, after, room.min(READ_AHEAD)) {
                        Ok(e) => e,
                        Err(e) => return SessionEnd::Lost(format!("buffer: {e}")),
                    };
                    for e in entries {
                        let m = AgentMsg::Batch {
                            task_id: e.task_id.clone(),
                            first_seq: e.seq,
                            last_seq: e.seq,
                            points: e.points,
                            compressed: true,
                            payload: e.payload,
                        };
                        if let Err(err) = link::send(send, &m).await {
                            return SessionEnd::Lost(err.to_string());
                        }
                        sent.insert(e.task_id.clone(), e.seq);
                        in_flight.push_back((e.task_id, e.seq));
                    }
                }
            }
            if drain && in_flight.is_empty() && self.buffer.buffered_points() == 0 {
                return SessionEnd::Drained;
            }
            let full = in_flight.len() >= self.window;
            tokio::select! {
                m = inbox.recv() => match m {
                    Some(Ok(ServerMsg::Ack { task_id, upto })) => {
                        if let Err(e) = self.buffer.ack(&task_id, upto) {
                            return SessionEnd::Lost(format!("buffer: {e}"));
                        }
                        in_flight.retain(|(t, s)| !(t == &task_id && *s <= upto));
                    }
                    Some(Ok(ServerMsg::Nack { task_id, seq, error })) => {
                        tracing::warn!(task = %task_id, seq, %error, "taosx could not write a batch; retrying");
                        // Resend this task from the refused entry after a pause.
                        in_flight.retain(|(t, _)| t != &task_id);
                        sent.insert(task_id, seq.saturating_sub(1));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Some(Ok(ServerMsg::Tasks(list))) => {
                        let _ = tasks.send(list).await;
                    }
                    Some(Ok(ServerMsg::Refused { reason })) => return SessionEnd::Refused(reason),
                    Some(Ok(ServerMsg::Welcome { .. })) => {}
                    Some(Err(e)) => return SessionEnd::Lost(e),
                    None => return SessionEnd::Lost("link reader stopped".into()),
                },
                _ = self.notify.notified(), if !full => {}
                _ = tick.tick() => {
                    for m in status() {
                        if let Err(e) = link::send(send, &m).await {
                            return SessionEnd::Lost(e.to_string());
                        }
                    }
                }
            }
        }
    }
}

/// `quic://host:port`, `http://host:port` (the real agent's style) or `host:port`.
pub fn endpoint_addr(endpoint: &str) -> (String, u16) {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(port) => (h.trim_matches(['[', ']']).to_string(), port),
            Err(_) => (rest.to_string(), 6055),
        },
        None => (rest.to_string(), 6055),
    }
}

/// Dial taosx: resolve, QUIC handshake with `client` trust settings.
pub async fn connect(
    endpoint: &str,
    server_name: &str,
    client: quinn::ClientConfig,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let (host, port) = endpoint_addr(endpoint);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))?;
    let bind: std::net::SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    };
    let mut ep = quinn::Endpoint::client(bind).map_err(|e| format!("UDP socket: {e}"))?;
    ep.set_default_client_config(client);
    let name = if server_name.is_empty() {
        host.as_str()
    } else {
        server_name
    };
    let conn = ep
        .connect(addr, name)
        .map_err(|e| format!("connect {addr}: {e}"))?
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    Ok((ep, conn))
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints() {
        assert_eq!(super::endpoint_addr("quic://h:7"), ("h".into(), 7));
        assert_eq!(
            super::endpoint_addr("http://localhost:6055/"),
            ("localhost".into(), 6055)
        );
        assert_eq!(super::endpoint_addr("10.0.0.1"), ("10.0.0.1".into(), 6055));
        assert_eq!(super::endpoint_addr("[::1]:9"), ("::1".into(), 9));
    }
}
