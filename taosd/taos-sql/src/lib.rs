//! TDengine SQL: the syntax tree and a hand-written parser.
//!
//! [`parse`] turns a string of `;`-separated statements into [`ast::Statement`]s; errors carry
//! TDengine's codes (0x2600 syntax error with the position, 0x2601 incomplete statement, ...).

// Hand-formatted: one line per variant keeps the contract with the executor easy to scan.
#[rustfmt::skip]
pub mod ast;
pub mod lexer;
mod parser;

#[cfg(test)]
mod tests;

use common::{Code, TaosError};
use lexer::{Tok, Token};
use parser::Parser;
use std::cell::Cell;

/// Token buffers up to this many tokens (~3 MB) are kept per thread between calls.
const MAX_CACHED_TOKENS: usize = 256 * 1024;

thread_local! {
    /// Each thread reuses one token buffer: a 400 KB INSERT needs ~1 MB of tokens, and fresh
    /// memory of that size costs page faults on every statement.
    static TOKEN_BUF: Cell<Vec<Token>> = const { Cell::new(Vec::new()) };
}

fn with_parser<T>(
    sql: &str,
    f: impl FnOnce(&mut Parser) -> Result<T, TaosError>,
) -> Result<T, TaosError> {
    let buf = TOKEN_BUF.with(|c| c.take());
    let (result, buf) = match Parser::new(sql, buf) {
        Ok(mut p) => {
            let r = f(&mut p);
            (r, p.into_tokens())
        }
        Err((e, buf)) => (Err(e), buf),
    };
    if buf.capacity() <= MAX_CACHED_TOKENS {
        TOKEN_BUF.with(|c| c.set(buf));
    }
    result
}

/// Parse every statement of `sql`; empty statements (`;;`) are skipped.
pub fn parse(sql: &str) -> Result<Vec<ast::Statement>, TaosError> {
    with_parser(sql, |p| p.statements())
}

/// Parse exactly one statement (a trailing `;` is allowed).
pub fn parse_one(sql: &str) -> Result<ast::Statement, TaosError> {
    with_parser(sql, |p| {
        while p.eat(Tok::Semi) {}
        if p.kind() == Tok::Eof {
            return Err(TaosError::of(Code::PAR_INCOMPLETE_SQL));
        }
        let stmt = p.statement()?;
        while p.eat(Tok::Semi) {}
        if p.kind() != Tok::Eof {
            return Err(p.error_here());
        }
        Ok(stmt)
    })
}
