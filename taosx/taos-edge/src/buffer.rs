//! The agent's durable point buffer: every collected point is committed here before the source
//! is acknowledged, and deleted only after taosx says taosd has it.
//!
//! Format: one SQLite database `<buffer_dir>/buffer.db` in WAL journal mode with
//! `synchronous = FULL` (a committed append survives power loss):
//!
//! ```sql
//! CREATE TABLE entries (
//!   seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so acks cannot hit new rows
//!   task_id  TEXT NOT NULL,
//!   created  INTEGER NOT NULL,  -- ms since the epoch, when collected
//!   points   INTEGER NOT NULL,
//!   bytes    INTEGER NOT NULL,  -- length of payload
//!   payload  BLOB NOT NULL      -- lz4 (size-prepended) of bincode(common::wire::WriteRequest)
//! );
//! ```
//!
//! An entry is a group commit of many points (a collector flushes every few milliseconds or
//! thousand points). Shipping reads entries in `seq` order per task; an ack deletes `seq <= n`
//! of that task. When the configured size limit is reached the policy decides: `block` makes
//! collectors wait (MQTT then holds its unacknowledged messages at the broker), `drop_oldest`
//! deletes the oldest entries and counts the points dropped.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("buffer encoding: {0}")]
    Encode(String),
    #[error("buffer is full ({used} of {limit} bytes) and the policy is to block")]
    Full { used: u64, limit: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    Block,
    DropOldest,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(FullPolicy::Block),
            "drop_oldest" => Ok(FullPolicy::DropOldest),
            other => Err(format!(
                "unknown buffer policy '{other}' (block or drop_oldest)"
            )),
        }
    }
}

/// An entry read for shipping.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub task_id: String,
    pub points: u64,
    /// Compressed as stored (sent as is).
    pub payload: Vec<u8>,
}

pub struct Buffer {
    conn: Mutex<Connection>,
    limit: u64,
    policy: FullPolicy,
    used: AtomicU64,
    points: AtomicU64,
    dropped: AtomicU64,
}

impl Buffer {
    pub fn open(dir: &Path, limit_bytes: u64, policy: FullPolicy) -> Result<Buffer, BufferError> {
        std::fs::create_dir_all(dir).map_err(|e| BufferError::Encode(e.to_string()))?;
        let conn = Connection::open(dir.join("buffer.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               task_id TEXT NOT NULL,
               created INTEGER NOT NULL,
               points INTEGER NOT NULL,
               bytes INTEGER NOT NULL,
               payload BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS entries_task ON entries(task_id, seq);",
        )?;
        let (used, points): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(points), 0) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Buffer {
            conn: Mutex::new(conn),
            limit: limit_bytes,
            policy,
            used: AtomicU64::new(used as u64),
            points: AtomicU64::new(points as u64),
            dropped: AtomicU64::new(0),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commit a batch durably; returns its sequence number. With the `block` policy and a full
    /// buffer this fails with [`BufferError::Full`] and the caller retries later.
    pub fn append(&self, task_id: &str, batch: &crate::Batch) -> Result<u64, BufferError> {
        let payload =
            crate::link::pack(batch, true).map_err(|e| BufferError::Encode(e.to_string()))?;
        let points = crate::points(batch);
        let bytes = payload.len() as u64;
        let mut conn = self.conn();
        if self.limit > 0 && self.used.load(Ordering::Relaxed) + bytes > self.limit {
            match self.policy {
                FullPolicy::Block => {
                    return Err(BufferError::Full {
                        used: self.used.load(Ordering::Relaxed),
                        limit: self.limit,
                    })
                }
                FullPolicy::DropOldest => self.drop_oldest(&mut conn, bytes)?,
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        conn.execute(
            "INSERT INTO entries (task_id, created, points, bytes, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![task_id, now, points as i64, bytes as i64, payload],
        )?;
        let seq = conn.last_insert_rowid() as u64;
        self.used.fetch_add(bytes, Ordering::Relaxed);
        self.points.fetch_add(points, Ordering::Relaxed);
        Ok(seq)
    }

    fn drop_oldest(&self, conn: &mut Connection, need: u64) -> Result<(), BufferError> {
        let tx = conn.transaction()?;
        let mut freed = 0u64;
        let mut points = 0u64;
        let mut last = 0i64;
        {
            let mut st = tx.prepare("SELECT seq, bytes, points FROM entries ORDER BY seq")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                if self.used.load(Ordering::Relaxed) - freed + need <= self.limit {
                    break;
                }
                last = r.get(0)?;
                freed += r.get::<_, i64>(1)? as u64;
                points += r.get::<_, i64>(2)? as u64;
            }
        }
        tx.execute("DELETE FROM entries WHERE seq <= ?1", params![last])?;
        tx.commit()?;
        self.used.fetch_sub(freed, Ordering::Relaxed);
        self.points.fetch_sub(points, Ordering::Relaxed);
        self.dropped.fetch_add(points, Ordering::Relaxed);
        tracing::warn!(
            dropped_points = points,
            freed_bytes = freed,
            "buffer full: dropped the oldest points (policy drop_oldest)"
        );
        Ok(())
    }

    /// Up to `max` entries of `task_id` after `after`, oldest first.
    pub fn read(&self, task_id: &str, after: u64, max: usize) -> Result<Vec<Entry>, BufferError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT seq, points, payload FROM entries WHERE task_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = st.query_map(params![task_id, after as i64, max as i64], |r| {
            Ok(Entry {
                seq: r.get::<_, i64>(0)? as u64,
                task_id: task_id.to_string(),
                points: r.get::<_, i64>(1)? as u64,
                payload: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Tasks with entries waiting.
    pub fn tasks(&self) -> Result<Vec<String>, BufferError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT DISTINCT task_id FROM entries")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// taosx has everything of `task_id` up to `upto`: delete it.
    pub fn ack(&self, task_id: &str, upto: u64) -> Result<(), BufferError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (bytes, points): (i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(points), 0) FROM entries WHERE task_id = ?1 AND seq <= ?2",
            params![task_id, upto as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "DELETE FROM entries WHERE task_id = ?1 AND seq <= ?2",
            params![task_id, upto as i64],
        )?;
        tx.commit()?;
        self.used.fetch_sub(bytes as u64, Ordering::Relaxed);
        self.points.fetch_sub(points as u64, Ordering::Relaxed);
        Ok(())
    }

    pub fn oldest(&self, task_id: &str) -> Result<Option<i64>, BufferError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT MIN(created) FROM entries WHERE task_id = ?1",
                params![task_id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn buffered_points(&self) -> u64 {
        self.points.load(Ordering::Relaxed)
    }

    pub fn dropped_points(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn is_full(&self) -> bool {
        self.limit > 0 && self.used_bytes() >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::{WriteRequest, WriteTable};
    use common::Value;

    fn batch(n: usize) -> crate::Batch {
        WriteRequest {
            db: "edge".into(),
            tables: vec![WriteTable {
                name: "t".into(),
                columns: vec!["ts".into(), "v".into()],
                rows: (0..n)
                    .map(|i| vec![Value::Timestamp(i as i64), Value::Double(i as f64 * 1.37)])
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn append_read_ack_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 0, FullPolicy::Block).unwrap();
        let s1 = b.append("t1", &batch(10)).unwrap();
        let s2 = b.append("t1", &batch(5)).unwrap();
        let s3 = b.append("t2", &batch(1)).unwrap();
        assert!(s1 < s2 && s2 < s3);
        assert_eq!(b.buffered_points(), 16);
        let e = b.read("t1", 0, 10).unwrap();
        assert_eq!(e.iter().map(|e| e.points).collect::<Vec<_>>(), vec![10, 5]);
        let back = crate::link::unpack(&e[0].payload, true).unwrap();
        assert_eq!(crate::points(&back), 10);
        b.ack("t1", s1).unwrap();
        drop(b);
        let b = Buffer::open(dir.path(), 0, FullPolicy::Block).unwrap();
        assert_eq!(b.buffered_points(), 6);
        assert_eq!(b.read("t1", 0, 10).unwrap()[0].seq, s2);
        let mut tasks = b.tasks().unwrap();
        tasks.sort();
        assert_eq!(tasks, vec!["t1", "t2"]);
        // Sequence numbers are never reused after deletes.
        b.ack("t1", s2).unwrap();
        b.ack("t2", s3).unwrap();
        assert!(b.append("t1", &batch(1)).unwrap() > s3);
    }

    #[test]
    fn full_buffer_blocks_or_drops_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let one = crate::link::pack(&batch(100), true).unwrap().len() as u64;
        let b = Buffer::open(dir.path(), one * 3, FullPolicy::Block).unwrap();
        for _ in 0..3 {
            b.append("t", &batch(100)).unwrap();
        }
        assert!(matches!(
            b.append("t", &batch(100)),
            Err(BufferError::Full { .. })
        ));
        let dir2 = tempfile::tempdir().unwrap();
        let d = Buffer::open(dir2.path(), one * 3, FullPolicy::DropOldest).unwrap();
        let first = d.append("t", &batch(100)).unwrap();
        for _ in 0..3 {
            d.append("t", &batch(100)).unwrap();
        }
        assert_eq!(d.dropped_points(), 100);
        assert!(d.read("t", 0, 10).unwrap().iter().all(|e| e.seq > first));
    }
}
