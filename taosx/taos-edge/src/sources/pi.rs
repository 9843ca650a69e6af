//! The AVEVA PI source over the documented PI Web API (REST):
//! `pi://user:password@host[:port]?points=\\srv\tag1,\\srv\tag2[&start=2024-01-01T00:00:00Z]
//! [&interval=5s][&tls=false][&ca=/path.pem|&fingerprint=sha256:..]`.
//!
//! Each point is looked up by path (`GET /piwebapi/points?path=`), then its recorded values are
//! read from where the task left off (`GET /piwebapi/streams/{webId}/recorded?startTime=`),
//! first as a back-fill from `start`, then every `interval` for new values. The single-column
//! model: one row per value, with the fields `path`, `name`, `units`, `descriptor`,
//! `point_type`, `value`, `good` and `ts` for the task's mapping (one table per point, e.g.
//! `"table": "{name}"`). The last timestamp committed per point is kept in `pi_state.json` in the
//! task's directory, so a restart resumes without gaps or repeats.

use super::http::{encode, Client};
use crate::commit::{commit_once, reject, CollectorCtx};
use crate::dsn::{parse_duration_ms, unescape};
use crate::mapping::{BatchBuilder, Mapper};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Values asked for per recorded-values request.
const MAX_COUNT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiSource {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub points: Vec<String>,
    /// Or points found by name: `search=sin*` on the data server `server=\\srv`.
    pub server: Option<String>,
    pub search: Option<String>,
    /// Back-fill from here (PI time syntax such as `*-1d` or an ISO timestamp).
    pub start: String,
    pub interval_ms: u64,
    pub ca: Option<String>,
    pub fingerprint: Option<String>,
}

impl PiSource {
    pub fn parse(dsn: &str) -> Result<PiSource, String> {
        let (scheme, rest) = dsn.split_once("://").ok_or("not a pi:// DSN")?;
        let mut tls = scheme == "pis" || scheme == "pi+https";
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            Some((u, p)) => (Some(unescape(u)), Some(unescape(p))),
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("invalid PI port '{p}'"))?,
                ),
            ),
            None => (hostport.to_string(), None),
        };
        if host.is_empty() {
            return Err("the PI Web API host is missing".into());
        }
        let mut s = PiSource {
            host,
            port: 0,
            tls,
            username,
            password,
            points: Vec::new(),
            server: None,
            search: None,
            start: "*-1h".into(),
            interval_ms: 5000,
            ca: None,
            fingerprint: None,
        };
        for kv in query.split('&').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = unescape(v);
            match k {
                "points" => s.points.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(String::from),
                ),
                "start" => s.start = v,
                "server" => s.server = Some(v),
                "search" => s.search = Some(v),
                "interval" => {
                    s.interval_ms = parse_duration_ms(&v)
                        .ok()
                        .filter(|ms| *ms > 0)
                        .ok_or_else(|| format!("invalid interval '{v}'"))?
                }
                "tls" => tls = matches!(v.as_str(), "true" | "1"),
                "ca" => s.ca = Some(v),
                "fingerprint" => s.fingerprint = Some(v),
                other => return Err(format!("unknown PI option '{other}'")),
            }
        }
        s.tls = tls;
        s.port = port.unwrap_or(if tls { 443 } else { 80 });
        if s.search.is_some() != s.server.is_some() {
            return Err(
                "a PI search needs both server= (\\\\server) and search= (a name filter)".into(),
            );
        }
        if s.points.is_empty() && s.search.is_none() {
            return Err("no PI points (add ?points=\\\\server\\tag,... or server=&search=)".into());
        }
        Ok(s)
    }

    fn client(&self) -> Result<Client, String> {
        let trust = if !self.tls {
            None
        } else if let Some(fp) = &self.fingerprint {
            Some(crate::tls::Trust::Pin(fp.clone()))
        } else if let Some(ca) = &self.ca {
            Some(crate::tls::Trust::Ca(
                std::fs::read(ca).map_err(|e| format!("{ca}: {e}"))?,
            ))
        } else {
            Some(crate::tls::Trust::System)
        };
        Client::new(
            &self.host,
            self.port,
            trust,
            self.username.as_deref(),
            self.password.as_deref(),
            Duration::from_secs(30),
        )
    }
}

/// A point's identity and attributes.
#[derive(Debug, Clone)]
struct Point {
    path: String,
    web_id: String,
    fields: HashMap<String, Json>,
}

async fn get_json(c: &mut Client, path: &str) -> Result<Json, String> {
    let (status, body) = c.get(path).await?;
    if status != 200 {
        return Err(format!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))
}

async fn lookup(c: &mut Client, path: &str) -> Result<Point, String> {
    let v = get_json(c, &format!("/piwebapi/points?path={}", encode(path))).await?;
    let s = |k: &str| v.get(k).cloned().unwrap_or(Json::Null);
    let web_id = v
        .get("WebId")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("point {path}: no WebId in {v}"))?
        .to_string();
    let mut fields = HashMap::new();
    fields.insert("path".to_string(), Json::String(path.to_string()));
    fields.insert("name".to_string(), s("Name"));
    fields.insert("units".to_string(), s("EngineeringUnits"));
    fields.insert("descriptor".to_string(), s("Descriptor"));
    fields.insert("point_type".to_string(), s("PointType"));
    Ok(Point {
        path: path.to_string(),
        web_id,
        fields,
    })
}

/// Points of `server` whose names match `filter` (PI's `*` wildcards).
async fn search(c: &mut Client, server: &str, filter: &str) -> Result<Vec<String>, String> {
    let ds = get_json(c, &format!("/piwebapi/dataservers?path={}", encode(server))).await?;
    let id = ds
        .get("WebId")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("data server {server}: no WebId"))?;
    let list = get_json(
        c,
        &format!(
            "/piwebapi/dataservers/{}/points?nameFilter={}&maxCount=100000",
            encode(id),
            encode(filter)
        ),
    )
    .await?;
    Ok(list
        .get("Items")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    p.get("Path")
                        .and_then(Json::as_str)
                        .map(String::from)
                        .or_else(|| {
                            p.get("Name")
                                .and_then(Json::as_str)
                                .map(|n| format!("{server}\\{n}"))
                        })
                })
                .collect()
        })
        .unwrap_or_default())
}

/// PI values: numbers, strings, booleans, or digital states `{"Name":..,"Value":..}`.
fn value_of(v: &Json) -> Json {
    match v {
        Json::Object(m) => m
            .get("Value")
            .cloned()
            .or_else(|| m.get("Name").cloned())
            .unwrap_or(Json::Null),
        other => other.clone(),
    }
}

fn state_path(dir: &Option<PathBuf>) -> Option<PathBuf> {
    dir.as_ref().map(|d| d.join("pi_state.json"))
}

fn load_state(dir: &Option<PathBuf>) -> HashMap<String, i64> {
    state_path(dir)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(dir: &Option<PathBuf>, state: &HashMap<String, i64>) {
    let Some(p) = state_path(dir) else { return };
    if let Some(d) = p.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let tmp = p.with_extension("tmp");
    let r = serde_json::to_vec(state)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|_| std::fs::rename(&tmp, &p));
    if let Err(e) = r {
        tracing::warn!(path = %p.display(), error = %e, "cannot save the PI position");
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Run a PI task until `ctx.stop`: back-fill, then poll every interval.
pub async fn run(src: PiSource, mut ctx: CollectorCtx) -> Result<(), String> {
    let mapper = Mapper::new(&ctx.mapping).map_err(|e| e.0)?;
    let mut client = src.client()?;
    let mut state = load_state(&ctx.archive_dir);
    let stats = &ctx.stats;
    let mut points: Vec<Point> = Vec::new();
    let mut wanted: Vec<String> = src.points.clone();
    let mut searched = src.search.is_none();
    let mut backoff = Duration::from_millis(500);
    loop {
        if !searched {
            if let (Some(server), Some(filter)) = (&src.server, &src.search) {
                match search(&mut client, server, filter).await {
                    Ok(found) => {
                        tracing::info!(task = %ctx.task, points = found.len(), "PI search");
                        wanted.extend(found);
                        wanted.dedup();
                        searched = true;
                    }
                    Err(e) => stats.error(e),
                }
            }
        }
        // Resolve points not known yet (the server may be down at first).
        if searched && points.len() < wanted.len() {
            points.clear();
            for p in &wanted {
                match lookup(&mut client, p).await {
                    Ok(pt) => points.push(pt),
                    Err(e) => {
                        stats.error(e.clone());
                        tracing::warn!(task = %ctx.task, error = %e, "PI point lookup failed");
                        break;
                    }
                }
            }
            stats
                .connected
                .store(points.len() == wanted.len(), Ordering::Relaxed);
        }
        let ready = searched && !wanted.is_empty() && points.len() == wanted.len();
        if ready {
            let mut failed = false;
            for p in &points {
                match read_point(&mut client, &src, p, &mapper, &ctx, &mut state).await {
                    Ok(()) => {}
                    Err(e) => {
                        stats.error(e.clone());
                        tracing::warn!(task = %ctx.task, point = %p.path, error = %e, "PI read failed");
                        failed = true;
                        if e.starts_with("stopped by the error policy") {
                            return Err(e);
                        }
                    }
                }
            }
            backoff = if failed {
                (backoff * 2).min(Duration::from_secs(30))
            } else {
                Duration::from_millis(500)
            };
            stats.connected.store(!failed, Ordering::Relaxed);
        }
        let wait = if ready && backoff <= Duration::from_millis(500) {
            Duration::from_millis(src.interval_ms)
        } else {
            backoff
        };
        tokio::select! {
            _ = ctx.stop.changed() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Read everything new of one point, committing as it goes.
async fn read_point(
    client: &mut Client,
    src: &PiSource,
    p: &Point,
    mapper: &Mapper,
    ctx: &CollectorCtx,
    state: &mut HashMap<String, i64>,
) -> Result<(), String> {
    let stats = &ctx.stats;
    loop {
        let start = match state.get(&p.path) {
            // One millisecond after the last value committed: nothing twice.
            Some(last) => iso(last + 1),
            None => src.start.clone(),
        };
        let url = format!(
            "/piwebapi/streams/{}/recorded?startTime={}&endTime=*&maxCount={MAX_COUNT}",
            encode(&p.web_id),
            encode(&start)
        );
        let v = get_json(client, &url).await?;
        let items = v
            .get("Items")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        if items.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new(&ctx.db);
        let mut last = None;
        for it in &items {
            let ts = it
                .get("Timestamp")
                .and_then(Json::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis());
            let Some(ts) = ts else {
                stats.error(format!("point {}: value without a timestamp", p.path));
                continue;
            };
            last = Some(last.map_or(ts, |l: i64| l.max(ts)));
            let mut fields = p.fields.clone();
            fields.insert("ts".into(), Json::from(ts));
            fields.insert(
                "value".into(),
                value_of(it.get("Value").unwrap_or(&Json::Null)),
            );
            fields.insert(
                "good".into(),
                it.get("Good").cloned().unwrap_or(Json::Bool(true)),
            );
            stats.messages.fetch_add(1, Ordering::Relaxed);
            match mapper.row(&fields, ts, &mut builder) {
                Ok(()) => {
                    stats.points.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => reject(
                    ctx.mapping.on_error,
                    stats,
                    &ctx.archive_dir,
                    &p.path,
                    format!("point {}: {}", p.path, e.0),
                    || it.to_string().into_bytes(),
                )?,
            }
        }
        if !builder.is_empty() {
            let b = builder.take();
            let n = crate::points(&b);
            commit_once(&ctx.commit, b).await?;
            stats.committed.fetch_add(n, Ordering::Relaxed);
        }
        if let Some(l) = last {
            state.insert(p.path.clone(), l);
            save_state(&ctx.archive_dir, state);
        }
        if items.len() < MAX_COUNT {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_dsns() {
        let s = PiSource::parse(
            "pi://u:p%40ss@pi.local:8443?points=%5C%5Csrv%5Csinusoid,\\\\srv\\cdt158&start=*-1d&interval=2s&tls=true",
        )
        .unwrap();
        assert_eq!(s.points, vec!["\\\\srv\\sinusoid", "\\\\srv\\cdt158"]);
        assert_eq!((s.port, s.tls, s.interval_ms), (8443, true, 2000));
        assert_eq!(s.password.as_deref(), Some("p@ss"));
        assert_eq!(PiSource::parse("pi://h?points=a").unwrap().port, 80);
        assert!(PiSource::parse("pi://h").is_err());
        assert!(PiSource::parse("pi://h?points=a&interval=0").is_err());
        assert_eq!(value_of(&serde_json::json!({"Name": "On", "Value": 1})), 1);
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }
}
