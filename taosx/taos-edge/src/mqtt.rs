//! The MQTT collector, for MQTT 3.1.1 and 5 (rumqttc), in taosx or in an agent.
//!
//! A persistent session (clean session off, or a session expiry with MQTT 5) and manual acks:
//! a QoS 1/2 message is acknowledged to the broker only after the batch holding its points has
//! been committed (to the agent's SQLite buffer, or to taosd when the task runs in taosx). If the
//! collector dies before that, the broker delivers the message again. Points are grouped: a
//! commit happens every few milliseconds or every few thousand points.

use crate::collect::{commit_group, reject, Committer, TaskStats, GROUP_DELAY, GROUP_POINTS};
use crate::mapping::{BatchBuilder, Mapper};
use crate::task::{MqttSource, TaskSpec};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// One received message and how to acknowledge it.
enum Ack {
    V3(rumqttc::AsyncClient, rumqttc::Publish),
    V5(
        rumqttc::v5::AsyncClient,
        rumqttc::v5::mqttbytes::v5::Publish,
    ),
}

impl Ack {
    async fn send(self) {
        let r = match self {
            Ack::V3(c, p) => c.ack(&p).await.map_err(|e| e.to_string()),
            Ack::V5(c, p) => c.ack(&p).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "MQTT ack not sent (the broker will redeliver)");
        }
    }
}

struct Incoming {
    topic: String,
    payload: Vec<u8>,
    ack: Ack,
}

fn tls_config(src: &MqttSource) -> Result<Option<rumqttc::Transport>, String> {
    if !src.tls {
        return Ok(None);
    }
    let ca = src
        .ca
        .as_ref()
        .ok_or("MQTT over TLS needs the broker's CA certificate (ca=/path/ca.pem)")?;
    let pem = std::fs::read(ca).map_err(|e| format!("{ca}: {e}"))?;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| format!("{ca}: {e}"))?;
        roots.add(c).map_err(|e| format!("{ca}: {e}"))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(Arc::new(cfg)),
    )))
}

/// The client id: given, or `taosx<task id>` (unique per task, stable across restarts so the
/// broker keeps the session).
fn client_id(task: &TaskSpec, src: &MqttSource) -> String {
    if src.client_id.is_empty() {
        format!("taosx{}", task.id)
    } else {
        src.client_id.clone()
    }
}

/// The event loop shared by both protocol versions: subscribe on every (re)connect, forward
/// each message with its ack handle, back off after a connection error, stop on `stop`.
macro_rules! drive {
    ($client:ident, $events:ident, $packet:path, $qos:path, $label:expr,
     $task:expr, $src:expr, $tx:ident, $stats:ident, $stop:ident, |$p:ident| $incoming:expr) => {{
        use $packet as Packet;
        use $qos as QoS;
        let topics = $src.topics.clone();
        let name = $task.id.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let ev = tokio::select! {
                    _ = $stop.changed() => { let _ = $client.disconnect().await; return; }
                    ev = $events.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(200);
                        $stats.connected.store(true, Ordering::Relaxed);
                        tracing::info!(task = %name, concat!($label, " connected"));
                        for (t, q) in &topics {
                            let qos = match q {
                                0 => QoS::AtMostOnce,
                                1 => QoS::AtLeastOnce,
                                _ => QoS::ExactlyOnce,
                            };
                            if let Err(e) = $client.subscribe(t.clone(), qos).await {
                                $stats.error(format!("subscribe {t}: {e}"));
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish($p))) => {
                        if $tx.send($incoming).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        $stats.connected.store(false, Ordering::Relaxed);
                        $stats.error(format!("MQTT connection: {e}"));
                        tracing::warn!(task = %name, error = %e, "MQTT connection lost; retrying");
                        tokio::select! {
                            _ = $stop.changed() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }};
}

/// MQTT 3.1.1: a persistent session (clean session off) so the broker queues for us.
fn spawn_v3(
    task: &TaskSpec,
    src: &MqttSource,
    tx: mpsc::Sender<Incoming>,
    stats: Arc<TaskStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use rumqttc::{AsyncClient, Event, MqttOptions};
    let mut o = MqttOptions::new(client_id(task, src), &src.host, src.port);
    o.set_keep_alive(Duration::from_secs(src.keep_alive_s.max(5)));
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_max_packet_size(16 << 20, 16 << 20);
    o.set_inflight(1000);
    if let (Some(u), p) = (&src.username, &src.password) {
        o.set_credentials(u.clone(), p.clone().unwrap_or_default());
    }
    if let Some(t) = tls_config(src)? {
        o.set_transport(t);
    }
    let (client, mut events) = AsyncClient::new(o, 4096);
    Ok(drive!(
        client,
        events,
        rumqttc::Packet,
        rumqttc::QoS,
        "MQTT",
        task,
        src,
        tx,
        stats,
        stop,
        |p| Incoming {
            topic: p.topic.clone(),
            payload: p.payload.to_vec(),
            ack: Ack::V3(client.clone(), p),
        }
    ))
}

/// MQTT 5: clean start off and a day of session expiry, so the broker queues for us.
fn spawn_v5(
    task: &TaskSpec,
    src: &MqttSource,
    tx: mpsc::Sender<Incoming>,
    stats: Arc<TaskStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let mut o = MqttOptions::new(client_id(task, src), &src.host, src.port);
    o.set_keep_alive(Duration::from_secs(src.keep_alive_s.max(5)));
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(86_400));
    o.set_manual_acks(true);
    o.set_max_packet_size(Some(16 << 20));
    if let (Some(u), p) = (&src.username, &src.password) {
        o.set_credentials(u.clone(), p.clone().unwrap_or_default());
    }
    if let Some(t) = tls_config(src)? {
        o.set_transport(t);
    }
    let (client, mut events) = AsyncClient::new(o, 4096);
    Ok(drive!(
        client,
        events,
        rumqttc::v5::mqttbytes::v5::Packet,
        rumqttc::v5::mqttbytes::QoS,
        "MQTT 5",
        task,
        src,
        tx,
        stats,
        stop,
        |p| Incoming {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload.to_vec(),
            ack: Ack::V5(client.clone(), p),
        }
    ))
}

/// Run an MQTT task until `stop`: map messages, commit batches through `commit`, then ack.
pub async fn run(
    src: MqttSource,
    task: TaskSpec,
    commit: Committer,
    stats: Arc<TaskStats>,
    archive_dir: Option<PathBuf>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let src = &src;
    let mapper = Mapper::new(&task.mapping).map_err(|e| e.0)?;
    let (tx, mut rx) = mpsc::channel::<Incoming>(8192);
    let reader = if src.version == 5 {
        spawn_v5(&task, src, tx, stats.clone(), stop.clone())?
    } else {
        spawn_v3(&task, src, tx, stats.clone(), stop.clone())?
    };
    let mut builder = BatchBuilder::new(&task.db);
    let mut acks: Vec<Ack> = Vec::new();
    let mut stop_rx = stop;
    loop {
        // Wait for the first message, then gather until the group is full or its delay passes.
        let first = tokio::select! {
            _ = stop_rx.changed() => break,
            m = rx.recv() => m,
        };
        let Some(first) = first else { break };
        let deadline = tokio::time::Instant::now() + GROUP_DELAY;
        let mut next = Some(first);
        loop {
            if let Some(m) = next.take() {
                stats.messages.fetch_add(1, Ordering::Relaxed);
                let now = chrono::Utc::now().timestamp_millis();
                let (n, errors) = mapper.map(&m.topic, &m.payload, now, &mut builder);
                stats.points.fetch_add(n as u64, Ordering::Relaxed);
                for e in &errors {
                    if let Err(stop) = reject(
                        task.mapping.on_error,
                        &stats,
                        &archive_dir,
                        &m.topic,
                        format!("topic {}: {}", m.topic, e.0),
                        || m.payload.clone(),
                    ) {
                        reader.abort();
                        return Err(stop);
                    }
                }
                acks.push(m.ack);
            }
            if builder.points() >= GROUP_POINTS {
                break;
            }
            tokio::select! {
                m = rx.recv() => match m { Some(m) => next = Some(m), None => break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Commit (retrying while the receiver says no, e.g. a full buffer), then ack.
        match commit_group(&mut builder, &commit, &stats, &task.id, &mut stop_rx).await {
            Ok(true) => {}
            Ok(false) => {
                reader.abort();
                return Ok(());
            }
            Err(e) => {
                reader.abort();
                return Err(e);
            }
        }
        for a in acks.drain(..) {
            a.send().await;
        }
    }
    reader.abort();
    Ok(())
}
