//! A DataFusion `TableProvider` over a [`TableSet`]: data columns, then tags, then `tbname`.
//!
//! Pushdown: filters on the primary timestamp become the scan's time range; filters that only
//! read tags and `tbname` are evaluated once per member table on a small batch of tag values
//! (TDengine's "tag filter first"), so unselected tables are never scanned; only projected
//! data columns are read. All filters are reported `Inexact`, so DataFusion re-applies them
//! and a filter we cannot use costs nothing but its evaluation.

use crate::catalog::{arrow_type, Catalog, ScanSpec, TableSet};
use async_trait::async_trait;
use common::{DataType, Precision, TaosError, Value};
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Field metadata keys that carry the TDengine type through DataFusion.
pub const META_TYPE: &str = "taos.type";

/// The TDengine type of a field, encoded in metadata (serde-free: `DataType::sql()` text).
pub fn field_with_type(name: &str, ty: DataType, p: Precision) -> Field {
    let mut md = HashMap::new();
    md.insert(META_TYPE.to_string(), ty.sql());
    Field::new(name, arrow_type(ty, p), true).with_metadata(md)
}

#[derive(Debug)]
pub struct TaosTable {
    pub set: TableSet,
    catalog: Arc<dyn Catalog>,
    schema: SchemaRef,
}

impl std::fmt::Debug for dyn Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

fn df_err(e: TaosError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The value of a timestamp-ish literal in the table's precision.
fn ts_literal(v: &ScalarValue, p: Precision) -> Option<i64> {
    let (raw, per_sec) = match v {
        ScalarValue::TimestampSecond(Some(x), _) => (*x, 1),
        ScalarValue::TimestampMillisecond(Some(x), _) => (*x, 1_000),
        ScalarValue::TimestampMicrosecond(Some(x), _) => (*x, 1_000_000),
        ScalarValue::TimestampNanosecond(Some(x), _) => (*x, 1_000_000_000),
        ScalarValue::Int64(Some(x)) => return Some(*x),
        _ => return None,
    };
    let target = p.per_second();
    Some(if target >= per_sec {
        raw.saturating_mul(target / per_sec)
    } else {
        raw.div_euclid(per_sec / target)
    })
}

/// `ts_literal` converts `v` without rounding (its unit is not finer than the precision, or
/// the value is a whole number of precision units).
fn exact_ts_literal(v: &ScalarValue, p: Precision) -> bool {
    let (raw, per_sec) = match v {
        ScalarValue::TimestampSecond(Some(x), _) => (*x, 1),
        ScalarValue::TimestampMillisecond(Some(x), _) => (*x, 1_000),
        ScalarValue::TimestampMicrosecond(Some(x), _) => (*x, 1_000_000),
        ScalarValue::TimestampNanosecond(Some(x), _) => (*x, 1_000_000_000),
        ScalarValue::Int64(Some(_)) => return true,
        _ => return false,
    };
    let target = p.per_second();
    target >= per_sec || raw % (per_sec / target) == 0
}

impl TaosTable {
    pub fn new(set: TableSet, catalog: Arc<dyn Catalog>) -> TaosTable {
        let p = set.precision;
        let mut fields: Vec<Field> = set
            .columns
            .iter()
            .map(|c| field_with_type(&c.name, c.ty, p))
            .collect();
        fields.extend(set.tags.iter().map(|t| field_with_type(&t.name, t.ty, p)));
        fields.push(field_with_type("tbname", DataType::VarChar(192), p));
        TaosTable {
            set,
            catalog,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    fn ts_name(&self) -> &str {
        self.set
            .columns
            .first()
            .map(|c| c.name.as_str())
            .unwrap_or("ts")
    }

    /// Every conjunct of `filters` is either a bound of the primary timestamp that
    /// `time_range` turns into an exact range, or reads only tags and `tbname` (then
    /// `select_members` applies it exactly): the scan range and member list alone then say
    /// which rows pass, and the filters need not be evaluated per row.
    pub(crate) fn filters_fully_pushed(&self, filters: &[Expr]) -> bool {
        let ts = self.ts_name();
        let p = self.set.precision;
        let tag_names: HashSet<&str> = self
            .set
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .chain(std::iter::once("tbname"))
            .collect();
        let exact_lit = |v: &ScalarValue| exact_ts_literal(v, p);
        let mut conj = Vec::new();
        for f in filters {
            split_and(f, &mut conj);
        }
        conj.into_iter().all(|e| {
            let cols = e.column_refs();
            if !cols.is_empty() && cols.iter().all(|c| tag_names.contains(c.name.as_str())) {
                return true;
            }
            match e {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    let bound = matches!(
                        op,
                        Operator::Gt
                            | Operator::GtEq
                            | Operator::Lt
                            | Operator::LtEq
                            | Operator::Eq
                    );
                    bound
                        && match (left.as_ref(), right.as_ref()) {
                            (Expr::Column(c), Expr::Literal(v, _))
                            | (Expr::Literal(v, _), Expr::Column(c)) => {
                                c.name == ts && exact_lit(v)
                            }
                            _ => false,
                        }
                }
                Expr::Between(b) => match (b.expr.as_ref(), b.low.as_ref(), b.high.as_ref()) {
                    (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) => {
                        !b.negated && c.name == ts && exact_lit(lo) && exact_lit(hi)
                    }
                    _ => false,
                },
                _ => false,
            }
        })
    }

    /// Narrow [start, end] with `ts <op> literal` conjuncts.
    pub(crate) fn time_range(&self, filters: &[Expr]) -> (i64, i64) {
        let (mut start, mut end) = (i64::MIN, i64::MAX);
        let ts = self.ts_name();
        let p = self.set.precision;
        let mut conj = Vec::new();
        for f in filters {
            split_and(f, &mut conj);
        }
        for e in conj {
            if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e {
                let (op, lit) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) if c.name == ts => (*op, v),
                    (Expr::Literal(v, _), Expr::Column(c)) if c.name == ts => match op.swap() {
                        Some(o) => (o, v),
                        None => continue,
                    },
                    _ => continue,
                };
                let Some(v) = ts_literal(lit, p) else {
                    continue;
                };
                match op {
                    Operator::Gt => start = start.max(v.saturating_add(1)),
                    Operator::GtEq => start = start.max(v),
                    Operator::Lt => end = end.min(v.saturating_sub(1)),
                    Operator::LtEq => end = end.min(v),
                    Operator::Eq => {
                        start = start.max(v);
                        end = end.min(v);
                    }
                    _ => {}
                }
            }
            if let Expr::Between(b) = e {
                if let (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _), false) =
                    (b.expr.as_ref(), b.low.as_ref(), b.high.as_ref(), b.negated)
                {
                    if c.name == ts {
                        if let (Some(lo), Some(hi)) = (ts_literal(lo, p), ts_literal(hi, p)) {
                            start = start.max(lo);
                            end = end.min(hi);
                        }
                    }
                }
            }
        }
        (start, end)
    }

    /// Members whose tags pass every tag-only filter.
    pub(crate) fn select_members(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> DFResult<Vec<usize>> {
        let n = self.set.members.len();
        let tag_names: HashSet<&str> = self
            .set
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .chain(std::iter::once("tbname"))
            .collect();
        let mut conj = Vec::new();
        for f in filters {
            split_and(f, &mut conj);
        }
        let tag_filters: Vec<&Expr> = conj
            .into_iter()
            .filter(|e| {
                let cols = e.column_refs();
                !cols.is_empty() && cols.iter().all(|c| tag_names.contains(c.name.as_str()))
            })
            .collect();
        if tag_filters.is_empty() || n == 0 {
            return Ok((0..n).collect());
        }
        // One row per member: its tags and name.
        let p = self.set.precision;
        let mut fields: Vec<Field> = self
            .set
            .tags
            .iter()
            .map(|t| field_with_type(&t.name, t.ty, p))
            .collect();
        fields.push(field_with_type("tbname", DataType::VarChar(192), p));
        let schema = Arc::new(Schema::new(fields));
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (i, t) in self.set.tags.iter().enumerate() {
            let vals: Vec<Value> = self
                .set
                .members
                .iter()
                .map(|m| m.tags.get(i).cloned().unwrap_or(Value::Null))
                .collect();
            columns.push(crate::result::values_to_array(&vals, t.ty, p).map_err(df_err)?);
        }
        let names: Vec<Value> = self
            .set
            .members
            .iter()
            .map(|m| Value::VarChar(m.name.clone()))
            .collect();
        columns.push(
            crate::result::values_to_array(&names, DataType::VarChar(192), p).map_err(df_err)?,
        );
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let dfschema = DFSchema::try_from(schema.as_ref().clone())?;
        let mut keep = vec![true; n];
        for f in tag_filters {
            let phys = state.create_physical_expr((*f).clone(), &dfschema)?;
            let out = phys.evaluate(&batch)?.into_array(n)?;
            let Some(mask) = out.as_any().downcast_ref::<BooleanArray>() else {
                continue;
            };
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= mask.is_valid(i) && mask.value(i);
            }
        }
        Ok((0..n).filter(|&i| keep[i]).collect())
    }
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
}

#[async_trait]
impl TableProvider for TaosTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let proj: &[usize] = projection.map(|p| p.as_slice()).unwrap_or(&all);
        let out_schema = Arc::new(self.schema.project(proj)?);
        let (start, end) = self.time_range(filters);
        let members = self.select_members(state, filters)?;
        let ncols = self.set.columns.len();
        let ntags = self.set.tags.len();
        // Data columns to read (the engine always returns the timestamp first).
        let data: Vec<usize> = proj
            .iter()
            .copied()
            .filter(|&i| i > 0 && i < ncols)
            .collect();
        let spec = ScanSpec {
            start,
            end,
            columns: data
                .iter()
                .map(|&i| self.set.columns[i].name.clone())
                .collect(),
        };
        let batches = if start > end || members.is_empty() {
            Vec::new()
        } else {
            self.catalog
                .scan(&self.set, &members, &spec)
                .await
                .map_err(df_err)?
        };
        let p = self.set.precision;
        let mut out = Vec::with_capacity(batches.len());
        for (m, b) in batches {
            let rows = b.num_rows();
            if rows == 0 {
                continue;
            }
            let member = &self.set.members[m];
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(proj.len());
            for &i in proj {
                let field = self.schema.field(i);
                let a: ArrayRef = if i == 0 {
                    b.column(0).clone()
                } else if i < ncols {
                    match data.iter().position(|&d| d == i) {
                        Some(k) if k + 1 < b.num_columns() => b.column(k + 1).clone(),
                        _ => new_null_array(field.data_type(), rows),
                    }
                } else if i < ncols + ntags {
                    let t = i - ncols;
                    let v = member.tags.get(t).cloned().unwrap_or(Value::Null);
                    crate::result::repeat_value(&v, self.set.tags[t].ty, p, rows).map_err(df_err)?
                } else {
                    crate::result::repeat_value(
                        &Value::VarChar(member.name.clone()),
                        DataType::VarChar(192),
                        p,
                        rows,
                    )
                    .map_err(df_err)?
                };
                arrays.push(a);
            }
            let batch = RecordBatch::try_new_with_options(
                out_schema.clone(),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )?;
            out.push(batch);
        }
        Ok(MemorySourceConfig::try_new_exec(&[out], out_schema, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::exact_ts_literal;
    use common::Precision;
    use datafusion::common::ScalarValue;

    #[test]
    fn time_literals_finer_than_the_precision_are_exact_only_when_whole() {
        let ms = Precision::Ms;
        assert!(exact_ts_literal(
            &ScalarValue::TimestampSecond(Some(5), None),
            ms
        ));
        assert!(exact_ts_literal(
            &ScalarValue::TimestampMillisecond(Some(5), None),
            ms
        ));
        assert!(exact_ts_literal(
            &ScalarValue::TimestampMicrosecond(Some(5000), None),
            ms
        ));
        assert!(!exact_ts_literal(
            &ScalarValue::TimestampMicrosecond(Some(5001), None),
            ms
        ));
        assert!(exact_ts_literal(&ScalarValue::Int64(Some(7)), ms));
        assert!(!exact_ts_literal(&ScalarValue::Int64(None), ms));
        assert!(!exact_ts_literal(&ScalarValue::Utf8(Some("x".into())), ms));
    }
}
