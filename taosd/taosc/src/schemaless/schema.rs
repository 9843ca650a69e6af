//! The schema cache: what each (database, super table) looked like when we last asked, and the
//! DDL that makes it fit a body (CREATE STABLE, ALTER STABLE ADD/MODIFY COLUMN/TAG).
//!
//! The fast path is a lookup under a std mutex. A miss (or a body that needs more) takes the
//! writer-wide DDL lock, runs `DESCRIBE`, the needed statements, and `DESCRIBE` again, until the
//! server's schema fits. Another writer (another process, even) may have raced us: "already
//! exists" answers and lengths that are suddenly big enough count as success.

use super::{
    same_kind, var_len, with_len, SmlError, StableNeed, NULL_TAG, SML_NOT_SAME_TYPE, TS_COLUMN,
};
use crate::Connection;
use common::types::{DataType, MAX_VAR_COLUMN_LEN, MAX_VAR_TAG_LEN};
use common::{Code, TaosError, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// TDengine's "Column already exists" (mnode).
pub const COLUMN_ALREADY_EXIST: Code = Code(0x036B);
/// TDengine's "Tag already exists" (mnode).
pub const TAG_ALREADY_EXIST: Code = Code(0x0369);
/// Rounds of DESCRIBE + DDL before giving up on a schema that keeps changing under us.
const MAX_ROUNDS: usize = 5;

/// Columns and tags of one super table as DESCRIBE showed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StableSchema {
    /// Name of the timestamp (first) column.
    pub ts: String,
    /// Data columns after the timestamp, in order.
    pub columns: Vec<(String, DataType)>,
    pub tags: Vec<(String, DataType)>,
    col_index: HashMap<String, usize>,
    tag_index: HashMap<String, usize>,
}

impl StableSchema {
    pub fn new(
        ts: String,
        columns: Vec<(String, DataType)>,
        tags: Vec<(String, DataType)>,
    ) -> StableSchema {
        let col_index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.0.clone(), i))
            .collect();
        let tag_index = tags
            .iter()
            .enumerate()
            .map(|(i, c)| (c.0.clone(), i))
            .collect();
        StableSchema {
            ts,
            columns,
            tags,
            col_index,
            tag_index,
        }
    }

    pub fn column(&self, name: &str) -> Option<DataType> {
        self.col_index.get(name).map(|&i| self.columns[i].1)
    }

    pub fn tag(&self, name: &str) -> Option<DataType> {
        self.tag_index.get(name).map(|&i| self.tags[i].1)
    }
}

/// Schemas by (db, super table), shared by the clones of a [`super::Writer`].
#[derive(Clone, Default)]
pub struct SchemaCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    map: std::sync::Mutex<HashMap<(String, String), Arc<StableSchema>>>,
    ddl: tokio::sync::Mutex<()>,
}

/// Largest declared length for a variable type, in the type's own unit.
pub fn max_len(ty: DataType, tag: bool) -> u32 {
    let bytes = if tag {
        MAX_VAR_TAG_LEN
    } else {
        MAX_VAR_COLUMN_LEN
    };
    match ty {
        DataType::NChar(_) => bytes / 4,
        _ => bytes,
    }
}

/// Declared length for values up to `len`: next power of two, at least 8, at most the cap.
pub fn sized_len(len: u32, cap: u32) -> u32 {
    len.max(8)
        .checked_next_power_of_two()
        .unwrap_or(cap)
        .min(cap)
}

fn quote(name: &str) -> String {
    format!("`{name}`")
}

fn full_name(db: &str, stable: &str) -> String {
    format!("`{db}`.`{stable}`")
}

fn type_of(name: &str, len: i64) -> Option<DataType> {
    let n = u32::try_from(len).unwrap_or(0);
    Some(match name.to_ascii_uppercase().as_str() {
        "BOOL" => DataType::Bool,
        "TINYINT" => DataType::TinyInt,
        "SMALLINT" => DataType::SmallInt,
        "INT" => DataType::Int,
        "BIGINT" => DataType::BigInt,
        "FLOAT" => DataType::Float,
        "DOUBLE" => DataType::Double,
        "VARCHAR" | "BINARY" => DataType::VarChar(n),
        "TIMESTAMP" => DataType::Timestamp,
        "NCHAR" => DataType::NChar(n),
        "TINYINT UNSIGNED" => DataType::UTinyInt,
        "SMALLINT UNSIGNED" => DataType::USmallInt,
        "INT UNSIGNED" => DataType::UInt,
        "BIGINT UNSIGNED" => DataType::UBigInt,
        "JSON" => DataType::Json,
        "VARBINARY" => DataType::VarBinary(n),
        "GEOMETRY" => DataType::Geometry(n),
        _ => return None,
    })
}

/// `DESCRIBE db.stable`; `None` when it does not exist.
pub async fn describe(
    conn: &Connection,
    db: &str,
    stable: &str,
) -> Result<Option<StableSchema>, TaosError> {
    let rows = match conn
        .query(&format!("DESCRIBE {}", full_name(db, stable)))
        .await
    {
        Ok(r) => r.collect_rows().await?,
        Err(e)
            if e.is(Code::PAR_TABLE_NOT_EXIST)
                || e.is(Code::STB_NOT_EXIST)
                || e.is(Code::TDB_TABLE_NOT_EXIST) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut ts = None;
    let mut columns = Vec::new();
    let mut tags = Vec::new();
    for r in rows {
        let text = |i: usize| match r.get(i) {
            Some(Value::VarChar(s)) | Some(Value::NChar(s)) => s.as_str(),
            _ => "",
        };
        let len = r.get(2).and_then(|v| v.as_i64()).unwrap_or(0);
        let ty = type_of(text(1), len).ok_or_else(|| {
            TaosError::internal(format!(
                "DESCRIBE {stable}: unknown type {} of {}",
                text(1),
                text(0)
            ))
        })?;
        let name = text(0).to_string();
        if text(3) == "TAG" {
            tags.push((name, ty));
        } else if ts.is_none() {
            ts = Some(name);
        } else {
            columns.push((name, ty));
        }
    }
    let ts =
        ts.ok_or_else(|| TaosError::internal(format!("DESCRIBE {stable} returned no columns")))?;
    if tags.is_empty() {
        return Err(TaosError::new(
            Code::PAR_CORRESPONDING_STABLE_ERR,
            format!("{stable} exists but is not a super table"),
        ));
    }
    Ok(Some(StableSchema::new(ts, columns, tags)))
}

/// One statement to run and the line that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ddl {
    pub sql: String,
    pub line: usize,
}

fn too_long(line: usize, what: &str, name: &str, len: u32, cap: u32) -> SmlError {
    SmlError::at(
        line,
        Code::PAR_VALUE_TOO_LONG,
        format!("Value too long for column/tag: {what} {name} (length {len} > {cap})"),
    )
}

/// Declared type for a need: variable lengths rounded up with headroom.
fn declared(ty: DataType, tag: bool, line: usize, name: &str) -> Result<DataType, SmlError> {
    match ty {
        DataType::VarChar(n)
        | DataType::NChar(n)
        | DataType::VarBinary(n)
        | DataType::Geometry(n) => {
            let cap = max_len(ty, tag);
            if n > cap {
                return Err(too_long(
                    line,
                    if tag { "tag" } else { "column" },
                    name,
                    n,
                    cap,
                ));
            }
            Ok(with_len(ty, sized_len(n, cap)))
        }
        t => Ok(t),
    }
}

/// `CREATE STABLE IF NOT EXISTS` for a need.
pub fn create_sql(db: &str, need: &StableNeed) -> Result<Ddl, SmlError> {
    let line = need
        .columns
        .iter()
        .chain(&need.tags)
        .map(|c| c.2)
        .min()
        .unwrap_or(1);
    let mut cols = vec![format!("{} TIMESTAMP", quote(TS_COLUMN))];
    for (n, t, l) in &need.columns {
        cols.push(format!(
            "{} {}",
            quote(n),
            declared(*t, false, *l, n)?.sql()
        ));
    }
    let mut tags = Vec::new();
    for (n, t, l) in &need.tags {
        tags.push(format!("{} {}", quote(n), declared(*t, true, *l, n)?.sql()));
    }
    if tags.is_empty() {
        tags.push(format!("{} NCHAR(1)", quote(NULL_TAG)));
    }
    Ok(Ddl {
        sql: format!(
            "CREATE STABLE IF NOT EXISTS {} ({}) TAGS ({})",
            full_name(db, &need.stable),
            cols.join(", "),
            tags.join(", ")
        ),
        line,
    })
}

/// ALTER statements that make `have` fit `need`; a type conflict is an error naming the line.
pub fn alter_sql(db: &str, have: &StableSchema, need: &StableNeed) -> Result<Vec<Ddl>, SmlError> {
    let stb = full_name(db, &need.stable);
    let mut out = Vec::new();
    let conflict = |line: usize, msg: String| SmlError::at(line, SML_NOT_SAME_TYPE, msg);
    for (tag, list) in [(false, &need.columns), (true, &need.tags)] {
        let (what, kw) = if tag {
            ("tag", "TAG")
        } else {
            ("field", "COLUMN")
        };
        for (name, ty, line) in list {
            let (mine, other) = if tag {
                (have.tag(name), have.column(name))
            } else {
                (have.column(name), have.tag(name))
            };
            if other.is_some() || *name == have.ts {
                let was = if tag { "a column" } else { "a tag" };
                return Err(conflict(
                    *line,
                    format!("{what} {name} is {was} of super table {}", need.stable),
                ));
            }
            match mine {
                None => out.push(Ddl {
                    sql: format!(
                        "ALTER STABLE {stb} ADD {kw} {} {}",
                        quote(name),
                        declared(*ty, tag, *line, name)?.sql()
                    ),
                    line: *line,
                }),
                Some(cur) if !same_kind(cur, *ty) => {
                    return Err(conflict(
                        *line,
                        format!(
                            "{what} {name} is {} here but {} in super table {}",
                            ty.name(),
                            cur.sql(),
                            need.stable
                        ),
                    ))
                }
                Some(cur) => {
                    if let (Some(have_len), Some(need_len)) = (var_len(cur), var_len(*ty)) {
                        if need_len > have_len {
                            let cap = max_len(cur, tag);
                            if need_len > cap {
                                return Err(too_long(*line, what, name, need_len, cap));
                            }
                            let grown = with_len(cur, sized_len(need_len, cap));
                            out.push(Ddl {
                                sql: format!(
                                    "ALTER STABLE {stb} MODIFY {kw} {} {}",
                                    quote(name),
                                    grown.sql()
                                ),
                                line: *line,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Answers that mean another writer got there first.
fn is_race(e: &TaosError) -> bool {
    [
        COLUMN_ALREADY_EXIST,
        TAG_ALREADY_EXIST,
        Code::STB_ALREADY_EXIST,
        Code::PAR_DUPLICATED_COLUMN,
    ]
    .iter()
    .any(|c| e.is(*c))
}

impl SchemaCache {
    pub fn get(&self, db: &str, stable: &str) -> Option<Arc<StableSchema>> {
        self.map()
            .get(&(db.to_string(), stable.to_string()))
            .cloned()
    }

    pub fn forget(&self, db: &str, stable: &str) {
        self.map().remove(&(db.to_string(), stable.to_string()));
    }

    pub fn clear(&self) {
        self.map().clear();
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<StableSchema>>> {
        self.inner.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The super table's schema, created or altered first if it does not fit `need`.
    pub async fn ensure(
        &self,
        conn: &Connection,
        db: &str,
        need: &StableNeed,
    ) -> Result<Arc<StableSchema>, SmlError> {
        if let Some(s) = self.get(db, &need.stable) {
            if alter_sql(db, &s, need)?.is_empty() {
                return Ok(s);
            }
        }
        let _ddl = self.inner.ddl.lock().await;
        let mut last: Option<SmlError> = None;
        for _ in 0..MAX_ROUNDS {
            let todo = match describe(conn, db, &need.stable).await? {
                None => vec![create_sql(db, need)?],
                Some(have) => {
                    let todo = alter_sql(db, &have, need)?;
                    if todo.is_empty() {
                        let s = Arc::new(have);
                        self.map()
                            .insert((db.to_string(), need.stable.clone()), s.clone());
                        return Ok(s);
                    }
                    todo
                }
            };
            if let Some(e) = last.take() {
                // The statement failed last round and is still needed: a real error.
                return Err(e);
            }
            for d in todo {
                tracing::debug!(sql = %d.sql, "schemaless DDL");
                if let Err(e) = conn.exec(&d.sql).await {
                    if !is_race(&e) {
                        last = Some(SmlError {
                            line: Some(d.line),
                            error: e,
                        });
                    }
                    break;
                }
            }
        }
        self.forget(db, &need.stable);
        Err(last.unwrap_or_else(|| {
            SmlError::from(TaosError::internal(format!(
                "schema of super table {} kept changing; giving up after {MAX_ROUNDS} rounds",
                need.stable
            )))
        }))
    }
}
