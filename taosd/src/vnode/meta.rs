//! A vnode's meta store: its child and normal tables (name, uid, tags or own schema).
//! It changes only by applying raft entries, so replaying the WAL rebuilds it; a copy is saved
//! with every flush (the storage engine's meta blob) together with the log id it covers.

use crate::mnode::catalog::ColumnDef;
use common::Value;
use openraft::{LogId, StoredMembership};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TableKind {
    Child {
        suid: u64,
        tags: Vec<Value>,
    },
    Normal {
        columns: Vec<ColumnDef>,
        version: u32,
        next_col_id: u16,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    pub uid: u64,
    pub create_time: i64,
    pub kind: TableKind,
    pub ttl: i64,
    pub comment: Option<String>,
}

impl TableMeta {
    pub fn suid(&self) -> u64 {
        match &self.kind {
            TableKind::Child { suid, .. } => *suid,
            TableKind::Normal { .. } => self.uid,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VnodeMeta {
    pub tables: HashMap<String, TableMeta>,
    #[serde(skip)]
    pub by_uid: HashMap<u64, String>,
    pub next_uid: u64,
    pub applied: Option<LogId<u64>>,
    pub membership: StoredMembership<u64, openraft::BasicNode>,
}

impl VnodeMeta {
    pub fn new(vgid: u32) -> VnodeMeta {
        VnodeMeta {
            next_uid: (vgid as u64) << 40,
            ..Default::default()
        }
    }

    pub fn rebuild_index(&mut self) {
        self.by_uid = self
            .tables
            .values()
            .map(|t| (t.uid, t.name.clone()))
            .collect();
    }

    pub fn get(&self, name: &str) -> Option<&TableMeta> {
        self.tables.get(name)
    }

    /// Insert a table unless one of that name exists; returns its uid either way.
    pub fn create(&mut self, mut t: TableMeta) -> u64 {
        if let Some(existing) = self.tables.get(&t.name) {
            return existing.uid;
        }
        self.next_uid += 1;
        t.uid = self.next_uid;
        let uid = t.uid;
        self.by_uid.insert(uid, t.name.clone());
        self.tables.insert(t.name.clone(), t);
        uid
    }

    pub fn remove(&mut self, name: &str) -> Option<TableMeta> {
        let t = self.tables.remove(name)?;
        self.by_uid.remove(&t.uid);
        Some(t)
    }

    pub fn children_of(&self, suid: u64) -> impl Iterator<Item = &TableMeta> {
        self.tables
            .values()
            .filter(move |t| matches!(t.kind, TableKind::Child { suid: s, .. } if s == suid))
    }
}
