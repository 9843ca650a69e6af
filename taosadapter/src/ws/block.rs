//! The raw block format of query results and stmt v1 binds (PROTOCOLS.md §4.5).
//!
//! Layout (little-endian): `i32 version=1, i32 total length, i32 rows, i32 cols,
//! i32 flag (0x80000000), u64 group id`, then per column `i8 type + i32 storage width`, then
//! per column `i32 data length`, then the column data one after another. Fixed-width columns are
//! an MSB-first null bitmap of `ceil(rows/8)` bytes plus `rows × size` bytes (the data length
//! excludes the bitmap); variable-width columns are `rows × i32` offsets (-1 = NULL) plus a data
//! area of length-prefixed values (u16 prefix; NCHAR as UCS-4 code points, prefix = 4 × chars).
//!
//! [`encode`] writes a `common::Block` straight into a caller-owned `Vec<u8>` with no allocation
//! per value; [`decode`] reads one back (stmt v1 binary binds) and never panics on bad input.

use common::{DataType, Field, Value};

/// Bytes before the per-column schema.
pub const HEADER_LEN: usize = 28;
/// The "has column segment" flag taosc writes.
const FLAG: u32 = 0x8000_0000;

/// Fixed width of a type in a raw block; `None` for variable-width types.
pub fn fixed_size(ty: DataType) -> Option<usize> {
    Some(match ty {
        DataType::Null | DataType::Bool | DataType::TinyInt | DataType::UTinyInt => 1,
        DataType::SmallInt | DataType::USmallInt => 2,
        DataType::Int | DataType::UInt | DataType::Float => 4,
        DataType::BigInt | DataType::UBigInt | DataType::Double | DataType::Timestamp => 8,
        DataType::VarChar(_)
        | DataType::NChar(_)
        | DataType::Json
        | DataType::VarBinary(_)
        | DataType::Geometry(_) => return None,
    })
}

/// The per-column "bytes" of the block schema: the storage width.
pub fn storage_width(ty: DataType) -> u32 {
    match ty {
        DataType::VarChar(n) | DataType::VarBinary(n) | DataType::Geometry(n) => n + 2,
        DataType::NChar(n) => n.saturating_mul(4).saturating_add(2),
        DataType::Json => 16384,
        t => fixed_size(t).unwrap_or(1) as u32,
    }
}

/// The length clients see in `fields_lengths` (§1.3).
pub fn user_length(ty: DataType) -> u32 {
    match ty {
        DataType::Json => 4095,
        t => t.bytes(),
    }
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn patch_i32(out: &mut [u8], at: usize, v: i32) {
    if let Some(s) = out.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Append the raw block of `rows` rows of `columns` (typed by `fields`) to `out`; returns the
/// block length. `columns[i]` must hold at least `rows` values (missing ones encode as NULL).
pub fn encode_columns(
    out: &mut Vec<u8>,
    fields: &[Field],
    columns: &[&[Value]],
    rows: usize,
) -> usize {
    let start = out.len();
    let ncols = fields.len();
    put_i32(out, 1);
    put_i32(out, 0); // total length, patched below
    put_i32(out, rows as i32);
    put_i32(out, ncols as i32);
    out.extend_from_slice(&FLAG.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for f in fields {
        out.push(f.ty.id());
        put_i32(out, storage_width(f.ty) as i32);
    }
    let lengths_at = out.len();
    out.resize(lengths_at + 4 * ncols, 0);
    for (ci, f) in fields.iter().enumerate() {
        let values: &[Value] = columns.get(ci).copied().unwrap_or(&[]);
        let len = match fixed_size(f.ty) {
            Some(size) => encode_fixed(out, f.ty, size, values, rows),
            None => encode_var(out, f.ty, values, rows),
        };
        patch_i32(out, lengths_at + 4 * ci, len as i32);
    }
    let total = out.len() - start;
    patch_i32(out, start + 4, total as i32);
    total
}

/// [`encode_columns`] for a whole `common::Block`.
pub fn encode(out: &mut Vec<u8>, fields: &[Field], block: &common::Block) -> usize {
    // At most a few dozen columns: a small Vec of slices, not per value.
    let cols: Vec<&[Value]> = block.columns.iter().map(|c| c.values.as_slice()).collect();
    encode_columns(out, fields, &cols, block.rows)
}

fn encode_fixed(
    out: &mut Vec<u8>,
    ty: DataType,
    size: usize,
    values: &[Value],
    rows: usize,
) -> usize {
    let bitmap_at = out.len();
    out.resize(bitmap_at + rows.div_ceil(8), 0);
    out.reserve(rows * size);
    for r in 0..rows {
        let v = values.get(r).unwrap_or(&Value::Null);
        if v.is_null() {
            if let Some(b) = out.get_mut(bitmap_at + (r >> 3)) {
                *b |= 0x80 >> (r & 7);
            }
            out.extend_from_slice(&[0u8; 8][..size]);
            continue;
        }
        match ty {
            DataType::Float => {
                out.extend_from_slice(&(v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
            }
            DataType::Double => out.extend_from_slice(&v.as_f64().unwrap_or(0.0).to_le_bytes()),
            DataType::UBigInt => {
                let u = match v {
                    Value::UBigInt(u) => *u,
                    o => o.as_i64().unwrap_or(0) as u64,
                };
                out.extend_from_slice(&u.to_le_bytes());
            }
            _ => {
                let i = match v {
                    Value::Bool(b) => *b as i64,
                    o => o.as_i64().unwrap_or(0),
                };
                out.extend_from_slice(&i.to_le_bytes()[..size]);
            }
        }
    }
    rows * size
}

fn encode_var(out: &mut Vec<u8>, ty: DataType, values: &[Value], rows: usize) -> usize {
    let offsets_at = out.len();
    out.resize(offsets_at + 4 * rows, 0);
    let data_at = out.len();
    for r in 0..rows {
        let v = values.get(r).unwrap_or(&Value::Null);
        if v.is_null() {
            patch_i32(out, offsets_at + 4 * r, -1);
            continue;
        }
        let off = (out.len() - data_at) as i32;
        patch_i32(out, offsets_at + 4 * r, off);
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let n = match (ty, v) {
            (DataType::NChar(_), Value::VarChar(s) | Value::NChar(s) | Value::Json(s)) => {
                let mut n = 0usize;
                for c in s.chars() {
                    if n + 4 > u16::MAX as usize {
                        break;
                    }
                    out.extend_from_slice(&(c as u32).to_le_bytes());
                    n += 4;
                }
                n
            }
            (_, Value::VarChar(s) | Value::NChar(s) | Value::Json(s)) => {
                put_bytes(out, s.as_bytes())
            }
            (_, Value::VarBinary(b) | Value::Geometry(b)) => put_bytes(out, b),
            // A value of another type in a text column: its text (rare, so allocating is fine).
            (_, other) => put_bytes(out, other.render().as_bytes()),
        };
        if let Some(s) = out.get_mut(len_at..len_at + 2) {
            s.copy_from_slice(&(n as u16).to_le_bytes());
        }
    }
    out.len() - data_at
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> usize {
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&b[..n]);
    n
}

/// A decoded column: its type code and one value per row.
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    pub type_code: u8,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid raw block: {0}")]
pub struct DecodeError(pub String);

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or_else(|| bad("length overflow"))?;
        let s = self.buf.get(self.at..end).ok_or_else(|| bad("truncated"))?;
        self.at = end;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        let s = self.take(4)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
}

/// Fixed width of a type code; `None` for variable types, `Err` for unknown codes.
fn code_size(code: u8) -> Result<Option<usize>, DecodeError> {
    Ok(Some(match code {
        1 | 2 | 11 => 1,
        3 | 12 => 2,
        4 | 6 | 13 => 4,
        5 | 7 | 9 | 14 | 21 => 8,
        17 => 16,
        8 | 10 | 15 | 16 | 20 => return Ok(None),
        18 => return Ok(None),
        c => return Err(bad(format!("unsupported column type {c}"))),
    }))
}

/// Decode a raw block into its columns. Rejects anything malformed with an error.
pub fn decode(buf: &[u8]) -> Result<Vec<RawColumn>, DecodeError> {
    let mut r = Reader { buf, at: 0 };
    let _version = r.i32()?;
    let _total = r.i32()?;
    let rows = r.i32()?;
    let ncols = r.i32()?;
    let _flag = r.i32()?;
    r.take(8)?;
    if rows < 0 || ncols < 0 {
        return Err(bad("negative rows or columns"));
    }
    let (rows, ncols) = (rows as usize, ncols as usize);
    // Every column takes at least 9 schema bytes; every row at least a bitmap bit or an offset.
    if ncols.saturating_mul(9) > buf.len() || (ncols > 0 && rows / 8 > buf.len()) {
        return Err(bad("row or column count larger than the block"));
    }
    let mut types = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let t = r.u8()?;
        r.i32()?;
        types.push(t);
    }
    let mut lengths = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let l = r.i32()?;
        if l < 0 {
            return Err(bad("negative column length"));
        }
        lengths.push(l as usize);
    }
    let mut out = Vec::with_capacity(ncols);
    for (code, len) in types.into_iter().zip(lengths) {
        let mut values = Vec::with_capacity(rows.min(buf.len()));
        match code_size(code)? {
            Some(size) => {
                let bitmap = r.take(rows.div_ceil(8))?;
                let need = rows
                    .checked_mul(size)
                    .ok_or_else(|| bad("length overflow"))?;
                if len != need {
                    return Err(bad(format!("column data length {len}, expected {need}")));
                }
                let data = r.take(len)?;
                for row in 0..rows {
                    if bitmap[row >> 3] & (0x80 >> (row & 7)) != 0 {
                        values.push(Value::Null);
                        continue;
                    }
                    let b = &data[row * size..(row + 1) * size];
                    values.push(fixed_value(code, b)?);
                }
            }
            None => {
                let offsets = r.take(rows.checked_mul(4).ok_or_else(|| bad("length overflow"))?)?;
                let data = r.take(len)?;
                for row in 0..rows {
                    let o = &offsets[row * 4..row * 4 + 4];
                    let off = i32::from_le_bytes([o[0], o[1], o[2], o[3]]);
                    if off < 0 {
                        values.push(Value::Null);
                        continue;
                    }
                    let off = off as usize;
                    let (n, body_at) = if code == 18 {
                        let p = data
                            .get(off..off + 4)
                            .ok_or_else(|| bad("offset out of range"))?;
                        (
                            u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize,
                            off + 4,
                        )
                    } else {
                        let p = data
                            .get(off..off + 2)
                            .ok_or_else(|| bad("offset out of range"))?;
                        (u16::from_le_bytes([p[0], p[1]]) as usize, off + 2)
                    };
                    let body = data
                        .get(
                            body_at
                                ..body_at
                                    .checked_add(n)
                                    .ok_or_else(|| bad("length overflow"))?,
                        )
                        .ok_or_else(|| bad("value past the end of the column"))?;
                    values.push(var_value(code, body)?);
                }
            }
        }
        out.push(RawColumn {
            type_code: code,
            values,
        });
    }
    Ok(out)
}

fn fixed_value(code: u8, b: &[u8]) -> Result<Value, DecodeError> {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    Ok(match code {
        1 => Value::Bool(b[0] != 0),
        2 => Value::TinyInt(b[0] as i8),
        3 => Value::SmallInt(i16::from_le_bytes([a[0], a[1]])),
        4 => Value::Int(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        5 => Value::BigInt(i64::from_le_bytes(a)),
        6 => Value::Float(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        7 => Value::Double(f64::from_le_bytes(a)),
        9 => Value::Timestamp(i64::from_le_bytes(a)),
        11 => Value::UTinyInt(b[0]),
        12 => Value::USmallInt(u16::from_le_bytes([a[0], a[1]])),
        13 => Value::UInt(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        14 => Value::UBigInt(u64::from_le_bytes(a)),
        c => return Err(bad(format!("unsupported column type {c}"))),
    })
}

fn var_value(code: u8, body: &[u8]) -> Result<Value, DecodeError> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8"));
    Ok(match code {
        8 => Value::VarChar(text(body)?),
        15 => Value::Json(text(body)?),
        16 | 18 => Value::VarBinary(body.to_vec()),
        20 => Value::Geometry(body.to_vec()),
        10 => {
            if body.len() % 4 != 0 {
                return Err(bad("NCHAR length not a multiple of 4"));
            }
            let mut s = String::with_capacity(body.len() / 4);
            for c in body.chunks_exact(4) {
                let u = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                s.push(char::from_u32(u).ok_or_else(|| bad("invalid UCS-4 code point"))?);
            }
            Value::NChar(s)
        }
        c => return Err(bad(format!("unsupported column type {c}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Block;

    #[test]
    fn worked_example_from_the_spec() {
        let fields = [
            Field::new("ts", DataType::Timestamp),
            Field::new("v", DataType::VarChar(20)),
        ];
        let block = Block::from_rows(
            2,
            vec![
                vec![Value::Timestamp(1000), Value::VarChar("a".into())],
                vec![Value::Timestamp(2000), Value::Null],
            ],
        );
        let mut out = Vec::new();
        let n = encode(&mut out, &fields, &block);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        let expect = "010000004a000000020000000200000000000080\
                      0000000000000000\
                      0908000000\
                      0816000000\
                      1000000003000000\
                      00e803000000000000d007000000000000\
                      00000000ffffffff010061";
        assert_eq!(hex, expect);
        assert_eq!(n, 74);
        let cols = decode(&out).unwrap();
        assert_eq!(
            cols[0].values,
            vec![Value::Timestamp(1000), Value::Timestamp(2000)]
        );
        assert_eq!(
            cols[1].values,
            vec![Value::VarChar("a".into()), Value::Null]
        );
    }

    #[test]
    fn nchar_is_ucs4_and_every_type_round_trips() {
        let tys = [
            DataType::Bool,
            DataType::TinyInt,
            DataType::SmallInt,
            DataType::Int,
            DataType::BigInt,
            DataType::UTinyInt,
            DataType::USmallInt,
            DataType::UInt,
            DataType::UBigInt,
            DataType::Float,
            DataType::Double,
            DataType::Timestamp,
            DataType::NChar(4),
            DataType::VarBinary(4),
            DataType::Geometry(30),
            DataType::Json,
        ];
        let vals = [
            Value::Bool(true),
            Value::TinyInt(-1),
            Value::SmallInt(-300),
            Value::Int(7),
            Value::BigInt(i64::MIN),
            Value::UTinyInt(255),
            Value::USmallInt(65535),
            Value::UInt(u32::MAX),
            Value::UBigInt(u64::MAX),
            Value::Float(1.5),
            Value::Double(-2.25),
            Value::Timestamp(5),
            Value::NChar("温度".into()),
            Value::VarBinary(vec![0, 255]),
            Value::Geometry(vec![1, 2, 3]),
            Value::Json("{\"a\":1}".into()),
        ];
        let fields: Vec<Field> = tys.iter().map(|t| Field::new("c", *t)).collect();
        for nulls in [false, true] {
            let row: Vec<Value> = if nulls {
                vec![Value::Null; vals.len()]
            } else {
                vals.to_vec()
            };
            let block = Block::from_rows(vals.len(), vec![row.clone(), row.clone(), row.clone()]);
            let mut out = Vec::new();
            encode(&mut out, &fields, &block);
            let cols = decode(&out).unwrap();
            for (c, v) in cols.iter().zip(&row) {
                assert_eq!(c.values, vec![v.clone(), v.clone(), v.clone()]);
            }
        }
        // The NCHAR column's data: u16 prefix 8 then two UCS-4 code points.
        let mut out = Vec::new();
        let f = [Field::new("n", DataType::NChar(4))];
        encode(
            &mut out,
            &f,
            &Block::from_rows(1, vec![vec![Value::NChar("温度".into())]]),
        );
        let data = &out[HEADER_LEN + 9 + 4..];
        assert_eq!(&data[..2], &8u16.to_le_bytes());
        assert_eq!(&data[2..6], &('温' as u32).to_le_bytes());
    }

    /// Mutated and truncated blocks never panic the decoder.
    #[test]
    fn fuzz_decode_never_panics() {
        let fields = [
            Field::new("ts", DataType::Timestamp),
            Field::new("v", DataType::VarChar(20)),
            Field::new("n", DataType::NChar(8)),
            Field::new("i", DataType::Int),
        ];
        let block = Block::from_rows(
            4,
            (0..9)
                .map(|i| {
                    vec![
                        Value::Timestamp(i),
                        if i % 3 == 0 {
                            Value::Null
                        } else {
                            Value::VarChar(format!("v{i}"))
                        },
                        Value::NChar("é".into()),
                        Value::Int(i as i32),
                    ]
                })
                .collect(),
        );
        let mut valid = Vec::new();
        encode(&mut valid, &fields, &block);
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
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
            let _ = decode(&f);
        }
    }
}
