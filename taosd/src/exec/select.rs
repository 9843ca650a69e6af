//! SELECT goes to the DataFusion engine (`taos-query`); what stays here is the primary-key
//! time range of a WHERE clause, which DELETE needs to turn into a tombstone.

use crate::coordinator::Coordinator;
use crate::exec::eval::{eval, EvalCtx};
use crate::exec::{Output, ResultRows, Session};
use common::{TaosResult, Value};
use std::sync::Arc;
use taos_query::QueryContext;
use taos_sql::ast::{BinaryOp, Expr, FromItem, Literal, Query};

impl Coordinator {
    pub async fn select(self: &Arc<Self>, s: &Session, q: Query) -> TaosResult<Output> {
        let mut dbs = Vec::new();
        collect_dbs(&q, s.db.as_deref(), &mut dbs);
        for db in dbs {
            if db != "information_schema" && db != "performance_schema" {
                self.check_privilege(s, &db, false)?;
            }
        }
        let qc = QueryContext {
            db: s.db.as_deref(),
            tz: s.tz,
            user: &s.user,
        };
        let out = self.query_engine().select(&q, &qc).await?;
        Ok(Output::Rows(ResultRows {
            fields: out.fields,
            precision: out.precision,
            rows: out.rows,
        }))
    }
}

/// Databases a query reads (for privilege checks).
fn collect_dbs(q: &Query, current: Option<&str>, out: &mut Vec<String>) {
    fn from(f: &FromItem, current: Option<&str>, out: &mut Vec<String>) {
        match f {
            FromItem::Table { name, .. } => {
                if let Some(db) = name.db.as_deref().or(current) {
                    out.push(db.to_string());
                }
            }
            FromItem::Subquery { query, .. } => collect_dbs(query, current, out),
            FromItem::Join { left, right, .. } => {
                from(left, current, out);
                from(right, current, out);
            }
        }
    }
    match q {
        Query::Select(s) => {
            if let Some(f) = &s.from {
                from(f, current, out);
            }
        }
        Query::Union { left, right, .. } => {
            collect_dbs(left, current, out);
            collect_dbs(right, current, out);
        }
    }
}

/// A time range `[start, end]` and whether the filter was nothing but that range.
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
    pub exact: bool,
}

/// Extract the primary-timestamp bounds from the AND-conjuncts of a WHERE clause.
pub fn time_range(w: &Expr, ts_name: &str, ctx: &EvalCtx) -> TaosResult<TimeRange> {
    let mut r = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
        exact: true,
    };
    fn is_ts(e: &Expr, ts: &str) -> bool {
        matches!(e, Expr::Column { name, .. } if name == ts || name == "_rowts" || name == "_c0")
    }
    fn bound(e: &Expr, ctx: &EvalCtx) -> Option<i64> {
        let v = match e {
            Expr::Literal(Literal::Str(s)) => {
                Value::Timestamp(common::time::parse_timestamp(s, ctx.precision, ctx.tz).ok()?)
            }
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
            Expr::Binary {
                op: BinaryOp::And,
                left,
                right,
            } => {
                walk(left, ts, ctx, r);
                walk(right, ts, ctx, r);
            }
            Expr::Binary { op, left, right } if is_ts(left, ts) || is_ts(right, ts) => {
                let (op, other) = if is_ts(left, ts) {
                    (*op, right)
                } else {
                    (flip(*op), left)
                };
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
            Expr::Between {
                expr,
                low,
                high,
                negated: false,
            } if is_ts(expr, ts) => match (bound(low, ctx), bound(high, ctx)) {
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
