//! Topics: the rules for creating and dropping them, and the compiled form the WAL reader
//! filters with. A topic keeps the text of its `CREATE TOPIC` statement; what it delivers is
//! re-derived from that text, so the catalog holds nothing the parser cannot rebuild.

use crate::coordinator::Coordinator;
use crate::exec::eval::{self, EvalCtx};
use crate::exec::{Output, Session};
use taos_mnode::catalog::{now_ms, TopicInfo, TopicKind};
use common::{Code, DataType, SessionTz, TaosError, TaosResult, Value};
use std::sync::Arc;
use taos_sql::ast::{BinaryOp, Expr, FromItem, Literal, Query, SelectItem, Statement, TopicSource};

/// TDengine's `tmqMaxTopicNum` default.
pub const MAX_TOPICS: usize = 20;

/// Which tables a topic reads, and what it keeps of their rows.
#[derive(Debug)]
pub enum Source {
    /// Every table of the database, all columns.
    Database,
    /// Child tables of one super table whose tags pass the filter; all columns.
    Stable { suid: u64, tag_filter: Option<Expr> },
    /// `SELECT ... FROM one table or super table WHERE ...`, evaluated on each row.
    Query {
        from: QueryFrom,
        /// `None` is `*` (all columns).
        projection: Option<Vec<(String, Expr)>>,
        where_: Option<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryFrom {
    Stable(u64),
    /// A normal or child table by name.
    Table(String),
}

#[derive(Debug)]
pub struct CompiledTopic {
    pub info: TopicInfo,
    pub source: Source,
}

fn invalid_query(why: impl std::fmt::Display) -> TaosError {
    TaosError::new(
        Code::INVALID_TOPIC_QUERY,
        format!("{}: {why}", Code::INVALID_TOPIC_QUERY.message()),
    )
}

/// A name for a projected expression, as TDengine titles result columns.
pub fn expr_title(e: &Expr) -> String {
    match e {
        Expr::Column { name, .. } => name.clone(),
        Expr::Literal(Literal::Str(s)) => format!("'{s}'"),
        Expr::Literal(Literal::Int(i)) => i.to_string(),
        Expr::Literal(Literal::Float(f)) => f.to_string(),
        Expr::Literal(_) => "null".into(),
        Expr::Function { name, args, .. } => format!(
            "{name}({})",
            args.iter().map(expr_title).collect::<Vec<_>>().join(",")
        ),
        Expr::Binary { op, left, right } => {
            let o = match op {
                BinaryOp::Add => "+",
                BinaryOp::Sub => "-",
                BinaryOp::Mul => "*",
                BinaryOp::Div => "/",
                BinaryOp::Mod => "%",
                _ => " ? ",
            };
            format!("{}{o}{}", expr_title(left), expr_title(right))
        }
        Expr::Unary { expr, .. } => format!("-{}", expr_title(expr)),
        Expr::Cast { expr, ty } => format!("cast({} as {})", expr_title(expr), ty.sql()),
        _ => "expr".into(),
    }
}

/// Evaluate `e` with every name in `names` bound to NULL: unknown columns and unsupported
/// functions fail here, at CREATE TOPIC, instead of on every row later.
fn check_names(e: &Expr, names: &[String], precision: common::Precision) -> TaosResult<()> {
    let lookup = |n: &str| {
        names
            .iter()
            .any(|x| x.eq_ignore_ascii_case(n))
            .then_some(Value::Null)
    };
    let ctx = EvalCtx {
        precision,
        tz: SessionTz::Utc,
        db: None,
        user: "",
        row: Some(&lookup),
    };
    eval::eval(e, &ctx).map(|_| ())
}

impl Coordinator {
    /// The table names a topic's source may use: columns, tags, `tbname`.
    fn source_names(&self, db: &str, from: &QueryFrom) -> TaosResult<Vec<String>> {
        let mut names = vec!["tbname".to_string()];
        let defs = match from {
            QueryFrom::Stable(suid) => self.mnode.read(|c| {
                c.stable_by_uid(db, *suid)
                    .map(|s| {
                        s.columns
                            .iter()
                            .chain(s.tags.iter())
                            .map(|c| c.name.clone())
                            .collect::<Vec<_>>()
                    })
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))
            })?,
            QueryFrom::Table(name) => {
                let meta = self.table_meta(db, name)?;
                let schema = self.vnode_for_table(db, name)?.schema_of(&meta)?;
                let mut v: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
                if let taos_vnode::meta::TableKind::Child { suid, .. } = meta.kind {
                    if let Some(tags) = self.mnode.read(|c| {
                        c.stable_by_uid(db, suid)
                            .map(|s| s.tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>())
                    }) {
                        v.extend(tags);
                    }
                }
                v
            }
        };
        names.extend(defs);
        Ok(names)
    }

    fn vnode_for_table(&self, db: &str, table: &str) -> TaosResult<Arc<taos_vnode::Vnode>> {
        let vg = self.mnode.read(|c| c.db(db).map(|d| d.vgroup_for(table)))?;
        self.local_vnode(vg)
    }

    fn table_meta(&self, db: &str, table: &str) -> TaosResult<taos_vnode::meta::TableMeta> {
        self.vnode_for_table(db, table)?
            .table_meta(table)
            .ok_or_else(|| TaosError::of(Code::PAR_TABLE_NOT_EXIST))
    }

    /// Resolve a topic's statement into what the reader needs.
    pub fn compile_topic(&self, info: &TopicInfo) -> TaosResult<CompiledTopic> {
        let Statement::CreateTopic { source, .. } = taos_sql::parse_one(&info.sql)? else {
            return Err(TaosError::of(Code::INVALID_TOPIC));
        };
        let db = info.db.as_str();
        let precision = self.mnode.read(|c| c.db(db).map(|d| d.options.precision))?;
        let stable_uid = |name: &str| {
            self.mnode
                .read(|c| c.stable(db, name).map(|s| s.uid))
                .ok_or_else(|| {
                    TaosError::new(Code::STB_NOT_EXIST, format!("STable not exist: {name}"))
                })
        };
        let source = match source {
            TopicSource::Database(_) => Source::Database,
            TopicSource::Stable { name, where_ } => {
                let suid = stable_uid(&name.name)?;
                if let Some(w) = &where_ {
                    let tags: Vec<String> = self.mnode.read(|c| {
                        c.stable(db, &name.name)
                            .map(|s| s.tags.iter().map(|t| t.name.clone()).collect())
                            .unwrap_or_default()
                    });
                    let mut names = tags;
                    names.push("tbname".into());
                    check_names(w, &names, precision)?;
                }
                Source::Stable {
                    suid,
                    tag_filter: where_,
                }
            }
            TopicSource::Query { query, .. } => {
                let Query::Select(sel) = *query else {
                    return Err(invalid_query("UNION is not allowed"));
                };
                if sel.distinct
                    || sel.tags
                    || !sel.partition_by.is_empty()
                    || sel.window.is_some()
                    || !sel.group_by.is_empty()
                    || sel.having.is_some()
                    || !sel.order_by.is_empty()
                    || sel.slimit.is_some()
                    || sel.limit.is_some()
                    || sel.range.is_some()
                    || sel.every.is_some()
                    || sel.fill.is_some()
                {
                    return Err(invalid_query(
                        "only projections, scalar functions and filters are allowed",
                    ));
                }
                let Some(FromItem::Table { name, .. }) = &sel.from else {
                    return Err(invalid_query("FROM must name one table or super table"));
                };
                if name.db.as_deref().is_some_and(|d| d != db) {
                    return Err(invalid_query("the table must be in the topic's database"));
                }
                let from = match stable_uid(&name.name) {
                    Ok(suid) => QueryFrom::Stable(suid),
                    Err(_) => {
                        self.table_meta(db, &name.name)?;
                        QueryFrom::Table(name.name.clone())
                    }
                };
                let names = self.source_names(db, &from)?;
                let mut projection = Vec::new();
                let mut star = false;
                for item in &sel.projection {
                    match item {
                        SelectItem::Wildcard => star = true,
                        SelectItem::QualifiedWildcard(_) => star = true,
                        SelectItem::Expr { expr, alias } => {
                            if contains_aggregate(expr) {
                                return Err(invalid_query("aggregate functions are not allowed"));
                            }
                            check_names(expr, &names, precision)?;
                            let title = alias.clone().unwrap_or_else(|| expr_title(expr));
                            projection.push((title, expr.clone()));
                        }
                    }
                }
                if star && !projection.is_empty() {
                    return Err(invalid_query("'*' cannot be mixed with expressions"));
                }
                if let Some(w) = &sel.where_ {
                    check_names(w, &names, precision)?;
                }
                Source::Query {
                    from,
                    projection: (!star).then_some(projection),
                    where_: sel.where_.clone(),
                }
            }
        };
        Ok(CompiledTopic {
            info: info.clone(),
            source,
        })
    }

    pub async fn create_topic(
        self: &Arc<Self>,
        s: &Session,
        if_not_exists: bool,
        name: &str,
        with_meta: bool,
        source: &TopicSource,
        sql: &str,
    ) -> TaosResult<Output> {
        let _ddl = self.ddl_lock.lock().await;
        if self.mnode.read(|c| c.topics.contains_key(name)) {
            if if_not_exists {
                return Ok(Output::Affected(0));
            }
            return Err(TaosError::of(Code::TOPIC_ALREADY_EXIST));
        }
        let (db, kind) = match source {
            TopicSource::Database(db) => (db.clone(), TopicKind::Database),
            TopicSource::Stable { name, .. } => (s.db_of(name)?.to_string(), TopicKind::Stable),
            TopicSource::Query { query, .. } => {
                let db = match &**query {
                    Query::Select(sel) => match &sel.from {
                        Some(FromItem::Table { name, .. }) => s.db_of(name)?.to_string(),
                        _ => return Err(invalid_query("FROM must name one table or super table")),
                    },
                    _ => return Err(invalid_query("UNION is not allowed")),
                };
                (db, TopicKind::Query)
            }
        };
        self.mnode.read(|c| c.db(&db).map(|_| ()))?;
        self.check_privilege(s, &db, false)?;
        // The text stays as written; unqualified names resolve against `db`, recorded with it.
        let info = TopicInfo {
            name: name.to_string(),
            db: db.clone(),
            create_time: now_ms(),
            owner: s.user.clone(),
            sql: sql.trim().trim_end_matches(';').trim().to_string(),
            kind,
            with_meta,
        };
        self.compile_topic(&info)?;
        self.mnode.propose(taos_mnode::MnodeRequest::CreateTopic {
            info,
            max_topics: MAX_TOPICS,
        })?;
        Ok(Output::Affected(0))
    }

    pub async fn drop_topic(
        self: &Arc<Self>,
        s: &Session,
        if_exists: bool,
        force: bool,
        name: &str,
    ) -> TaosResult<Output> {
        let _ddl = self.ddl_lock.lock().await;
        let Some(info) = self.mnode.read(|c| c.topics.get(name).cloned()) else {
            if if_exists {
                return Ok(Output::Affected(0));
            }
            return Err(TaosError::of(Code::TOPIC_NOT_EXIST));
        };
        if !s.superuser && info.owner != s.user {
            return Err(TaosError::of(Code::NO_RIGHTS));
        }
        if self.tmq.topic_in_use(name) && !force {
            return Err(TaosError::of(Code::TOPIC_SUBSCRIBED));
        }
        self.mnode.propose(taos_mnode::MnodeRequest::DropTopic {
            name: name.to_string(),
        })?;
        self.tmq.forget_topic(name);
        self.tmq.rebalance_all(self);
        Ok(Output::Affected(0))
    }

    pub async fn drop_consumer_group(
        self: &Arc<Self>,
        if_exists: bool,
        force: bool,
        group: &str,
        topic: &str,
    ) -> TaosResult<Output> {
        if !self.tmq.has_subscription(group, topic) {
            if if_exists {
                return Ok(Output::Affected(0));
            }
            return Err(TaosError::of(Code::SUBSCRIBE_NOT_EXIST));
        }
        self.tmq.drop_group(self, group, topic, force)?;
        Ok(Output::Affected(0))
    }

    /// Refuse to drop a database or super table that a topic reads.
    pub fn check_no_topic_on(&self, db: &str, stable: Option<&str>) -> TaosResult<()> {
        let used = self.mnode.read(|c| {
            c.topics.values().any(|t| {
                t.db == db
                    && match stable {
                        None => true,
                        Some(stb) => t.kind != TopicKind::Database && mentions_table(&t.sql, stb),
                    }
            })
        });
        if used {
            return Err(TaosError::of(Code::TOPIC_MUST_BE_DELETED));
        }
        Ok(())
    }
}

/// Whether the statement names `table` as its source.
fn mentions_table(sql: &str, table: &str) -> bool {
    match taos_sql::parse_one(sql) {
        Ok(Statement::CreateTopic { source, .. }) => match source {
            TopicSource::Database(_) => false,
            TopicSource::Stable { name, .. } => name.name == table,
            TopicSource::Query { query, .. } => match *query {
                Query::Select(sel) => {
                    matches!(&sel.from, Some(FromItem::Table { name, .. }) if name.name == table)
                }
                _ => false,
            },
        },
        _ => false,
    }
}

fn contains_aggregate(e: &Expr) -> bool {
    const AGG: &[&str] = &[
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "first",
        "last",
        "last_row",
        "spread",
        "stddev",
        "percentile",
        "apercentile",
        "top",
        "bottom",
        "twa",
        "irate",
        "elapsed",
        "mode",
        "unique",
        "sample",
        "tail",
        "histogram",
        "hyperloglog",
        "leastsquares",
        "diff",
        "derivative",
        "csum",
        "mavg",
        "statecount",
        "stateduration",
        "interp",
    ];
    match e {
        Expr::Function { name, args, .. } => {
            AGG.contains(&name.as_str()) || args.iter().any(contains_aggregate)
        }
        Expr::Binary { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } => contains_aggregate(expr),
        _ => false,
    }
}

/// Output type of a projected expression that is not a plain column: the type of the values it
/// produced (first non-null), so a block's schema matches its data.
pub fn infer_type(values: &[Value]) -> DataType {
    let widest = values
        .iter()
        .map(|v| match v {
            Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => s.len(),
            Value::VarBinary(b) | Value::Geometry(b) => b.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
        .max(1) as u32;
    match values.iter().find(|v| !v.is_null()) {
        Some(Value::Bool(_)) => DataType::Bool,
        Some(Value::TinyInt(_)) => DataType::TinyInt,
        Some(Value::SmallInt(_)) => DataType::SmallInt,
        Some(Value::Int(_)) => DataType::Int,
        Some(Value::BigInt(_)) => DataType::BigInt,
        Some(Value::UTinyInt(_)) => DataType::UTinyInt,
        Some(Value::USmallInt(_)) => DataType::USmallInt,
        Some(Value::UInt(_)) => DataType::UInt,
        Some(Value::UBigInt(_)) => DataType::UBigInt,
        Some(Value::Float(_)) => DataType::Float,
        Some(Value::Double(_)) => DataType::Double,
        Some(Value::Timestamp(_)) => DataType::Timestamp,
        Some(Value::NChar(_)) => DataType::NChar(widest),
        Some(Value::Json(_)) => DataType::Json,
        Some(Value::VarBinary(_)) => DataType::VarBinary(widest),
        Some(Value::Geometry(_)) => DataType::Geometry(widest),
        Some(Value::VarChar(_)) | Some(Value::Null) | None => DataType::VarChar(widest),
    }
}
