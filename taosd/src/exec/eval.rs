//! Row-at-a-time expression evaluation for INSERT values, tag values and the simple SELECT of
//! this stage. (The full query language lowers to DataFusion; this stays for constant folding.)

use common::time::parse_timestamp;
use common::{Code, DataType, Precision, SessionTz, TaosError, TaosResult, Value};
use taos_sql::ast::{BinaryOp, Expr, Literal, UnaryOp};

/// What an expression can see: the session, and optionally a row.
pub struct EvalCtx<'a> {
    pub precision: Precision,
    pub tz: SessionTz,
    pub db: Option<&'a str>,
    pub user: &'a str,
    /// Resolves a column / tag / pseudo column to its value in the current row.
    pub row: Option<&'a (dyn Fn(&str) -> Option<Value> + Sync)>,
}

fn type_err(msg: impl Into<String>) -> TaosError {
    TaosError::new(Code::PAR_WRONG_VALUE_TYPE, msg)
}

pub fn literal(l: &Literal, ctx: &EvalCtx) -> TaosResult<Value> {
    Ok(match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(i) => Value::BigInt(*i),
        Literal::UInt(u) => Value::UBigInt(*u),
        Literal::Float(f) => Value::Double(*f),
        Literal::Str(s) => Value::VarChar(s.clone()),
        Literal::Timestamp(s) => Value::Timestamp(parse_timestamp(s, ctx.precision, ctx.tz)?),
        Literal::Duration(d) => Value::BigInt(
            d.in_precision(ctx.precision)
                .ok_or_else(|| type_err(format!("Invalid duration {}{}", d.value, d.unit)))?,
        ),
    })
}

pub fn eval(e: &Expr, ctx: &EvalCtx) -> TaosResult<Value> {
    match e {
        Expr::Literal(l) => literal(l, ctx),
        Expr::Column { name, table } => {
            if let Some(row) = ctx.row {
                if let Some(v) = row(name) {
                    return Ok(v);
                }
            }
            let shown = match table {
                Some(t) => format!("{t}.{name}"),
                None => name.clone(),
            };
            Err(TaosError::new(
                Code::PAR_INVALID_COLUMN,
                format!("Invalid column name: {shown}"),
            ))
        }
        Expr::Star => Err(type_err("'*' is not a value")),
        Expr::Function { name, args, .. } => scalar_fn(name, args, ctx),
        Expr::Unary { op, expr } => {
            let v = eval(expr, ctx)?;
            match op {
                UnaryOp::Neg => Ok(match v {
                    Value::Null => Value::Null,
                    Value::Double(f) => Value::Double(-f),
                    Value::Float(f) => Value::Float(-f),
                    Value::UBigInt(u) => Value::Double(-(u as f64)),
                    other => match other.as_i64() {
                        Some(i) => Value::BigInt(
                            i.checked_neg()
                                .ok_or_else(|| type_err("integer overflow"))?,
                        ),
                        None => return Err(type_err("Invalid operand of unary minus")),
                    },
                }),
                UnaryOp::Not => Ok(match truth(&v) {
                    None => Value::Null,
                    Some(b) => Value::Bool(!b),
                }),
            }
        }
        Expr::Binary { op, left, right } => {
            let l = eval(left, ctx)?;
            // Short-circuit logic keeps `x IS NULL OR ...` cheap and null-correct.
            match op {
                BinaryOp::And => {
                    if truth(&l) == Some(false) {
                        return Ok(Value::Bool(false));
                    }
                    let r = eval(right, ctx)?;
                    return Ok(match (truth(&l), truth(&r)) {
                        (_, Some(false)) => Value::Bool(false),
                        (Some(true), Some(true)) => Value::Bool(true),
                        _ => Value::Null,
                    });
                }
                BinaryOp::Or => {
                    if truth(&l) == Some(true) {
                        return Ok(Value::Bool(true));
                    }
                    let r = eval(right, ctx)?;
                    return Ok(match (truth(&l), truth(&r)) {
                        (_, Some(true)) => Value::Bool(true),
                        (Some(false), Some(false)) => Value::Bool(false),
                        _ => Value::Null,
                    });
                }
                _ => {}
            }
            let r = eval(right, ctx)?;
            let r = align(&l, r, ctx)?;
            let l = align(&r, l, ctx)?;
            binary(*op, l, r)
        }
        Expr::IsNull { expr, negated } => {
            let v = eval(expr, ctx)?;
            Ok(Value::Bool(v.is_null() != *negated))
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, ctx)?;
            let lo = align(&v, eval(low, ctx)?, ctx)?;
            let hi = align(&v, eval(high, ctx)?, ctx)?;
            match (compare(&v, &lo), compare(&v, &hi)) {
                (Some(a), Some(b)) => Ok(Value::Bool((a.is_ge() && b.is_le()) != *negated)),
                _ => Ok(Value::Null),
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            for item in list {
                let x = align(&v, eval(item, ctx)?, ctx)?;
                if compare(&v, &x) == Some(std::cmp::Ordering::Equal) {
                    return Ok(Value::Bool(!*negated));
                }
            }
            Ok(Value::Bool(*negated))
        }
        Expr::Case {
            operand,
            whens,
            else_,
        } => {
            let op = match operand {
                Some(o) => Some(eval(o, ctx)?),
                None => None,
            };
            for (w, t) in whens {
                let hit = match &op {
                    Some(o) => compare(o, &eval(w, ctx)?) == Some(std::cmp::Ordering::Equal),
                    None => truth(&eval(w, ctx)?) == Some(true),
                };
                if hit {
                    return eval(t, ctx);
                }
            }
            match else_ {
                Some(e) => eval(e, ctx),
                None => Ok(Value::Null),
            }
        }
        Expr::Cast { expr, ty } => {
            let v = eval(expr, ctx)?;
            cast(v, *ty, ctx)
        }
        Expr::Subquery(_) => Err(TaosError::new(
            Code::PAR_NOT_SUPPORTED,
            "subqueries are not supported here yet",
        )),
    }
}

/// A string compared with a timestamp is read as a time in the session's zone and the data's
/// precision, as TDengine does (`ts > '2024-01-01 00:00:00'`).
fn align(other: &Value, v: Value, ctx: &EvalCtx) -> TaosResult<Value> {
    match (other, v) {
        (Value::Timestamp(_), Value::VarChar(s)) => Ok(Value::Timestamp(parse_timestamp(
            &s,
            ctx.precision,
            ctx.tz,
        )?)),
        (_, v) => Ok(v),
    }
}

pub fn cast(v: Value, ty: DataType, ctx: &EvalCtx) -> TaosResult<Value> {
    match (ty, &v) {
        (DataType::Timestamp, Value::VarChar(s) | Value::NChar(s)) => {
            Ok(Value::Timestamp(parse_timestamp(s, ctx.precision, ctx.tz)?))
        }
        (DataType::VarChar(_) | DataType::NChar(_), Value::Timestamp(_)) => {
            let s = v.render();
            Value::VarChar(s).coerce(ty, "cast")
        }
        _ => v.coerce(ty, "cast"),
    }
}

/// SQL truth value: None for NULL.
pub fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::VarChar(s) | Value::NChar(s) => Some(!s.is_empty() && s != "0"),
        other => other.as_f64().map(|f| f != 0.0),
    }
}

fn is_text(v: &Value) -> bool {
    matches!(v, Value::VarChar(_) | Value::NChar(_) | Value::Json(_))
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => Some(s),
        _ => None,
    }
}

/// Three-valued comparison; None when either side is NULL or they do not compare.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(x), Some(y)) = (text(a), text(b)) {
        return Some(x.cmp(y));
    }
    if let (Value::VarBinary(x) | Value::Geometry(x), Value::VarBinary(y) | Value::Geometry(y)) =
        (a, b)
    {
        return Some(x.cmp(y));
    }
    let int_like = |v: &Value| {
        !matches!(v, Value::Float(_) | Value::Double(_) | Value::UBigInt(_)) && !is_text(v)
    };
    if int_like(a) && int_like(b) {
        return Some(a.as_i64()?.cmp(&b.as_i64()?));
    }
    let x = match a {
        Value::VarChar(s) | Value::NChar(s) => s.trim().parse::<f64>().ok()?,
        _ => a.as_f64()?,
    };
    let y = match b {
        Value::VarChar(s) | Value::NChar(s) => s.trim().parse::<f64>().ok()?,
        _ => b.as_f64()?,
    };
    x.partial_cmp(&y)
}

/// `LIKE` with `%` and `_`, `\` escaping.
pub fn like(s: &str, pat: &str) -> bool {
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && go(&s[1..], &p[2..]),
            Some(c) => !s.is_empty() && s[0] == *c && go(&s[1..], &p[1..]),
        }
    }
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    go(&s, &p)
}

fn binary(op: BinaryOp, l: Value, r: Value) -> TaosResult<Value> {
    use std::cmp::Ordering::*;
    let cmp = |want: &dyn Fn(std::cmp::Ordering) -> bool| -> Value {
        match compare(&l, &r) {
            Some(o) => Value::Bool(want(o)),
            None => Value::Null,
        }
    };
    Ok(match op {
        BinaryOp::Eq => cmp(&|o| o == Equal),
        BinaryOp::NotEq => cmp(&|o| o != Equal),
        BinaryOp::Lt => cmp(&|o| o == Less),
        BinaryOp::LtEq => cmp(&|o| o != Greater),
        BinaryOp::Gt => cmp(&|o| o == Greater),
        BinaryOp::GtEq => cmp(&|o| o != Less),
        BinaryOp::Like | BinaryOp::NotLike => match (text(&l), text(&r)) {
            (Some(s), Some(p)) => Value::Bool(like(s, p) == (op == BinaryOp::Like)),
            _ => Value::Null,
        },
        BinaryOp::Match | BinaryOp::NMatch => match (text(&l), text(&r)) {
            // Regex support arrives with the query-language issue; substring match until then.
            (Some(s), Some(p)) => Value::Bool(s.contains(p) == (op == BinaryOp::Match)),
            _ => Value::Null,
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
            if l.is_null() || r.is_null() {
                return Ok(Value::Null);
            }
            // Timestamp arithmetic stays integral (now - 1h); everything else is DOUBLE as in TDengine.
            let ts = matches!(l, Value::Timestamp(_)) || matches!(r, Value::Timestamp(_));
            let ints = |v: &Value| {
                v.as_i64().is_some()
                    && !matches!(v, Value::Float(_) | Value::Double(_) | Value::UBigInt(_))
            };
            if ts && ints(&l) && ints(&r) && matches!(op, BinaryOp::Add | BinaryOp::Sub) {
                let (a, b) = (l.as_i64().unwrap_or(0), r.as_i64().unwrap_or(0));
                let v = if op == BinaryOp::Add {
                    a.checked_add(b)
                } else {
                    a.checked_sub(b)
                };
                return v
                    .map(Value::Timestamp)
                    .ok_or_else(|| type_err("timestamp overflow"));
            }
            let (a, b) = (num(&l)?, num(&r)?);
            Value::Double(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => {
                    if b == 0.0 {
                        return Ok(Value::Null);
                    }
                    a / b
                }
                _ => {
                    if b == 0.0 {
                        return Ok(Value::Null);
                    }
                    a % b
                }
            })
        }
        BinaryOp::BitAnd | BinaryOp::BitOr => {
            if l.is_null() || r.is_null() {
                return Ok(Value::Null);
            }
            let (a, b) = (num(&l)? as i64, num(&r)? as i64);
            Value::BigInt(if op == BinaryOp::BitAnd { a & b } else { a | b })
        }
        BinaryOp::Contains | BinaryOp::Arrow => {
            return Err(TaosError::new(
                Code::PAR_NOT_SUPPORTED,
                "JSON tag operators are not supported yet",
            ))
        }
        BinaryOp::And | BinaryOp::Or => unreachable!("handled by eval"),
    })
}

fn num(v: &Value) -> TaosResult<f64> {
    match v {
        Value::VarChar(s) | Value::NChar(s) => Ok(s.trim().parse::<f64>().unwrap_or(0.0)),
        other => other
            .as_f64()
            .ok_or_else(|| type_err("Invalid operand for arithmetic")),
    }
}

fn scalar_fn(name: &str, args: &[Expr], ctx: &EvalCtx) -> TaosResult<Value> {
    let arg = |i: usize| -> TaosResult<Value> {
        args.get(i).map(|a| eval(a, ctx)).unwrap_or_else(|| {
            Err(TaosError::new(
                Code::FUNC_FUNTION_ERROR,
                format!("Invalid number of parameters: {name}"),
            ))
        })
    };
    let nargs = |n: usize| -> TaosResult<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(TaosError::new(
                Code::FUNC_FUNTION_ERROR,
                format!("Invalid number of parameters : {name}"),
            ))
        }
    };
    Ok(match name {
        "now" => {
            nargs(0)?;
            Value::Timestamp(ctx.precision.now())
        }
        "today" => {
            nargs(0)?;
            let now = ctx.precision.now();
            let per_day = 86_400 * ctx.precision.per_second();
            let utc = chrono::DateTime::from_timestamp(now / ctx.precision.per_second(), 0)
                .unwrap_or_default()
                .naive_utc();
            let off = ctx.tz.offset_at(utc) as i64 * ctx.precision.per_second();
            Value::Timestamp((now + off).div_euclid(per_day) * per_day - off)
        }
        "server_version" | "client_version" => Value::VarChar(common::SERVER_VERSION.into()),
        "server_status" => Value::Int(1),
        "database" => ctx
            .db
            .map(|d| Value::VarChar(d.into()))
            .unwrap_or(Value::Null),
        "current_user" | "user" => Value::VarChar(format!("{}@localhost", ctx.user)),
        "timezone" => Value::VarChar(ctx.tz.name()),
        "abs" => match arg(0)? {
            Value::Null => Value::Null,
            Value::Double(f) => Value::Double(f.abs()),
            Value::Float(f) => Value::Float(f.abs()),
            v => Value::BigInt(v.as_i64().unwrap_or(0).abs()),
        },
        "length" => match arg(0)? {
            Value::Null => Value::Null,
            v => Value::BigInt(v.render().len() as i64),
        },
        "lower" | "upper" => match arg(0)? {
            Value::Null => Value::Null,
            v => {
                let s = v.render();
                Value::VarChar(if name == "lower" {
                    s.to_lowercase()
                } else {
                    s.to_uppercase()
                })
            }
        },
        "concat" => {
            let mut s = String::new();
            for i in 0..args.len() {
                match arg(i)? {
                    Value::Null => return Ok(Value::Null),
                    v => s.push_str(&v.render()),
                }
            }
            Value::VarChar(s)
        }
        "to_unixtimestamp" => match arg(0)? {
            Value::VarChar(s) | Value::NChar(s) => {
                Value::BigInt(parse_timestamp(&s, ctx.precision, ctx.tz)?)
            }
            _ => Value::Null,
        },
        other => {
            return Err(TaosError::new(
                Code::FUNC_FUNTION_ERROR,
                format!("Invalid function name: {other}"),
            ))
        }
    })
}

/// Evaluate a value for a column of type `ty` (INSERT/TAGS): integers and strings become
/// timestamps in the database precision, durations add to timestamps, then range checks.
pub fn value_for(e: &Expr, ty: DataType, ctx: &EvalCtx, what: &str) -> TaosResult<Value> {
    let v = match e {
        Expr::Literal(Literal::Str(s)) if ty == DataType::Timestamp => {
            Value::Timestamp(parse_timestamp(s, ctx.precision, ctx.tz)?)
        }
        Expr::Literal(Literal::Str(s)) => Value::VarChar(s.clone()),
        _ => eval(e, ctx)?,
    };
    match (&v, ty) {
        (Value::VarChar(s), DataType::Timestamp) => {
            Ok(Value::Timestamp(parse_timestamp(s, ctx.precision, ctx.tz)?))
        }
        (Value::Bool(_) | Value::Float(_) | Value::Double(_), DataType::Timestamp) => Err(
            type_err(format!("Invalid timestamp value for column {what}")),
        ),
        _ => v.coerce(ty, what),
    }
}
