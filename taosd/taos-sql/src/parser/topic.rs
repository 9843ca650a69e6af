//! Data subscription statements: `CREATE TOPIC`, `DROP TOPIC`, `DROP CONSUMER GROUP`.

use super::{PResult, Parser};
use crate::ast::*;

/// Topic and consumer group names share the table-name limit.
const MAX_TOPIC_NAME: usize = 192;

impl<'a> Parser<'a> {
    /// After `CREATE TOPIC`:
    /// `[IF NOT EXISTS] t [WITH META] AS {DATABASE db | STABLE stb [WHERE ..] | SELECT ..}`.
    pub(crate) fn create_topic(&mut self) -> PResult<Statement> {
        let stmt_start = self
            .pos
            .checked_sub(2)
            .and_then(|p| self.toks.get(p))
            .map(|t| t.start as usize)
            .unwrap_or(0);
        let if_not_exists = self.if_not_exists()?;
        let name = self.ident_max(MAX_TOPIC_NAME)?;
        let with_meta = if self.is_kw("with") && self.is_kw_at(1, "meta") {
            self.pos += 2;
            true
        } else {
            false
        };
        self.expect_kw("as")?;
        let source = if self.eat_kw("database") {
            TopicSource::Database(self.db_name()?)
        } else if self.eat_kw("stable") {
            let name = self.obj_name()?;
            let where_ = if self.eat_kw("where") {
                Some(self.expr()?)
            } else {
                None
            };
            TopicSource::Stable { name, where_ }
        } else if self.is_kw("select") && !with_meta {
            let start = self.peek().start as usize;
            let query = self.query()?;
            let end = self.tokens_end();
            let sql = self.src.get(start..end).unwrap_or("").trim().to_string();
            TopicSource::Query {
                query: Box::new(query),
                sql,
            }
        } else {
            return Err(self.error_here());
        };
        let sql = self
            .src
            .get(stmt_start..self.tokens_end())
            .unwrap_or("")
            .to_string();
        Ok(Statement::CreateTopic {
            if_not_exists,
            name,
            with_meta,
            source,
            sql,
        })
    }

    /// After `DROP TOPIC`: `[IF EXISTS] [FORCE] t`.
    pub(crate) fn drop_topic(&mut self) -> PResult<Statement> {
        let if_exists = self.if_exists()?;
        // `FORCE` is a modifier only when a name follows it (a topic may be called `force`).
        let force = self.is_kw("force")
            && !matches!(
                self.peek_at(1).kind,
                crate::lexer::Tok::Eof | crate::lexer::Tok::Semi
            );
        if force {
            self.pos += 1;
        }
        let name = self.ident_max(MAX_TOPIC_NAME)?;
        Ok(Statement::DropTopic {
            if_exists,
            force,
            name,
        })
    }

    /// After `DROP CONSUMER GROUP`: `[IF EXISTS] [FORCE] cg ON topic`.
    pub(crate) fn drop_consumer_group(&mut self) -> PResult<Statement> {
        let if_exists = self.if_exists()?;
        let force = self.is_kw("force") && !self.is_kw_at(1, "on");
        if force {
            self.pos += 1;
        }
        let group = self.ident_max(MAX_TOPIC_NAME)?;
        self.expect_kw("on")?;
        let topic = self.ident_max(MAX_TOPIC_NAME)?;
        Ok(Statement::DropConsumerGroup {
            if_exists,
            force,
            group,
            topic,
        })
    }

    /// Byte offset where the last consumed token ends.
    fn tokens_end(&self) -> usize {
        match self.pos.checked_sub(1).and_then(|p| self.toks.get(p)) {
            Some(t) => t.end as usize,
            None => 0,
        }
    }
}
