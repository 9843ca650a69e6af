//! The MQTT collector, for MQTT 3.1.1 and 5 (rumqttc), in taosx or in an agent.
//!
//! A persistent session (clean session off, or a session expiry with MQTT 5) and manual acks:
//! a QoS 1/2 message is acknowledged to the broker only after the batch holding its points has
//! been committed (to the agent's SQLite buffer, or to taosd when the task runs in taosx). If the
//! collector dies before that, the broker delivers the message again. Points are grouped: a
//! commit happens every few milliseconds or every few thousand points.

use crate::commit::{commit_group, reject, CollectorCtx, GROUP_DELAY, GROUP_POINTS};
use crate::dsn::unescape;
use crate::mapping::{BatchBuilder, Mapper};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttSource {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// 3 (3.1.1) or 5.
    pub version: u8,
    pub client_id: String,
    /// (topic filter, QoS).
    pub topics: Vec<(String, u8)>,
    pub tls: bool,
    /// CA certificate (PEM) for TLS; without it the system roots are not consulted, so TLS
    /// needs a CA here.
    pub ca: Option<String>,
    pub keep_alive_s: u64,
}

impl MqttSource {
    /// Parse what follows `mqtt://` (or `mqtts://`, then `tls`) in a source DSN:
    /// `[user[:pass]@]host[:port]?topics=a/+/c::1,b::0[&version=5][&client_id=x]
    /// [&keep_alive=30][&ca=/path/ca.pem]`.
    pub fn parse(rest: &str, tls: bool) -> Result<MqttSource, String> {
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(unescape(a)), Some(unescape(b))),
                None => (Some(unescape(u)), None),
            },
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid MQTT port '{p}'"))?,
            ),
            None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err("the MQTT broker host is missing".into());
        }
        let mut m = MqttSource {
            host,
            port,
            username,
            password,
            version: 3,
            client_id: String::new(),
            topics: Vec::new(),
            tls,
            ca: None,
            keep_alive_s: 30,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = unescape(v);
            match k {
                "topics" | "topic" => {
                    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let (name, qos) = match t.rsplit_once("::") {
                            Some((n, q)) => (
                                n,
                                q.parse::<u8>()
                                    .ok()
                                    .filter(|q| *q <= 2)
                                    .ok_or_else(|| format!("invalid QoS in '{t}' (0, 1 or 2)"))?,
                            ),
                            None => (t, 1),
                        };
                        m.topics.push((name.to_string(), qos));
                    }
                }
                "version" => {
                    m.version = match v.as_str() {
                        "3" | "3.1" | "3.1.1" | "4" => 3,
                        "5" | "5.0" => 5,
                        _ => return Err(format!("MQTT version '{v}' (3.1.1 or 5)")),
                    }
                }
                "client_id" => m.client_id = v,
                "keep_alive" => {
                    m.keep_alive_s = v.parse().map_err(|_| format!("invalid keep_alive '{v}'"))?
                }
                "ca" => m.ca = Some(v),
                "tls" => m.tls = matches!(v.as_str(), "true" | "1"),
                other => return Err(format!("unknown MQTT option '{other}'")),
            }
        }
        if m.topics.is_empty() {
            return Err("no MQTT topics (add ?topics=a/b::1,c/#::0)".into());
        }
        for (t, _) in &m.topics {
            validate_filter(t)?;
        }
        Ok(m)
    }
}

/// MQTT topic filter rules: `#` only last and alone in its level, `+` alone in its level.
fn validate_filter(t: &str) -> Result<(), String> {
    let levels: Vec<&str> = t.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if (l.contains('#') && (*l != "#" || i + 1 != levels.len()))
            || (l.contains('+') && *l != "+")
        {
            return Err(format!("invalid MQTT topic filter '{t}'"));
        }
    }
    Ok(())
}

/// Does topic `name` match filter `filter`?
pub fn topic_matches(filter: &str, name: &str) -> bool {
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

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
fn client_id(task: &str, src: &MqttSource) -> String {
    if src.client_id.is_empty() {
        format!("taosx{task}")
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
        let name = $task.clone();
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
    ctx: &CollectorCtx,
    src: &MqttSource,
    tx: mpsc::Sender<Incoming>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use rumqttc::{AsyncClient, Event, MqttOptions};
    let (stats, mut stop) = (ctx.stats.clone(), ctx.stop.clone());
    let mut o = MqttOptions::new(client_id(&ctx.task, src), &src.host, src.port);
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
        ctx.task,
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
    ctx: &CollectorCtx,
    src: &MqttSource,
    tx: mpsc::Sender<Incoming>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let (stats, mut stop) = (ctx.stats.clone(), ctx.stop.clone());
    let mut o = MqttOptions::new(client_id(&ctx.task, src), &src.host, src.port);
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
        ctx.task,
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

/// Run an MQTT task until `ctx.stop`: map messages, commit batches through `ctx.commit`, then
/// ack.
pub async fn run(src: MqttSource, ctx: CollectorCtx) -> Result<(), String> {
    let src = &src;
    let mapper = Mapper::new(&ctx.mapping).map_err(|e| e.0)?;
    let (tx, mut rx) = mpsc::channel::<Incoming>(8192);
    let reader = if src.version == 5 {
        spawn_v5(&ctx, src, tx)?
    } else {
        spawn_v3(&ctx, src, tx)?
    };
    let CollectorCtx {
        task,
        db,
        mapping,
        commit,
        stats,
        archive_dir,
        stop,
    } = ctx;
    let mut builder = BatchBuilder::new(&db);
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
                        mapping.on_error,
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
        match commit_group(&mut builder, &commit, &stats, &task, &mut stop_rx).await {
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
