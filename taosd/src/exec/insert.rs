//! INSERT in its forms: multi-row, multi-table, column lists, `USING stb TAGS` auto-create and
//! the super-table form `INSERT INTO stb(tbname, ...)`. Values are checked and converted here
//! (types, ranges, lengths, KEEP window) so that a raft entry only ever holds valid rows; each
//! vgroup then gets one entry for its share of the statement, proposed concurrently.

use crate::coordinator::Coordinator;
use crate::exec::eval::{value_for, EvalCtx};
use crate::exec::{Output, Session};
use taos_mnode::catalog::{now_ms, ColumnDef, DbInfo, StableInfo};
use taos_vnode::meta::TableKind;
use taos_vnode::{NewTable, Submit, SubmitTable, VnodeRequest};
use common::wire::WriteRequest;
use common::{Code, DataType, Precision, TaosError, TaosResult, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use taos_sql::ast::{Expr, Insert, InsertSource, InsertTarget, Literal};

/// Where a table's rows go, and with which columns.
struct Resolved {
    vgid: u32,
    columns: Vec<ColumnDef>,
    create: Option<NewTable>,
}

/// A child table to create: its super table and full tag vector.
struct ChildSpec {
    stable: StableInfo,
    tags: Vec<Value>,
}

struct DbCtx {
    info: DbInfo,
    keep_min: i64,
    max_ts: i64,
}

impl Coordinator {
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
                    DbCtx {
                        keep_min: now.saturating_sub(info.options.keep_units()),
                        max_ts: p.max_ts(),
                        info,
                    },
                );
            }
            let dbc = &dbs[&db];
            let stable = self
                .mnode
                .read(|c| c.stable(&db, &target.table.name).cloned());
            match stable {
                Some(st) if target.using.is_none() => {
                    self.insert_into_stable(s, dbc, &st, target, &mut per_vg)
                        .await?
                }
                Some(_) => {
                    return Err(TaosError::new(
                        Code::TSC_INVALID_OPERATION,
                        format!(
                            "{} is a super table: name a child table before USING",
                            target.table.name
                        ),
                    ))
                }
                None => {
                    let spec = match &target.using {
                        Some(u) if self.table_missing(dbc, &target.table.name).await? => {
                            Some(self.child_spec(s, dbc, u)?)
                        }
                        _ => None,
                    };
                    let r = self.resolve_target(dbc, &target.table.name, spec).await?;
                    let rows = source_rows(target.source)?;
                    let t = convert(
                        s,
                        dbc,
                        &target.table.name,
                        &r.columns,
                        target.columns.as_deref(),
                        rows,
                    )?;
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
        self.propose_all(per_vg).await
    }

    /// Typed rows without SQL (`Request::Write`): the same checks as INSERT, no parsing.
    pub async fn write(self: &Arc<Self>, s: &Session, req: WriteRequest) -> TaosResult<Output> {
        self.check_privilege(s, &req.db, true)?;
        let info = self.mnode.read(|c| c.db(&req.db).cloned())?;
        let p = info.options.precision;
        let dbc = DbCtx {
            keep_min: p.now().saturating_sub(info.options.keep_units()),
            max_ts: p.max_ts(),
            info,
        };
        let mut per_vg: BTreeMap<u32, Submit> = BTreeMap::new();
        for t in req.tables {
            let spec = match t.using {
                Some(u) if self.table_missing(&dbc, &t.name).await? => {
                    let stable = self.stable_named(&dbc.info.name, &u.stable)?;
                    if u.tag_names.len() != u.tags.len() {
                        return Err(TaosError::new(
                            Code::PAR_TAGS_NOT_MATCHED,
                            format!(
                                "Tags number not matched: {} name(s), {} value(s)",
                                u.tag_names.len(),
                                u.tags.len()
                            ),
                        ));
                    }
                    let mut tags = vec![Value::Null; stable.tags.len()];
                    for (n, v) in u.tag_names.iter().zip(u.tags) {
                        let i = stable
                            .tags
                            .iter()
                            .position(|t| &t.name == n)
                            .ok_or_else(|| {
                                TaosError::new(
                                    Code::PAR_INVALID_TAG_NAME,
                                    format!("Invalid tag name: {n}"),
                                )
                            })?;
                        tags[i] = v.coerce(stable.tags[i].ty, n)?;
                    }
                    Some(ChildSpec { stable, tags })
                }
                _ => None,
            };
            let r = self.resolve_target(&dbc, &t.name, spec).await?;
            let plan = plan_columns(&r.columns, Some(&t.columns))?;
            let mut rows = Vec::with_capacity(t.rows.len());
            for (ri, row) in t.rows.into_iter().enumerate() {
                if row.len() != plan.picked.len() {
                    return Err(count_err(&t.name, ri, plan.picked.len(), row.len()));
                }
                let mut row: Vec<Option<Value>> = row.into_iter().map(Some).collect();
                let mut vals = Vec::with_capacity(plan.order.len());
                for &k in &plan.order {
                    let c = &r.columns[plan.picked[k]];
                    let v = row[k].take().unwrap_or_default();
                    let v = if k == plan.ts_at {
                        rescale_ts(v, req.precision, p, &t.name)?
                    } else {
                        v.coerce(c.ty, &c.name)?
                    };
                    vals.push(v);
                }
                check_ts(&dbc, &t.name, ri, &vals[0])?;
                rows.push(vals);
            }
            let sub = per_vg.entry(r.vgid).or_default();
            if let Some(c) = r.create {
                if !sub.creates.iter().any(|x| x.name == c.name) {
                    sub.creates.push(c);
                }
            }
            sub.tables.push(SubmitTable {
                name: t.name,
                col_ids: plan.col_ids,
                rows,
            });
        }
        self.propose_all(per_vg).await
    }

    /// One raft proposal per vgroup, concurrently; the first error wins, the counts add up.
    async fn propose_all(&self, per_vg: BTreeMap<u32, Submit>) -> TaosResult<Output> {
        let mut tasks = Vec::with_capacity(per_vg.len());
        for (vg, sub) in per_vg {
            let v = self.vnode(vg)?;
            tasks.push(tokio::spawn(async move {
                v.propose(VnodeRequest::Submit(Arc::new(sub))).await
            }));
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
    async fn resolve_target(
        &self,
        dbc: &DbCtx,
        name: &str,
        using: Option<ChildSpec>,
    ) -> TaosResult<Resolved> {
        let db = &dbc.info.name;
        let vgid = dbc.info.vgroup_for(name);
        let existing = self.vnode(vgid)?.table(name).await?;
        if let Some(t) = existing {
            let columns = match &t.kind {
                TableKind::Normal { columns, .. } => columns.clone(),
                TableKind::Child { suid, .. } => self
                    .mnode
                    .read(|c| c.stable_by_uid(db, *suid).map(|st| st.columns.clone()))
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?,
            };
            return Ok(Resolved {
                vgid,
                columns,
                create: None,
            });
        }
        let Some(using) = using else {
            return Err(TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!("Table does not exist: {name}"),
            ));
        };
        if name.is_empty() || name.len() > 192 {
            return Err(TaosError::new(
                Code::PAR_INVALID_IDENTIFIER_NAME,
                format!("Invalid identifier name: {name}"),
            ));
        }
        Ok(Resolved {
            vgid,
            columns: using.stable.columns.clone(),
            create: Some(NewTable {
                name: name.to_string(),
                kind: TableKind::Child {
                    suid: using.stable.uid,
                    tags: using.tags,
                },
                create_time: now_ms(),
                ttl: 0,
                comment: None,
            }),
        })
    }

    /// The super table a `USING` names, and the child's tag values.
    fn child_spec(
        &self,
        s: &Session,
        dbc: &DbCtx,
        using: &taos_sql::ast::Using,
    ) -> TaosResult<ChildSpec> {
        let db = &dbc.info.name;
        let sdb = using.stable.db.as_deref().unwrap_or(db);
        if sdb != db {
            return Err(TaosError::of(Code::PAR_CORRESPONDING_STABLE_ERR));
        }
        let stable = self.stable_named(db, &using.stable.name)?;
        let tags = self.tag_values(
            s,
            &stable,
            using.tag_names.as_deref(),
            &using.tags,
            dbc.info.options.precision,
        )?;
        Ok(ChildSpec { stable, tags })
    }

    fn stable_named(&self, db: &str, name: &str) -> TaosResult<StableInfo> {
        self.mnode
            .read(|c| c.stable(db, name).cloned())
            .ok_or_else(|| {
                TaosError::new(
                    Code::PAR_TABLE_NOT_EXIST,
                    format!("Table does not exist: {name}"),
                )
            })
    }

    /// Is the table missing? Then `USING` must be evaluated (cheap to skip when it exists).
    async fn table_missing(&self, dbc: &DbCtx, name: &str) -> TaosResult<bool> {
        let v = self.vnode(dbc.info.vgroup_for(name))?;
        Ok(v.table(name).await?.is_none())
    }

    /// `INSERT INTO stb (tbname, [tags,] ts, cols...) VALUES (...)`: rows are split by tbname;
    /// missing child tables are created with the given tags (ignored when the table exists).
    async fn insert_into_stable(
        &self,
        s: &Session,
        dbc: &DbCtx,
        st: &StableInfo,
        target: InsertTarget,
        per_vg: &mut BTreeMap<u32, Submit>,
    ) -> TaosResult<()> {
        let names = target.columns.clone().ok_or_else(|| {
            TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!(
                    "tbname must be given to insert into super table {}",
                    st.name
                ),
            )
        })?;
        let tbname_pos = names.iter().position(|n| n == "tbname").ok_or_else(|| {
            TaosError::new(
                Code::PAR_INVALID_COLUMN,
                format!(
                    "tbname must be given to insert into super table {}",
                    st.name
                ),
            )
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
        let ctx = EvalCtx {
            precision: dbc.info.options.precision,
            tz: s.tz,
            db: Some(&dbc.info.name),
            user: &s.user,
            row: None,
        };
        let mut groups: BTreeMap<String, (Vec<Expr>, Vec<Vec<Expr>>)> = BTreeMap::new();
        for (ri, row) in rows.into_iter().enumerate() {
            if row.len() != names.len() {
                return Err(count_err(&st.name, ri, names.len(), row.len()));
            }
            let tb = match value_for(&row[tbname_pos], DataType::VarChar(192), &ctx, "tbname")? {
                Value::VarChar(t) if !t.is_empty() => t,
                _ => {
                    return Err(TaosError::new(
                        Code::PAR_INVALID_IDENTIFIER_NAME,
                        "tbname must be a non-empty string",
                    ))
                }
            };
            let mut row = row;
            let tags: Vec<Expr> = tag_pos
                .iter()
                .map(|&i| std::mem::replace(&mut row[i], Expr::Literal(Literal::Null)))
                .collect();
            let cols: Vec<Expr> = col_pos
                .iter()
                .map(|&i| std::mem::replace(&mut row[i], Expr::Literal(Literal::Null)))
                .collect();
            let g = groups.entry(tb).or_insert_with(|| (tags, Vec::new()));
            g.1.push(cols);
        }
        let tag_names: Vec<String> = tag_pos.iter().map(|&i| names[i].clone()).collect();
        for (tb, (tags, rows)) in groups {
            let spec = if self.table_missing(dbc, &tb).await? {
                let tags =
                    self.tag_values(s, st, Some(&tag_names), &tags, dbc.info.options.precision)?;
                Some(ChildSpec {
                    stable: st.clone(),
                    tags,
                })
            } else {
                None
            };
            let r = self.resolve_target(dbc, &tb, spec).await?;
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
        InsertSource::Select(_) => Err(TaosError::new(
            Code::PAR_NOT_SUPPORTED,
            "INSERT ... SELECT is not supported yet",
        )),
        InsertSource::File(_) => Err(TaosError::new(
            Code::PAR_NOT_SUPPORTED,
            "INSERT ... FILE is not supported yet",
        )),
    }
}

fn count_err(table: &str, row: usize, want: usize, got: usize) -> TaosError {
    TaosError::new(
        Code::PAR_INVALID_COLUMNS_NUM,
        format!(
            "Illegal number of columns: table {table} row {} has {got} value(s), {want} expected",
            row + 1
        ),
    )
}

/// Which schema columns a statement writes, and the order that puts the timestamp first.
struct ColumnPlan {
    /// Schema index of each value position in a row.
    picked: Vec<usize>,
    /// Value positions in write order (timestamp first).
    order: Vec<usize>,
    ts_at: usize,
    col_ids: Vec<u16>,
}

fn plan_columns(columns: &[ColumnDef], names: Option<&[String]>) -> TaosResult<ColumnPlan> {
    let picked: Vec<usize> = match names {
        None => (0..columns.len()).collect(),
        Some(names) => {
            let mut idx = Vec::with_capacity(names.len());
            for n in names {
                let i = columns.iter().position(|c| &c.name == n).ok_or_else(|| {
                    TaosError::new(
                        Code::PAR_INVALID_COLUMN,
                        format!("Invalid column name: {n}"),
                    )
                })?;
                if idx.contains(&i) {
                    return Err(TaosError::new(
                        Code::PAR_DUPLICATED_COLUMN,
                        format!("Duplicated column names: {n}"),
                    ));
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
    let col_ids = order.iter().map(|&k| columns[picked[k]].id).collect();
    Ok(ColumnPlan {
        picked,
        order,
        ts_at,
        col_ids,
    })
}

/// The primary timestamp is present and inside [now - KEEP, max].
fn check_ts(dbc: &DbCtx, table: &str, row: usize, v: &Value) -> TaosResult<()> {
    let Value::Timestamp(ts) = v else {
        return Err(TaosError::new(
            Code::PAR_WRONG_VALUE_TYPE,
            format!(
                "Primary timestamp column can not be null: table {table} row {}",
                row + 1
            ),
        ));
    };
    if *ts < dbc.keep_min || *ts > dbc.max_ts {
        return Err(TaosError::new(
            Code::TIMESTAMP_OUT_OF_RANGE,
            format!(
                "Timestamp data out of range: {ts} in table {table} row {} (outside KEEP)",
                row + 1
            ),
        ));
    }
    Ok(())
}

/// A timestamp given in `from` precision, in the database's precision.
fn rescale_ts(v: Value, from: Precision, to: Precision, table: &str) -> TaosResult<Value> {
    let Some(t) = (match v {
        Value::Null => return Ok(Value::Null),
        Value::Float(_) | Value::Double(_) | Value::Bool(_) => None,
        other => other.as_i64(),
    }) else {
        return Err(TaosError::new(
            Code::PAR_WRONG_VALUE_TYPE,
            format!("Invalid timestamp value for table {table}"),
        ));
    };
    let (f, t2) = (from.per_second(), to.per_second());
    let out = if t2 >= f {
        t.checked_mul(t2 / f)
    } else {
        Some(t / (f / t2))
    };
    out.map(Value::Timestamp).ok_or_else(|| {
        TaosError::new(
            Code::TIMESTAMP_OUT_OF_RANGE,
            format!("Timestamp data out of range: {t} in table {table}"),
        )
    })
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
    let plan = plan_columns(columns, names)?;
    let ctx = EvalCtx {
        precision: dbc.info.options.precision,
        tz: s.tz,
        db: Some(&dbc.info.name),
        user: &s.user,
        row: None,
    };
    let mut out = Vec::with_capacity(rows.len());
    for (ri, row) in rows.into_iter().enumerate() {
        if row.len() != plan.picked.len() {
            return Err(count_err(table, ri, plan.picked.len(), row.len()));
        }
        let mut vals = Vec::with_capacity(plan.order.len());
        for &k in &plan.order {
            let c = &columns[plan.picked[k]];
            let v = fast_value(&row[k], c.ty)
                .map(Ok)
                .unwrap_or_else(|| value_for(&row[k], c.ty, &ctx, &c.name))?;
            vals.push(v);
        }
        check_ts(dbc, table, ri, &vals[0])?;
        out.push(vals);
    }
    Ok(SubmitTable {
        name: table.to_string(),
        col_ids: plan.col_ids,
        rows: out,
    })
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
        (Literal::Float(f), DataType::Float) if f.abs() <= f32::MAX as f64 => {
            Value::Float(*f as f32)
        }
        (Literal::Null, t) if t != DataType::Timestamp => Value::Null,
        _ => return None,
    })
}
