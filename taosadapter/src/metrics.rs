//! The adapter's own counters, served as Prometheus text on `GET /metrics`.
//!
//! Request counts are labelled by route template (`/rest/sql/{db}`, not the concrete path) so a
//! client cannot blow up the series count with distinct URLs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    rows: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    in_flight: AtomicI64,
}

/// Kinds of failure counted in `taosadapter_errors_total`.
#[derive(Debug, Clone, Copy)]
pub enum ErrorKind {
    /// Bad request: parameters, body, size.
    Request,
    /// Missing or malformed credentials.
    Auth,
    /// TDengine reported an error (including wrong passwords).
    Taos,
    /// No connection available in time.
    Pool,
}

impl ErrorKind {
    fn label(self) -> &'static str {
        match self {
            ErrorKind::Request => "request",
            ErrorKind::Auth => "auth",
            ErrorKind::Taos => "taos",
            ErrorKind::Pool => "pool",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Escape a label value per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(&self, route: &str, status: u16) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *lock(&self.requests)
            .entry((route.to_string(), status))
            .or_insert(0) += 1;
    }

    /// Rows written through `protocol` (`rest`, `influxdb`, `opentsdb_json`, `opentsdb_telnet`).
    pub fn rows_written(&self, protocol: &'static str, n: u64) {
        *lock(&self.rows).entry(protocol).or_insert(0) += n;
    }

    pub fn error(&self, kind: ErrorKind) {
        *lock(&self.errors).entry(kind.label()).or_insert(0) += 1;
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self, pool_in_use: usize, pool_idle: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP taosadapter_http_requests_total HTTP requests answered, by route template and status.");
        let _ = writeln!(s, "# TYPE taosadapter_http_requests_total counter");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                s,
                "taosadapter_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        let _ = writeln!(
            s,
            "# HELP taosadapter_http_requests_in_flight HTTP requests being handled now."
        );
        let _ = writeln!(s, "# TYPE taosadapter_http_requests_in_flight gauge");
        let _ = writeln!(
            s,
            "taosadapter_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            s,
            "# HELP taosadapter_rows_written_total Rows written to TDengine, by protocol."
        );
        let _ = writeln!(s, "# TYPE taosadapter_rows_written_total counter");
        for (p, n) in lock(&self.rows).iter() {
            let _ = writeln!(s, "taosadapter_rows_written_total{{protocol=\"{p}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP taosadapter_errors_total Failed requests, by kind of failure."
        );
        let _ = writeln!(s, "# TYPE taosadapter_errors_total counter");
        for (k, n) in lock(&self.errors).iter() {
            let _ = writeln!(s, "taosadapter_errors_total{{kind=\"{k}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP taosadapter_pool_connections_in_use Connections to taosd checked out now."
        );
        let _ = writeln!(s, "# TYPE taosadapter_pool_connections_in_use gauge");
        let _ = writeln!(s, "taosadapter_pool_connections_in_use {pool_in_use}");
        let _ = writeln!(
            s,
            "# HELP taosadapter_pool_connections_idle Idle connections to taosd kept for reuse."
        );
        let _ = writeln!(s, "# TYPE taosadapter_pool_connections_idle gauge");
        let _ = writeln!(s, "taosadapter_pool_connections_idle {pool_idle}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_samples() {
        let m = Metrics::default();
        m.request_started();
        m.request_finished("/rest/sql", 200);
        m.request_started();
        m.rows_written("influxdb", 5);
        m.error(ErrorKind::Auth);
        let text = m.render(1, 2);
        assert!(
            text.contains("taosadapter_http_requests_total{route=\"/rest/sql\",status=\"200\"} 1")
        );
        assert!(text.contains("taosadapter_http_requests_in_flight 1"));
        assert!(text.contains("taosadapter_rows_written_total{protocol=\"influxdb\"} 5"));
        assert!(text.contains("taosadapter_errors_total{kind=\"auth\"} 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} lacks TYPE"
            );
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} lacks HELP"
            );
        }
    }
}
