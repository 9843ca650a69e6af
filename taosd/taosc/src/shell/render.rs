//! Result rendering in the layout of TDengine's `taos` shell: column widths follow the column
//! types (not the data), so rows can be printed block by block as they arrive.
//!
//! ```text
//!            ts            |       current        |
//! =================================================
//!  2024-01-01 00:00:00.000 |                 10.3 |
//! Query OK, 1 row(s) in set (0.003210s)
//! ```

use common::time::{format_timestamp, Precision, SessionTz};
use common::{DataType, Field, TaosError, Value};
use std::time::Duration;

/// How cells are rendered.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Timestamps as integers instead of `YYYY-MM-DD HH:mm:ss.SSS`.
    pub raw_time: bool,
    pub tz: SessionTz,
    /// Widest column for VARCHAR/NCHAR/JSON values; longer values are cut (TDengine's `-w`).
    pub max_text_width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            raw_time: false,
            tz: SessionTz::Local,
            max_text_width: 30,
        }
    }
}

/// Column width for a field, as TDengine's shell computes it from the type.
pub fn column_width(field: &Field, precision: Precision, opts: &RenderOptions) -> usize {
    let name = display_width(&field.name);
    let text = |n: usize| {
        if n > opts.max_text_width {
            opts.max_text_width
        } else {
            n
        }
    };
    let w = match field.ty {
        DataType::Null => 4,
        DataType::Bool => 5,
        DataType::TinyInt | DataType::UTinyInt => 4,
        DataType::SmallInt | DataType::USmallInt => 6,
        DataType::Int | DataType::UInt => 11,
        DataType::BigInt | DataType::UBigInt => 21,
        DataType::Float => 20,
        DataType::Double => 25,
        DataType::VarChar(n) | DataType::NChar(n) => text(n as usize),
        DataType::VarBinary(n) | DataType::Geometry(n) => text(2 + 2 * n as usize),
        DataType::Json => opts.max_text_width,
        DataType::Timestamp if opts.raw_time => 14,
        DataType::Timestamp => match precision {
            Precision::Ms => 23,
            Precision::Us => 26,
            Precision::Ns => 29,
        },
    };
    w.max(name).max(4)
}

/// Whether a value is right-aligned (numbers, NULL) or left-aligned (text, timestamps).
fn right_aligned(v: &Value, opts: &RenderOptions) -> bool {
    match v {
        Value::VarChar(_)
        | Value::NChar(_)
        | Value::Json(_)
        | Value::VarBinary(_)
        | Value::Geometry(_) => false,
        Value::Timestamp(_) => opts.raw_time,
        _ => true,
    }
}

/// One cell's text, unpadded.
pub fn format_value(v: &Value, precision: Precision, opts: &RenderOptions) -> String {
    match v {
        Value::Timestamp(t) if !opts.raw_time => format_timestamp(*t, precision, opts.tz),
        v => v.render(),
    }
}

/// Header line and `====` underline, each ending in a newline.
pub fn format_header(fields: &[Field], widths: &[usize]) -> String {
    let mut out = String::new();
    let mut total = 0;
    for (f, &w) in fields.iter().zip(widths) {
        let name = truncate(&f.name, w);
        let pad = w.saturating_sub(display_width(&name));
        let left = pad / 2;
        out.push(' ');
        push_spaces(&mut out, left);
        out.push_str(&name);
        push_spaces(&mut out, pad - left);
        out.push_str(" |");
        total += w + 3;
    }
    out.push('\n');
    out.extend(std::iter::repeat_n('=', total));
    out.push('\n');
    out
}

/// One row, ending in a newline.
pub fn format_row<'a>(
    row: impl IntoIterator<Item = &'a Value>,
    widths: &[usize],
    precision: Precision,
    opts: &RenderOptions,
) -> String {
    let mut out = String::new();
    for (v, &w) in row.into_iter().zip(widths) {
        let text = truncate(&format_value(v, precision, opts), w);
        let pad = w.saturating_sub(display_width(&text));
        out.push(' ');
        if right_aligned(v, opts) {
            push_spaces(&mut out, pad);
            out.push_str(&text);
        } else {
            out.push_str(&text);
            push_spaces(&mut out, pad);
        }
        out.push_str(" |");
    }
    out.push('\n');
    out
}

/// A whole result table (header and rows, no footer); empty when there are no rows, as the
/// shell prints no header for an empty set.
pub fn format_table(
    fields: &[Field],
    precision: Precision,
    rows: &[Vec<Value>],
    opts: &RenderOptions,
) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let widths: Vec<usize> = fields
        .iter()
        .map(|f| column_width(f, precision, opts))
        .collect();
    let mut out = format_header(fields, &widths);
    for r in rows {
        out.push_str(&format_row(r, &widths, precision, opts));
    }
    out
}

/// `\G` output: one `name: value` line per column, rows separated by a star line.
pub fn format_vertical_row(
    index: usize,
    fields: &[Field],
    row: &[&Value],
    precision: Precision,
    opts: &RenderOptions,
) -> String {
    let name_w = fields
        .iter()
        .map(|f| display_width(&f.name))
        .max()
        .unwrap_or(0);
    let mut out = format!("*************************** {index}.row ***************************\n");
    for (f, v) in fields.iter().zip(row) {
        push_spaces(&mut out, name_w - display_width(&f.name));
        out.push_str(&f.name);
        out.push_str(": ");
        out.push_str(&format_value(v, precision, opts));
        out.push('\n');
    }
    out
}

fn secs(elapsed: Duration) -> String {
    format!("{:.6}s", elapsed.as_secs_f64())
}

/// `Query OK, 3 row(s) in set (0.003210s)`
pub fn rows_in_set(rows: u64, elapsed: Duration) -> String {
    format!("Query OK, {rows} row(s) in set ({})", secs(elapsed))
}

/// `Query OK, 1 row(s) affected (0.001234s)`
pub fn rows_affected(rows: i64, elapsed: Duration) -> String {
    format!("Query OK, {rows} row(s) affected ({})", secs(elapsed))
}

/// `DB error: syntax error near "x" [0x2600] (0.000123s)`
pub fn db_error(err: &TaosError, elapsed: Duration) -> String {
    format!(
        "DB error: {} [0x{:04X}] ({})",
        err.message,
        err.short_code(),
        secs(elapsed)
    )
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Terminal columns a char takes: East Asian wide characters take two.
fn char_width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// The longest prefix of `s` that fits `w` columns.
fn truncate(s: &str, w: usize) -> String {
    if s.len() <= w {
        return s.to_string();
    }
    let mut used = 0;
    s.chars()
        .take_while(|&c| {
            used += char_width(c);
            used <= w
        })
        .collect()
}
