//! `SHOW TOPICS / CONSUMERS / SUBSCRIPTIONS` and the information_schema tables behind them.

use crate::coordinator::Coordinator;
use crate::exec::ResultRows;
use common::{DataType, Field, Value};
use std::collections::BTreeMap;

fn vc(s: impl Into<String>) -> Value {
    Value::VarChar(s.into())
}

fn f(name: &str, ty: DataType) -> Field {
    Field::new(name, ty)
}

fn hex_id(id: u64) -> Value {
    vc(format!("0x{id:x}"))
}

impl Coordinator {
    /// The TMQ system tables, or `None` for another name.
    pub fn tmq_system_table(&self, table: &str) -> Option<ResultRows> {
        Some(match table {
            "ins_topics" => self.ins_topics(),
            "ins_consumers" | "perf_consumers" => self.ins_consumers(),
            "ins_subscriptions" => self.ins_subscriptions(),
            _ => return None,
        })
    }

    fn ins_topics(&self) -> ResultRows {
        let mut r = ResultRows::new(vec![
            f("topic_name", DataType::VarChar(192)),
            f("db_name", DataType::VarChar(64)),
            f("create_time", DataType::Timestamp),
            f("sql", DataType::VarChar(16384)),
            f("schema", DataType::VarChar(16384)),
            f("meta", DataType::VarChar(4)),
            f("type", DataType::VarChar(8)),
            f("owner", DataType::VarChar(24)),
        ]);
        self.mnode.read(|c| {
            for t in c.topics.values() {
                r.rows.push(vec![
                    vc(t.name.clone()),
                    vc(t.db.clone()),
                    Value::Timestamp(t.create_time),
                    vc(t.sql.clone()),
                    Value::Null,
                    vc(if t.with_meta { "yes" } else { "no" }),
                    vc(t.kind.name()),
                    vc(t.owner.clone()),
                ]);
            }
        });
        r
    }

    fn ins_consumers(&self) -> ResultRows {
        let mut r = ResultRows::new(vec![
            f("consumer_id", DataType::VarChar(32)),
            f("consumer_group", DataType::VarChar(192)),
            f("client_id", DataType::VarChar(256)),
            f("user", DataType::VarChar(24)),
            f("fqdn", DataType::VarChar(128)),
            f("status", DataType::VarChar(20)),
            f("topics", DataType::VarChar(192)),
            f("up_time", DataType::Timestamp),
            f("subscribe_time", DataType::Timestamp),
            f("rebalance_time", DataType::Timestamp),
            f("parameters", DataType::VarChar(64)),
        ]);
        let g = self.tmq.groups_snapshot();
        for m in g {
            let params = format!(
                "tbname:{},commit:{},interval:{}ms,reset:{}",
                m.with_table_name as u8, m.auto_commit as u8, m.auto_commit_interval_ms, m.reset
            );
            let topics: Vec<Option<String>> = if m.topics.is_empty() {
                vec![None]
            } else {
                m.topics.iter().cloned().map(Some).collect()
            };
            for t in topics {
                r.rows.push(vec![
                    hex_id(m.id),
                    vc(m.group.clone()),
                    vc(m.client_id.clone()),
                    vc(m.user.clone()),
                    vc(m.fqdn.clone()),
                    vc("ready"),
                    t.map(vc).unwrap_or(Value::Null),
                    Value::Timestamp(m.up_time),
                    Value::Timestamp(m.subscribe_time),
                    Value::Timestamp(m.rebalance_time),
                    vc(params.clone()),
                ]);
            }
        }
        r
    }

    fn ins_subscriptions(&self) -> ResultRows {
        let mut r = ResultRows::new(vec![
            f("topic_name", DataType::VarChar(192)),
            f("consumer_group", DataType::VarChar(192)),
            f("vgroup_id", DataType::Int),
            f("consumer_id", DataType::VarChar(32)),
            f("user", DataType::VarChar(24)),
            f("fqdn", DataType::VarChar(128)),
            f("offset", DataType::VarChar(64)),
            f("rows", DataType::BigInt),
        ]);
        let members = self.tmq.groups_snapshot();
        let (subs, committed) = self.tmq.subscriptions_snapshot();
        for (group, topic) in subs {
            let vgs: Vec<u32> = self.mnode.read(|c| {
                c.topics
                    .get(&topic)
                    .and_then(|t| c.dbs.get(&t.db))
                    .map(|d| d.vgroups.iter().map(|v| v.id).collect())
                    .unwrap_or_default()
            });
            for vg in vgs {
                let holder = members.iter().find_map(|m| {
                    (m.group == group)
                        .then(|| m.parts.iter().find(|p| p.0 == topic && p.1 == vg))
                        .flatten()
                        .map(|p| (m, p))
                });
                let committed = committed.get(&(group.clone(), topic.clone(), vg)).copied();
                let offset = holder
                    .and_then(|(_, p)| p.2)
                    .or(committed)
                    .map(|o| vc(format!("log:{o}")))
                    .unwrap_or(Value::Null);
                r.rows.push(vec![
                    vc(topic.clone()),
                    vc(group.clone()),
                    Value::Int(vg as i32),
                    holder.map(|(m, _)| hex_id(m.id)).unwrap_or(Value::Null),
                    holder
                        .map(|(m, _)| vc(m.user.clone()))
                        .unwrap_or(Value::Null),
                    holder
                        .map(|(m, _)| vc(m.fqdn.clone()))
                        .unwrap_or(Value::Null),
                    offset,
                    Value::BigInt(holder.map(|(_, p)| p.3 as i64).unwrap_or(0)),
                ]);
            }
        }
        r
    }
}

/// A consumer as the system tables show it.
pub struct MemberView {
    pub id: u64,
    pub group: String,
    pub client_id: String,
    pub user: String,
    pub fqdn: String,
    pub topics: Vec<String>,
    pub up_time: i64,
    pub subscribe_time: i64,
    pub rebalance_time: i64,
    pub with_table_name: bool,
    pub auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub reset: &'static str,
    /// (topic, vgroup, position, rows)
    pub parts: Vec<(String, u32, Option<u64>, u64)>,
}

impl crate::tmq::Tmq {
    pub fn groups_snapshot(&self) -> Vec<MemberView> {
        let g = self.groups.lock();
        g.members
            .values()
            .map(|m| MemberView {
                id: m.id,
                group: m.config.group_id.clone(),
                client_id: m.config.client_id.clone(),
                user: m.user.clone(),
                fqdn: m.fqdn.clone(),
                topics: m.topics.clone(),
                up_time: m.up_time,
                subscribe_time: m.subscribe_time,
                rebalance_time: m.rebalance_time,
                with_table_name: m.config.with_table_name,
                auto_commit: m.config.auto_commit,
                auto_commit_interval_ms: m.config.auto_commit_interval_ms,
                reset: m.config.auto_offset_reset.as_str(),
                parts: m
                    .parts
                    .iter()
                    .map(|p| (p.topic.clone(), p.vgid, p.position, p.rows))
                    .collect(),
            })
            .collect()
    }

    /// Subscriptions, and committed offsets keyed by (group, topic, vgroup).
    #[allow(clippy::type_complexity)]
    pub fn subscriptions_snapshot(
        &self,
    ) -> (Vec<(String, String)>, BTreeMap<(String, String, u32), u64>) {
        let g = self.groups.lock();
        let subs = g.subscriptions.iter().cloned().collect();
        let committed = g
            .committed
            .iter()
            .flat_map(|((grp, t), m)| {
                m.iter()
                    .map(move |(vg, o)| ((grp.clone(), t.clone(), *vg), *o))
            })
            .collect();
        (subs, committed)
    }
}
