//! TDengine's SELECT executed by Apache DataFusion. This is the only crate that depends on
//! DataFusion (it dominates build time); the server reaches it through [`QueryEngine`] and
//! provides data through the [`catalog::Catalog`] trait.

pub use datafusion;

pub mod catalog;
pub mod fill;
pub mod functions;
pub mod interp;
pub mod lower;
pub mod provider;
pub mod result;
mod stats_agg;

use crate::catalog::Catalog;
use crate::lower::{LowerCtx, Lowerer, Registered};
use common::{Code, Field, Precision, SessionTz, TaosError, TaosResult, Value};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;
use taos_sql::ast::Query;

/// Rows of a result with their TDengine column types.
#[derive(Debug, Default)]
pub struct QueryOutput {
    pub fields: Vec<Field>,
    pub precision: Precision,
    pub rows: Vec<Vec<Value>>,
}

/// Who is asking: the session's database, zone and user.
pub struct QueryContext<'a> {
    pub db: Option<&'a str>,
    pub tz: SessionTz,
    pub user: &'a str,
}

pub struct QueryEngine {
    catalog: Arc<dyn Catalog>,
    config: SessionConfig,
    /// A session with DataFusion's and our functions registered, per (precision, zone):
    /// building one costs more than planning a small query, so it is built once and each
    /// query starts from a copy with an empty catalog of its own.
    templates: std::sync::Mutex<
        Vec<(
            (Precision, SessionTz),
            SessionState,
            Arc<functions::Registry>,
        )>,
    >,
}

/// DataFusion's errors as TDengine's: our own errors pass through (table not found, ...).
pub fn taos_error(e: DataFusionError) -> TaosError {
    match e {
        DataFusionError::External(inner) => match inner.downcast::<TaosError>() {
            Ok(t) => *t,
            Err(other) => TaosError::new(Code::INTERNAL, other.to_string()),
        },
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            taos_error(*inner)
        }
        DataFusionError::SchemaError(s, _) => TaosError::new(
            Code::PAR_INVALID_COLUMN,
            format!("Invalid column name: {s}"),
        ),
        DataFusionError::Plan(m) => plan_error(&m),
        DataFusionError::SQL(e, _) => TaosError::new(Code::TSC_INVALID_OPERATION, e.to_string()),
        DataFusionError::NotImplemented(m) => {
            TaosError::new(Code::PAR_NOT_SUPPORTED, format!("Not supported: {m}"))
        }
        DataFusionError::ArrowError(a, _) => {
            TaosError::new(Code::FUNC_FUNTION_ERROR, a.to_string())
        }
        other => TaosError::new(Code::TSC_INVALID_OPERATION, other.to_string()),
    }
}

/// Planner messages in TDengine's words where TDengine has them.
fn plan_error(m: &str) -> TaosError {
    if let Some(rest) = m.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next().unwrap_or(rest);
        return TaosError::new(
            Code::PAR_INVALID_FUNCTION_NAME,
            format!("Invalid function name: {name}"),
        );
    }
    if m.contains("must appear in the GROUP BY clause") {
        return TaosError::of(Code::PAR_GROUPBY_LACK_EXPRESSION);
    }
    if m.contains("No function matches") || m.contains("does not support") || m.contains("Coercion")
    {
        return TaosError::new(
            Code::FUNC_FUNTION_ERROR,
            format!(
                "Invalid function parameter: {}",
                m.lines().next().unwrap_or(m)
            ),
        );
    }
    TaosError::new(
        Code::TSC_INVALID_OPERATION,
        m.lines().next().unwrap_or(m).to_string(),
    )
}

impl QueryEngine {
    pub fn new(catalog: Arc<dyn Catalog>) -> QueryEngine {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let config = SessionConfig::new()
            .with_target_partitions(cores)
            .with_batch_size(8192)
            .with_information_schema(false);
        QueryEngine {
            catalog,
            config,
            templates: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A fresh context for one query: functions for `precision`/`tz`, no tables yet.
    pub(crate) fn context(&self, precision: Precision, tz: SessionTz) -> SessionContext {
        let key = (precision, tz);
        let (template, ours) = {
            let mut t = self.templates.lock().unwrap_or_else(|p| p.into_inner());
            match t.iter().find(|(k, _, _)| *k == key) {
                Some((_, s, r)) => (s.clone(), r.clone()),
                None => {
                    let ctx = SessionContext::new_with_config(self.config.clone());
                    let ours = Arc::new(functions::Registry::new(precision, tz));
                    ours.register(&ctx);
                    let s = ctx.state();
                    t.push((key, s.clone(), ours.clone()));
                    (s, ours)
                }
            }
        };
        // The catalog list is shared by clones of a state: give each query its own.
        let state = SessionStateBuilder::new_from_existing(template)
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .with_config(
                self.config
                    .clone()
                    .with_create_default_catalog_and_schema(true),
            )
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Rebuilding a state re-registers functions in hash order, which can let a built-in
        // with an alias equal to one of our names win: put ours back on top.
        ours.register(&ctx);
        ctx
    }

    /// Plan and run one SELECT (or UNION chain).
    pub async fn select(&self, q: &Query, qc: &QueryContext<'_>) -> TaosResult<QueryOutput> {
        if let Some(out) = self.last_rows(q, qc).await? {
            return Ok(out);
        }
        if let Some(out) = self.stats_aggregate(q, qc).await? {
            return Ok(out);
        }
        let now_ns = Precision::Ns.to_nanos(Precision::Ns.now());
        let lcx = LowerCtx {
            catalog: self.catalog.as_ref(),
            db: qc.db,
            tz: qc.tz,
            user: qc.user,
            now_ns,
        };
        let lowered = Lowerer::new(&lcx).lower(q)?;
        tracing::debug!(sql = %lowered.sql, "lowered");
        let ctx = self.context(lowered.precision, qc.tz);
        for (name, src) in lowered.sources {
            let provider: Arc<dyn datafusion::datasource::TableProvider> = match src {
                Registered::Table(set) => {
                    Arc::new(provider::TaosTable::new(set, self.catalog.clone()))
                }
                Registered::System { fields, rows } => system_table(&fields, rows)?,
            };
            ctx.register_table(name.as_str(), provider)
                .map_err(taos_error)?;
        }
        let p = lowered.precision;
        let QueryOutput {
            mut fields,
            mut rows,
            ..
        } = self.run_sql(&ctx, &lowered.sql, p).await?;
        if let Some(plan) = &lowered.fill {
            rows = fill::apply(plan, rows)?;
            fields.truncate(plan.visible);
            coerce_rows(&fields, &mut rows);
        }
        if let Some(plan) = &lowered.interp {
            fields = interp::fields(plan, &fields);
            rows = interp::apply(plan, rows)?;
            coerce_rows(&fields, &mut rows);
        }
        Ok(QueryOutput {
            fields,
            precision: p,
            rows,
        })
    }
}

impl QueryEngine {
    /// Run DataFusion SQL on `ctx` and convert the result to TDengine rows and types.
    async fn run_sql(
        &self,
        ctx: &SessionContext,
        sql: &str,
        p: Precision,
    ) -> TaosResult<QueryOutput> {
        let df = ctx.sql(sql).await.map_err(taos_error)?;
        let batches = df.collect().await.map_err(taos_error)?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => {
                // No rows: plan once more for the schema only.
                let df = ctx.sql(sql).await.map_err(taos_error)?;
                Arc::new(df.schema().as_arrow().clone())
            }
        };
        let mut fields = Vec::with_capacity(schema.fields().len());
        for (i, f) in schema.fields().iter().enumerate() {
            let ty = match batches.first() {
                Some(_) => widest(&batches, i, f),
                None => result::taos_type(
                    f,
                    &datafusion::arrow::array::new_null_array(f.data_type(), 0),
                ),
            };
            fields.push(Field::new(f.name(), ty));
        }
        let mut rows = Vec::new();
        for b in &batches {
            let cols: Vec<Vec<Value>> = (0..b.num_columns())
                .map(|i| result::column_values(b.column(i), fields[i].ty, p))
                .collect::<TaosResult<_>>()?;
            for r in 0..b.num_rows() {
                rows.push(cols.iter().map(|c| c[r].clone()).collect());
            }
        }
        Ok(QueryOutput {
            fields,
            precision: p,
            rows,
        })
    }
}

/// Values made after execution (FILL constants, interpolations) in their column's type.
fn coerce_rows(fields: &[Field], rows: &mut [Vec<Value>]) {
    for row in rows.iter_mut() {
        for (v, f) in row.iter_mut().zip(fields) {
            if !v.is_null() {
                if let Ok(c) = std::mem::take(v).coerce(f.ty, &f.name) {
                    *v = c;
                }
            }
        }
    }
}

/// What a LAST_ROW-only query outputs per group.
enum LastItem {
    Col(usize),
    Tag(usize),
    Tbname,
}

impl QueryEngine {
    /// `SELECT last_row(..), [tags, tbname] FROM t [PARTITION BY tbname|tags]` with no other
    /// clause: answered from each table's newest row (the vnodes' last-row cache) instead of a
    /// scan. Per group, the newest row wins and its table supplies tags and tbname, which is
    /// TDengine's selector semantics. `None` means "plan it normally".
    async fn last_rows(&self, q: &Query, qc: &QueryContext<'_>) -> TaosResult<Option<QueryOutput>> {
        use taos_sql::ast::{Expr, FromItem, SelectItem};
        let Query::Select(s) = q else { return Ok(None) };
        if s.where_.is_some()
            || s.window.is_some()
            || !s.group_by.is_empty()
            || s.having.is_some()
            || !s.order_by.is_empty()
            || s.limit.is_some()
            || s.slimit.is_some()
            || s.distinct
            || s.tags
            || s.fill.is_some()
            || s.range.is_some()
        {
            return Ok(None);
        }
        let Some(FromItem::Table { name, .. }) = &s.from else {
            return Ok(None);
        };
        let Some(db) = name.db.as_deref().or(qc.db) else {
            return Ok(None);
        };
        if db == "information_schema" || db == "performance_schema" {
            return Ok(None);
        }
        let Ok(set) = self.catalog.table_set(db, &name.name) else {
            return Ok(None);
        };
        let col_of = |n: &str| -> Option<LastItem> {
            if n == "tbname" {
                Some(LastItem::Tbname)
            } else {
                set.tags.iter().position(|t| t.name == n).map(LastItem::Tag)
            }
        };
        let mut keys = Vec::new();
        for k in &s.partition_by {
            match k {
                Expr::Column { name, table: None } => match col_of(name) {
                    Some(i) => keys.push(i),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
        let mut items = Vec::new();
        let mut fields = Vec::new();
        for it in &s.projection {
            let SelectItem::Expr { expr, alias } = it else {
                return Ok(None);
            };
            match expr {
                Expr::Function {
                    name: f,
                    args,
                    distinct: false,
                } if f == "last_row" && args.len() == 1 => match &args[0] {
                    Expr::Star => {
                        for (i, c) in set.columns.iter().enumerate() {
                            items.push(LastItem::Col(i));
                            fields.push(Field::new(format!("last_row({})", c.name), c.ty));
                        }
                    }
                    Expr::Column {
                        name: c,
                        table: None,
                    } => {
                        let Some(i) = set.columns.iter().position(|x| x.name == *c) else {
                            return Ok(None);
                        };
                        items.push(LastItem::Col(i));
                        fields.push(Field::new(
                            alias.clone().unwrap_or_else(|| format!("last_row({c})")),
                            set.columns[i].ty,
                        ));
                    }
                    _ => return Ok(None),
                },
                Expr::Column {
                    name: c,
                    table: None,
                } => {
                    let Some(item) = col_of(c) else {
                        return Ok(None);
                    };
                    let ty = match &item {
                        LastItem::Tag(i) => set.tags[*i].ty,
                        _ => common::DataType::VarChar(192),
                    };
                    items.push(item);
                    fields.push(Field::new(alias.clone().unwrap_or_else(|| c.clone()), ty));
                }
                _ => return Ok(None),
            }
        }
        let members: Vec<usize> = (0..set.members.len()).collect();
        let Some(rows) = self.catalog.last_rows(&set, &members).await? else {
            return Ok(None);
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let value_of = |item: &LastItem, m: usize, row: &[Value]| -> Value {
            let member = &set.members[m];
            match item {
                LastItem::Col(i) => row.get(*i).cloned().unwrap_or(Value::Null),
                LastItem::Tag(i) => member.tags.get(*i).cloned().unwrap_or(Value::Null),
                LastItem::Tbname => Value::VarChar(member.name.clone()),
            }
        };
        // Newest row per group.
        let mut groups: std::collections::BTreeMap<String, (i64, usize, Vec<Value>)> =
            std::collections::BTreeMap::new();
        for (m, row) in rows {
            let key: String = keys
                .iter()
                .map(|k| value_of(k, m, &row).render())
                .collect::<Vec<_>>()
                .join("\u{1}");
            let ts = row.first().and_then(|v| v.as_i64()).unwrap_or(i64::MIN);
            match groups.get(&key) {
                Some((t, _, _)) if *t >= ts => {}
                _ => {
                    groups.insert(key, (ts, m, row));
                }
            }
        }
        let out_rows = groups
            .into_values()
            .map(|(_, m, row)| items.iter().map(|it| value_of(it, m, &row)).collect())
            .collect();
        Ok(Some(QueryOutput {
            fields,
            precision: set.precision,
            rows: out_rows,
        }))
    }
}

/// A column's TDengine type across all batches (string lengths are the longest seen).
fn widest(
    batches: &[RecordBatch],
    i: usize,
    f: &datafusion::arrow::datatypes::Field,
) -> common::DataType {
    use common::DataType as T;
    let mut ty = result::taos_type(f, batches[0].column(i));
    for b in &batches[1..] {
        match (ty, result::taos_type(f, b.column(i))) {
            (T::VarChar(a), T::VarChar(c)) => ty = T::VarChar(a.max(c)),
            (T::VarBinary(a), T::VarBinary(c)) => ty = T::VarBinary(a.max(c)),
            _ => {}
        }
    }
    ty
}

fn system_table(
    fields: &[Field],
    rows: Vec<Vec<Value>>,
) -> TaosResult<Arc<dyn datafusion::datasource::TableProvider>> {
    let p = Precision::Ms;
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| provider::field_with_type(&f.name, f.ty, p))
            .collect::<Vec<_>>(),
    ));
    let mut cols = Vec::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        let vals: Vec<Value> = rows
            .iter()
            .map(|r| r.get(i).cloned().unwrap_or(Value::Null))
            .collect();
        cols.push(result::values_to_array(&vals, f.ty, p)?);
    }
    let batch = RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| TaosError::internal(e.to_string()))?;
    let t = MemTable::try_new(schema, vec![vec![batch]]).map_err(taos_error)?;
    Ok(Arc::new(t))
}
