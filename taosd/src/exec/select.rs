//! SELECT for this stage: scans with the time range pushed down to the engine, row filters,
//! plain aggregates with GROUP BY / PARTITION BY, ORDER BY, LIMIT/OFFSET, constant SELECTs and
//! the system tables. The query-language issue replaces the scan-and-evaluate core with
//! DataFusion plans; the resolution and naming rules here carry over.

use crate::dnode::Dnode;
use crate::exec::eval::{compare, eval, truth, EvalCtx};
use crate::exec::{Output, ResultRows, Session};
use crate::vnode::meta::{TableKind, TableMeta};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType as ArrowType;
use common::{Code, DataType, Field, Precision, TaosError, TaosResult, Value};
use std::collections::HashMap;
use std::sync::Arc;
use taos_sql::ast::{BinaryOp, Expr, FromItem, Literal, OrderItem, Query, Select, SelectItem};

/// A time range `[start, end]` and whether the filter was nothing but that range.
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
    pub exact: bool,
}

/// Extract the primary-timestamp bounds from the AND-conjuncts of a WHERE clause.
pub fn time_range(w: &Expr, ts_name: &str, ctx: &EvalCtx) -> TaosResult<TimeRange> {
    let mut r = TimeRange { start: i64::MIN, end: i64::MAX, exact: true };
    fn is_ts(e: &Expr, ts: &str) -> bool {
        matches!(e, Expr::Column { name, .. } if name == ts || name == "_rowts" || name == "_c0")
    }
    fn bound(e: &Expr, ctx: &EvalCtx) -> Option<i64> {
        let v = match e {
            Expr::Literal(Literal::Str(s)) => Value::Timestamp(common::time::parse_timestamp(s, ctx.precision, ctx.tz).ok()?),
            other => eval(other, ctx).ok()?,
        };
        match v {
            Value::VarChar(s) => common::time::parse_timestamp(&s, ctx.precision, ctx.tz).ok(),
            Value::Float(_) | Value::Double(_) => v.as_f64().map(|f| f as i64),
            other => other.as_i64(),
        }
    }
    fn walk(e: &Expr, ts: &str, ctx: &EvalCtx, r: &mut TimeRange) {
        match e {
            Expr::Binary { op: BinaryOp::And, left, right } => {
                walk(left, ts, ctx, r);
                walk(right, ts, ctx, r);
            }
            Expr::Binary { op, left, right } if is_ts(left, ts) || is_ts(right, ts) => {
                let (op, other) = if is_ts(left, ts) { (*op, right) } else { (flip(*op), left) };
                let Some(b) = bound(other, ctx) else {
                    r.exact = false;
                    return;
                };
                match op {
                    BinaryOp::Gt => r.start = r.start.max(b.saturating_add(1)),
                    BinaryOp::GtEq => r.start = r.start.max(b),
                    BinaryOp::Lt => r.end = r.end.min(b.saturating_sub(1)),
                    BinaryOp::LtEq => r.end = r.end.min(b),
                    BinaryOp::Eq => {
                        r.start = r.start.max(b);
                        r.end = r.end.min(b);
                    }
                    _ => r.exact = false,
                }
            }
            Expr::Between { expr, low, high, negated: false } if is_ts(expr, ts) => match (bound(low, ctx), bound(high, ctx)) {
                (Some(a), Some(b)) => {
                    r.start = r.start.max(a);
                    r.end = r.end.min(b);
                }
                _ => r.exact = false,
            },
            _ => r.exact = false,
        }
    }
    walk(w, ts_name, ctx, &mut r);
    Ok(r)
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        o => o,
    }
}

/// A piece of a FROM source: ready rows (system tables, constants), or one table's scanned
/// Arrow batch plus the values of its tags and tbname, converted only when it is consumed.
pub enum Chunk {
    Rows(Vec<Vec<Value>>),
    Batch { batch: arrow_array::RecordBatch, types: Vec<DataType>, ncols: usize, extra: Vec<Value> },
}

/// Rows of a FROM source with named, typed columns, consumed chunk by chunk so a scan never
/// holds more than one table's rows as values.
pub struct Source {
    pub fields: Vec<Field>,
    pub index: HashMap<String, usize>,
    pub chunks: Vec<Chunk>,
    pub precision: Precision,
    /// Columns `*` expands to (data columns, plus tags for a super table).
    pub star: Vec<usize>,
}

impl Source {
    pub fn new(fields: Vec<Field>, rows: Vec<Vec<Value>>, precision: Precision) -> Source {
        let index = fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
        let star = (0..fields.len()).collect();
        Source { fields, index, chunks: vec![Chunk::Rows(rows)], precision, star }
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied().or_else(|| match name {
            "_rowts" | "_c0" => Some(0),
            _ => None,
        })
    }

    /// Call `f` with every row, in chunk order.
    fn for_each_row(&self, mut f: impl FnMut(&[Value]) -> TaosResult<()>) -> TaosResult<()> {
        let width = self.fields.len();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Rows(rows) => {
                    for r in rows {
                        f(r)?;
                    }
                }
                Chunk::Batch { batch, types, ncols, extra } => {
                    let n = (*ncols).min(batch.num_columns());
                    let cols: Vec<Vec<Value>> =
                        (0..n).map(|i| arrow_values(batch.column(i), types[i])).collect::<TaosResult<_>>()?;
                    let mut row = Vec::with_capacity(width);
                    for r in 0..batch.num_rows() {
                        row.clear();
                        row.extend(cols.iter().map(|c| c[r].clone()));
                        row.resize(*ncols, Value::Null);
                        row.extend(extra.iter().cloned());
                        row.resize(width, Value::Null);
                        f(&row)?;
                    }
                }
            }
        }
        Ok(())
    }
}

const AGGS: &[&str] = &["count", "sum", "avg", "min", "max", "first", "last", "last_row", "spread", "stddev"];

fn is_agg(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args, .. } => AGGS.contains(&name.as_str()) || args.iter().any(is_agg),
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } => is_agg(expr),
        Expr::Binary { left, right, .. } => is_agg(left) || is_agg(right),
        Expr::Case { operand, whens, else_ } => {
            operand.as_deref().map(is_agg).unwrap_or(false)
                || whens.iter().any(|(a, b)| is_agg(a) || is_agg(b))
                || else_.as_deref().map(is_agg).unwrap_or(false)
        }
        _ => false,
    }
}

/// The column name TDengine shows for an expression: its text.
pub fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Column { table: Some(t), name } => format!("{t}.{name}"),
        Expr::Column { name, .. } => name.clone(),
        Expr::Star => "*".into(),
        Expr::Literal(Literal::Str(s)) => format!("'{s}'"),
        Expr::Literal(Literal::Null) => "null".into(),
        Expr::Literal(Literal::Bool(b)) => b.to_string(),
        Expr::Literal(Literal::Int(i)) => i.to_string(),
        Expr::Literal(Literal::UInt(i)) => i.to_string(),
        Expr::Literal(Literal::Float(f)) => f.to_string(),
        Expr::Literal(Literal::Duration(d)) => format!("{}{}", d.value, d.unit),
        Expr::Literal(Literal::Timestamp(s)) => format!("timestamp '{s}'"),
        Expr::Function { name, args, distinct } => format!(
            "{name}({}{})",
            if *distinct { "distinct " } else { "" },
            args.iter().map(expr_name).collect::<Vec<_>>().join(",")
        ),
        Expr::Unary { op, expr } => match op {
            taos_sql::ast::UnaryOp::Neg => format!("-{}", expr_name(expr)),
            taos_sql::ast::UnaryOp::Not => format!("not {}", expr_name(expr)),
        },
        Expr::Binary { op, left, right } => {
            let o = match op {
                BinaryOp::Add => "+",
                BinaryOp::Sub => "-",
                BinaryOp::Mul => "*",
                BinaryOp::Div => "/",
                BinaryOp::Mod => "%",
                BinaryOp::Eq => "=",
                BinaryOp::NotEq => "<>",
                BinaryOp::Lt => "<",
                BinaryOp::LtEq => "<=",
                BinaryOp::Gt => ">",
                BinaryOp::GtEq => ">=",
                BinaryOp::And => " and ",
                BinaryOp::Or => " or ",
                _ => " ? ",
            };
            format!("{}{o}{}", expr_name(left), expr_name(right))
        }
        Expr::Cast { expr, ty } => format!("cast({} as {})", expr_name(expr), ty.sql().to_lowercase()),
        _ => "expr".into(),
    }
}

/// Static result type of an expression over a source.
fn infer(e: &Expr, src: &Source) -> DataType {
    match e {
        Expr::Column { name, .. } => src.col(name).map(|i| src.fields[i].ty).unwrap_or(DataType::VarChar(64)),
        Expr::Literal(l) => match l {
            Literal::Null => DataType::VarChar(0),
            Literal::Bool(_) => DataType::Bool,
            Literal::Int(_) | Literal::Duration(_) => DataType::BigInt,
            Literal::UInt(_) => DataType::UBigInt,
            Literal::Float(_) => DataType::Double,
            Literal::Str(s) => DataType::VarChar(s.len() as u32),
            Literal::Timestamp(_) => DataType::Timestamp,
        },
        Expr::Function { name, args, .. } => {
            let arg = || args.first().map(|a| infer(a, src)).unwrap_or(DataType::BigInt);
            match name.as_str() {
                "count" | "length" => DataType::BigInt,
                "sum" => match arg() {
                    DataType::Float | DataType::Double => DataType::Double,
                    DataType::UTinyInt | DataType::USmallInt | DataType::UInt | DataType::UBigInt => DataType::UBigInt,
                    _ => DataType::BigInt,
                },
                "avg" | "spread" | "stddev" => DataType::Double,
                "min" | "max" | "first" | "last" | "last_row" | "abs" => arg(),
                "now" | "today" => DataType::Timestamp,
                "server_status" => DataType::Int,
                "to_unixtimestamp" => DataType::BigInt,
                _ => DataType::VarChar(64),
            }
        }
        Expr::Unary { op: taos_sql::ast::UnaryOp::Neg, expr } => match infer(expr, src) {
            t @ (DataType::Float | DataType::Double) => t,
            _ => DataType::BigInt,
        },
        Expr::Binary { op, left, right } => match op {
            BinaryOp::Add | BinaryOp::Sub
                if infer(left, src) == DataType::Timestamp && infer(right, src).is_integer()
                    || infer(right, src) == DataType::Timestamp && infer(left, src).is_integer() =>
            {
                DataType::Timestamp
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => DataType::Double,
            BinaryOp::BitAnd | BinaryOp::BitOr => DataType::BigInt,
            _ => DataType::Bool,
        },
        Expr::Cast { ty, .. } => *ty,
        Expr::Case { whens, .. } => whens.first().map(|(_, t)| infer(t, src)).unwrap_or(DataType::VarChar(0)),
        _ => DataType::Bool,
    }
}

#[derive(Default, Clone)]
struct Acc {
    count: i64,
    sum_i: i128,
    sum_f: f64,
    float: bool,
    min: Option<Value>,
    max: Option<Value>,
    first: Option<(i64, Value)>,
    last: Option<(i64, Value)>,
    last_row: Option<(i64, Value)>,
    sq: f64,
}

impl Acc {
    fn add(&mut self, v: Value, ts: i64) {
        if let Some(prev) = &self.last_row {
            if ts >= prev.0 {
                self.last_row = Some((ts, v.clone()));
            }
        } else {
            self.last_row = Some((ts, v.clone()));
        }
        if v.is_null() {
            return;
        }
        self.count += 1;
        match &v {
            Value::Float(_) | Value::Double(_) => {
                self.float = true;
                self.sum_f += v.as_f64().unwrap_or(0.0);
            }
            Value::UBigInt(u) => self.sum_i += *u as i128,
            other => {
                if let Some(i) = other.as_i64() {
                    self.sum_i += i as i128;
                }
            }
        }
        if let Some(f) = v.as_f64() {
            self.sq += f * f;
        }
        if self.min.as_ref().map(|m| compare(&v, m) == Some(std::cmp::Ordering::Less)).unwrap_or(true) {
            self.min = Some(v.clone());
        }
        if self.max.as_ref().map(|m| compare(&v, m) == Some(std::cmp::Ordering::Greater)).unwrap_or(true) {
            self.max = Some(v.clone());
        }
        if self.first.as_ref().map(|f| ts < f.0).unwrap_or(true) {
            self.first = Some((ts, v.clone()));
        }
        if self.last.as_ref().map(|l| ts >= l.0).unwrap_or(true) {
            self.last = Some((ts, v));
        }
    }

    fn result(&self, func: &str) -> Value {
        let total = || if self.float { self.sum_f + self.sum_i as f64 } else { self.sum_i as f64 };
        match func {
            "count" => Value::BigInt(self.count),
            _ if self.count == 0 && func != "last_row" => Value::Null,
            "sum" if self.float => Value::Double(total()),
            "sum" => i64::try_from(self.sum_i).map(Value::BigInt).unwrap_or(Value::Double(self.sum_i as f64)),
            "avg" => Value::Double(total() / self.count as f64),
            "min" => self.min.clone().unwrap_or_default(),
            "max" => self.max.clone().unwrap_or_default(),
            "first" => self.first.clone().map(|x| x.1).unwrap_or_default(),
            "last" => self.last.clone().map(|x| x.1).unwrap_or_default(),
            "last_row" => self.last_row.clone().map(|x| x.1).unwrap_or_default(),
            "spread" => match (self.min.as_ref().and_then(|v| v.as_f64()), self.max.as_ref().and_then(|v| v.as_f64())) {
                (Some(a), Some(b)) => Value::Double(b - a),
                _ => Value::Null,
            },
            "stddev" => {
                let n = self.count as f64;
                let mean = total() / n;
                Value::Double((self.sq / n - mean * mean).max(0.0).sqrt())
            }
            _ => Value::Null,
        }
    }
}

/// Replace aggregate calls by `__agg<i>` columns, collecting (function, argument).
fn extract_aggs(e: &Expr, out: &mut Vec<(String, Expr)>) -> TaosResult<Expr> {
    Ok(match e {
        Expr::Function { name, args, distinct } if AGGS.contains(&name.as_str()) => {
            if *distinct {
                return Err(TaosError::new(Code::PAR_NOT_SUPPORTED, format!("{name}(distinct ...) is not supported yet")));
            }
            let arg = match args.as_slice() {
                [a] => a.clone(),
                _ => return Err(TaosError::new(Code::FUNC_FUNTION_ERROR, format!("Invalid number of parameters : {name}"))),
            };
            if is_agg(&arg) {
                return Err(TaosError::new(Code::PAR_ILLEGAL_USE_AGG_FUNC, "Aggregate functions cannot be nested"));
            }
            out.push((name.clone(), arg));
            Expr::Column { table: None, name: format!("__agg{}", out.len() - 1) }
        }
        Expr::Function { name, args, distinct } => Expr::Function {
            name: name.clone(),
            args: args.iter().map(|a| extract_aggs(a, out)).collect::<TaosResult<_>>()?,
            distinct: *distinct,
        },
        Expr::Unary { op, expr } => Expr::Unary { op: *op, expr: Box::new(extract_aggs(expr, out)?) },
        Expr::Binary { op, left, right } => Expr::Binary {
            op: *op,
            left: Box::new(extract_aggs(left, out)?),
            right: Box::new(extract_aggs(right, out)?),
        },
        Expr::Cast { expr, ty } => Expr::Cast { expr: Box::new(extract_aggs(expr, out)?), ty: *ty },
        other => other.clone(),
    })
}

impl Dnode {
    pub async fn select(self: &Arc<Self>, s: &Session, q: Query) -> TaosResult<Output> {
        let sel = match q {
            Query::Select(sel) => sel,
            Query::Union { .. } => return Err(TaosError::new(Code::PAR_NOT_SUPPORTED, "UNION is not supported yet")),
        };
        let src = match &sel.from {
            None => Source::new(Vec::new(), vec![Vec::new()], Precision::Ms),
            Some(FromItem::Table { name, .. }) => {
                let db = s.db_of(name)?.to_string();
                if db == "information_schema" || db == "performance_schema" {
                    let r = self.system_table(s, &db, &name.name)?;
                    Source::new(r.fields, r.rows, r.precision)
                } else {
                    self.check_privilege(s, &db, false)?;
                    self.scan_source(s, &db, &name.name, sel.where_.as_ref()).await?
                }
            }
            Some(_) => return Err(TaosError::new(Code::PAR_NOT_SUPPORTED, "subqueries and joins are not supported yet")),
        };
        let r = run_select(s, &sel, src)?;
        Ok(Output::Rows(r))
    }

    /// Scan every table a FROM name covers, with tags and tbname as extra columns.
    async fn scan_source(&self, s: &Session, db: &str, table: &str, where_: Option<&Expr>) -> TaosResult<Source> {
        let dbinfo = self.mnode.read(|c| c.db(db).cloned())?;
        let precision = dbinfo.options.precision;
        let is_stable = self.mnode.read(|c| c.stable(db, table).is_some());
        let (cols, tags) = self.table_schema(db, table)?;
        let tables = self.resolve_tables(&dbinfo, table)?;
        let ctx = EvalCtx { precision, tz: s.tz, db: Some(db), user: &s.user, row: None };
        let range = match where_ {
            Some(w) => time_range(w, &cols[0].name, &ctx)?,
            None => TimeRange { start: i64::MIN, end: i64::MAX, exact: true },
        };
        let mut fields: Vec<Field> = cols.iter().map(|c| Field::new(&c.name, c.ty)).collect();
        fields.extend(tags.iter().map(|t| Field::new(&t.name, t.ty)));
        fields.push(Field::new("tbname", DataType::VarChar(192)));
        let ncols = cols.len();
        let types: Vec<DataType> = cols.iter().map(|c| c.ty).collect();
        let mut chunks = Vec::new();
        // Group tables by vnode so each engine gets one scan request.
        let mut per_vg: std::collections::BTreeMap<u32, Vec<TableMeta>> = std::collections::BTreeMap::new();
        for (vg, t) in tables {
            per_vg.entry(vg).or_default().push(t);
        }
        let col_ids: Vec<u16> = cols.iter().map(|c| c.id).collect();
        for (vg, metas) in per_vg {
            let v = self.vnode(vg)?;
            let Some(first) = metas.first() else { continue };
            let schema = v.shared.schema_for(first)?;
            let req = tsdb::ScanRequest {
                uids: metas.iter().map(|t| (t.uid, t.suid())).collect(),
                start: range.start,
                end: range.end,
                col_ids: col_ids.clone(),
                schema,
                desc: false,
                limit: None,
            };
            let shared = v.shared.clone();
            let batches = tokio::task::spawn_blocking(move || shared.tsdb.scan(&req))
                .await
                .map_err(|e| TaosError::internal(e.to_string()))?
                .map_err(|e| e.to_taos())?;
            let by_uid: HashMap<u64, &TableMeta> = metas.iter().map(|t| (t.uid, t)).collect();
            for (uid, batch) in batches {
                let Some(meta) = by_uid.get(&uid) else { continue };
                let mut extra: Vec<Value> = match &meta.kind {
                    TableKind::Child { tags: tv, .. } => tv.clone(),
                    TableKind::Normal { .. } => Vec::new(),
                };
                extra.resize(tags.len(), Value::Null);
                extra.push(Value::VarChar(meta.name.clone()));
                chunks.push(Chunk::Batch { batch, types: types.clone(), ncols, extra });
            }
        }
        let mut src = Source::new(fields, Vec::new(), precision);
        src.chunks = chunks;
        src.star = if is_stable { (0..ncols + tags.len()).collect() } else { (0..ncols).collect() };
        Ok(src)
    }
}

/// Arrow column to values of a TDengine type.
pub fn arrow_values(a: &ArrayRef, ty: DataType) -> TaosResult<Vec<Value>> {
    let n = a.len();
    let mut out = Vec::with_capacity(n);
    macro_rules! prim {
        ($t:ty, $mk:expr) => {{
            let arr = a.as_primitive::<$t>();
            for i in 0..n {
                out.push(if arr.is_null(i) { Value::Null } else { $mk(arr.value(i)) });
            }
        }};
    }
    match a.data_type() {
        ArrowType::Boolean => {
            let arr = a.as_boolean();
            for i in 0..n {
                out.push(if arr.is_null(i) { Value::Null } else { Value::Bool(arr.value(i)) });
            }
        }
        ArrowType::Int8 => prim!(Int8Type, Value::TinyInt),
        ArrowType::Int16 => prim!(Int16Type, Value::SmallInt),
        ArrowType::Int32 => prim!(Int32Type, Value::Int),
        ArrowType::Int64 => {
            if ty == DataType::Timestamp {
                prim!(Int64Type, Value::Timestamp)
            } else {
                prim!(Int64Type, Value::BigInt)
            }
        }
        ArrowType::UInt8 => prim!(UInt8Type, Value::UTinyInt),
        ArrowType::UInt16 => prim!(UInt16Type, Value::USmallInt),
        ArrowType::UInt32 => prim!(UInt32Type, Value::UInt),
        ArrowType::UInt64 => prim!(UInt64Type, Value::UBigInt),
        ArrowType::Float32 => prim!(Float32Type, Value::Float),
        ArrowType::Float64 => prim!(Float64Type, Value::Double),
        ArrowType::Timestamp(unit, _) => match unit {
            arrow_schema::TimeUnit::Second => prim!(TimestampSecondType, Value::Timestamp),
            arrow_schema::TimeUnit::Millisecond => prim!(TimestampMillisecondType, Value::Timestamp),
            arrow_schema::TimeUnit::Microsecond => prim!(TimestampMicrosecondType, Value::Timestamp),
            arrow_schema::TimeUnit::Nanosecond => prim!(TimestampNanosecondType, Value::Timestamp),
        },
        ArrowType::Utf8 => {
            let arr = a.as_string::<i32>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else if matches!(ty, DataType::NChar(_)) {
                    Value::NChar(arr.value(i).to_string())
                } else {
                    Value::VarChar(arr.value(i).to_string())
                });
            }
        }
        ArrowType::Binary => {
            let arr = a.as_binary::<i32>();
            for i in 0..n {
                out.push(if arr.is_null(i) {
                    Value::Null
                } else {
                    let b = arr.value(i).to_vec();
                    match ty {
                        DataType::VarChar(_) => Value::VarChar(String::from_utf8_lossy(&b).into_owned()),
                        DataType::NChar(_) => Value::NChar(String::from_utf8_lossy(&b).into_owned()),
                        DataType::Json => Value::Json(String::from_utf8_lossy(&b).into_owned()),
                        DataType::Geometry(_) => Value::Geometry(b),
                        _ => Value::VarBinary(b),
                    }
                });
            }
        }
        ArrowType::Null => out.resize(n, Value::Null),
        other => return Err(TaosError::internal(format!("unexpected column type from storage: {other}"))),
    }
    Ok(out)
}

fn limit_err(what: &str) -> TaosError {
    TaosError::new(Code::PAR_NOT_SUPPORTED, format!("{what} is not supported yet"))
}

/// Filter, aggregate, project, order and limit the rows of a source.
pub fn run_select(s: &Session, sel: &Select, src: Source) -> TaosResult<ResultRows> {
    if sel.window.is_some() {
        return Err(limit_err("window clauses (INTERVAL, STATE_WINDOW, SESSION, ...)"));
    }
    if sel.distinct || sel.tags || sel.range.is_some() || sel.slimit.is_some() {
        return Err(limit_err("DISTINCT / SELECT TAGS / RANGE / SLIMIT"));
    }
    // Expand the projection.
    let mut items: Vec<(Expr, String)> = Vec::new();
    for it in &sel.projection {
        match it {
            SelectItem::Wildcard | SelectItem::QualifiedWildcard(_) => {
                for &i in &src.star {
                    items.push((Expr::col(&src.fields[i].name), src.fields[i].name.clone()));
                }
            }
            SelectItem::Expr { expr, alias } => {
                items.push((expr.clone(), alias.clone().unwrap_or_else(|| expr_name(expr))));
            }
        }
    }
    fn mk<'a>(p: Precision, s: &'a Session, row: Option<&'a (dyn Fn(&str) -> Option<Value> + Sync)>) -> EvalCtx<'a> {
        EvalCtx { precision: p, tz: s.tz, db: s.db.as_deref(), user: &s.user, row }
    }
    let precision = src.precision;
    // Rows stream through filter and aggregation (or projection) without being collected.
    let passes = |row: &[Value]| -> TaosResult<bool> {
        match &sel.where_ {
            None => Ok(true),
            Some(w) => {
                let look = |n: &str| src.col(n).map(|i| row[i].clone());
                let c = mk(precision, s, Some(&look));
                Ok(truth(&eval(w, &c)?) == Some(true))
            }
        }
    };
    let aggregate = items.iter().any(|(e, _)| is_agg(e)) || !sel.group_by.is_empty();
    let mut fields = Vec::with_capacity(items.len());
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new(); // (sort keys, output row)
    let alias_of = |name: &str| items.iter().position(|(_, a)| a == name);
    if aggregate {
        let mut specs = Vec::new();
        let rewritten: Vec<Expr> = items.iter().map(|(e, _)| extract_aggs(e, &mut specs)).collect::<TaosResult<_>>()?;
        let order_rewritten: Vec<Expr> =
            sel.order_by.iter().map(|o| extract_aggs(&o.expr, &mut specs)).collect::<TaosResult<_>>()?;
        let having = sel.having.as_ref().map(|h| extract_aggs(h, &mut specs)).transpose()?;
        let keys: Vec<&Expr> = sel.group_by.iter().chain(sel.partition_by.iter()).collect();
        // Groups in first-seen order, each with a copy of its first row for plain columns.
        let mut groups: Vec<(Vec<Acc>, Vec<Value>)> = Vec::new();
        let mut gindex: HashMap<String, usize> = HashMap::new();
        src.for_each_row(|row| {
            if !passes(row)? {
                return Ok(());
            }
            let look = |n: &str| src.col(n).map(|i| row[i].clone());
            let c = mk(precision, s, Some(&look));
            let gi = if keys.is_empty() {
                if groups.is_empty() {
                    groups.push((vec![Acc::default(); specs.len()], row.to_vec()));
                }
                0
            } else {
                let key: Vec<Value> = keys.iter().map(|k| eval(k, &c)).collect::<TaosResult<_>>()?;
                let kstr = format!("{key:?}");
                *gindex.entry(kstr).or_insert_with(|| {
                    groups.push((vec![Acc::default(); specs.len()], row.to_vec()));
                    groups.len() - 1
                })
            };
            let ts = row.first().and_then(|v| v.as_i64()).unwrap_or(0);
            for (ai, (_, arg)) in specs.iter().enumerate() {
                let v = match arg {
                    Expr::Star => Value::Bool(true),
                    a => eval(a, &c)?,
                };
                groups[gi].0[ai].add(v, ts);
            }
            Ok(())
        })?;
        if groups.is_empty() && keys.is_empty() {
            // An aggregate over no rows still answers one row (count = 0).
            groups.push((vec![Acc::default(); specs.len()], Vec::new()));
        }
        for (e, name) in items.iter() {
            let ty = match e {
                Expr::Function { name: f, args, .. } if AGGS.contains(&f.as_str()) && matches!(args.first(), Some(Expr::Star)) => {
                    if f == "count" {
                        DataType::BigInt
                    } else {
                        src.fields.first().map(|f| f.ty).unwrap_or(DataType::Timestamp)
                    }
                }
                _ => infer(e, &src),
            };
            fields.push(Field::new(name, ty));
        }
        for (accs, first_row) in &groups {
            let agg_vals: Vec<Value> = specs.iter().zip(accs).map(|((f, _), a)| a.result(f)).collect();
            let look = |n: &str| -> Option<Value> {
                if let Some(i) = n.strip_prefix("__agg").and_then(|x| x.parse::<usize>().ok()) {
                    return agg_vals.get(i).cloned();
                }
                src.col(n).map(|i| first_row.get(i).cloned().unwrap_or(Value::Null))
            };
            let c = mk(precision, s, Some(&look));
            if let Some(h) = &having {
                if truth(&eval(h, &c)?) != Some(true) {
                    continue;
                }
            }
            let row: Vec<Value> = rewritten.iter().map(|e| eval(e, &c)).collect::<TaosResult<_>>()?;
            let keys = order_keys(&sel.order_by, &order_rewritten, &row, &items, &alias_of, &c)?;
            out.push((keys, row));
        }
    } else {
        for (e, name) in &items {
            fields.push(Field::new(name, infer(e, &src)));
        }
        let order_exprs: Vec<Expr> = sel.order_by.iter().map(|o| o.expr.clone()).collect();
        // Without ORDER BY, stop once OFFSET + LIMIT rows are out.
        let cap = match (&sel.limit, sel.order_by.is_empty()) {
            (Some(l), true) => (l.offset.max(0) as usize).saturating_add(l.limit.max(0) as usize),
            _ => usize::MAX,
        };
        let done = TaosError::new(Code::SUCCESS, "limit reached");
        let res = src.for_each_row(|row| {
            if out.len() >= cap {
                return Err(done.clone());
            }
            if !passes(row)? {
                return Ok(());
            }
            let look = |n: &str| src.col(n).map(|i| row[i].clone());
            let c = mk(precision, s, Some(&look));
            let vals: Vec<Value> = items.iter().map(|(e, _)| eval(e, &c)).collect::<TaosResult<_>>()?;
            let keys = order_keys(&sel.order_by, &order_exprs, &vals, &items, &alias_of, &c)?;
            out.push((keys, vals));
            Ok(())
        });
        match res {
            Err(e) if e.code != 0 => return Err(e),
            _ => {}
        }
    }
    if !sel.order_by.is_empty() {
        let dirs: Vec<&OrderItem> = sel.order_by.iter().collect();
        out.sort_by(|a, b| {
            for (i, o) in dirs.iter().enumerate() {
                let (x, y) = (&a.0[i], &b.0[i]);
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    // NULLs first in ASC, last in DESC unless told otherwise.
                    (true, false) => if o.nulls_first.unwrap_or(o.asc) { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater },
                    (false, true) => if o.nulls_first.unwrap_or(o.asc) { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less },
                    _ => {
                        let c = compare(x, y).unwrap_or(std::cmp::Ordering::Equal);
                        if o.asc { c } else { c.reverse() }
                    }
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let (offset, limit) = match &sel.limit {
        Some(l) => (l.offset.max(0) as usize, l.limit.max(0) as usize),
        None => (0, usize::MAX),
    };
    let mut result = ResultRows { fields, precision: src.precision, rows: Vec::new() };
    let ctx = mk(precision, s, None);
    for (_, row) in out.into_iter().skip(offset).take(limit) {
        let row = row
            .into_iter()
            .zip(&result.fields)
            .map(|(v, f)| conform(v, f.ty, &ctx))
            .collect();
        result.rows.push(row);
    }
    Ok(result)
}

/// Make a value match its field's declared type (an integer sum stays BIGINT, ...).
fn conform(v: Value, ty: DataType, ctx: &EvalCtx) -> Value {
    if v.is_null() {
        return v;
    }
    match (&v, ty) {
        (Value::VarChar(_), DataType::VarChar(_)) | (Value::NChar(_), DataType::NChar(_)) => v,
        (_, DataType::VarChar(_)) => Value::VarChar(v.render()),
        (Value::Timestamp(_), DataType::Timestamp) => v,
        (_, DataType::Timestamp) => v.as_i64().map(Value::Timestamp).unwrap_or(Value::Null),
        _ => crate::exec::eval::cast(v.clone(), ty, ctx).unwrap_or(v),
    }
}

fn order_keys(
    order: &[OrderItem],
    exprs: &[Expr],
    out_row: &[Value],
    items: &[(Expr, String)],
    alias_of: &dyn Fn(&str) -> Option<usize>,
    ctx: &EvalCtx,
) -> TaosResult<Vec<Value>> {
    let mut keys = Vec::with_capacity(order.len());
    for (o, e) in order.iter().zip(exprs) {
        // ORDER BY 2 / ORDER BY alias / ORDER BY expression.
        let v = match &o.expr {
            Expr::Literal(Literal::Int(i)) if *i >= 1 && (*i as usize) <= out_row.len() => out_row[*i as usize - 1].clone(),
            Expr::Column { name, table: None } if alias_of(name).is_some() && !matches!(items[alias_of(name).unwrap_or(0)].0, Expr::Column { .. }) => {
                out_row[alias_of(name).unwrap_or(0)].clone()
            }
            _ => match eval(e, ctx) {
                Ok(v) => v,
                Err(err) => match &o.expr {
                    Expr::Column { name, .. } if alias_of(name).is_some() => out_row[alias_of(name).unwrap_or(0)].clone(),
                    _ => return Err(err),
                },
            },
        };
        keys.push(v);
    }
    Ok(keys)
}
