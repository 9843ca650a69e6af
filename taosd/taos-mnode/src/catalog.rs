//! Catalog objects and the rules that keep them consistent.

use crate::dboptions::DbOptions;
pub use common::ColumnDef;
use common::{Code, TaosError, TaosResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VgroupInfo {
    pub id: u32,
    pub hash_begin: u32,
    pub hash_end: u32,
    /// The dnode hosting this vgroup's (single) replica.
    #[serde(default = "first_dnode")]
    pub dnode_id: u32,
}

fn first_dnode() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbInfo {
    pub name: String,
    pub uid: u64,
    pub create_time: i64,
    pub options: DbOptions,
    pub vgroups: Vec<VgroupInfo>,
}

impl DbInfo {
    /// The vgroup whose hash range holds this table name.
    pub fn vgroup_for(&self, table: &str) -> u32 {
        let h = common::hash::table_hash(&self.name, table);
        self.vgroups
            .iter()
            .find(|v| v.hash_begin <= h && h <= v.hash_end)
            .or(self.vgroups.last())
            .map(|v| v.id)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StableInfo {
    pub db: String,
    pub name: String,
    pub uid: u64,
    pub create_time: i64,
    pub columns: Vec<ColumnDef>,
    pub tags: Vec<ColumnDef>,
    /// Bumped on every column change; rows carry the version they were written with.
    pub version: u32,
    pub next_col_id: u16,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    /// sha256(salt || password), hex.
    pub pass_hash: String,
    pub salt: String,
    pub superuser: bool,
    pub enable: bool,
    pub sysinfo: bool,
    pub createdb: bool,
    pub create_time: i64,
    /// db name -> (read, write)
    #[serde(default)]
    pub privileges: BTreeMap<String, (bool, bool)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub cluster_id: u64,
    pub create_time: i64,
    pub users: BTreeMap<String, UserInfo>,
    pub dbs: BTreeMap<String, DbInfo>,
    /// db -> stable name -> info
    pub stables: BTreeMap<String, BTreeMap<String, StableInfo>>,
    pub next_vgroup_id: u32,
    pub next_uid: u64,
    /// Data subscription topics by name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicInfo>,
}

/// A topic: what it delivers is re-derived from `sql` (the statement after `AS`) when used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub db: String,
    pub create_time: i64,
    pub owner: String,
    /// `DATABASE db`, `STABLE db.stb [WHERE ...]` or the SELECT text.
    pub sql: String,
    pub kind: TopicKind,
    pub with_meta: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicKind {
    Database,
    Stable,
    Query,
}

impl TopicKind {
    /// `type` column of ins_topics.
    pub fn name(self) -> &'static str {
        match self {
            TopicKind::Database => "db",
            TopicKind::Stable => "stable",
            TopicKind::Query => "column",
        }
    }
}

pub fn now_ms() -> i64 {
    common::Precision::Ms.now()
}

impl Catalog {
    pub fn bootstrap() -> Catalog {
        let now = now_ms();
        let mut c = Catalog {
            cluster_id: (now as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1,
            create_time: now,
            users: BTreeMap::new(),
            dbs: BTreeMap::new(),
            stables: BTreeMap::new(),
            next_vgroup_id: 2,
            next_uid: 1_000_000,
            topics: BTreeMap::new(),
        };
        let root = UserInfo::new("root", "taosdata", true, now);
        c.users.insert("root".into(), root);
        c
    }

    pub fn alloc_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    pub fn db(&self, name: &str) -> TaosResult<&DbInfo> {
        self.dbs
            .get(name)
            .ok_or_else(|| TaosError::of(Code::DB_NOT_EXIST))
    }

    pub fn stable(&self, db: &str, name: &str) -> Option<&StableInfo> {
        self.stables.get(db).and_then(|m| m.get(name))
    }

    pub fn stable_by_uid(&self, db: &str, uid: u64) -> Option<&StableInfo> {
        self.stables
            .get(db)
            .and_then(|m| m.values().find(|s| s.uid == uid))
    }
}

impl UserInfo {
    pub fn new(name: &str, password: &str, superuser: bool, now: i64) -> UserInfo {
        let salt = format!(
            "{:016x}",
            now as u64 ^ 0x5bd1_e995_u64.wrapping_mul(name.len() as u64 + 1)
        );
        UserInfo {
            name: name.into(),
            pass_hash: hash_password(&salt, password),
            salt,
            superuser,
            enable: true,
            sysinfo: true,
            createdb: superuser,
            create_time: now,
            privileges: BTreeMap::new(),
        }
    }

    pub fn check_password(&self, password: &str) -> bool {
        hash_password(&self.salt, password) == self.pass_hash
    }
}

pub fn hash_password(salt: &str, password: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(salt.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
