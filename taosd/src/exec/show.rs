//! SHOW statements and the information_schema tables they are views of.

use crate::coordinator::Coordinator;
use crate::exec::eval::like;
use crate::exec::{Output, ResultRows, Session};
use taos_mnode::catalog::DbInfo;
use taos_vnode::meta::TableKind;
use common::{Code, DataType, Field, Precision, TaosError, TaosResult, Value};
use taos_sql::ast::{ObjName, Show, TableKind as AstKind};

fn vc(s: impl Into<String>) -> Value {
    Value::VarChar(s.into())
}
fn f(name: &str, ty: DataType) -> Field {
    Field::new(name, ty)
}

const SYSTEM_TABLES: &[&str] = &[
    "ins_tags",
    "ins_columns",
    "ins_databases",
    "ins_stables",
    "ins_tables",
    "ins_users",
    "ins_dnodes",
    "ins_mnodes",
    "ins_vgroups",
    "ins_cluster",
    "ins_topics",
    "ins_consumers",
    "ins_subscriptions",
];

impl Coordinator {
    pub async fn show(&self, s: &Session, show: Show) -> TaosResult<Output> {
        let r = match show {
            Show::Databases => self.ins_databases().await,
            Show::Stables { db, like: pat } => {
                let db = db
                    .or(s.db.clone())
                    .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))?;
                self.mnode.read(|c| c.db(&db).map(|_| ()))?;
                let mut r = ResultRows::new(vec![f("stable_name", DataType::VarChar(192))]);
                let names: Vec<String> = self.mnode.read(|c| {
                    c.stables
                        .get(&db)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default()
                });
                for n in names {
                    if pat.as_deref().map(|p| like(&n, p)).unwrap_or(true) {
                        r.rows.push(vec![vc(n)]);
                    }
                }
                r
            }
            Show::Tables {
                db,
                like: pat,
                kind,
            } => {
                let db = db
                    .or(s.db.clone())
                    .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))?;
                let info = self.mnode.read(|c| c.db(&db).cloned())?;
                let mut r = ResultRows::new(vec![f("table_name", DataType::VarChar(192))]);
                let mut names = Vec::new();
                for vg in &info.vgroups {
                    let tables = self.vnode(vg.id)?.tables(None).await?;
                    for t in &tables {
                        let k = match t.kind {
                            TableKind::Child { .. } => AstKind::Child,
                            TableKind::Normal { .. } => AstKind::Normal,
                        };
                        if kind.map(|want| want == k).unwrap_or(true)
                            && pat.as_deref().map(|p| like(&t.name, p)).unwrap_or(true)
                        {
                            names.push(t.name.clone());
                        }
                    }
                }
                names.sort();
                r.rows = names.into_iter().map(|n| vec![vc(n)]).collect();
                r
            }
            Show::CreateDatabase(name) => {
                let db = self.mnode.read(|c| c.db(&name).cloned())?;
                let mut r = ResultRows::new(vec![
                    f("Database", DataType::VarChar(64)),
                    f("Create Database", DataType::VarChar(1024)),
                ]);
                r.rows
                    .push(vec![vc(name.clone()), vc(db.options.create_sql(&name))]);
                r
            }
            Show::CreateStable(name) | Show::CreateTable(name) => {
                self.show_create_table(s, &name).await?
            }
            Show::Users => self.system_table("information_schema", "ins_users").await?,
            Show::Dnodes => self.system_table("information_schema", "ins_dnodes").await?,
            Show::Mnodes => self.system_table("information_schema", "ins_mnodes").await?,
            Show::Cluster => self.system_table("information_schema", "ins_cluster").await?,
            Show::Vgroups(db) => {
                let db = db
                    .or(s.db.clone())
                    .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))?;
                let mut r = self.system_table("information_schema", "ins_vgroups").await?;
                r.rows
                    .retain(|row| matches!(&row[1], Value::VarChar(d) if *d == db));
                r
            }
            Show::Tags(name) => {
                // SHOW TAGS FROM ctb: one row per tag of one child table.
                let db = s.db_of(&name)?.to_string();
                let mut r = self.system_table("information_schema", "ins_tags").await?;
                r.rows.retain(|row| matches!((&row[0], &row[1]), (Value::VarChar(t), Value::VarChar(d)) if *t == name.name && *d == db));
                if r.rows.is_empty() {
                    let info = self.mnode.read(|c| c.db(&db).cloned())?;
                    if self.find_table(&info, &name.name).await?.is_none() {
                        return Err(TaosError::new(
                            Code::PAR_TABLE_NOT_EXIST,
                            format!("Table does not exist: {}", name.name),
                        ));
                    }
                }
                r
            }
            Show::TableTags(name) => {
                // SHOW TABLE TAGS FROM stb: tbname and every tag, one row per child table.
                let db = s.db_of(&name)?.to_string();
                let info = self.mnode.read(|c| c.db(&db).cloned())?;
                let st = self
                    .mnode
                    .read(|c| c.stable(&db, &name.name).cloned())
                    .ok_or_else(|| {
                        TaosError::new(
                            Code::STB_NOT_EXIST,
                            format!("STable not exist: {}", name.name),
                        )
                    })?;
                let mut fields = vec![f("tbname", DataType::VarChar(192))];
                fields.extend(st.tags.iter().map(|t| f(&t.name, t.ty)));
                let mut r = ResultRows::new(fields);
                for vg in &info.vgroups {
                    let tables = self.vnode(vg.id)?.tables(Some(st.uid)).await?;
                    for t in &tables {
                        let mut row = vec![vc(t.name.clone())];
                        if let TableKind::Child { tags, .. } = &t.kind {
                            row.extend(tags.iter().cloned());
                        }
                        row.resize(st.tags.len() + 1, Value::Null);
                        r.rows.push(row);
                    }
                }
                r.rows.sort_by(|a, b| a[0].render().cmp(&b[0].render()));
                r
            }
            Show::Variables | Show::LocalVariables => {
                let mut r = ResultRows::new(vec![
                    f("name", DataType::VarChar(64)),
                    f("value", DataType::VarChar(128)),
                    f("scope", DataType::VarChar(8)),
                ]);
                let c = &self.config;
                for (k, v) in [
                    ("firstEp", c.first_ep.clone()),
                    ("secondEp", c.second_ep.clone().unwrap_or_default()),
                    ("fqdn", c.fqdn.clone()),
                    ("serverPort", c.server_port.to_string()),
                    ("dataDir", c.data_dir.display().to_string()),
                    ("logDir", c.log_dir.display().to_string()),
                    ("supportVnodes", c.support_vnodes.to_string()),
                    ("timezone", c.timezone_name.clone()),
                    ("statusInterval", c.status_interval.to_string()),
                    ("monitor", (c.monitor as u8).to_string()),
                    ("monitorFqdn", c.monitor_fqdn.clone().unwrap_or_default()),
                    ("monitorPort", c.monitor_port.to_string()),
                    ("monitorInterval", c.monitor_interval.to_string()),
                ] {
                    r.rows.push(vec![vc(k), vc(v), vc("server")]);
                }
                r
            }
            Show::Topics => self.system_table("information_schema", "ins_topics").await?,
            Show::Consumers => self.system_table("information_schema", "ins_consumers").await?,
            Show::Subscriptions => self.system_table("information_schema", "ins_subscriptions").await?,
            Show::Connections => self.conns.perf_connections(),
            Show::Queries => self.conns.perf_queries(),
            Show::Streams(_) => {
                // No streams exist yet on this dnode: the right columns, no rows.
                let cols: &[&str] = &[
                    "stream_name",
                    "create_time",
                    "sql",
                    "status",
                    "source_db",
                    "target_db",
                    "target_table",
                    "watermark",
                    "trigger",
                ];
                ResultRows::new(cols.iter().map(|c| f(c, DataType::VarChar(64))).collect())
            }
            other => {
                return Err(TaosError::new(
                    Code::PAR_NOT_SUPPORTED,
                    format!("SHOW {other:?} is not supported yet"),
                ));
            }
        };
        Ok(Output::Rows(r))
    }

    async fn show_create_table(&self, s: &Session, name: &ObjName) -> TaosResult<ResultRows> {
        let db = s.db_of(name)?.to_string();
        let info = self.mnode.read(|c| c.db(&db).cloned())?;
        let cols_sql = |cols: &[taos_mnode::catalog::ColumnDef]| {
            cols.iter()
                .map(|c| format!("`{}` {}", c.name, c.ty.sql()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // TDengine's option clauses: ` COMMENT 'c'` when set, ` TTL n` when not 0.
        let options = |comment: &Option<String>, ttl: i64| {
            let mut o = String::new();
            if let Some(c) = comment {
                o.push_str(&format!(" COMMENT '{}'", c.replace('\'', "\\'")));
            }
            if ttl > 0 {
                o.push_str(&format!(" TTL {ttl}"));
            }
            o
        };
        let sql = if let Some(st) = self.mnode.read(|c| c.stable(&db, &name.name).cloned()) {
            format!(
                "CREATE STABLE `{}` ({}) TAGS ({}){}",
                st.name,
                cols_sql(&st.columns),
                cols_sql(&st.tags),
                options(&st.comment, 0)
            )
        } else {
            let (_, t) = self.find_table(&info, &name.name).await?.ok_or_else(|| {
                TaosError::new(
                    Code::PAR_TABLE_NOT_EXIST,
                    format!("Table does not exist: {}", name.name),
                )
            })?;
            match &t.kind {
                TableKind::Normal { columns, .. } => {
                    format!(
                        "CREATE TABLE `{}` ({}){}",
                        t.name,
                        cols_sql(columns),
                        options(&t.comment, t.ttl)
                    )
                }
                TableKind::Child { suid, tags } => {
                    let st = self
                        .mnode
                        .read(|c| c.stable_by_uid(&db, *suid).cloned())
                        .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?;
                    let tv: Vec<String> = tags
                        .iter()
                        .map(|v| match v {
                            Value::Null => "NULL".into(),
                            Value::VarChar(x) | Value::NChar(x) | Value::Json(x) => {
                                format!("\"{x}\"")
                            }
                            other => other.render(),
                        })
                        .collect();
                    format!(
                        "CREATE TABLE `{}` USING `{}` ({}) TAGS ({}){}",
                        t.name,
                        st.name,
                        st.tags
                            .iter()
                            .map(|t| format!("`{}`", t.name))
                            .collect::<Vec<_>>()
                            .join(", "),
                        tv.join(", "),
                        options(&t.comment, t.ttl)
                    )
                }
            }
        };
        let mut r = ResultRows::new(vec![
            f("Table", DataType::VarChar(192)),
            f("Create Table", DataType::VarChar(4096)),
        ]);
        r.rows.push(vec![vc(name.name.clone()), vc(sql)]);
        Ok(r)
    }

    async fn ins_databases(&self) -> ResultRows {
        let mut r = ResultRows::new(vec![
            f("name", DataType::VarChar(64)),
            f("create_time", DataType::Timestamp),
            f("vgroups", DataType::SmallInt),
            f("ntables", DataType::BigInt),
            f("replica", DataType::TinyInt),
            f("strict", DataType::VarChar(4)),
            f("duration", DataType::VarChar(10)),
            f("keep", DataType::VarChar(32)),
            f("buffer", DataType::Int),
            f("pagesize", DataType::Int),
            f("pages", DataType::Int),
            f("minrows", DataType::Int),
            f("maxrows", DataType::Int),
            f("comp", DataType::TinyInt),
            f("precision", DataType::VarChar(2)),
            f("status", DataType::VarChar(10)),
            f("retentions", DataType::VarChar(60)),
            f("single_stable", DataType::Bool),
            f("cachemodel", DataType::VarChar(11)),
            f("cachesize", DataType::Int),
            f("wal_level", DataType::TinyInt),
            f("wal_fsync_period", DataType::Int),
            f("wal_retention_period", DataType::Int),
            f("wal_retention_size", DataType::BigInt),
            f("stt_trigger", DataType::SmallInt),
            f("table_prefix", DataType::SmallInt),
            f("table_suffix", DataType::SmallInt),
            f("tsdb_pagesize", DataType::Int),
        ]);
        let ncols = r.fields.len();
        for sys in ["information_schema", "performance_schema"] {
            let mut row = vec![Value::Null; ncols];
            row[0] = vc(sys);
            row[3] = Value::BigInt(if sys == "information_schema" {
                SYSTEM_TABLES.len() as i64
            } else {
                0
            });
            row[15] = vc("ready");
            r.rows.push(row);
        }
        let dbs: Vec<DbInfo> = self.mnode.read(|c| c.dbs.values().cloned().collect());
        for d in dbs {
            let o = &d.options;
            let mut ntables = 0;
            for v in self.db_vnodes(&d) {
                ntables += v.table_count().await.unwrap_or(0);
            }
            r.rows.push(vec![
                vc(d.name.clone()),
                Value::Timestamp(d.create_time),
                Value::SmallInt(o.vgroups as i16),
                Value::BigInt(ntables as i64),
                Value::TinyInt(o.replica as i8),
                vc("on"),
                vc(format!("{}m", o.duration)),
                vc(o.keep_text()),
                Value::Int(o.buffer as i32),
                Value::Int(o.pagesize as i32),
                Value::Int(o.pages as i32),
                Value::Int(o.minrows as i32),
                Value::Int(o.maxrows as i32),
                Value::TinyInt(o.comp as i8),
                vc(o.precision.as_str()),
                vc("ready"),
                Value::Null,
                Value::Bool(o.single_stable != 0),
                vc(o.cachemodel.clone()),
                Value::Int(o.cachesize as i32),
                Value::TinyInt(o.wal_level as i8),
                Value::Int(o.wal_fsync_period as i32),
                Value::Int(o.wal_retention_period as i32),
                Value::BigInt(o.wal_retention_size),
                Value::SmallInt(o.stt_trigger as i16),
                Value::SmallInt(o.table_prefix as i16),
                Value::SmallInt(o.table_suffix as i16),
                Value::Int(o.tsdb_pagesize as i32),
            ]);
        }
        r
    }

    /// `information_schema.*` / `performance_schema.*` as plain result sets.
    pub async fn system_table(&self, db: &str, table: &str) -> TaosResult<ResultRows> {
        let mut r = match (db, table) {
            ("information_schema", "ins_databases") => self.ins_databases().await,
            ("information_schema", "ins_stables") => {
                let mut r = ResultRows::new(vec![
                    f("stable_name", DataType::VarChar(192)),
                    f("db_name", DataType::VarChar(64)),
                    f("create_time", DataType::Timestamp),
                    f("columns", DataType::Int),
                    f("tags", DataType::Int),
                    f("last_update", DataType::Timestamp),
                    f("table_comment", DataType::VarChar(1024)),
                ]);
                self.mnode.read(|c| {
                    for (db, m) in &c.stables {
                        for st in m.values() {
                            r.rows.push(vec![
                                vc(st.name.clone()),
                                vc(db.clone()),
                                Value::Timestamp(st.create_time),
                                Value::Int(st.columns.len() as i32),
                                Value::Int(st.tags.len() as i32),
                                Value::Timestamp(st.create_time),
                                st.comment.clone().map(vc).unwrap_or(Value::Null),
                            ]);
                        }
                    }
                });
                r
            }
            ("information_schema", "ins_tables") => {
                let mut r = ResultRows::new(vec![
                    f("table_name", DataType::VarChar(192)),
                    f("db_name", DataType::VarChar(64)),
                    f("create_time", DataType::Timestamp),
                    f("columns", DataType::Int),
                    f("stable_name", DataType::VarChar(192)),
                    f("uid", DataType::BigInt),
                    f("vgroup_id", DataType::Int),
                    f("ttl", DataType::Int),
                    f("table_comment", DataType::VarChar(1024)),
                    f("type", DataType::VarChar(21)),
                ]);
                let dbs: Vec<DbInfo> = self.mnode.read(|c| c.dbs.values().cloned().collect());
                for d in dbs {
                    for vg in &d.vgroups {
                        let tables = self.vnode(vg.id)?.tables(None).await?;
                        for t in &tables {
                            let (ncols, stable, ty) = match &t.kind {
                                TableKind::Normal { columns, .. } => {
                                    (columns.len(), Value::Null, "NORMAL_TABLE")
                                }
                                TableKind::Child { suid, .. } => {
                                    let st = self.mnode.read(|c| {
                                        c.stable_by_uid(&d.name, *suid)
                                            .map(|s| (s.columns.len(), s.name.clone()))
                                    });
                                    match st {
                                        Some((n, name)) => (n, vc(name), "CHILD_TABLE"),
                                        None => (0, Value::Null, "CHILD_TABLE"),
                                    }
                                }
                            };
                            r.rows.push(vec![
                                vc(t.name.clone()),
                                vc(d.name.clone()),
                                Value::Timestamp(t.create_time),
                                Value::Int(ncols as i32),
                                stable,
                                Value::BigInt(t.uid as i64),
                                Value::Int(vg.id as i32),
                                Value::Int(t.ttl as i32),
                                t.comment.clone().map(vc).unwrap_or(Value::Null),
                                vc(ty),
                            ]);
                        }
                    }
                }
                r.rows.sort_by(|a, b| {
                    a[1].render()
                        .cmp(&b[1].render())
                        .then(a[0].render().cmp(&b[0].render()))
                });
                r
            }
            ("information_schema", "ins_users") => {
                let mut r = ResultRows::new(vec![
                    f("name", DataType::VarChar(24)),
                    f("super", DataType::TinyInt),
                    f("enable", DataType::TinyInt),
                    f("sysinfo", DataType::TinyInt),
                    f("createdb", DataType::TinyInt),
                    f("create_time", DataType::Timestamp),
                    f("allowed_host", DataType::VarChar(49152)),
                ]);
                self.mnode.read(|c| {
                    for u in c.users.values() {
                        r.rows.push(vec![
                            vc(u.name.clone()),
                            Value::TinyInt(u.superuser as i8),
                            Value::TinyInt(u.enable as i8),
                            Value::TinyInt(u.sysinfo as i8),
                            Value::TinyInt(u.createdb as i8),
                            Value::Timestamp(u.create_time),
                            vc("127.0.0.1/32"),
                        ]);
                    }
                });
                r
            }
            ("information_schema", "ins_dnodes") => {
                let mut r = ResultRows::new(vec![
                    f("id", DataType::SmallInt),
                    f("endpoint", DataType::VarChar(134)),
                    f("vnodes", DataType::SmallInt),
                    f("support_vnodes", DataType::SmallInt),
                    f("status", DataType::VarChar(10)),
                    f("create_time", DataType::Timestamp),
                    f("reboot_time", DataType::Timestamp),
                    f("note", DataType::VarChar(256)),
                ]);
                let (created, placed) = self.mnode.read(|c| {
                    let placed: Vec<u32> = c
                        .dbs
                        .values()
                        .flat_map(|d| d.vgroups.iter().map(|v| v.dnode_id))
                        .collect();
                    (c.create_time, placed)
                });
                for d in &self.dnodes {
                    let vnodes = placed.iter().filter(|&&id| id == d.id).count();
                    let status = match self.rpc.call(d.id, crate::rpc::DnodeCall::Status).await {
                        Ok(_) => "ready",
                        Err(_) => "offline",
                    };
                    r.rows.push(vec![
                        Value::SmallInt(d.id as i16),
                        vc(d.endpoint.clone()),
                        Value::SmallInt(vnodes as i16),
                        Value::SmallInt(d.support_vnodes as i16),
                        vc(status),
                        Value::Timestamp(created),
                        Value::Timestamp(self.start_time),
                        vc(""),
                    ]);
                }
                r
            }
            ("information_schema", "ins_mnodes") => {
                let mut r = ResultRows::new(vec![
                    f("id", DataType::Int),
                    f("endpoint", DataType::VarChar(134)),
                    f("role", DataType::VarChar(12)),
                    f("status", DataType::VarChar(10)),
                    f("create_time", DataType::Timestamp),
                    f("role_time", DataType::Timestamp),
                ]);
                let created = self.mnode.read(|c| c.create_time);
                r.rows.push(vec![
                    Value::Int(1),
                    vc(self.config.endpoint()),
                    vc("leader"),
                    vc("ready"),
                    Value::Timestamp(created),
                    Value::Timestamp(self.start_time),
                ]);
                r
            }
            ("information_schema", "ins_cluster") => {
                let mut r = ResultRows::new(vec![
                    f("id", DataType::BigInt),
                    f("name", DataType::VarChar(134)),
                    f("uptime", DataType::Int),
                    f("create_time", DataType::Timestamp),
                    f("version", DataType::VarChar(10)),
                ]);
                let (id, created) = self.mnode.read(|c| (c.cluster_id, c.create_time));
                r.rows.push(vec![
                    Value::BigInt(id as i64),
                    vc(self.config.endpoint()),
                    Value::Int(((Precision::Ms.now() - self.start_time) / 1000) as i32),
                    Value::Timestamp(created),
                    vc(common::SERVER_VERSION),
                ]);
                r
            }
            ("information_schema", "ins_tags") => {
                let mut r = ResultRows::new(vec![
                    f("table_name", DataType::VarChar(192)),
                    f("db_name", DataType::VarChar(64)),
                    f("stable_name", DataType::VarChar(192)),
                    f("tag_name", DataType::VarChar(64)),
                    f("tag_type", DataType::VarChar(32)),
                    f("tag_value", DataType::VarChar(16384)),
                ]);
                let dbs: Vec<DbInfo> = self.mnode.read(|c| c.dbs.values().cloned().collect());
                for d in dbs {
                    for vg in &d.vgroups {
                        let tables = self.vnode(vg.id)?.tables(None).await?;
                        for t in &tables {
                            let TableKind::Child { suid, tags } = &t.kind else {
                                continue;
                            };
                            let Some(st) = self
                                .mnode
                                .read(|c| c.stable_by_uid(&d.name, *suid).cloned())
                            else {
                                continue;
                            };
                            for (i, tag) in st.tags.iter().enumerate() {
                                let val = tags.get(i).cloned().unwrap_or(Value::Null);
                                r.rows.push(vec![
                                    vc(t.name.clone()),
                                    vc(d.name.clone()),
                                    vc(st.name.clone()),
                                    vc(tag.name.clone()),
                                    vc(tag.ty.sql()),
                                    if val.is_null() {
                                        Value::Null
                                    } else {
                                        vc(val.render())
                                    },
                                ]);
                            }
                        }
                    }
                }
                r.rows.sort_by(|a, b| {
                    (a[1].render(), a[0].render()).cmp(&(b[1].render(), b[0].render()))
                });
                r
            }
            ("information_schema", "ins_columns") => {
                let mut r = ResultRows::new(vec![
                    f("table_name", DataType::VarChar(192)),
                    f("db_name", DataType::VarChar(64)),
                    f("table_type", DataType::VarChar(21)),
                    f("col_name", DataType::VarChar(64)),
                    f("col_type", DataType::VarChar(32)),
                    f("col_length", DataType::Int),
                ]);
                let dbs: Vec<DbInfo> = self.mnode.read(|c| c.dbs.values().cloned().collect());
                for d in &dbs {
                    let stables: Vec<_> = self.mnode.read(|c| {
                        c.stables
                            .get(&d.name)
                            .map(|m| m.values().cloned().collect())
                            .unwrap_or_default()
                    });
                    for st in stables {
                        for c in &st.columns {
                            r.rows.push(vec![
                                vc(st.name.clone()),
                                vc(d.name.clone()),
                                vc("SUPER_TABLE"),
                                vc(c.name.clone()),
                                vc(c.ty.sql()),
                                Value::Int(c.ty.bytes() as i32),
                            ]);
                        }
                    }
                    for vg in &d.vgroups {
                        let tables = self.vnode(vg.id)?.tables(None).await?;
                        for t in &tables {
                            if let TableKind::Normal { columns, .. } = &t.kind {
                                for c in columns {
                                    r.rows.push(vec![
                                        vc(t.name.clone()),
                                        vc(d.name.clone()),
                                        vc("NORMAL_TABLE"),
                                        vc(c.name.clone()),
                                        vc(c.ty.sql()),
                                        Value::Int(c.ty.bytes() as i32),
                                    ]);
                                }
                            }
                        }
                    }
                }
                r
            }
            ("information_schema", "ins_vgroups") => {
                let mut r = ResultRows::new(vec![
                    f("vgroup_id", DataType::Int),
                    f("db_name", DataType::VarChar(64)),
                    f("tables", DataType::Int),
                    f("v1_dnode", DataType::SmallInt),
                    f("v1_status", DataType::VarChar(9)),
                ]);
                let dbs: Vec<DbInfo> = self.mnode.read(|c| c.dbs.values().cloned().collect());
                for d in dbs {
                    for vg in &d.vgroups {
                        let n = match self.vnode(vg.id) {
                            Ok(v) => v.table_count().await.unwrap_or(0),
                            Err(_) => 0,
                        };
                        r.rows.push(vec![
                            Value::Int(vg.id as i32),
                            vc(d.name.clone()),
                            Value::Int(n as i32),
                            Value::SmallInt(1),
                            vc("leader"),
                        ]);
                    }
                }
                r
            }
            ("performance_schema", "perf_connections") => self.conns.perf_connections(),
            ("performance_schema", "perf_queries") => self.conns.perf_queries(),
            (_, t) => match self.tmq_system_table(t) {
                Some(r) => r,
                None => {
                    return Err(TaosError::new(
                        Code::PAR_TABLE_NOT_EXIST,
                        format!("Table does not exist: {db}.{table}"),
                    ));
                }
            },
        };
        r.precision = Precision::Ms;
        Ok(r)
    }
}
