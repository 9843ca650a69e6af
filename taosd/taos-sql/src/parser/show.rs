//! SHOW statements. Forms the AST models become their variant; any other `SHOW ...` becomes
//! `Show::Other` with its text, so the executor can answer "not supported" instead of the
//! user seeing a syntax error for a real TDengine statement.

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;
use common::Code;

impl<'a> Parser<'a> {
    pub(crate) fn show(&mut self) -> PResult<Statement> {
        self.pos += 1;
        if self.at_end() {
            return Err(self.error_here());
        }
        let save = self.pos;
        match self.show_known() {
            Ok(Some(s)) if self.at_end() => return Ok(Statement::Show(s)),
            Err(e) if !e.is(Code::PAR_SYNTAX_ERROR) => return Err(e),
            _ => {}
        }
        // Not a modelled form: keep the text up to the end of the statement.
        self.pos = save;
        let start = self.peek().start as usize;
        let mut end = start;
        while !self.at_end() {
            end = self.advance().end as usize;
        }
        let text = self.src.get(start..end).unwrap_or("").to_string();
        Ok(Statement::Show(Show::Other(text)))
    }

    /// `[db.]` before STABLES / TABLES / VGROUPS / STREAMS.
    fn show_db_prefix(&mut self) -> PResult<Option<String>> {
        if self.peek_at(1).kind == Tok::Dot && matches!(self.kind(), Tok::Ident | Tok::QuotedIdent)
        {
            let db = self.db_name()?;
            self.pos += 1;
            return Ok(Some(db));
        }
        Ok(None)
    }

    fn show_like(&mut self) -> PResult<Option<String>> {
        if self.eat_kw("like") {
            return Ok(Some(self.string()?));
        }
        Ok(None)
    }

    /// `name [FROM db]` or `db.name`.
    fn show_obj_after_from(&mut self) -> PResult<ObjName> {
        self.expect_kw("from")?;
        let mut name = self.obj_name()?;
        if self.eat_kw("from") {
            name.db = Some(self.db_name()?);
        }
        Ok(name)
    }

    fn show_known(&mut self) -> PResult<Option<Show>> {
        let db = self.show_db_prefix()?;
        let t = self.advance();
        if t.kind != Tok::Ident {
            return Ok(None);
        }
        let word = self.text(t).to_ascii_lowercase();
        if db.is_some() && !matches!(word.as_str(), "stables" | "tables" | "vgroups" | "streams") {
            return Ok(None);
        }
        let s = match word.as_str() {
            "databases" => Show::Databases,
            "stables" => Show::Stables {
                db,
                like: self.show_like()?,
            },
            "tables" => Show::Tables {
                db,
                like: self.show_like()?,
                kind: None,
            },
            "normal" | "child" => {
                let kind = if word == "normal" {
                    TableKind::Normal
                } else {
                    TableKind::Child
                };
                let db = self.show_db_prefix()?;
                self.expect_kw("tables")?;
                Show::Tables {
                    db,
                    like: self.show_like()?,
                    kind: Some(kind),
                }
            }
            "create" => {
                if self.eat_kw("database") {
                    Show::CreateDatabase(self.db_name()?)
                } else if self.eat_kw("stable") {
                    Show::CreateStable(self.obj_name()?)
                } else if self.eat_kw("table") {
                    Show::CreateTable(self.obj_name()?)
                } else {
                    return Ok(None);
                }
            }
            "tags" => Show::Tags(self.show_obj_after_from()?),
            "table" if self.is_kw("tags") => {
                self.pos += 1;
                Show::TableTags(self.show_obj_after_from()?)
            }
            "indexes" | "index" => Show::Indexes(self.show_obj_after_from()?),
            "users" => Show::Users,
            "user" if self.eat_kw("privileges") => Show::UserPrivileges,
            "dnodes" => Show::Dnodes,
            "mnodes" => Show::Mnodes,
            "vgroups" => Show::Vgroups(db),
            "cluster" if self.eat_kw("variables") => Show::Variables,
            "cluster" => Show::Cluster,
            "connections" => Show::Connections,
            "queries" => Show::Queries,
            "variables" => Show::Variables,
            "local" if self.eat_kw("variables") => Show::LocalVariables,
            "topics" => Show::Topics,
            "consumers" => Show::Consumers,
            "subscriptions" => Show::Subscriptions,
            "streams" => Show::Streams(db),
            "functions" => Show::Functions,
            "grants" => Show::Grants,
            _ => return Ok(None),
        };
        Ok(Some(s))
    }
}
