//! `SELECT count(*) | count(c) | min(c) | max(c) | sum(c), ... FROM t [WHERE time range and tag
//! filters] [PARTITION BY / GROUP BY tbname or tags] [ORDER BY outputs]` answered from
//! per-table partial aggregates that the storage engine computes from its block statistics
//! (`Catalog::aggregate`), instead of scanning every row into DataFusion.
//!
//! Why it is exact: the WHERE clause is first planned by DataFusion against a probe table
//! that only records the filters pushed to it; the fast path is taken only when every filter
//! reached the scan and each is a bound of the primary timestamp or reads only tags and
//! `tbname`, so the time range and the member list say exactly which rows pass. The partial
//! aggregates (one row per table: row count, and per column count, min, max, sum) are then
//! combined by DataFusion with `sum` / `min` / `max`, under the same output names and with
//! the same Arrow types the normal plan has (`sum` of an INT partial is BIGINT like `sum` of
//! the INT column). Anything else — other functions, expressions, windows, LIMIT, a query
//! with no rows at all (whose empty-input semantics the normal plan owns) — returns `None`
//! and is planned normally.

use crate::catalog::{AggColumnSpec, AggSpec, AggSum, MemberAgg, TableSet};
use crate::lower::{expr_name, q, LowerCtx, Lowered, Lowerer, Registered};
use crate::provider::{field_with_type, TaosTable};
use crate::{taos_error, QueryContext, QueryEngine, QueryOutput};
use async_trait::async_trait;
use common::{DataType, Precision, SessionTz, TaosError, TaosResult, Value};
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType as A, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::Result as DFResult;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;
use std::sync::Arc;
use taos_sql::ast::{Expr, FromItem, Literal, Query, Select, SelectItem};

/// One output column of the fast path.
enum Item {
    /// `count(*)` (or of the primary timestamp): the row count.
    Rows,
    Count(usize),
    Min(usize),
    Max(usize),
    Sum(usize),
    /// A grouping key or, grouped by tbname, a tag (constant per group).
    Key(String),
}

/// A query of the supported shape: its output items, grouping keys and ORDER BY.
struct Shape {
    items: Vec<(Item, String)>,
    keys: Vec<String>,
    by_table: bool,
    /// Columns aggregated, with what is wanted of each.
    columns: Vec<AggColumnSpec>,
    order_by: Vec<String>,
}

const SOURCE: &str = "__stats";

impl QueryEngine {
    /// Answer `q` from partial aggregates, or `None` to plan it normally.
    pub(crate) async fn stats_aggregate(
        &self,
        q: &Query,
        qc: &QueryContext<'_>,
    ) -> TaosResult<Option<QueryOutput>> {
        let Query::Select(s) = q else { return Ok(None) };
        let Some((set, shape)) = self.shape(s, qc) else {
            return Ok(None);
        };
        let Some((start, end, members)) = self.probe(s, qc).await? else {
            return Ok(None);
        };
        if start > end || members.is_empty() {
            return Ok(None);
        }
        let spec = AggSpec {
            start,
            end,
            columns: shape.columns.clone(),
        };
        let Some(parts) = self.catalog.aggregate(&set, &members, &spec).await? else {
            return Ok(None);
        };
        if parts.is_empty() {
            return Ok(None);
        }
        let Some(batch) = partials(&set, &shape, &parts)? else {
            return Ok(None);
        };
        let ctx = self.context(set.precision, SessionTz::Utc);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(taos_error)?;
        ctx.register_table(SOURCE, Arc::new(table))
            .map_err(taos_error)?;
        let sql = shape.sql();
        tracing::debug!(%sql, members = parts.len(), "aggregate from block statistics");
        Ok(Some(self.run_sql(&ctx, &sql, set.precision).await?))
    }

    /// Check the query's shape and resolve its table.
    fn shape(&self, s: &Select, qc: &QueryContext<'_>) -> Option<(TableSet, Shape)> {
        if s.distinct
            || s.tags
            || s.window.is_some()
            || s.having.is_some()
            || s.slimit.is_some()
            || s.limit.is_some()
            || s.range.is_some()
            || s.every.is_some()
            || s.fill.is_some()
            || (!s.partition_by.is_empty() && !s.group_by.is_empty())
        {
            return None;
        }
        let Some(FromItem::Table { name, alias: None }) = &s.from else {
            return None;
        };
        let db = name.db.as_deref().or(qc.db)?;
        if db == "information_schema" || db == "performance_schema" {
            return None;
        }
        // Cheap syntactic test before resolving the table (which lists every child table).
        let plausible = s.projection.iter().all(|it| {
            matches!(
                it,
                SelectItem::Expr {
                    expr: Expr::Column { table: None, .. },
                    ..
                }
            ) || matches!(it, SelectItem::Expr { expr: Expr::Function { name, .. }, .. }
                    if matches!(name.as_str(), "count" | "min" | "max" | "sum"))
        });
        if !plausible {
            return None;
        }
        let set = self.catalog.table_set(db, &name.name).ok()?;
        let is_tag = |n: &str| n == "tbname" || set.tags.iter().any(|t| t.name == n);
        let mut keys = Vec::new();
        for k in s.partition_by.iter().chain(&s.group_by) {
            match k {
                Expr::Column { table: None, name } if is_tag(name) => keys.push(name.clone()),
                _ => return None,
            }
        }
        let by_table = keys.iter().any(|k| k == "tbname");
        let mut columns: Vec<AggColumnSpec> = Vec::new();
        let mut items = Vec::new();
        for it in &s.projection {
            let SelectItem::Expr { expr, alias } = it else {
                return None;
            };
            let out = alias.clone().unwrap_or_else(|| expr_name(expr));
            let item = match expr {
                Expr::Column { table: None, name }
                    if keys.contains(name) || (by_table && is_tag(name)) =>
                {
                    Item::Key(name.clone())
                }
                Expr::Function {
                    name: f,
                    args,
                    distinct: false,
                } if args.len() == 1 => {
                    let col = match &args[0] {
                        Expr::Star if f == "count" => None,
                        Expr::Column { table: None, name } => {
                            Some(set.columns.iter().position(|c| c.name == *name)?)
                        }
                        _ => return None,
                    };
                    match (f.as_str(), col) {
                        ("count", None) | ("count", Some(0)) => Item::Rows,
                        (f, Some(i)) if i > 0 => {
                            let numeric = set.columns[i].ty.is_numeric();
                            let (min_max, sum) = match f {
                                "count" => (false, false),
                                "min" | "max" if numeric => (true, false),
                                "sum" if numeric => (false, true),
                                _ => return None,
                            };
                            let c = &set.columns[i].name;
                            let j = match columns.iter().position(|x| x.name == *c) {
                                Some(j) => j,
                                None => {
                                    columns.push(AggColumnSpec {
                                        name: c.clone(),
                                        min_max: false,
                                        sum: false,
                                    });
                                    columns.len() - 1
                                }
                            };
                            columns[j].min_max |= min_max;
                            columns[j].sum |= sum;
                            match f {
                                "count" => Item::Count(j),
                                "min" => Item::Min(j),
                                "max" => Item::Max(j),
                                _ => Item::Sum(j),
                            }
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            };
            items.push((item, out));
        }
        if items.is_empty() || !items.iter().any(|(i, _)| !matches!(i, Item::Key(_))) {
            return None;
        }
        let mut order_by = Vec::new();
        for o in &s.order_by {
            let e = match &o.expr {
                Expr::Column { table: None, name } if items.iter().any(|(_, a)| a == name) => {
                    q(name)
                }
                Expr::Column { table: None, name } if keys.contains(name) => q(name),
                Expr::Literal(Literal::Int(i)) if *i >= 1 && (*i as usize) <= items.len() => {
                    i.to_string()
                }
                _ => return None,
            };
            let nulls = match o.nulls_first {
                Some(true) => " NULLS FIRST",
                Some(false) => " NULLS LAST",
                None => "",
            };
            order_by.push(format!("{e} {}{nulls}", if o.asc { "ASC" } else { "DESC" }));
        }
        Some((
            set,
            Shape {
                items,
                keys,
                by_table,
                columns,
                order_by,
            },
        ))
    }

    /// Plan `SELECT tbname FROM t WHERE <where>` against a probe table: the time range and the
    /// members that pass, or `None` when some filter needs evaluating per row.
    async fn probe(
        &self,
        s: &Select,
        qc: &QueryContext<'_>,
    ) -> TaosResult<Option<(i64, i64, Vec<usize>)>> {
        let mut p = s.clone();
        p.projection = vec![SelectItem::Expr {
            expr: Expr::col("tbname"),
            alias: None,
        }];
        p.partition_by.clear();
        p.group_by.clear();
        p.order_by.clear();
        let lcx = LowerCtx {
            catalog: self.catalog.as_ref(),
            db: qc.db,
            tz: qc.tz,
            user: qc.user,
            now_ns: Precision::Ns.to_nanos(Precision::Ns.now()),
        };
        let Lowered { sql, sources, .. } = Lowerer::new(&lcx).lower(&Query::Select(Box::new(p)))?;
        let ctx = self.context(lcx_precision(&sources), qc.tz);
        let mut probe = None;
        for (name, src) in sources {
            let Registered::Table(set) = src else {
                return Ok(None);
            };
            let t = Arc::new(Probe {
                table: TaosTable::new(set, self.catalog.clone()),
                seen: Mutex::new(None),
            });
            ctx.register_table(name.as_str(), t.clone())
                .map_err(taos_error)?;
            if probe.replace(t).is_some() {
                return Ok(None);
            }
        }
        let Some(probe) = probe else { return Ok(None) };
        let df = ctx.sql(&sql).await.map_err(taos_error)?;
        let plan = df.into_optimized_plan().map_err(taos_error)?;
        let filtered = plan
            .exists(|n| Ok(matches!(n, LogicalPlan::Filter(_))))
            .map_err(taos_error)?;
        if filtered {
            return Ok(None);
        }
        ctx.state()
            .create_physical_plan(&plan)
            .await
            .map_err(taos_error)?;
        let seen = probe.seen.lock().take();
        Ok(seen.flatten())
    }
}

fn lcx_precision(sources: &[(String, Registered)]) -> Precision {
    sources
        .iter()
        .find_map(|(_, s)| match s {
            Registered::Table(t) => Some(t.precision),
            _ => None,
        })
        .unwrap_or(Precision::Ms)
}

impl Shape {
    /// The DataFusion SQL that combines the partials.
    fn sql(&self) -> String {
        let cols: Vec<String> = self
            .items
            .iter()
            .map(|(item, name)| {
                let e = match item {
                    Item::Rows => format!("sum({})", q("__rows")),
                    Item::Count(j) => format!("sum({})", q(&format!("__cnt{j}"))),
                    Item::Min(j) => format!("min({})", q(&format!("__min{j}"))),
                    Item::Max(j) => format!("max({})", q(&format!("__max{j}"))),
                    Item::Sum(j) => format!("sum({})", q(&format!("__sum{j}"))),
                    Item::Key(k) if self.keys.contains(k) || !self.by_table => q(k),
                    Item::Key(k) => format!("first_value({})", q(k)),
                };
                format!("{e} AS {}", q(name))
            })
            .collect();
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), q(SOURCE));
        if !self.keys.is_empty() {
            let keys: Vec<String> = self.keys.iter().map(|k| q(k)).collect();
            sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        }
        if !self.order_by.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", self.order_by.join(", ")));
        }
        sql
    }
}

/// One row per member with rows: `__rows`, per column `__cnt/__min/__max/__sum<j>`, the tags
/// and `tbname`. `None` if a sum does not fit the type the normal plan would give it.
fn partials(
    set: &TableSet,
    shape: &Shape,
    parts: &[(usize, MemberAgg)],
) -> TaosResult<Option<RecordBatch>> {
    let p = set.precision;
    let mut fields = vec![Field::new("__rows", A::Int64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        parts.iter().map(|(_, m)| m.rows as i64),
    ))];
    for (j, spec) in shape.columns.iter().enumerate() {
        let ty = set
            .columns
            .iter()
            .find(|c| c.name == spec.name)
            .map(|c| c.ty)
            .ok_or_else(|| TaosError::internal(format!("column {} vanished", spec.name)))?;
        let col = |m: &MemberAgg| m.cols.get(j).cloned().unwrap_or_default();
        fields.push(Field::new(format!("__cnt{j}"), A::Int64, false));
        arrays.push(Arc::new(Int64Array::from_iter_values(
            parts.iter().map(|(_, m)| col(m).count as i64),
        )));
        if spec.min_max {
            for (tag, pick) in [("min", true), ("max", false)] {
                let vals: Vec<Value> = parts
                    .iter()
                    .map(|(_, m)| {
                        let c = col(m);
                        (if pick { c.min } else { c.max }).unwrap_or(Value::Null)
                    })
                    .collect();
                fields.push(field_with_type(&format!("__{tag}{j}"), ty, p));
                arrays.push(crate::result::values_to_array(&vals, ty, p)?);
            }
        }
        if spec.sum {
            let sums: Vec<Option<AggSum>> = parts.iter().map(|(_, m)| col(m).sum).collect();
            let (field, array): (A, ArrayRef) = if matches!(ty, DataType::Float | DataType::Double)
            {
                let v: Float64Array = sums
                    .iter()
                    .map(|s| match s {
                        Some(AggSum::Float(f)) => Some(*f),
                        _ => None,
                    })
                    .collect();
                (A::Float64, Arc::new(v))
            } else if matches!(
                ty,
                DataType::UTinyInt | DataType::USmallInt | DataType::UInt | DataType::UBigInt
            ) {
                let mut v = Vec::with_capacity(sums.len());
                for s in &sums {
                    v.push(match s {
                        Some(AggSum::Int(i)) => match u64::try_from(*i) {
                            Ok(x) => Some(x),
                            Err(_) => return Ok(None),
                        },
                        _ => None,
                    });
                }
                (A::UInt64, Arc::new(UInt64Array::from(v)))
            } else {
                let mut v = Vec::with_capacity(sums.len());
                for s in &sums {
                    v.push(match s {
                        Some(AggSum::Int(i)) => match i64::try_from(*i) {
                            Ok(x) => Some(x),
                            Err(_) => return Ok(None),
                        },
                        _ => None,
                    });
                }
                (A::Int64, Arc::new(Int64Array::from(v)))
            };
            fields.push(Field::new(format!("__sum{j}"), field, true));
            arrays.push(array);
        }
    }
    for (t, tag) in set.tags.iter().enumerate() {
        let vals: Vec<Value> = parts
            .iter()
            .map(|(m, _)| set.members[*m].tags.get(t).cloned().unwrap_or(Value::Null))
            .collect();
        fields.push(field_with_type(&tag.name, tag.ty, p));
        arrays.push(crate::result::values_to_array(&vals, tag.ty, p)?);
    }
    let names: Vec<Value> = parts
        .iter()
        .map(|(m, _)| Value::VarChar(set.members[*m].name.clone()))
        .collect();
    fields.push(field_with_type("tbname", DataType::VarChar(192), p));
    arrays.push(crate::result::values_to_array(
        &names,
        DataType::VarChar(192),
        p,
    )?);
    let schema = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, arrays)
        .map(Some)
        .map_err(|e| TaosError::internal(e.to_string()))
}

/// A table that plans like [`TaosTable`] but reads nothing: it records the time range and
/// members its pushed filters select, if they select rows exactly (`None` otherwise).
#[derive(Debug)]
struct Probe {
    table: TaosTable,
    seen: Mutex<Option<Option<(i64, i64, Vec<usize>)>>>,
}

#[async_trait]
impl TableProvider for Probe {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Exact, so that no filter stays above the scan to be evaluated on rows we never read.
    fn supports_filters_pushdown(
        &self,
        filters: &[&DfExpr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[DfExpr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let found = if self.table.filters_fully_pushed(filters) {
            let (start, end) = self.table.time_range(filters);
            Some((start, end, self.table.select_members(state, filters)?))
        } else {
            None
        };
        // Two scans of the table (a self-join, a subquery): not this fast path's shape.
        let mut seen = self.seen.lock();
        *seen = if seen.is_some() {
            Some(None)
        } else {
            Some(found)
        };
        let full = self.table.schema();
        let schema = match projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        Ok(MemorySourceConfig::try_new_exec(&[vec![]], schema, None)?)
    }
}
