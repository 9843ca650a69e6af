//! Recursive-descent parser over the token vector of [`crate::lexer`]. Each statement family
//! lives in its own module; this file holds the cursor, keyword and identifier helpers, the
//! error constructors and the statement dispatch.
//!
//! Errors follow TDengine: `0x2600 syntax error near "<rest of sql>" (at position N)` where N
//! is the byte offset of the offending token, `0x2601 Incomplete SQL statement` when the
//! statement ends where more was required.

mod ddl;
mod expr;
mod insert;
mod query;
mod show;
mod topic;
mod user;

use crate::ast::*;
use crate::lexer::{self, Tok, Token};
use common::{Code, DataType, TaosError};

pub(crate) type PResult<T> = Result<T, TaosError>;

/// Deepest nesting of expressions / subqueries / operator chains accepted; deeper input is an
/// error rather than a stack overflow here or in whoever walks the tree later.
pub(crate) const MAX_DEPTH: u32 = 500;

/// Stack the parser may use below its entry point. Unoptimised builds spend ~10 KB a nesting
/// level, so the depth cap alone would not protect a 2 MB thread (tokio workers, tests).
const STACK_BUDGET: usize = 768 * 1024;

/// Address of a local of the caller's frame: a cheap stack-depth gauge.
#[inline(always)]
fn stack_addr() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

const MAX_DB_NAME: usize = 64;
const MAX_TABLE_NAME: usize = 192;
const MAX_COLUMN_NAME: usize = 64;

/// Words that cannot be bare column names or implicit aliases, because they start a clause or
/// are operators. Everything else (`value`, `status`, `current`, `ts`, ...) is an identifier.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "contains",
    "count_window",
    "desc",
    "distinct",
    "else",
    "end",
    "event_window",
    "every",
    "fill",
    "from",
    "full",
    "group",
    "having",
    "in",
    "inner",
    "interval",
    "into",
    "is",
    "join",
    "left",
    "like",
    "limit",
    "match",
    "nmatch",
    "not",
    "nulls",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "partition",
    "range",
    "regexp",
    "right",
    "select",
    "session",
    "slimit",
    "sliding",
    "soffset",
    "state_window",
    "then",
    "union",
    "using",
    "values",
    "when",
    "where",
];

pub(crate) fn is_reserved(word: &str) -> bool {
    word.len() <= 12 && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

pub(crate) struct Parser<'a> {
    pub(crate) src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: u32,
    stack_base: usize,
}

impl<'a> Parser<'a> {
    /// A parser over `src`, tokenised into `toks` (a reused buffer; see [`Parser::into_tokens`]).
    pub(crate) fn new(src: &'a str, mut toks: Vec<Token>) -> Result<Self, (TaosError, Vec<Token>)> {
        match lexer::tokenize_into(src, &mut toks) {
            Ok(()) => Ok(Parser {
                src,
                toks,
                pos: 0,
                depth: 0,
                stack_base: stack_addr(),
            }),
            Err(e) => Err((e, toks)),
        }
    }

    /// Give the token buffer back for reuse.
    pub(crate) fn into_tokens(self) -> Vec<Token> {
        self.toks
    }

    // ------------------------------------------------------------ cursor

    #[inline]
    pub(crate) fn peek(&self) -> Token {
        self.peek_at(0)
    }

    #[inline]
    pub(crate) fn peek_at(&self, k: usize) -> Token {
        match self.toks.get(self.pos + k) {
            Some(t) => *t,
            None => Token {
                kind: Tok::Eof,
                start: self.src.len() as u32,
                end: self.src.len() as u32,
            },
        }
    }

    #[inline]
    pub(crate) fn kind(&self) -> Tok {
        self.peek().kind
    }

    #[inline]
    pub(crate) fn advance(&mut self) -> Token {
        let t = self.peek();
        if t.kind != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    #[inline]
    pub(crate) fn text(&self, t: Token) -> &'a str {
        self.src.get(t.start as usize..t.end as usize).unwrap_or("")
    }

    #[inline]
    pub(crate) fn eat(&mut self, kind: Tok) -> bool {
        if self.kind() == kind {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, kind: Tok) -> PResult<Token> {
        if self.kind() == kind {
            Ok(self.advance())
        } else {
            Err(self.error_here())
        }
    }

    /// Is token `t` the keyword `kw` (lower case)?
    #[inline]
    pub(crate) fn tok_is(&self, t: Token, kw: &str) -> bool {
        t.kind == Tok::Ident && self.text(t).eq_ignore_ascii_case(kw)
    }

    #[inline]
    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        self.tok_is(self.peek(), kw)
    }

    #[inline]
    pub(crate) fn is_kw_at(&self, k: usize, kw: &str) -> bool {
        self.tok_is(self.peek_at(k), kw)
    }

    pub(crate) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    /// At `;` or the end of input: the current statement is over.
    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        matches!(self.kind(), Tok::Semi | Tok::Eof)
    }

    /// `IF NOT EXISTS`
    pub(crate) fn if_not_exists(&mut self) -> PResult<bool> {
        if self.is_kw("if") && self.is_kw_at(1, "not") {
            self.pos += 2;
            self.expect_kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `IF EXISTS`
    pub(crate) fn if_exists(&mut self) -> PResult<bool> {
        if self.is_kw("if") && self.is_kw_at(1, "exists") {
            self.pos += 2;
            return Ok(true);
        }
        Ok(false)
    }

    /// Enter one level of nesting; see [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || stack_addr().abs_diff(self.stack_base) > STACK_BUDGET {
            return Err(self.too_deep());
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Check a left-deep chain (`a+b+c...`, `UNION`, `JOIN`) of `chain` links at this depth.
    pub(crate) fn check_chain(&self, chain: u32) -> PResult<()> {
        if self.depth + chain > MAX_DEPTH {
            return Err(self.too_deep());
        }
        Ok(())
    }

    fn too_deep(&self) -> TaosError {
        let e = self.error_here();
        TaosError {
            message: format!("{}: nesting deeper than {MAX_DEPTH}", e.message),
            ..e
        }
    }

    // ------------------------------------------------------------ errors

    /// The error for the current token: incomplete at the end of the statement, else a syntax
    /// error pointing at it.
    pub(crate) fn error_here(&self) -> TaosError {
        let t = self.peek();
        if matches!(t.kind, Tok::Eof | Tok::Semi) {
            TaosError::of(Code::PAR_INCOMPLETE_SQL)
        } else {
            lexer::syntax_error_at(self.src, t.start as usize)
        }
    }

    pub(crate) fn error_at(&self, t: Token) -> TaosError {
        lexer::syntax_error_at(self.src, t.start as usize)
    }

    // ------------------------------------------------------------ identifiers and literals

    /// An identifier (bare non-reserved word or backtick-quoted) of at most `max` bytes.
    pub(crate) fn ident_max(&mut self, max: usize) -> PResult<String> {
        let t = self.peek();
        let name = match t.kind {
            Tok::Ident if !is_reserved(self.text(t)) => self.text(t).to_ascii_lowercase(),
            Tok::QuotedIdent => {
                let raw = self.text(t);
                let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
                if body.is_empty() || body.contains('.') {
                    return Err(invalid_identifier(body));
                }
                body.to_string()
            }
            _ => return Err(self.error_here()),
        };
        if name.len() > max {
            return Err(invalid_identifier(&name));
        }
        self.pos += 1;
        Ok(name)
    }

    /// Is the current token usable as an identifier?
    pub(crate) fn at_ident(&self) -> bool {
        let t = self.peek();
        match t.kind {
            Tok::Ident => !is_reserved(self.text(t)),
            Tok::QuotedIdent => true,
            _ => false,
        }
    }

    pub(crate) fn db_name(&mut self) -> PResult<String> {
        self.ident_max(MAX_DB_NAME)
    }

    pub(crate) fn column_name(&mut self) -> PResult<String> {
        self.ident_max(MAX_COLUMN_NAME)
    }

    pub(crate) fn table_name(&mut self) -> PResult<String> {
        self.ident_max(MAX_TABLE_NAME)
    }

    /// `[db.]name`
    pub(crate) fn obj_name(&mut self) -> PResult<ObjName> {
        if self.peek_at(1).kind == Tok::Dot && matches!(self.kind(), Tok::Ident | Tok::QuotedIdent)
        {
            let db = self.db_name()?;
            self.pos += 1;
            let name = self.table_name()?;
            return Ok(ObjName { db: Some(db), name });
        }
        Ok(ObjName {
            db: None,
            name: self.table_name()?,
        })
    }

    /// `(a, b, c)` of column/tag names.
    pub(crate) fn name_list(&mut self) -> PResult<Vec<String>> {
        self.expect(Tok::LParen)?;
        let mut names = Vec::new();
        loop {
            names.push(self.column_name()?);
            if !self.eat(Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen)?;
        Ok(names)
    }

    /// A quoted string literal, escapes resolved.
    pub(crate) fn string(&mut self) -> PResult<String> {
        let t = self.peek();
        match t.kind {
            Tok::Str | Tok::StrEsc => {
                self.pos += 1;
                Ok(self.string_value(t))
            }
            _ => Err(self.error_here()),
        }
    }

    pub(crate) fn string_value(&self, t: Token) -> String {
        let raw = self.text(t);
        let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        if t.kind == Tok::Str {
            body.to_string()
        } else {
            let quote = if raw.starts_with('"') { '"' } else { '\'' };
            lexer::unescape(body, quote)
        }
    }

    /// A signed integer literal.
    pub(crate) fn integer(&mut self) -> PResult<i64> {
        let neg = self.eat(Tok::Minus);
        let t = self.peek();
        let v = match t.kind {
            Tok::Int => parse_int(self.text(t)),
            Tok::Hex => parse_hex(self.text(t)),
            _ => None,
        };
        let Some(v) = v else {
            return Err(self.error_here());
        };
        self.pos += 1;
        Ok(if neg { v.wrapping_neg() } else { v })
    }

    /// A duration literal such as `10d`.
    pub(crate) fn duration(&mut self) -> PResult<common::time::DurationLit> {
        let t = self.peek();
        if t.kind == Tok::Duration {
            if let Some(d) = parse_duration(self.text(t)) {
                self.pos += 1;
                return Ok(d);
            }
        }
        Err(self.error_here())
    }

    // ------------------------------------------------------------ types

    /// A column type: `INT`, `INT UNSIGNED`, `VARCHAR(n)`, `BINARY(n)`, `NCHAR(n)`, ...
    pub(crate) fn data_type(&mut self) -> PResult<DataType> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.error_here());
        }
        let word = self.text(t).to_ascii_lowercase();
        self.pos += 1;
        let ty = match word.as_str() {
            "timestamp" => DataType::Timestamp,
            "bool" | "boolean" => DataType::Bool,
            "tinyint" => self.unsigned(DataType::TinyInt, DataType::UTinyInt),
            "smallint" => self.unsigned(DataType::SmallInt, DataType::USmallInt),
            "int" | "integer" => self.unsigned(DataType::Int, DataType::UInt),
            "bigint" => self.unsigned(DataType::BigInt, DataType::UBigInt),
            "float" => DataType::Float,
            "double" => DataType::Double,
            "json" => DataType::Json,
            "binary" | "varchar" => {
                DataType::VarChar(self.type_len(common::types::MAX_VAR_COLUMN_LEN)?)
            }
            "nchar" => DataType::NChar(self.type_len(common::types::MAX_VAR_COLUMN_LEN / 4)?),
            "varbinary" => DataType::VarBinary(self.type_len(common::types::MAX_VAR_COLUMN_LEN)?),
            "geometry" => DataType::Geometry(self.type_len(common::types::MAX_VAR_COLUMN_LEN)?),
            _ => return Err(self.error_at(t)),
        };
        Ok(ty)
    }

    fn unsigned(&mut self, signed: DataType, unsigned: DataType) -> DataType {
        if self.eat_kw("unsigned") {
            unsigned
        } else {
            signed
        }
    }

    /// `(n)` of a variable-length type, 1..=max.
    fn type_len(&mut self, max: u32) -> PResult<u32> {
        self.expect(Tok::LParen)?;
        let t = self.peek();
        if t.kind != Tok::Int {
            return Err(self.error_here());
        }
        let n = self.text(t).parse::<u64>().unwrap_or(u64::MAX);
        if n == 0 || n > max as u64 {
            return Err(TaosError::of(Code::PAR_INVALID_VAR_COLUMN_LEN));
        }
        self.pos += 1;
        self.expect(Tok::RParen)?;
        Ok(n as u32)
    }

    // ------------------------------------------------------------ statements

    /// Parse every statement of the input.
    pub(crate) fn statements(&mut self) -> PResult<Vec<Statement>> {
        let mut out = Vec::new();
        loop {
            while self.eat(Tok::Semi) {}
            if self.kind() == Tok::Eof {
                return Ok(out);
            }
            out.push(self.statement()?);
        }
    }

    /// One statement, which must be followed by `;` or the end of input.
    pub(crate) fn statement(&mut self) -> PResult<Statement> {
        let t = self.peek();
        let stmt = if t.kind == Tok::LParen {
            Statement::Select(self.query()?)
        } else if t.kind != Tok::Ident {
            return Err(self.error_here());
        } else {
            let word = self.text(t).to_ascii_lowercase();
            match word.as_str() {
                "select" => Statement::Select(self.query()?),
                "insert" => self.insert()?,
                "create" => self.create()?,
                "drop" => self.drop_stmt()?,
                "alter" => self.alter()?,
                "use" => {
                    self.pos += 1;
                    Statement::UseDatabase(self.db_name()?)
                }
                "flush" | "trim" | "compact" => self.db_maintenance()?,
                "describe" | "desc" => {
                    self.pos += 1;
                    Statement::Describe(self.obj_name()?)
                }
                "delete" => self.delete()?,
                "show" => self.show()?,
                "grant" | "revoke" => self.grant()?,
                "kill" => self.kill()?,
                _ => return Err(self.error_at(t)),
            }
        };
        if !self.at_end() {
            return Err(self.error_here());
        }
        Ok(stmt)
    }
}

pub(crate) fn invalid_identifier(name: &str) -> TaosError {
    let shown: String = name.chars().take(80).collect();
    TaosError::new(
        Code::PAR_INVALID_IDENTIFIER_NAME,
        format!("Invalid identifier name: {shown}"),
    )
}

/// An `Int` token's digits to i64 (None on overflow).
#[inline]
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        // 18 digits cannot overflow i64.
        return Some(b.iter().fold(0i64, |a, d| a * 10 + (d - b'0') as i64));
    }
    s.parse::<i64>().ok()
}

/// A `Float` token to f64. Short plain decimals (`10.3`) take an exact fast path: a mantissa
/// below 2^53 divided by an exact power of ten is correctly rounded by IEEE division.
#[inline]
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let b = s.as_bytes();
    if b.len() <= 16 {
        let mut mant = 0u64;
        let mut digits = 0usize;
        let mut frac: Option<usize> = None;
        let mut plain = true;
        for &c in b {
            match c {
                b'0'..=b'9' => {
                    mant = mant * 10 + (c - b'0') as u64;
                    digits += 1;
                }
                b'.' if frac.is_none() => frac = Some(digits),
                _ => {
                    plain = false;
                    break;
                }
            }
        }
        if plain && digits > 0 && digits <= 15 {
            let k = digits - frac.unwrap_or(digits);
            return Some(mant as f64 / POW10[k]);
        }
    }
    s.parse::<f64>().ok()
}

pub(crate) fn parse_hex(s: &str) -> Option<i64> {
    let digits = s.get(2..)?;
    u64::from_str_radix(digits, 16).ok().map(|v| v as i64)
}

pub(crate) fn parse_duration(s: &str) -> Option<common::time::DurationLit> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let value = num.parse::<i64>().ok()?;
    let unit = unit.chars().next()?.to_ascii_lowercase();
    Some(common::time::DurationLit { value, unit })
}
