//! JSON tag operators: `tag->'key'`, `tag CONTAINS 'key'`, and comparisons, LIKE / MATCH and
//! BETWEEN on `tag->'key'`, lowered to the `td_json_*` functions (`functions/json.rs`) since
//! DataFusion has no JSON type. Both operands are checked the way TDengine checks them: the
//! left one must be a JSON tag, the key a string.

use super::{s_lit, Lowerer, Scope};
use common::{Code, DataType, TaosError, TaosResult};
use taos_sql::ast::{BinaryOp, Expr, Literal};

/// `tag->'key'` split into the tag expression and the key.
pub(super) fn arrow(e: &Expr) -> Option<(&Expr, &Expr)> {
    match e {
        Expr::Binary {
            op: BinaryOp::Arrow,
            left,
            right,
        } => Some((left, right)),
        _ => None,
    }
}

fn wrong_type(what: &str) -> TaosError {
    TaosError::new(
        Code::PAR_WRONG_VALUE_TYPE,
        format!("Invalid value type: {what}"),
    )
}

/// The SQL spelling of a comparison operator, and its mirror (for `lit op tag->'key'`).
fn cmp_op(op: BinaryOp) -> Option<(&'static str, &'static str)> {
    Some(match op {
        BinaryOp::Eq => ("=", "="),
        BinaryOp::NotEq => ("<>", "<>"),
        BinaryOp::Lt => ("<", ">"),
        BinaryOp::LtEq => ("<=", ">="),
        BinaryOp::Gt => (">", "<"),
        BinaryOp::GtEq => (">=", "<="),
        _ => return None,
    })
}

impl<'a> Lowerer<'a> {
    /// The JSON tag and the quoted key of `tag->'key'` / `tag CONTAINS 'key'`.
    fn json_operands(&self, tag: &Expr, key: &Expr, scope: &Scope) -> TaosResult<(String, String)> {
        if scope.ty(tag) != Some(DataType::Json) {
            return Err(wrong_type(&super::expr_name(tag)));
        }
        let Expr::Literal(Literal::Str(k)) = key else {
            return Err(wrong_type(&super::expr_name(key)));
        };
        Ok((self.expr(tag, scope)?, s_lit(k)))
    }

    /// `tag->'key'`: the value as TDengine shows it.
    pub(super) fn json_get(&self, tag: &Expr, key: &Expr, scope: &Scope) -> TaosResult<String> {
        let (t, k) = self.json_operands(tag, key, scope)?;
        Ok(format!("td_json_get({t}, {k})"))
    }

    /// `tag->'key'` as a string to match (LIKE, MATCH).
    pub(super) fn json_str(&self, tag: &Expr, key: &Expr, scope: &Scope) -> TaosResult<String> {
        let (t, k) = self.json_operands(tag, key, scope)?;
        Ok(format!("td_json_str({t}, {k})"))
    }

    pub(super) fn json_contains(
        &self,
        tag: &Expr,
        key: &Expr,
        scope: &Scope,
    ) -> TaosResult<String> {
        let (t, k) = self.json_operands(tag, key, scope)?;
        Ok(format!("td_json_contains({t}, {k})"))
    }

    /// `l op r` where one side is `tag->'key'`; `None` when neither is or `op` is no
    /// comparison.
    pub(super) fn json_cmp(
        &self,
        op: BinaryOp,
        l: &Expr,
        r: &Expr,
        scope: &Scope,
    ) -> TaosResult<Option<String>> {
        let Some((o, mirrored)) = cmp_op(op) else {
            return Ok(None);
        };
        let (tag, key, other, o) = match (arrow(l), arrow(r)) {
            (Some((t, k)), _) => (t, k, r, o),
            (None, Some((t, k))) => (t, k, l, mirrored),
            (None, None) => return Ok(None),
        };
        // Two JSON values (`a->'k' = b->'k'`) compare as their rendered text.
        if let Some((t2, k2)) = arrow(other) {
            return Ok(Some(format!(
                "({} {o} {})",
                self.json_get(tag, key, scope)?,
                self.json_get(t2, k2, scope)?
            )));
        }
        let (t, k) = self.json_operands(tag, key, scope)?;
        Ok(Some(format!(
            "td_json_cmp({t}, {k}, '{o}', {})",
            self.expr(other, scope)?
        )))
    }
}
