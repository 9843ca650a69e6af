//! ALTER STABLE / ALTER TABLE: add, drop, widen and rename columns and tags, set tag values,
//! comments and TTL. Column ids never change meaning, so files written before an ALTER stay
//! readable: a dropped column is just no longer asked for, an added one reads as NULL.

use crate::coordinator::Coordinator;
use crate::exec::eval::{value_for, EvalCtx};
use crate::exec::{Output, Session};
use taos_mnode::catalog::ColumnDef;
use taos_mnode::{MnodeReply, MnodeRequest, StableInfo};
use taos_vnode::meta::TableKind;
use taos_vnode::VnodeRequest;
use common::types::{MAX_VAR_COLUMN_LEN, MAX_VAR_TAG_LEN};
use common::{Code, DataType, TaosError, TaosResult, Value};
use taos_sql::ast::{self, AlterTableAction as A, ObjName, OptValue};

/// Variable-length limits for a new or widened column/tag.
fn check_len(c: &ast::ColumnDef, tag: bool) -> TaosResult<()> {
    let max = if tag {
        MAX_VAR_TAG_LEN
    } else {
        MAX_VAR_COLUMN_LEN
    };
    let bad = match c.ty {
        DataType::VarChar(n) | DataType::VarBinary(n) | DataType::Geometry(n) => n == 0 || n > max,
        DataType::NChar(n) => n == 0 || n * 4 > max,
        DataType::Json if !tag => {
            return Err(TaosError::new(
                Code::PAR_ONLY_TAG_JSON,
                format!("Only tag can be json type: {}", c.name),
            ))
        }
        _ => false,
    };
    if bad {
        return Err(TaosError::new(
            Code::PAR_INVALID_VAR_COLUMN_LEN,
            format!("Invalid column length: {} {}", c.name, c.ty.sql()),
        ));
    }
    if c.name.is_empty() || c.name.len() > 64 {
        return Err(TaosError::new(
            Code::PAR_INVALID_IDENTIFIER_NAME,
            format!("Invalid identifier name: {}", c.name),
        ));
    }
    Ok(())
}

/// Only VARCHAR/NCHAR/VARBINARY/GEOMETRY may change, and only to a larger length.
fn widened(old: DataType, new: DataType, name: &str) -> TaosResult<DataType> {
    let ok = match (old, new) {
        (DataType::VarChar(a), DataType::VarChar(b))
        | (DataType::NChar(a), DataType::NChar(b))
        | (DataType::VarBinary(a), DataType::VarBinary(b))
        | (DataType::Geometry(a), DataType::Geometry(b)) => b > a,
        _ => false,
    };
    if ok {
        Ok(new)
    } else {
        Err(TaosError::new(
            Code::PAR_INVALID_MODIFY_COL,
            format!(
                "Only binary/nchar column length could be modified, and the length can only be increased: {name} {} -> {}",
                old.sql(),
                new.sql()
            ),
        ))
    }
}

/// TTL and COMMENT of an ALTER TABLE (`None`: not given). TTL is 0..=2147483647 (in `ttlUnit`
/// units), a comment at most 1024 bytes, as in TDengine; other options are refused.
fn table_options(
    opts: &[ast::TableOption],
    allow_ttl: bool,
) -> TaosResult<(Option<i64>, Option<String>)> {
    let bad = |m: String| TaosError::new(Code::PAR_INVALID_TABLE_OPTION, m);
    let (mut ttl, mut comment) = (None, None);
    for o in opts {
        match (o.name.as_str(), &o.value) {
            ("ttl", OptValue::Int(n)) if allow_ttl => {
                if !(0..=i32::MAX as i64).contains(n) {
                    return Err(bad(format!(
                        "Invalid option ttl: {n}, valid range: [0, 2147483647]"
                    )));
                }
                ttl = Some(*n);
            }
            ("comment", OptValue::Str(c)) => {
                if c.len() > 1024 {
                    return Err(bad(format!(
                        "Invalid option comment: {} bytes, at most 1024",
                        c.len()
                    )));
                }
                comment = Some(c.clone());
            }
            // KEEP of a super table is accepted and not kept (data expiry is per database).
            ("keep", _) if !allow_ttl => {}
            (name, _) => return Err(bad(format!("Invalid option {name}"))),
        }
    }
    Ok((ttl, comment))
}

fn exists(list: &[ColumnDef], name: &str) -> bool {
    list.iter().any(|c| c.name == name)
}

/// ADD COLUMN: the column gets a fresh id (ids are never reused, so old files stay unambiguous).
/// `other_clash`: the name is taken by a tag; `ntags`: tags counted towards the 4096 limit.
fn add_column(
    columns: &mut Vec<ColumnDef>,
    next_id: &mut u16,
    c: &ast::ColumnDef,
    other_clash: bool,
    ntags: usize,
) -> TaosResult<()> {
    check_len(c, false)?;
    if other_clash || exists(columns, &c.name) {
        return Err(TaosError::new(
            Code::COLUMN_ALREADY_EXIST,
            format!("Column already exists: {}", c.name),
        ));
    }
    if columns.len() + ntags >= 4096 {
        return Err(TaosError::of(Code::PAR_INVALID_COLUMNS_NUM_TOO_MANY));
    }
    columns.push(ColumnDef {
        id: *next_id,
        name: c.name.clone(),
        ty: c.ty,
        primary_key: false,
    });
    *next_id += 1;
    Ok(())
}

/// DROP COLUMN: never the primary timestamp, and at least two columns stay.
fn drop_column(columns: &mut Vec<ColumnDef>, n: &str) -> TaosResult<()> {
    let i = columns.iter().position(|c| c.name == n).ok_or_else(|| {
        TaosError::new(
            Code::COLUMN_NOT_EXIST,
            format!("Column does not exist: {n}"),
        )
    })?;
    if i == 0 {
        return Err(TaosError::of(Code::PAR_CANNOT_DROP_PRIMARY_KEY));
    }
    if columns.len() <= 2 {
        return Err(TaosError::new(
            Code::PAR_INVALID_COLUMNS_NUM,
            "A table keeps at least two columns",
        ));
    }
    columns.remove(i);
    Ok(())
}

/// MODIFY COLUMN: only widening of variable-length types.
fn modify_column(columns: &mut [ColumnDef], c: &ast::ColumnDef) -> TaosResult<()> {
    check_len(c, false)?;
    let col = columns
        .iter_mut()
        .find(|x| x.name == c.name)
        .ok_or_else(|| {
            TaosError::new(
                Code::COLUMN_NOT_EXIST,
                format!("Column does not exist: {}", c.name),
            )
        })?;
    col.ty = widened(col.ty, c.ty, &c.name)?;
    Ok(())
}

impl Coordinator {
    pub async fn alter_table(
        &self,
        s: &Session,
        stable: bool,
        name: &ObjName,
        action: A,
    ) -> TaosResult<Output> {
        let db = s.db_of(name)?.to_string();
        self.check_privilege(s, &db, true)?;
        let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
        let _ddl = self.ddl_lock.lock().await;
        if self.mnode.read(|c| c.stable(&db, &name.name).is_some()) {
            return self.alter_stable(s, &db, &name.name, action).await;
        }
        if stable {
            return Err(TaosError::new(
                Code::STB_NOT_EXIST,
                format!("STable not exist: {}", name.name),
            ));
        }
        let (vg, t) = self.find_table(&dbinfo, &name.name).await?.ok_or_else(|| {
            TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!("Table does not exist: {}", name.name),
            )
        })?;
        let vnode = self.vnode(vg)?;
        match (t.kind, action) {
            (TableKind::Child { suid, tags }, A::SetTags(sets)) => {
                let st = self
                    .mnode
                    .read(|c| c.stable_by_uid(&db, suid).cloned())
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?;
                let ctx = EvalCtx {
                    precision: dbinfo.options.precision,
                    tz: s.tz,
                    db: Some(&db),
                    user: &s.user,
                    row: None,
                };
                let mut tags = tags;
                tags.resize(st.tags.len(), Value::Null);
                for (tag, e) in &sets {
                    let i = st.tags.iter().position(|t| &t.name == tag).ok_or_else(|| {
                        TaosError::new(
                            Code::PAR_INVALID_TAG_NAME,
                            format!("Invalid tag name: {tag}"),
                        )
                    })?;
                    tags[i] = value_for(e, st.tags[i].ty, &ctx, tag)?;
                }
                vnode
                    .propose(VnodeRequest::SetTags {
                        table: name.name.clone(),
                        tags,
                    })
                    .await?;
            }
            (TableKind::Child { .. } | TableKind::Normal { .. }, A::Options(opts)) => {
                let (ttl, comment) = table_options(&opts, true)?;
                vnode
                    .propose(VnodeRequest::SetTableOptions {
                        table: name.name.clone(),
                        ttl,
                        comment,
                    })
                    .await?;
            }
            (TableKind::Child { .. }, _) => {
                return Err(TaosError::new(
                    Code::PAR_NOT_SUPPORTED,
                    format!(
                        "Cannot change the schema of child table {}: alter its super table",
                        name.name
                    ),
                ))
            }
            (
                TableKind::Normal {
                    mut columns,
                    version,
                    mut next_col_id,
                },
                action,
            ) => {
                match action {
                    A::AddColumn(c) => add_column(&mut columns, &mut next_col_id, &c, false, 0)?,
                    A::DropColumn(n) => drop_column(&mut columns, &n)?,
                    A::ModifyColumn(c) => modify_column(&mut columns, &c)?,
                    A::RenameColumn { from, to } => {
                        if exists(&columns, &to) {
                            return Err(TaosError::new(
                                Code::COLUMN_ALREADY_EXIST,
                                format!("Column already exists: {to}"),
                            ));
                        }
                        let col = columns.iter_mut().find(|x| x.name == from).ok_or_else(|| {
                            TaosError::new(
                                Code::COLUMN_NOT_EXIST,
                                format!("Column does not exist: {from}"),
                            )
                        })?;
                        col.name = to;
                    }
                    A::Options(_) => {
                        return Err(TaosError::internal("table options are applied above"))
                    }
                    _ => {
                        return Err(TaosError::new(
                            Code::PAR_NOT_SUPPORTED,
                            "Normal tables have no tags",
                        ))
                    }
                }
                vnode
                    .propose(VnodeRequest::AlterNormal {
                        table: name.name.clone(),
                        columns,
                        version: version + 1,
                        next_col_id,
                    })
                    .await?;
            }
        }
        Ok(Output::Affected(0))
    }

    async fn alter_stable(
        &self,
        _s: &Session,
        db: &str,
        name: &str,
        action: A,
    ) -> TaosResult<Output> {
        let mut drop_tag_at = None;
        let before = self
            .mnode
            .read(|c| c.stable(db, name).cloned())
            .ok_or_else(|| {
                TaosError::new(Code::STB_NOT_EXIST, format!("STable not exist: {name}"))
            })?;
        // The change is worked out on a copy, then committed as one request that fails if the
        // super table changed in between.
        let mut after = before.clone();
        let edited: TaosResult<()> = (|| {
            let st = &mut after;
            let taken = |st: &StableInfo, n: &str| exists(&st.columns, n) || exists(&st.tags, n);
            match &action {
                A::AddColumn(col) => {
                    let tag_clash = exists(&st.tags, &col.name);
                    let ntags = st.tags.len();
                    add_column(&mut st.columns, &mut st.next_col_id, col, tag_clash, ntags)?;
                    st.version += 1;
                }
                A::DropColumn(n) => {
                    drop_column(&mut st.columns, n)?;
                    st.version += 1;
                }
                A::ModifyColumn(col) => {
                    modify_column(&mut st.columns, col)?;
                    st.version += 1;
                }
                A::AddTag(t) => {
                    check_len(t, true)?;
                    if taken(st, &t.name) {
                        return Err(TaosError::new(
                            Code::TAG_ALREADY_EXIST,
                            format!("Tag already exists: {}", t.name),
                        ));
                    }
                    if st.tags.len() >= 128 {
                        return Err(TaosError::new(
                            Code::PAR_INVALID_TAGS_NUM,
                            "Invalid number of tag columns: at most 128",
                        ));
                    }
                    if t.ty == DataType::Json || st.tags.iter().any(|x| x.ty == DataType::Json) {
                        return Err(TaosError::of(Code::PAR_ONLY_ONE_JSON_TAG));
                    }
                    st.tags.push(ColumnDef {
                        id: st.next_col_id,
                        name: t.name.clone(),
                        ty: t.ty,
                        primary_key: false,
                    });
                    st.next_col_id += 1;
                }
                A::DropTag(n) => {
                    let i = st.tags.iter().position(|t| &t.name == n).ok_or_else(|| {
                        TaosError::new(Code::TAG_NOT_EXIST, format!("Tag does not exist: {n}"))
                    })?;
                    if st.tags.len() <= 1 {
                        return Err(TaosError::new(
                            Code::PAR_INVALID_TAGS_NUM,
                            "A super table keeps at least one tag",
                        ));
                    }
                    st.tags.remove(i);
                    drop_tag_at = Some(i);
                }
                A::ModifyTag(t) => {
                    check_len(t, true)?;
                    let x = st
                        .tags
                        .iter_mut()
                        .find(|x| x.name == t.name)
                        .ok_or_else(|| {
                            TaosError::new(
                                Code::TAG_NOT_EXIST,
                                format!("Tag does not exist: {}", t.name),
                            )
                        })?;
                    x.ty = widened(x.ty, t.ty, &t.name)?;
                }
                A::RenameTag { from, to } => {
                    if taken(st, to) {
                        return Err(TaosError::new(
                            Code::TAG_ALREADY_EXIST,
                            format!("Tag already exists: {to}"),
                        ));
                    }
                    let x = st
                        .tags
                        .iter_mut()
                        .find(|x| &x.name == from)
                        .ok_or_else(|| {
                            TaosError::new(
                                Code::TAG_NOT_EXIST,
                                format!("Tag does not exist: {from}"),
                            )
                        })?;
                    x.name = to.clone();
                }
                A::RenameColumn { .. } => {
                    return Err(TaosError::new(
                        Code::PAR_NOT_SUPPORTED,
                        "Columns of a super table cannot be renamed; tags can",
                    ))
                }
                A::SetTags(_) => {
                    return Err(TaosError::new(
                        Code::PAR_NOT_SUPPORTED,
                        "SET TAG applies to a child table",
                    ))
                }
                A::Options(opts) => {
                    // Super tables have no TTL (their children do).
                    if let (_, Some(c)) = table_options(opts, false)? {
                        st.comment = Some(c);
                    }
                }
            }
            Ok(())
        })();
        edited?;
        let st = match self.mnode.propose(MnodeRequest::AlterStable { before, after })? {
            MnodeReply::Stable(Some(st)) => st,
            _ => return Err(TaosError::of(Code::STB_NOT_EXIST)),
        };
        let dbinfo = self.mnode.read(|c| c.db(db).cloned())?;
        self.publish_stable(&dbinfo, &st).await?;
        // Children keep their tags by position: removing a tag removes that slot everywhere.
        if let Some(index) = drop_tag_at {
            for v in self.db_vnodes(&dbinfo) {
                v.propose(VnodeRequest::DropTag {
                        suid: st.uid,
                        index,
                    })
                    .await?;
            }
        }
        Ok(Output::Affected(0))
    }
}
