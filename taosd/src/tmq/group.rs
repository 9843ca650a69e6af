//! Consumer groups: membership, the assignment of a topic's vgroups to the group's consumers,
//! positions and committed offsets. Pure bookkeeping (no I/O), so the rebalance rules are unit
//! tested on their own.
//!
//! Rebalance spreads each topic's vgroups round-robin over the group's live consumers that
//! subscribe to it, both sorted: 4 vgroups over 3 consumers give 2/1/1; consumers beyond the
//! number of vgroups idle. A vgroup that stays with its consumer keeps its position; one that
//! moves starts from the group's committed offset (at-least-once).

use common::tmq::ConsumerConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// One vgroup of one topic held by a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub topic: String,
    pub vgid: u32,
    /// Next version to read; `None` until resolved from the committed offset or the reset rule.
    pub position: Option<u64>,
    /// Rows delivered from this part by this consumer.
    pub rows: u64,
}

#[derive(Debug)]
pub struct Member {
    pub id: u64,
    pub config: ConsumerConfig,
    pub user: String,
    pub fqdn: String,
    pub topics: Vec<String>,
    pub parts: Vec<Part>,
    /// Bumped whenever `parts` changes, so a poll that read with an old assignment is not applied.
    pub epoch: u64,
    pub last_seen: Instant,
    pub last_poll: Instant,
    pub up_time: i64,
    pub subscribe_time: i64,
    pub rebalance_time: i64,
    /// Where the next poll starts looking, so no vgroup starves the others.
    pub cursor: usize,
}

/// Every consumer and offset the dnode knows.
#[derive(Debug, Default)]
pub struct Groups {
    pub members: BTreeMap<u64, Member>,
    /// (group, topic) -> vgroup -> committed position.
    pub committed: BTreeMap<(String, String), BTreeMap<u32, u64>>,
    /// (group, topic) pairs that have been subscribed (SHOW SUBSCRIPTIONS keeps them until
    /// DROP CONSUMER GROUP).
    pub subscriptions: BTreeSet<(String, String)>,
}

impl Groups {
    pub fn group_of(&self, id: u64) -> Option<&str> {
        self.members.get(&id).map(|m| m.config.group_id.as_str())
    }

    /// Recompute the assignment of `group`; `vgroups_of` lists a topic's vgroups (empty when
    /// the topic is gone). Returns the ids whose assignment changed.
    pub fn rebalance(
        &mut self,
        group: &str,
        vgroups_of: &dyn Fn(&str) -> Vec<u32>,
        now_ms: i64,
    ) -> Vec<u64> {
        let ids: Vec<u64> = self
            .members
            .values()
            .filter(|m| m.config.group_id == group)
            .map(|m| m.id)
            .collect();
        let topics: BTreeSet<String> = ids
            .iter()
            .flat_map(|id| self.members[id].topics.iter().cloned())
            .collect();
        let mut wanted: BTreeMap<u64, Vec<(String, u32)>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for topic in &topics {
            let subs: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| self.members[id].topics.contains(topic))
                .collect();
            let mut vgs = vgroups_of(topic);
            vgs.sort_unstable();
            for (owner, got) in sticky_spread(&vgs, &subs, |id| {
                self.members[&id]
                    .parts
                    .iter()
                    .filter(|p| &p.topic == topic)
                    .map(|p| p.vgid)
                    .collect()
            }) {
                if let Some(w) = wanted.get_mut(&owner) {
                    w.extend(got.into_iter().map(|vg| (topic.clone(), vg)));
                }
            }
        }
        let mut changed = Vec::new();
        for (id, want) in wanted {
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            let mut parts = Vec::with_capacity(want.len());
            for (topic, vgid) in want {
                match m.parts.iter().find(|p| p.topic == topic && p.vgid == vgid) {
                    Some(p) => parts.push(p.clone()),
                    None => parts.push(Part {
                        topic,
                        vgid,
                        position: None,
                        rows: 0,
                    }),
                }
            }
            if parts != m.parts {
                m.parts = parts;
                m.epoch += 1;
                m.rebalance_time = now_ms;
                m.cursor = 0;
                changed.push(id);
            }
        }
        changed
    }

    pub fn committed(&self, group: &str, topic: &str, vgid: u32) -> Option<u64> {
        self.committed
            .get(&(group.to_string(), topic.to_string()))
            .and_then(|m| m.get(&vgid))
            .copied()
    }

    /// Live members of `group` subscribed to `topic`.
    pub fn active(&self, group: &str, topic: &str) -> Vec<u64> {
        self.members
            .values()
            .filter(|m| m.config.group_id == group && m.topics.iter().any(|t| t == topic))
            .map(|m| m.id)
            .collect()
    }
}

/// Spread `vgs` over `subs` evenly (sizes differ by at most one) while moving as few vgroups
/// as possible: each consumer keeps what it holds up to its share, and only the surplus and
/// unheld vgroups are handed out. A moved vgroup restarts from the committed offset, so
/// stickiness is what keeps a rebalance from re-reading data.
fn sticky_spread(
    vgs: &[u32],
    subs: &[u64],
    held: impl Fn(u64) -> Vec<u32>,
) -> Vec<(u64, Vec<u32>)> {
    if subs.is_empty() {
        return Vec::new();
    }
    let (base, extra) = (vgs.len() / subs.len(), vgs.len() % subs.len());
    let mut current: Vec<(u64, Vec<u32>)> = subs
        .iter()
        .map(|&id| {
            let mut h: Vec<u32> = held(id).into_iter().filter(|v| vgs.contains(v)).collect();
            h.sort_unstable();
            (id, h)
        })
        .collect();
    // The larger shares go to those already holding the most.
    let mut order: Vec<usize> = (0..current.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(current[i].1.len()), current[i].0));
    let mut quota = vec![base; current.len()];
    for &i in order.iter().take(extra) {
        quota[i] += 1;
    }
    let mut taken: Vec<u32> = Vec::new();
    for (i, (_, h)) in current.iter_mut().enumerate() {
        h.truncate(quota[i]);
        taken.extend(h.iter().copied());
    }
    let mut pool = vgs.iter().copied().filter(|v| !taken.contains(v));
    for (i, (_, h)) in current.iter_mut().enumerate() {
        while h.len() < quota[i] {
            match pool.next() {
                Some(v) => h.push(v),
                None => break,
            }
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, group: &str, topics: &[&str]) -> Member {
        Member {
            id,
            config: ConsumerConfig {
                group_id: group.into(),
                ..Default::default()
            },
            user: "root".into(),
            fqdn: String::new(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            parts: Vec::new(),
            epoch: 0,
            last_seen: Instant::now(),
            last_poll: Instant::now(),
            up_time: 0,
            subscribe_time: 0,
            rebalance_time: 0,
            cursor: 0,
        }
    }

    fn counts(g: &Groups) -> Vec<usize> {
        g.members.values().map(|m| m.parts.len()).collect()
    }

    #[test]
    fn spreads_vgroups_like_the_seed_scenarios() {
        let vgs = |_: &str| vec![2u32, 3, 4, 5];
        let mut g = Groups::default();
        g.members.insert(1, member(1, "g", &["t"]));
        g.rebalance("g", &vgs, 0);
        assert_eq!(counts(&g), vec![4]);
        g.members.insert(2, member(2, "g", &["t"]));
        g.rebalance("g", &vgs, 0);
        assert_eq!(counts(&g), vec![2, 2]);
        g.members.insert(3, member(3, "g", &["t"]));
        g.rebalance("g", &vgs, 0);
        assert_eq!(counts(&g), vec![2, 1, 1]);
        for id in 4..=5 {
            g.members.insert(id, member(id, "g", &["t"]));
        }
        g.rebalance("g", &vgs, 0);
        assert_eq!(counts(&g), vec![1, 1, 1, 1, 0]);
        // Another group is untouched and gets everything.
        g.members.insert(9, member(9, "other", &["t"]));
        g.rebalance("other", &vgs, 0);
        assert_eq!(g.members[&9].parts.len(), 4);
        assert_eq!(g.members[&1].parts.len(), 1);
    }

    #[test]
    fn kept_parts_keep_positions_and_moved_ones_reset() {
        let vgs = |_: &str| vec![2u32, 3];
        let mut g = Groups::default();
        g.members.insert(1, member(1, "g", &["t"]));
        g.rebalance("g", &vgs, 0);
        for p in &mut g.members.get_mut(&1).unwrap().parts {
            p.position = Some(100);
        }
        let e = g.members[&1].epoch;
        g.members.insert(2, member(2, "g", &["t"]));
        let changed = g.rebalance("g", &vgs, 0);
        assert_eq!(changed, vec![1, 2]);
        assert!(g.members[&1].epoch > e);
        assert_eq!(g.members[&1].parts[0].position, Some(100));
        assert_eq!(g.members[&2].parts[0].position, None);
        // Nothing changes: nobody's epoch moves.
        assert!(g.rebalance("g", &vgs, 0).is_empty());
        // Member 3 joins and leaves again: member 1 keeps the vgroup it read all along.
        g.members.insert(3, member(3, "g", &["t"]));
        g.rebalance("g", &vgs, 0);
        assert_eq!(g.members[&1].parts[0].position, Some(100));
        g.members.remove(&3);
        g.rebalance("g", &vgs, 0);
        assert_eq!(g.members[&1].parts[0].position, Some(100));
        // Member 2 leaves: its vgroup comes back to 1 without a position.
        g.members.remove(&2);
        g.rebalance("g", &vgs, 0);
        let parts = &g.members[&1].parts;
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.iter().filter(|p| p.position.is_none()).count(), 1);
    }
}
