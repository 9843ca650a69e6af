//! TDengine SELECT -> DataFusion SQL.
//!
//! Why SQL text rather than building `LogicalPlan`s by hand: DataFusion's SQL planner already
//! resolves names, coerces types and plans subqueries, joins, UNION, HAVING and ORDER BY; what
//! TDengine adds is rewritten here into standard SQL that the planner turns into the same
//! logical plans we would build: `PARTITION BY` becomes grouping keys, `INTERVAL` a
//! `date_bin` bucket aligned to the session time zone, `STATE_WINDOW` / `SESSION` /
//! `COUNT_WINDOW` window ids computed with window functions, selector functions
//! (`FIRST`, `LAST`, `LAST_ROW`) ordered aggregates over the primary timestamp, pseudo columns
//! (`tbname`, `_wstart`, `_rowts`, `_qstart`) columns or constants, and time literals read in
//! the session zone and database precision. Every identifier is quoted, so TDengine's
//! case-folding (done by our parser) is kept exactly. FILL is done after execution (`fill.rs`).

mod interp;
mod json;
mod state;

use crate::catalog::{Catalog, TableKind, TableSet};
use crate::interp::InterpPlan;
use common::time::{parse_timestamp, DurationLit};
use common::{Code, DataType, Field, Precision, SessionTz, TaosError, TaosResult, Value};
use std::collections::HashMap;
use std::fmt::Write;
use taos_sql::ast::{
    BinaryOp, Expr, Fill, FromItem, JoinKind, Literal, Query, Select, SelectItem, UnaryOp, Window,
};

pub struct LowerCtx<'a> {
    pub catalog: &'a dyn Catalog,
    pub db: Option<&'a str>,
    pub tz: SessionTz,
    pub user: &'a str,
    /// Query start, nanoseconds since the epoch (NOW is one instant per statement).
    pub now_ns: i128,
}

/// A FROM source registered for one query.
pub enum Registered {
    Table(TableSet),
    System {
        fields: Vec<Field>,
        rows: Vec<Vec<Value>>,
    },
}

/// FILL / SLIMIT work left for after execution: the hidden columns and each output's role.
/// Without FILL, `fill` is `Fill::None` and only the slicing is done.
#[derive(Debug, Clone)]
pub struct FillPlan {
    pub fill: Fill,
    pub interval: i64,
    pub sliding: i64,
    /// Output columns before the hidden ones.
    pub visible: usize,
    /// Index of the hidden window start, and of the hidden partition keys.
    pub wstart: usize,
    pub keys: Vec<usize>,
    pub roles: Vec<Role>,
    /// Query time range (to fill leading/trailing windows), in precision units.
    pub range: (i64, i64),
    pub precision: Precision,
    /// FILL(VALUE, ...) constants for the aggregate outputs, in order.
    pub values: Vec<Value>,
    /// SLIMIT / LIMIT, applied after filling.
    pub slices: Slices,
}

/// Which partitions (SLIMIT / SOFFSET) and rows (LIMIT / OFFSET) are output, as
/// (offset, count) pairs.
#[derive(Debug, Clone, Default)]
pub struct Slices {
    pub slimit: Option<(i64, i64)>,
    pub limit: Option<(i64, i64)>,
    /// LIMIT counts rows of each partition rather than of the whole result.
    pub per_partition: bool,
    /// All partitions form one slice (the query has ORDER BY).
    pub one_slice: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    WStart,
    WEnd,
    WDuration,
    Agg,
    /// Same value for the whole partition (tbname, a tag, a constant).
    Partition,
}

pub struct Lowered {
    pub sql: String,
    pub sources: Vec<(String, Registered)>,
    pub fill: Option<FillPlan>,
    /// INTERP slices left for after execution.
    pub interp: Option<InterpPlan>,
    /// Precision results are rendered in (the main table's).
    pub precision: Precision,
}

fn unsupported(what: &str) -> TaosError {
    TaosError::new(
        Code::PAR_NOT_SUPPORTED,
        format!("{what} is not supported yet"),
    )
}

/// `"name"` with embedded quotes doubled.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn s_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn arrow_ts(p: Precision) -> &'static str {
    match p {
        Precision::Ms => "Timestamp(Millisecond, None)",
        Precision::Us => "Timestamp(Microsecond, None)",
        Precision::Ns => "Timestamp(Nanosecond, None)",
    }
}

/// A timestamp literal in precision `p`.
fn ts_lit(v: i64, p: Precision) -> String {
    format!("arrow_cast({v}, '{}')", arrow_ts(p))
}

/// Columns visible in a SELECT: name -> type, the primary timestamp, the precision.
#[derive(Clone, Default)]
struct Scope {
    cols: HashMap<String, DataType>,
    ts: Option<String>,
    precision: Precision,
    /// Table aliases -> registered names (for qualified columns).
    aliases: HashMap<String, String>,
    /// Inside a window query: how `_wstart` / `_wend` / `_wduration` are spelled.
    window: Option<(String, String, String)>,
    range: (i64, i64),
    /// Star expansion of the FROM source.
    star: Vec<String>,
    /// Tag columns (constant per table).
    tags: std::collections::HashSet<String>,
    partition: Vec<String>,
}

impl Scope {
    fn ty(&self, e: &Expr) -> Option<DataType> {
        match e {
            Expr::Column { name, .. }
                if name == "_rowts" || name == "_c0" || name == "_wstart" || name == "_wend" =>
            {
                Some(DataType::Timestamp)
            }
            Expr::Column { name, .. } => self.cols.get(name).copied(),
            Expr::Function { name, .. } if matches!(name.as_str(), "now" | "today") => {
                Some(DataType::Timestamp)
            }
            Expr::Function { name, args, .. }
                if matches!(name.as_str(), "first" | "last" | "last_row" | "min" | "max")
                    && args.len() == 1 =>
            {
                self.ty(&args[0])
            }
            _ => None,
        }
    }
}

pub struct Lowerer<'a> {
    cx: &'a LowerCtx<'a>,
    sources: Vec<(String, Registered)>,
    main_precision: Option<Precision>,
    interp: Option<InterpPlan>,
    /// How deep in subqueries / UNION operands the SELECT being lowered is: work after
    /// execution (FILL, SLIMIT, LIMIT per partition) only exists for the outermost one.
    depth: usize,
}

impl<'a> Lowerer<'a> {
    pub fn new(cx: &'a LowerCtx<'a>) -> Lowerer<'a> {
        Lowerer {
            cx,
            sources: Vec::new(),
            main_precision: None,
            interp: None,
            depth: 0,
        }
    }

    pub fn lower(mut self, q: &Query) -> TaosResult<Lowered> {
        let (sql, fill, _) = self.query(q)?;
        Ok(Lowered {
            sql,
            sources: self.sources,
            fill,
            interp: self.interp,
            precision: self.main_precision.unwrap_or(Precision::Ms),
        })
    }

    fn query(&mut self, q: &Query) -> TaosResult<(String, Option<FillPlan>, Scope)> {
        match q {
            Query::Select(s) => self.select(s),
            Query::Union {
                left,
                right,
                all,
                order_by,
                limit,
            } => {
                self.depth += 1;
                let sides = self.query(left).and_then(|l| Ok((l, self.query(right)?)));
                self.depth -= 1;
                let ((l, _, scope), (r, _, _)) = sides?;
                if self.interp.is_some() {
                    return Err(unsupported("INTERP inside UNION"));
                }
                let mut sql = format!("({l}) UNION {}({r})", if *all { "ALL " } else { "" });
                if !order_by.is_empty() {
                    let outer = Scope {
                        cols: HashMap::new(),
                        ..scope.clone()
                    };
                    let items: Vec<String> = order_by
                        .iter()
                        .map(|o| {
                            Ok(format!(
                                "{} {}",
                                self.expr(&o.expr, &outer)?,
                                if o.asc { "ASC" } else { "DESC" }
                            ))
                        })
                        .collect::<TaosResult<_>>()?;
                    sql = format!("SELECT * FROM ({sql}) ORDER BY {}", items.join(", "));
                }
                if let Some(l) = limit {
                    let _ = write!(sql, " LIMIT {} OFFSET {}", l.limit.max(0), l.offset.max(0));
                }
                Ok((sql, None, scope))
            }
        }
    }

    fn register(&mut self, db: &str, name: &str) -> TaosResult<(String, Scope)> {
        let reg = format!("__t{}", self.sources.len());
        if db == "information_schema" || db == "performance_schema" {
            let (fields, rows) = self.cx.catalog.system_table(db, name)?;
            let mut scope = Scope {
                precision: Precision::Ms,
                ..Default::default()
            };
            for f in &fields {
                scope.cols.insert(f.name.clone(), f.ty);
                scope.star.push(f.name.clone());
            }
            self.sources
                .push((reg.clone(), Registered::System { fields, rows }));
            return Ok((reg, scope));
        }
        let set = self.cx.catalog.table_set(db, name)?;
        let mut scope = Scope {
            precision: set.precision,
            ts: set.columns.first().map(|c| c.name.clone()),
            ..Default::default()
        };
        for f in set.columns.iter().chain(set.tags.iter()) {
            scope.cols.insert(f.name.clone(), f.ty);
        }
        scope.cols.insert("tbname".into(), DataType::VarChar(192));
        scope.tags = set
            .tags
            .iter()
            .map(|t| t.name.clone())
            .chain(std::iter::once("tbname".to_string()))
            .collect();
        scope.star = set.columns.iter().map(|c| c.name.clone()).collect();
        if set.kind == TableKind::Super {
            scope.star.extend(set.tags.iter().map(|t| t.name.clone()));
        }
        self.main_precision.get_or_insert(set.precision);
        self.sources.push((reg.clone(), Registered::Table(set)));
        Ok((reg, scope))
    }

    fn from(&mut self, f: &FromItem) -> TaosResult<(String, Scope)> {
        match f {
            FromItem::Table { name, alias } => {
                let db = name
                    .db
                    .as_deref()
                    .or(self.cx.db)
                    .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))?;
                let (reg, mut scope) = self.register(db, &name.name)?;
                let shown = alias.clone().unwrap_or_else(|| name.name.clone());
                scope.aliases.insert(shown.clone(), shown.clone());
                Ok((format!("{} AS {}", q(&reg), q(&shown)), scope))
            }
            FromItem::Subquery { query, alias } => {
                self.depth += 1;
                let inner = self.query(query);
                self.depth -= 1;
                let (sql, fill, inner) = inner?;
                if fill.is_some() {
                    return Err(unsupported("FILL inside a subquery"));
                }
                if self.interp.is_some() {
                    return Err(unsupported("INTERP inside a subquery"));
                }
                let alias = alias
                    .clone()
                    .unwrap_or_else(|| format!("__sq{}", self.sources.len()));
                // The outer query sees the inner output columns; keep the timestamp if selected.
                let mut scope = Scope {
                    precision: inner.precision,
                    ..Default::default()
                };
                scope.cols = inner.cols;
                scope.ts = inner.ts;
                scope.aliases.insert(alias.clone(), alias.clone());
                scope.star = inner.star;
                Ok((format!("({sql}) AS {}", q(&alias)), scope))
            }
            FromItem::Join {
                left,
                right,
                kind,
                on,
            } => {
                let (l, mut ls) = self.from(left)?;
                let (r, rs) = self.from(right)?;
                for (k, v) in rs.cols {
                    ls.cols.entry(k).or_insert(v);
                }
                ls.aliases.extend(rs.aliases);
                ls.star.extend(rs.star);
                let kw = match kind {
                    JoinKind::Inner => "JOIN",
                    JoinKind::Left => "LEFT JOIN",
                    JoinKind::Right => "RIGHT JOIN",
                    JoinKind::Full => "FULL JOIN",
                    JoinKind::Cross => "CROSS JOIN",
                };
                let on = match on {
                    Some(e) => format!(" ON {}", self.expr(e, &ls)?),
                    None => String::new(),
                };
                Ok((format!("{l} {kw} {r}{on}"), ls))
            }
        }
    }

    fn select(&mut self, s: &Select) -> TaosResult<(String, Option<FillPlan>, Scope)> {
        if s.tags {
            return self.select_tags(s);
        }
        let (from_sql, mut scope) = match &s.from {
            Some(f) => self.from(f)?,
            None => (String::new(), Scope::default()),
        };
        if let (Some(w), Some(ts)) = (&s.where_, scope.ts.clone()) {
            scope.range = self.query_range(w, &ts, &scope);
        } else {
            scope.range = (i64::MIN, i64::MAX);
        }
        // Projection items (star expanded) with their output names.
        let mut items: Vec<(Expr, String)> = Vec::new();
        for it in &s.projection {
            match it {
                SelectItem::Wildcard | SelectItem::QualifiedWildcard(_) => {
                    for c in &scope.star {
                        items.push((Expr::col(c), c.clone()));
                    }
                }
                SelectItem::Expr { expr, alias } => match expr {
                    // FIRST(*) / LAST(*) / LAST_ROW(*): one output per column.
                    Expr::Function { name, args, .. }
                        if matches!(name.as_str(), "first" | "last" | "last_row")
                            && matches!(args.as_slice(), [Expr::Star]) =>
                    {
                        // Only data columns: TDengine's FIRST(*)/LAST(*) leave tags out.
                        for c in scope
                            .star
                            .clone()
                            .into_iter()
                            .filter(|c| !scope.tags.contains(c))
                        {
                            let e = Expr::Function {
                                name: name.clone(),
                                args: vec![Expr::col(&c)],
                                distinct: false,
                            };
                            items.push((e, format!("{name}({c})")));
                        }
                    }
                    _ => items.push((
                        expr.clone(),
                        alias.clone().unwrap_or_else(|| expr_name(expr)),
                    )),
                },
            }
        }
        let where_sql = match &s.where_ {
            Some(w) => format!(" WHERE {}", self.expr(w, &scope)?),
            None => String::new(),
        };
        if items.iter().any(|(e, _)| interp::has_interp(e)) {
            let (sql, plan) = self.select_interp(s, &from_sql, &where_sql, &scope, &items)?;
            self.interp = Some(plan);
            let out_scope = Scope {
                precision: scope.precision,
                ..Default::default()
            };
            return Ok((sql, None, out_scope));
        }
        interp::check_interp_clauses(s)?;
        let keys: Vec<&Expr> = s.partition_by.iter().chain(s.group_by.iter()).collect();
        if let (Some(_), Some((e, _))) = (&s.window, items.iter().find(|(e, _)| is_rows_fn(e))) {
            return Err(TaosError::new(
                Code::PAR_WINDOW_NOT_ALLOWED_FUNC,
                format!("{} function is not supported in window query", expr_name(e)),
            ));
        }
        if s.window.is_none() && items.iter().any(|(e, _)| is_rows_fn(e)) {
            return self.select_rows_fn(s, &from_sql, &where_sql, scope, items, &keys);
        }
        let has_agg =
            items.iter().any(|(e, _)| is_agg(e)) || s.having.as_ref().map(is_agg).unwrap_or(false);
        scope.partition = keys.iter().map(|k| expr_name(k)).collect();
        let mut fill = None;
        let (source, group): (String, Vec<String>) = match &s.window {
            None => {
                let group = if has_agg || !s.group_by.is_empty() {
                    keys.iter()
                        .map(|k| self.expr(k, &scope))
                        .collect::<TaosResult<_>>()?
                } else {
                    Vec::new()
                };
                (
                    format!(
                        "{}{}",
                        if from_sql.is_empty() {
                            String::new()
                        } else {
                            format!(" FROM {from_sql}")
                        },
                        where_sql
                    ),
                    group,
                )
            }
            Some(w) => {
                let ts = scope
                    .ts
                    .clone()
                    .ok_or_else(|| unsupported("a window without a timestamp column"))?;
                let part: Vec<String> = keys
                    .iter()
                    .map(|k| self.expr(k, &scope))
                    .collect::<TaosResult<_>>()?;
                let part_clause = if part.is_empty() {
                    String::new()
                } else {
                    format!("PARTITION BY {} ", part.join(", "))
                };
                let p = scope.precision;
                let t = q(&ts);
                let base = format!("SELECT * FROM {from_sql}{where_sql}");
                // Window ids for the non-interval windows: a running sum of "a new window
                // starts here" flags (two levels, since window calls cannot nest).
                let numbered = |chg: String| -> String {
                    format!(
                        "SELECT *, sum({c}) OVER ({part_clause}ORDER BY {t} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {wid} FROM (SELECT *, {chg} AS {c} FROM ({base}) AS {b}) AS {cc}",
                        c = q("__chg"),
                        wid = q("__wid"),
                        b = q("__b"),
                        cc = q("__c")
                    )
                };
                let spans = || {
                    (
                        format!("min({t})"),
                        format!("max({t})"),
                        format!("(arrow_cast(max({t}), 'Int64') - arrow_cast(min({t}), 'Int64'))"),
                    )
                };
                let (wstart, wend, wdur, inner) = match w {
                    Window::Interval {
                        interval,
                        offset,
                        sliding,
                        fill: f,
                    } => {
                        let iv = dur_units(interval, p)?;
                        let sl = match sliding {
                            Some(x) => dur_units(x, p)?,
                            None => iv,
                        };
                        if sl != iv && matches!(interval.unit, 'n' | 'y') {
                            return Err(TaosError::of(Code::PAR_INTER_SLIDING_UNIT));
                        }
                        if sl > iv {
                            return Err(TaosError::of(Code::PAR_INTER_SLIDING_TOO_BIG));
                        }
                        if iv / sl > 100 {
                            return Err(TaosError::of(Code::PAR_INTER_SLIDING_TOO_SMALL));
                        }
                        let off = offset
                            .as_ref()
                            .map(|o| dur_units(o, p))
                            .transpose()?
                            .unwrap_or(0);
                        // Day-or-longer windows start at midnight of the session zone.
                        let tz_shift = if iv >= 86_400 * p.per_second() {
                            self.tz_offset_units(p)
                        } else {
                            0
                        };
                        let bucket = |shift: i64| -> String {
                            if matches!(interval.unit, 'n' | 'y') {
                                format!(
                                    "date_trunc('{}', {t})",
                                    if interval.unit == 'n' {
                                        "month"
                                    } else {
                                        "year"
                                    }
                                )
                            } else if shift == 0 {
                                format!(
                                    "date_bin(INTERVAL '{} nanoseconds', {t}, {})",
                                    p.to_nanos(sl),
                                    ts_lit(off - tz_shift, p)
                                )
                            } else {
                                format!(
                                    "(date_bin(INTERVAL '{} nanoseconds', {t}, {}) - INTERVAL '{} nanoseconds')",
                                    p.to_nanos(sl),
                                    ts_lit(off - tz_shift, p),
                                    p.to_nanos(shift)
                                )
                            }
                        };
                        if let Some(f) = f {
                            fill = Some((f.clone(), iv, sl));
                        }
                        let ws = q("__wstart");
                        // With SLIDING, a row belongs to interval/sliding windows: one copy per
                        // window, each with its start, concatenated.
                        // When SLIDING does not divide INTERVAL, the last copy's window may
                        // end before the row: such copies are dropped.
                        let copies: Vec<String> = (0..(iv + sl - 1) / sl)
                            .map(|k| {
                                let copy = format!(
                                    "SELECT *, {} AS {ws} FROM {from_sql}{where_sql}",
                                    bucket(k * sl)
                                );
                                if iv % sl == 0 {
                                    copy
                                } else {
                                    format!(
                                        "SELECT * FROM ({copy}) AS {} WHERE {t} < {ws} + INTERVAL '{} nanoseconds'",
                                        q(&format!("__s{k}")),
                                        p.to_nanos(iv)
                                    )
                                }
                            })
                            .collect();
                        let inner = if copies.len() == 1 {
                            copies.into_iter().next().unwrap_or_default()
                        } else {
                            format!(
                                "SELECT * FROM ({}) AS {}",
                                copies.join(" UNION ALL "),
                                q("__s")
                            )
                        };
                        (
                            ws.clone(),
                            format!("({ws} + INTERVAL '{} nanoseconds')", p.to_nanos(iv)),
                            format!("{iv}"),
                            inner,
                        )
                    }
                    Window::State(e) => {
                        let v = self.expr(e, &scope)?;
                        let chg = format!("CASE WHEN {v} IS NOT DISTINCT FROM lag({v}) OVER ({part_clause}ORDER BY {t}) THEN 0 ELSE 1 END");
                        let (a, b, c) = spans();
                        (a, b, c, numbered(chg))
                    }
                    Window::Session { gap, .. } => {
                        let g = dur_units(gap, p)?;
                        let chg = format!(
                            "CASE WHEN arrow_cast({t}, 'Int64') - arrow_cast(lag({t}) OVER ({part_clause}ORDER BY {t}), 'Int64') <= {g} THEN 0 ELSE 1 END"
                        );
                        let (a, b, c) = spans();
                        (a, b, c, numbered(chg))
                    }
                    Window::Count { count, sliding } => {
                        if sliding.map(|s| s != *count).unwrap_or(false) {
                            return Err(unsupported("COUNT_WINDOW with sliding"));
                        }
                        let n = (*count).max(1);
                        let id = format!(
                            "arrow_cast(floor(arrow_cast(row_number() OVER ({part_clause}ORDER BY {t}) - 1, 'Float64') / {n}), 'Int64')"
                        );
                        let (a, b, c) = spans();
                        (
                            a,
                            b,
                            c,
                            format!(
                                "SELECT *, {id} AS {} FROM ({base}) AS {}",
                                q("__wid"),
                                q("__b")
                            ),
                        )
                    }
                    Window::Event { start, end } => {
                        let (st, en) = (self.expr(start, &scope)?, self.expr(end, &scope)?);
                        let (a, b, c) = spans();
                        let wid = q("__wid");
                        (
                            a,
                            b,
                            c,
                            format!(
                                "SELECT * FROM (SELECT *, td_event_window({st}, {en}) OVER ({part_clause}ORDER BY {t}) AS {wid} FROM ({base}) AS {}) AS {} WHERE {wid} IS NOT NULL",
                                q("__b"),
                                q("__e")
                            ),
                        )
                    }
                };
                scope.window = Some((wstart.clone(), wend, wdur));
                let mut group = part.clone();
                match w {
                    Window::Interval { .. } => group.push(q("__wstart")),
                    _ => group.push(q("__wid")),
                }
                // The state is constant in its window, so it may be selected: group by it too
                // (after the window id, so windows stay in time order).
                if let Window::State(e) = w {
                    group.push(self.expr(e, &scope)?);
                }
                // Inside the window query, columns come from the inner subquery unqualified.
                scope.aliases.clear();
                (format!(" FROM ({inner}) AS {}", q("__w")), group)
            }
        };
        let mut cols = Vec::with_capacity(items.len());
        // With PARTITION BY tbname, tags are constant in each group: TDengine lets them be
        // selected without aggregation.
        let by_table = keys
            .iter()
            .any(|k| matches!(k, Expr::Column { name, .. } if name == "tbname"));
        let grouped = has_agg || s.window.is_some();
        for (e, name) in &items {
            let tag_in_group = matches!(e, Expr::Column { name: c, .. } if scope.tags.contains(c) && c != "tbname")
                && grouped
                && by_table
                && !keys.iter().any(|k| *k == e);
            let sql = if tag_in_group {
                format!("first_value({})", self.expr(e, &scope)?)
            } else {
                self.expr(e, &scope)?
            };
            cols.push(format!("{sql} AS {}", q(name)));
        }
        // SLIMIT / SOFFSET, and LIMIT per partition (TDengine's LIMIT with PARTITION BY when
        // partitions have several rows), are applied after execution like FILL.
        if let Some(sl) = &s.slimit {
            if keys.is_empty() {
                return Err(TaosError::of(Code::PAR_SLIMIT_LEAK_PARTITION_GROUP_BY));
            }
            if self.depth > 0 {
                return Err(unsupported("SLIMIT inside a subquery"));
            }
            if sl.offset < 0 {
                return Err(TaosError::of(Code::PAR_OFFSET_LESS_ZERO));
            }
        }
        let per_partition = s.limit.is_some()
            && self.depth == 0
            && !s.partition_by.is_empty()
            && s.order_by.is_empty()
            && (s.window.is_some() || !has_agg);
        let post = fill.is_some() || s.slimit.is_some() || per_partition;
        let mut roles = Vec::new();
        let mut hidden_keys = Vec::new();
        let visible = cols.len();
        if post {
            if fill.is_some() {
                for (e, _) in &items {
                    roles.push(role_of(e));
                }
                cols.push(format!("{} AS {}", q("__wstart"), q("__fill_ws")));
            }
            for (i, k) in keys.iter().enumerate() {
                hidden_keys.push(cols.len());
                cols.push(format!(
                    "{} AS {}",
                    self.expr(k, &scope)?,
                    q(&format!("__fill_k{i}"))
                ));
            }
        }
        let mut sql = format!(
            "SELECT {}{}{}",
            if s.distinct { "DISTINCT " } else { "" },
            cols.join(", "),
            source
        );
        if !group.is_empty() {
            let _ = write!(sql, " GROUP BY {}", group.join(", "));
        }
        if let Some(h) = &s.having {
            // TDengine lets HAVING name select-list aliases; DataFusion does not.
            let h = subst_aliases(h, &items, &scope);
            let _ = write!(sql, " HAVING {}", self.expr(&h, &scope)?);
        }
        // ORDER BY: output aliases by name, positions, or expressions.
        let mut order = Vec::new();
        for o in &s.order_by {
            let e = match &o.expr {
                Expr::Column { table: None, name } if items.iter().any(|(_, a)| a == name) => {
                    q(name)
                }
                Expr::Literal(Literal::Int(i)) => i.to_string(),
                other => self.expr(other, &scope)?,
            };
            let nulls = match o.nulls_first {
                Some(true) => " NULLS FIRST",
                Some(false) => " NULLS LAST",
                None => "",
            };
            order.push(format!("{e} {}{nulls}", if o.asc { "ASC" } else { "DESC" }));
        }
        if order.is_empty() && (s.window.is_some() || (post && !group.is_empty())) {
            // Windows come out by partition, then time; sliced groups by key.
            order = group.clone();
        }
        if order.is_empty() && post {
            // Rows of a partition together, in time order.
            order = keys
                .iter()
                .map(|k| self.expr(k, &scope))
                .collect::<TaosResult<_>>()?;
            if let Some(ts) = &scope.ts {
                order.push(q(ts));
            }
        }
        if !order.is_empty() {
            let _ = write!(sql, " ORDER BY {}", order.join(", "));
        }
        if let Some(l) = &s.limit {
            if !post {
                let _ = write!(sql, " LIMIT {} OFFSET {}", l.limit.max(0), l.offset.max(0));
            }
        }
        let slices = Slices {
            slimit: s.slimit.as_ref().map(|l| (l.offset.max(0), l.limit.max(0))),
            limit: s.limit.as_ref().map(|l| (l.offset.max(0), l.limit.max(0))),
            per_partition,
            // With ORDER BY, TDengine outputs a single slice.
            one_slice: !s.order_by.is_empty(),
        };
        let fill = match fill {
            Some((f, iv, sl)) => {
                let values = match &f {
                    Fill::Value(vs) => vs
                        .iter()
                        .map(|v| self.fill_value(v, scope.precision))
                        .collect::<TaosResult<_>>()?,
                    _ => Vec::new(),
                };
                Some(FillPlan {
                    fill: f,
                    interval: iv,
                    sliding: sl,
                    visible,
                    wstart: visible,
                    keys: hidden_keys,
                    roles,
                    range: scope.range,
                    precision: scope.precision,
                    values,
                    slices,
                })
            }
            None if post => Some(FillPlan {
                fill: Fill::None,
                interval: 0,
                sliding: 0,
                visible,
                wstart: visible,
                keys: hidden_keys,
                roles,
                range: scope.range,
                precision: scope.precision,
                values: Vec::new(),
                slices,
            }),
            None => None,
        };
        // The outer query's scope: output names and their types where known.
        let mut out_scope = Scope {
            precision: scope.precision,
            ..Default::default()
        };
        for (e, name) in &items {
            // Unknown types still make the name visible to an outer query.
            out_scope
                .cols
                .insert(name.clone(), scope.ty(e).unwrap_or(DataType::Null));
            out_scope.star.push(name.clone());
            if Some(name) == scope.ts.as_ref()
                || matches!(e, Expr::Column { name: n, .. } if n == "_wstart")
            {
                out_scope.ts.get_or_insert(name.clone());
            }
        }
        Ok((sql, fill, out_scope))
    }

    /// `SELECT TAGS ...`: one row per child table, whether or not it has data, read from the
    /// table set's tag values (no data is scanned).
    fn select_tags(&mut self, s: &Select) -> TaosResult<(String, Option<FillPlan>, Scope)> {
        let Some(FromItem::Table { name, alias }) = &s.from else {
            return Err(TaosError::new(
                Code(0x2665),
                "The _TAGS pseudocolumn can only be used for subtable and supertable queries",
            ));
        };
        let db = name
            .db
            .as_deref()
            .or(self.cx.db)
            .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))?;
        let set = self.cx.catalog.table_set(db, &name.name)?;
        if set.kind == TableKind::Normal {
            return Err(TaosError::new(
                Code(0x2665),
                "The _TAGS pseudocolumn can only be used for subtable and supertable queries",
            ));
        }
        let mut fields = set.tags.clone();
        fields.push(Field::new("tbname", DataType::VarChar(192)));
        let rows: Vec<Vec<Value>> = set
            .members
            .iter()
            .map(|m| {
                let mut r = m.tags.clone();
                r.resize(set.tags.len(), Value::Null);
                r.push(Value::VarChar(m.name.clone()));
                r
            })
            .collect();
        let reg = format!("__t{}", self.sources.len());
        self.main_precision.get_or_insert(set.precision);
        self.sources.push((
            reg.clone(),
            Registered::System {
                fields: fields.clone(),
                rows,
            },
        ));
        // Lower against the tag source: its columns are the tags and tbname.
        let mut scope = Scope {
            precision: set.precision,
            ..Default::default()
        };
        for f in &fields {
            scope.cols.insert(f.name.clone(), f.ty);
            scope.star.push(f.name.clone());
        }
        let mut items = Vec::new();
        for it in &s.projection {
            match it {
                SelectItem::Wildcard | SelectItem::QualifiedWildcard(_) => {
                    for c in &scope.star {
                        items.push(format!("{} AS {}", q(c), q(c)));
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    items.push(format!(
                        "{} AS {}",
                        self.expr(expr, &scope)?,
                        q(&alias.clone().unwrap_or_else(|| expr_name(expr)))
                    ));
                }
            }
        }
        let mut sql = format!(
            "SELECT {} FROM {} AS {}",
            items.join(", "),
            q(&reg),
            q(&alias.clone().unwrap_or_else(|| name.name.clone()))
        );
        if let Some(w) = &s.where_ {
            let _ = write!(sql, " WHERE {}", self.expr(w, &scope)?);
        }
        if !s.order_by.is_empty() {
            let order: Vec<String> = s
                .order_by
                .iter()
                .map(|o| {
                    Ok(format!(
                        "{} {}",
                        self.expr(&o.expr, &scope)?,
                        if o.asc { "ASC" } else { "DESC" }
                    ))
                })
                .collect::<TaosResult<_>>()?;
            let _ = write!(sql, " ORDER BY {}", order.join(", "));
        }
        if let Some(l) = &s.limit {
            let _ = write!(sql, " LIMIT {} OFFSET {}", l.limit.max(0), l.offset.max(0));
        }
        Ok((sql, None, scope))
    }

    /// Multi-row time-series functions (DIFF, CSUM, MAVG, DERIVATIVE, TOP, BOTTOM, TAIL, UNIQUE,
    /// SAMPLE): each becomes a window function over the partition in time order plus a row
    /// filter that keeps the rows TDengine outputs; other selected columns come from those rows.
    fn select_rows_fn(
        &mut self,
        s: &Select,
        from_sql: &str,
        where_sql: &str,
        scope: Scope,
        items: Vec<(Expr, String)>,
        keys: &[&Expr],
    ) -> TaosResult<(String, Option<FillPlan>, Scope)> {
        let ts = scope
            .ts
            .clone()
            .ok_or_else(|| unsupported("time-series functions without a timestamp column"))?;
        let t = q(&ts);
        let part: Vec<String> = keys
            .iter()
            .map(|k| self.expr(k, &scope))
            .collect::<TaosResult<_>>()?;
        let pby = if part.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {} ", part.join(", "))
        };
        let w = format!("({pby}ORDER BY {t})");
        let int_arg = |e: Option<&Expr>, what: &str| -> TaosResult<i64> {
            match e {
                Some(Expr::Literal(Literal::Int(i))) => Ok(*i),
                Some(Expr::Literal(Literal::Duration(d))) => {
                    d.in_precision(scope.precision).ok_or_else(|| {
                        TaosError::new(Code::FUNC_FUNTION_ERROR, format!("Invalid {what}"))
                    })
                }
                _ => Err(TaosError::new(
                    Code::FUNC_FUNTION_ERROR,
                    format!("Invalid function parameter: {what} must be a constant"),
                )),
            }
        };
        let mut extra = Vec::new();
        let mut keep = Vec::new();
        let mut cols = Vec::new();
        let mut rows_fns = 0;
        for (i, (e, name)) in items.iter().enumerate() {
            let f = q(&format!("__f{i}"));
            let k = q(&format!("__k{i}"));
            let Expr::Function {
                name: fname, args, ..
            } = e
            else {
                if is_agg(e) {
                    return Err(TaosError::new(Code::PAR_NOT_SINGLE_GROUP, "Not a single-group group function: aggregates cannot mix with multi-row functions"));
                }
                cols.push(format!("{} AS {}", self.expr(e, &scope)?, q(name)));
                continue;
            };
            if !is_rows_fn(e) {
                if is_agg(e) {
                    return Err(TaosError::new(Code::PAR_NOT_SINGLE_GROUP, "Not a single-group group function: aggregates cannot mix with multi-row functions"));
                }
                cols.push(format!("{} AS {}", self.expr(e, &scope)?, q(name)));
                continue;
            }
            rows_fns += 1;
            let v = match args.first() {
                Some(a) => self.expr(a, &scope)?,
                None => {
                    return Err(TaosError::new(
                        Code::FUNC_FUNTION_ERROR,
                        format!("Invalid number of parameters : {fname}"),
                    ))
                }
            };
            match fname.as_str() {
                "diff" => {
                    let ignore_negative = int_arg(args.get(1), "ignore_negative").unwrap_or(0) != 0;
                    extra.push(format!("({v} - lag({v}) OVER {w}) AS {f}"));
                    keep.push(if ignore_negative {
                        format!("{f} >= 0")
                    } else {
                        format!("{f} IS NOT NULL")
                    });
                }
                "csum" => {
                    extra.push(format!("sum({v}) OVER ({pby}ORDER BY {t} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {f}"));
                    keep.push(format!("{f} IS NOT NULL"));
                }
                "mavg" => {
                    let n = int_arg(args.get(1), "window size")?.clamp(1, 1000);
                    extra.push(format!(
                        "avg(CAST({v} AS DOUBLE)) OVER ({pby}ORDER BY {t} ROWS BETWEEN {} PRECEDING AND CURRENT ROW) AS {f}",
                        n - 1
                    ));
                    extra.push(format!("row_number() OVER {w} AS {k}"));
                    keep.push(format!("{k} >= {n}"));
                }
                "derivative" => {
                    let unit = int_arg(args.get(1), "time interval")?.max(1);
                    let ignore_negative = int_arg(args.get(2), "ignore_negative").unwrap_or(0) != 0;
                    extra.push(format!(
                        "(CAST({v} AS DOUBLE) - lag(CAST({v} AS DOUBLE)) OVER {w}) / ((arrow_cast({t}, 'Int64') - lag(arrow_cast({t}, 'Int64')) OVER {w}) / {unit}.0) AS {f}"
                    ));
                    keep.push(if ignore_negative {
                        format!("{f} >= 0")
                    } else {
                        format!("{f} IS NOT NULL")
                    });
                }
                "top" | "bottom" => {
                    let n = int_arg(args.get(1), "k")?.clamp(1, 100);
                    let dir = if fname == "top" { "DESC" } else { "ASC" };
                    extra.push(format!("{v} AS {f}"));
                    extra.push(format!(
                        "row_number() OVER ({pby}ORDER BY {v} {dir} NULLS LAST, {t}) AS {k}"
                    ));
                    keep.push(format!("{k} <= {n} AND {f} IS NOT NULL"));
                }
                "tail" => {
                    let n = int_arg(args.get(1), "k")?.clamp(1, 100);
                    let off = int_arg(args.get(2), "offset").unwrap_or(0).max(0);
                    extra.push(format!("{v} AS {f}"));
                    extra.push(format!("row_number() OVER ({pby}ORDER BY {t} DESC) AS {k}"));
                    keep.push(format!("{k} > {off} AND {k} <= {}", off + n));
                }
                "unique" => {
                    let mut p2 = part.clone();
                    p2.push(v.clone());
                    extra.push(format!("{v} AS {f}"));
                    extra.push(format!(
                        "row_number() OVER (PARTITION BY {} ORDER BY {t}) AS {k}",
                        p2.join(", ")
                    ));
                    keep.push(format!("{k} = 1"));
                }
                "sample" => {
                    let n = int_arg(args.get(1), "k")?.clamp(1, 1000);
                    extra.push(format!("{v} AS {f}"));
                    extra.push(format!("row_number() OVER ({pby}ORDER BY random()) AS {k}"));
                    keep.push(format!("{k} <= {n}"));
                }
                "statecount" | "stateduration" => {
                    let state = self.state_args(fname, args, &scope)?;
                    let call = match state.unit {
                        None => format!("statecount({v}, '{}', {})", state.op, state.val),
                        Some(unit) => format!(
                            "stateduration({v}, '{}', {}, arrow_cast({t}, 'Int64'), {unit})",
                            state.op, state.val
                        ),
                    };
                    extra.push(format!("{call} OVER {w} AS {f}"));
                    keep.push("TRUE".into());
                }
                _ => unreachable!("is_rows_fn lists the handled names"),
            }
            cols.push(format!("{f} AS {}", q(name)));
        }
        if rows_fns > 1 {
            return Err(TaosError::new(
                Code::FUNC_FUNTION_ERROR,
                "Only one multi-row function is allowed in a query",
            ));
        }
        // SLIMIT, and LIMIT per partition, after execution (see `Slices`).
        if s.slimit.is_some() && part.is_empty() {
            return Err(TaosError::of(Code::PAR_SLIMIT_LEAK_PARTITION_GROUP_BY));
        }
        if s.slimit.is_some() && self.depth > 0 {
            return Err(unsupported("SLIMIT inside a subquery"));
        }
        let post = !part.is_empty()
            && self.depth == 0
            && (s.slimit.is_some() || (s.limit.is_some() && s.order_by.is_empty()));
        let visible = cols.len();
        let mut hidden_keys = Vec::new();
        if post {
            for (i, p) in part.iter().enumerate() {
                hidden_keys.push(cols.len());
                cols.push(format!("{p} AS {}", q(&format!("__fill_k{i}"))));
            }
        }
        let mut sql = format!(
            "SELECT {} FROM (SELECT *, {} FROM {from_sql}{where_sql}) AS {} WHERE {}",
            cols.join(", "),
            extra.join(", "),
            q("__x"),
            keep.join(" AND ")
        );
        let mut order: Vec<String> = s
            .order_by
            .iter()
            .map(|o| {
                let e = match &o.expr {
                    Expr::Column { table: None, name } if items.iter().any(|(_, a)| a == name) => {
                        q(name)
                    }
                    other => self.expr(other, &scope)?,
                };
                Ok(format!("{e} {}", if o.asc { "ASC" } else { "DESC" }))
            })
            .collect::<TaosResult<_>>()?;
        if order.is_empty() {
            order = part.clone();
            order.push(t.clone());
        }
        let _ = write!(sql, " ORDER BY {}", order.join(", "));
        let limit = s.limit.as_ref().map(|l| (l.offset.max(0), l.limit.max(0)));
        let slicing = if post {
            Some(FillPlan {
                fill: Fill::None,
                interval: 0,
                sliding: 0,
                visible,
                wstart: visible,
                keys: hidden_keys,
                roles: Vec::new(),
                range: scope.range,
                precision: scope.precision,
                values: Vec::new(),
                slices: Slices {
                    slimit: s.slimit.as_ref().map(|l| (l.offset.max(0), l.limit.max(0))),
                    limit,
                    per_partition: s.order_by.is_empty(),
                    one_slice: !s.order_by.is_empty(),
                },
            })
        } else {
            if let Some((offset, limit)) = limit {
                let _ = write!(sql, " LIMIT {limit} OFFSET {offset}");
            }
            None
        };
        let mut out_scope = Scope {
            precision: scope.precision,
            ..Default::default()
        };
        for (e, name) in &items {
            out_scope
                .cols
                .insert(name.clone(), scope.ty(e).unwrap_or(DataType::Null));
            out_scope.star.push(name.clone());
        }
        Ok((sql, slicing, out_scope))
    }

    fn tz_offset_units(&self, p: Precision) -> i64 {
        let now = chrono::DateTime::from_timestamp((self.cx.now_ns / 1_000_000_000) as i64, 0)
            .unwrap_or_default()
            .naive_utc();
        self.cx.tz.offset_at(now) as i64 * p.per_second()
    }

    /// The [start, end] a WHERE clause pins the primary timestamp to (for FILL and _qstart).
    fn query_range(&self, w: &Expr, ts: &str, scope: &Scope) -> (i64, i64) {
        let (mut a, mut b) = (i64::MIN, i64::MAX);
        let mut conj = Vec::new();
        split_and(w, &mut conj);
        for e in conj {
            if let Expr::Binary { op, left, right } = e {
                let (op, other) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column { name, .. }, o) if name == ts => (*op, o),
                    (o, Expr::Column { name, .. }) if name == ts => (flip(*op), o),
                    _ => continue,
                };
                let Some(v) = self.const_ts(other, scope.precision) else {
                    continue;
                };
                match op {
                    BinaryOp::Gt => a = a.max(v + 1),
                    BinaryOp::GtEq => a = a.max(v),
                    BinaryOp::Lt => b = b.min(v - 1),
                    BinaryOp::LtEq => b = b.min(v),
                    _ => {}
                }
            }
            if let Expr::Between {
                expr,
                low,
                high,
                negated: false,
            } = e
            {
                if matches!(expr.as_ref(), Expr::Column { name, .. } if name == ts) {
                    if let (Some(l), Some(h)) = (
                        self.const_ts(low, scope.precision),
                        self.const_ts(high, scope.precision),
                    ) {
                        a = a.max(l);
                        b = b.min(h);
                    }
                }
            }
        }
        (a, b)
    }

    /// A constant timestamp expression (string, epoch, NOW +- durations) in precision `p`.
    fn const_ts(&self, e: &Expr, p: Precision) -> Option<i64> {
        match e {
            Expr::Literal(Literal::Str(s)) | Expr::Literal(Literal::Timestamp(s)) => {
                parse_timestamp(s, p, self.cx.tz).ok()
            }
            Expr::Literal(Literal::Int(i)) => Some(*i),
            Expr::Function { name, args, .. } if name == "now" && args.is_empty() => {
                Some(p.from_nanos(self.cx.now_ns))
            }
            Expr::Function { name, args, .. } if name == "today" && args.is_empty() => {
                let now = p.from_nanos(self.cx.now_ns);
                let day = 86_400 * p.per_second();
                let off = self.tz_offset_units(p);
                Some((now + off).div_euclid(day) * day - off)
            }
            Expr::Binary {
                op: op @ (BinaryOp::Add | BinaryOp::Sub),
                left,
                right,
            } => {
                let base = self.const_ts(left, p)?;
                let d = match right.as_ref() {
                    Expr::Literal(Literal::Duration(d)) => d.in_precision(p)?,
                    Expr::Literal(Literal::Int(i)) => *i,
                    _ => return None,
                };
                Some(if *op == BinaryOp::Add {
                    base.checked_add(d)?
                } else {
                    base.checked_sub(d)?
                })
            }
            _ => None,
        }
    }

    fn literal_value(&self, l: &Literal, p: Precision) -> TaosResult<Value> {
        Ok(match l {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::BigInt(*i),
            Literal::UInt(u) => Value::UBigInt(*u),
            Literal::Float(f) => Value::Double(*f),
            Literal::Str(s) => Value::VarChar(s.clone()),
            Literal::Timestamp(s) => Value::Timestamp(parse_timestamp(s, p, self.cx.tz)?),
            Literal::Duration(d) => Value::BigInt(d.in_precision(p).unwrap_or(0)),
        })
    }

    fn literal(&self, l: &Literal, scope: &Scope) -> TaosResult<String> {
        Ok(match l {
            Literal::Null => "NULL".into(),
            Literal::Bool(b) => b.to_string(),
            Literal::Int(i) => i.to_string(),
            Literal::UInt(u) => format!("arrow_cast({u}, 'UInt64')"),
            Literal::Float(f) => {
                if f.is_finite() {
                    format!("{f:e}")
                } else {
                    return Err(TaosError::new(Code::PAR_WRONG_VALUE_TYPE, "Invalid number"));
                }
            }
            Literal::Str(s) => s_lit(s),
            Literal::Timestamp(s) => ts_lit(
                parse_timestamp(s, scope.precision, self.cx.tz)?,
                scope.precision,
            ),
            Literal::Duration(d) => d
                .in_precision(scope.precision)
                .ok_or_else(|| TaosError::new(Code::PAR_WRONG_VALUE_TYPE, "Invalid duration"))?
                .to_string(),
        })
    }

    fn column(&self, table: &Option<String>, name: &str, scope: &Scope) -> TaosResult<String> {
        match name {
            "_rowts" | "_c0" => {
                return scope.ts.as_deref().map(q).ok_or_else(|| {
                    TaosError::new(Code::PAR_INVALID_COLUMN, "Invalid column name: _rowts")
                })
            }
            "_wstart" | "_wend" | "_wduration" => {
                let Some((ws, we, wd)) = &scope.window else {
                    return Err(TaosError::new(
                        Code::PAR_INVALID_COLUMN,
                        format!("{name} is only valid in window queries"),
                    ));
                };
                return Ok(match name {
                    "_wstart" => ws.clone(),
                    "_wend" => we.clone(),
                    _ => wd.clone(),
                });
            }
            "_irowts" | "_isfilled" => {
                return Err(TaosError::new(
                    Code::PAR_NOT_ALLOWED_FUNC,
                    format!("{name} must be used with the INTERP function"),
                ))
            }
            "_qstart" => return Ok(ts_lit(scope.range.0.max(0), scope.precision)),
            "_qend" => {
                return Ok(ts_lit(
                    scope.range.1.min(scope.precision.max_ts()),
                    scope.precision,
                ))
            }
            _ => {}
        }
        if !scope.cols.contains_key(name) && !scope.cols.is_empty() {
            return Err(TaosError::new(
                Code::PAR_INVALID_COLUMN,
                format!("Invalid column name: {name}"),
            ));
        }
        Ok(match table {
            Some(t) if scope.aliases.contains_key(t) => format!("{}.{}", q(t), q(name)),
            Some(t) if !scope.aliases.is_empty() => {
                return Err(TaosError::new(
                    Code::PAR_INVALID_COLUMN,
                    format!("Invalid column name: {t}.{name}"),
                ))
            }
            _ => q(name),
        })
    }

    /// Lower an expression.
    fn expr(&self, e: &Expr, scope: &Scope) -> TaosResult<String> {
        Ok(match e {
            Expr::Literal(l) => self.literal(l, scope)?,
            Expr::Column { table, name } => self.column(table, name, scope)?,
            Expr::Star => "*".into(),
            Expr::Function {
                name,
                args,
                distinct,
            } => self.function(name, args, *distinct, scope)?,
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
            } => format!("(-{})", self.expr(expr, scope)?),
            Expr::Unary {
                op: UnaryOp::Not,
                expr,
            } => format!("(NOT {})", self.expr(expr, scope)?),
            Expr::Binary { op, left, right } => self.binary(*op, left, right, scope)?,
            Expr::IsNull { expr, negated } => {
                format!(
                    "({} IS {}NULL)",
                    self.expr(expr, scope)?,
                    if *negated { "NOT " } else { "" }
                )
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } if json::arrow(expr).is_some() => {
                let ge = self.binary(BinaryOp::GtEq, expr, low, scope)?;
                let le = self.binary(BinaryOp::LtEq, expr, high, scope)?;
                format!("({}({ge} AND {le}))", if *negated { "NOT " } else { "" })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let ts = scope.ty(expr) == Some(DataType::Timestamp);
                format!(
                    "({} {}BETWEEN {} AND {})",
                    self.expr(expr, scope)?,
                    if *negated { "NOT " } else { "" },
                    self.operand(low, ts, scope)?,
                    self.operand(high, ts, scope)?
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let ts = scope.ty(expr) == Some(DataType::Timestamp);
                let items: Vec<String> = list
                    .iter()
                    .map(|x| self.operand(x, ts, scope))
                    .collect::<TaosResult<_>>()?;
                format!(
                    "({} {}IN ({}))",
                    self.expr(expr, scope)?,
                    if *negated { "NOT " } else { "" },
                    items.join(", ")
                )
            }
            Expr::Case {
                operand,
                whens,
                else_,
            } => {
                let mut s = String::from("(CASE");
                if let Some(o) = operand {
                    let _ = write!(s, " {}", self.expr(o, scope)?);
                }
                for (w, t) in whens {
                    let _ = write!(
                        s,
                        " WHEN {} THEN {}",
                        self.expr(w, scope)?,
                        self.expr(t, scope)?
                    );
                }
                if let Some(x) = else_ {
                    let _ = write!(s, " ELSE {}", self.expr(x, scope)?);
                }
                s.push_str(" END)");
                s
            }
            Expr::Cast { expr, ty } => self.cast(expr, *ty, scope)?,
            Expr::Subquery(_) => return Err(unsupported("scalar subqueries")),
        })
    }

    /// A comparison operand: constant time expressions become timestamp literals when the
    /// other side is a timestamp (string times in the session zone, integers as epochs).
    fn operand(&self, e: &Expr, ts_context: bool, scope: &Scope) -> TaosResult<String> {
        if ts_context {
            if let Expr::Literal(Literal::Str(s)) = e {
                return Ok(ts_lit(
                    parse_timestamp(s, scope.precision, self.cx.tz)?,
                    scope.precision,
                ));
            }
            if let Some(v) = self.const_ts(e, scope.precision) {
                return Ok(ts_lit(v, scope.precision));
            }
        }
        self.expr(e, scope)
    }

    fn binary(&self, op: BinaryOp, l: &Expr, r: &Expr, scope: &Scope) -> TaosResult<String> {
        if let Some(sql) = self.json_cmp(op, l, r, scope)? {
            return Ok(sql);
        }
        // LIKE / MATCH on `tag->'key'` match the string value without its quotes.
        let lhs = || -> TaosResult<String> {
            match json::arrow(l) {
                Some((t, k)) => self.json_str(t, k, scope),
                None => self.expr(l, scope),
            }
        };
        let cmp = |o: &str| -> TaosResult<String> {
            let (lt, rt) = (
                scope.ty(l) == Some(DataType::Timestamp),
                scope.ty(r) == Some(DataType::Timestamp),
            );
            Ok(format!(
                "({} {o} {})",
                self.operand(l, rt, scope)?,
                self.operand(r, lt, scope)?
            ))
        };
        // TDengine arithmetic is DOUBLE, except timestamp +- duration.
        let arith = |o: &str| -> TaosResult<String> {
            if let Some(v) = self.const_ts(
                &Expr::Binary {
                    op,
                    left: Box::new(l.clone()),
                    right: Box::new(r.clone()),
                },
                scope.precision,
            ) {
                if matches!(op, BinaryOp::Add | BinaryOp::Sub)
                    && (self.const_ts(l, scope.precision).is_some()
                        && !matches!(l, Expr::Literal(Literal::Int(_))))
                {
                    return Ok(ts_lit(v, scope.precision));
                }
            }
            if scope.ty(l) == Some(DataType::Timestamp)
                && matches!(op, BinaryOp::Add | BinaryOp::Sub)
            {
                if let Expr::Literal(Literal::Duration(d)) = r {
                    let ns = d.nanos().ok_or_else(|| {
                        TaosError::new(Code::PAR_WRONG_VALUE_TYPE, "Invalid duration")
                    })?;
                    return Ok(format!(
                        "({} {o} INTERVAL '{ns} nanoseconds')",
                        self.expr(l, scope)?
                    ));
                }
            }
            Ok(format!(
                "(CAST({} AS DOUBLE) {o} CAST({} AS DOUBLE))",
                self.num(l, scope)?,
                self.num(r, scope)?
            ))
        };
        let infix = |o: &str| -> TaosResult<String> {
            Ok(format!(
                "({} {o} {})",
                self.expr(l, scope)?,
                self.expr(r, scope)?
            ))
        };
        // Division and modulo by zero give NULL, as in TDengine.
        let divide = |o: &str| -> TaosResult<String> {
            Ok(format!(
                "(CAST({} AS DOUBLE) {o} NULLIF(CAST({} AS DOUBLE), 0))",
                self.num(l, scope)?,
                self.num(r, scope)?
            ))
        };
        let bits = |o: &str| -> TaosResult<String> {
            Ok(format!(
                "(CAST({} AS BIGINT) {o} CAST({} AS BIGINT))",
                self.expr(l, scope)?,
                self.expr(r, scope)?
            ))
        };
        match op {
            BinaryOp::Add => arith("+"),
            BinaryOp::Sub => arith("-"),
            BinaryOp::Mul => arith("*"),
            BinaryOp::Div => divide("/"),
            BinaryOp::Mod => divide("%"),
            BinaryOp::BitAnd => bits("&"),
            BinaryOp::BitOr => bits("|"),
            BinaryOp::Eq => cmp("="),
            BinaryOp::NotEq => cmp("<>"),
            BinaryOp::Lt => cmp("<"),
            BinaryOp::LtEq => cmp("<="),
            BinaryOp::Gt => cmp(">"),
            BinaryOp::GtEq => cmp(">="),
            BinaryOp::And => infix("AND"),
            BinaryOp::Or => infix("OR"),
            BinaryOp::Like => Ok(format!("({} LIKE {})", lhs()?, self.expr(r, scope)?)),
            BinaryOp::NotLike => Ok(format!("({} NOT LIKE {})", lhs()?, self.expr(r, scope)?)),
            BinaryOp::Match => Ok(format!("regexp_like({}, {})", lhs()?, self.expr(r, scope)?)),
            BinaryOp::NMatch => Ok(format!(
                "(NOT regexp_like({}, {}))",
                lhs()?,
                self.expr(r, scope)?
            )),
            BinaryOp::Contains => self.json_contains(l, r, scope),
            BinaryOp::Arrow => self.json_get(l, r, scope),
        }
    }

    /// A numeric operand; timestamps count as their integer value (TDengine allows ts * 1).
    fn num(&self, e: &Expr, scope: &Scope) -> TaosResult<String> {
        let s = self.expr(e, scope)?;
        Ok(if scope.ty(e) == Some(DataType::Timestamp) {
            format!("arrow_cast({s}, 'Int64')")
        } else {
            s
        })
    }

    fn cast(&self, e: &Expr, ty: DataType, scope: &Scope) -> TaosResult<String> {
        let inner = self.expr(e, scope)?;
        let target = match ty {
            DataType::Bool => "'Boolean'",
            DataType::TinyInt => "'Int8'",
            DataType::SmallInt => "'Int16'",
            DataType::Int => "'Int32'",
            DataType::BigInt => "'Int64'",
            DataType::UTinyInt => "'UInt8'",
            DataType::USmallInt => "'UInt16'",
            DataType::UInt => "'UInt32'",
            DataType::UBigInt => "'UInt64'",
            DataType::Float => "'Float32'",
            DataType::Double => "'Float64'",
            DataType::VarChar(_) | DataType::NChar(_) | DataType::Json => {
                return Ok(format!("CAST({inner} AS VARCHAR)"));
            }
            DataType::Timestamp => {
                if let Expr::Literal(Literal::Str(s)) = e {
                    return Ok(ts_lit(
                        parse_timestamp(s, scope.precision, self.cx.tz)?,
                        scope.precision,
                    ));
                }
                return Ok(format!(
                    "arrow_cast(arrow_cast({inner}, 'Int64'), '{}')",
                    arrow_ts(scope.precision)
                ));
            }
            DataType::VarBinary(_) | DataType::Geometry(_) => "'Binary'",
            DataType::Null => "'Null'",
        };
        Ok(format!("arrow_cast({inner}, {target})"))
    }

    fn function(
        &self,
        name: &str,
        args: &[Expr],
        distinct: bool,
        scope: &Scope,
    ) -> TaosResult<String> {
        let a = |i: usize| -> TaosResult<String> {
            args.get(i).map(|x| self.expr(x, scope)).unwrap_or_else(|| {
                Err(TaosError::new(
                    Code::FUNC_FUNTION_ERROR,
                    format!("Invalid number of parameters : {name}"),
                ))
            })
        };
        let n_args = |lo: usize, hi: usize| -> TaosResult<()> {
            if args.len() < lo || args.len() > hi {
                Err(TaosError::new(
                    Code::FUNC_FUNTION_ERROR,
                    format!("Invalid number of parameters : {name}"),
                ))
            } else {
                Ok(())
            }
        };
        let ts = || {
            scope
                .ts
                .as_deref()
                .map(q)
                .ok_or_else(|| unsupported(&format!("{name} without a timestamp column")))
        };
        let d = if distinct { "DISTINCT " } else { "" };
        Ok(match name {
            "count" => {
                n_args(1, 1)?;
                match &args[0] {
                    Expr::Star => "count(*)".into(),
                    _ => format!("count({d}{})", a(0)?),
                }
            }
            "sum" | "avg" | "min" | "max" => {
                n_args(1, 1)?;
                format!("{name}({d}{})", a(0)?)
            }
            "stddev" | "std" | "stddev_pop" => format!("stddev_pop(CAST({} AS DOUBLE))", a(0)?),
            "spread" => format!(
                "(CAST(max({x}) AS DOUBLE) - CAST(min({x}) AS DOUBLE))",
                x = self.num(&args[0], scope)?
            ),
            "first" => format!(
                "first_value({x} ORDER BY {t}) FILTER (WHERE {x} IS NOT NULL)",
                x = a(0)?,
                t = ts()?
            ),
            "last" => format!(
                "last_value({x} ORDER BY {t}) FILTER (WHERE {x} IS NOT NULL)",
                x = a(0)?,
                t = ts()?
            ),
            "last_row" => format!("last_value({} ORDER BY {})", a(0)?, ts()?),
            "percentile" => {
                n_args(2, 2)?;
                format!(
                    "percentile_cont(CAST({} AS DOUBLE) / 100.0) WITHIN GROUP (ORDER BY {})",
                    a(1)?,
                    a(0)?
                )
            }
            "apercentile" => {
                n_args(2, 3)?;
                format!(
                    "approx_percentile_cont(CAST({} AS DOUBLE) / 100.0) WITHIN GROUP (ORDER BY {})",
                    a(1)?,
                    a(0)?
                )
            }
            "hyperloglog" => format!("approx_distinct({})", a(0)?),
            "elapsed" => {
                n_args(1, 2)?;
                let unit = match args.get(1) {
                    Some(Expr::Literal(Literal::Duration(u))) => {
                        u.in_precision(scope.precision).unwrap_or(1).max(1)
                    }
                    _ => 1,
                };
                format!(
                    "(CAST(arrow_cast(max({x}), 'Int64') - arrow_cast(min({x}), 'Int64') AS DOUBLE) / {unit})",
                    x = a(0)?
                )
            }
            "if" => {
                n_args(3, 3)?;
                format!("(CASE WHEN {} THEN {} ELSE {} END)", a(0)?, a(1)?, a(2)?)
            }
            // Scalars that differ from DataFusion's spelling.
            "length" => format!("octet_length({})", a(0)?),
            "char_length" => format!("character_length({})", a(0)?),
            "pow" => format!(
                "power(CAST({} AS DOUBLE), CAST({} AS DOUBLE))",
                a(0)?,
                a(1)?
            ),
            "log" if args.len() == 2 => {
                format!("log(CAST({} AS DOUBLE), CAST({} AS DOUBLE))", a(1)?, a(0)?)
            }
            "log" => format!("ln(CAST({} AS DOUBLE))", a(0)?),
            "truncate" => format!("trunc(CAST({} AS DOUBLE), {})", a(0)?, a(1)?),
            "substr" | "substring" => match args.len() {
                2 => format!("substr({}, {})", a(0)?, a(1)?),
                _ => format!("substr({}, {}, {})", a(0)?, a(1)?, a(2)?),
            },
            "now" => ts_lit(scope.precision.from_nanos(self.cx.now_ns), scope.precision),
            "today" => ts_lit(
                self.const_ts(
                    &Expr::Function {
                        name: "today".into(),
                        args: vec![],
                        distinct: false,
                    },
                    scope.precision,
                )
                .unwrap_or(0),
                scope.precision,
            ),
            "timezone" => s_lit(&self.cx.tz.name()),
            "database" => self
                .cx
                .db
                .map(s_lit)
                .unwrap_or_else(|| "arrow_cast(NULL, 'Utf8')".into()),
            "server_version" | "client_version" => s_lit(common::SERVER_VERSION),
            "server_status" => "1".into(),
            "current_user" | "user" => s_lit(&format!("{}@localhost", self.cx.user)),
            "timetruncate" => {
                n_args(2, 3)?;
                let Some(Expr::Literal(Literal::Duration(u))) = args.get(1) else {
                    return Err(TaosError::new(
                        Code::FUNC_FUNTION_ERROR,
                        "timetruncate needs a time unit such as 1d",
                    ));
                };
                let p = scope.precision;
                let iv = dur_units(u, p)?;
                let use_tz = !matches!(args.get(2), Some(Expr::Literal(Literal::Int(0))));
                let shift = if use_tz && iv >= 86_400 * p.per_second() {
                    self.tz_offset_units(p)
                } else {
                    0
                };
                format!(
                    "date_bin(INTERVAL '{} nanoseconds', {}, {})",
                    p.to_nanos(iv),
                    a(0)?,
                    ts_lit(-shift, p)
                )
            }
            // Everything else by name: DataFusion built-ins (abs, ceil, floor, round, sqrt, sin,
            // concat, lower, upper, ltrim, rtrim, replace, ...) and our registered TDengine UDFs.
            other => {
                let lowered: Vec<String> = args
                    .iter()
                    .map(|x| self.expr(x, scope))
                    .collect::<TaosResult<_>>()?;
                // Time-series UDFs take the primary timestamp as an extra last argument.
                let mut lowered = lowered;
                if crate::functions::needs_ts(other) {
                    lowered.push(ts()?);
                }
                format!("{other}({d}{})", lowered.join(", "))
            }
        })
    }
}

/// Replace references to select-list aliases (that are not also source columns) by the
/// aliased expressions.
fn subst_aliases(e: &Expr, items: &[(Expr, String)], scope: &Scope) -> Expr {
    match e {
        Expr::Column { table: None, name } if !scope.cols.contains_key(name) => items
            .iter()
            .find(|(_, a)| a == name)
            .map(|(x, _)| x.clone())
            .unwrap_or_else(|| e.clone()),
        Expr::Binary { op, left, right } => Expr::Binary {
            op: *op,
            left: Box::new(subst_aliases(left, items, scope)),
            right: Box::new(subst_aliases(right, items, scope)),
        },
        Expr::Unary { op, expr } => Expr::Unary {
            op: *op,
            expr: Box::new(subst_aliases(expr, items, scope)),
        },
        Expr::IsNull { expr, negated } => Expr::IsNull {
            expr: Box::new(subst_aliases(expr, items, scope)),
            negated: *negated,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => Expr::Between {
            expr: Box::new(subst_aliases(expr, items, scope)),
            low: Box::new(subst_aliases(low, items, scope)),
            high: Box::new(subst_aliases(high, items, scope)),
            negated: *negated,
        },
        other => other.clone(),
    }
}

fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
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

/// A window length in precision units (calendar months/years approximated for FILL steps).
fn dur_units(d: &DurationLit, p: Precision) -> TaosResult<i64> {
    match d.in_precision(p) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(TaosError::new(
            Code::PAR_WRONG_VALUE_TYPE,
            format!("Invalid duration {}{}", d.value, d.unit),
        )),
    }
}

pub const AGGREGATES: &[&str] = &[
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
    "std",
    "stddev_pop",
    "percentile",
    "apercentile",
    "hyperloglog",
    "elapsed",
    "twa",
    "irate",
    "mode",
    "leastsquares",
    "histogram",
];

/// TDengine functions that output several rows per group.
pub const ROWS_FUNCTIONS: &[&str] = &[
    "diff",
    "csum",
    "mavg",
    "derivative",
    "top",
    "bottom",
    "tail",
    "unique",
    "sample",
    "statecount",
    "stateduration",
];

fn is_rows_fn(e: &Expr) -> bool {
    matches!(e, Expr::Function { name, .. } if ROWS_FUNCTIONS.contains(&name.as_str()))
}

pub fn is_agg(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args, .. } => {
            AGGREGATES.contains(&name.as_str())
                || crate::functions::is_aggregate(name)
                || args.iter().any(is_agg)
        }
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } => {
            is_agg(expr)
        }
        Expr::Binary { left, right, .. } => is_agg(left) || is_agg(right),
        Expr::Case {
            operand,
            whens,
            else_,
        } => {
            operand.as_deref().map(is_agg).unwrap_or(false)
                || whens.iter().any(|(a, b)| is_agg(a) || is_agg(b))
                || else_.as_deref().map(is_agg).unwrap_or(false)
        }
        _ => false,
    }
}

fn role_of(e: &Expr) -> Role {
    match e {
        Expr::Column { name, .. } if name == "_wstart" => Role::WStart,
        Expr::Column { name, .. } if name == "_wend" => Role::WEnd,
        Expr::Column { name, .. } if name == "_wduration" => Role::WDuration,
        e if is_agg(e) => Role::Agg,
        _ => Role::Partition,
    }
}

/// The column name TDengine shows for an expression: its text, lower-cased as parsed.
pub fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Column {
            table: Some(t),
            name,
        } => format!("{t}.{name}"),
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
        Expr::Function {
            name,
            args,
            distinct,
        } => format!(
            "{name}({}{})",
            if *distinct { "distinct " } else { "" },
            args.iter().map(expr_name).collect::<Vec<_>>().join(",")
        ),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
        } => format!("-{}", expr_name(expr)),
        Expr::Unary {
            op: UnaryOp::Not,
            expr,
        } => format!("not {}", expr_name(expr)),
        Expr::Binary { op, left, right } => {
            let o = match op {
                BinaryOp::Add => "+",
                BinaryOp::Sub => "-",
                BinaryOp::Mul => "*",
                BinaryOp::Div => "/",
                BinaryOp::Mod => "%",
                BinaryOp::BitAnd => "&",
                BinaryOp::BitOr => "|",
                BinaryOp::Eq => "=",
                BinaryOp::NotEq => "<>",
                BinaryOp::Lt => "<",
                BinaryOp::LtEq => "<=",
                BinaryOp::Gt => ">",
                BinaryOp::GtEq => ">=",
                BinaryOp::And => " and ",
                BinaryOp::Or => " or ",
                BinaryOp::Like => " like ",
                BinaryOp::NotLike => " not like ",
                BinaryOp::Match => " match ",
                BinaryOp::NMatch => " nmatch ",
                BinaryOp::Contains => " contains ",
                BinaryOp::Arrow => "->",
            };
            format!("{}{o}{}", expr_name(left), expr_name(right))
        }
        Expr::IsNull { expr, negated } => format!(
            "{} is {}null",
            expr_name(expr),
            if *negated { "not " } else { "" }
        ),
        Expr::Cast { expr, ty } => {
            format!("cast({} as {})", expr_name(expr), ty.sql().to_lowercase())
        }
        Expr::Case { .. } => "case".into(),
        Expr::Between { expr, .. } => format!("{} between", expr_name(expr)),
        Expr::InList { expr, .. } => format!("{} in", expr_name(expr)),
        Expr::Subquery(_) => "subquery".into(),
    }
}
