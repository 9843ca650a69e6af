//! Live client connections and the statement each is running: what
//! `performance_schema.perf_connections` / `perf_queries` (SHOW CONNECTIONS / SHOW QUERIES)
//! list, and what KILL QUERY / KILL CONNECTION act on.
//!
//! A connection runs one request at a time (the wire protocol is request/response), so it has
//! at most one running statement; its query id is `<conn_id>:<seq>`, `seq` counting the
//! connection's statements. Killing works by notification: the connection loop races the
//! statement (and its socket read) against a `Notify`, and dropping the statement's future
//! stops DataFusion's execution. Only read-only statements (SELECT, SHOW, DESCRIBE) can be
//! killed, so a KILL never leaves a write or DDL half applied.

use crate::exec::ResultRows;
use common::{Code, DataType, Field, Precision, TaosError, TaosResult, Value};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// The statement a connection is running.
struct Running {
    seq: u64,
    sql: String,
    create_time: i64,
    started: Instant,
    killable: bool,
    cancel: Arc<Notify>,
}

struct Conn {
    user: String,
    app: String,
    end_point: String,
    login_time: i64,
    last_access: i64,
    next_seq: u64,
    running: Option<Running>,
    kill: Arc<Notify>,
}

#[derive(Default)]
pub struct Connections {
    conns: Mutex<BTreeMap<u64, Conn>>,
}

/// Removes its connection from the registry when the connection task ends.
pub struct ConnGuard<'a> {
    reg: &'a Connections,
    pub conn_id: u64,
    /// Notified by KILL CONNECTION.
    pub kill: Arc<Notify>,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.reg.conns.lock().remove(&self.conn_id);
    }
}

/// SELECT, SHOW, DESCRIBE and the like: statements that change nothing, so that cancelling one
/// half way is harmless.
pub fn is_read_only(sql: &str) -> bool {
    let first: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "select" | "with" | "show" | "describe" | "desc" | "explain"
    )
}

impl Connections {
    /// Register an authenticated connection.
    pub fn open(&self, conn_id: u64, user: &str, app: &str, end_point: &str) -> ConnGuard<'_> {
        let now = Precision::Ms.now();
        let kill = Arc::new(Notify::new());
        self.conns.lock().insert(
            conn_id,
            Conn {
                user: user.to_string(),
                app: app.to_string(),
                end_point: end_point.to_string(),
                login_time: now,
                last_access: now,
                next_seq: 1,
                running: None,
                kill: kill.clone(),
            },
        );
        ConnGuard {
            reg: self,
            conn_id,
            kill,
        }
    }

    /// A statement starts on `conn_id`: returns what cancels it.
    pub fn begin(&self, conn_id: u64, sql: &str) -> Arc<Notify> {
        let cancel = Arc::new(Notify::new());
        let mut g = self.conns.lock();
        if let Some(c) = g.get_mut(&conn_id) {
            let now = Precision::Ms.now();
            c.last_access = now;
            let seq = c.next_seq;
            c.next_seq += 1;
            c.running = Some(Running {
                seq,
                sql: sql.to_string(),
                create_time: now,
                started: Instant::now(),
                killable: is_read_only(sql),
                cancel: cancel.clone(),
            });
        }
        cancel
    }

    /// The statement of `conn_id` ended.
    pub fn end(&self, conn_id: u64) {
        if let Some(c) = self.conns.lock().get_mut(&conn_id) {
            c.running = None;
            c.last_access = Precision::Ms.now();
        }
    }

    /// Any other request (fetch, write, ping) counts as activity.
    pub fn touch(&self, conn_id: u64) {
        if let Some(c) = self.conns.lock().get_mut(&conn_id) {
            c.last_access = Precision::Ms.now();
        }
    }

    /// Only a superuser kills other users' work.
    fn may_kill(c: &Conn, user: &str, superuser: bool) -> TaosResult<()> {
        if superuser || c.user == user {
            Ok(())
        } else {
            Err(TaosError::of(Code::NO_RIGHTS))
        }
    }

    /// `KILL QUERY '<conn_id>:<seq>'`.
    pub fn kill_query(&self, kill_id: &str, user: &str, superuser: bool) -> TaosResult<()> {
        let bad = || {
            TaosError::new(
                Code::MND_INVALID_QUERY_ID,
                format!("Invalid query id: {kill_id}"),
            )
        };
        let (conn, seq) = kill_id.trim().split_once(':').ok_or_else(bad)?;
        let conn: u64 = conn.trim().parse().map_err(|_| bad())?;
        let seq: u64 = seq.trim().parse().map_err(|_| bad())?;
        let g = self.conns.lock();
        let c = g.get(&conn).ok_or_else(|| {
            TaosError::new(
                Code::MND_INVALID_CONN_ID,
                format!("Invalid connection id: {conn}"),
            )
        })?;
        Self::may_kill(c, user, superuser)?;
        match &c.running {
            Some(r) if r.seq == seq && r.killable => {
                r.cancel.notify_one();
                Ok(())
            }
            Some(r) if r.seq == seq => Err(TaosError::new(
                Code::PAR_NOT_SUPPORTED,
                format!("Query {kill_id} changes data and cannot be killed"),
            )),
            _ => Err(bad()),
        }
    }

    /// `KILL CONNECTION id`: its running statement is cancelled and its socket closed.
    pub fn kill_connection(&self, conn_id: i64, user: &str, superuser: bool) -> TaosResult<()> {
        let g = self.conns.lock();
        let c = u64::try_from(conn_id)
            .ok()
            .and_then(|id| g.get(&id))
            .ok_or_else(|| {
                TaosError::new(
                    Code::MND_INVALID_CONN_ID,
                    format!("Invalid connection id: {conn_id}"),
                )
            })?;
        Self::may_kill(c, user, superuser)?;
        c.kill.notify_one();
        Ok(())
    }

    /// `performance_schema.perf_connections`.
    pub fn perf_connections(&self) -> ResultRows {
        let f = Field::new;
        let mut r = ResultRows::new(vec![
            f("conn_id", DataType::UInt),
            f("user", DataType::VarChar(24)),
            f("app", DataType::VarChar(24)),
            f("pid", DataType::UInt),
            f("end_point", DataType::VarChar(128)),
            f("login_time", DataType::Timestamp),
            f("last_access", DataType::Timestamp),
        ]);
        for (id, c) in self.conns.lock().iter() {
            r.rows.push(vec![
                Value::UInt(*id as u32),
                Value::VarChar(c.user.clone()),
                Value::VarChar(c.app.clone()),
                Value::UInt(0),
                Value::VarChar(c.end_point.clone()),
                Value::Timestamp(c.login_time),
                Value::Timestamp(c.last_access),
            ]);
        }
        r
    }

    /// `performance_schema.perf_queries`: statements running now.
    pub fn perf_queries(&self) -> ResultRows {
        let f = Field::new;
        let mut r = ResultRows::new(vec![
            f("kill_id", DataType::VarChar(64)),
            f("query_id", DataType::BigInt),
            f("conn_id", DataType::UInt),
            f("app", DataType::VarChar(24)),
            f("pid", DataType::Int),
            f("user", DataType::VarChar(24)),
            f("end_point", DataType::VarChar(128)),
            f("create_time", DataType::Timestamp),
            f("exec_usec", DataType::BigInt),
            f("stable_query", DataType::Bool),
            f("sub_num", DataType::Int),
            f("sub_status", DataType::VarChar(1000)),
            f("sql", DataType::VarChar(1024)),
        ]);
        for (id, c) in self.conns.lock().iter() {
            let Some(q) = &c.running else { continue };
            r.rows.push(vec![
                Value::VarChar(format!("{id}:{}", q.seq)),
                Value::BigInt(q.seq as i64),
                Value::UInt(*id as u32),
                Value::VarChar(c.app.clone()),
                Value::Int(0),
                Value::VarChar(c.user.clone()),
                Value::VarChar(c.end_point.clone()),
                Value::Timestamp(q.create_time),
                Value::BigInt(q.started.elapsed().as_micros() as i64),
                Value::Bool(false),
                Value::Int(0),
                Value::VarChar(String::new()),
                Value::VarChar(q.sql.chars().take(1024).collect()),
            ]);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_ids_and_read_only_statements() {
        let reg = Connections::default();
        let g = reg.open(7, "u", "app", "127.0.0.1:1");
        let cancel = reg.begin(7, "  SELECT count(*) FROM t");
        assert_eq!(reg.perf_queries().rows.len(), 1);
        assert_eq!(
            reg.kill_query("7:2", "u", false).unwrap_err().code,
            Code::MND_INVALID_QUERY_ID.full()
        );
        assert_eq!(
            reg.kill_query("8:1", "root", true).unwrap_err().code,
            Code::MND_INVALID_CONN_ID.full()
        );
        assert_eq!(
            reg.kill_query("7:1", "other", false).unwrap_err().code,
            Code::NO_RIGHTS.full()
        );
        assert!(reg.kill_query("junk", "u", false).is_err());
        reg.kill_query("7:1", "u", false).unwrap();
        // the permit is stored: the statement sees it even if it waits later
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { cancel.notified().await });
        reg.end(7);
        assert!(reg.perf_queries().rows.is_empty());
        reg.begin(7, "INSERT INTO t VALUES (now, 1)");
        assert!(reg.kill_query("7:2", "u", false).is_err());
        assert!(!is_read_only("insert into t select * from x"));
        assert!(is_read_only("(select 1) union (select 2)"));
        drop(g);
        assert!(reg.perf_connections().rows.is_empty());
    }
}
