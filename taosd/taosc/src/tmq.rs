//! A TMQ consumer: Kafka-shaped subscription to topics over the native protocol.
//!
//! ```no_run
//! # async fn demo() -> Result<(), common::TaosError> {
//! use taosc::{Consumer, ConnectOptions};
//! let mut c = Consumer::new(
//!     ConnectOptions::default(),
//!     &[("group.id", "g1"), ("auto.offset.reset", "earliest")],
//! )
//! .await?;
//! c.subscribe(&["topic_meters"]).await?;
//! while let Some(msg) = c.poll(std::time::Duration::from_secs(1)).await? {
//!     println!("{} rows from vgroup {}", msg.rows(), msg.vgroup_id);
//!     c.commit(&msg).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! The server keeps the consumer's assignment and positions; this side sends heartbeats from a
//! background task, commits automatically (before a poll, once `auto.commit.interval.ms` has
//! passed) when `enable.auto.commit` is on, and re-joins under the same id when the server
//! no longer knows it (restart, or dropped after a long silence).

use crate::{ConnectOptions, Connection};
use common::tmq::{
    Assignment, ConsumerConfig, TmqMessage, TmqRequest, TmqResponse, TopicOffset, TopicVgroup,
};
use common::{Code, TaosError};
use std::time::{Duration, Instant};

/// How often the background task tells the server the consumer is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

pub struct Consumer {
    conn: Connection,
    config: ConsumerConfig,
    id: u64,
    topics: Vec<String>,
    subscribed: bool,
    last_commit: Instant,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

fn unexpected(r: TmqResponse) -> TaosError {
    TaosError::new(
        Code::TMQ_INVALID_MSG,
        format!("unexpected TMQ reply: {r:?}"),
    )
}

/// A consumer id unlikely to collide with another client's.
fn new_consumer_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() >> 1
}

impl Consumer {
    /// Connect with `opts` (overridden by any `td.connect.*` key) and the consumer keys of
    /// TDengine's `tmq_conf_set` (`group.id` is required).
    pub async fn new(
        mut opts: ConnectOptions,
        pairs: &[(&str, &str)],
    ) -> Result<Consumer, TaosError> {
        let config = ConsumerConfig::from_pairs(pairs.iter().copied())?;
        let k = &config.connect;
        if let Some(h) = &k.ip {
            opts.host = h.clone();
        }
        if let Some(p) = k.port {
            opts.port = p;
        }
        if let Some(u) = &k.user {
            opts.user = u.clone();
        }
        if let Some(p) = &k.pass {
            opts.password = p.clone();
        }
        if k.db.is_some() {
            opts.db = k.db.clone();
        }
        let conn = Connection::connect(opts).await?;
        Ok(Consumer::with_connection(conn, config))
    }

    /// A consumer on an existing session (taosadapter hands one per WebSocket consumer).
    pub fn with_connection(conn: Connection, config: ConsumerConfig) -> Consumer {
        Consumer {
            conn,
            config,
            id: new_consumer_id(),
            topics: Vec::new(),
            subscribed: false,
            last_commit: Instant::now(),
            heartbeat: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Join the group with these topics (replacing an earlier subscription).
    pub async fn subscribe(&mut self, topics: &[&str]) -> Result<(), TaosError> {
        self.topics = topics.iter().map(|t| t.to_string()).collect();
        self.join().await?;
        self.subscribed = true;
        if self.heartbeat.is_none() {
            let conn = self.conn.clone();
            let id = self.id;
            self.heartbeat = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                    let _ = conn.tmq(TmqRequest::Heartbeat { consumer_id: id }).await;
                }
            }));
        }
        Ok(())
    }

    async fn join(&self) -> Result<(), TaosError> {
        match self
            .conn
            .tmq(TmqRequest::Subscribe {
                consumer_id: Some(self.id),
                config: self.config.clone(),
                topics: self.topics.clone(),
            })
            .await?
        {
            TmqResponse::Subscribed { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Run `req`, re-joining once if the server has forgotten this consumer.
    async fn request(&self, req: TmqRequest) -> Result<TmqResponse, TaosError> {
        match self.conn.tmq(req.clone()).await {
            Err(e) if e.is(Code::CONSUMER_NOT_EXIST) && self.subscribed => {
                tracing::info!(consumer = self.id, "server lost the consumer; re-joining");
                self.join().await?;
                self.conn.tmq(req).await
            }
            other => other,
        }
    }

    fn ensure_subscribed(&self) -> Result<(), TaosError> {
        if self.subscribed {
            Ok(())
        } else {
            Err(TaosError::new(
                Code::TMQ_CONSUMER_CLOSED,
                "Consumer closed: subscribe first",
            ))
        }
    }

    /// The next message, or `None` if nothing arrived within `timeout`.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Option<TmqMessage>, TaosError> {
        self.ensure_subscribed()?;
        if self.config.auto_commit
            && self.last_commit.elapsed()
                >= Duration::from_millis(self.config.auto_commit_interval_ms)
        {
            self.commit_all().await?;
        }
        // A timeout too large to add (u64::MAX ms from a client) waits a day at most.
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let req = TmqRequest::Poll {
                consumer_id: self.id,
                timeout_ms: left.as_millis() as u64,
            };
            match self.request(req).await? {
                TmqResponse::Message(Some(m)) => return Ok(Some(m)),
                TmqResponse::Message(None) if Instant::now() >= deadline => return Ok(None),
                TmqResponse::Message(None) => {}
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Commit the position after `msg` for its vgroup.
    pub async fn commit(&mut self, msg: &TmqMessage) -> Result<(), TaosError> {
        self.commit_offset(&msg.topic, msg.vgroup_id, msg.offset)
            .await
    }

    /// Commit every current position of this consumer.
    pub async fn commit_all(&mut self) -> Result<(), TaosError> {
        self.ensure_subscribed()?;
        self.request(TmqRequest::Commit {
            consumer_id: self.id,
            offsets: Vec::new(),
        })
        .await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commit in the background; errors are logged (TDengine's `tmq_commit_async`).
    pub fn commit_async(&mut self) {
        let conn = self.conn.clone();
        let id = self.id;
        self.last_commit = Instant::now();
        tokio::spawn(async move {
            let r = conn
                .tmq(TmqRequest::Commit {
                    consumer_id: id,
                    offsets: Vec::new(),
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(consumer = id, error = %e, "async commit failed");
            }
        });
    }

    pub async fn commit_offset(
        &mut self,
        topic: &str,
        vgroup_id: u32,
        offset: i64,
    ) -> Result<(), TaosError> {
        self.ensure_subscribed()?;
        self.request(TmqRequest::Commit {
            consumer_id: self.id,
            offsets: vec![TopicOffset {
                topic: topic.to_string(),
                vgroup_id,
                offset,
            }],
        })
        .await?;
        Ok(())
    }

    /// Committed offsets of the group (`common::tmq::NO_COMMITTED_OFFSET` where none).
    pub async fn committed(&self, topic: &str, vgroup_id: u32) -> Result<i64, TaosError> {
        self.ensure_subscribed()?;
        self.offsets(TmqRequest::Committed {
            consumer_id: self.id,
            parts: vec![TopicVgroup {
                topic: topic.to_string(),
                vgroup_id,
            }],
        })
        .await
    }

    /// Where the next poll of this vgroup starts.
    pub async fn position(&self, topic: &str, vgroup_id: u32) -> Result<i64, TaosError> {
        self.ensure_subscribed()?;
        self.offsets(TmqRequest::Position {
            consumer_id: self.id,
            parts: vec![TopicVgroup {
                topic: topic.to_string(),
                vgroup_id,
            }],
        })
        .await
    }

    async fn offsets(&self, req: TmqRequest) -> Result<i64, TaosError> {
        match self.request(req).await? {
            TmqResponse::Offsets(v) => v
                .first()
                .copied()
                .ok_or_else(|| TaosError::of(Code::TMQ_INVALID_MSG)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn seek(&self, topic: &str, vgroup_id: u32, offset: i64) -> Result<(), TaosError> {
        self.ensure_subscribed()?;
        self.request(TmqRequest::Seek {
            consumer_id: self.id,
            topic: topic.to_string(),
            vgroup_id,
            offset,
        })
        .await?;
        Ok(())
    }

    /// The vgroups of `topic` assigned to this consumer, with positions and WAL ranges.
    pub async fn assignment(&self, topic: &str) -> Result<Vec<Assignment>, TaosError> {
        self.ensure_subscribed()?;
        match self
            .request(TmqRequest::Assignment {
                consumer_id: self.id,
                topic: topic.to_string(),
            })
            .await?
        {
            TmqResponse::Assignment(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// Leave the topics; the group rebalances without this consumer.
    pub async fn unsubscribe(&mut self) -> Result<(), TaosError> {
        if !self.subscribed {
            return Ok(());
        }
        self.subscribed = false;
        self.topics.clear();
        self.conn
            .tmq(TmqRequest::Unsubscribe {
                consumer_id: self.id,
            })
            .await?;
        Ok(())
    }

    /// Commit (when auto-commit is on) and leave the group at once.
    pub async fn close(mut self) -> Result<(), TaosError> {
        if self.subscribed && self.config.auto_commit {
            self.commit_all().await?;
        }
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.subscribed = false;
        self.conn
            .tmq(TmqRequest::Close {
                consumer_id: self.id,
            })
            .await?;
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}
