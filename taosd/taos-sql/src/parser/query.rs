//! SELECT: the select core, FROM and joins, windows, INTERP clauses, UNION chains, ORDER BY,
//! SLIMIT and LIMIT.

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;

impl<'a> Parser<'a> {
    /// A full query: operands joined by UNION [ALL], then ORDER BY / SLIMIT / LIMIT, which
    /// belong to the single SELECT or, after a UNION, to the whole chain.
    pub(crate) fn query(&mut self) -> PResult<Query> {
        self.enter()?;
        let mut q = self.query_operand()?;
        let mut chain = 0;
        while self.eat_kw("union") {
            chain += 1;
            self.check_chain(chain)?;
            let all = self.eat_kw("all");
            let right = self.query_operand()?;
            q = Query::Union {
                left: Box::new(q),
                right: Box::new(right),
                all,
                order_by: vec![],
                limit: None,
            };
        }
        let order_by = if self.is_kw("order") && self.is_kw_at(1, "by") {
            self.pos += 2;
            self.order_items()?
        } else {
            vec![]
        };
        let slimit_tok = self.peek();
        let slimit = self.limit_clause("slimit", "soffset")?;
        let limit = self.limit_clause("limit", "offset")?;
        match &mut q {
            Query::Select(s) => {
                if !order_by.is_empty() {
                    s.order_by = order_by;
                }
                if slimit.is_some() {
                    s.slimit = slimit;
                }
                if limit.is_some() {
                    s.limit = limit;
                }
            }
            Query::Union {
                order_by: o,
                limit: l,
                ..
            } => {
                if slimit.is_some() {
                    return Err(self.error_at(slimit_tok));
                }
                *o = order_by;
                *l = limit;
            }
        }
        self.leave();
        Ok(q)
    }

    /// `SELECT ...` or `( query )`
    fn query_operand(&mut self) -> PResult<Query> {
        if self.kind() == Tok::LParen {
            self.pos += 1;
            let q = self.query()?;
            self.expect(Tok::RParen)?;
            return Ok(q);
        }
        self.expect_kw("select")?;
        Ok(Query::Select(Box::new(self.select_core()?)))
    }

    /// Everything of a SELECT up to (not including) ORDER BY.
    fn select_core(&mut self) -> PResult<Select> {
        let distinct = self.eat_kw("distinct");
        let tags = self.is_kw("tags")
            && !self.is_kw_at(1, "from")
            && self.peek_at(1).kind != Tok::Comma
            && {
                self.pos += 1;
                true
            };
        let mut projection = vec![self.select_item()?];
        while self.eat(Tok::Comma) {
            projection.push(self.select_item()?);
        }
        let from = if self.eat_kw("from") {
            Some(self.relations()?)
        } else {
            None
        };
        let where_ = if self.eat_kw("where") {
            Some(self.expr()?)
        } else {
            None
        };
        let partition_by = if self.is_kw("partition") && self.is_kw_at(1, "by") {
            self.pos += 2;
            self.expr_list()?
        } else {
            vec![]
        };
        let mut s = Select {
            distinct,
            tags,
            projection,
            from,
            where_,
            partition_by,
            window: None,
            group_by: vec![],
            having: None,
            order_by: vec![],
            slimit: None,
            limit: None,
            range: None,
            every: None,
            fill: None,
        };
        self.interp_clauses(&mut s)?;
        s.window = self.window(&mut s)?;
        if s.window.is_some() {
            self.interp_clauses(&mut s)?;
        }
        if self.is_kw("group") && self.is_kw_at(1, "by") {
            self.pos += 2;
            s.group_by = self.expr_list()?;
        }
        if self.eat_kw("having") {
            s.having = Some(self.expr()?);
        }
        Ok(s)
    }

    /// `RANGE(a[, b])`, `EVERY(d)`, `FILL(..)` of INTERP, in any order.
    fn interp_clauses(&mut self, s: &mut Select) -> PResult<()> {
        loop {
            if s.range.is_none() && self.is_kw("range") && self.peek_at(1).kind == Tok::LParen {
                self.pos += 2;
                let a = self.expr()?;
                let b = if self.eat(Tok::Comma) {
                    self.expr()?
                } else {
                    a.clone()
                };
                self.expect(Tok::RParen)?;
                s.range = Some((a, b));
            } else if s.every.is_none() && self.eat_kw("every") {
                self.expect(Tok::LParen)?;
                s.every = Some(self.duration()?);
                self.expect(Tok::RParen)?;
            } else if s.fill.is_none() && self.is_kw("fill") {
                s.fill = Some(self.fill()?);
            } else {
                return Ok(());
            }
        }
    }

    /// `FILL(mode[, values])`
    fn fill(&mut self) -> PResult<Fill> {
        self.expect_kw("fill")?;
        self.expect(Tok::LParen)?;
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.error_here());
        }
        self.pos += 1;
        let f = match self.text(t).to_ascii_lowercase().as_str() {
            "none" => Fill::None,
            "null" => Fill::Null,
            "null_f" => Fill::NullF,
            "prev" => Fill::Prev,
            "next" => Fill::Next,
            "linear" => Fill::Linear,
            "near" => Fill::Near,
            "value" | "value_f" => {
                let mut vals = Vec::new();
                while self.eat(Tok::Comma) {
                    vals.push(self.expr()?);
                }
                Fill::Value(vals)
            }
            _ => return Err(self.error_at(t)),
        };
        self.expect(Tok::RParen)?;
        Ok(f)
    }

    /// INTERVAL / SESSION / STATE_WINDOW / EVENT_WINDOW / COUNT_WINDOW.
    fn window(&mut self, s: &mut Select) -> PResult<Option<Window>> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Ok(None);
        }
        let w = match self.text(t).to_ascii_lowercase().as_str() {
            "interval" => {
                self.pos += 1;
                self.expect(Tok::LParen)?;
                let interval = self.duration()?;
                let offset = if self.eat(Tok::Comma) {
                    Some(self.duration()?)
                } else {
                    None
                };
                self.expect(Tok::RParen)?;
                let sliding = if self.eat_kw("sliding") {
                    self.expect(Tok::LParen)?;
                    let d = self.duration()?;
                    self.expect(Tok::RParen)?;
                    Some(d)
                } else {
                    None
                };
                let fill = if self.is_kw("fill") {
                    Some(self.fill()?)
                } else {
                    None
                };
                if fill.is_some() {
                    s.fill = fill.clone();
                }
                Window::Interval {
                    interval,
                    offset,
                    sliding,
                    fill,
                }
            }
            "session" => {
                self.pos += 1;
                self.expect(Tok::LParen)?;
                let column = self.expr()?;
                self.expect(Tok::Comma)?;
                let gap = self.duration()?;
                self.expect(Tok::RParen)?;
                Window::Session { column, gap }
            }
            "state_window" => {
                self.pos += 1;
                self.expect(Tok::LParen)?;
                let e = self.expr()?;
                self.expect(Tok::RParen)?;
                Window::State(e)
            }
            "event_window" => {
                self.pos += 1;
                self.expect_kw("start")?;
                self.expect_kw("with")?;
                let start = self.expr()?;
                self.expect_kw("end")?;
                self.expect_kw("with")?;
                let end = self.expr()?;
                Window::Event { start, end }
            }
            "count_window" => {
                self.pos += 1;
                self.expect(Tok::LParen)?;
                let count = self.integer()?;
                let sliding = if self.eat(Tok::Comma) {
                    Some(self.integer()?)
                } else {
                    None
                };
                self.expect(Tok::RParen)?;
                Window::Count { count, sliding }
            }
            _ => return Ok(None),
        };
        Ok(Some(w))
    }

    /// `*`, `t.*`, or `expr [[AS] alias]`.
    fn select_item(&mut self) -> PResult<SelectItem> {
        let t = self.peek();
        if t.kind == Tok::Star {
            self.pos += 1;
            return Ok(SelectItem::Wildcard);
        }
        if matches!(t.kind, Tok::Ident | Tok::QuotedIdent)
            && self.peek_at(1).kind == Tok::Dot
            && self.peek_at(2).kind == Tok::Star
        {
            let name = self.table_name()?;
            self.pos += 2;
            return Ok(SelectItem::QualifiedWildcard(name));
        }
        let expr = self.expr()?;
        let alias = self.alias()?;
        Ok(SelectItem::Expr { expr, alias })
    }

    /// `[AS] alias`
    fn alias(&mut self) -> PResult<Option<String>> {
        if self.eat_kw("as") {
            return Ok(Some(self.column_name()?));
        }
        if self.at_ident() {
            return Ok(Some(self.column_name()?));
        }
        Ok(None)
    }

    /// FROM items joined by JOIN ... ON or commas, left-deep.
    fn relations(&mut self) -> PResult<FromItem> {
        let mut left = self.table_ref()?;
        let mut chain = 0;
        loop {
            let kind = if self.eat(Tok::Comma) {
                JoinKind::Cross
            } else if let Some(kind) = self.join_kind()? {
                kind
            } else {
                break;
            };
            chain += 1;
            self.check_chain(chain)?;
            let right = self.table_ref()?;
            let on = if kind != JoinKind::Cross && self.eat_kw("on") {
                Some(self.expr()?)
            } else {
                None
            };
            left = FromItem::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                on,
            };
        }
        Ok(left)
    }

    /// `[INNER|LEFT|RIGHT|FULL] [OUTER] JOIN`
    fn join_kind(&mut self) -> PResult<Option<JoinKind>> {
        let kind = if self.is_kw("join") {
            JoinKind::Inner
        } else if self.is_kw("inner") {
            self.pos += 1;
            JoinKind::Inner
        } else if self.is_kw("left") {
            self.pos += 1;
            JoinKind::Left
        } else if self.is_kw("right") {
            self.pos += 1;
            JoinKind::Right
        } else if self.is_kw("full") {
            self.pos += 1;
            JoinKind::Full
        } else {
            return Ok(None);
        };
        if kind != JoinKind::Inner {
            self.eat_kw("outer");
        }
        self.expect_kw("join")?;
        Ok(Some(kind))
    }

    /// A table (with alias) or a parenthesised subquery (with alias).
    fn table_ref(&mut self) -> PResult<FromItem> {
        if self.kind() == Tok::LParen {
            self.pos += 1;
            let query = self.query()?;
            self.expect(Tok::RParen)?;
            let alias = self.alias()?;
            return Ok(FromItem::Subquery {
                query: Box::new(query),
                alias,
            });
        }
        let name = self.obj_name()?;
        let alias = self.alias()?;
        Ok(FromItem::Table { name, alias })
    }

    /// `e [ASC|DESC] [NULLS FIRST|LAST], ...`
    fn order_items(&mut self) -> PResult<Vec<OrderItem>> {
        let mut items = Vec::new();
        loop {
            let expr = self.expr()?;
            let asc = if self.eat_kw("desc") {
                false
            } else {
                self.eat_kw("asc");
                true
            };
            let nulls_first = if self.eat_kw("nulls") {
                if self.eat_kw("first") {
                    Some(true)
                } else {
                    self.expect_kw("last")?;
                    Some(false)
                }
            } else {
                None
            };
            items.push(OrderItem {
                expr,
                asc,
                nulls_first,
            });
            if !self.eat(Tok::Comma) {
                return Ok(items);
            }
        }
    }

    /// `LIMIT n [OFFSET m]` or `LIMIT m, n` (offset first, as in TDengine and MySQL).
    fn limit_clause(&mut self, kw: &str, offset_kw: &str) -> PResult<Option<Limit>> {
        if !self.eat_kw(kw) {
            return Ok(None);
        }
        let first = self.integer()?;
        if self.eat(Tok::Comma) {
            let n = self.integer()?;
            return Ok(Some(Limit {
                limit: n,
                offset: first,
            }));
        }
        let offset = if self.eat_kw(offset_kw) {
            self.integer()?
        } else {
            0
        };
        Ok(Some(Limit {
            limit: first,
            offset,
        }))
    }
}
