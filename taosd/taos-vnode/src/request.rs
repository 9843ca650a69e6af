//! What a vnode's raft log carries: one [`VnodeRequest`] per entry. These types are the schema
//! of the vnode's WAL (bincode; new variants only ever go at the end) and of the dnode RPC that
//! proposes them, so everything an entry needs to apply travels in it: a child table's super
//! table schema is in this vnode's meta because a [`VnodeRequest::PutStable`] put it there.

use crate::meta::TableKind;
use common::{ColumnDef, TaosError, Value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A table to create in the vnode's meta store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTable {
    pub name: String,
    pub kind: TableKind,
    pub create_time: i64,
    pub ttl: i64,
    pub comment: Option<String>,
}

/// Rows for one table: values parallel to `col_ids` (ts first); absent columns are NONE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitTable {
    pub name: String,
    pub col_ids: Vec<u16>,
    pub rows: Vec<Vec<Value>>,
}

/// One vgroup's share of an INSERT: child tables to auto-create, then rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Submit {
    pub creates: Vec<NewTable>,
    pub tables: Vec<SubmitTable>,
}

/// A super table as every vnode of its database keeps it (TDengine's mnode sends the same
/// `CREATE STB` / `ALTER STB` to each vnode). `version` is bumped on every column change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StableSchema {
    pub uid: u64,
    pub name: String,
    pub version: u32,
    pub columns: Vec<ColumnDef>,
    pub tags: Vec<ColumnDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VnodeRequest {
    CreateTables(Vec<NewTable>),
    DropTables(Vec<String>),
    DropStable(u64),
    Submit(Arc<Submit>),
    /// Delete rows of these tables in [start, end].
    Delete {
        tables: Vec<String>,
        start: i64,
        end: i64,
    },
    /// Replace the tag values of a child table.
    SetTags { table: String, tags: Vec<Value> },
    /// A super table lost the tag at `index`: remove that slot from every child.
    DropTag { suid: u64, index: usize },
    /// Replace the schema of a normal table.
    AlterNormal {
        table: String,
        columns: Vec<ColumnDef>,
        version: u32,
        next_col_id: u16,
    },
    /// ALTER TABLE ... TTL n / COMMENT 'c' of a child or normal table (None: unchanged).
    SetTableOptions {
        table: String,
        ttl: Option<i64>,
        comment: Option<String>,
    },
    /// Create a super table here, or replace it with a newer version (an older or equal
    /// version is ignored, so re-sending after a partial failure is harmless).
    PutStable(StableSchema),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VnodeResponse {
    pub affected: i64,
    pub error: Option<TaosError>,
}
