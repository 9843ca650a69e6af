//! Applying committed raft entries to the meta store and the engine, one `handle_*` per kind of
//! request. Runs in log order on every replica, so it must be deterministic: it reads only this
//! vnode's meta store, its engine and the entry. It never fails the node: a request that cannot
//! be applied answers an error to its proposer.

use crate::meta::{TableKind, TableMeta, VnodeMeta};
use crate::request::{NewTable, StableSchema, Submit, VnodeRequest, VnodeResponse};
use crate::VnodeShared;
use common::{Code, ColumnDef, TaosError, TaosResult, Value};
use std::sync::Arc;
use tsdb::TableWrite;

pub(crate) fn apply(shared: &VnodeShared, version: u64, req: VnodeRequest) -> VnodeResponse {
    match dispatch(shared, version, req) {
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

fn dispatch(shared: &VnodeShared, version: u64, req: VnodeRequest) -> TaosResult<i64> {
    match req {
        VnodeRequest::CreateTables(tables) => handle_create_tables(shared, tables),
        VnodeRequest::DropTables(names) => handle_drop_tables(shared, version, names),
        VnodeRequest::DropStable(suid) => handle_drop_stable(shared, version, suid),
        VnodeRequest::Submit(submit) => handle_submit(shared, version, submit),
        VnodeRequest::Delete { tables, start, end } => {
            handle_delete(shared, version, &tables, start, end)
        }
        VnodeRequest::SetTags { table, tags } => handle_set_tags(shared, &table, tags),
        VnodeRequest::DropTag { suid, index } => handle_drop_tag(shared, suid, index),
        VnodeRequest::AlterNormal {
            table,
            columns,
            version: v,
            next_col_id,
        } => handle_alter_normal(shared, &table, columns, v, next_col_id),
        VnodeRequest::SetTableOptions {
            table,
            ttl,
            comment,
        } => handle_set_table_options(shared, &table, ttl, comment),
        VnodeRequest::PutStable(st) => handle_put_stable(shared, st),
    }
}

fn engine(e: tsdb::StorageError) -> TaosError {
    e.to_taos()
}

fn not_exist(table: &str) -> TaosError {
    TaosError::new(
        Code::PAR_TABLE_NOT_EXIST,
        format!("Table does not exist: {table}"),
    )
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

/// Create tables that do not exist yet; a child table needs its super table here first.
fn create_into(m: &mut VnodeMeta, tables: Vec<NewTable>) -> TaosResult<i64> {
    let mut n = 0;
    for t in tables {
        if m.get(&t.name).is_some() {
            continue;
        }
        if let TableKind::Child { suid, .. } = &t.kind {
            if !m.stables.contains_key(suid) {
                return Err(TaosError::new(
                    Code::STB_NOT_EXIST,
                    format!("STable not exist: uid {suid} (table {})", t.name),
                ));
            }
        }
        m.create(to_meta(t));
        n += 1;
    }
    Ok(n)
}

fn handle_create_tables(shared: &VnodeShared, tables: Vec<NewTable>) -> TaosResult<i64> {
    create_into(&mut shared.meta.write(), tables)
}

fn handle_drop_tables(shared: &VnodeShared, version: u64, names: Vec<String>) -> TaosResult<i64> {
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

fn handle_drop_stable(shared: &VnodeShared, version: u64, suid: u64) -> TaosResult<i64> {
    let names: Vec<String> = {
        let mut m = shared.meta.write();
        let names: Vec<String> = m.children_of(suid).map(|t| t.name.clone()).collect();
        for n in &names {
            m.remove(n);
        }
        m.stables.remove(&suid);
        names
    };
    shared.tsdb.drop_group(version, suid).map_err(engine)?;
    shared.schemas.write().remove(&suid);
    Ok(names.len() as i64)
}

fn handle_submit(shared: &VnodeShared, version: u64, submit: Arc<Submit>) -> TaosResult<i64> {
    // Normally the only owner (the log cache hands entries over): rows move, not copy.
    let submit = Arc::try_unwrap(submit).unwrap_or_else(|shared| (*shared).clone());
    if !submit.creates.is_empty() {
        create_into(&mut shared.meta.write(), submit.creates)?;
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
                schema: shared.schema_for(&m, meta)?,
                col_ids: t.col_ids,
                rows: t.rows,
            });
        }
    }
    let rows = shared.tsdb.write(version, &writes).map_err(engine)?;
    Ok(rows as i64)
}

fn handle_delete(
    shared: &VnodeShared,
    version: u64,
    tables: &[String],
    start: i64,
    end: i64,
) -> TaosResult<i64> {
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

fn handle_set_tags(shared: &VnodeShared, table: &str, tags: Vec<Value>) -> TaosResult<i64> {
    let mut m = shared.meta.write();
    match m.tables.get_mut(table) {
        Some(TableMeta {
            kind: TableKind::Child { tags: old, .. },
            ..
        }) => {
            *old = tags;
            Ok(1)
        }
        _ => Err(not_exist(table)),
    }
}

fn handle_drop_tag(shared: &VnodeShared, suid: u64, index: usize) -> TaosResult<i64> {
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

fn handle_alter_normal(
    shared: &VnodeShared,
    table: &str,
    columns: Vec<ColumnDef>,
    version: u32,
    next_col_id: u16,
) -> TaosResult<i64> {
    let mut m = shared.meta.write();
    match m.tables.get_mut(table) {
        Some(
            t @ TableMeta {
                kind: TableKind::Normal { .. },
                ..
            },
        ) => {
            t.kind = TableKind::Normal {
                columns,
                version,
                next_col_id,
            };
            Ok(1)
        }
        _ => Err(not_exist(table)),
    }
}

fn handle_set_table_options(
    shared: &VnodeShared,
    table: &str,
    ttl: Option<i64>,
    comment: Option<String>,
) -> TaosResult<i64> {
    let mut m = shared.meta.write();
    let t = m.tables.get_mut(table).ok_or_else(|| not_exist(table))?;
    if let Some(ttl) = ttl {
        t.ttl = ttl;
    }
    if comment.is_some() {
        t.comment = comment;
    }
    Ok(1)
}

fn handle_put_stable(shared: &VnodeShared, st: StableSchema) -> TaosResult<i64> {
    let mut m = shared.meta.write();
    match m.stables.get(&st.uid) {
        Some(old) if old.version > st.version || *old == st => Ok(0),
        _ => {
            m.stables.insert(st.uid, st);
            Ok(1)
        }
    }
}
