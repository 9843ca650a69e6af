//! Statement API v1 (`init`, `prepare`, `set_table_name`, `set_tags`, `bind`, `add_batch`,
//! `exec`, `close`, …; binary 1/2) (PROTOCOLS.md §4.6), and what v1 and v2 share: parsing the
//! prepared SQL, resolving the target schema, converting bound values.
//!
//! An insert statement never becomes SQL text: the bound rows of each table are collected as
//! typed values and sent as one [`WriteRequest`] per `exec`. A query statement (`select … ?`)
//! has its `?` replaced by safely quoted literals and runs as a normal query.

use super::block;
use super::conn::{parse_args, Session};
use super::{query, Reply, WsError, WsResult};
use common::wire::{WriteRequest, WriteTable, WriteUsing};
use common::{DataType, Field, Precision, SessionTz, Value};
use serde_json::{json, Value as Json};
use taosc::{Connection, QueryResult};

/// The text actions of stmt v1.
pub const ACTIONS: &[&str] = &[
    "init",
    "prepare",
    "set_table_name",
    "set_tags",
    "bind",
    "add_batch",
    "exec",
    "close",
    "get_tag_fields",
    "get_col_fields",
    "use_result",
    "stmt_num_params",
    "stmt_get_param",
];

// ---------------------------------------------------------------------------------------------
// Prepared SQL

/// `INSERT INTO <table|?> [USING <stable> [(tags)] TAGS (?,..)] [(cols)] VALUES (?,..)`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertSql {
    /// `None` for `?` (set by `set_table_name` / the stmt2 bind).
    pub table: Option<Name>,
    pub using: Option<UsingSql>,
    pub columns: Option<Vec<String>>,
    pub values: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsingSql {
    pub stable: Name,
    pub tag_names: Option<Vec<String>>,
    pub tags: usize,
}

/// A possibly database-qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub db: Option<String>,
    pub name: String,
}

impl Name {
    /// `db.tb`, `` `db`.`tb` ``, `tb`; unquoted parts are lower-cased like TDengine does.
    pub fn parse(s: &str) -> Option<Name> {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        for c in s.trim().chars() {
            match c {
                '`' => {
                    quoted = !quoted;
                    was_quoted = true;
                }
                '.' if !quoted => {
                    parts.push((std::mem::take(&mut cur), was_quoted));
                    was_quoted = false;
                }
                c => cur.push(c),
            }
        }
        if quoted {
            return None;
        }
        parts.push((cur, was_quoted));
        let norm = |(s, q): (String, bool)| if q { s } else { s.to_ascii_lowercase() };
        let mut it = parts.into_iter().map(norm);
        let (db, name) = match (it.next(), it.next(), it.next()) {
            (Some(n), None, _) => (None, n),
            (Some(d), Some(n), None) => (Some(d), n),
            _ => return None,
        };
        if name.is_empty() || db.as_deref() == Some("") {
            return None;
        }
        Some(Name { db, name })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quest,
    Open,
    Close,
    Comma,
    Other,
}

/// Words (identifiers, keywords, backquoted names, dotted names), `?`, parens and commas;
/// string literals and anything else become `Other`.
fn tokenize(sql: &str) -> Vec<Tok> {
    let b: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '?' => {
                out.push(Tok::Quest);
                i += 1
            }
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' | '"' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Other);
            }
            c if c.is_alphanumeric() || c == '_' || c == '`' || c == '.' => {
                let mut w = String::new();
                let mut quoted = false;
                while i < b.len() {
                    let d = b[i];
                    if d == '`' {
                        quoted = !quoted;
                    } else if !quoted && !(d.is_alphanumeric() || d == '_' || d == '.') {
                        break;
                    }
                    w.push(d);
                    i += 1;
                }
                out.push(Tok::Word(w));
            }
            _ => {
                out.push(Tok::Other);
                i += 1
            }
        }
    }
    out
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

/// Whether the statement is an INSERT (else a query with `?` parameters).
pub fn is_insert(sql: &str) -> bool {
    is_kw(tokenize(sql).first(), "insert")
}

/// Parse a prepared INSERT. Only `?` placeholders are accepted for tags and values.
pub fn parse_insert(sql: &str) -> WsResult<InsertSql> {
    let err = |m: &str| WsError::new(format!("stmt prepare: {m}: {sql}"));
    let toks = tokenize(sql);
    let mut i = 0;
    if !is_kw(toks.first(), "insert") || !is_kw(toks.get(1), "into") {
        return Err(err("not an INSERT INTO statement"));
    }
    i += 2;
    let table = match toks.get(i) {
        Some(Tok::Quest) => None,
        Some(Tok::Word(w)) => Some(Name::parse(w).ok_or_else(|| err("bad table name"))?),
        _ => return Err(err("table name expected")),
    };
    i += 1;
    // (names) — a list of words.
    let names = |i: &mut usize| -> WsResult<Vec<String>> {
        let mut v = Vec::new();
        if toks.get(*i) != Some(&Tok::Open) {
            return Err(err("'(' expected"));
        }
        *i += 1;
        loop {
            match toks.get(*i) {
                Some(Tok::Word(w)) => {
                    let n = Name::parse(w).ok_or_else(|| err("bad name"))?;
                    v.push(n.name);
                }
                _ => return Err(err("name expected")),
            }
            *i += 1;
            match toks.get(*i) {
                Some(Tok::Comma) => *i += 1,
                Some(Tok::Close) => {
                    *i += 1;
                    return Ok(v);
                }
                _ => return Err(err("',' or ')' expected")),
            }
        }
    };
    // (?, ?, ...) — only placeholders.
    let quests = |i: &mut usize| -> WsResult<usize> {
        if toks.get(*i) != Some(&Tok::Open) {
            return Err(err("'(' expected"));
        }
        *i += 1;
        let mut n = 0;
        loop {
            match toks.get(*i) {
                Some(Tok::Quest) => n += 1,
                _ => {
                    return Err(err(
                        "only '?' placeholders are supported in TAGS and VALUES",
                    ))
                }
            }
            *i += 1;
            match toks.get(*i) {
                Some(Tok::Comma) => *i += 1,
                Some(Tok::Close) => {
                    *i += 1;
                    return Ok(n);
                }
                _ => return Err(err("',' or ')' expected")),
            }
        }
    };
    let mut using = None;
    if is_kw(toks.get(i), "using") {
        i += 1;
        let stable = match toks.get(i) {
            Some(Tok::Word(w)) => Name::parse(w).ok_or_else(|| err("bad super table name"))?,
            _ => return Err(err("super table name expected")),
        };
        i += 1;
        let tag_names = if toks.get(i) == Some(&Tok::Open) {
            Some(names(&mut i)?)
        } else {
            None
        };
        if !is_kw(toks.get(i), "tags") {
            return Err(err("TAGS expected"));
        }
        i += 1;
        let tags = quests(&mut i)?;
        using = Some(UsingSql {
            stable,
            tag_names,
            tags,
        });
    }
    let columns = if toks.get(i) == Some(&Tok::Open) {
        Some(names(&mut i)?)
    } else {
        None
    };
    if !is_kw(toks.get(i), "values") {
        return Err(err("VALUES expected"));
    }
    i += 1;
    let values = quests(&mut i)?;
    if i != toks.len() {
        return Err(err("unexpected text after VALUES (...)"));
    }
    Ok(InsertSql {
        table,
        using,
        columns,
        values,
    })
}

/// Number of `?` outside quotes in a query.
pub fn count_params(sql: &str) -> usize {
    split_params(sql).len().saturating_sub(1)
}

/// The query text between `?` placeholders (quotes and backquotes respected).
fn split_params(sql: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in sql.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '?' => {
                parts.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&sql[start..]);
    parts
}

/// A value as an SQL literal: strings quoted with `'` and escaped, binary as `'\x..'`.
pub fn literal(v: &Value) -> String {
    fn quote(s: &str) -> String {
        let mut o = String::with_capacity(s.len() + 2);
        o.push('\'');
        for c in s.chars() {
            match c {
                '\'' => o.push_str("\\'"),
                '\\' => o.push_str("\\\\"),
                c => o.push(c),
            }
        }
        o.push('\'');
        o
    }
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Double(f) => format!("{f:?}"),
        Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => quote(s),
        Value::VarBinary(b) | Value::Geometry(b) => {
            let mut s = String::from("'\\x");
            for x in b {
                s.push_str(&format!("{x:02X}"));
            }
            s.push('\'');
            s
        }
        other => other
            .as_i64()
            .map(|i| i.to_string())
            .unwrap_or_else(|| "NULL".into()),
    }
}

/// Replace each `?` with the literal of its parameter.
pub fn substitute(sql: &str, params: &[Value]) -> WsResult<String> {
    let parts = split_params(sql);
    if parts.len() - 1 != params.len() {
        return Err(WsError::new(format!(
            "wrong number of parameters: statement has {}, got {}",
            parts.len() - 1,
            params.len()
        )));
    }
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    for (i, p) in parts.iter().enumerate() {
        out.push_str(p);
        if let Some(v) = params.get(i) {
            out.push_str(&literal(v));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Schema resolution

/// What an insert statement writes: the resolved target and the bound fields in bind order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub db: String,
    pub precision: Precision,
    /// Fixed table from the SQL (None: named per bind).
    pub table: Option<String>,
    pub stable: Option<String>,
    pub tag_fields: Vec<Field>,
    /// Bound columns; empty until known for `INSERT INTO ? VALUES` without USING.
    pub col_fields: Vec<Field>,
    pub col_names: Vec<String>,
    pub tag_names: Vec<String>,
    /// `?` count in VALUES (checked once the columns are known).
    pub values: usize,
    /// Column list given in the SQL.
    pub explicit_columns: Option<Vec<String>>,
}

fn text(v: Option<&Value>) -> &str {
    match v {
        Some(Value::VarChar(s)) | Some(Value::NChar(s)) => s,
        _ => "",
    }
}

fn type_of(name: &str, n: u32) -> Option<DataType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "BOOL" => DataType::Bool,
        "TINYINT" => DataType::TinyInt,
        "SMALLINT" => DataType::SmallInt,
        "INT" => DataType::Int,
        "BIGINT" => DataType::BigInt,
        "TINYINT UNSIGNED" => DataType::UTinyInt,
        "SMALLINT UNSIGNED" => DataType::USmallInt,
        "INT UNSIGNED" => DataType::UInt,
        "BIGINT UNSIGNED" => DataType::UBigInt,
        "FLOAT" => DataType::Float,
        "DOUBLE" => DataType::Double,
        "TIMESTAMP" => DataType::Timestamp,
        "VARCHAR" | "BINARY" => DataType::VarChar(n),
        "NCHAR" => DataType::NChar(n),
        "JSON" => DataType::Json,
        "VARBINARY" => DataType::VarBinary(n),
        "GEOMETRY" => DataType::Geometry(n),
        _ => return None,
    })
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// `DESCRIBE db.table`: (columns incl. the timestamp, tags).
pub async fn describe(
    conn: &Connection,
    db: &str,
    table: &str,
) -> WsResult<(Vec<Field>, Vec<Field>)> {
    let rows = conn
        .query(&format!(
            "DESCRIBE {}.{}",
            quote_ident(db),
            quote_ident(table)
        ))
        .await?
        .collect_rows()
        .await?;
    let mut cols = Vec::new();
    let mut tags = Vec::new();
    for r in &rows {
        let n = r.get(2).and_then(Value::as_i64).unwrap_or(0).max(0) as u32;
        let ty = type_of(text(r.get(1)), n).ok_or_else(|| {
            WsError::new(format!(
                "unknown type {} in DESCRIBE {table}",
                text(r.get(1))
            ))
        })?;
        let f = Field::new(text(r.first()), ty);
        if text(r.get(3)) == "TAG" {
            tags.push(f);
        } else {
            cols.push(f);
        }
    }
    Ok((cols, tags))
}

/// The precision of a database (cached per session).
pub async fn db_precision(s: &mut Session, db: &str) -> WsResult<Precision> {
    if let Some(p) = s.precisions.get(db) {
        return Ok(*p);
    }
    let conn = s.conn()?;
    let sql = format!(
        "SELECT `precision` FROM information_schema.ins_databases WHERE name = {}",
        literal(&Value::VarChar(db.to_string()))
    );
    let rows = conn.query(&sql).await?.collect_rows().await?;
    let p = rows
        .first()
        .and_then(|r| Precision::parse(text(r.first())))
        .ok_or_else(|| {
            WsError::from(common::TaosError::new(
                common::Code::DB_NOT_EXIST,
                format!("Database not exist: {db}"),
            ))
        })?;
    s.precisions.insert(db.to_string(), p);
    Ok(p)
}

fn pick(fields: &[Field], names: &Option<Vec<String>>, what: &str) -> WsResult<Vec<Field>> {
    match names {
        None => Ok(fields.to_vec()),
        Some(ns) => ns
            .iter()
            .map(|n| {
                fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(n))
                    .cloned()
                    .ok_or_else(|| {
                        WsError::from(common::TaosError::new(
                            common::Code::PAR_INVALID_COLUMN,
                            format!("Invalid {what} name: {n}"),
                        ))
                    })
            })
            .collect(),
    }
}

/// Resolve an insert statement against the server's schema.
pub async fn plan(s: &mut Session, sql: &InsertSql) -> WsResult<Plan> {
    let conn = s.conn()?;
    let default_db = conn.current_db();
    let db_of = |n: &Name| -> WsResult<String> {
        n.db.clone()
            .or_else(|| default_db.clone())
            .ok_or_else(|| WsError::from(common::TaosError::of(common::Code::PAR_DB_NOT_SPECIFIED)))
    };
    let db = match (&sql.using, &sql.table) {
        (Some(u), _) => db_of(&u.stable)?,
        (None, Some(t)) => db_of(t)?,
        (None, None) => default_db.clone().ok_or_else(|| {
            WsError::from(common::TaosError::of(common::Code::PAR_DB_NOT_SPECIFIED))
        })?,
    };
    let precision = db_precision(s, &db).await?;
    let mut p = Plan {
        db: db.clone(),
        precision,
        table: sql.table.as_ref().map(|t| t.name.clone()),
        stable: None,
        tag_fields: Vec::new(),
        col_fields: Vec::new(),
        col_names: Vec::new(),
        tag_names: Vec::new(),
        values: sql.values,
        explicit_columns: sql.columns.clone(),
    };
    let schema = match (&sql.using, &sql.table) {
        (Some(u), _) => {
            p.stable = Some(u.stable.name.clone());
            Some(describe(&conn, &db, &u.stable.name).await?)
        }
        (None, Some(t)) => Some(describe(&conn, &db, &t.name).await?),
        (None, None) => None,
    };
    if let Some((cols, tags)) = schema {
        if let Some(u) = &sql.using {
            p.tag_fields = pick(&tags, &u.tag_names, "tag")?;
            if p.tag_fields.len() != u.tags {
                return Err(WsError::from(common::TaosError::new(
                    common::Code::PAR_TAGS_NOT_MATCHED,
                    format!(
                        "Tags number not matched: {} tags, {} placeholders",
                        p.tag_fields.len(),
                        u.tags
                    ),
                )));
            }
            p.tag_names = p.tag_fields.iter().map(|f| f.name.clone()).collect();
        }
        p.set_columns(&cols)?;
    }
    Ok(p)
}

impl Plan {
    /// Fix the bound columns from the table's schema.
    pub fn set_columns(&mut self, cols: &[Field]) -> WsResult<()> {
        self.col_fields = pick(cols, &self.explicit_columns, "column")?;
        if self.col_fields.len() != self.values {
            return Err(WsError::from(common::TaosError::new(
                common::Code::PAR_INVALID_COLUMNS_NUM,
                format!(
                    "Illegal number of columns: {} columns, {} placeholders",
                    self.col_fields.len(),
                    self.values
                ),
            )));
        }
        self.col_names = self.col_fields.iter().map(|f| f.name.clone()).collect();
        Ok(())
    }

    /// For `INSERT INTO ? VALUES` without USING: learn the columns of the named table.
    pub async fn columns_for(&mut self, conn: &Connection, table: &str) -> WsResult<()> {
        if self.col_fields.is_empty() {
            let (cols, _) = describe(conn, &self.db, table).await?;
            self.set_columns(&cols)?;
        }
        Ok(())
    }

    /// The table part of a bound name (`db.tb` → `tb` when `db` is ours).
    pub fn table_name(&self, name: &str) -> WsResult<String> {
        let n =
            Name::parse(name).ok_or_else(|| WsError::new(format!("invalid table name {name}")))?;
        if let Some(db) = &n.db {
            if db != &self.db {
                return Err(WsError::new(format!(
                    "table {name} is not in database {}",
                    self.db
                )));
            }
        }
        Ok(n.name)
    }

    /// A table entry for the write request.
    pub fn write_table(
        &self,
        name: String,
        tags: Option<Vec<Value>>,
        rows: Vec<Vec<Value>>,
    ) -> WriteTable {
        let using = match (&self.stable, tags) {
            (Some(st), Some(tags)) => Some(WriteUsing {
                stable: st.clone(),
                tag_names: self.tag_names.clone(),
                tags,
            }),
            _ => None,
        };
        WriteTable {
            name,
            using,
            columns: self.col_names.clone(),
            rows,
        }
    }

    pub fn request(&self, tables: Vec<WriteTable>) -> WriteRequest {
        WriteRequest {
            db: self.db.clone(),
            precision: self.precision,
            tables,
        }
    }
}

/// Check and convert a bound value to its field's type.
pub fn coerce(v: Value, f: &Field) -> WsResult<Value> {
    v.coerce(f.ty, &f.name).map_err(WsError::from)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s
        .strip_prefix("\\x")
        .or_else(|| s.strip_prefix("0x"))
        .unwrap_or(s);
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// A JSON bind value for a field (Go adapter rules: timestamps as numbers or RFC 3339 strings,
/// VARBINARY/GEOMETRY as hex strings).
pub fn json_value(v: &Json, f: &Field, precision: Precision) -> WsResult<Value> {
    let bad = || WsError::new(format!("invalid value {v} for {} {}", f.ty.name(), f.name));
    let raw = match v {
        Json::Null => return Ok(Value::Null),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::BigInt(i)
            } else if let Some(u) = n.as_u64() {
                Value::UBigInt(u)
            } else {
                Value::Double(n.as_f64().ok_or_else(bad)?)
            }
        }
        Json::String(s) => match f.ty {
            DataType::Timestamp => Value::Timestamp(
                common::time::parse_timestamp(s, precision, SessionTz::Utc)
                    .map_err(WsError::from)?,
            ),
            DataType::VarBinary(_) | DataType::Geometry(_) => {
                Value::VarBinary(unhex(s).ok_or_else(bad)?)
            }
            _ => Value::VarChar(s.clone()),
        },
        other => Value::VarChar(other.to_string()),
    };
    coerce(raw, f)
}

// ---------------------------------------------------------------------------------------------
// Statement v1

/// One v1 statement.
#[derive(Default)]
pub struct Stmt {
    kind: Option<Kind>,
    table: Option<String>,
    tags: Option<Vec<Value>>,
    /// Rows bound since the last `add_batch`.
    bound: Vec<Vec<Value>>,
    /// Rows per table added by `add_batch`, in order.
    batches: Vec<WriteTable>,
    result: Option<QueryResult>,
    affected: i64,
}

enum Kind {
    Insert(Plan),
    Query {
        sql: String,
        params: usize,
        bound: Vec<Value>,
    },
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct StmtArgs {
    stmt_id: u64,
    sql: String,
    name: String,
    tags: Vec<Json>,
    columns: Vec<Vec<Json>>,
    index: i64,
}

fn stmt_mut(s: &mut Session, id: u64) -> WsResult<&mut Stmt> {
    s.stmts
        .get_mut(&id)
        .ok_or_else(|| WsError::new("stmt is nil"))
}

pub async fn handle(s: &mut Session, action: &str, args: &Json) -> WsResult<Reply> {
    let a: StmtArgs = parse_args(args)?;
    let id = a.stmt_id;
    match action {
        "init" => {
            let id = s.next_stmt_id();
            s.stmts.insert(id, Stmt::default());
            Ok(fields![("stmt_id", id)])
        }
        "prepare" => {
            stmt_mut(s, id)?;
            let kind = if is_insert(&a.sql) {
                let parsed = parse_insert(&a.sql)?;
                Kind::Insert(plan(s, &parsed).await?)
            } else {
                Kind::Query {
                    params: count_params(&a.sql),
                    sql: a.sql.clone(),
                    bound: Vec::new(),
                }
            };
            let insert = matches!(kind, Kind::Insert(_));
            let st = stmt_mut(s, id)?;
            *st = Stmt {
                kind: Some(kind),
                ..Stmt::default()
            };
            Ok(fields![("stmt_id", id), ("is_insert", insert)])
        }
        "set_table_name" => {
            let conn = s.conn()?;
            let st = stmt_mut(s, id)?;
            let Some(Kind::Insert(p)) = &mut st.kind else {
                return Err(WsError::new("set_table_name needs a prepared INSERT"));
            };
            let name = p.table_name(&a.name)?;
            p.columns_for(&conn, &name).await?;
            st.flush_bound();
            st.table = Some(name);
            st.tags = None;
            Ok(fields![("stmt_id", id)])
        }
        "set_tags" => {
            let st = stmt_mut(s, id)?;
            let Some(Kind::Insert(p)) = &st.kind else {
                return Err(WsError::new("set_tags needs a prepared INSERT"));
            };
            if a.tags.len() != p.tag_fields.len() {
                return Err(WsError::new(format!(
                    "wrong number of tags: expected {}, got {}",
                    p.tag_fields.len(),
                    a.tags.len()
                )));
            }
            let tags = a
                .tags
                .iter()
                .zip(&p.tag_fields)
                .map(|(v, f)| json_value(v, f, p.precision))
                .collect::<WsResult<Vec<_>>>()?;
            st.flush_bound();
            st.tags = Some(tags);
            Ok(fields![("stmt_id", id)])
        }
        "bind" => {
            let st = stmt_mut(s, id)?;
            st.bind_json(&a.columns)?;
            Ok(fields![("stmt_id", id)])
        }
        "add_batch" => {
            let st = stmt_mut(s, id)?;
            st.add_batch()?;
            Ok(fields![("stmt_id", id)])
        }
        "exec" => {
            let conn = s.conn()?;
            let st = stmt_mut(s, id)?;
            let affected = st.exec(&conn).await?;
            Ok(fields![("stmt_id", id), ("affected", affected)])
        }
        "close" => {
            s.stmts.remove(&id);
            Ok(Reply::None)
        }
        "get_tag_fields" | "get_col_fields" => {
            let st = stmt_mut(s, id)?;
            let Some(Kind::Insert(p)) = &st.kind else {
                return Err(WsError::new("not an INSERT statement"));
            };
            let fs = if action == "get_tag_fields" {
                &p.tag_fields
            } else {
                &p.col_fields
            };
            let list: Vec<Json> = fs
                .iter()
                .map(|f| field_json(f, p.precision, None))
                .collect();
            Ok(fields![("stmt_id", id), ("fields", list)])
        }
        "use_result" => {
            let st = stmt_mut(s, id)?;
            let r = st
                .result
                .take()
                .ok_or_else(|| WsError::new("no result: exec a query statement first"))?;
            let mut m = query::register(s, r);
            let rid = m.remove("id").unwrap_or(Json::from(0));
            m.insert("result_id".into(), rid);
            m.insert("stmt_id".into(), json!(id));
            Ok(Reply::Json(m))
        }
        "stmt_num_params" => {
            let st = stmt_mut(s, id)?;
            let n = match &st.kind {
                Some(Kind::Insert(p)) => p.col_fields.len(),
                Some(Kind::Query { params, .. }) => *params,
                None => 0,
            };
            Ok(fields![("stmt_id", id), ("num_params", n)])
        }
        "stmt_get_param" => {
            let st = stmt_mut(s, id)?;
            let Some(Kind::Insert(p)) = &st.kind else {
                return Err(WsError::new("not an INSERT statement"));
            };
            let f = usize::try_from(a.index)
                .ok()
                .and_then(|i| p.col_fields.get(i))
                .ok_or_else(|| WsError::new(format!("invalid index {}", a.index)))?;
            Ok(fields![
                ("stmt_id", id),
                ("index", a.index),
                ("data_type", f.ty.id()),
                ("length", block::user_length(f.ty))
            ])
        }
        other => Err(WsError::new(format!("unknown action {other}"))),
    }
}

/// `{name, field_type, precision, scale, bytes[, bind_type]}`.
pub fn field_json(f: &Field, precision: Precision, bind_type: Option<u8>) -> Json {
    let p = if f.ty == DataType::Timestamp {
        precision.id()
    } else {
        0
    };
    let mut j = json!({
        "name": f.name,
        "field_type": f.ty.id(),
        "precision": p,
        "scale": 0,
        "bytes": block::storage_width(f.ty),
    });
    if let (Some(b), Some(o)) = (bind_type, j.as_object_mut()) {
        o.insert("bind_type".into(), json!(b));
    }
    j
}

/// Binary action 1 (`set_tags`, a one-row raw block) or 2 (`bind`, N rows).
pub async fn bind_binary(s: &mut Session, id: u64, payload: &[u8], tags: bool) -> WsResult<Reply> {
    let st = stmt_mut(s, id)?;
    let cols = block::decode(payload).map_err(|e| WsError::new(e.to_string()))?;
    if tags {
        let Some(Kind::Insert(p)) = &st.kind else {
            return Err(WsError::new("set_tags needs a prepared INSERT"));
        };
        if cols.len() != p.tag_fields.len() {
            return Err(WsError::new(format!(
                "wrong number of tags: expected {}, got {}",
                p.tag_fields.len(),
                cols.len()
            )));
        }
        let vals = cols
            .into_iter()
            .zip(&p.tag_fields)
            .map(|(c, f)| coerce(c.values.into_iter().next().unwrap_or(Value::Null), f))
            .collect::<WsResult<Vec<_>>>()?;
        st.flush_bound();
        st.tags = Some(vals);
    } else {
        let columns: Vec<Vec<Value>> = cols.into_iter().map(|c| c.values).collect();
        st.bind_values(columns)?;
    }
    Ok(fields![("stmt_id", id)])
}

impl Stmt {
    fn bind_json(&mut self, columns: &[Vec<Json>]) -> WsResult<()> {
        let fields: Vec<Field> = match &self.kind {
            Some(Kind::Insert(p)) => p.col_fields.clone(),
            Some(Kind::Query { params, .. }) => {
                // Parameters take the type of their JSON value.
                let ty = |c: &Vec<Json>| match c.first() {
                    Some(Json::Bool(_)) => DataType::Bool,
                    Some(Json::Number(n)) if n.is_i64() => DataType::BigInt,
                    Some(Json::Number(n)) if n.is_u64() => DataType::UBigInt,
                    Some(Json::Number(_)) => DataType::Double,
                    _ => DataType::VarChar(u16::MAX as u32),
                };
                if columns.len() != *params {
                    return Err(WsError::new(format!(
                        "wrong number of parameters: expected {params}, got {}",
                        columns.len()
                    )));
                }
                columns.iter().map(|c| Field::new("?", ty(c))).collect()
            }
            None => return Err(WsError::new("stmt not prepared")),
        };
        let precision = match &self.kind {
            Some(Kind::Insert(p)) => p.precision,
            _ => Precision::Ms,
        };
        if columns.len() != fields.len() {
            return Err(WsError::new(format!(
                "wrong number of columns: expected {}, got {}",
                fields.len(),
                columns.len()
            )));
        }
        let values = columns
            .iter()
            .zip(&fields)
            .map(|(c, f)| {
                c.iter()
                    .map(|v| json_value(v, f, precision))
                    .collect::<WsResult<Vec<_>>>()
            })
            .collect::<WsResult<Vec<_>>>()?;
        self.bind_values(values)
    }

    /// Bind column-major values (checked and converted to the column types).
    fn bind_values(&mut self, columns: Vec<Vec<Value>>) -> WsResult<()> {
        match &mut self.kind {
            None => Err(WsError::new("stmt not prepared")),
            Some(Kind::Query { params, bound, .. }) => {
                if columns.len() != *params {
                    return Err(WsError::new(format!(
                        "wrong number of parameters: expected {params}, got {}",
                        columns.len()
                    )));
                }
                *bound = columns
                    .into_iter()
                    .map(|c| c.into_iter().next().unwrap_or(Value::Null))
                    .collect();
                Ok(())
            }
            Some(Kind::Insert(p)) => {
                if p.col_fields.is_empty() {
                    return Err(WsError::new("set_table_name first"));
                }
                if columns.len() != p.col_fields.len() {
                    return Err(WsError::new(format!(
                        "wrong number of columns: expected {}, got {}",
                        p.col_fields.len(),
                        columns.len()
                    )));
                }
                let n = columns.first().map(Vec::len).unwrap_or(0);
                if columns.iter().any(|c| c.len() != n) {
                    return Err(WsError::new("columns have different row counts"));
                }
                let mut rows: Vec<Vec<Value>> =
                    (0..n).map(|_| Vec::with_capacity(columns.len())).collect();
                for (c, f) in columns.into_iter().zip(&p.col_fields) {
                    for (r, v) in rows.iter_mut().zip(c) {
                        r.push(coerce(v, f)?);
                    }
                }
                self.bound.extend(rows);
                Ok(())
            }
        }
    }

    /// Move bound rows into the batch of the current table.
    fn flush_bound(&mut self) {
        if self.bound.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.bound);
        let Some(Kind::Insert(p)) = &self.kind else {
            return;
        };
        let name = self
            .table
            .clone()
            .or_else(|| p.table.clone())
            .unwrap_or_default();
        match self.batches.last_mut() {
            Some(t) if t.name == name => t.rows.extend(rows),
            _ => {
                let t = p.write_table(name, self.tags.clone(), rows);
                self.batches.push(t);
            }
        }
    }

    fn add_batch(&mut self) -> WsResult<()> {
        match &self.kind {
            None => Err(WsError::new("stmt not prepared")),
            Some(Kind::Query { .. }) => Ok(()),
            Some(Kind::Insert(p)) => {
                if self.table.is_none() && p.table.is_none() {
                    return Err(WsError::new("table name not set"));
                }
                if p.stable.is_some() && self.tags.is_none() && !self.bound.is_empty() {
                    return Err(WsError::new("tags not set"));
                }
                self.flush_bound();
                Ok(())
            }
        }
    }

    async fn exec(&mut self, conn: &Connection) -> WsResult<i64> {
        match &mut self.kind {
            None => Err(WsError::new("stmt not prepared")),
            Some(Kind::Query { sql, bound, .. }) => {
                let sql = substitute(sql, bound)?;
                let r = conn.query(&sql).await?;
                self.affected = r.affected_rows();
                self.result = Some(r);
                Ok(self.affected)
            }
            Some(Kind::Insert(_)) => {
                self.flush_bound();
                let tables = std::mem::take(&mut self.batches);
                let Some(Kind::Insert(p)) = &self.kind else {
                    return Ok(0);
                };
                if tables.is_empty() {
                    return Ok(0);
                }
                let n = conn.write(p.request(tables)).await?;
                self.affected = n;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_insert_forms() {
        let p = parse_insert("INSERT INTO ? USING db.st TAGS(?, ?) VALUES(?,?,?)").unwrap();
        assert_eq!(p.table, None);
        let u = p.using.unwrap();
        assert_eq!(
            u.stable,
            Name {
                db: Some("db".into()),
                name: "st".into()
            }
        );
        assert_eq!((u.tags, p.values), (2, 3));
        let p = parse_insert("insert into `My`.t1 (ts, v) values (?, ?)").unwrap();
        assert_eq!(
            p.table,
            Some(Name {
                db: Some("My".into()),
                name: "t1".into()
            })
        );
        assert_eq!(p.columns, Some(vec!["ts".into(), "v".into()]));
        let p = parse_insert("insert into ? using st (t2) tags (?) values (?, ?)").unwrap();
        assert_eq!(p.using.unwrap().tag_names, Some(vec!["t2".into()]));
        assert!(parse_insert("insert into t values (?, 1)").is_err());
        assert!(parse_insert("select ?").is_err());
        assert!(parse_insert("insert into").is_err());
        assert!(parse_insert("insert into t values (?, ?) x").is_err());
    }

    #[test]
    fn substitutes_params_safely() {
        let sql = "select * from t where a = ? and b = '?' and c > ?";
        assert_eq!(count_params(sql), 2);
        let out = substitute(
            sql,
            &[Value::VarChar("x' or '1'='1\\".into()), Value::BigInt(3)],
        )
        .unwrap();
        assert_eq!(
            out,
            "select * from t where a = 'x\\' or \\'1\\'=\\'1\\\\' and b = '?' and c > 3"
        );
        assert!(substitute(sql, &[Value::Null]).is_err());
        assert_eq!(literal(&Value::VarBinary(vec![1, 0xab])), "'\\x01AB'");
        assert_eq!(literal(&Value::Double(0.1)), "0.1");
    }
}
