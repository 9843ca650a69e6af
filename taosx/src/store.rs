//! Task definitions and agents, kept in SQLite under `data_dir` (`taosx.db`) so they survive
//! restarts. Agent tokens are stored as SHA-256 hashes: a token is shown once, when issued.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Mutex;
use taos_edge::task::TaskSpec;

#[derive(Debug, thiserror::Error)]
#[error("task store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskRow {
    pub spec: TaskSpec,
    /// The agent that runs it; `None` runs it inside taosx.
    pub agent: Option<String>,
    pub running: bool,
    pub created: i64,
    /// The definition as submitted (source DSN and sink), for display.
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub revoked: bool,
}

pub struct Store {
    conn: Mutex<Connection>,
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(dir.join("taosx.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tasks (
               id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL,
               agent TEXT, running INTEGER NOT NULL, created INTEGER NOT NULL,
               src TEXT NOT NULL, sink TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS agents (
               id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
               created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn put_task(&self, t: &TaskRow) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&t.spec).unwrap_or_default();
        self.conn().execute(
            "INSERT OR REPLACE INTO tasks (id, name, spec, agent, running, created, src, sink)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.spec.id,
                t.spec.name,
                spec,
                t.agent,
                t.running as i64,
                t.created,
                t.from,
                t.to
            ],
        )?;
        Ok(())
    }

    pub fn tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        self.select("", params![])
    }

    pub fn task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        Ok(self
            .select("WHERE id = ?1", params![id])?
            .into_iter()
            .next())
    }

    fn select(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<TaskRow>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT spec, agent, running, created, src, sink FROM tasks {filter} ORDER BY created, id"
        ))?;
        let rows = st.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (spec, agent, running, created, from, to) = r?;
            match serde_json::from_str::<TaskSpec>(&spec) {
                Ok(spec) => out.push(TaskRow {
                    spec,
                    agent,
                    running: running != 0,
                    created,
                    from,
                    to,
                }),
                Err(e) => tracing::error!(error = %e, "unreadable task definition skipped"),
            }
        }
        Ok(out)
    }

    pub fn delete_task(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM tasks WHERE id = ?1", params![id])?
            > 0)
    }

    pub fn add_agent(&self, a: &AgentRow, token: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO agents (id, name, token_hash, created, revoked) VALUES (?1, ?2, ?3, ?4, 0)",
            params![a.id, a.name, hash_token(token), a.created],
        )?;
        Ok(())
    }

    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT id, name, created, revoked FROM agents ORDER BY created, id")?;
        let rows = st.query_map([], |r| {
            Ok(AgentRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created: r.get(2)?,
                revoked: r.get::<_, i64>(3)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The live (not revoked) agent holding `token`.
    pub fn agent_by_token(&self, token: &str) -> Result<Option<AgentRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, created, revoked FROM agents WHERE token_hash = ?1 AND revoked = 0",
                params![hash_token(token)],
                |r| {
                    Ok(AgentRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created: r.get(2)?,
                        revoked: false,
                    })
                },
            )
            .optional()?)
    }

    pub fn revoke_agent(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("UPDATE agents SET revoked = 1 WHERE id = ?1", params![id])?
            > 0)
    }
}

/// A random identifier or secret: `n` bytes as hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
