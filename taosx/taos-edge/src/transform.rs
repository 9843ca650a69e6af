//! Value transforms as taosX writes them: a Rhai expression over the numeric value `val`
//! (cast to f64), e.g. `val*1.8+32` or `if val<0 {0} else {val}`. Compiled once per mapping;
//! each evaluation is bounded (operations, depth) so a bad expression cannot stall a task.

use serde_json::Value as Json;
use std::sync::{Arc, OnceLock};

/// One engine for every mapping: without modules, with limits.
fn engine() -> &'static rhai::Engine {
    static ENGINE: OnceLock<rhai::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut e = rhai::Engine::new();
        e.set_max_operations(10_000)
            .set_max_expr_depths(32, 32)
            .set_max_string_size(4096)
            .set_max_array_size(1024)
            .set_max_map_size(256);
        e.disable_symbol("eval");
        e
    })
}

/// A compiled transform.
#[derive(Debug, Clone)]
pub struct Transform {
    source: String,
    ast: Arc<rhai::AST>,
}

impl Transform {
    pub fn compile(source: &str) -> Result<Transform, String> {
        let ast = engine()
            .compile(source)
            .map_err(|e| format!("transform '{source}': {e}"))?;
        Ok(Transform {
            source: source.to_string(),
            ast: Arc::new(ast),
        })
    }

    /// The transformed value; NULL stays NULL. A value that is not a number, or an expression
    /// that fails or does not give a number, is an error (the record follows the error policy).
    pub fn apply(&self, v: Option<&Json>) -> Result<Json, String> {
        let val = match v {
            None | Some(Json::Null) => return Ok(Json::Null),
            Some(Json::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(Json::Bool(b)) => f64::from(u8::from(*b)),
            Some(Json::String(s)) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("transform '{}': '{s}' is not a number", self.source))?,
            Some(other) => {
                return Err(format!(
                    "transform '{}': {other} is not a number",
                    self.source
                ))
            }
        };
        let mut scope = rhai::Scope::new();
        scope.push("val", val);
        let out: rhai::Dynamic = engine()
            .eval_ast_with_scope(&mut scope, &self.ast)
            .map_err(|e| format!("transform '{}': {e}", self.source))?;
        let f = out
            .as_float()
            .or_else(|_| out.as_int().map(|i| i as f64))
            .or_else(|_| out.as_bool().map(|b| f64::from(u8::from(b))))
            .map_err(|t| format!("transform '{}' gave a {t}, not a number", self.source))?;
        // Integral results stay integers, so INT and BIGINT columns take them.
        Ok(if f.fract() == 0.0 && f.abs() < 9.0e15 {
            Json::from(f as i64)
        } else {
            serde_json::Number::from_f64(f)
                .map(Json::Number)
                .unwrap_or(Json::Null)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn taosx_examples() {
        let f = Transform::compile("val*1.8+32").unwrap();
        assert_eq!(f.apply(Some(&json!(100))).unwrap(), json!(212));
        assert_eq!(f.apply(Some(&json!(21.5))).unwrap(), json!(70.7));
        assert_eq!(f.apply(Some(&json!("10"))).unwrap(), json!(50));
        assert_eq!(f.apply(None).unwrap(), Json::Null);
        let clamp = Transform::compile("if val<0 {0} else {val}").unwrap();
        assert_eq!(clamp.apply(Some(&json!(-3.5))).unwrap(), json!(0));
        assert_eq!(clamp.apply(Some(&json!(2.25))).unwrap(), json!(2.25));
        assert!(f
            .apply(Some(&json!("hot")))
            .unwrap_err()
            .contains("not a number"));
        assert!(Transform::compile("val *").is_err());
        let text = Transform::compile("\"x\"").unwrap();
        assert!(text
            .apply(Some(&json!(1)))
            .unwrap_err()
            .contains("not a number"));
        // Bounded: an endless loop ends with an error.
        let spin = Transform::compile("let x = 0; loop { x += 1; } x").unwrap();
        assert!(spin.apply(Some(&json!(1))).is_err());
    }
}
