//! A vnode's meta store: the super tables of its database (schema versions, as
//! [`VnodeRequest::PutStable`](crate::VnodeRequest::PutStable) left them) and its child and
//! normal tables (name, uid, tags or own schema). It changes only by applying raft entries, so
//! replaying the WAL rebuilds it; a copy is saved with every flush (the storage engine's meta
//! blob, bincode of [`VnodeMeta`]) together with the log id it covers.

use crate::request::StableSchema;
use common::{ColumnDef, Value};
use openraft::{LogId, StoredMembership};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

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
    /// Super tables by uid.
    pub stables: BTreeMap<u64, StableSchema>,
}

/// The blob as vnodes wrote it before super-table schemas moved into the vnode: read so an
/// existing data dir opens; its super tables are seeded by the dnode at open.
#[derive(Deserialize)]
struct VnodeMetaV0 {
    tables: HashMap<String, TableMeta>,
    next_uid: u64,
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
}

impl VnodeMeta {
    pub fn new(vgid: u32) -> VnodeMeta {
        VnodeMeta {
            next_uid: (vgid as u64) << 40,
            ..Default::default()
        }
    }

    /// Decode a meta blob of this or the previous layout.
    pub fn decode(blob: &[u8]) -> Result<VnodeMeta, bincode::Error> {
        let mut m = match bincode::deserialize::<VnodeMeta>(blob) {
            Ok(m) => m,
            Err(e) => match bincode::deserialize::<VnodeMetaV0>(blob) {
                Ok(v0) => VnodeMeta {
                    tables: v0.tables,
                    by_uid: HashMap::new(),
                    next_uid: v0.next_uid,
                    applied: v0.applied,
                    membership: v0.membership,
                    stables: BTreeMap::new(),
                },
                Err(_) => return Err(e),
            },
        };
        m.rebuild_index();
        Ok(m)
    }

    /// The data columns of a table: its own (normal) or its super table's (child).
    pub fn columns_of<'a>(&'a self, t: &'a TableMeta) -> Option<(u32, &'a [ColumnDef])> {
        match &t.kind {
            TableKind::Normal {
                columns, version, ..
            } => Some((*version, columns)),
            TableKind::Child { suid, .. } => self
                .stables
                .get(suid)
                .map(|s| (s.version, s.columns.as_slice())),
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
