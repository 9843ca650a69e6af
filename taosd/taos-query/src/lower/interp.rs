//! Lowering of INTERP queries: the select list and the RANGE / EVERY / FILL clauses are
//! checked the way TDengine's parser checks them, the input rows are selected in time order
//! per partition, and the slices are left to [`crate::interp`] (after execution).

use super::{dur_units, is_agg, is_rows_fn, q, Lowerer, Scope};
use crate::interp::{InterpPlan, Output, MAX_SLICES};
use common::{Code, DataType, TaosError, TaosResult, Value};
use taos_sql::ast::{Expr, Fill, Literal, Select, UnaryOp};

/// Does the select list call INTERP (at any depth)?
pub(super) fn has_interp(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args, .. } => name == "interp" || args.iter().any(has_interp),
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } => {
            has_interp(expr)
        }
        Expr::Binary { left, right, .. } => has_interp(left) || has_interp(right),
        _ => false,
    }
}

fn clause_error(msg: &str) -> TaosError {
    TaosError::new(Code::PAR_INVALID_INTERP_CLAUSE, msg)
}

fn not_allowed(msg: impl Into<String>) -> TaosError {
    TaosError::new(Code::PAR_NOT_ALLOWED_FUNC, msg)
}

/// RANGE / EVERY / FILL without INTERP (and without an INTERVAL window for FILL).
pub(super) fn check_interp_clauses(s: &Select) -> TaosResult<()> {
    let fill_without_window = s.fill.is_some() && s.window.is_none();
    if s.range.is_some() || s.every.is_some() || fill_without_window {
        return Err(clause_error(
            "Invalid usage of RANGE clause, EVERY clause or FILL clause",
        ));
    }
    Ok(())
}

impl<'a> Lowerer<'a> {
    /// `SELECT _irowts, interp(c) ... FROM t [WHERE ..] [PARTITION BY ..] RANGE(..) EVERY(..)
    /// FILL(..)`: returns the SQL of the input rows and the plan of the slices.
    pub(super) fn select_interp(
        &mut self,
        s: &Select,
        from_sql: &str,
        where_sql: &str,
        scope: &Scope,
        items: &[(Expr, String)],
    ) -> TaosResult<(String, InterpPlan)> {
        if s.window.is_some() || !s.group_by.is_empty() {
            return Err(not_allowed(
                "INTERP cannot be used with a window clause or GROUP BY",
            ));
        }
        if s.slimit.is_some() {
            return Err(super::unsupported("SLIMIT with INTERP"));
        }
        let missing = || clause_error("Missing RANGE clause, EVERY clause or FILL clause");
        let (Some((a, b)), Some(fill)) = (&s.range, &s.fill) else {
            return Err(missing());
        };
        let p = scope.precision;
        let bound = |e: &Expr| {
            self.const_ts(e, p)
                .ok_or_else(|| clause_error("RANGE needs constant timestamps"))
        };
        let (start, end) = (bound(a)?, bound(b)?);
        if start > end {
            return Err(clause_error("The RANGE start is after its end"));
        }
        let every = match &s.every {
            Some(d) => dur_units(d, p)?,
            // `RANGE(ts)`: a single slice, EVERY may be left out.
            None if start == end => 1,
            None => return Err(missing()),
        };
        if (end - start) / every >= MAX_SLICES {
            return Err(TaosError::of(Code::PAR_INVALID_FILL_TIME_RANGE));
        }
        let ts = scope
            .ts
            .clone()
            .ok_or_else(|| not_allowed("INTERP needs a primary timestamp column"))?;
        if from_sql.is_empty() {
            return Err(not_allowed("INTERP needs a FROM clause"));
        }
        let by_table = s
            .partition_by
            .iter()
            .any(|k| matches!(k, Expr::Column { name, .. } if name == "tbname"));
        let mut cols = vec![format!("{} AS {}", q(&ts), q("__ts"))];
        let mut outputs = Vec::with_capacity(items.len());
        let mut n_interp = 0;
        for (e, name) in items {
            let out = match e {
                Expr::Column { name: c, .. } if c == "_irowts" => Output::IRowTs(name.clone()),
                Expr::Column { name: c, .. } if c == "_isfilled" => {
                    Output::IsFilled(name.clone())
                }
                Expr::Function { name: f, args, .. } if f == "interp" => {
                    let (arg, ignore_null) = interp_args(args, scope)?;
                    n_interp += 1;
                    let col = cols.len();
                    cols.push(format!(
                        "{} AS {}",
                        self.expr(arg, scope)?,
                        q(&format!("__v{col}"))
                    ));
                    Output::Interp {
                        name: name.clone(),
                        col,
                        ignore_null,
                    }
                }
                e if has_interp(e) || is_agg(e) || is_rows_fn(e) => {
                    return Err(not_allowed(format!(
                        "{name}: INTERP cannot be combined with other functions"
                    )))
                }
                e if matches!(e, Expr::Literal(_))
                    || s.partition_by.iter().any(|k| k == e)
                    || (by_table
                        && matches!(e, Expr::Column { name: c, .. } if scope.tags.contains(c))) =>
                {
                    let col = cols.len();
                    cols.push(format!(
                        "{} AS {}",
                        self.expr(e, scope)?,
                        q(&format!("__c{col}"))
                    ));
                    Output::Constant {
                        name: name.clone(),
                        col,
                    }
                }
                _ => {
                    return Err(not_allowed(format!(
                        "{name}: only _irowts, _isfilled, INTERP and partition keys can be selected with INTERP"
                    )))
                }
            };
            outputs.push(out);
        }
        let values = match fill {
            Fill::Value(vs) => {
                if vs.len() < n_interp {
                    return Err(TaosError::new(
                        Code::PAR_WRONG_VALUE_TYPE,
                        "Too few fill values specified",
                    ));
                }
                if vs.len() > n_interp {
                    return Err(TaosError::new(
                        Code::PAR_WRONG_VALUE_TYPE,
                        "Too many fill values specified",
                    ));
                }
                vs.iter()
                    .map(|v| self.fill_value(v, p))
                    .collect::<TaosResult<_>>()?
            }
            _ => Vec::new(),
        };
        for o in &s.order_by {
            let by_irowts = matches!(&o.expr, Expr::Column { name, .. } if name == "_irowts"
                || items.iter().any(|(e, a)| a == name && matches!(e, Expr::Column { name: c, .. } if c == "_irowts")));
            if !by_irowts || !o.asc {
                return Err(super::unsupported(
                    "ORDER BY with INTERP other than _irowts ASC",
                ));
            }
        }
        let mut keys = Vec::new();
        let mut order = Vec::new();
        for (i, k) in s.partition_by.iter().enumerate() {
            let alias = q(&format!("__k{i}"));
            keys.push(cols.len());
            cols.push(format!("{} AS {alias}", self.expr(k, scope)?));
            order.push(alias);
        }
        order.push(q("__ts"));
        let sql = format!(
            "SELECT {} FROM {from_sql}{where_sql} ORDER BY {}",
            cols.join(", "),
            order.join(", ")
        );
        let plan = InterpPlan {
            start,
            end,
            every,
            fill: fill.clone(),
            values,
            outputs,
            ts: 0,
            keys,
            limit: s.limit.as_ref().map(|l| (l.offset.max(0), l.limit.max(0))),
        };
        Ok((sql, plan))
    }

    /// A FILL(VALUE, ...) constant: a literal, possibly negated.
    pub(super) fn fill_value(&self, v: &Expr, p: common::Precision) -> TaosResult<Value> {
        match v {
            Expr::Literal(l) => self.literal_value(l, p),
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
            } => match expr.as_ref() {
                Expr::Literal(Literal::Int(i)) => Ok(Value::BigInt(-i)),
                Expr::Literal(Literal::Float(x)) => Ok(Value::Double(-x)),
                _ => Err(super::unsupported("FILL(VALUE) with expressions")),
            },
            _ => Err(super::unsupported("FILL(VALUE) with expressions")),
        }
    }
}

/// `interp(expr [, ignore_null])`: a numeric column or expression, and 0 or 1.
fn interp_args<'e>(args: &'e [Expr], scope: &Scope) -> TaosResult<(&'e Expr, bool)> {
    let (arg, flag) = match args {
        [a] => (a, None),
        [a, f] => (a, Some(f)),
        _ => {
            return Err(TaosError::new(
                Code::FUNC_FUNTION_PARA_NUM,
                "Invalid number of parameters : interp",
            ))
        }
    };
    let numeric = match scope.ty(arg) {
        Some(t) => !matches!(
            t,
            DataType::Timestamp
                | DataType::Bool
                | DataType::VarChar(_)
                | DataType::NChar(_)
                | DataType::Json
                | DataType::VarBinary(_)
                | DataType::Geometry(_)
        ),
        None => !matches!(arg, Expr::Literal(_)),
    };
    if !numeric {
        return Err(TaosError::new(
            Code::FUNC_FUNTION_PARA_TYPE,
            "Invalid parameter data type : interp",
        ));
    }
    let ignore_null = match flag {
        None => false,
        Some(Expr::Literal(Literal::Int(0))) => false,
        Some(Expr::Literal(Literal::Int(1))) => true,
        Some(_) => {
            return Err(TaosError::new(
                Code::FUNC_FUNTION_PARA_VALUE,
                "Invalid parameter value : interp ignore_null_values must be 0 or 1",
            ))
        }
    };
    Ok((arg, ignore_null))
}
