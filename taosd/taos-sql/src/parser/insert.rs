//! INSERT (the ingest hot path: rows are scanned once, literals skip the expression machinery)
//! and DELETE.

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;

impl<'a> Parser<'a> {
    /// `INSERT INTO target [target ...]`
    pub(crate) fn insert(&mut self) -> PResult<Statement> {
        self.pos += 1;
        self.expect_kw("into")?;
        let mut targets = Vec::new();
        loop {
            targets.push(self.insert_target()?);
            if self.at_end() {
                return Ok(Statement::Insert(Insert { targets }));
            }
        }
    }

    /// `tb [USING stb [(tags)] TAGS (..)] [(cols)] {VALUES (..)(..) | FILE 'f' | SELECT ...}`
    fn insert_target(&mut self) -> PResult<InsertTarget> {
        let table = self.obj_name()?;
        let using = if self.is_kw("using") {
            Some(self.using_clause()?)
        } else {
            None
        };
        let columns = if self.kind() == Tok::LParen && !self.is_kw_at(1, "select") {
            Some(self.name_list()?)
        } else {
            None
        };
        let source = if self.eat_kw("values") {
            InsertSource::Values(self.rows()?)
        } else if self.eat_kw("file") {
            InsertSource::File(self.string()?)
        } else if self.is_kw("select") || self.kind() == Tok::LParen {
            InsertSource::Select(Box::new(self.query()?))
        } else {
            return Err(self.error_here());
        };
        Ok(InsertTarget {
            table,
            using,
            columns,
            source,
        })
    }

    /// `(v, ...) [,] (v, ...) ...`
    fn rows(&mut self) -> PResult<Vec<Vec<Expr>>> {
        let mut rows = Vec::new();
        let mut width = 4;
        loop {
            self.expect(Tok::LParen)?;
            let mut row = Vec::with_capacity(width);
            loop {
                row.push(self.value_expr()?);
                if !self.eat(Tok::Comma) {
                    break;
                }
            }
            self.expect(Tok::RParen)?;
            width = row.len();
            rows.push(row);
            match self.kind() {
                Tok::LParen => {}
                Tok::Comma if self.peek_at(1).kind == Tok::LParen => self.pos += 1,
                _ => return Ok(rows),
            }
        }
    }

    /// `DELETE FROM tb [WHERE cond]`
    pub(crate) fn delete(&mut self) -> PResult<Statement> {
        self.pos += 1;
        self.expect_kw("from")?;
        let table = self.obj_name()?;
        let where_ = if self.eat_kw("where") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Statement::Delete { table, where_ })
    }
}
