//! Statement API v2: `stmt2_init`, `stmt2_prepare`, binary bind (action 9), `stmt2_exec`,
//! `stmt2_result`, `stmt2_close` (PROTOCOLS.md §4.7).
//!
//! A bind carries several tables at once, column-major. Inserts are decoded straight into
//! row-major typed values of the target columns and sent as one `WriteRequest` per exec; query
//! parameters are substituted as literals.

use super::conn::{parse_args, Session};
use super::stmt::{self, coerce, Plan};
use super::{query, Reply, WsError, WsResult};
use common::wire::WriteTable;
use common::{DataType, Field, Value};
use serde_json::{json, Value as Json};
use taosc::QueryResult;

/// One v2 statement.
#[derive(Default)]
pub struct Stmt2 {
    kind: Option<Kind>,
    /// Tables bound since the last exec.
    tables: Vec<WriteTable>,
    result: Option<QueryResult>,
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
struct Args {
    stmt_id: u64,
    sql: String,
    get_fields: bool,
}

fn stmt_mut(s: &mut Session, id: u64) -> WsResult<&mut Stmt2> {
    s.stmts2
        .get_mut(&id)
        .ok_or_else(|| WsError::new("stmt2 is nil"))
}

/// `bytes` reported for the `tbname` field (TSDB_TABLE_NAME_LEN + 2).
const TBNAME_BYTES: u32 = 194;

pub async fn handle(s: &mut Session, action: &str, args: &Json) -> WsResult<Reply> {
    let a: Args = parse_args(args)?;
    let id = a.stmt_id;
    match action {
        "stmt2_init" => {
            let id = s.next_stmt_id();
            s.stmts2.insert(id, Stmt2::default());
            Ok(fields![("stmt_id", id)])
        }
        "stmt2_prepare" => {
            stmt_mut(s, id)?;
            let mut m = serde_json::Map::new();
            m.insert("stmt_id".into(), json!(id));
            let kind = if stmt::is_insert(&a.sql) {
                let parsed = stmt::parse_insert(&a.sql)?;
                let p = stmt::plan(s, &parsed).await?;
                if p.col_fields.is_empty() {
                    return Err(WsError::new(
                        "stmt2 INSERT INTO ? VALUES needs USING <stable> TAGS (...)",
                    ));
                }
                let mut fields = Vec::new();
                if p.table.is_none() {
                    let mut tb = stmt::field_json(
                        &Field::new("tbname", DataType::VarChar(TBNAME_BYTES - 2)),
                        p.precision,
                        Some(4),
                    );
                    if let Some(o) = tb.as_object_mut() {
                        o.insert("bytes".into(), json!(TBNAME_BYTES));
                    }
                    fields.push(tb);
                }
                fields.extend(
                    p.tag_fields
                        .iter()
                        .map(|f| stmt::field_json(f, p.precision, Some(2))),
                );
                fields.extend(
                    p.col_fields
                        .iter()
                        .map(|f| stmt::field_json(f, p.precision, Some(1))),
                );
                m.insert("is_insert".into(), json!(true));
                m.insert("fields_count".into(), json!(fields.len()));
                m.insert(
                    "fields".into(),
                    if a.get_fields {
                        Json::Array(fields)
                    } else {
                        Json::Null
                    },
                );
                Kind::Insert(p)
            } else {
                let params = stmt::count_params(&a.sql);
                m.insert("is_insert".into(), json!(false));
                m.insert("fields_count".into(), json!(params));
                m.insert("fields".into(), Json::Null);
                Kind::Query {
                    sql: a.sql.clone(),
                    params,
                    bound: Vec::new(),
                }
            };
            *stmt_mut(s, id)? = Stmt2 {
                kind: Some(kind),
                ..Stmt2::default()
            };
            Ok(Reply::Json(m))
        }
        "stmt2_exec" => {
            let conn = s.conn()?;
            let st = stmt_mut(s, id)?;
            let affected = match &st.kind {
                None => return Err(WsError::new("stmt2 not prepared")),
                Some(Kind::Insert(p)) => {
                    let tables = std::mem::take(&mut st.tables);
                    if tables.is_empty() {
                        0
                    } else {
                        conn.write(p.request(tables)).await?
                    }
                }
                Some(Kind::Query { sql, bound, .. }) => {
                    let sql = stmt::substitute(sql, bound)?;
                    let r = conn.query(&sql).await?;
                    let n = r.affected_rows();
                    st.result = Some(r);
                    n
                }
            };
            Ok(fields![("stmt_id", id), ("affected", affected)])
        }
        "stmt2_result" => {
            let st = stmt_mut(s, id)?;
            let r = st
                .result
                .take()
                .ok_or_else(|| WsError::new("no result: exec a query statement first"))?;
            let mut m = query::register(s, r);
            m.insert("stmt_id".into(), json!(id));
            Ok(Reply::Json(m))
        }
        "stmt2_close" => {
            s.stmts2.remove(&id);
            Ok(fields![("stmt_id", id)])
        }
        other => Err(WsError::new(format!("unknown action {other}"))),
    }
}

/// Binary action 9: `[u16 version=1][i32 col_idx=-1][bind data]`.
pub async fn bind_binary(s: &mut Session, id: u64, payload: &[u8]) -> WsResult<Reply> {
    let st = stmt_mut(s, id)?;
    if payload.len() < 6 {
        return Err(WsError::new("message length is too short"));
    }
    let version = u16::from_le_bytes([payload[0], payload[1]]);
    if version != 1 {
        return Err(WsError::new(format!(
            "unknown stmt2 bind version:{version}"
        )));
    }
    let col_idx = i32::from_le_bytes([payload[2], payload[3], payload[4], payload[5]]);
    if col_idx != -1 {
        return Err(WsError::new("stmt2 bind by column index is not supported"));
    }
    let data = &payload[6..];
    match &mut st.kind {
        None => return Err(WsError::new("stmt2 not prepared")),
        Some(Kind::Insert(p)) => {
            let tables = decode_insert(data, p)?;
            st.tables.extend(tables);
        }
        Some(Kind::Query { params, bound, .. }) => {
            *bound = decode_params(data, *params)?;
        }
    }
    Ok(fields![("stmt_id", id)])
}

// ---------------------------------------------------------------------------------------------
// Bind data

fn bad(m: impl Into<String>) -> WsError {
    WsError::new(format!("invalid stmt2 bind data: {}", m.into()))
}

fn u32_at(b: &[u8], at: usize) -> WsResult<u32> {
    let s = b
        .get(at..at.checked_add(4).ok_or_else(|| bad("offset overflow"))?)
        .ok_or_else(|| bad("truncated"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn slice(b: &[u8], at: usize, len: usize) -> WsResult<&[u8]> {
    b.get(at..at.checked_add(len).ok_or_else(|| bad("length overflow"))?)
        .ok_or_else(|| bad("truncated"))
}

/// The header of a bind: counts and section offsets.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub tables: usize,
    pub tags: usize,
    pub cols: usize,
    pub names_at: usize,
    pub tags_at: usize,
    pub cols_at: usize,
}

pub fn header(b: &[u8]) -> WsResult<Header> {
    let total = u32_at(b, 0)? as usize;
    if total > b.len() {
        return Err(bad(format!("total length {total} > message {}", b.len())));
    }
    let h = Header {
        tables: u32_at(b, 4)? as usize,
        tags: u32_at(b, 8)? as usize,
        cols: u32_at(b, 12)? as usize,
        names_at: u32_at(b, 16)? as usize,
        tags_at: u32_at(b, 20)? as usize,
        cols_at: u32_at(b, 24)? as usize,
    };
    // Each table needs at least a 4-byte size entry in some section.
    if h.tables.saturating_mul(2) > b.len()
        || h.tags.saturating_mul(4) > b.len()
        || h.cols.saturating_mul(4) > b.len()
    {
        return Err(bad("counts larger than the message"));
    }
    Ok(h)
}

/// Table names (NUL-terminated, u16 lengths first).
pub fn names(b: &[u8], h: &Header) -> WsResult<Vec<String>> {
    if h.names_at == 0 {
        return Ok(Vec::new());
    }
    let lens = slice(b, h.names_at, h.tables * 2)?;
    let mut at = h.names_at + h.tables * 2;
    let mut out = Vec::with_capacity(h.tables);
    for l in lens.chunks_exact(2) {
        let n = u16::from_le_bytes([l[0], l[1]]) as usize;
        let raw = slice(b, at, n)?;
        at += n;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        out.push(String::from_utf8(raw.to_vec()).map_err(|_| bad("table name is not UTF-8"))?);
    }
    Ok(out)
}

/// The byte ranges of each table's data in a tags or columns section.
fn table_ranges(b: &[u8], section_at: usize, tables: usize) -> WsResult<Vec<(usize, usize)>> {
    let mut at = section_at
        .checked_add(tables.checked_mul(4).ok_or_else(|| bad("overflow"))?)
        .ok_or_else(|| bad("overflow"))?;
    let mut out = Vec::with_capacity(tables);
    for t in 0..tables {
        let size = u32_at(b, section_at + 4 * t)? as usize;
        slice(b, at, size)?;
        out.push((at, size));
        at += size;
    }
    Ok(out)
}

/// One column buffer.
#[derive(Debug)]
pub struct ColumnBuf<'a> {
    pub ty: u32,
    pub num: usize,
    is_null: &'a [u8],
    lengths: Option<&'a [u8]>,
    data: &'a [u8],
}

/// Parse the column buffer at the start of `b`; returns it and its total length.
pub fn column(b: &[u8]) -> WsResult<(ColumnBuf<'_>, usize)> {
    let total = u32_at(b, 0)? as usize;
    let b = slice(b, 0, total)?;
    let ty = u32_at(b, 4)?;
    let num = u32_at(b, 8)? as usize;
    let is_null = slice(b, 12, num)?;
    let mut at = 12 + num;
    let have_length = *slice(b, at, 1)?.first().unwrap_or(&0) != 0;
    at += 1;
    let lengths = if have_length {
        let l = slice(b, at, num.checked_mul(4).ok_or_else(|| bad("overflow"))?)?;
        at += num * 4;
        Some(l)
    } else {
        None
    };
    let blen = u32_at(b, at)? as usize;
    at += 4;
    let data = slice(b, at, blen)?;
    Ok((
        ColumnBuf {
            ty,
            num,
            is_null,
            lengths,
            data,
        },
        total,
    ))
}

fn fixed_size(ty: u32) -> Option<usize> {
    Some(match ty {
        1 | 2 | 11 => 1,
        3 | 12 => 2,
        4 | 6 | 13 => 4,
        5 | 7 | 9 | 14 => 8,
        _ => return None,
    })
}

impl ColumnBuf<'_> {
    /// Call `f(row, value)` for every row, values as the buffer's own type.
    pub fn for_each(&self, mut f: impl FnMut(usize, Value) -> WsResult<()>) -> WsResult<()> {
        match fixed_size(self.ty) {
            Some(size) => {
                let need = self.num.checked_mul(size).ok_or_else(|| bad("overflow"))?;
                if self.data.len() < need {
                    return Err(bad(format!("column buffer {} < {need}", self.data.len())));
                }
                for r in 0..self.num {
                    if self.is_null[r] != 0 {
                        f(r, Value::Null)?;
                        continue;
                    }
                    let c = &self.data[r * size..(r + 1) * size];
                    let mut a = [0u8; 8];
                    a[..size].copy_from_slice(c);
                    let v = match self.ty {
                        1 => Value::Bool(a[0] != 0),
                        2 => Value::TinyInt(a[0] as i8),
                        3 => Value::SmallInt(i16::from_le_bytes([a[0], a[1]])),
                        4 => Value::Int(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
                        5 => Value::BigInt(i64::from_le_bytes(a)),
                        6 => Value::Float(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
                        7 => Value::Double(f64::from_le_bytes(a)),
                        9 => Value::Timestamp(i64::from_le_bytes(a)),
                        11 => Value::UTinyInt(a[0]),
                        12 => Value::USmallInt(u16::from_le_bytes([a[0], a[1]])),
                        13 => Value::UInt(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
                        _ => Value::UBigInt(u64::from_le_bytes(a)),
                    };
                    f(r, v)?;
                }
            }
            None => {
                if !matches!(self.ty, 8 | 10 | 15 | 16 | 20) {
                    return Err(bad(format!("unsupported bind type {}", self.ty)));
                }
                let lengths = self
                    .lengths
                    .ok_or_else(|| bad("variable-length column without lengths"))?;
                let mut at = 0usize;
                for r in 0..self.num {
                    if self.is_null[r] != 0 {
                        f(r, Value::Null)?;
                        continue;
                    }
                    let l = &lengths[r * 4..r * 4 + 4];
                    let n = i32::from_le_bytes([l[0], l[1], l[2], l[3]]);
                    let n = usize::try_from(n).map_err(|_| bad("negative length"))?;
                    let body = slice(self.data, at, n)?;
                    at += n;
                    let text =
                        || String::from_utf8(body.to_vec()).map_err(|_| bad("invalid UTF-8"));
                    let v = match self.ty {
                        8 => Value::VarChar(text()?),
                        10 => Value::NChar(text()?),
                        15 => Value::Json(text()?),
                        16 => Value::VarBinary(body.to_vec()),
                        _ => Value::Geometry(body.to_vec()),
                    };
                    f(r, v)?;
                }
            }
        }
        Ok(())
    }
}

/// Decode `count` column buffers in `b[range]`.
fn columns_in(b: &[u8], (at, size): (usize, usize), count: usize) -> WsResult<Vec<ColumnBuf<'_>>> {
    let region = slice(b, at, size)?;
    let mut off = 0;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (c, len) = column(region.get(off..).ok_or_else(|| bad("truncated"))?)?;
        if len == 0 {
            return Err(bad("empty column buffer"));
        }
        off += len;
        out.push(c);
    }
    Ok(out)
}

/// Decode an insert bind into one write table per bound table.
pub fn decode_insert(b: &[u8], p: &Plan) -> WsResult<Vec<WriteTable>> {
    let h = header(b)?;
    if h.tags != p.tag_fields.len() && h.tags_at != 0 {
        return Err(bad(format!(
            "{} tags bound, statement has {}",
            h.tags,
            p.tag_fields.len()
        )));
    }
    if h.cols != p.col_fields.len() {
        return Err(bad(format!(
            "{} columns bound, statement has {}",
            h.cols,
            p.col_fields.len()
        )));
    }
    let names = names(b, &h)?;
    let tag_ranges = if h.tags_at != 0 {
        table_ranges(b, h.tags_at, h.tables)?
    } else {
        Vec::new()
    };
    let col_ranges = if h.cols_at != 0 {
        table_ranges(b, h.cols_at, h.tables)?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(h.tables);
    for t in 0..h.tables {
        let name = match (names.get(t), &p.table) {
            (Some(n), _) => p.table_name(n)?,
            (None, Some(n)) => n.clone(),
            (None, None) => return Err(bad("no table name bound")),
        };
        let tags = match tag_ranges.get(t) {
            Some(r) => {
                let bufs = columns_in(b, *r, h.tags)?;
                let mut tags = Vec::with_capacity(h.tags);
                for (c, f) in bufs.iter().zip(&p.tag_fields) {
                    let mut v = Value::Null;
                    c.for_each(|r, x| {
                        if r == 0 {
                            v = coerce(x, f)?;
                        }
                        Ok(())
                    })?;
                    tags.push(v);
                }
                Some(tags)
            }
            None => None,
        };
        if p.stable.is_some() && tags.is_none() {
            // Tags omitted: the child table must already exist.
        }
        let mut rows: Vec<Vec<Value>> = Vec::new();
        if let Some(r) = col_ranges.get(t) {
            let bufs = columns_in(b, *r, h.cols)?;
            let n = bufs.first().map(|c| c.num).unwrap_or(0);
            if bufs.iter().any(|c| c.num != n) {
                return Err(bad("columns have different row counts"));
            }
            rows = (0..n).map(|_| Vec::with_capacity(h.cols)).collect();
            for (c, f) in bufs.iter().zip(&p.col_fields) {
                c.for_each(|r, x| {
                    rows[r].push(coerce(x, f)?);
                    Ok(())
                })?;
            }
        }
        out.push(p.write_table(name, tags, rows));
    }
    Ok(out)
}

/// Decode query parameters: one table, `params` single-row columns.
pub fn decode_params(b: &[u8], params: usize) -> WsResult<Vec<Value>> {
    let h = header(b)?;
    if h.cols != params {
        return Err(bad(format!(
            "{} parameters bound, statement has {params}",
            h.cols
        )));
    }
    if h.cols_at == 0 || h.tables != 1 {
        return Err(bad("query parameters must be one table of columns"));
    }
    let ranges = table_ranges(b, h.cols_at, 1)?;
    let bufs = columns_in(b, ranges[0], h.cols)?;
    let mut out = Vec::with_capacity(params);
    for c in &bufs {
        let mut v = Value::Null;
        c.for_each(|r, x| {
            if r == 0 {
                v = x;
            }
            Ok(())
        })?;
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use common::Precision;

    /// Encode a bind like the clients do: `tables` of (name, tags, columns); each column is
    /// (type code, values); values are `None` for NULL.
    pub type Cols = Vec<(u32, Vec<Option<Vec<u8>>>)>;

    pub fn encode(tables: &[(&str, Cols, Cols)]) -> Vec<u8> {
        fn colbuf(ty: u32, vals: &[Option<Vec<u8>>]) -> Vec<u8> {
            let var = matches!(ty, 8 | 10 | 15 | 16 | 20);
            let mut b = Vec::new();
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&(vals.len() as u32).to_le_bytes());
            for v in vals {
                b.push(v.is_none() as u8);
            }
            b.push(var as u8);
            let size = fixed_size(ty).unwrap_or(0);
            let mut data = Vec::new();
            if var {
                for v in vals {
                    b.extend_from_slice(
                        &(v.as_ref().map(|x| x.len()).unwrap_or(0) as i32).to_le_bytes(),
                    );
                    if let Some(x) = v {
                        data.extend_from_slice(x);
                    }
                }
            } else {
                for v in vals {
                    match v {
                        Some(x) => data.extend_from_slice(x),
                        None => data.extend(std::iter::repeat_n(0u8, size)),
                    }
                }
            }
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&data);
            let n = b.len() as u32;
            b[..4].copy_from_slice(&n.to_le_bytes());
            b
        }
        let n = tables.len();
        let ntags = tables.first().map(|t| t.1.len()).unwrap_or(0);
        let ncols = tables.first().map(|t| t.2.len()).unwrap_or(0);
        let mut names = Vec::new();
        for t in tables {
            names.extend_from_slice(&((t.0.len() + 1) as u16).to_le_bytes());
        }
        for t in tables {
            names.extend_from_slice(t.0.as_bytes());
            names.push(0);
        }
        let section = |cols: Vec<&Cols>| -> Vec<u8> {
            let per: Vec<Vec<u8>> = cols
                .iter()
                .map(|c| c.iter().flat_map(|(ty, v)| colbuf(*ty, v)).collect())
                .collect();
            let mut s = Vec::new();
            for p in &per {
                s.extend_from_slice(&(p.len() as u32).to_le_bytes());
            }
            for p in &per {
                s.extend_from_slice(p);
            }
            s
        };
        let tags = section(tables.iter().map(|t| &t.1).collect());
        let cols = section(tables.iter().map(|t| &t.2).collect());
        let names_at = 28u32;
        let tags_at = if ntags > 0 {
            names_at + names.len() as u32
        } else {
            0
        };
        let cols_at = names_at + names.len() as u32 + if ntags > 0 { tags.len() as u32 } else { 0 };
        let mut b = Vec::new();
        for v in [
            0,
            n as u32,
            ntags as u32,
            ncols as u32,
            names_at,
            tags_at,
            cols_at,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&names);
        if ntags > 0 {
            b.extend_from_slice(&tags);
        }
        b.extend_from_slice(&cols);
        let total = b.len() as u32;
        b[..4].copy_from_slice(&total.to_le_bytes());
        b
    }

    fn plan() -> Plan {
        Plan {
            db: "db".into(),
            precision: Precision::Ms,
            table: None,
            stable: Some("st".into()),
            tag_fields: vec![Field::new("t", DataType::VarChar(10))],
            col_fields: vec![
                Field::new("ts", DataType::Timestamp),
                Field::new("v", DataType::Int),
                Field::new("n", DataType::NChar(4)),
            ],
            col_names: vec!["ts".into(), "v".into(), "n".into()],
            tag_names: vec!["t".into()],
            values: 3,
            explicit_columns: None,
        }
    }

    fn sample() -> Vec<u8> {
        let some = |b: &[u8]| Some(b.to_vec());
        encode(&[
            (
                "d1",
                vec![(8, vec![some(b"x")])],
                vec![
                    (
                        9,
                        vec![some(&1i64.to_le_bytes()), some(&2i64.to_le_bytes())],
                    ),
                    (4, vec![some(&7i32.to_le_bytes()), None]),
                    (10, vec![some("温".as_bytes()), None]),
                ],
            ),
            (
                "d2",
                vec![(8, vec![None])],
                vec![
                    (9, vec![some(&3i64.to_le_bytes())]),
                    (4, vec![some(&8i32.to_le_bytes())]),
                    (10, vec![some(b"ab")]),
                ],
            ),
        ])
    }

    #[test]
    fn decodes_tables_tags_and_rows() {
        let t = decode_insert(&sample(), &plan()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "d1");
        assert_eq!(
            t[0].using.as_ref().unwrap().tags,
            vec![Value::VarChar("x".into())]
        );
        assert_eq!(
            t[0].rows[0],
            vec![
                Value::Timestamp(1),
                Value::Int(7),
                Value::NChar("温".into())
            ]
        );
        assert_eq!(
            t[0].rows[1],
            vec![Value::Timestamp(2), Value::Null, Value::Null]
        );
        assert_eq!(t[1].using.as_ref().unwrap().tags, vec![Value::Null]);
        assert_eq!(
            t[1].rows,
            vec![vec![
                Value::Timestamp(3),
                Value::Int(8),
                Value::NChar("ab".into())
            ]]
        );
    }

    /// Mutated and truncated binds never panic the decoder.
    #[test]
    fn fuzz_decode_never_panics() {
        let valid = sample();
        let p = plan();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let mut f = valid.clone();
            for _ in 0..(next() % 4 + 1) {
                let r = next();
                match r % 4 {
                    0 => {
                        let at = (r as usize / 4) % f.len().max(1);
                        if let Some(b) = f.get_mut(at) {
                            *b = (r >> 32) as u8;
                        }
                    }
                    1 => f.truncate((r as usize / 4) % (f.len() + 1)),
                    2 => f.extend_from_slice(&r.to_le_bytes()),
                    _ => {
                        let at = (r as usize / 4) % (f.len() + 1);
                        f.splice(at..at, [0xFF; 4]);
                    }
                }
            }
            let _ = decode_insert(&f, &p);
            let _ = decode_params(&f, 3);
        }
    }
}
