//! Connections to taosd, reused across requests.
//!
//! Idle connections are kept per (user, password, database, session time zone), because a taosc
//! connection carries a current database and a time zone: a connection is only handed to a
//! request that wants exactly that state, and one whose database changed under a request (a
//! `USE` in the SQL body) is closed instead of returned, so REST stays stateless. At most
//! `maxConnect` connections are checked out at once and at most `maxIdle` kept idle, both
//! across all keys (many databases must not mean many idle sessions on taosd); a request that
//! cannot get a connection within `waitTimeout` fails with [`PoolError::Timeout`] (HTTP 503).

use crate::config::Config;
use common::TaosError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taosc::{ConnectOptions, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("timed out waiting for a connection to taosd")]
    Timeout,
    #[error(transparent)]
    Taos(#[from] TaosError),
}

/// What a pooled connection is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub user: String,
    pub password: String,
    pub db: Option<String>,
    /// Session time zone sent at connect (`conn_tz`); `None` uses taos.cfg's.
    pub tz: Option<String>,
}

impl PoolKey {
    pub fn new(user: &str, password: &str) -> PoolKey {
        PoolKey {
            user: user.to_string(),
            password: password.to_string(),
            db: None,
            tz: None,
        }
    }

    pub fn with_db(mut self, db: Option<&str>) -> PoolKey {
        self.db = db.filter(|d| !d.is_empty()).map(str::to_string);
        self
    }

    pub fn with_tz(mut self, tz: Option<&str>) -> PoolKey {
        self.tz = tz.map(str::to_string);
        self
    }
}

struct Idle {
    conn: Connection,
    since: Instant,
}

/// Idle connections by key, and how many there are in all.
#[derive(Default)]
struct IdleSet {
    map: HashMap<PoolKey, Vec<Idle>>,
    total: usize,
}

struct Shared {
    base: ConnectOptions,
    idle: Mutex<IdleSet>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// The connection pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    max_connect: usize,
    wait_timeout: Duration,
}

/// A checked-out connection. Dropping it returns the connection to the pool when it is still in
/// the state its key describes.
pub struct Pooled {
    conn: Connection,
    key: PoolKey,
    shared: Arc<Shared>,
    keep: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// `base` carries the endpoints (from taos.cfg); user, password, db and tz come per request.
    pub fn new(base: ConnectOptions, config: &Config) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                base,
                idle: Mutex::new(IdleSet::default()),
                max_idle: config.effective_max_idle(),
                idle_timeout: config.pool_idle_timeout,
            }),
            permits: Arc::new(Semaphore::new(config.effective_max_connect())),
            max_connect: config.effective_max_connect(),
            wait_timeout: config.pool_wait_timeout,
        }
    }

    /// Where connections go (for logs).
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        self.shared.base.endpoints()
    }

    /// Connections checked out right now.
    pub fn in_use(&self) -> usize {
        self.max_connect
            .saturating_sub(self.permits.available_permits())
    }

    /// Get a connection for `key`: an idle one if there is, otherwise a new one. For a key with
    /// a database, a new connection runs `USE db` and ignores its error, as the real adapter does
    /// (so `/rest/sql/x` with `CREATE DATABASE x` works).
    pub async fn get(&self, key: &PoolKey) -> Result<Pooled, PoolError> {
        let permit =
            match tokio::time::timeout(self.wait_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(_)) | Err(_) => return Err(PoolError::Timeout),
            };
        if let Some(conn) = self.shared.take_idle(key) {
            return Ok(Pooled {
                conn,
                key: key.clone(),
                shared: self.shared.clone(),
                keep: true,
                _permit: permit,
            });
        }
        let mut opts = self.shared.base.clone();
        opts.user = key.user.clone();
        opts.password = key.password.clone();
        opts.db = None;
        if key.tz.is_some() {
            opts.tz = key.tz.clone();
        }
        opts.app = "taosadapter".into();
        let conn = Connection::connect(opts).await?;
        if let Some(db) = &key.db {
            let sql = format!("USE `{}`", db.replace('`', "``"));
            if let Err(e) = conn.exec(&sql).await {
                tracing::debug!(db = %db, error = %e, "USE failed; continuing without a database");
            }
        }
        Ok(Pooled {
            conn,
            key: key.clone(),
            shared: self.shared.clone(),
            keep: true,
            _permit: permit,
        })
    }

    /// A connection of its own for a stateful session (a WebSocket): not pooled, not counted
    /// against `maxConnect`, closed when the session drops it. With a database, `USE db` must
    /// succeed (its error is returned).
    pub async fn connect_session(&self, key: &PoolKey) -> Result<Connection, TaosError> {
        let mut opts = self.shared.base.clone();
        opts.user = key.user.clone();
        opts.password = key.password.clone();
        opts.db = None;
        if key.tz.is_some() {
            opts.tz = key.tz.clone();
        }
        opts.app = "taosadapter".into();
        let conn = Connection::connect(opts).await?;
        if let Some(db) = &key.db {
            conn.exec(&format!("USE `{}`", db.replace('`', "``")))
                .await?;
        }
        Ok(conn)
    }

    /// Close idle connections past `idleTimeout` (run periodically).
    pub fn reap(&self) {
        self.shared.reap();
    }

    /// Idle connections across all keys.
    pub fn idle_count(&self) -> usize {
        self.shared.lock().total
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdleSet> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expired(&self, i: &Idle) -> bool {
        !self.idle_timeout.is_zero() && i.since.elapsed() >= self.idle_timeout
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Connection> {
        let mut set = self.lock();
        let IdleSet { map, total } = &mut *set;
        let list = map.get_mut(key)?;
        while let Some(i) = list.pop() {
            *total -= 1;
            if !self.expired(&i) {
                return Some(i.conn);
            }
        }
        None
    }

    fn put_back(&self, key: PoolKey, conn: Connection) {
        let mut set = self.lock();
        if set.total >= self.max_idle {
            return;
        }
        set.total += 1;
        set.map.entry(key).or_default().push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    fn reap(&self) {
        let mut set = self.lock();
        let IdleSet { map, total } = &mut *set;
        for list in map.values_mut() {
            list.retain(|i| !self.expired(i));
        }
        map.retain(|_, l| !l.is_empty());
        *total = map.values().map(Vec::len).sum();
    }
}

impl Pooled {
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Do not reuse this connection (its state is unknown after an error).
    pub fn discard(&mut self) {
        self.keep = false;
    }
}

impl std::ops::Deref for Pooled {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.keep && self.conn.current_db() == self.key.db {
            self.shared.put_back(self.key.clone(), self.conn.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::{Request, Response};
    use taosc::fake_server::{connected, Action, FakeServer};

    async fn fake() -> FakeServer {
        FakeServer::start(|req| {
            Action::Reply(match req {
                Request::Connect { password, .. } if password != "taosdata" => {
                    Response::Error(TaosError::of(common::Code::AUTH_FAILURE))
                }
                Request::Connect { .. } => connected(None),
                Request::Query { sql } if sql.contains("nodb") => {
                    Response::Error(TaosError::of(common::Code::DB_NOT_EXIST))
                }
                Request::Query { sql } => {
                    let db = sql.strip_prefix("USE `").and_then(|r| r.strip_suffix('`'));
                    Response::Executed {
                        affected_rows: 0,
                        db: db.map(str::to_string),
                    }
                }
                _ => Response::Pong,
            })
        })
        .await
    }

    fn pool(port: u16, max_connect: usize, max_idle: usize) -> Pool {
        let config = Config {
            pool_max_connect: max_connect,
            pool_max_idle: max_idle,
            pool_wait_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        Pool::new(ConnectOptions::new("127.0.0.1", port), &config)
    }

    fn connects(s: &FakeServer) -> usize {
        s.requests()
            .iter()
            .filter(|r| matches!(r, Request::Connect { .. }))
            .count()
    }

    #[tokio::test]
    async fn reuses_idle_connections_per_key() {
        let s = fake().await;
        let p = pool(s.port, 4, 4);
        let root = PoolKey::new("root", "taosdata");
        drop(p.get(&root).await.unwrap());
        drop(p.get(&root).await.unwrap());
        assert_eq!(connects(&s), 1, "second request reuses the idle connection");
        assert_eq!(p.idle_count(), 1);
        // Another database is another key: a new connection that ran USE.
        let power = root.clone().with_db(Some("power"));
        let c = p.get(&power).await.unwrap();
        assert_eq!(c.current_db().as_deref(), Some("power"));
        drop(c);
        assert_eq!(connects(&s), 2);
        assert_eq!(p.idle_count(), 2);
        // Wrong password: TDengine's auth error, nothing pooled.
        let e = p.get(&PoolKey::new("root", "bad")).await.err().unwrap();
        assert!(matches!(e, PoolError::Taos(t) if t.is(common::Code::AUTH_FAILURE)));
    }

    #[tokio::test]
    async fn changed_database_is_not_returned() {
        let s = fake().await;
        let p = pool(s.port, 4, 4);
        let root = PoolKey::new("root", "taosdata");
        let c = p.get(&root).await.unwrap();
        c.exec("USE `other`").await.unwrap();
        drop(c);
        assert_eq!(
            p.idle_count(),
            0,
            "a USE in the body must not leak into later requests"
        );
        // A database whose USE fails gives a connection without a db, which is not kept.
        let c = p.get(&root.clone().with_db(Some("nodb"))).await.unwrap();
        assert_eq!(c.current_db(), None);
        drop(c);
        assert_eq!(p.idle_count(), 0);
    }

    #[tokio::test]
    async fn limits_in_use_and_idle() {
        let s = fake().await;
        let p = pool(s.port, 2, 1);
        let root = PoolKey::new("root", "taosdata");
        let a = p.get(&root).await.unwrap();
        let b = p.get(&root).await.unwrap();
        assert_eq!(p.in_use(), 2);
        assert!(matches!(p.get(&root).await, Err(PoolError::Timeout)));
        drop(a);
        drop(b);
        assert_eq!(
            (p.in_use(), p.idle_count()),
            (0, 1),
            "maxIdle caps what is kept"
        );
    }
}
