//! Expressions by precedence climbing. Binding from loosest to tightest:
//! OR < AND < NOT < comparison/LIKE/IN/BETWEEN/IS/CONTAINS < | < & < + - < * / % < unary - < ->.

use super::{parse_duration, parse_hex, parse_int, PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;

const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_NOT: u8 = 3;
const P_CMP: u8 = 4;
const P_BITOR: u8 = 5;
const P_BITAND: u8 = 6;
const P_ADD: u8 = 7;
const P_MUL: u8 = 8;
const P_ARROW: u8 = 10;

/// An infix operator found at the cursor, with how many tokens it spans.
enum Infix {
    Bin(BinaryOp),
    In { negated: bool },
    Between { negated: bool },
    Is,
}

impl<'a> Parser<'a> {
    /// A full expression.
    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.binary(P_OR)
    }

    /// `e, e, ...`
    pub(crate) fn expr_list(&mut self) -> PResult<Vec<Expr>> {
        let mut list = vec![self.expr()?];
        while self.eat(Tok::Comma) {
            list.push(self.expr()?);
        }
        Ok(list)
    }

    /// A value in VALUES or TAGS: literals are taken without the precedence machinery, which
    /// keeps the INSERT path fast; anything else is a full expression.
    #[inline]
    pub(crate) fn value_expr(&mut self) -> PResult<Expr> {
        let t = self.peek();
        let next = self.peek_at(1).kind;
        if matches!(next, Tok::Comma | Tok::RParen) {
            let lit = match t.kind {
                Tok::Int => Some(self.int_literal(self.text(t), false)),
                Tok::Float => super::parse_float(self.text(t)).map(Literal::Float),
                Tok::Str | Tok::StrEsc => Some(Literal::Str(self.string_value(t))),
                _ => None,
            };
            if let Some(lit) = lit {
                self.pos += 1;
                return Ok(Expr::Literal(lit));
            }
        } else if t.kind == Tok::Minus && matches!(self.peek_at(2).kind, Tok::Comma | Tok::RParen) {
            let n = self.peek_at(1);
            let lit = match n.kind {
                Tok::Int => Some(self.int_literal(self.text(n), true)),
                Tok::Float => super::parse_float(self.text(n)).map(|f| Literal::Float(-f)),
                _ => None,
            };
            if let Some(lit) = lit {
                self.pos += 2;
                return Ok(Expr::Literal(lit));
            }
        }
        self.expr()
    }

    /// Integer literal text to the narrowest literal: i64, then u64, then f64.
    fn int_literal(&self, s: &str, negate: bool) -> Literal {
        if let Some(v) = parse_int(s) {
            return Literal::Int(if negate { -v } else { v });
        }
        match s.parse::<u64>() {
            Ok(v) if negate && v == 1u64 << 63 => Literal::Int(i64::MIN),
            Ok(v) if !negate => Literal::UInt(v),
            _ => {
                let f = s.parse::<f64>().unwrap_or(f64::INFINITY);
                Literal::Float(if negate { -f } else { f })
            }
        }
    }

    fn peek_infix(&self) -> Option<(Infix, u8, usize)> {
        let t = self.peek();
        let bin = |op| Some((Infix::Bin(op), 0, 1));
        let r = match t.kind {
            Tok::Eq => bin(BinaryOp::Eq),
            Tok::NotEq => bin(BinaryOp::NotEq),
            Tok::Lt => bin(BinaryOp::Lt),
            Tok::LtEq => bin(BinaryOp::LtEq),
            Tok::Gt => bin(BinaryOp::Gt),
            Tok::GtEq => bin(BinaryOp::GtEq),
            Tok::Pipe => return Some((Infix::Bin(BinaryOp::BitOr), P_BITOR, 1)),
            Tok::Amp => return Some((Infix::Bin(BinaryOp::BitAnd), P_BITAND, 1)),
            Tok::Plus => return Some((Infix::Bin(BinaryOp::Add), P_ADD, 1)),
            Tok::Minus => return Some((Infix::Bin(BinaryOp::Sub), P_ADD, 1)),
            Tok::Star => return Some((Infix::Bin(BinaryOp::Mul), P_MUL, 1)),
            Tok::Slash => return Some((Infix::Bin(BinaryOp::Div), P_MUL, 1)),
            Tok::Percent => return Some((Infix::Bin(BinaryOp::Mod), P_MUL, 1)),
            Tok::Arrow => return Some((Infix::Bin(BinaryOp::Arrow), P_ARROW, 1)),
            Tok::Ident => {
                let w = self.text(t);
                if w.len() > 8 {
                    return None;
                }
                match w.to_ascii_lowercase().as_str() {
                    "or" => return Some((Infix::Bin(BinaryOp::Or), P_OR, 1)),
                    "and" => return Some((Infix::Bin(BinaryOp::And), P_AND, 1)),
                    "like" => bin(BinaryOp::Like),
                    "match" | "regexp" => bin(BinaryOp::Match),
                    "nmatch" => bin(BinaryOp::NMatch),
                    "contains" => bin(BinaryOp::Contains),
                    "in" => Some((Infix::In { negated: false }, 0, 1)),
                    "between" => Some((Infix::Between { negated: false }, 0, 1)),
                    "is" => Some((Infix::Is, 0, 1)),
                    "not" => {
                        let n = self.peek_at(1);
                        if self.tok_is(n, "like") {
                            Some((Infix::Bin(BinaryOp::NotLike), 0, 2))
                        } else if self.tok_is(n, "in") {
                            Some((Infix::In { negated: true }, 0, 2))
                        } else if self.tok_is(n, "between") {
                            Some((Infix::Between { negated: true }, 0, 2))
                        } else if self.tok_is(n, "match") || self.tok_is(n, "regexp") {
                            Some((Infix::Bin(BinaryOp::NMatch), 0, 2))
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        r.map(|(op, _, n)| (op, P_CMP, n))
    }

    /// Operators binding at least as tightly as `min`.
    fn binary(&mut self, min: u8) -> PResult<Expr> {
        self.enter()?;
        let mut left = self.prefix()?;
        let mut chain = 0u32;
        while let Some((op, prec, ntok)) = self.peek_infix() {
            if prec < min {
                break;
            }
            chain += 1;
            self.check_chain(chain)?;
            self.pos += ntok;
            left = match op {
                Infix::Bin(op) => {
                    let right = self.binary(prec + 1)?;
                    Expr::Binary {
                        op,
                        left: Box::new(left),
                        right: Box::new(right),
                    }
                }
                Infix::In { negated } => {
                    self.expect(Tok::LParen)?;
                    let list = if self.is_kw("select") {
                        vec![Expr::Subquery(Box::new(self.query()?))]
                    } else {
                        self.expr_list()?
                    };
                    self.expect(Tok::RParen)?;
                    Expr::InList {
                        expr: Box::new(left),
                        list,
                        negated,
                    }
                }
                Infix::Between { negated } => {
                    let low = self.binary(P_BITOR)?;
                    self.expect_kw("and")?;
                    let high = self.binary(P_BITOR)?;
                    Expr::Between {
                        expr: Box::new(left),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated,
                    }
                }
                Infix::Is => {
                    let negated = self.eat_kw("not");
                    self.expect_kw("null")?;
                    Expr::IsNull {
                        expr: Box::new(left),
                        negated,
                    }
                }
            };
        }
        self.leave();
        Ok(left)
    }

    /// Prefix operators: NOT (binds looser than comparisons), unary minus (folded into numeric
    /// literals), unary plus.
    fn prefix(&mut self) -> PResult<Expr> {
        let t = self.peek();
        match t.kind {
            Tok::Ident if self.tok_is(t, "not") => {
                self.pos += 1;
                let e = self.binary(P_NOT)?;
                Ok(Expr::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(e),
                })
            }
            Tok::Minus => {
                self.pos += 1;
                let n = self.peek();
                let folded = match n.kind {
                    Tok::Int => Some(self.int_literal(self.text(n), true)),
                    Tok::Float => super::parse_float(self.text(n)).map(|f| Literal::Float(-f)),
                    Tok::Hex => parse_hex(self.text(n)).map(|v| Literal::Int(v.wrapping_neg())),
                    _ => None,
                };
                if let Some(lit) = folded {
                    // `-5->'k'` is meaningless; `-5 * 2` continues in the caller's loop.
                    self.pos += 1;
                    return Ok(Expr::Literal(lit));
                }
                let e = self.binary(P_ARROW)?;
                Ok(Expr::Unary {
                    op: UnaryOp::Neg,
                    expr: Box::new(e),
                })
            }
            Tok::Plus => {
                self.pos += 1;
                self.binary(P_ARROW)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.peek();
        let lit = |l| Ok(Expr::Literal(l));
        match t.kind {
            Tok::Int => {
                self.pos += 1;
                lit(self.int_literal(self.text(t), false))
            }
            Tok::Hex => {
                let s = self.text(t);
                let v = s.get(2..).and_then(|d| u64::from_str_radix(d, 16).ok());
                let Some(v) = v else {
                    return Err(self.error_here());
                };
                self.pos += 1;
                lit(if v <= i64::MAX as u64 {
                    Literal::Int(v as i64)
                } else {
                    Literal::UInt(v)
                })
            }
            Tok::Float => {
                let Some(f) = super::parse_float(self.text(t)) else {
                    return Err(self.error_here());
                };
                self.pos += 1;
                lit(Literal::Float(f))
            }
            Tok::Duration => {
                let Some(d) = parse_duration(self.text(t)) else {
                    return Err(self.error_here());
                };
                self.pos += 1;
                lit(Literal::Duration(d))
            }
            Tok::Str | Tok::StrEsc => {
                self.pos += 1;
                lit(Literal::Str(self.string_value(t)))
            }
            Tok::LParen => {
                self.pos += 1;
                let e = if self.is_kw("select") || self.starts_paren_query() {
                    Expr::Subquery(Box::new(self.query()?))
                } else {
                    self.expr()?
                };
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::QuotedIdent => self.column_ref(),
            Tok::Ident => self.word(),
            _ => Err(self.error_here()),
        }
    }

    /// `((select ...` : a parenthesised query rather than a parenthesised expression.
    fn starts_paren_query(&self) -> bool {
        let mut k = 0;
        while self.peek_at(k).kind == Tok::LParen {
            k += 1;
        }
        k > 0 && self.is_kw_at(k, "select")
    }

    /// A primary starting with a bare word: literal keyword, CASE, CAST, function or column.
    fn word(&mut self) -> PResult<Expr> {
        let t = self.peek();
        let w = self.text(t);
        let next = self.peek_at(1).kind;
        if w.len() <= 9 {
            match w.to_ascii_lowercase().as_str() {
                "null" => {
                    self.pos += 1;
                    return Ok(Expr::Literal(Literal::Null));
                }
                "true" | "false" => {
                    self.pos += 1;
                    return Ok(Expr::Literal(Literal::Bool(w.eq_ignore_ascii_case("true"))));
                }
                "now" | "today" if next != Tok::LParen => {
                    self.pos += 1;
                    return Ok(Expr::Function {
                        name: w.to_ascii_lowercase(),
                        args: vec![],
                        distinct: false,
                    });
                }
                "timestamp" if matches!(next, Tok::Str | Tok::StrEsc) => {
                    self.pos += 1;
                    let s = self.string()?;
                    return Ok(Expr::Literal(Literal::Timestamp(s)));
                }
                "case" => return self.case_expr(),
                "cast" if next == Tok::LParen => return self.cast_expr(),
                _ => {}
            }
        }
        if super::is_reserved(w) {
            return Err(self.error_here());
        }
        if next == Tok::LParen {
            return self.function_call();
        }
        self.column_ref()
    }

    /// `[table.]column`
    fn column_ref(&mut self) -> PResult<Expr> {
        if self.peek_at(1).kind == Tok::Dot
            && matches!(self.peek_at(2).kind, Tok::Ident | Tok::QuotedIdent)
        {
            let table = self.table_name()?;
            self.pos += 1;
            let name = self.column_name()?;
            return Ok(Expr::Column {
                table: Some(table),
                name,
            });
        }
        let name = self.column_name()?;
        Ok(Expr::Column { table: None, name })
    }

    /// `name(args)`, `count(*)`, `count(distinct x)`.
    fn function_call(&mut self) -> PResult<Expr> {
        let t = self.advance();
        let name = self.text(t).to_ascii_lowercase();
        self.expect(Tok::LParen)?;
        let mut distinct = false;
        let args = if self.eat(Tok::RParen) {
            return Ok(Expr::Function {
                name,
                args: vec![],
                distinct,
            });
        } else if self.kind() == Tok::Star && self.peek_at(1).kind == Tok::RParen {
            self.pos += 1;
            vec![Expr::Star]
        } else {
            distinct = self.eat_kw("distinct");
            self.expr_list()?
        };
        self.expect(Tok::RParen)?;
        Ok(Expr::Function {
            name,
            args,
            distinct,
        })
    }

    /// `CASE [operand] WHEN c THEN r ... [ELSE e] END`
    fn case_expr(&mut self) -> PResult<Expr> {
        self.pos += 1;
        let operand = if self.is_kw("when") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("when") {
            let cond = self.expr()?;
            self.expect_kw("then")?;
            whens.push((cond, self.expr()?));
        }
        if whens.is_empty() {
            return Err(self.error_here());
        }
        let else_ = if self.eat_kw("else") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("end")?;
        Ok(Expr::Case {
            operand,
            whens,
            else_,
        })
    }

    /// `CAST(e AS type)`
    fn cast_expr(&mut self) -> PResult<Expr> {
        self.pos += 1;
        self.expect(Tok::LParen)?;
        let e = self.expr()?;
        self.expect_kw("as")?;
        let ty = self.data_type()?;
        self.expect(Tok::RParen)?;
        Ok(Expr::Cast {
            expr: Box::new(e),
            ty,
        })
    }
}
