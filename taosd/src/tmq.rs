//! Data subscription (TMQ). The vnode WAL is the queue and an offset is a WAL version; this
//! module keeps topics' consumers in groups, assigns vgroups to them, serves polls straight from
//! the WAL and stores committed offsets.
//!
//! Push-pull: a poll with data waiting returns at once; a poll with nothing to read parks on
//! `wake`, which every vnode signals after applying entries, so a write reaches a waiting
//! consumer without a polling delay.
//!
//! Committed offsets and the list of subscriptions live in `<dataDir>/mnode/tmq_offsets.json`
//! (rewritten atomically on commit); consumers are in memory and re-subscribe after a restart.

pub mod group;
pub mod reader;
pub mod show;
pub mod topic;

use crate::coordinator::Coordinator;
use crate::exec::Session;
use taos_mnode::catalog::now_ms;
use common::fs::write_atomic;
use crate::tmq::group::{Groups, Member};
use crate::tmq::topic::CompiledTopic;
use common::tmq::{
    Assignment, OffsetReset, TmqMessage, TmqRequest, TmqResponse, TopicOffset, TopicVgroup,
    NO_COMMITTED_OFFSET,
};
use common::{Code, TaosError, TaosResult};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Rows gathered for one message before it is returned.
pub const MAX_MESSAGE_ROWS: usize = 32_768;
/// Longest a poll parks on the server; clients loop for longer timeouts.
pub const MAX_POLL_WAIT_MS: u64 = 10_000;

pub struct Tmq {
    groups: Mutex<Groups>,
    next_id: AtomicU64,
    offsets_path: PathBuf,
    compiled: Mutex<HashMap<String, (i64, Arc<CompiledTopic>)>>,
    /// Signalled by every vnode after it applies entries.
    pub wake: Arc<Notify>,
}

#[derive(Serialize, Deserialize, Default)]
struct OffsetsFile {
    offsets: Vec<OffsetRecord>,
    subscriptions: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct OffsetRecord {
    group: String,
    topic: String,
    vgroup_id: u32,
    offset: u64,
}

fn not_exist() -> TaosError {
    TaosError::of(Code::CONSUMER_NOT_EXIST)
}

impl Tmq {
    pub fn open(data_dir: &Path) -> TaosResult<Tmq> {
        let offsets_path = data_dir.join("mnode").join("tmq_offsets.json");
        let mut groups = Groups::default();
        match std::fs::read(&offsets_path) {
            Ok(b) => {
                let f: OffsetsFile = serde_json::from_slice(&b).map_err(|e| {
                    TaosError::new(
                        Code::FILE_CORRUPTED,
                        format!("{}: {e}", offsets_path.display()),
                    )
                })?;
                for r in f.offsets {
                    groups
                        .committed
                        .entry((r.group, r.topic))
                        .or_default()
                        .insert(r.vgroup_id, r.offset);
                }
                groups.subscriptions.extend(f.subscriptions);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // Consumer ids are unique across restarts: a stale client id then gets "Consumer not
        // exist" and re-subscribes instead of being confused with a new consumer.
        let seed = (now_ms() as u64) << 12;
        Ok(Tmq {
            groups: Mutex::new(groups),
            next_id: AtomicU64::new(seed),
            offsets_path,
            compiled: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
        })
    }

    fn save(&self, g: &Groups) -> TaosResult<()> {
        let f = OffsetsFile {
            offsets: g
                .committed
                .iter()
                .flat_map(|((group, topic), m)| {
                    m.iter().map(move |(vg, off)| OffsetRecord {
                        group: group.clone(),
                        topic: topic.clone(),
                        vgroup_id: *vg,
                        offset: *off,
                    })
                })
                .collect(),
            subscriptions: g.subscriptions.iter().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&f).map_err(|e| TaosError::internal(e.to_string()))?;
        write_atomic(&self.offsets_path, &bytes)?;
        Ok(())
    }

    /// Whether a live consumer subscribes to `topic`.
    pub fn topic_in_use(&self, topic: &str) -> bool {
        self.groups
            .lock()
            .members
            .values()
            .any(|m| m.topics.iter().any(|t| t == topic))
    }

    pub fn has_subscription(&self, group: &str, topic: &str) -> bool {
        self.groups
            .lock()
            .subscriptions
            .contains(&(group.to_string(), topic.to_string()))
    }

    /// A dropped topic: forget its offsets and subscriptions, and unsubscribe its consumers.
    pub fn forget_topic(&self, topic: &str) {
        let mut g = self.groups.lock();
        g.committed.retain(|(_, t), _| t != topic);
        g.subscriptions.retain(|(_, t)| t != topic);
        for m in g.members.values_mut() {
            m.topics.retain(|t| t != topic);
        }
        if let Err(e) = self.save(&g) {
            tracing::warn!(error = %e, "saving TMQ offsets failed");
        }
        self.compiled.lock().remove(topic);
    }

    pub fn drop_group(
        &self,
        dnode: &Coordinator,
        group: &str,
        topic: &str,
        force: bool,
    ) -> TaosResult<()> {
        {
            let mut g = self.groups.lock();
            let active = g.active(group, topic);
            if !active.is_empty() && !force {
                return Err(TaosError::of(Code::CGROUP_USED));
            }
            for id in active {
                if let Some(m) = g.members.get_mut(&id) {
                    m.topics.retain(|t| t != topic);
                }
            }
            let key = (group.to_string(), topic.to_string());
            g.committed.remove(&key);
            g.subscriptions.remove(&key);
            self.save(&g)?;
        }
        self.rebalance_groups(dnode, &[group.to_string()]);
        Ok(())
    }

    /// Snapshot of topic -> vgroups from the catalog.
    fn topic_vgroups(dnode: &Coordinator) -> HashMap<String, Vec<u32>> {
        dnode.mnode.read(|c| {
            c.topics
                .values()
                .map(|t| {
                    let vgs = c
                        .dbs
                        .get(&t.db)
                        .map(|d| d.vgroups.iter().map(|v| v.id).collect())
                        .unwrap_or_default();
                    (t.name.clone(), vgs)
                })
                .collect()
        })
    }

    fn rebalance_groups(&self, dnode: &Coordinator, groups: &[String]) {
        let vgs = Self::topic_vgroups(dnode);
        let lookup = |t: &str| vgs.get(t).cloned().unwrap_or_default();
        let mut g = self.groups.lock();
        for name in groups {
            let changed = g.rebalance(name, &lookup, now_ms());
            if !changed.is_empty() {
                tracing::info!(group = %name, consumers = ?changed, "TMQ rebalance");
            }
        }
    }

    pub fn rebalance_all(&self, dnode: &Coordinator) {
        let names: Vec<String> = {
            let g = self.groups.lock();
            let mut v: Vec<String> = g
                .members
                .values()
                .map(|m| m.config.group_id.clone())
                .collect();
            v.dedup();
            v
        };
        self.rebalance_groups(dnode, &names);
    }

    /// Drop consumers whose heartbeat (or poll) stopped, and rebalance their groups.
    pub fn reap(&self, dnode: &Coordinator) {
        let lost: Vec<(u64, String)> = {
            let mut g = self.groups.lock();
            let ids: Vec<(u64, String)> = g
                .members
                .values()
                .filter(|m| {
                    m.last_seen.elapsed() > Duration::from_millis(m.config.session_timeout_ms)
                        || (!m.topics.is_empty()
                            && m.last_poll.elapsed()
                                > Duration::from_millis(m.config.max_poll_interval_ms))
                })
                .map(|m| (m.id, m.config.group_id.clone()))
                .collect();
            for (id, _) in &ids {
                g.members.remove(id);
            }
            ids
        };
        if lost.is_empty() {
            return;
        }
        for (id, group) in &lost {
            tracing::info!(consumer = format!("0x{id:x}"), %group, "TMQ consumer lost");
        }
        let groups: Vec<String> = lost.into_iter().map(|(_, g)| g).collect();
        self.rebalance_groups(dnode, &groups);
    }

    fn compiled(&self, dnode: &Coordinator, name: &str) -> TaosResult<Arc<CompiledTopic>> {
        let info = dnode
            .mnode
            .read(|c| c.topics.get(name).cloned())
            .ok_or_else(|| TaosError::of(Code::TOPIC_NOT_EXIST))?;
        if let Some((t, c)) = self.compiled.lock().get(name) {
            if *t == info.create_time {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(dnode.compile_topic(&info)?);
        self.compiled
            .lock()
            .insert(name.to_string(), (info.create_time, c.clone()));
        Ok(c)
    }
}

/// Where a part without a position starts: the committed offset, else the reset rule.
fn start_position(
    committed: Option<u64>,
    reset: OffsetReset,
    (begin, end): (u64, u64),
) -> TaosResult<u64> {
    match (committed, reset) {
        (Some(c), _) => Ok(c),
        (None, OffsetReset::Earliest) => Ok(begin),
        (None, OffsetReset::Latest) => Ok(end),
        (None, OffsetReset::None) => Err(TaosError::new(
            Code::OFFSET_NOT_EXIST,
            "Offset not exist: no committed offset and auto.offset.reset is none",
        )),
    }
}

/// A part to read in one poll: what the consumer held when the poll began.
struct Planned {
    topic: String,
    vgid: u32,
    position: u64,
    epoch: u64,
}

impl Coordinator {
    fn wal_range_of(&self, vgid: u32) -> TaosResult<(u64, u64)> {
        let v = self.local_vnode(vgid)?;
        Ok(reader::wal_range(&v))
    }

    /// Resolve positions of `id`'s parts that have none yet.
    fn resolve_positions(&self, id: u64) -> TaosResult<()> {
        let pending: Vec<(String, u32)> = {
            let g = self.tmq.groups.lock();
            let m = g.members.get(&id).ok_or_else(not_exist)?;
            m.parts
                .iter()
                .filter(|p| p.position.is_none())
                .map(|p| (p.topic.clone(), p.vgid))
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let ranges: Vec<(String, u32, (u64, u64))> = pending
            .into_iter()
            .map(|(t, v)| self.wal_range_of(v).map(|r| (t, v, r)))
            .collect::<TaosResult<_>>()?;
        let mut g = self.tmq.groups.lock();
        let group = g.group_of(id).ok_or_else(not_exist)?.to_string();
        let reset = g.members[&id].config.auto_offset_reset;
        let starts: Vec<TaosResult<u64>> = ranges
            .iter()
            .map(|(t, v, r)| start_position(g.committed(&group, t, *v), reset, *r))
            .collect();
        let m = g.members.get_mut(&id).ok_or_else(not_exist)?;
        for ((t, v, _), start) in ranges.iter().zip(starts) {
            let start = start?;
            if let Some(p) = m
                .parts
                .iter_mut()
                .find(|p| &p.topic == t && p.vgid == *v && p.position.is_none())
            {
                p.position = Some(start);
            }
        }
        Ok(())
    }

    pub async fn tmq_request(
        self: &Arc<Self>,
        s: &Session,
        req: TmqRequest,
    ) -> TaosResult<TmqResponse> {
        match req {
            TmqRequest::Subscribe {
                consumer_id,
                config,
                topics,
            } => self.tmq_subscribe(s, consumer_id, config, topics),
            TmqRequest::Poll {
                consumer_id,
                timeout_ms,
            } => Ok(TmqResponse::Message(
                self.tmq_poll(consumer_id, timeout_ms).await?,
            )),
            TmqRequest::Commit {
                consumer_id,
                offsets,
            } => {
                self.tmq_commit(consumer_id, offsets)?;
                Ok(TmqResponse::Done)
            }
            TmqRequest::Committed { consumer_id, parts } => {
                let g = self.tmq.groups.lock();
                let m = g.members.get(&consumer_id).ok_or_else(not_exist)?;
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    if !m.topics.contains(&p.topic) {
                        return Err(TaosError::of(Code::TMQ_INVALID_TOPIC));
                    }
                    out.push(
                        g.committed(&m.config.group_id, &p.topic, p.vgroup_id)
                            .map(|o| o as i64)
                            .unwrap_or(NO_COMMITTED_OFFSET),
                    );
                }
                Ok(TmqResponse::Offsets(out))
            }
            TmqRequest::Position { consumer_id, parts } => {
                self.touch(consumer_id)?;
                self.resolve_positions(consumer_id)?;
                let g = self.tmq.groups.lock();
                let m = g.members.get(&consumer_id).ok_or_else(not_exist)?;
                let out = parts
                    .iter()
                    .map(|p| part_of(m, p).map(|x| x.position.unwrap_or(0) as i64))
                    .collect::<TaosResult<Vec<_>>>()?;
                Ok(TmqResponse::Offsets(out))
            }
            TmqRequest::Seek {
                consumer_id,
                topic,
                vgroup_id,
                offset,
            } => {
                self.touch(consumer_id)?;
                let (begin, end) = self.wal_range_of(vgroup_id)?;
                check_range(offset, begin, end)?;
                let mut g = self.tmq.groups.lock();
                let m = g.members.get_mut(&consumer_id).ok_or_else(not_exist)?;
                let key = TopicVgroup { topic, vgroup_id };
                part_of(m, &key)?;
                if let Some(p) = m
                    .parts
                    .iter_mut()
                    .find(|p| p.topic == key.topic && p.vgid == key.vgroup_id)
                {
                    p.position = Some(offset as u64);
                }
                Ok(TmqResponse::Done)
            }
            TmqRequest::Assignment { consumer_id, topic } => {
                self.touch(consumer_id)?;
                self.resolve_positions(consumer_id)?;
                let parts: Vec<(u32, u64)> = {
                    let g = self.tmq.groups.lock();
                    let m = g.members.get(&consumer_id).ok_or_else(not_exist)?;
                    if !m.topics.contains(&topic) {
                        return Err(TaosError::of(Code::TMQ_INVALID_TOPIC));
                    }
                    m.parts
                        .iter()
                        .filter(|p| p.topic == topic)
                        .map(|p| (p.vgid, p.position.unwrap_or(0)))
                        .collect()
                };
                let mut out = Vec::with_capacity(parts.len());
                for (vg, pos) in parts {
                    let (begin, end) = self.wal_range_of(vg)?;
                    out.push(Assignment {
                        vgroup_id: vg,
                        offset: pos as i64,
                        begin: begin as i64,
                        end: end as i64,
                    });
                }
                Ok(TmqResponse::Assignment(out))
            }
            TmqRequest::Heartbeat { consumer_id } => {
                self.touch(consumer_id)?;
                Ok(TmqResponse::Done)
            }
            TmqRequest::Unsubscribe { consumer_id } => {
                let group = {
                    let mut g = self.tmq.groups.lock();
                    let m = g.members.get_mut(&consumer_id).ok_or_else(not_exist)?;
                    m.topics.clear();
                    m.config.group_id.clone()
                };
                self.tmq.rebalance_groups(self, &[group]);
                Ok(TmqResponse::Done)
            }
            TmqRequest::Close { consumer_id } => {
                let group = self
                    .tmq
                    .groups
                    .lock()
                    .members
                    .remove(&consumer_id)
                    .map(|m| m.config.group_id);
                if let Some(group) = group {
                    self.tmq.rebalance_groups(self, &[group]);
                }
                Ok(TmqResponse::Done)
            }
        }
    }

    fn touch(&self, id: u64) -> TaosResult<()> {
        let mut g = self.tmq.groups.lock();
        let m = g.members.get_mut(&id).ok_or_else(not_exist)?;
        m.last_seen = Instant::now();
        Ok(())
    }

    fn tmq_subscribe(
        self: &Arc<Self>,
        s: &Session,
        consumer_id: Option<u64>,
        config: common::tmq::ConsumerConfig,
        topics: Vec<String>,
    ) -> TaosResult<TmqResponse> {
        config.validate()?;
        let mut names = Vec::with_capacity(topics.len());
        for t in topics {
            let t = t.trim().trim_matches('`').to_ascii_lowercase();
            let info = self
                .mnode
                .read(|c| c.topics.get(&t).cloned())
                .ok_or_else(|| {
                    TaosError::new(Code::TOPIC_NOT_EXIST, format!("Topic not exist: {t}"))
                })?;
            if info.owner != s.user {
                self.check_privilege(s, &info.db, false)?;
            }
            if !names.contains(&t) {
                names.push(t);
            }
        }
        let now = now_ms();
        let group = config.group_id.clone();
        let id = {
            let mut g = self.tmq.groups.lock();
            let id = match consumer_id {
                Some(id) if id != 0 => id,
                _ => self.tmq.next_id.fetch_add(1, Ordering::Relaxed),
            };
            for t in &names {
                g.subscriptions.insert((group.clone(), t.clone()));
            }
            match g.members.get_mut(&id) {
                Some(m) if m.config.group_id == group => {
                    m.config = config;
                    m.topics = names;
                    m.subscribe_time = now;
                    m.last_seen = Instant::now();
                    m.last_poll = Instant::now();
                }
                Some(_) => return Err(TaosError::of(Code::CONSUMER_NOT_EXIST)),
                None => {
                    g.members.insert(
                        id,
                        Member {
                            id,
                            config,
                            user: s.user.clone(),
                            fqdn: s.app.clone(),
                            topics: names,
                            parts: Vec::new(),
                            epoch: 0,
                            last_seen: Instant::now(),
                            last_poll: Instant::now(),
                            up_time: now,
                            subscribe_time: now,
                            rebalance_time: now,
                            cursor: 0,
                        },
                    );
                }
            }
            self.tmq.save(&g)?;
            id
        };
        self.tmq.rebalance_groups(self, &[group]);
        Ok(TmqResponse::Subscribed { consumer_id: id })
    }

    fn tmq_commit(&self, id: u64, offsets: Vec<TopicOffset>) -> TaosResult<()> {
        let mut checked = Vec::with_capacity(offsets.len());
        for o in &offsets {
            let (begin, end) = self.wal_range_of(o.vgroup_id)?;
            check_range(o.offset, begin, end)?;
            checked.push((o.topic.clone(), o.vgroup_id, o.offset as u64));
        }
        let mut g = self.tmq.groups.lock();
        let m = g.members.get_mut(&id).ok_or_else(not_exist)?;
        m.last_seen = Instant::now();
        let group = m.config.group_id.clone();
        let list: Vec<(String, u32, u64)> = if offsets.is_empty() {
            m.parts
                .iter()
                .filter_map(|p| p.position.map(|pos| (p.topic.clone(), p.vgid, pos)))
                .collect()
        } else {
            for o in &offsets {
                part_of(
                    m,
                    &TopicVgroup {
                        topic: o.topic.clone(),
                        vgroup_id: o.vgroup_id,
                    },
                )?;
            }
            checked
        };
        for (topic, vg, pos) in list {
            g.committed
                .entry((group.clone(), topic))
                .or_default()
                .insert(vg, pos);
        }
        self.tmq.save(&g)
    }

    /// Next message for consumer `id`, waiting up to `timeout_ms` for one.
    pub async fn tmq_poll(
        self: &Arc<Self>,
        id: u64,
        timeout_ms: u64,
    ) -> TaosResult<Option<TmqMessage>> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.min(MAX_POLL_WAIT_MS));
        loop {
            let wake = self.tmq.wake.clone();
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.resolve_positions(id)?;
            let (plan, with_table_name) = {
                let mut g = self.tmq.groups.lock();
                let m = g.members.get_mut(&id).ok_or_else(not_exist)?;
                m.last_seen = Instant::now();
                m.last_poll = Instant::now();
                let n = m.parts.len();
                let start = if n == 0 { 0 } else { m.cursor % n };
                let plan: Vec<Planned> = (0..n)
                    .map(|k| &m.parts[(start + k) % n])
                    .filter_map(|p| {
                        p.position.map(|position| Planned {
                            topic: p.topic.clone(),
                            vgid: p.vgid,
                            position,
                            epoch: m.epoch,
                        })
                    })
                    .collect();
                (plan, m.config.with_table_name)
            };
            for p in plan {
                let vnode = self.local_vnode(p.vgid)?;
                let (_, end) = reader::wal_range(&vnode);
                if p.position >= end {
                    continue;
                }
                let topic = self.tmq.compiled(self, &p.topic)?;
                let tz = self.config.timezone;
                let batch = tokio::task::block_in_place(|| {
                    reader::read(
                        &vnode,
                        &topic,
                        p.position,
                        with_table_name,
                        MAX_MESSAGE_ROWS,
                        tz,
                    )
                })?;
                if batch.next == p.position {
                    continue;
                }
                // Apply only if the consumer still holds the part where the read began
                // (no rebalance or seek in between).
                let applied = {
                    let mut g = self.tmq.groups.lock();
                    match g.members.get_mut(&id) {
                        Some(m) if m.epoch == p.epoch => {
                            let n = m.parts.len().max(1);
                            match m.parts.iter().position(|x| {
                                x.topic == p.topic
                                    && x.vgid == p.vgid
                                    && x.position == Some(p.position)
                            }) {
                                Some(i) => {
                                    m.parts[i].position = Some(batch.next);
                                    m.parts[i].rows += batch.rows as u64;
                                    m.cursor = (i + 1) % n;
                                    true
                                }
                                None => false,
                            }
                        }
                        _ => false,
                    }
                };
                if applied && (!batch.blocks.is_empty() || !batch.meta.is_empty()) {
                    return Ok(Some(TmqMessage {
                        topic: p.topic,
                        db: topic.info.db.clone(),
                        vgroup_id: p.vgid,
                        offset: batch.next as i64,
                        precision: vnode.config().precision,
                        blocks: batch.blocks,
                        meta: batch.meta,
                    }));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Wake at least every second so a long poll keeps the consumer's heartbeat fresh.
            let wait = (deadline - now).min(Duration::from_secs(1));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }
}

fn check_range(offset: i64, begin: u64, end: u64) -> TaosResult<()> {
    if offset < begin as i64 || offset > end as i64 {
        return Err(TaosError::new(
            Code::TMQ_VERSION_OUT_OF_RANGE,
            format!("Offset out of range: {offset}, valid range [{begin}, {end}]"),
        ));
    }
    Ok(())
}

fn part_of<'m>(m: &'m Member, p: &TopicVgroup) -> TaosResult<&'m group::Part> {
    if !m.topics.contains(&p.topic) {
        return Err(TaosError::of(Code::TMQ_INVALID_TOPIC));
    }
    m.parts
        .iter()
        .find(|x| x.topic == p.topic && x.vgid == p.vgroup_id)
        .ok_or_else(|| TaosError::of(Code::TMQ_INVALID_VGID))
}
