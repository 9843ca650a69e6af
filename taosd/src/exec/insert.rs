//! INSERT in its forms: multi-row, multi-table, column lists, `USING stb TAGS` auto-create and
//! the super-table form `INSERT INTO stb(tbname, ...)`. Values are checked and converted here
//! (types, ranges, lengths, KEEP window) so that a raft entry only ever holds valid rows; each
//! vgroup then gets one entry for its share of the statement, proposed concurrently.

use crate::dnode::Dnode;
use crate::exec::eval::{value_for, EvalCtx};
use crate::exec::{Output, Session};
use crate::mnode::catalog::{now_ms, ColumnDef, DbInfo, StableInfo};
use crate::vnode::meta::TableKind;
use crate::vnode::raft::{NewTable, Submit, SubmitTable, VnodeRequest};
use common::{Code, DataType, TaosError, TaosResult, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use taos_sql::ast::{Expr, Insert, InsertSource, InsertTarget, Literal};

/// Where a table's rows go, and with which columns.
struct Resolved {
    vgid: u32,
    columns: Vec<ColumnDef>,
    create: Option<NewTable>,
}

struct DbCtx {
    info: DbInfo,
    keep_min: i64,
    max_ts: i64,
}

impl Dnode {
    pub async fn insert(self: &Arc<Self>, s: &Session, ins: Insert) -> TaosResult<Output> {
        let mut dbs: HashMap<String, DbCtx> = HashMap::new();
        let mut per_vg: BTreeMap<u32, Submit> = BTreeMap::new();
        for target in ins.targets {
            let db = s.db_of(&target.table)?.to_string();
            if !dbs.contains_key(&db) {
                self.check_privilege(s, &db, true)?;
                let info = self.mnode.read(|c| c.db(&db).cloned())?;
                let p = info.options.precision;
                let now = p.now();
                dbs.insert(
                    db.clone(),
                    DbCtx { keep_min: now.saturating_sub(info.options.keep_units()), max_ts: p.max_ts(), info },
                );
            }
            let dbc = &dbs[&db];
            let stable = self.mnode.read(|c| c.stable(&db, &target.table.name).cloned());
            match stable {
                Some(st) if target.using.is_none() => self.insert_into_stable(s, dbc, &st, target, &mut per_vg)?,
                Some(_) => {
                    return Err(TaosError::new(
                        Code::TSC_INVALID_OPERATION,
                        format!("{} is a super table: name a child table before USING", target.table.name),
                    ))
                }
                None => {
                    let r = self.resolve_target(s, dbc, &target)?;
                    let rows = source_rows(target.source)?;
                    let t = convert(s, dbc, &target.table.name, &r.columns, target.columns.as_deref(), rows)?;
                    let sub = per_vg.entry(r.vgid).or_default();
                    if let Some(c) = r.create {
                        if !sub.creates.iter().any(|x| x.name == c.name) {
                            sub.creates.push(c);
                        }
                    }
                    sub.tables.push(t);
                }
            }
        }
        let mut tasks = Vec::with_capacity(per_vg.len());
        for (vg, sub) in per_vg {
            let v = self.vnode(vg)?;
            tasks.push(tokio::spawn(async move { v.propose(VnodeRequest::Submit(Arc::new(sub))).await }));
        }
        let mut affected = 0;
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(Ok(r)) => affected += r.affected,
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(e) => first_err = first_err.or(Some(TaosError::internal(e.to_string()))),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(Output::Affected(affected)),
        }
    }

    /// An existing table, or one that `USING` will create.
    fn resolve_target(&self, s: &Session, dbc: &DbCtx, target: &InsertTarget) -> TaosResult<Resolved> {
        let name = &target.table.name;
        let db = &dbc.info.name;
        let vgid = dbc.info.vgroup_for(name);
        let existing = {
            let v = self.vnode(vgid)?;
            let m = v.shared.meta.read();
            m.get(name).cloned()
        };
        if let Some(t) = existing {
            let columns = match &t.kind {
                TableKind::Normal { columns, .. } => columns.clone(),
                TableKind::Child { suid, .. } => self
                    .mnode
                    .read(|c| c.stable_by_uid(db, *suid).map(|st| st.columns.clone()))
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?,
            };
            return Ok(Resolved { vgid, columns, create: None });
        }
        let Some(using) = &target.using else {
            return Err(TaosError::new(Code::PAR_TABLE_NOT_EXIST, format!("Table does not exist: {name}")));
        };
        let sdb = using.stable.db.as_deref().unwrap_or(db);
        if sdb != db {
            return Err(TaosError::of(Code::PAR_CORRESPONDING_STABLE_ERR));
        }
        let st = self
            .mnode
            .read(|c| c.stable(db, &using.stable.name).cloned())
            .ok_or_else(|| TaosError::new(Code::PAR_TABLE_NOT_EXIST, format!("Table does not exist: {}", using.stable.name)))?;
        if name.is_empty() || name.len() > 192 {
            return Err(TaosError::new(Code::PAR_INVALID_IDENTIFIER_NAME, format!("Invalid identifier name: {name}")));
        }
        let tags = self.tag_values(s, &st, using.tag_names.as_deref(), &using.tags, dbc.info.options.precision)?;
        Ok(Resolved {
            vgid,
            columns: st.columns.clone(),
            create: Some(NewTable {
                name: name.clone(),
                kind: TableKind::Child { suid: st.uid, tags },
                create_time: now_ms(),
                ttl: 0,
                comment: None,
            }),
        })
    }

    /// `INSERT INTO stb (tbname, [tags,] ts, cols...) VALUES (...)`: rows are split by tbname;
    /// missing child tables are created with the given tags (ignored when the table exists).
    fn insert_into_stable(
        &self,
        s: &Session,
        dbc: &DbCtx,
        st: &StableInfo,
        target: InsertTarget,
        per_vg: &mut BTreeMap<u32, Submit>,
    ) -> TaosResult<()> {
        let names = target.columns.clone().ok_or_else(|| {
            TaosError::new(Code::PAR_TABLE_NOT_EXIST, format!("tbname must be given to insert into super table {}", st.name))
        })?;
        let tbname_pos = names.iter().position(|n| n == "tbname").ok_or_else(|| {
            TaosError::new(Code::PAR_INVALID_COLUMN, format!("tbname must be given to insert into super table {}", st.name))
        })?;
        let mut tag_pos = Vec::new();
        let mut col_names = Vec::new();
        let mut col_pos = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if i == tbname_pos {
                continue;
            }
            if st.tags.iter().any(|t| &t.name == n) {
                tag_pos.push(i);
            } else {
                col_names.push(n.clone());
                col_pos.push(i);
            }
        }
        let rows = source_rows(target.source)?;
        let ctx = EvalCtx { precision: dbc.info.options.precision, tz: s.tz, db: Some(&dbc.info.name), user: &s.user, row: None };
        let mut groups: BTreeMap<String, (Vec<Expr>, Vec<Vec<Expr>>)> = BTreeMap::new();
        for (ri, row) in rows.into_iter().enumerate() {
            if row.len() != names.len() {
                return Err(count_err(&st.name, ri, names.len(), row.len()));
            }
            let tb = match value_for(&row[tbname_pos], DataType::VarChar(192), &ctx, "tbname")? {
                Value::VarChar(t) if !t.is_empty() => t,
                _ => return Err(TaosError::new(Code::PAR_INVALID_IDENTIFIER_NAME, "tbname must be a non-empty string")),
            };
            let mut row = row;
            let tags: Vec<Expr> = tag_pos.iter().map(|&i| std::mem::replace(&mut row[i], Expr::Literal(Literal::Null))).collect();
            let cols: Vec<Expr> = col_pos.iter().map(|&i| std::mem::replace(&mut row[i], Expr::Literal(Literal::Null))).collect();
            let g = groups.entry(tb).or_insert_with(|| (tags, Vec::new()));
            g.1.push(cols);
        }
        let tag_names: Vec<String> = tag_pos.iter().map(|&i| names[i].clone()).collect();
        for (tb, (tags, rows)) in groups {
            let target = InsertTarget {
                table: taos_sql::ast::ObjName { db: Some(dbc.info.name.clone()), name: tb.clone() },
                using: Some(taos_sql::ast::Using {
                    stable: taos_sql::ast::ObjName { db: Some(dbc.info.name.clone()), name: st.name.clone() },
                    tag_names: Some(tag_names.clone()),
                    tags,
                    options: Vec::new(),
                }),
                columns: None,
                source: InsertSource::Values(Vec::new()),
            };
            let r = self.resolve_target(s, dbc, &target)?;
            let t = convert(s, dbc, &tb, &r.columns, Some(&col_names), rows)?;
            let sub = per_vg.entry(r.vgid).or_default();
            if let Some(c) = r.create {
                if !sub.creates.iter().any(|x| x.name == c.name) {
                    sub.creates.push(c);
                }
            }
            sub.tables.push(t);
        }
        Ok(())
    }
}

fn source_rows(src: InsertSource) -> TaosResult<Vec<Vec<Expr>>> {
    match src {
        InsertSource::Values(rows) => Ok(rows),
        InsertSource::Select(_) => Err(TaosError::new(Code::PAR_NOT_SUPPORTED, "INSERT ... SELECT is not supported yet")),
        InsertSource::File(_) => Err(TaosError::new(Code::PAR_NOT_SUPPORTED, "INSERT ... FILE is not supported yet")),
    }
}

fn count_err(table: &str, row: usize, want: usize, got: usize) -> TaosError {
    TaosError::new(
        Code::PAR_INVALID_COLUMNS_NUM,
        format!("Illegal number of columns: table {table} row {} has {got} value(s), {want} expected", row + 1),
    )
}

/// Check and convert the rows of one table; ts is moved first.
fn convert(
    s: &Session,
    dbc: &DbCtx,
    table: &str,
    columns: &[ColumnDef],
    names: Option<&[String]>,
    rows: Vec<Vec<Expr>>,
) -> TaosResult<SubmitTable> {
    // Positions in each row, ordered with the timestamp first.
    let picked: Vec<usize> = match names {
        None => (0..columns.len()).collect(),
        Some(names) => {
            let mut idx = Vec::with_capacity(names.len());
            for n in names {
                let i = columns
                    .iter()
                    .position(|c| &c.name == n)
                    .ok_or_else(|| TaosError::new(Code::PAR_INVALID_COLUMN, format!("Invalid column name: {n}")))?;
                if idx.contains(&i) {
                    return Err(TaosError::new(Code::PAR_DUPLICATED_COLUMN, format!("Duplicated column names: {n}")));
                }
                idx.push(i);
            }
            if !idx.contains(&0) {
                return Err(TaosError::new(
                    Code::PAR_INVALID_COLUMN,
                    format!("Primary timestamp column {} must be given", columns[0].name),
                ));
            }
            idx
        }
    };
    let ts_at = picked.iter().position(|&i| i == 0).unwrap_or(0);
    let mut order: Vec<usize> = vec![ts_at];
    order.extend((0..picked.len()).filter(|&k| k != ts_at));
    let col_ids: Vec<u16> = order.iter().map(|&k| columns[picked[k]].id).collect();
    let ctx = EvalCtx { precision: dbc.info.options.precision, tz: s.tz, db: Some(&dbc.info.name), user: &s.user, row: None };
    let mut out = Vec::with_capacity(rows.len());
    for (ri, row) in rows.into_iter().enumerate() {
        if row.len() != picked.len() {
            return Err(count_err(table, ri, picked.len(), row.len()));
        }
        let mut vals = Vec::with_capacity(order.len());
        for &k in &order {
            let c = &columns[picked[k]];
            let v = fast_value(&row[k], c.ty).map(Ok).unwrap_or_else(|| value_for(&row[k], c.ty, &ctx, &c.name))?;
            if k == ts_at {
                let Value::Timestamp(ts) = v else {
                    return Err(TaosError::new(
                        Code::PAR_WRONG_VALUE_TYPE,
                        format!("Primary timestamp column can not be null: table {table} row {}", ri + 1),
                    ));
                };
                if ts < dbc.keep_min || ts > dbc.max_ts {
                    return Err(TaosError::new(
                        Code::TIMESTAMP_OUT_OF_RANGE,
                        format!("Timestamp data out of range: {ts} in table {table} row {} (outside KEEP)", ri + 1),
                    ));
                }
            }
            vals.push(v);
        }
        out.push(vals);
    }
    Ok(SubmitTable { name: table.to_string(), col_ids, rows: out })
}

/// The common literal/type pairs of bulk inserts, without the general evaluator.
#[inline]
fn fast_value(e: &Expr, ty: DataType) -> Option<Value> {
    let Expr::Literal(l) = e else { return None };
    Some(match (l, ty) {
        (Literal::Int(i), DataType::Timestamp) => Value::Timestamp(*i),
        (Literal::Int(i), DataType::BigInt) => Value::BigInt(*i),
        (Literal::Int(i), DataType::Int) => Value::Int(i32::try_from(*i).ok()?),
        (Literal::Int(i), DataType::Double) => Value::Double(*i as f64),
        (Literal::Int(i), DataType::Float) => Value::Float(*i as f32),
        (Literal::Float(f), DataType::Double) => Value::Double(*f),
        (Literal::Float(f), DataType::Float) if f.abs() <= f32::MAX as f64 => Value::Float(*f as f32),
        (Literal::Null, t) if t != DataType::Timestamp => Value::Null,
        _ => return None,
    })
}
