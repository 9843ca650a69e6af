//! Tokenizer for TDengine SQL. Tokens are spans (byte offsets) into the source, so lexing
//! allocates nothing but the token vector; keywords are plain identifiers that the parser
//! recognises case-insensitively, which lets non-reserved words (`value`, `status`, ...) stay
//! usable as column names.

use common::{Code, TaosError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// A bare word (identifier or keyword), not yet lower-cased.
    Ident,
    /// `` `Name` ``; the span includes the backticks.
    QuotedIdent,
    Int,
    /// `0x1F`
    Hex,
    Float,
    /// An integer immediately followed by a unit letter: `10d`, `500a`.
    Duration,
    /// `'..'` or `".."` without escapes; the span includes the quotes.
    Str,
    /// A string with backslash escapes or doubled quotes, resolved by [`unescape`].
    StrEsc,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Amp,
    Pipe,
    Arrow,
    Comma,
    Semi,
    LParen,
    RParen,
    Dot,
    Eof,
}

/// One token: its kind and byte span `start..end` in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: u32,
    pub end: u32,
}

/// Unit letters of duration literals (`b`ns `u`s `a`ms s m h d w `n`month `y`ear).
const DURATION_UNITS: &[u8] = b"buasmhdwny";

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Split `src` into tokens, ending with one `Eof` token at `src.len()`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, TaosError> {
    let mut toks = Vec::new();
    tokenize_into(src, &mut toks)?;
    Ok(toks)
}

/// [`tokenize`] into a caller's (cleared) buffer, so a thread can reuse one allocation.
pub fn tokenize_into(src: &str, toks: &mut Vec<Token>) -> Result<(), TaosError> {
    let bytes = src.as_bytes();
    if bytes.len() >= u32::MAX as usize {
        return Err(TaosError::new(
            Code::PAR_SYNTAX_ERROR,
            "SQL statement too long",
        ));
    }
    let n = bytes.len();
    toks.clear();
    // Rough guess: INSERT rows average ~3 bytes a token.
    toks.reserve(n / 3 + 4);
    let mut i = 0usize;
    let at = |j: usize| -> u8 {
        if j < n {
            bytes[j]
        } else {
            0
        }
    };
    while i < n {
        let b = bytes[i];
        let start = i;
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'-' if at(i + 1) == b'-' => {
                while i < n && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if at(i + 1) == b'*' => {
                i += 2;
                while i < n && !(bytes[i] == b'*' && at(i + 1) == b'/') {
                    i += 1;
                }
                i = (i + 2).min(n);
                continue;
            }
            b'0'..=b'9' => {
                let (kind, end) = lex_number(bytes, i);
                i = end;
                kind
            }
            b'.' if at(i + 1).is_ascii_digit()
                && (i == 0 || !(is_ident_char(bytes[i - 1]) || bytes[i - 1] == b'`')) =>
            {
                let (kind, end) = lex_number(bytes, i);
                i = end;
                kind
            }
            b'\'' | b'"' => {
                let quote = b;
                i += 1;
                let mut escaped = false;
                loop {
                    if i >= n {
                        return Err(syntax_error_at(src, start));
                    }
                    let c = bytes[i];
                    if c == b'\\' {
                        escaped = true;
                        i += 2;
                    } else if c == quote {
                        if at(i + 1) == quote {
                            escaped = true;
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                if escaped {
                    Tok::StrEsc
                } else {
                    Tok::Str
                }
            }
            b'`' => {
                i += 1;
                while i < n && bytes[i] != b'`' {
                    i += 1;
                }
                if i >= n {
                    return Err(syntax_error_at(src, start));
                }
                i += 1;
                Tok::QuotedIdent
            }
            _ if is_ident_start(b) => {
                i += 1;
                while i < n && is_ident_char(bytes[i]) {
                    i += 1;
                }
                Tok::Ident
            }
            _ => {
                let (kind, len) = match (b, at(i + 1)) {
                    (b'!', b'=') => (Tok::NotEq, 2),
                    (b'<', b'>') => (Tok::NotEq, 2),
                    (b'<', b'=') => (Tok::LtEq, 2),
                    (b'>', b'=') => (Tok::GtEq, 2),
                    (b'-', b'>') => (Tok::Arrow, 2),
                    (b'=', b'=') => (Tok::Eq, 2),
                    (b'=', _) => (Tok::Eq, 1),
                    (b'<', _) => (Tok::Lt, 1),
                    (b'>', _) => (Tok::Gt, 1),
                    (b'+', _) => (Tok::Plus, 1),
                    (b'-', _) => (Tok::Minus, 1),
                    (b'*', _) => (Tok::Star, 1),
                    (b'/', _) => (Tok::Slash, 1),
                    (b'%', _) => (Tok::Percent, 1),
                    (b'&', _) => (Tok::Amp, 1),
                    (b'|', _) => (Tok::Pipe, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b';', _) => (Tok::Semi, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b'.', _) => (Tok::Dot, 1),
                    _ => return Err(syntax_error_at(src, start)),
                };
                i += len;
                kind
            }
        };
        toks.push(Token {
            kind,
            start: start as u32,
            end: i.min(n) as u32,
        });
    }
    toks.push(Token {
        kind: Tok::Eof,
        start: n as u32,
        end: n as u32,
    });
    Ok(())
}

/// Lex a number starting at `i` (a digit, or `.` before a digit): hex, integer, float or
/// duration. Returns the kind and the end offset.
fn lex_number(bytes: &[u8], mut i: usize) -> (Tok, usize) {
    let n = bytes.len();
    let at = |j: usize| -> u8 {
        if j < n {
            bytes[j]
        } else {
            0
        }
    };
    if bytes[i] == b'0' && (at(i + 1) == b'x' || at(i + 1) == b'X') && at(i + 2).is_ascii_hexdigit()
    {
        i += 2;
        while i < n && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        return (Tok::Hex, i);
    }
    while i < n && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut float = false;
    if at(i) == b'.' {
        float = true;
        i += 1;
        while i < n && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    let e = at(i);
    if e == b'e' || e == b'E' {
        let sign = matches!(at(i + 1), b'+' | b'-') as usize;
        if at(i + 1 + sign).is_ascii_digit() {
            float = true;
            i += 1 + sign;
            while i < n && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if float {
        return (Tok::Float, i);
    }
    let u = at(i).to_ascii_lowercase();
    if DURATION_UNITS.contains(&u) && !is_ident_char(at(i + 1)) {
        return (Tok::Duration, i + 1);
    }
    (Tok::Int, i)
}

/// Resolve the escapes of a string literal's body (without quotes). `\x` stays as written so
/// VARBINARY literals like `'\x0aff'` reach the executor intact, as do unknown escapes such
/// as `\%` and `\_` that LIKE patterns rely on.
pub fn unescape(body: &str, quote: char) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\'') => out.push('\''),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else if c == quote && chars.peek() == Some(&quote) {
            chars.next();
            out.push(quote);
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest piece of the rest of the statement shown in a syntax error.
const SNIPPET_CHARS: usize = 30;

/// TDengine's `syntax error near "..."` with a byte position.
pub fn syntax_error_at(src: &str, pos: usize) -> TaosError {
    let mut p = pos.min(src.len());
    while !src.is_char_boundary(p) {
        p -= 1;
    }
    let rest: String = src[p..].chars().take(SNIPPET_CHARS).collect();
    TaosError::new(
        Code::PAR_SYNTAX_ERROR,
        format!("syntax error near \"{rest}\" (at position {p})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_and_durations() {
        use Tok::*;
        assert_eq!(
            kinds("1 1.5 .5 1e10 1E-3 0x1F 10d 500a 1h 10days"),
            vec![
                Int, Float, Float, Float, Float, Hex, Duration, Duration, Duration, Int, Ident, Eof
            ]
        );
        assert_eq!(
            kinds("t.c a.5"),
            vec![Ident, Dot, Ident, Ident, Dot, Int, Eof]
        );
    }

    #[test]
    fn strings_comments_operators() {
        use Tok::*;
        assert_eq!(
            kinds("'a' 'it''s' \"x\\\"y\" -- c\n/* b */ `Q.` != <> <= >= -> ;"),
            vec![
                Str,
                StrEsc,
                StrEsc,
                QuotedIdent,
                NotEq,
                NotEq,
                LtEq,
                GtEq,
                Arrow,
                Semi,
                Eof
            ]
        );
        assert_eq!(unescape(r"a\'b\\c\n\x0aff\%", '\''), "a'b\\c\n\\x0aff\\%");
        assert_eq!(unescape("it''s", '\''), "it's");
        assert!(tokenize("'open").is_err());
        assert!(tokenize("a ? b").is_err());
    }
}
