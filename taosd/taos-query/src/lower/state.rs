//! Arguments of STATECOUNT(expr, 'op', val) and STATEDURATION(expr, 'op', val [, unit]),
//! checked here so that bad input gets TDengine's parameter errors before planning.

use super::{Lowerer, Scope};
use common::{Code, DataType, TaosError, TaosResult};
use taos_sql::ast::{Expr, Literal, UnaryOp};

/// The lowered constant arguments; `unit` (precision units per output unit) only for
/// STATEDURATION.
pub(super) struct StateArgs {
    pub op: &'static str,
    pub val: String,
    pub unit: Option<i64>,
}

fn para(code: Code, msg: String) -> TaosError {
    TaosError::new(code, msg)
}

impl<'a> Lowerer<'a> {
    pub(super) fn state_args(
        &self,
        name: &str,
        args: &[Expr],
        scope: &Scope,
    ) -> TaosResult<StateArgs> {
        let max = if name == "stateduration" { 4 } else { 3 };
        if args.len() < 3 || args.len() > max {
            return Err(para(
                Code::FUNC_FUNTION_PARA_NUM,
                format!("Invalid number of parameters : {name}"),
            ));
        }
        let numeric = |t: Option<DataType>| {
            !matches!(
                t,
                Some(
                    DataType::Timestamp
                        | DataType::Bool
                        | DataType::VarChar(_)
                        | DataType::NChar(_)
                        | DataType::Json
                        | DataType::VarBinary(_)
                        | DataType::Geometry(_)
                )
            )
        };
        if !numeric(scope.ty(&args[0])) || matches!(args[0], Expr::Literal(_)) {
            return Err(para(
                Code::FUNC_FUNTION_PARA_TYPE,
                format!("Invalid parameter data type : {name}"),
            ));
        }
        let op = match &args[1] {
            Expr::Literal(Literal::Str(s)) => match s.to_ascii_uppercase().as_str() {
                "LT" => "LT",
                "GT" => "GT",
                "LE" => "LE",
                "GE" => "GE",
                "NE" => "NE",
                "EQ" => "EQ",
                _ => {
                    return Err(para(
                        Code::FUNC_FUNTION_PARA_VALUE,
                        format!("Invalid parameter value : {name} operator '{s}'"),
                    ))
                }
            },
            _ => {
                return Err(para(
                    Code::FUNC_FUNTION_PARA_TYPE,
                    format!("Invalid parameter data type : {name} operator must be a string"),
                ))
            }
        };
        let val = match &args[2] {
            Expr::Literal(Literal::Int(_) | Literal::Float(_)) => self.expr(&args[2], scope)?,
            Expr::Unary {
                op: UnaryOp::Neg,
                expr,
            } if matches!(
                expr.as_ref(),
                Expr::Literal(Literal::Int(_) | Literal::Float(_))
            ) =>
            {
                self.expr(&args[2], scope)?
            }
            _ => {
                return Err(para(
                    Code::FUNC_FUNTION_PARA_TYPE,
                    format!("Invalid parameter data type : {name} value must be a number"),
                ))
            }
        };
        let unit = if name == "stateduration" {
            Some(match args.get(3) {
                None => 1,
                Some(Expr::Literal(Literal::Duration(d))) if !matches!(d.unit, 'n' | 'y') => {
                    match d.in_precision(scope.precision) {
                        Some(u) if u > 0 => u,
                        _ => {
                            return Err(para(
                                Code::FUNC_FUNTION_PARA_VALUE,
                                format!("Invalid parameter value : {name} time unit"),
                            ))
                        }
                    }
                }
                Some(_) => {
                    return Err(para(
                        Code::FUNC_FUNTION_PARA_VALUE,
                        format!("Invalid parameter value : {name} time unit"),
                    ))
                }
            })
        } else {
            None
        };
        Ok(StateArgs { op, val, unit })
    }
}
