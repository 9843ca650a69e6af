//! From a JSON payload to rows of a super table, the way taosX maps MQTT messages.
//!
//! A payload is a JSON object, an array of objects, or one object per line. Nested objects are
//! flattened (`{"a":{"b":1}}` gives field `a_b`, arrays give `a_0`, `a_1`). Topic levels can be
//! bound to variables with a rule shaped like the topic (`site/_/device` binds `site` and
//! `device`, `_` skips a level). The subtable name is a template (`t_{id}`, `{site}_{device}`,
//! `{id#/_}` for the field with `/` replaced by `_` and `_` trimmed at the ends),
//! the timestamp comes from a field (epoch in a unit, RFC 3339, or a strftime format) or is the
//! arrival time, and each column and tag takes a field (by default its own name) converted to
//! its declared type; a column may first pass through a value transform (see `transform`).

use common::wire::{WriteTable, WriteUsing};
use common::{DataType, Precision, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;

/// Where a mapping reads a record's fields: a map of them, or a source's own layout (an
/// OPC-UA value keeps its point's unchanging fields apart).
pub trait Fields {
    fn field(&self, name: &str) -> Option<&Json>;
}

impl Fields for HashMap<String, Json> {
    fn field(&self, name: &str) -> Option<&Json> {
        self.get(name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// Target super table (created if missing). May be a template such as `opc_{type}`: each
    /// name it gives is a super table of its own, created when its first row is written.
    pub stable: String,
    /// Subtable name template, e.g. `t_{id}`.
    pub table: String,
    /// Topic levels to variables, e.g. `site/_/device`.
    #[serde(default)]
    pub topic_vars: Option<String>,
    #[serde(default)]
    pub ts: Option<TsRule>,
    pub columns: Vec<FieldRule>,
    #[serde(default)]
    pub tags: Vec<FieldRule>,
    /// What happens to a record that does not fit the mapping.
    #[serde(default)]
    pub on_error: ErrorPolicy,
}

/// taosX's per-task exception strategy for bad records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ErrorPolicy {
    /// Keep the rejected record in the task's error archive (`errors.jsonl`) and go on.
    #[default]
    Archive,
    /// Count it and go on.
    Discard,
    /// Stop the task with the error.
    Error,
}

impl std::str::FromStr for ErrorPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "archive" => Ok(ErrorPolicy::Archive),
            "discard" => Ok(ErrorPolicy::Discard),
            "error" => Ok(ErrorPolicy::Error),
            o => Err(format!(
                "unknown error policy '{o}' (archive, discard or error)"
            )),
        }
    }
}

impl Mapping {
    /// The parser JSON of `taosx run --parser` (taosX's CLI form):
    /// `{"parse": {"field": {"as": "TYPE"}}, "model": {"name": "${tbname}", "using": "stb",
    /// "tags": [...], "columns": ["ts", ...]}}`; the first column is the timestamp.
    pub fn from_parser_json(v: &Json) -> Result<Mapping, MappingError> {
        let parse = v.get("parse").and_then(Json::as_object);
        let model = v
            .get("model")
            .and_then(Json::as_object)
            .ok_or_else(|| err("parser JSON has no \"model\""))?;
        let s = |k: &str| model.get(k).and_then(Json::as_str).map(str::to_string);
        let list = |k: &str| -> Vec<String> {
            model
                .get(k)
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ty_of = |f: &str| -> Result<String, MappingError> {
            parse
                .and_then(|p| p.get(f))
                .and_then(|x| x.get("as"))
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| err(format!("field '{f}' has no type in \"parse\"")))
        };
        let columns = list("columns");
        let (ts, rest) = columns
            .split_first()
            .ok_or_else(|| err("model.columns is empty (the first is the timestamp)"))?;
        let ts_ty = ty_of(ts)
            .unwrap_or_else(|_| "TIMESTAMP(ms)".into())
            .to_ascii_lowercase();
        let unit = ts_ty
            .strip_prefix("timestamp")
            .map(|u| u.trim_matches(|c| c == '(' || c == ')').trim().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "ms".into());
        let rule = |f: &String| -> Result<FieldRule, MappingError> {
            Ok(FieldRule {
                name: f.clone(),
                ty: ty_of(f)?,
                field: None,
                transform: None,
            })
        };
        Ok(Mapping {
            stable: s("using").ok_or_else(|| err("model.using (the super table) is missing"))?,
            table: s("name")
                .ok_or_else(|| err("model.name (the subtable template) is missing"))?
                .replace("${", "{"),
            topic_vars: None,
            ts: Some(TsRule {
                field: ts.clone(),
                format: Some(unit),
            }),
            columns: rest.iter().map(rule).collect::<Result<_, _>>()?,
            tags: list("tags").iter().map(rule).collect::<Result<_, _>>()?,
            on_error: v
                .get("on_error")
                .and_then(Json::as_str)
                .map(|p| p.parse().map_err(err))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TsRule {
    pub field: String,
    /// `ms` (default), `s`, `us`, `ns`, `rfc3339`, or a strftime format such as
    /// `%Y-%m-%d %H:%M:%S%.f` (read as UTC).
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRule {
    pub name: String,
    /// TDengine type: `FLOAT`, `INT`, `VARCHAR(32)`, `BOOL`, ... For a column, also a
    /// variable such as `{type}`: the row's field names the type (`double`, `int`, `varchar`),
    /// and the super table template must use the same variable so each type has its own table.
    #[serde(rename = "type")]
    pub ty: String,
    /// Source field or topic variable; defaults to `name`.
    #[serde(default)]
    pub field: Option<String>,
    /// For a column: taosX's value transform, a Rhai expression over `val` (`val*1.8+32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

fn err(msg: impl Into<String>) -> MappingError {
    MappingError(msg.into())
}

/// A TDengine column type from its SQL spelling.
pub fn parse_type(s: &str) -> Result<DataType, MappingError> {
    let t = s.trim().to_ascii_uppercase();
    let (base, len) = match t.split_once('(') {
        Some((b, rest)) => {
            let n = rest
                .trim_end_matches(')')
                .trim()
                .parse::<u32>()
                .map_err(|_| err(format!("invalid length in type '{s}'")))?;
            if n == 0 || n > 16_382 {
                return Err(err(format!("invalid length in type '{s}'")));
            }
            (b.trim().to_string(), Some(n))
        }
        None => (t.clone(), None),
    };
    let ty = match (base.as_str(), len) {
        ("TIMESTAMP", None) => DataType::Timestamp,
        ("BOOL" | "BOOLEAN", None) => DataType::Bool,
        ("TINYINT", None) => DataType::TinyInt,
        ("SMALLINT", None) => DataType::SmallInt,
        ("INT" | "INTEGER", None) => DataType::Int,
        ("BIGINT", None) => DataType::BigInt,
        ("TINYINT UNSIGNED", None) => DataType::UTinyInt,
        ("SMALLINT UNSIGNED", None) => DataType::USmallInt,
        ("INT UNSIGNED", None) => DataType::UInt,
        ("BIGINT UNSIGNED", None) => DataType::UBigInt,
        ("FLOAT", None) => DataType::Float,
        ("DOUBLE", None) => DataType::Double,
        ("VARCHAR" | "BINARY", Some(n)) => DataType::VarChar(n),
        ("NCHAR", Some(n)) => DataType::NChar(n.min(4096)),
        _ => return Err(err(format!("unsupported column type '{s}'"))),
    };
    Ok(ty)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

/// One piece of a name template.
#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Var(String),
}

/// A subtable name template: at least one variable, or every point would share a table.
fn parse_template(t: &str) -> Result<Vec<Part>, MappingError> {
    let parts = parse_parts(t, "table template")?;
    if !parts.iter().any(|p| matches!(p, Part::Var(_))) {
        return Err(err(format!(
            "table template '{t}' has no variable: every point would go to one table"
        )));
    }
    Ok(parts)
}

fn parse_parts(t: &str, what: &str) -> Result<Vec<Part>, MappingError> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| err(format!("unclosed '{{' in {what} '{t}'")))?;
        let var = rest[open + 1..open + close].trim();
        if var.is_empty() {
            return Err(err(format!("empty variable in {what} '{t}'")));
        }
        if let Some((_, subst)) = var.split_once('#') {
            if subst.chars().count() != 2 {
                return Err(err(format!(
                    "'{{{var}}}' in {what} '{t}': after '#' come two characters, the one to \
                     replace and its replacement (e.g. {{id#/_}})"
                )));
            }
        }
        parts.push(Part::Var(var.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    if parts.is_empty() {
        return Err(err(format!("empty {what}")));
    }
    Ok(parts)
}

/// A checked mapping, ready to turn payloads into rows.
#[derive(Debug, Clone)]
pub struct Mapper {
    pub spec: Mapping,
    template: Vec<Part>,
    /// The super table name as a template (a single literal when it is fixed).
    stable: Vec<Part>,
    topic_vars: Vec<Option<String>>,
    columns: Vec<(String, ColType, String)>,
    /// The transform of each column, if any.
    transforms: Vec<Option<crate::transform::Transform>>,
    tags: Vec<(String, DataType, String)>,
}

/// A column's type: declared, or named per row by a field (`{type}`).
#[derive(Debug, Clone, PartialEq)]
enum ColType {
    Fixed(DataType),
    Var(String),
}

/// Length given to string types named by a template variable (taosX uses 255 as well).
const TEMPLATE_STRING_LEN: u32 = 255;

/// A type named by a row (`double`, `int`, `i32`, `varchar`, `nchar(64)`, ...).
fn type_by_name(s: &str) -> Result<DataType, MappingError> {
    let t = s.trim().to_ascii_lowercase();
    let ty = match t.as_str() {
        "bool" | "boolean" => DataType::Bool,
        "i8" | "tinyint" => DataType::TinyInt,
        "i16" | "smallint" => DataType::SmallInt,
        "i32" | "int" => DataType::Int,
        "i64" | "bigint" => DataType::BigInt,
        "u8" | "utinyint" => DataType::UTinyInt,
        "u16" | "usmallint" => DataType::USmallInt,
        "u32" | "uint" => DataType::UInt,
        "u64" | "ubigint" => DataType::UBigInt,
        "f32" | "float" => DataType::Float,
        "f64" | "double" => DataType::Double,
        "timestamp" => DataType::Timestamp,
        "varchar" | "binary" | "string" => DataType::VarChar(TEMPLATE_STRING_LEN),
        "nchar" => DataType::NChar(TEMPLATE_STRING_LEN),
        "null" | "" => return Err(err("the value has no type (empty)")),
        _ => parse_type(&t)?,
    };
    Ok(ty)
}

/// The type a written value had when its column's type came from a template; exact because
/// [`type_by_name`] gives string types one fixed length.
fn type_of_value(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => DataType::Bool,
        Value::TinyInt(_) => DataType::TinyInt,
        Value::SmallInt(_) => DataType::SmallInt,
        Value::Int(_) => DataType::Int,
        Value::BigInt(_) => DataType::BigInt,
        Value::UTinyInt(_) => DataType::UTinyInt,
        Value::USmallInt(_) => DataType::USmallInt,
        Value::UInt(_) => DataType::UInt,
        Value::UBigInt(_) => DataType::UBigInt,
        Value::Float(_) => DataType::Float,
        Value::Double(_) => DataType::Double,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::VarChar(_) => DataType::VarChar(TEMPLATE_STRING_LEN),
        Value::NChar(_) => DataType::NChar(TEMPLATE_STRING_LEN),
        Value::Json(_) | Value::VarBinary(_) | Value::Geometry(_) => return None,
    })
}

/// Expand a template with a row's fields; `what` names it in errors.
fn expand<F: Fields + ?Sized>(
    parts: &[Part],
    fields: &F,
    what: &str,
) -> Result<String, MappingError> {
    let mut name = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => name.push_str(s),
            Part::Var(v) => {
                // `{id#/_}`: the field with `/` replaced by `_`, then `_` trimmed at both ends.
                let (field, subst) = match v.split_once('#') {
                    Some((f, s)) => (f, s.chars().next().zip(s.chars().nth(1))),
                    None => (v.as_str(), None),
                };
                let text = match fields.field(field) {
                    Some(Json::String(s)) => s.clone(),
                    Some(Json::Null) | None => {
                        return Err(err(format!("{what} variable '{field}' is missing")))
                    }
                    Some(other) => other.to_string(),
                };
                match subst {
                    Some((from, to)) => {
                        name.push_str(text.replace(from, &to.to_string()).trim_matches(to))
                    }
                    None => name.push_str(&text),
                }
            }
        }
    }
    Ok(name)
}

impl Mapper {
    /// Check everything that can be checked before the first message.
    pub fn new(spec: &Mapping) -> Result<Mapper, MappingError> {
        let stable = parse_parts(&spec.stable, "super table template")?;
        let literal = |p: &[Part]| match p {
            [Part::Lit(s)] => Some(s.clone()),
            _ => None,
        };
        match literal(&stable) {
            Some(name) if !valid_name(&name) => {
                return Err(err(format!("invalid super table name '{name}'")))
            }
            _ => {}
        }
        let stable_vars: Vec<&str> = stable
            .iter()
            .filter_map(|p| match p {
                Part::Var(v) => Some(v.as_str()),
                Part::Lit(_) => None,
            })
            .collect();
        if spec.columns.is_empty() {
            return Err(err("the mapping has no columns"));
        }
        let check = |r: &FieldRule, what: &str| {
            if !valid_name(&r.name) || r.name.eq_ignore_ascii_case("ts") {
                return Err(err(format!("invalid {what} name '{}'", r.name)));
            }
            Ok((
                r.name.clone(),
                r.field.clone().unwrap_or_else(|| r.name.clone()),
            ))
        };
        let mut columns = Vec::new();
        let mut transforms = Vec::new();
        for r in &spec.columns {
            transforms.push(
                r.transform
                    .as_deref()
                    .map(|t| crate::transform::Transform::compile(t).map_err(err))
                    .transpose()?,
            );
            let (name, field) = check(r, "column")?;
            let ty = match r
                .ty
                .trim()
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
            {
                Some(var) => {
                    let var = var.trim();
                    // Usually the same variable (`opc_{type}`); a point list may instead name
                    // each point's super table (`{stable}`).
                    if stable_vars.is_empty() {
                        return Err(err(format!(
                            "column '{name}' takes its type from '{{{var}}}', so the super table \
                             must be a template too (e.g. \"opc_{{{var}}}\"): one table cannot \
                             hold several types in a column"
                        )));
                    }
                    ColType::Var(var.to_string())
                }
                None => ColType::Fixed(parse_type(&r.ty)?),
            };
            columns.push((name, ty, field));
        }
        let mut tags = Vec::new();
        for r in &spec.tags {
            let (name, field) = check(r, "tag")?;
            if r.transform.is_some() {
                return Err(err(format!("tag '{name}': transforms are for columns")));
            }
            let ty = parse_type(&r.ty)?;
            if ty == DataType::Timestamp {
                return Err(err(format!("tag '{}' cannot be a TIMESTAMP", r.name)));
            }
            tags.push((name, ty, field));
        }
        if tags.is_empty() {
            return Err(err(
                "the mapping has no tags: a super table needs at least one",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let names = columns
            .iter()
            .map(|c| &c.0)
            .chain(tags.iter().map(|t| &t.0));
        for n in names {
            if !seen.insert(n.to_ascii_lowercase()) {
                return Err(err(format!("name '{n}' is used twice")));
            }
        }
        if let Some(ts) = &spec.ts {
            if ts.field.is_empty() {
                return Err(err("the timestamp rule names no field"));
            }
        }
        let topic_vars = spec
            .topic_vars
            .as_deref()
            .map(|r| {
                r.split('/')
                    .map(|l| (l != "_" && !l.is_empty()).then(|| l.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Mapper {
            template: parse_template(&spec.table)?,
            stable,
            spec: spec.clone(),
            topic_vars,
            columns,
            transforms,
            tags,
        })
    }

    /// Is the super table named per row?
    pub fn stable_is_template(&self) -> bool {
        self.stable.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// `CREATE STABLE IF NOT EXISTS` for a fixed target (see [`Mapper::create_stable_sql_for`]
    /// for a template).
    pub fn create_stable_sql(&self, db: &str) -> String {
        let types: Vec<Option<DataType>> = self
            .columns
            .iter()
            .map(|(_, t, _)| match t {
                ColType::Fixed(t) => Some(*t),
                ColType::Var(_) => None,
            })
            .collect();
        self.stable_sql(db, &self.spec.stable, &types)
    }

    /// `CREATE STABLE IF NOT EXISTS` for the super table of `table`, a table this mapper built:
    /// the types of templated columns are read from its first row (never NULL there, see
    /// [`Mapper::row`]). `None` when the table has no super table or no rows.
    pub fn create_stable_sql_for(&self, db: &str, table: &WriteTable) -> Option<String> {
        let stable = &table.using.as_ref()?.stable;
        let first = table.rows.first()?;
        let types: Vec<Option<DataType>> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t, _))| match t {
                ColType::Fixed(t) => Some(*t),
                ColType::Var(_) => first.get(i + 1).and_then(type_of_value),
            })
            .collect();
        if types.iter().any(Option::is_none) {
            return None;
        }
        Some(self.stable_sql(db, stable, &types))
    }

    fn stable_sql(&self, db: &str, stable: &str, types: &[Option<DataType>]) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .zip(types)
            .map(|((n, _, _), t)| {
                format!(
                    "`{n}` {}",
                    t.map(DataType::sql).unwrap_or_else(|| "DOUBLE".into())
                )
            })
            .collect();
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|(n, t, _)| format!("`{n}` {}", t.sql()))
            .collect();
        format!(
            "CREATE STABLE IF NOT EXISTS `{db}`.`{stable}` (`ts` TIMESTAMP, {}) TAGS ({})",
            cols.join(", "),
            tags.join(", ")
        )
    }

    /// The super table and subtable a record with these fields goes to.
    pub fn target<F: Fields + ?Sized>(&self, fields: &F) -> Result<(String, String), MappingError> {
        let name = expand(&self.template, fields, "table name")?;
        if name.is_empty() || name.len() > 192 || name.contains(['.', '`']) {
            return Err(err(format!("invalid subtable name '{name}'")));
        }
        let stable = match &self.stable[..] {
            [Part::Lit(s)] => s.clone(),
            parts => {
                // As taosX does: a `.` from a variable becomes `_`.
                let s = expand(parts, fields, "super table name")?.replace('.', "_");
                if !valid_name(&s) {
                    return Err(err(format!("invalid super table name '{s}'")));
                }
                s
            }
        };
        Ok((stable, name))
    }

    /// Turn one message into rows, added to `out`. Returns (rows added, rejected objects with
    /// the reason each).
    pub fn map(
        &self,
        topic: &str,
        payload: &[u8],
        arrival_ms: i64,
        out: &mut BatchBuilder,
    ) -> (usize, Vec<MappingError>) {
        let objects = match split_payload(payload) {
            Ok(o) => o,
            Err(e) => return (0, vec![e]),
        };
        let mut vars: HashMap<String, Json> = HashMap::new();
        for (rule, level) in self.topic_vars.iter().zip(topic.split('/')) {
            if let Some(name) = rule {
                vars.insert(name.clone(), Json::String(level.to_string()));
            }
        }
        let mut added = 0;
        let mut errors = Vec::new();
        for obj in objects {
            let mut fields = vars.clone();
            flatten("", &obj, &mut fields);
            match self.row(&fields, arrival_ms, out) {
                Ok(()) => added += 1,
                Err(e) => errors.push(e),
            }
        }
        (added, errors)
    }

    /// One row from already flattened fields (CSV records, OPC-UA values).
    pub fn row<F: Fields + ?Sized>(
        &self,
        fields: &F,
        arrival_ms: i64,
        out: &mut BatchBuilder,
    ) -> Result<(), MappingError> {
        let (stable, name) = self.target(fields)?;
        let ts = match &self.spec.ts {
            None => arrival_ms,
            Some(rule) => parse_ts(
                fields
                    .field(&rule.field)
                    .ok_or_else(|| err(format!("timestamp field '{}' is missing", rule.field)))?,
                rule.format.as_deref(),
            )?,
        };
        let mut row = Vec::with_capacity(self.columns.len() + 1);
        row.push(Value::Timestamp(ts));
        for ((n, ty, f), tf) in self.columns.iter().zip(&self.transforms) {
            let transformed;
            let input = match tf {
                Some(tf) => {
                    transformed = tf
                        .apply(fields.field(f))
                        .map_err(|e| err(format!("column '{n}': {e}")))?;
                    Some(&transformed)
                }
                None => fields.field(f),
            };
            let v = match ty {
                ColType::Fixed(t) => convert(input, *t, n)?,
                ColType::Var(var) => {
                    let named = match fields.field(var) {
                        Some(Json::String(s)) => s.as_str(),
                        _ => return Err(err(format!("type variable '{var}' is missing"))),
                    };
                    let t =
                        type_by_name(named).map_err(|e| err(format!("column '{n}': {}", e.0)))?;
                    let v = convert(input, t, n)?;
                    // The writer reads the new super table's types from the first row.
                    if v.is_null() {
                        return Err(err(format!(
                            "column '{n}' is NULL and its type comes from '{{{var}}}'"
                        )));
                    }
                    v
                }
            };
            row.push(v);
        }
        let tags = self
            .tags
            .iter()
            .map(|(n, ty, f)| convert(fields.field(f), *ty, n))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(&name, &stable, self, tags, row)
    }

    pub fn column_names(&self) -> Vec<String> {
        std::iter::once("ts".to_string())
            .chain(self.columns.iter().map(|c| c.0.clone()))
            .collect()
    }

    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.0.clone()).collect()
    }
}

/// Objects of a payload: one object, an array of objects, or one object per line.
fn split_payload(payload: &[u8]) -> Result<Vec<Json>, MappingError> {
    match serde_json::from_slice::<Json>(payload) {
        Ok(Json::Array(a)) => Ok(a),
        Ok(o @ Json::Object(_)) => Ok(vec![o]),
        Ok(other) => Err(err(format!(
            "payload is not a JSON object or array: {other}"
        ))),
        Err(whole) => {
            let text =
                std::str::from_utf8(payload).map_err(|_| err("payload is not UTF-8 JSON"))?;
            let mut out = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                out.push(serde_json::from_str::<Json>(line).map_err(|e| {
                    if i == 0 {
                        err(format!("payload is not JSON: {whole}"))
                    } else {
                        err(format!("line {}: {e}", i + 1))
                    }
                })?);
            }
            Ok(out)
        }
    }
}

fn flatten(prefix: &str, v: &Json, out: &mut HashMap<String, Json>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}_{k}")
        }
    };
    match v {
        Json::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        Json::Array(a) if !prefix.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn parse_ts(v: &Json, format: Option<&str>) -> Result<i64, MappingError> {
    let unit = |n: f64, f: &str| -> Result<i64, MappingError> {
        let ms = match f {
            "ms" => n,
            "s" => n * 1e3,
            "us" => n / 1e3,
            "ns" => n / 1e6,
            _ => {
                return Err(err(format!(
                    "timestamp {n} is a number but the format is '{f}'"
                )))
            }
        };
        Ok(ms as i64)
    };
    match (v, format.unwrap_or("ms")) {
        (Json::Number(n), f) => unit(n.as_f64().unwrap_or(f64::NAN), f),
        (Json::String(s), f @ ("ms" | "s" | "us" | "ns")) => match s.trim().parse::<f64>() {
            Ok(n) => unit(n, f),
            Err(_) => chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|d| d.timestamp_millis())
                .or_else(|_| {
                    // The usual CSV and TDengine spellings, read as UTC.
                    [
                        "%Y-%m-%d %H:%M:%S%.f",
                        "%Y-%m-%dT%H:%M:%S%.f",
                        "%Y-%m-%d %H:%M:%S",
                    ]
                    .iter()
                    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s.trim(), f).ok())
                    .map(|d| d.and_utc().timestamp_millis())
                    .ok_or(())
                })
                .map_err(|_| {
                    err(format!(
                        "timestamp '{s}' is not a number in {f} nor RFC 3339"
                    ))
                }),
        },
        (Json::String(s), "rfc3339") => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.timestamp_millis())
            .map_err(|e| err(format!("timestamp '{s}': {e}"))),
        (Json::String(s), f) => chrono::NaiveDateTime::parse_from_str(s.trim(), f)
            .map(|d| d.and_utc().timestamp_millis())
            .map_err(|e| err(format!("timestamp '{s}' does not match '{f}': {e}"))),
        (other, _) => Err(err(format!(
            "timestamp value {other} is not a number or string"
        ))),
    }
}

/// A JSON value as the column's type; missing or null is NULL.
fn convert(v: Option<&Json>, ty: DataType, name: &str) -> Result<Value, MappingError> {
    let v = match v {
        None | Some(Json::Null) => return Ok(Value::Null),
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => match n.as_i64() {
            Some(i) => Value::BigInt(i),
            None => match n.as_u64() {
                Some(u) => Value::UBigInt(u),
                None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
        },
        Some(Json::String(s)) => match ty {
            t if t.is_numeric() => match s.trim().parse::<f64>() {
                Ok(f) if t.is_integer() && f.fract() == 0.0 => Value::BigInt(f as i64),
                Ok(f) => Value::Double(f),
                Err(_) => return Err(err(format!("'{s}' is not a number for column '{name}'"))),
            },
            DataType::Bool => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(err(format!("'{s}' is not a boolean for column '{name}'"))),
            },
            _ => Value::VarChar(s.clone()),
        },
        Some(other) => Value::VarChar(other.to_string()),
    };
    let v = match (v, ty) {
        (Value::BigInt(i), DataType::VarChar(_) | DataType::NChar(_)) => {
            Value::VarChar(i.to_string())
        }
        (Value::Double(f), DataType::VarChar(_) | DataType::NChar(_)) => {
            Value::VarChar(f.to_string())
        }
        (Value::Bool(b), DataType::VarChar(_) | DataType::NChar(_)) => {
            Value::VarChar(b.to_string())
        }
        (Value::Double(f), t) if t.is_integer() => {
            if f.fract() != 0.0 {
                return Err(err(format!("{f} is not an integer for column '{name}'")));
            }
            Value::BigInt(f as i64)
        }
        (v, _) => v,
    };
    v.coerce(ty, name).map_err(|e| err(e.message))
}

/// Rows of one task grouped per subtable, ready to send as one write.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    db: String,
    tables: Vec<WriteTable>,
    index: HashMap<String, usize>,
    points: usize,
}

impl BatchBuilder {
    pub fn new(db: &str) -> BatchBuilder {
        BatchBuilder {
            db: db.to_string(),
            ..Default::default()
        }
    }

    fn push(
        &mut self,
        table: &str,
        stable: &str,
        m: &Mapper,
        tags: Vec<Value>,
        row: Vec<Value>,
    ) -> Result<(), MappingError> {
        let i = match self.index.get(table) {
            Some(i) => {
                let had = self.tables[*i].using.as_ref().map(|u| u.stable.as_str());
                if had != Some(stable) {
                    return Err(err(format!(
                        "table '{table}' is in super table '{}' but this row is for '{stable}'",
                        had.unwrap_or("")
                    )));
                }
                *i
            }
            None => {
                self.tables.push(WriteTable {
                    name: table.to_string(),
                    using: Some(WriteUsing {
                        stable: stable.to_string(),
                        tag_names: m.tag_names(),
                        tags,
                    }),
                    columns: m.column_names(),
                    rows: Vec::new(),
                });
                self.index.insert(table.to_string(), self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
        self.tables[i].rows.push(row);
        self.points += 1;
        Ok(())
    }

    pub fn points(&self) -> usize {
        self.points
    }

    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// The accumulated rows as a write request; the builder starts over.
    pub fn take(&mut self) -> crate::Batch {
        self.index.clear();
        self.points = 0;
        common::wire::WriteRequest {
            db: self.db.clone(),
            precision: Precision::Ms,
            tables: std::mem::take(&mut self.tables),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        serde_json::from_value(serde_json::json!({
            "stable": "meters",
            "table": "t_{id}",
            "topic_vars": "plant/site/_",
            "ts": {"field": "time", "format": "ms"},
            "columns": [
                {"name": "current", "type": "FLOAT"},
                {"name": "voltage", "type": "INT", "field": "v_volts"},
                {"name": "ok", "type": "BOOL"}
            ],
            "tags": [
                {"name": "id", "type": "VARCHAR(16)"},
                {"name": "site", "type": "VARCHAR(16)"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn objects_arrays_lines_and_errors() {
        let m = Mapper::new(&mapping()).unwrap();
        assert!(m
            .create_stable_sql("edge")
            .contains("TAGS (`id` VARCHAR(16), `site` VARCHAR(16))"));
        let mut b = BatchBuilder::new("edge");
        let (n, e) = m.map(
            "plant/s1/x",
            br#"{"id":"a","time":1700000000000,"current":1.5,"v":{"volts":220},"ok":true}"#,
            0,
            &mut b,
        );
        assert_eq!((n, e.len()), (1, 0));
        let (n, e) = m.map(
            "plant/s2/x",
            br#"[{"id":"a","time":1700000000001,"current":"2.5"},{"id":7,"time":"1700000000002"}]"#,
            0,
            &mut b,
        );
        assert_eq!((n, e.len()), (2, 0), "{e:?}");
        let (n, e) = m.map(
            "plant/s3/x",
            b"{\"id\":\"b\",\"time\":1}\n{\"time\":2}\nnot json",
            0,
            &mut b,
        );
        assert_eq!(
            (n, e.len()),
            (0, 1),
            "a bad line rejects the message: {e:?}"
        );
        let (n, e) = m.map(
            "plant/s3/x",
            b"{\"id\":\"b\",\"time\":1}\n{\"time\":2}",
            0,
            &mut b,
        );
        assert_eq!((n, e.len()), (1, 1));
        assert!(e[0].0.contains("'id' is missing"), "{e:?}");
        let (n, e) = m.map(
            "p",
            br#"{"id":"z","time":1,"voltage":"x","v_volts":"high"}"#,
            0,
            &mut b,
        );
        assert_eq!((n, e.len()), (0, 1));
        let batch = b.take();
        assert_eq!(crate::points(&batch), 4);
        let t_a = batch.tables.iter().find(|t| t.name == "t_a").unwrap();
        assert_eq!(t_a.rows.len(), 2);
        assert_eq!(t_a.rows[0][0], Value::Timestamp(1_700_000_000_000));
        assert_eq!(t_a.rows[0][1], Value::Float(1.5));
        assert_eq!(t_a.rows[0][2], Value::Int(220));
        assert_eq!(t_a.rows[1][1], Value::Float(2.5));
        assert_eq!(
            t_a.using.as_ref().unwrap().tags,
            vec![Value::VarChar("a".into()), Value::VarChar("s1".into())]
        );
        assert!(batch.tables.iter().any(|t| t.name == "t_7"));
        assert!(b.is_empty());
    }

    #[test]
    fn timestamps_and_bad_mappings() {
        assert_eq!(parse_ts(&serde_json::json!(1.5), Some("s")).unwrap(), 1500);
        assert_eq!(
            parse_ts(&serde_json::json!("2024-01-01T00:00:00Z"), None).unwrap(),
            1_704_067_200_000
        );
        assert_eq!(
            parse_ts(
                &serde_json::json!("2024-01-01 00:00:01.5"),
                Some("%Y-%m-%d %H:%M:%S%.f")
            )
            .unwrap(),
            1_704_067_201_500
        );
        assert!(parse_ts(&serde_json::json!("yesterday"), None).is_err());
        let mut m = mapping();
        m.table = "fixed".into();
        assert!(Mapper::new(&m).is_err());
        let mut m = mapping();
        m.columns[0].ty = "DECIMAL".into();
        assert!(Mapper::new(&m)
            .unwrap_err()
            .0
            .contains("unsupported column type"));
        let mut m = mapping();
        m.tags.clear();
        assert!(Mapper::new(&m).is_err());
        let mut m = mapping();
        m.stable = "bad name".into();
        assert!(Mapper::new(&m).is_err());
        let mut m = mapping();
        m.columns[1].name = "current".into();
        assert!(Mapper::new(&m).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn super_table_named_by_the_value_type() {
        let spec: Mapping = serde_json::from_value(serde_json::json!({
            "stable": "opc_{type}",
            "table": "t_{id}",
            "ts": {"field": "ts"},
            "columns": [
                {"name": "val", "type": "{type}", "field": "value"},
                {"name": "quality", "type": "INT"}
            ],
            "tags": [{"name": "point_id", "type": "VARCHAR(64)", "field": "id"}]
        }))
        .unwrap();
        let m = Mapper::new(&spec).unwrap();
        assert!(m.stable_is_template());
        let row = |id: &str, ty: &str, v: Json| -> HashMap<String, Json> {
            [
                ("id", Json::from(id)),
                ("type", Json::from(ty)),
                ("value", v),
                ("quality", Json::from(0)),
                ("ts", Json::from(1_700_000_000_000i64)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        };
        let mut b = BatchBuilder::new("edge");
        m.row(&row("a", "double", Json::from(1.5)), 0, &mut b)
            .unwrap();
        m.row(&row("b", "int", Json::from(7)), 0, &mut b).unwrap();
        m.row(&row("c", "varchar", Json::from("on")), 0, &mut b)
            .unwrap();
        m.row(&row("d", "bool", Json::from(true)), 0, &mut b)
            .unwrap();
        let e = m
            .row(&row("a", "int", Json::from(2)), 0, &mut b)
            .unwrap_err();
        assert!(e.0.contains("'opc_double'"), "{e}");
        let e = m
            .row(&row("e", "double", Json::Null), 0, &mut b)
            .unwrap_err();
        assert!(e.0.contains("NULL"), "{e}");
        let e = m.row(&row("e", "null", Json::Null), 0, &mut b).unwrap_err();
        assert!(e.0.contains("no type"), "{e}");
        let batch = b.take();
        let sql: Vec<String> = batch
            .tables
            .iter()
            .map(|t| m.create_stable_sql_for("edge", t).unwrap())
            .collect();
        assert_eq!(
            sql[0],
            "CREATE STABLE IF NOT EXISTS `edge`.`opc_double` (`ts` TIMESTAMP, `val` DOUBLE, \
             `quality` INT) TAGS (`point_id` VARCHAR(64))"
        );
        assert!(
            sql[1].contains("`opc_int` (`ts` TIMESTAMP, `val` INT,"),
            "{}",
            sql[1]
        );
        assert!(sql[2].contains("`opc_varchar` (`ts` TIMESTAMP, `val` VARCHAR(255),"));
        assert!(sql[3].contains("`opc_bool` (`ts` TIMESTAMP, `val` BOOL,"));
        assert_eq!(batch.tables[1].rows[0][1], Value::Int(7));

        // A templated type needs its variable in the super table name.
        let mut bad = spec.clone();
        bad.stable = "opc".into();
        assert!(Mapper::new(&bad)
            .unwrap_err()
            .0
            .contains("must be a template"));
        bad.stable = "opc_{type".into();
        assert!(Mapper::new(&bad).is_err());
        bad.stable = "opc_{type#/}".into();
        assert!(Mapper::new(&bad).unwrap_err().0.contains("two characters"));

        // A value transform (taosX's Rhai expressions) on the value column.
        let mut tf = spec.clone();
        tf.columns[0].transform = Some("val*1.8+32".into());
        let m = Mapper::new(&tf).unwrap();
        let mut b = BatchBuilder::new("edge");
        m.row(&row("a", "double", Json::from(21.5)), 0, &mut b)
            .unwrap();
        m.row(&row("b", "int", Json::from(100)), 0, &mut b).unwrap();
        let e = m
            .row(&row("c", "varchar", Json::from("on")), 0, &mut b)
            .unwrap_err();
        assert!(e.0.contains("not a number"), "{e}");
        let batch = b.take();
        assert_eq!(batch.tables[0].rows[0][1], Value::Double(70.7));
        assert_eq!(batch.tables[1].rows[0][1], Value::Int(212));
        tf.columns[0].transform = Some("val *".into());
        assert!(Mapper::new(&tf).unwrap_err().0.contains("transform"));

        // Character replacement in a variable.
        let mut sub = spec.clone();
        sub.table = "t_{id#/_}".into();
        let m = Mapper::new(&sub).unwrap();
        let (stable, table) = m
            .target(&row("/Line1/Temp/A/", "double", Json::from(1.0)))
            .unwrap();
        assert_eq!(
            (stable.as_str(), table.as_str()),
            ("opc_double", "t_Line1_Temp_A")
        );
    }
}
