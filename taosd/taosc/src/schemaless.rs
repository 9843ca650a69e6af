//! Schemaless ingest: InfluxDB line protocol and OpenTSDB (telnet and JSON) parsed and written
//! through a [`Connection`], with TDengine's mapping rules (PROTOCOLS.md §3.3).
//!
//! ```no_run
//! # async fn demo(conn: taosc::Connection) -> Result<(), taosc::schemaless::SmlError> {
//! let w = taosc::schemaless::Writer::new(conn);
//! let s = w.write_influx("power", b"cpu,host=a usage=1.5 1700000000000000000", common::Precision::Ns).await?;
//! assert_eq!(s.rows, 1);
//! # Ok(()) }
//! ```
//!
//! # Mapping
//!
//! * measurement / metric → super table; tag keys → tags; field keys → data columns; the
//!   timestamp column is `_ts` (an existing super table keeps its own first column's name).
//!   OpenTSDB adds one data column `_value`.
//! * Influx and telnet tags are NCHAR; OpenTSDB JSON tags are typed like JSON values (string →
//!   NCHAR, number → DOUBLE, bool → BOOL, `{"value":..,"type":..}` → that type).
//! * Field types come from the value's suffix ([`FieldValue`]): none/`f64` DOUBLE, `f32` FLOAT,
//!   `i8`..`i64`/`i` and `u8`..`u64`/`u` integers, `t`/`true`/... BOOL, `"..."` VARCHAR,
//!   `L"..."` NCHAR, `B"..."` VARBINARY, `G"..."` GEOMETRY (WKT).
//! * Names: dots become `_` (TDengine's `smlDot2Underline`); names with a backtick, empty names
//!   and names over 192 (super table) / 64 (column, tag) bytes are rejected. Names are
//!   case-sensitive (DDL quotes them with backticks).
//! * Child table: `t_` + MD5 hex of `stable,k1=v1,k2=v2...` with tags sorted by key (values
//!   rendered as text). Deterministic across writers and runs.
//! * Lines without tags: a super table created by such a body gets one tag `_tag_null NCHAR(1)`
//!   (always NULL); their child table is `t_` + MD5 of the bare super table name.
//! * Variable widths: created and grown to the next power of two of the longest value (at
//!   least 8), capped at the limits (VARCHAR columns 65517 bytes, NCHAR columns 16379
//!   characters, VARCHAR tags 16382 bytes, NCHAR tags 4095 characters).
//! * Absent fields stay NONE: the rows of a child table are sent in groups with the same
//!   field list, so a row only names the columns its line had.
//!
//! # All or nothing per request
//!
//! A body is parsed and validated completely (syntax, names, types against each other and
//! against the existing schema) before anything is written: if any line is bad the call returns
//! an [`SmlError`] naming the first bad line (1-based; for OpenTSDB JSON the 1-based index of
//! the data point) and nothing of that body is written. Schema changes (CREATE/ALTER) of a
//! valid body happen before its rows are written. Rows go out in one `Write` request per body
//! (or per [`MAX_ROWS_PER_WRITE`] rows / [`MAX_BYTES_PER_WRITE`] bytes): should the server fail
//! one of several, the earlier ones stay written; resending the same body is safe, since rows
//! are keyed by (table, timestamp).

pub mod influx;
pub mod opentsdb;
mod schema;
#[cfg(test)]
mod tests;

use crate::Connection;
use common::types::DataType;
use common::wire::{WriteRequest, WriteTable, WriteUsing};
use common::{Code, Precision, TaosError, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

pub use schema::{SchemaCache, StableSchema};

/// Rows per `Write` request; bigger bodies are split.
pub const MAX_ROWS_PER_WRITE: usize = 50_000;
/// Approximate encoded bytes per `Write` request (the wire frame limit is 80 MiB).
pub const MAX_BYTES_PER_WRITE: usize = 16 << 20;
/// TDengine's TSDB_CODE_SML_INVALID_DATA: a line that does not parse.
pub const SML_INVALID_DATA: Code = Code(0x3002);
/// TDengine's TSDB_CODE_SML_NOT_SAME_TYPE: a field typed differently than before.
pub const SML_NOT_SAME_TYPE: Code = Code(0x3004);
/// TDengine's TSDB_CODE_SML_INVALID_PRECISION_TYPE.
pub const SML_INVALID_PRECISION: Code = Code(0x3001);
/// Tag name of super tables created from lines without tags.
pub const NULL_TAG: &str = "_tag_null";
/// Timestamp column of super tables we create.
pub const TS_COLUMN: &str = "_ts";
/// Value column of OpenTSDB super tables.
pub const VALUE_COLUMN: &str = "_value";

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Data lines (points) in the body; blank lines and comments do not count.
    pub lines: usize,
    /// Rows the server reported written.
    pub rows: i64,
    /// Distinct child tables written.
    pub tables: usize,
}

/// A failed schemaless write: the TDengine error and, when one line is to blame, its number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct SmlError {
    /// 1-based line (OpenTSDB JSON: data point) number.
    pub line: Option<usize>,
    pub error: TaosError,
}

impl SmlError {
    pub fn at(line: usize, code: Code, message: impl Into<String>) -> SmlError {
        SmlError {
            line: Some(line),
            error: TaosError::new(code, message),
        }
    }

    fn describe(&self) -> String {
        match self.line {
            Some(n) => format!("line {n}: {}", self.error.message),
            None => self.error.message.clone(),
        }
    }

    /// The documented 16-bit TDengine code.
    pub fn code(&self) -> u16 {
        self.error.short_code()
    }
}

impl From<TaosError> for SmlError {
    fn from(error: TaosError) -> Self {
        SmlError { line: None, error }
    }
}

impl From<ParseError> for SmlError {
    fn from(e: ParseError) -> Self {
        SmlError::at(e.line, e.code, e.message)
    }
}

/// A line that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub code: Code,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            code: SML_INVALID_DATA,
            message: message.into(),
        }
    }
}

/// Timestamp unit of a line protocol request (`precision=` of `/influxdb/v1/write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsPrecision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
}

impl From<Precision> for TsPrecision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Ns => TsPrecision::Ns,
            Precision::Us => TsPrecision::Us,
            Precision::Ms => TsPrecision::Ms,
        }
    }
}

impl TsPrecision {
    /// `ns`, `u`/`us`/`μ`, `ms`, `s`, `m`, `h`; empty means `ns` (the influx default).
    pub fn parse(s: &str) -> Option<TsPrecision> {
        Some(match s {
            "" | "ns" | "n" => TsPrecision::Ns,
            "u" | "us" | "μ" | "µ" => TsPrecision::Us,
            "ms" => TsPrecision::Ms,
            "s" => TsPrecision::S,
            "m" => TsPrecision::M,
            "h" => TsPrecision::H,
            _ => return None,
        })
    }

    /// Precision of the values sent to the server (s, m, h go out as ms).
    pub fn wire(self) -> Precision {
        match self {
            TsPrecision::Ns => Precision::Ns,
            TsPrecision::Us => Precision::Us,
            _ => Precision::Ms,
        }
    }

    /// A timestamp in this unit, in [`TsPrecision::wire`] units; `None` on overflow.
    pub fn to_wire(self, ts: i64) -> Option<i64> {
        match self {
            TsPrecision::Ns | TsPrecision::Us | TsPrecision::Ms => Some(ts),
            TsPrecision::S => ts.checked_mul(1_000),
            TsPrecision::M => ts.checked_mul(60_000),
            TsPrecision::H => ts.checked_mul(3_600_000),
        }
    }
}

/// A typed value of a field (or a typed OpenTSDB JSON tag), borrowing text from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Bool(bool),
    TinyInt(i8),
    SmallInt(i16),
    Int(i32),
    BigInt(i64),
    UTinyInt(u8),
    USmallInt(u16),
    UInt(u32),
    UBigInt(u64),
    Float(f32),
    Double(f64),
    VarChar(Cow<'a, str>),
    NChar(Cow<'a, str>),
    /// Bytes already decoded from `\x..` hex (or the text's bytes).
    VarBinary(Cow<'a, [u8]>),
    /// WKT text, converted to WKB when written.
    Geometry(Cow<'a, str>),
}

impl FieldValue<'_> {
    /// The column type this value asks for, with its length (bytes, NCHAR characters).
    pub fn data_type(&self) -> DataType {
        match self {
            FieldValue::Bool(_) => DataType::Bool,
            FieldValue::TinyInt(_) => DataType::TinyInt,
            FieldValue::SmallInt(_) => DataType::SmallInt,
            FieldValue::Int(_) => DataType::Int,
            FieldValue::BigInt(_) => DataType::BigInt,
            FieldValue::UTinyInt(_) => DataType::UTinyInt,
            FieldValue::USmallInt(_) => DataType::USmallInt,
            FieldValue::UInt(_) => DataType::UInt,
            FieldValue::UBigInt(_) => DataType::UBigInt,
            FieldValue::Float(_) => DataType::Float,
            FieldValue::Double(_) => DataType::Double,
            FieldValue::VarChar(s) => DataType::VarChar(s.len() as u32),
            FieldValue::NChar(s) => DataType::NChar(s.chars().count() as u32),
            FieldValue::VarBinary(b) => DataType::VarBinary(b.len() as u32),
            FieldValue::Geometry(s) => {
                DataType::Geometry(common::value::wkt_to_wkb(s).map_or(s.len(), |b| b.len()) as u32)
            }
        }
    }

    /// Into an owned wire value (WKT → WKB for geometry; `None` if the WKT is invalid).
    pub fn to_value(&self) -> Option<Value> {
        Some(match self {
            FieldValue::Bool(v) => Value::Bool(*v),
            FieldValue::TinyInt(v) => Value::TinyInt(*v),
            FieldValue::SmallInt(v) => Value::SmallInt(*v),
            FieldValue::Int(v) => Value::Int(*v),
            FieldValue::BigInt(v) => Value::BigInt(*v),
            FieldValue::UTinyInt(v) => Value::UTinyInt(*v),
            FieldValue::USmallInt(v) => Value::USmallInt(*v),
            FieldValue::UInt(v) => Value::UInt(*v),
            FieldValue::UBigInt(v) => Value::UBigInt(*v),
            FieldValue::Float(v) => Value::Float(*v),
            FieldValue::Double(v) => Value::Double(*v),
            FieldValue::VarChar(s) => Value::VarChar(s.to_string()),
            FieldValue::NChar(s) => Value::NChar(s.to_string()),
            FieldValue::VarBinary(b) => Value::VarBinary(b.to_vec()),
            FieldValue::Geometry(s) => Value::Geometry(common::value::wkt_to_wkb(s)?),
        })
    }

    /// Text form used in the child-table name.
    fn render_into(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            FieldValue::VarChar(s) | FieldValue::NChar(s) | FieldValue::Geometry(s) => {
                out.push_str(s);
                Ok(())
            }
            FieldValue::VarBinary(b) => {
                out.push_str(&String::from_utf8_lossy(b));
                Ok(())
            }
            FieldValue::Bool(v) => write!(out, "{v}"),
            FieldValue::TinyInt(v) => write!(out, "{v}"),
            FieldValue::SmallInt(v) => write!(out, "{v}"),
            FieldValue::Int(v) => write!(out, "{v}"),
            FieldValue::BigInt(v) => write!(out, "{v}"),
            FieldValue::UTinyInt(v) => write!(out, "{v}"),
            FieldValue::USmallInt(v) => write!(out, "{v}"),
            FieldValue::UInt(v) => write!(out, "{v}"),
            FieldValue::UBigInt(v) => write!(out, "{v}"),
            FieldValue::Float(v) => write!(out, "{v}"),
            FieldValue::Double(v) => write!(out, "{v}"),
        };
    }
}

/// One data point of any protocol: an influx line, a telnet line, a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    /// 1-based line number (JSON: index of the data point).
    pub line: usize,
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// As written in the line (influx: request precision; OpenTSDB parsers give nanoseconds).
    pub timestamp: Option<i64>,
}

/// Name of the child table of a super table and tag set: `t_` + MD5 hex of
/// `stable,k1=v1,k2=v2...` with tags sorted by key.
pub fn child_table_name(stable: &str, tags: &[(Cow<'_, str>, FieldValue<'_>)]) -> String {
    let mut key = String::with_capacity(stable.len() + tags.len() * 24);
    canonical_tag_key(stable, tags, &mut key);
    child_table_name_of_key(&key)
}

fn canonical_tag_key(stable: &str, tags: &[(Cow<'_, str>, FieldValue<'_>)], out: &mut String) {
    canonical_tag_key_in(stable, tags, &tag_order(tags), out)
}

/// Indexes of `tags` sorted by key.
fn tag_order(tags: &[(Cow<'_, str>, FieldValue<'_>)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tags.len()).collect();
    order.sort_unstable_by(|&a, &b| tags[a].0.cmp(&tags[b].0));
    order
}

fn canonical_tag_key_in(
    stable: &str,
    tags: &[(Cow<'_, str>, FieldValue<'_>)],
    order: &[usize],
    out: &mut String,
) {
    out.push_str(stable);
    for &i in order {
        out.push(',');
        out.push_str(&tags[i].0);
        out.push('=');
        tags[i].1.render_into(out);
    }
}

fn child_table_name_of_key(key: &str) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(key.as_bytes());
    let mut name = String::with_capacity(34);
    name.push_str("t_");
    for b in digest.iter() {
        name.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        name.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    name
}

/// Writes schemaless bodies through one connection, keeping a schema cache that clones share.
#[derive(Clone)]
pub struct Writer {
    conn: Connection,
    cache: SchemaCache,
}

impl Writer {
    pub fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            cache: SchemaCache::default(),
        }
    }

    /// A writer on another connection sharing this one's schema cache (for a pool).
    pub fn with_connection(&self, conn: Connection) -> Writer {
        Writer {
            conn,
            cache: self.cache.clone(),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Forget cached schemas (e.g. after a DROP done elsewhere).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// InfluxDB line protocol. `precision` is the unit of the timestamps in the body; pass a
    /// [`TsPrecision`] for `s`/`m`/`h`.
    pub async fn write_influx(
        &self,
        db: &str,
        body: &[u8],
        precision: impl Into<TsPrecision>,
    ) -> Result<WriteSummary, SmlError> {
        let precision = precision.into();
        let mut points = Vec::new();
        for p in influx::parse_lines(body) {
            points.push(p?);
        }
        self.write_points(db, points, precision).await
    }

    /// OpenTSDB telnet lines (`[put] metric ts value k=v ...`).
    pub async fn write_opentsdb_telnet(
        &self,
        db: &str,
        body: &[u8],
    ) -> Result<WriteSummary, SmlError> {
        let mut points = Vec::new();
        for p in opentsdb::parse_telnet(body) {
            points.push(p?);
        }
        self.write_points(db, points, TsPrecision::Ns).await
    }

    /// OpenTSDB JSON: one data point object or an array of them.
    pub async fn write_opentsdb_json(
        &self,
        db: &str,
        body: &[u8],
    ) -> Result<WriteSummary, SmlError> {
        let points = opentsdb::parse_json(body)?;
        self.write_points(db, points, TsPrecision::Ns).await
    }

    /// Validate, evolve the schema, and write parsed points (timestamps in `precision`).
    pub async fn write_points(
        &self,
        db: &str,
        points: Vec<Point<'_>>,
        precision: TsPrecision,
    ) -> Result<WriteSummary, SmlError> {
        let lines = points.len();
        if lines == 0 {
            return Ok(WriteSummary::default());
        }
        let batch = Batch::new(points, precision)?;
        let mut retried = false;
        loop {
            let mut schemas = HashMap::new();
            for need in &batch.needs {
                let s = self.cache.ensure(&self.conn, db, need).await?;
                schemas.insert(need.stable.clone(), s);
            }
            match self.send(db, &batch, &schemas).await {
                Ok(rows) => {
                    return Ok(WriteSummary {
                        lines,
                        rows,
                        tables: batch.tables.len(),
                    })
                }
                Err(e) if !retried && is_stale_schema(&e.error) => {
                    // Someone changed or dropped a table behind our cache: look again, once.
                    retried = true;
                    for need in &batch.needs {
                        self.cache.forget(db, &need.stable);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send(
        &self,
        db: &str,
        batch: &Batch<'_>,
        schemas: &HashMap<String, Arc<StableSchema>>,
    ) -> Result<i64, SmlError> {
        let mut total = 0i64;
        let mut req = WriteRequest {
            db: db.to_string(),
            precision: batch.precision.wire(),
            tables: Vec::new(),
        };
        // Rows and approximate encoded bytes in `req`; flushed at either limit.
        let (mut req_rows, mut req_bytes) = (0usize, 0usize);
        for t in &batch.tables {
            let schema = schemas.get(t.stable.as_str()).ok_or_else(|| {
                TaosError::internal(format!("no schema for super table {}", t.stable))
            })?;
            let using = WriteUsing {
                stable: t.stable.clone(),
                tag_names: t.tag_names.clone(),
                tags: t.tag_values.clone(),
            };
            for g in &t.groups {
                let mut columns = Vec::with_capacity(g.columns.len() + 1);
                columns.push(schema.ts.clone());
                columns.extend(g.columns.iter().cloned());
                let mut rows = Vec::with_capacity(g.rows.len().min(MAX_ROWS_PER_WRITE));
                for (k, &pi) in g.rows.iter().enumerate() {
                    let p = &batch.points[pi];
                    let mut row = Vec::with_capacity(columns.len());
                    row.push(Value::Timestamp(batch.ts[pi]));
                    req_bytes += 12;
                    for (_, v) in &p.fields {
                        let v = v.to_value().ok_or_else(|| {
                            SmlError::at(p.line, SML_INVALID_DATA, "invalid geometry (WKT) value")
                        })?;
                        req_bytes += approx_size(&v);
                        row.push(v);
                    }
                    rows.push(row);
                    req_rows += 1;
                    let last = k + 1 == g.rows.len();
                    if req_rows >= MAX_ROWS_PER_WRITE || req_bytes >= MAX_BYTES_PER_WRITE || last {
                        req.tables.push(WriteTable {
                            name: t.name.clone(),
                            using: Some(using.clone()),
                            columns: columns.clone(),
                            rows: std::mem::take(&mut rows),
                        });
                    }
                    if req_rows >= MAX_ROWS_PER_WRITE || req_bytes >= MAX_BYTES_PER_WRITE {
                        let full = std::mem::replace(
                            &mut req,
                            WriteRequest {
                                db: db.to_string(),
                                precision: batch.precision.wire(),
                                tables: Vec::new(),
                            },
                        );
                        total += self.conn.write(full).await?;
                        (req_rows, req_bytes) = (0, 0);
                    }
                }
            }
        }
        if !req.tables.is_empty() {
            total += self.conn.write(req).await?;
        }
        Ok(total)
    }
}

/// Roughly what a value takes in a bincode frame.
fn approx_size(v: &Value) -> usize {
    match v {
        Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => 12 + s.len(),
        Value::VarBinary(b) | Value::Geometry(b) => 12 + b.len(),
        _ => 12,
    }
}

/// Errors that mean our cached schema no longer matches the server's.
fn is_stale_schema(e: &TaosError) -> bool {
    [
        Code::STB_NOT_EXIST,
        Code::PAR_INVALID_COLUMN,
        Code::PAR_INVALID_TAG_NAME,
        Code::PAR_TABLE_NOT_EXIST,
        Code::TDB_TABLE_NOT_EXIST,
        Code::PAR_VALUE_TOO_LONG,
        Code::PAR_WRONG_VALUE_TYPE,
    ]
    .iter()
    .any(|c| e.is(*c))
}

/// What one super table must have for a body: columns and tags with the widest values seen,
/// each with the first line that asked for it (named in type-conflict errors).
#[derive(Debug, Clone, Default)]
pub struct StableNeed {
    pub stable: String,
    pub columns: Vec<(String, DataType, usize)>,
    pub tags: Vec<(String, DataType, usize)>,
}

/// Same type, ignoring declared lengths.
pub(crate) fn same_kind(a: DataType, b: DataType) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

pub(crate) fn var_len(t: DataType) -> Option<u32> {
    match t {
        DataType::VarChar(n)
        | DataType::NChar(n)
        | DataType::VarBinary(n)
        | DataType::Geometry(n) => Some(n),
        _ => None,
    }
}

/// Merge a value's type into a need entry list; a different kind is a type conflict.
fn merge_need(
    list: &mut Vec<(String, DataType, usize)>,
    index: &mut HashMap<String, usize>,
    name: &str,
    ty: DataType,
    line: usize,
    what: &str,
) -> Result<(), SmlError> {
    match index.get(name) {
        Some(&i) => {
            let cur = &mut list[i];
            if !same_kind(cur.1, ty) {
                return Err(SmlError::at(
                    line,
                    SML_NOT_SAME_TYPE,
                    format!(
                        "{what} {name} is {} here but {} in line {}",
                        ty.name(),
                        cur.1.name(),
                        cur.2
                    ),
                ));
            }
            if let (Some(old), Some(new)) = (var_len(cur.1), var_len(ty)) {
                if new > old {
                    cur.1 = with_len(ty, new);
                }
            }
        }
        None => {
            index.insert(name.to_string(), list.len());
            list.push((name.to_string(), ty, line));
        }
    }
    Ok(())
}

pub(crate) fn with_len(t: DataType, n: u32) -> DataType {
    match t {
        DataType::VarChar(_) => DataType::VarChar(n),
        DataType::NChar(_) => DataType::NChar(n),
        DataType::VarBinary(_) => DataType::VarBinary(n),
        DataType::Geometry(_) => DataType::Geometry(n),
        t => t,
    }
}

/// A validated body: points with cleaned names, their timestamps in wire precision, the child
/// tables with their row groups, and what each super table needs.
struct Batch<'a> {
    points: Vec<Point<'a>>,
    ts: Vec<i64>,
    precision: TsPrecision,
    tables: Vec<ChildTable>,
    needs: Vec<StableNeed>,
}

struct ChildTable {
    name: String,
    stable: String,
    tag_names: Vec<String>,
    tag_values: Vec<Value>,
    groups: Vec<RowGroup>,
}

/// Rows of one child table that carry the same fields in the same order.
struct RowGroup {
    columns: Vec<String>,
    rows: Vec<usize>,
}

/// `.` → `_`; reject what a backtick-quoted identifier cannot hold.
fn clean_name<'a>(
    name: Cow<'a, str>,
    max: usize,
    what: &str,
    line: usize,
) -> Result<Cow<'a, str>, SmlError> {
    let name = if name.contains('.') {
        Cow::Owned(name.replace('.', "_"))
    } else {
        name
    };
    if name.is_empty() || name.len() > max || name.contains('`') {
        return Err(SmlError::at(
            line,
            Code::PAR_INVALID_IDENTIFIER_NAME,
            format!("Invalid identifier name: {what} '{name}'"),
        ));
    }
    Ok(name)
}

/// What the previous point looked like once checked: the need it fed, where each of its fields
/// and tags sit in that need, and its tags sorted by key. A point with the same measurement, the
/// same keys in the same order and the same value types skips the checks and lookups.
struct Shape {
    need: usize,
    cols: Vec<usize>,
    tags: Vec<usize>,
    order: Vec<usize>,
}

fn same_shape(a: &Point<'_>, b: &Point<'_>) -> bool {
    fn same(x: &[(Cow<'_, str>, FieldValue<'_>)], y: &[(Cow<'_, str>, FieldValue<'_>)]) -> bool {
        x.len() == y.len()
            && x.iter().zip(y).all(|((kx, vx), (ky, vy))| {
                kx == ky && std::mem::discriminant(vx) == std::mem::discriminant(vy)
            })
    }
    a.measurement == b.measurement && same(&a.fields, &b.fields) && same(&a.tags, &b.tags)
}

/// Grow a need entry's declared length to fit a variable-length value.
fn grow_need(entry: &mut (String, DataType, usize), v: &FieldValue<'_>) {
    let Some(cur) = var_len(entry.1) else { return };
    let len = match v {
        FieldValue::VarChar(s) => s.len(),
        // Bytes bound characters from above: count characters only when that bound is over.
        FieldValue::NChar(s) if s.len() <= cur as usize => return,
        FieldValue::NChar(s) => s.chars().count(),
        FieldValue::VarBinary(b) => b.len(),
        FieldValue::Geometry(_) => var_len(v.data_type()).unwrap_or(0) as usize,
        _ => return,
    } as u32;
    if len > cur {
        entry.1 = with_len(entry.1, len);
    }
}

impl<'a> Batch<'a> {
    fn new(mut points: Vec<Point<'a>>, precision: TsPrecision) -> Result<Batch<'a>, SmlError> {
        let now = precision.wire().now();
        let mut ts = Vec::with_capacity(points.len());
        let mut needs: Vec<StableNeed> = Vec::new();
        type Index = HashMap<String, usize>;
        let mut need_index: HashMap<String, (usize, Index, Index)> = HashMap::new();
        let mut tables: Vec<ChildTable> = Vec::new();
        let mut table_index: HashMap<String, usize> = HashMap::new();
        let mut key = String::new();
        let mut shape: Option<Shape> = None;
        for pi in 0..points.len() {
            let (done, rest) = points.split_at_mut(pi);
            let Some(p) = rest.first_mut() else { break };
            let line = p.line;
            // Names.
            let m = std::mem::take(&mut p.measurement);
            p.measurement = clean_name(m, 192, "super table", line)?;
            for (k, _) in p.tags.iter_mut().chain(p.fields.iter_mut()) {
                let n = std::mem::take(k);
                *k = clean_name(n, 64, "column", line)?;
            }
            let p: &Point<'a> = p;
            // Timestamp.
            let t = match p.timestamp {
                None => now,
                Some(t) => precision.to_wire(t).ok_or_else(|| {
                    SmlError::at(
                        line,
                        Code::TIMESTAMP_OUT_OF_RANGE,
                        format!("timestamp {t} out of range"),
                    )
                })?,
            };
            ts.push(t);
            // Geometry must be valid WKT now, not when we are half way through writing.
            for (k, v) in p.tags.iter().chain(p.fields.iter()) {
                if let FieldValue::Geometry(s) = v {
                    if common::value::wkt_to_wkb(s).is_none() {
                        return Err(SmlError::at(
                            line,
                            SML_INVALID_DATA,
                            format!("invalid geometry (WKT) for {k}: {s}"),
                        ));
                    }
                }
            }
            let fast = match (&shape, done.last()) {
                (Some(_), Some(prev)) => same_shape(prev, p),
                _ => false,
            };
            let sh = match (fast, shape.take()) {
                (true, Some(sh)) => {
                    let need = &mut needs[sh.need];
                    for (j, (_, v)) in p.fields.iter().enumerate() {
                        grow_need(&mut need.columns[sh.cols[j]], v);
                    }
                    for (j, (_, v)) in p.tags.iter().enumerate() {
                        grow_need(&mut need.tags[sh.tags[j]], v);
                    }
                    sh
                }
                _ => Self::check_point(p, &mut needs, &mut need_index)?,
            };
            // Child table and row group.
            let stable = p.measurement.as_ref();
            key.clear();
            canonical_tag_key_in(stable, &p.tags, &sh.order, &mut key);
            shape = Some(sh);
            let ti = match table_index.get(key.as_str()) {
                Some(&i) => i,
                None => {
                    let mut tag_names = Vec::with_capacity(p.tags.len());
                    let mut tag_values = Vec::with_capacity(p.tags.len());
                    for (k, v) in &p.tags {
                        tag_names.push(k.to_string());
                        tag_values.push(v.to_value().ok_or_else(|| {
                            SmlError::at(
                                line,
                                SML_INVALID_DATA,
                                format!("invalid value of tag {k}"),
                            )
                        })?);
                    }
                    tables.push(ChildTable {
                        name: child_table_name_of_key(&key),
                        stable: stable.to_string(),
                        tag_names,
                        tag_values,
                        groups: Vec::new(),
                    });
                    table_index.insert(key.clone(), tables.len() - 1);
                    tables.len() - 1
                }
            };
            let t = &mut tables[ti];
            let same = |g: &RowGroup| {
                g.columns.len() == p.fields.len()
                    && g.columns.iter().zip(&p.fields).all(|(a, (b, _))| a == b)
            };
            // Lines of one table nearly always carry the same fields: try the last group first.
            let gi = match t.groups.iter().rposition(same) {
                Some(i) => i,
                None => {
                    t.groups.push(RowGroup {
                        columns: p.fields.iter().map(|(k, _)| k.to_string()).collect(),
                        rows: Vec::new(),
                    });
                    t.groups.len() - 1
                }
            };
            t.groups[gi].rows.push(pi);
        }
        Ok(Batch {
            points,
            ts,
            precision,
            tables,
            needs,
        })
    }

    /// Full checks of a point whose shape is new: duplicate names, field/tag clashes, types
    /// against earlier lines. Records what its super table needs.
    fn check_point(
        p: &Point<'_>,
        needs: &mut Vec<StableNeed>,
        need_index: &mut HashMap<String, (usize, HashMap<String, usize>, HashMap<String, usize>)>,
    ) -> Result<Shape, SmlError> {
        let line = p.line;
        if p.fields.is_empty() {
            return Err(SmlError::at(line, SML_INVALID_DATA, "no fields"));
        }
        let mut seen: Vec<&str> = Vec::with_capacity(p.tags.len() + p.fields.len());
        for (k, _) in p.tags.iter().chain(p.fields.iter()) {
            if k == TS_COLUMN || seen.contains(&k.as_ref()) {
                return Err(SmlError::at(
                    line,
                    Code::PAR_DUPLICATED_COLUMN,
                    format!("Duplicated column names: {k}"),
                ));
            }
            seen.push(k);
        }
        let stable = p.measurement.as_ref();
        if !need_index.contains_key(stable) {
            needs.push(StableNeed {
                stable: stable.to_string(),
                ..Default::default()
            });
            need_index.insert(
                stable.to_string(),
                (needs.len() - 1, HashMap::new(), HashMap::new()),
            );
        }
        let ni = need_index
            .get_mut(stable)
            .ok_or_else(|| TaosError::internal("schema need index out of step"))?;
        let need = &mut needs[ni.0];
        let mut sh = Shape {
            need: ni.0,
            cols: Vec::with_capacity(p.fields.len()),
            tags: Vec::with_capacity(p.tags.len()),
            order: tag_order(&p.tags),
        };
        for (k, v) in &p.fields {
            if ni.2.contains_key(k.as_ref()) {
                return Err(SmlError::at(
                    line,
                    SML_NOT_SAME_TYPE,
                    format!(
                        "{k} is a tag in line {} and a field here",
                        tag_line(need, k)
                    ),
                ));
            }
            merge_need(
                &mut need.columns,
                &mut ni.1,
                k,
                v.data_type(),
                line,
                "field",
            )?;
            sh.cols.push(ni.1.get(k.as_ref()).copied().unwrap_or(0));
        }
        for (k, v) in &p.tags {
            if ni.1.contains_key(k.as_ref()) {
                return Err(SmlError::at(
                    line,
                    SML_NOT_SAME_TYPE,
                    format!(
                        "{k} is a field in line {} and a tag here",
                        col_line(need, k)
                    ),
                ));
            }
            merge_need(&mut need.tags, &mut ni.2, k, v.data_type(), line, "tag")?;
            sh.tags.push(ni.2.get(k.as_ref()).copied().unwrap_or(0));
        }
        Ok(sh)
    }
}

fn tag_line(need: &StableNeed, k: &str) -> usize {
    need.tags
        .iter()
        .find(|t| t.0 == k)
        .map(|t| t.2)
        .unwrap_or(0)
}

fn col_line(need: &StableNeed, k: &str) -> usize {
    need.columns
        .iter()
        .find(|t| t.0 == k)
        .map(|t| t.2)
        .unwrap_or(0)
}
