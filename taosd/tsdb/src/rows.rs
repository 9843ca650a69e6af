//! The in-memory columnar row set shared by the memtable, the flush, the scan merge and
//! compaction, with the duplicate-merge rule and the conversions to and from Arrow.
//!
//! Every cell has a state: NONE (column not supplied: keeps an older value on overwrite), NULL
//! (explicit NULL: overwrites) or a value. Fixed-size values are stored as their 64-bit pattern
//! (integers sign/zero-extended, floats by `to_bits`) so one `Vec<i64>` serves every fixed type;
//! variable-size values as byte vectors.

use crate::error::StorageError;
use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    new_null_array, Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray, LargeStringArray,
    PrimitiveArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::TimeUnit;
use common::{DataType, Precision, Value};
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) const NONE: u8 = 0;
pub(crate) const NULL: u8 = 1;
pub(crate) const VAL: u8 = 2;

pub(crate) fn time_unit(p: Precision) -> TimeUnit {
    match p {
        Precision::Ms => TimeUnit::Millisecond,
        Precision::Us => TimeUnit::Microsecond,
        Precision::Ns => TimeUnit::Nanosecond,
    }
}

/// The Arrow type a column of `ty` has in data files and scan output.
pub fn arrow_type(ty: DataType, p: Precision) -> arrow_schema::DataType {
    use arrow_schema::DataType as A;
    match ty {
        DataType::Null => A::Null,
        DataType::Bool => A::Boolean,
        DataType::TinyInt => A::Int8,
        DataType::SmallInt => A::Int16,
        DataType::Int => A::Int32,
        DataType::BigInt => A::Int64,
        DataType::UTinyInt => A::UInt8,
        DataType::USmallInt => A::UInt16,
        DataType::UInt => A::UInt32,
        DataType::UBigInt => A::UInt64,
        DataType::Float => A::Float32,
        DataType::Double => A::Float64,
        DataType::Timestamp => A::Timestamp(time_unit(p), None),
        DataType::VarChar(_) | DataType::NChar(_) | DataType::Json => A::Utf8,
        DataType::VarBinary(_) | DataType::Geometry(_) => A::Binary,
    }
}

fn value_to_bits(ty: DataType, v: &Value) -> i64 {
    match ty {
        DataType::Float => (v.as_f64().unwrap_or(0.0) as f32).to_bits() as i64,
        DataType::Double => v.as_f64().unwrap_or(0.0).to_bits() as i64,
        DataType::Bool => (v.as_f64().unwrap_or(0.0) != 0.0) as i64,
        DataType::UBigInt => match v {
            Value::UBigInt(u) => *u as i64,
            _ => v.as_i64().unwrap_or(0),
        },
        _ => v.as_i64().unwrap_or(0),
    }
}

fn bits_to_value(ty: DataType, b: i64) -> Value {
    match ty {
        DataType::Bool => Value::Bool(b != 0),
        DataType::TinyInt => Value::TinyInt(b as i8),
        DataType::SmallInt => Value::SmallInt(b as i16),
        DataType::Int => Value::Int(b as i32),
        DataType::BigInt => Value::BigInt(b),
        DataType::UTinyInt => Value::UTinyInt(b as u8),
        DataType::USmallInt => Value::USmallInt(b as u16),
        DataType::UInt => Value::UInt(b as u32),
        DataType::UBigInt => Value::UBigInt(b as u64),
        DataType::Float => Value::Float(f32::from_bits(b as u32)),
        DataType::Double => Value::Double(f64::from_bits(b as u64)),
        DataType::Timestamp => Value::Timestamp(b),
        _ => Value::Null,
    }
}

fn var_value(ty: DataType, b: &[u8]) -> Value {
    match ty {
        DataType::VarChar(_) => Value::VarChar(String::from_utf8_lossy(b).into_owned()),
        DataType::NChar(_) => Value::NChar(String::from_utf8_lossy(b).into_owned()),
        DataType::Json => Value::Json(String::from_utf8_lossy(b).into_owned()),
        DataType::VarBinary(_) => Value::VarBinary(b.to_vec()),
        DataType::Geometry(_) => Value::Geometry(b.to_vec()),
        _ => Value::Null,
    }
}

fn value_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => s.as_bytes().to_vec(),
        Value::VarBinary(b) | Value::Geometry(b) => b.clone(),
        other => other.render().into_bytes(),
    }
}

/// One column of a row set.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub id: u16,
    pub ty: DataType,
    pub state: Vec<u8>,
    /// Fixed-size values (empty for variable types).
    pub fixed: Vec<i64>,
    /// Variable-size values (empty for fixed types).
    pub var: Vec<Vec<u8>>,
}

impl Col {
    pub fn new(id: u16, ty: DataType) -> Col {
        Col {
            id,
            ty,
            state: Vec::new(),
            fixed: Vec::new(),
            var: Vec::new(),
        }
    }

    pub fn reserve(&mut self, n: usize) {
        self.state.reserve(n);
        if self.ty.is_var() {
            self.var.reserve(n);
        } else {
            self.fixed.reserve(n);
        }
    }

    fn push_state(&mut self, s: u8) {
        self.state.push(s);
        if self.ty.is_var() {
            self.var.push(Vec::new());
        } else {
            self.fixed.push(0);
        }
    }

    #[inline]
    pub fn push_none(&mut self) {
        self.push_state(NONE)
    }

    /// Push a value (or NULL); returns the heap bytes it takes beyond the fixed cell.
    #[inline]
    pub fn push_value(&mut self, v: &Value) -> usize {
        if v.is_null() {
            self.push_state(NULL);
            return 0;
        }
        self.state.push(VAL);
        if self.ty.is_var() {
            let b = value_bytes(v);
            let n = b.len();
            self.var.push(b);
            n
        } else {
            self.fixed.push(value_to_bits(self.ty, v));
            0
        }
    }

    pub fn push_fixed(&mut self, bits: i64) {
        self.state.push(VAL);
        self.fixed.push(bits);
    }

    pub fn push_var(&mut self, b: Vec<u8>) {
        self.state.push(VAL);
        self.var.push(b);
    }

    /// Copy cell `i` of `src` (converting if the types differ).
    #[inline]
    pub fn push_from(&mut self, src: &Col, i: usize) {
        let s = src.state[i];
        if s != VAL {
            self.push_state(s);
        } else if src.ty == self.ty || (src.ty.is_var() && self.ty.is_var()) {
            self.state.push(VAL);
            if self.ty.is_var() {
                self.var.push(src.var[i].clone());
            } else {
                self.fixed.push(src.fixed[i]);
            }
        } else {
            let v = src.value(i);
            self.push_value(&v);
        }
    }

    pub fn value(&self, i: usize) -> Value {
        if self.state[i] != VAL {
            Value::Null
        } else if self.ty.is_var() {
            var_value(self.ty, &self.var[i])
        } else {
            bits_to_value(self.ty, self.fixed[i])
        }
    }

    /// Build the Arrow array of this column as type `target` (NONE and NULL become null).
    pub fn to_arrow(&self, target: DataType, p: Precision) -> ArrayRef {
        self.to_arrow_range(target, p, 0..self.state.len())
    }

    /// Like `to_arrow`, for rows `range` only.
    pub fn to_arrow_range(
        &self,
        target: DataType,
        p: Precision,
        range: std::ops::Range<usize>,
    ) -> ArrayRef {
        if target != self.ty && !(target.is_var() && self.ty.is_var()) {
            let mut c = Col::new(self.id, target);
            c.reserve(range.len());
            for i in range {
                c.push_from(self, i);
            }
            return c.to_arrow(target, p);
        }
        let n = range.len();
        let base = range.start;
        let ok = |i: usize| self.state[base + i] == VAL;
        let f = &self.fixed[if self.ty.is_var() {
            0..0
        } else {
            range.clone()
        }];
        let var = &self.var[if self.ty.is_var() {
            range.clone()
        } else {
            0..0
        }];
        macro_rules! prim {
            ($arr:ty, $conv:expr) => {
                Arc::new(<$arr>::from_iter((0..n).map(|i| {
                    if ok(i) {
                        Some($conv(f[i]))
                    } else {
                        None
                    }
                })))
            };
        }
        match target {
            DataType::Null => new_null_array(&arrow_schema::DataType::Null, n),
            DataType::Bool => Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| ok(i).then(|| f[i] != 0)),
            )),
            DataType::TinyInt => prim!(Int8Array, |b: i64| b as i8),
            DataType::SmallInt => prim!(Int16Array, |b: i64| b as i16),
            DataType::Int => prim!(Int32Array, |b: i64| b as i32),
            DataType::BigInt => prim!(Int64Array, |b: i64| b),
            DataType::UTinyInt => prim!(UInt8Array, |b: i64| b as u8),
            DataType::USmallInt => prim!(UInt16Array, |b: i64| b as u16),
            DataType::UInt => prim!(UInt32Array, |b: i64| b as u32),
            DataType::UBigInt => prim!(UInt64Array, |b: i64| b as u64),
            DataType::Float => prim!(Float32Array, |b: i64| f32::from_bits(b as u32)),
            DataType::Double => prim!(Float64Array, |b: i64| f64::from_bits(b as u64)),
            DataType::Timestamp => ts_array_opt((0..n).map(|i| ok(i).then(|| f[i])), p),
            DataType::VarChar(_) | DataType::NChar(_) | DataType::Json => {
                let mut b = StringBuilder::with_capacity(n, var.iter().map(|v| v.len()).sum());
                for (i, v) in var.iter().enumerate() {
                    if ok(i) {
                        b.append_value(String::from_utf8_lossy(v));
                    } else {
                        b.append_null();
                    }
                }
                Arc::new(b.finish())
            }
            DataType::VarBinary(_) | DataType::Geometry(_) => {
                let mut b = BinaryBuilder::with_capacity(n, var.iter().map(|v| v.len()).sum());
                for (i, v) in var.iter().enumerate() {
                    if ok(i) {
                        b.append_value(v);
                    } else {
                        b.append_null();
                    }
                }
                Arc::new(b.finish())
            }
        }
    }

    /// Read a column from an Arrow array written by us (`ty` = the type recorded in the file);
    /// `none` marks NONE cells.
    pub fn from_arrow<'a>(
        id: u16,
        ty: DataType,
        a: &'a ArrayRef,
        none: Option<&BooleanArray>,
        what: &str,
    ) -> Result<Col, StorageError> {
        let n = a.len();
        let mut c = Col::new(id, ty);
        c.reserve(n);
        let bad = || {
            StorageError::FileCorrupted(format!(
                "{what}: column {id} has Arrow type {}",
                a.data_type()
            ))
        };
        let is_none = |i: usize| none.map(|m| m.is_valid(i) && m.value(i)).unwrap_or(false);
        macro_rules! prim {
            ($arr:ty, $conv:expr) => {{
                let arr = a.as_any().downcast_ref::<$arr>().ok_or_else(bad)?;
                for i in 0..n {
                    if is_none(i) {
                        c.push_none();
                    } else if arr.is_null(i) {
                        c.push_state(NULL);
                    } else {
                        c.push_fixed($conv(arr.value(i)));
                    }
                }
            }};
        }
        match ty {
            DataType::Null => {
                for _ in 0..n {
                    c.push_state(NULL);
                }
            }
            DataType::Bool => prim!(BooleanArray, |v: bool| v as i64),
            DataType::TinyInt => prim!(Int8Array, |v: i8| v as i64),
            DataType::SmallInt => prim!(Int16Array, |v: i16| v as i64),
            DataType::Int => prim!(Int32Array, |v: i32| v as i64),
            DataType::BigInt => prim!(Int64Array, |v: i64| v),
            DataType::UTinyInt => prim!(UInt8Array, |v: u8| v as i64),
            DataType::USmallInt => prim!(UInt16Array, |v: u16| v as i64),
            DataType::UInt => prim!(UInt32Array, |v: u32| v as i64),
            DataType::UBigInt => prim!(UInt64Array, |v: u64| v as i64),
            DataType::Float => prim!(Float32Array, |v: f32| v.to_bits() as i64),
            DataType::Double => prim!(Float64Array, |v: f64| v.to_bits() as i64),
            DataType::Timestamp => {
                let (vals, nulls) = ts_values(a).ok_or_else(bad)?;
                for i in 0..n {
                    if is_none(i) {
                        c.push_none();
                    } else if nulls.as_ref().is_some_and(|m| m[i]) {
                        c.push_state(NULL);
                    } else {
                        c.push_fixed(vals[i]);
                    }
                }
            }
            DataType::VarChar(_)
            | DataType::NChar(_)
            | DataType::Json
            | DataType::VarBinary(_)
            | DataType::Geometry(_) => {
                let get: Box<dyn Fn(usize) -> &'a [u8] + 'a> =
                    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
                        Box::new(move |i| s.value(i).as_bytes())
                    } else if let Some(s) = a.as_any().downcast_ref::<LargeStringArray>() {
                        Box::new(move |i| s.value(i).as_bytes())
                    } else if let Some(s) = a.as_any().downcast_ref::<BinaryArray>() {
                        Box::new(move |i| s.value(i))
                    } else if let Some(s) = a.as_any().downcast_ref::<LargeBinaryArray>() {
                        Box::new(move |i| s.value(i))
                    } else {
                        return Err(bad());
                    };
                for i in 0..n {
                    if is_none(i) {
                        c.push_none();
                    } else if a.is_null(i) {
                        c.push_state(NULL);
                    } else {
                        c.push_var(get(i).to_vec());
                    }
                }
            }
        }
        Ok(c)
    }
}

/// The raw i64 values and validity of any Arrow timestamp (or Int64) array.
/// Values and, if the array has nulls, a null flag per row.
pub(crate) fn ts_values(a: &ArrayRef) -> Option<(Vec<i64>, Option<Vec<bool>>)> {
    fn get<T: arrow_array::ArrowPrimitiveType<Native = i64>>(
        a: &ArrayRef,
    ) -> Option<(Vec<i64>, Option<Vec<bool>>)> {
        let p = a.as_any().downcast_ref::<PrimitiveArray<T>>()?;
        let nulls = (p.null_count() > 0).then(|| (0..p.len()).map(|i| p.is_null(i)).collect());
        Some((p.values().to_vec(), nulls))
    }
    get::<arrow_array::types::TimestampMillisecondType>(a)
        .or_else(|| get::<arrow_array::types::TimestampMicrosecondType>(a))
        .or_else(|| get::<arrow_array::types::TimestampNanosecondType>(a))
        .or_else(|| get::<arrow_array::types::TimestampSecondType>(a))
        .or_else(|| get::<arrow_array::types::Int64Type>(a))
}

pub(crate) fn ts_array_opt(it: impl Iterator<Item = Option<i64>>, p: Precision) -> ArrayRef {
    match p {
        Precision::Ms => Arc::new(TimestampMillisecondArray::from_iter(it)),
        Precision::Us => Arc::new(TimestampMicrosecondArray::from_iter(it)),
        Precision::Ns => Arc::new(TimestampNanosecondArray::from_iter(it)),
    }
}

pub(crate) fn ts_array(ts: &[i64], p: Precision) -> ArrayRef {
    match p {
        Precision::Ms => Arc::new(TimestampMillisecondArray::from(ts.to_vec())),
        Precision::Us => Arc::new(TimestampMicrosecondArray::from(ts.to_vec())),
        Precision::Ns => Arc::new(TimestampNanosecondArray::from(ts.to_vec())),
    }
}

/// A set of rows of one table: timestamps, the version (WAL index) of each row, and columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    pub ts: Vec<i64>,
    pub ver: Vec<u64>,
    pub cols: Vec<Col>,
}

impl Rows {
    pub fn with_cols(cols: &[(u16, DataType)]) -> Rows {
        Rows {
            ts: Vec::new(),
            ver: Vec::new(),
            cols: cols.iter().map(|&(id, ty)| Col::new(id, ty)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn col_specs(&self) -> Vec<(u16, DataType)> {
        self.cols.iter().map(|c| (c.id, c.ty)).collect()
    }

    pub fn col_pos(&self, id: u16) -> Option<usize> {
        self.cols.iter().position(|c| c.id == id)
    }

    /// Position of column `id`, adding it (NONE for existing rows) if absent.
    pub fn ensure_col(&mut self, id: u16, ty: DataType) -> usize {
        if let Some(p) = self.col_pos(id) {
            return p;
        }
        let mut c = Col::new(id, ty);
        c.reserve(self.ts.len());
        for _ in 0..self.ts.len() {
            c.push_none();
        }
        self.cols.push(c);
        self.cols.len() - 1
    }

    /// Append rows `idx` of `src` (columns matched by id; absent ones become NONE). `ver`
    /// overrides the version of every appended row.
    pub fn append_from(&mut self, src: &Rows, idx: impl Iterator<Item = usize>, ver: Option<u64>) {
        let map: Vec<Option<usize>> = self.cols.iter().map(|c| src.col_pos(c.id)).collect();
        for i in idx {
            self.ts.push(src.ts[i]);
            self.ver.push(ver.unwrap_or(src.ver[i]));
            for (k, m) in map.iter().enumerate() {
                match m {
                    Some(p) => self.cols[k].push_from(&src.cols[*p], i),
                    None => self.cols[k].push_none(),
                }
            }
        }
    }

    pub fn is_sorted_unique(&self) -> bool {
        self.ts.windows(2).all(|w| w[0] < w[1])
    }

    /// Rows sorted by ts with duplicates merged: for each column the newest (highest version,
    /// then latest appended) cell that is not NONE wins; explicit NULL counts as a value.
    pub fn normalized(&self) -> Cow<'_, Rows> {
        if self.is_sorted_unique() {
            return Cow::Borrowed(self);
        }
        let n = self.len();
        let mut perm: Vec<u32> = (0..n as u32).collect();
        perm.sort_unstable_by_key(|&i| (self.ts[i as usize], self.ver[i as usize], i));
        let mut out = Rows::with_cols(&self.col_specs());
        for c in &mut out.cols {
            c.reserve(n);
        }
        let mut g = 0;
        while g < n {
            let t = self.ts[perm[g] as usize];
            let mut e = g + 1;
            while e < n && self.ts[perm[e] as usize] == t {
                e += 1;
            }
            let last = perm[e - 1] as usize;
            out.ts.push(t);
            out.ver.push(self.ver[last]);
            for (k, c) in self.cols.iter().enumerate() {
                let mut pick = last;
                if e - g > 1 {
                    for j in (g..e).rev() {
                        if c.state[perm[j] as usize] != NONE {
                            pick = perm[j] as usize;
                            break;
                        }
                    }
                }
                out.cols[k].push_from(c, pick);
            }
            g = e;
        }
        Cow::Owned(out)
    }

    /// Keep the rows for which `keep(ts, ver)` holds.
    pub fn retain(&mut self, keep: impl Fn(i64, u64) -> bool) {
        let mask: Vec<bool> = (0..self.len())
            .map(|i| keep(self.ts[i], self.ver[i]))
            .collect();
        if mask.iter().all(|&k| k) {
            return;
        }
        let mut out = Rows::with_cols(&self.col_specs());
        out.append_from(self, (0..mask.len()).filter(|&i| mask[i]), None);
        *self = out;
    }

    pub fn reverse(&mut self) {
        self.ts.reverse();
        self.ver.reverse();
        for c in &mut self.cols {
            c.state.reverse();
            c.fixed.reverse();
            c.var.reverse();
        }
    }

    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.ts.truncate(n);
        self.ver.truncate(n);
        for c in &mut self.cols {
            c.state.truncate(n);
            if c.ty.is_var() {
                c.var.truncate(n);
            } else {
                c.fixed.truncate(n);
            }
        }
    }

    /// NONE with nothing older to fall back on is NULL.
    pub fn none_to_null(&mut self) {
        for c in &mut self.cols {
            for s in &mut c.state {
                if *s == NONE {
                    *s = NULL;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_rule_none_vs_null() {
        let mut r = Rows::with_cols(&[(2, DataType::Int), (3, DataType::VarChar(8))]);
        // ts 5 v1: (1, "a"); ts 5 v2: (NONE, NULL); ts 3 v3: (7, NONE)
        r.ts.extend([5, 5, 3]);
        r.ver.extend([1, 2, 3]);
        r.cols[0].push_value(&Value::Int(1));
        r.cols[0].push_none();
        r.cols[0].push_value(&Value::Int(7));
        r.cols[1].push_value(&Value::VarChar("a".into()));
        r.cols[1].push_value(&Value::Null);
        r.cols[1].push_none();
        let n = r.normalized();
        assert_eq!(n.ts, vec![3, 5]);
        assert_eq!(n.cols[0].value(0), Value::Int(7));
        assert_eq!(n.cols[0].value(1), Value::Int(1));
        assert_eq!(n.cols[1].state[1], NULL);
        assert_eq!(n.cols[1].state[0], NONE);
    }
}
