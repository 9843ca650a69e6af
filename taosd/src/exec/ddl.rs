//! Databases, super tables and tables: CREATE / DROP / ALTER / DESCRIBE, FLUSH, COMPACT, TRIM,
//! DELETE.

use crate::coordinator::Coordinator;
use crate::exec::eval::{value_for, EvalCtx};
use crate::exec::{Output, ResultRows, Session};
use taos_mnode::catalog::{now_ms, ColumnDef, DbInfo, StableInfo};
use taos_mnode::dboptions::DbOptions;
use taos_mnode::{MnodeReply, MnodeRequest, VgroupPlacement};
use taos_vnode::meta::{TableKind, TableMeta};
use taos_vnode::{NewTable, VnodeControl, VnodeRequest};
use common::types::{MAX_VAR_COLUMN_LEN, MAX_VAR_TAG_LEN};
use common::{Code, DataType, Field, TaosError, TaosResult, Value};
use std::collections::{BTreeMap, HashSet};

use taos_sql::ast::{
    self, CreateSubTable, DbOption, DropTarget, Expr, ObjName, OptValue, TableOption,
};

const MAX_DB_NAME: usize = 64;
const MAX_TABLE_NAME: usize = 192;
const MAX_COLUMNS: usize = 4096;
const MAX_TAGS: usize = 128;
const MAX_ROW_BYTES: u32 = 65_531;
const MAX_TAGS_BYTES: u32 = 16_384;

fn check_name(name: &str, max: usize, what: &str) -> TaosResult<()> {
    if name.is_empty() || name.len() > max || name.contains('.') {
        return Err(TaosError::new(
            Code::PAR_INVALID_IDENTIFIER_NAME,
            format!("Invalid identifier name: {what} '{name}'"),
        ));
    }
    Ok(())
}

fn option_text(opts: &[TableOption], name: &str) -> Option<String> {
    opts.iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            OptValue::Str(s) | OptValue::Ident(s) => Some(s.clone()),
            OptValue::Int(i) => Some(i.to_string()),
            _ => None,
        })
}

fn option_int(opts: &[TableOption], name: &str) -> Option<i64> {
    opts.iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            OptValue::Int(i) => Some(*i),
            _ => None,
        })
}

/// Validate data columns (first must be TIMESTAMP) and tags; assign column ids.
fn build_columns(
    columns: &[ast::ColumnDef],
    tags: &[ast::ColumnDef],
    stable: bool,
) -> TaosResult<(Vec<ColumnDef>, Vec<ColumnDef>)> {
    if columns.first().map(|c| c.ty) != Some(DataType::Timestamp) {
        return Err(TaosError::of(Code::PAR_INVALID_FIRST_COLUMN));
    }
    if columns.len() < 2 {
        return Err(TaosError::new(
            Code::PAR_INVALID_COLUMNS_NUM,
            "Invalid number of columns: at least 2 (ts and one column)",
        ));
    }
    if stable && tags.is_empty() {
        return Err(TaosError::new(
            Code::PAR_INVALID_TAGS_NUM,
            "Invalid number of tag columns: at least 1",
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(TaosError::new(
            Code::PAR_INVALID_TAGS_NUM,
            format!("Invalid number of tag columns: at most {MAX_TAGS}"),
        ));
    }
    if columns.len() + tags.len() > MAX_COLUMNS {
        return Err(TaosError::of(Code::PAR_INVALID_COLUMNS_NUM_TOO_MANY));
    }
    let mut seen = HashSet::new();
    for c in columns.iter().chain(tags) {
        check_name(&c.name, 64, "column")?;
        if !seen.insert(c.name.as_str()) {
            return Err(TaosError::new(
                Code::PAR_DUPLICATED_COLUMN,
                format!("Duplicated column names: {}", c.name),
            ));
        }
    }
    let mut row = 0u32;
    for (i, c) in columns.iter().enumerate() {
        if i > 0 && c.ty == DataType::Timestamp && c.options.iter().any(|(k, _)| k == "primary key")
        {
            return Err(TaosError::new(
                Code::PAR_NOT_SUPPORTED,
                "composite primary keys are not supported yet",
            ));
        }
        match c.ty {
            DataType::Json => {
                return Err(TaosError::new(
                    Code::PAR_ONLY_TAG_JSON,
                    format!("Only tag can be json type: {}", c.name),
                ))
            }
            DataType::VarChar(n) | DataType::VarBinary(n) | DataType::Geometry(n)
                if n == 0 || n > MAX_VAR_COLUMN_LEN =>
            {
                return Err(TaosError::new(
                    Code::PAR_INVALID_VAR_COLUMN_LEN,
                    format!("Invalid column length: {} {n}", c.name),
                ))
            }
            DataType::NChar(n) if n == 0 || n * 4 > MAX_VAR_COLUMN_LEN => {
                return Err(TaosError::new(
                    Code::PAR_INVALID_VAR_COLUMN_LEN,
                    format!("Invalid column length: {} {n}", c.name),
                ))
            }
            _ => {}
        }
        row += c.ty.row_bytes();
    }
    if row > MAX_ROW_BYTES {
        return Err(TaosError::new(
            Code::PAR_INVALID_ROW_LENGTH,
            format!("Row length exceeds max length: {row} > {MAX_ROW_BYTES}"),
        ));
    }
    let mut tag_bytes = 0u32;
    for t in tags {
        match t.ty {
            DataType::Json if tags.len() > 1 => {
                return Err(TaosError::of(Code::PAR_ONLY_ONE_JSON_TAG))
            }
            DataType::VarChar(n) | DataType::VarBinary(n) | DataType::Geometry(n)
                if n == 0 || n > MAX_VAR_TAG_LEN =>
            {
                return Err(TaosError::new(
                    Code::PAR_INVALID_VAR_COLUMN_LEN,
                    format!("Invalid tag length: {} {n}", t.name),
                ))
            }
            DataType::NChar(n) if n == 0 || n * 4 > MAX_VAR_TAG_LEN => {
                return Err(TaosError::new(
                    Code::PAR_INVALID_VAR_COLUMN_LEN,
                    format!("Invalid tag length: {} {n}", t.name),
                ))
            }
            _ => {}
        }
        tag_bytes += t.ty.row_bytes();
    }
    if tag_bytes > MAX_TAGS_BYTES {
        return Err(TaosError::new(
            Code::PAR_INVALID_TAGS_LENGTH,
            format!("Invalid tags length: {tag_bytes} > {MAX_TAGS_BYTES}"),
        ));
    }
    let mut id = 0u16;
    let mut mk = |c: &ast::ColumnDef| {
        id += 1;
        ColumnDef {
            id,
            name: c.name.clone(),
            ty: c.ty,
            primary_key: id == 1,
        }
    };
    let cols: Vec<ColumnDef> = columns.iter().map(&mut mk).collect();
    let tgs: Vec<ColumnDef> = tags
        .iter()
        .map(|t| ColumnDef {
            primary_key: false,
            ..mk(t)
        })
        .collect();
    Ok((cols, tgs))
}

impl Coordinator {
    pub async fn create_database(
        &self,
        s: &Session,
        if_not_exists: bool,
        name: &str,
        options: &[DbOption],
    ) -> TaosResult<Output> {
        check_name(name, MAX_DB_NAME, "database")?;
        if name == "information_schema" || name == "performance_schema" {
            return Err(TaosError::new(
                Code::INVALID_DB,
                format!("Invalid database name: {name} is reserved"),
            ));
        }
        if !s.superuser
            && !self
                .mnode
                .read(|c| c.users.get(&s.user).map(|u| u.createdb).unwrap_or(false))
        {
            return Err(TaosError::of(Code::NO_RIGHTS));
        }
        let mut opts = DbOptions::default();
        opts.apply(options, false)?;
        let _ddl = self.ddl_lock.lock().await;
        let ranges = common::hash::hash_ranges(opts.vgroups);
        let placed = self.place(ranges.len());
        let created = self.mnode.propose(MnodeRequest::CreateDb {
            name: name.to_string(),
            options: opts.clone(),
            create_time: now_ms(),
            vgroups: ranges
                .into_iter()
                .zip(placed)
                .map(|((b, e), dnode_id)| VgroupPlacement {
                    hash_begin: b,
                    hash_end: e,
                    dnode_id,
                })
                .collect(),
            if_not_exists,
            vnode_capacity: self.vnode_capacity(),
        })?;
        let created = match created {
            MnodeReply::Db(db) => db,
            _ => None,
        };
        if let Some(db) = created {
            if let Err(e) = self.open_vnodes(&db).await {
                // Roll the catalog back so a failed create leaves nothing half-made.
                self.drop_vnodes(&db).await;
                let _ = self.mnode.propose(MnodeRequest::DropDb {
                    name: name.to_string(),
                    if_exists: true,
                });
                return Err(e);
            }
        }
        Ok(Output::Affected(0))
    }

    pub async fn drop_database(
        &self,
        s: &mut Session,
        if_exists: bool,
        name: &str,
    ) -> TaosResult<Output> {
        if !s.superuser {
            return Err(TaosError::of(Code::NO_RIGHTS));
        }
        let _ddl = self.ddl_lock.lock().await;
        self.check_no_topic_on(name, None)?;
        let removed = match self.mnode.propose(MnodeRequest::DropDb {
            name: name.to_string(),
            if_exists,
        })? {
            MnodeReply::Db(db) => db,
            _ => None,
        };
        if let Some(db) = removed {
            self.drop_vnodes(&db).await;
        }
        if s.db.as_deref() == Some(name) {
            s.db = None;
        }
        Ok(Output::Affected(0))
    }

    pub async fn alter_database(
        &self,
        s: &Session,
        name: &str,
        options: &[DbOption],
    ) -> TaosResult<Output> {
        self.check_privilege(s, name, true)?;
        let _ddl = self.ddl_lock.lock().await;
        let mut o = self.mnode.read(|c| c.db(name).map(|d| d.options.clone()))?;
        o.apply(options, true)?;
        let db = match self.mnode.propose(MnodeRequest::AlterDb {
            name: name.to_string(),
            options: o,
        })? {
            MnodeReply::Db(Some(db)) => db,
            _ => return Err(TaosError::of(Code::DB_NOT_EXIST)),
        };
        for v in self.db_vnodes(&db) {
            v.control(VnodeControl::SetConfig(crate::dnode::vnode_config(&db.options)))
                .await?;
        }
        Ok(Output::Affected(0))
    }

    fn vnodes_of(&self, name: &str) -> TaosResult<Vec<crate::rpc::VnodeClient>> {
        let db = self.mnode.read(|c| c.db(name).cloned())?;
        Ok(self.db_vnodes(&db))
    }

    pub async fn flush_database(&self, name: &str) -> TaosResult<Output> {
        for v in self.vnodes_of(name)? {
            v.control(VnodeControl::Flush).await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn compact_database(&self, name: &str) -> TaosResult<Output> {
        for v in self.vnodes_of(name)? {
            v.control(VnodeControl::Compact).await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn trim_database(&self, name: &str) -> TaosResult<Output> {
        let precision = self
            .mnode
            .read(|c| c.db(name).map(|d| d.options.precision))?;
        for v in self.vnodes_of(name)? {
            v.control(VnodeControl::Expire {
                now: precision.now(),
            })
            .await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn create_stable(
        &self,
        s: &Session,
        if_not_exists: bool,
        name: &ObjName,
        columns: &[ast::ColumnDef],
        tags: &[ast::ColumnDef],
        options: &[TableOption],
    ) -> TaosResult<Output> {
        let db = s.db_of(name)?.to_string();
        check_name(&name.name, MAX_TABLE_NAME, "table")?;
        self.check_privilege(s, &db, true)?;
        let (cols, tgs) = build_columns(columns, tags, true)?;
        let _ddl = self.ddl_lock.lock().await;
        let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
        if self.find_table(&dbinfo, &name.name).await?.is_some() {
            return Err(TaosError::new(
                Code::TABLE_ALREADY_EXIST,
                format!("Table already exists: {}", name.name),
            ));
        }
        let next_col_id = (cols.len() + tgs.len() + 1) as u16;
        let info = StableInfo {
            db: db.clone(),
            name: name.name.clone(),
            uid: 0,
            create_time: now_ms(),
            columns: cols,
            tags: tgs,
            version: 1,
            next_col_id,
            comment: option_text(options, "comment"),
        };
        let reply = self.mnode.propose(MnodeRequest::CreateStable {
            info,
            if_not_exists,
        })?;
        // Every vnode of the database learns the schema before a child table can name it.
        if let MnodeReply::Stable(Some(st)) = reply {
            self.publish_stable(&dbinfo, &st).await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn drop_stable(
        &self,
        s: &Session,
        if_exists: bool,
        name: &ObjName,
    ) -> TaosResult<Output> {
        let db = s.db_of(name)?.to_string();
        self.check_privilege(s, &db, true)?;
        let _ddl = self.ddl_lock.lock().await;
        let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
        self.check_no_topic_on(&db, Some(&name.name))?;
        let removed = match self.mnode.propose(MnodeRequest::DropStable {
            db: db.clone(),
            name: name.name.clone(),
            if_exists,
        })? {
            MnodeReply::Stable(st) => st,
            _ => None,
        };
        if let Some(st) = removed {
            for vg in &dbinfo.vgroups {
                self.vnode(vg.id)?
                    .propose(VnodeRequest::DropStable(st.uid))
                    .await?;
            }
        }
        Ok(Output::Affected(0))
    }

    /// Look a child or normal table up in the vnode that its name hashes to.
    pub async fn find_table(
        &self,
        db: &DbInfo,
        table: &str,
    ) -> TaosResult<Option<(u32, TableMeta)>> {
        let vgid = db.vgroup_for(table);
        let t = self.vnode(vgid)?.table(table).await?;
        Ok(t.map(|t| (vgid, t)))
    }

    pub async fn create_normal_table(
        &self,
        s: &Session,
        if_not_exists: bool,
        name: &ObjName,
        columns: &[ast::ColumnDef],
        options: &[TableOption],
    ) -> TaosResult<Output> {
        let db = s.db_of(name)?.to_string();
        check_name(&name.name, MAX_TABLE_NAME, "table")?;
        self.check_privilege(s, &db, true)?;
        let (cols, _) = build_columns(columns, &[], false)?;
        let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
        if self.mnode.read(|c| c.stable(&db, &name.name).is_some()) {
            return Err(TaosError::new(
                Code::STB_ALREADY_EXIST,
                format!("STable already exists: {}", name.name),
            ));
        }
        if self.find_table(&dbinfo, &name.name).await?.is_some() {
            return if if_not_exists {
                Ok(Output::Affected(0))
            } else {
                Err(TaosError::of(Code::TABLE_ALREADY_EXIST))
            };
        }
        let next_col_id = cols.len() as u16 + 1;
        let t = NewTable {
            name: name.name.clone(),
            kind: TableKind::Normal {
                columns: cols,
                version: 1,
                next_col_id,
            },
            create_time: now_ms(),
            ttl: option_int(options, "ttl").unwrap_or(0),
            comment: option_text(options, "comment"),
        };
        self.vnode(dbinfo.vgroup_for(&name.name))?
            .propose(VnodeRequest::CreateTables(vec![t]))
            .await?;
        Ok(Output::Affected(0))
    }

    /// Tag values for a child table, in the stable's tag order (unnamed tags are NULL).
    pub fn tag_values(
        &self,
        s: &Session,
        st: &StableInfo,
        tag_names: Option<&[String]>,
        tags: &[Expr],
        precision: common::Precision,
    ) -> TaosResult<Vec<Value>> {
        let ctx = EvalCtx {
            precision,
            tz: s.tz,
            db: Some(&st.db),
            user: &s.user,
            row: None,
        };
        let order: Vec<usize> = match tag_names {
            Some(names) => names
                .iter()
                .map(|n| {
                    st.tags.iter().position(|t| &t.name == n).ok_or_else(|| {
                        TaosError::new(Code::PAR_INVALID_TAG_NAME, format!("Invalid tag name: {n}"))
                    })
                })
                .collect::<TaosResult<_>>()?,
            None => (0..st.tags.len()).collect(),
        };
        if order.len() != tags.len() {
            return Err(TaosError::new(
                Code::PAR_TAGS_NOT_MATCHED,
                format!(
                    "Tags number not matched: {} tag(s) expected, {} given",
                    order.len(),
                    tags.len()
                ),
            ));
        }
        let mut out = vec![Value::Null; st.tags.len()];
        for (i, e) in order.into_iter().zip(tags) {
            let t = &st.tags[i];
            out[i] = value_for(e, t.ty, &ctx, &t.name)?;
        }
        Ok(out)
    }

    pub async fn create_sub_tables(
        &self,
        s: &Session,
        list: Vec<CreateSubTable>,
    ) -> TaosResult<Output> {
        // Group by vgroup so each vnode gets one raft entry.
        let mut per_vg: BTreeMap<u32, Vec<NewTable>> = BTreeMap::new();
        for ct in list {
            let db = s.db_of(&ct.name)?.to_string();
            check_name(&ct.name.name, MAX_TABLE_NAME, "table")?;
            self.check_privilege(s, &db, true)?;
            let sdb = ct.stable.db.clone().unwrap_or_else(|| db.clone());
            if sdb != db {
                return Err(TaosError::of(Code::PAR_CORRESPONDING_STABLE_ERR));
            }
            let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
            let st = self
                .mnode
                .read(|c| c.stable(&db, &ct.stable.name).cloned())
                .ok_or_else(|| {
                    TaosError::new(
                        Code::PAR_TABLE_NOT_EXIST,
                        format!("Table does not exist: {}", ct.stable.name),
                    )
                })?;
            if self.mnode.read(|c| c.stable(&db, &ct.name.name).is_some()) {
                return Err(TaosError::new(
                    Code::TABLE_ALREADY_EXIST,
                    format!("Table already exists: {}", ct.name.name),
                ));
            }
            let tags = self.tag_values(
                s,
                &st,
                ct.tag_names.as_deref(),
                &ct.tags,
                dbinfo.options.precision,
            )?;
            if let Some((_, existing)) = self.find_table(&dbinfo, &ct.name.name).await? {
                if ct.if_not_exists {
                    continue;
                }
                let _ = existing;
                return Err(TaosError::new(
                    Code::TABLE_ALREADY_EXIST,
                    format!("Table already exists: {}", ct.name.name),
                ));
            }
            per_vg
                .entry(dbinfo.vgroup_for(&ct.name.name))
                .or_default()
                .push(NewTable {
                    name: ct.name.name.clone(),
                    kind: TableKind::Child { suid: st.uid, tags },
                    create_time: now_ms(),
                    ttl: option_int(&ct.options, "ttl").unwrap_or(0),
                    comment: option_text(&ct.options, "comment"),
                });
        }
        for (vg, tables) in per_vg {
            self.vnode(vg)?
                .propose(VnodeRequest::CreateTables(tables))
                .await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn drop_tables(&self, s: &Session, list: Vec<DropTarget>) -> TaosResult<Output> {
        let mut per_vg: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for t in list {
            let db = s.db_of(&t.name)?.to_string();
            self.check_privilege(s, &db, true)?;
            let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
            match self.find_table(&dbinfo, &t.name.name).await? {
                Some((vg, _)) => per_vg.entry(vg).or_default().push(t.name.name.clone()),
                None if self.mnode.read(|c| c.stable(&db, &t.name.name).is_some()) => {
                    return Err(TaosError::new(
                        Code::PAR_CANNOT_DROP_STABLE_IN_BATCH,
                        format!(
                            "Cannot drop supertable in batch: {}; use DROP STABLE",
                            t.name.name
                        ),
                    ))
                }
                None if t.if_exists => {}
                None => {
                    return Err(TaosError::new(
                        Code::PAR_TABLE_NOT_EXIST,
                        format!("Table does not exist: {}", t.name.name),
                    ))
                }
            }
        }
        for (vg, names) in per_vg {
            self.vnode(vg)?
                .propose(VnodeRequest::DropTables(names))
                .await?;
        }
        Ok(Output::Affected(0))
    }

    pub async fn describe(&self, s: &Session, name: &ObjName) -> TaosResult<Output> {
        let db = s.db_of(name)?.to_string();
        self.check_privilege(s, &db, false)?;
        let (cols, tags) = self.table_schema(&db, &name.name).await?;
        let mut r = ResultRows::new(vec![
            Field::new("field", DataType::VarChar(64)),
            Field::new("type", DataType::VarChar(32)),
            Field::new("length", DataType::Int),
            Field::new("note", DataType::VarChar(8)),
            Field::new("encode", DataType::VarChar(16)),
            Field::new("compress", DataType::VarChar(16)),
            Field::new("level", DataType::VarChar(8)),
        ]);
        for c in &cols {
            let (enc, comp) = default_codec(c.ty);
            r.rows.push(vec![
                Value::VarChar(c.name.clone()),
                Value::VarChar(c.ty.name().into()),
                Value::Int(c.ty.bytes() as i32),
                Value::VarChar(String::new()),
                Value::VarChar(enc.into()),
                Value::VarChar(comp.into()),
                Value::VarChar("medium".into()),
            ]);
        }
        for t in &tags {
            r.rows.push(vec![
                Value::VarChar(t.name.clone()),
                Value::VarChar(t.ty.name().into()),
                Value::Int(t.ty.bytes() as i32),
                Value::VarChar("TAG".into()),
                Value::VarChar("disabled".into()),
                Value::VarChar("disabled".into()),
                Value::VarChar("disabled".into()),
            ]);
        }
        Ok(Output::Rows(r))
    }

    /// Data columns and tags of a stable, child or normal table.
    pub async fn table_schema(
        &self,
        db: &str,
        table: &str,
    ) -> TaosResult<(Vec<ColumnDef>, Vec<ColumnDef>)> {
        let dbinfo = self.mnode.read(|c| c.db(db).cloned())?;
        if let Some(st) = self.mnode.read(|c| c.stable(db, table).cloned()) {
            return Ok((st.columns, st.tags));
        }
        let (_, t) = self.find_table(&dbinfo, table).await?.ok_or_else(|| {
            TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!("Table does not exist: {table}"),
            )
        })?;
        match t.kind {
            TableKind::Normal { columns, .. } => Ok((columns, Vec::new())),
            TableKind::Child { suid, .. } => {
                let st = self
                    .mnode
                    .read(|c| c.stable_by_uid(db, suid).cloned())
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?;
                Ok((st.columns, st.tags))
            }
        }
    }

    pub async fn delete(
        &self,
        s: &Session,
        table: &ObjName,
        where_: Option<&Expr>,
    ) -> TaosResult<Output> {
        let db = s.db_of(table)?.to_string();
        self.check_privilege(s, &db, true)?;
        let dbinfo = self.mnode.read(|c| c.db(&db).cloned())?;
        let (cols, _) = self.table_schema(&db, &table.name).await?;
        let ts_name = cols
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "ts".into());
        let (start, end) = {
            let ctx = EvalCtx {
                precision: dbinfo.options.precision,
                tz: s.tz,
                db: Some(&db),
                user: &s.user,
                row: None,
            };
            match where_ {
                None => (i64::MIN, i64::MAX),
                Some(w) => {
                    let r = crate::exec::select::time_range(w, &ts_name, &ctx)?;
                    if !r.exact {
                        return Err(TaosError::of(Code::PAR_INVALID_DELETE_WHERE));
                    }
                    (r.start, r.end)
                }
            }
        };
        let targets = self.resolve_tables(&dbinfo, &table.name).await?;
        let mut per_vg: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (vg, t) in targets {
            per_vg.entry(vg).or_default().push(t.name);
        }
        let mut n = 0;
        for (vg, tables) in per_vg {
            n += self
                .vnode(vg)?
                .propose(VnodeRequest::Delete { tables, start, end })
                .await?
                .affected;
        }
        Ok(Output::Affected(n))
    }

    /// All tables a FROM name covers: a stable's children across vgroups, or the one table.
    pub async fn resolve_tables(
        &self,
        db: &DbInfo,
        name: &str,
    ) -> TaosResult<Vec<(u32, TableMeta)>> {
        if let Some(st) = self.mnode.read(|c| c.stable(&db.name, name).cloned()) {
            let mut out = Vec::new();
            for v in self.db_vnodes(db) {
                let kids = v.tables(Some(st.uid)).await?;
                out.extend(kids.into_iter().map(|t| (v.vgid, t)));
            }
            return Ok(out);
        }
        self.find_table(db, name).await?.map(|t| vec![t]).ok_or_else(|| {
            TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!("Table does not exist: {name}"),
            )
        })
    }
}

/// The codec names DESCRIBE shows (TDengine 3.3 defaults by type).
fn default_codec(ty: DataType) -> (&'static str, &'static str) {
    match ty {
        DataType::Timestamp | DataType::BigInt | DataType::UBigInt => ("delta-i", "lz4"),
        DataType::Float | DataType::Double => ("delta-d", "lz4"),
        DataType::Bool => ("bit-packing", "lz4"),
        t if t.is_integer() => ("simple8b", "lz4"),
        _ => ("disabled", "zstd"),
    }
}
