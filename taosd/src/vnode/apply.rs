//! Applying committed raft entries to the meta store and the engine. Runs in log order on
//! every replica, so it must be deterministic, and it never fails the node: a request that
//! cannot be applied answers an error to its proposer.

use crate::vnode::meta::{TableKind, TableMeta};
use crate::vnode::raft::{NewTable, VnodeRequest, VnodeResponse};
use crate::vnode::VnodeShared;
use common::{Code, TaosError, TaosResult};
use tsdb::TableWrite;

pub fn apply(shared: &VnodeShared, version: u64, req: VnodeRequest) -> VnodeResponse {
    match apply_inner(shared, version, req) {
        Ok(affected) => VnodeResponse {
            affected,
            error: None,
        },
        Err(e) => VnodeResponse {
            affected: 0,
            error: Some(e),
        },
    }
}

fn to_meta(t: NewTable) -> TableMeta {
    TableMeta {
        name: t.name,
        uid: 0,
        create_time: t.create_time,
        kind: t.kind,
        ttl: t.ttl,
        comment: t.comment,
    }
}

fn apply_inner(shared: &VnodeShared, version: u64, req: VnodeRequest) -> TaosResult<i64> {
    let engine = |e: tsdb::StorageError| e.to_taos();
    match req {
        VnodeRequest::CreateTables(tables) => {
            let mut m = shared.meta.write();
            let mut n = 0;
            for t in tables {
                if m.get(&t.name).is_none() {
                    m.create(to_meta(t));
                    n += 1;
                }
            }
            Ok(n)
        }
        VnodeRequest::DropTables(names) => {
            let mut n = 0;
            for name in names {
                let removed = shared.meta.write().remove(&name);
                if let Some(t) = removed {
                    shared.tsdb.drop_table(version, t.uid).map_err(engine)?;
                    n += 1;
                }
            }
            Ok(n)
        }
        VnodeRequest::DropStable(suid) => {
            let names: Vec<String> = shared
                .meta
                .read()
                .children_of(suid)
                .map(|t| t.name.clone())
                .collect();
            {
                let mut m = shared.meta.write();
                for n in &names {
                    m.remove(n);
                }
            }
            shared.tsdb.drop_group(version, suid).map_err(engine)?;
            shared.schemas.write().remove(&suid);
            Ok(names.len() as i64)
        }
        VnodeRequest::Submit(submit) => {
            // Normally the only owner (the log cache hands entries over): rows move, not copy.
            let submit =
                std::sync::Arc::try_unwrap(submit).unwrap_or_else(|shared| (*shared).clone());
            if !submit.creates.is_empty() {
                let mut m = shared.meta.write();
                for t in submit.creates {
                    if m.get(&t.name).is_none() {
                        m.create(to_meta(t));
                    }
                }
            }
            let mut writes = Vec::with_capacity(submit.tables.len());
            {
                let m = shared.meta.read();
                for t in submit.tables {
                    let meta = m.get(&t.name).ok_or_else(|| {
                        TaosError::new(
                            Code::TDB_TABLE_NOT_EXIST,
                            format!("Table does not exist: {}", t.name),
                        )
                    })?;
                    writes.push(TableWrite {
                        uid: meta.uid,
                        suid: meta.suid(),
                        schema: shared.schema_for(meta)?,
                        col_ids: t.col_ids,
                        rows: t.rows,
                    });
                }
            }
            let rows = shared.tsdb.write(version, &writes).map_err(engine)?;
            Ok(rows as i64)
        }
        VnodeRequest::Delete { tables, start, end } => {
            let uids: Vec<u64> = {
                let m = shared.meta.read();
                tables
                    .iter()
                    .filter_map(|n| m.get(n).map(|t| t.uid))
                    .collect()
            };
            let mut n = 0;
            for uid in uids {
                n += shared
                    .tsdb
                    .delete_range(version, uid, start, end)
                    .map_err(engine)? as i64;
            }
            Ok(n)
        }
        VnodeRequest::SetTags { table, tags } => {
            let mut m = shared.meta.write();
            match m.tables.get_mut(&table) {
                Some(TableMeta {
                    kind: TableKind::Child { tags: old, .. },
                    ..
                }) => {
                    *old = tags;
                    Ok(1)
                }
                _ => Err(TaosError::new(
                    Code::PAR_TABLE_NOT_EXIST,
                    format!("Table does not exist: {table}"),
                )),
            }
        }
        VnodeRequest::DropTag { suid, index } => {
            let mut m = shared.meta.write();
            let mut n = 0;
            for t in m.tables.values_mut() {
                if let TableKind::Child { suid: s, tags } = &mut t.kind {
                    if *s == suid && index < tags.len() {
                        tags.remove(index);
                        n += 1;
                    }
                }
            }
            Ok(n)
        }
        VnodeRequest::AlterNormal {
            table,
            columns,
            version: v,
            next_col_id,
        } => {
            let mut m = shared.meta.write();
            match m.tables.get_mut(&table) {
                Some(
                    t @ TableMeta {
                        kind: TableKind::Normal { .. },
                        ..
                    },
                ) => {
                    t.kind = TableKind::Normal {
                        columns,
                        version: v,
                        next_col_id,
                    };
                    Ok(1)
                }
                _ => Err(TaosError::new(
                    Code::PAR_TABLE_NOT_EXIST,
                    format!("Table does not exist: {table}"),
                )),
            }
        }
        VnodeRequest::SetTableOptions {
            table,
            ttl,
            comment,
        } => {
            let mut m = shared.meta.write();
            let t = m.tables.get_mut(&table).ok_or_else(|| {
                TaosError::new(
                    Code::PAR_TABLE_NOT_EXIST,
                    format!("Table does not exist: {table}"),
                )
            })?;
            if let Some(ttl) = ttl {
                t.ttl = ttl;
            }
            if comment.is_some() {
                t.comment = comment;
            }
            Ok(1)
        }
    }
}
