//! CREATE / ALTER / DROP of databases, super tables, tables and child tables, and the database
//! maintenance statements (FLUSH, COMPACT, TRIM).

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;

/// Database options the dialect knows; anything else is a syntax error at the option name.
const DB_OPTIONS: &[&str] = &[
    "buffer",
    "cachemodel",
    "cachesize",
    "comp",
    "dnodes",
    "duration",
    "encrypt_algorithm",
    "keep",
    "keep_time_offset",
    "maxrows",
    "minrows",
    "pages",
    "pagesize",
    "precision",
    "replica",
    "retentions",
    "single_stable",
    "ss_chunkpages",
    "ss_compact",
    "ss_keeplocal",
    "s3_chunkpages",
    "s3_compact",
    "s3_keeplocal",
    "stt_trigger",
    "strict",
    "table_prefix",
    "table_suffix",
    "tsdb_pagesize",
    "vgroups",
    "wal_fsync_period",
    "wal_level",
    "wal_retention_period",
    "wal_retention_size",
    "wal_roll_period",
    "wal_segment_size",
];

/// Table options (CREATE STABLE/TABLE, child tables, ALTER TABLE).
const TABLE_OPTIONS: &[&str] = &[
    "comment",
    "delete_mark",
    "keep",
    "max_delay",
    "rollup",
    "sma",
    "ttl",
    "virtual",
    "watermark",
];

impl<'a> Parser<'a> {
    pub(crate) fn create(&mut self) -> PResult<Statement> {
        self.pos += 1;
        let t = self.peek();
        let what = if t.kind == Tok::Ident {
            self.text(t).to_ascii_lowercase()
        } else {
            String::new()
        };
        match what.as_str() {
            "database" => {
                self.pos += 1;
                let if_not_exists = self.if_not_exists()?;
                let name = self.db_name()?;
                let options = self.db_options()?;
                Ok(Statement::CreateDatabase {
                    if_not_exists,
                    name,
                    options,
                })
            }
            "stable" => {
                self.pos += 1;
                let if_not_exists = self.if_not_exists()?;
                let name = self.obj_name()?;
                let columns = self.column_defs()?;
                self.expect_kw("tags")?;
                let tags = self.column_defs()?;
                let options = self.table_options()?;
                Ok(Statement::CreateStable {
                    if_not_exists,
                    name,
                    columns,
                    tags,
                    options,
                })
            }
            "table" => {
                self.pos += 1;
                self.create_table()
            }
            "user" => {
                self.pos += 1;
                self.create_user()
            }
            "topic" => {
                self.pos += 1;
                self.create_topic()
            }
            _ => Err(self.error_here()),
        }
    }

    /// After `CREATE TABLE`: a normal table, a super table (with TAGS) or child tables.
    fn create_table(&mut self) -> PResult<Statement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.obj_name()?;
        if self.is_kw("using") {
            let mut subs = vec![self.sub_table(if_not_exists, name)?];
            while !self.at_end() {
                let ine = self.if_not_exists()?;
                let name = self.obj_name()?;
                subs.push(self.sub_table(ine, name)?);
            }
            return Ok(Statement::CreateSubTables(subs));
        }
        let columns = self.column_defs()?;
        if self.eat_kw("tags") {
            let tags = self.column_defs()?;
            let options = self.table_options()?;
            return Ok(Statement::CreateStable {
                if_not_exists,
                name,
                columns,
                tags,
                options,
            });
        }
        let options = self.table_options()?;
        Ok(Statement::CreateTable {
            if_not_exists,
            name,
            columns,
            options,
        })
    }

    /// `USING stb [(tag, ...)] TAGS (v, ...) [options]` of one child table.
    fn sub_table(&mut self, if_not_exists: bool, name: ObjName) -> PResult<CreateSubTable> {
        let u = self.using_clause()?;
        Ok(CreateSubTable {
            if_not_exists,
            name,
            stable: u.stable,
            tag_names: u.tag_names,
            tags: u.tags,
            options: u.options,
        })
    }

    /// `USING stb [(tag, ...)] TAGS (v, ...) [TTL n] [COMMENT 'c']`, shared with INSERT.
    pub(crate) fn using_clause(&mut self) -> PResult<Using> {
        self.expect_kw("using")?;
        let stable = self.obj_name()?;
        let tag_names = if self.kind() == Tok::LParen {
            Some(self.name_list()?)
        } else {
            None
        };
        self.expect_kw("tags")?;
        self.expect(Tok::LParen)?;
        let mut tags = vec![self.value_expr()?];
        while self.eat(Tok::Comma) {
            tags.push(self.value_expr()?);
        }
        self.expect(Tok::RParen)?;
        let options = self.table_options()?;
        Ok(Using {
            stable,
            tag_names,
            tags,
            options,
        })
    }

    /// `(name type [options], ...)`
    fn column_defs(&mut self) -> PResult<Vec<ColumnDef>> {
        self.expect(Tok::LParen)?;
        let mut cols = vec![self.column_def()?];
        while self.eat(Tok::Comma) {
            cols.push(self.column_def()?);
        }
        self.expect(Tok::RParen)?;
        Ok(cols)
    }

    /// `name type [PRIMARY KEY] [COMPOSITE KEY] [ENCODE 'x'] [COMPRESS 'y'] [LEVEL 'z'] [COMMENT 'c']`
    fn column_def(&mut self) -> PResult<ColumnDef> {
        let name = self.column_name()?;
        let ty = self.data_type()?;
        let mut options = Vec::new();
        loop {
            if (self.is_kw("primary") || self.is_kw("composite")) && self.is_kw_at(1, "key") {
                let key = format!("{} key", self.text(self.peek()).to_ascii_lowercase());
                self.pos += 2;
                options.push((key, String::new()));
            } else if self.is_kw("encode")
                || self.is_kw("compress")
                || self.is_kw("level")
                || self.is_kw("comment")
            {
                let key = self.text(self.peek()).to_ascii_lowercase();
                self.pos += 1;
                options.push((key, self.string()?));
            } else {
                return Ok(ColumnDef { name, ty, options });
            }
        }
    }

    /// Table options until none follows.
    fn table_options(&mut self) -> PResult<Vec<TableOption>> {
        let mut opts = Vec::new();
        while let Some(name) = self.option_name(TABLE_OPTIONS) {
            let value = if self.kind() == Tok::LParen {
                // SMA(a, b), ROLLUP(avg)
                self.pos += 1;
                let mut list = Vec::new();
                loop {
                    list.push(OptValue::Ident(self.column_name()?));
                    if !self.eat(Tok::Comma) {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
                OptValue::List(list)
            } else {
                self.opt_value()?
            };
            opts.push(TableOption { name, value });
        }
        Ok(opts)
    }

    /// If the cursor is at one of `names`, consume it and return it in lower case.
    fn option_name(&mut self, names: &[&str]) -> Option<String> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return None;
        }
        let w = self.text(t);
        let found = names.iter().find(|n| n.eq_ignore_ascii_case(w))?;
        self.pos += 1;
        Some((*found).to_string())
    }

    /// One option value, or a comma list of them (`KEEP 10d,20d,30d`).
    fn opt_value(&mut self) -> PResult<OptValue> {
        let first = self.opt_scalar()?;
        if self.kind() != Tok::Comma {
            return Ok(first);
        }
        let mut list = vec![first];
        while self.eat(Tok::Comma) {
            list.push(self.opt_scalar()?);
        }
        Ok(OptValue::List(list))
    }

    fn opt_scalar(&mut self) -> PResult<OptValue> {
        let t = self.peek();
        let v = match t.kind {
            Tok::Int | Tok::Hex | Tok::Minus => return self.integer_or_float(),
            Tok::Float => super::parse_float(self.text(t)).map(OptValue::Float),
            Tok::Duration => super::parse_duration(self.text(t)).map(OptValue::Duration),
            Tok::Str | Tok::StrEsc => Some(OptValue::Str(self.string_value(t))),
            Tok::Ident => Some(OptValue::Ident(self.text(t).to_ascii_lowercase())),
            _ => None,
        };
        match v {
            Some(v) => {
                self.pos += 1;
                Ok(v)
            }
            None => Err(self.error_here()),
        }
    }

    /// `-1`, `3650`, `-0.5`
    fn integer_or_float(&mut self) -> PResult<OptValue> {
        let neg = self.kind() == Tok::Minus;
        let t = self.peek_at(neg as usize);
        if t.kind == Tok::Float {
            if let Some(f) = super::parse_float(self.text(t)) {
                self.pos += 1 + neg as usize;
                return Ok(OptValue::Float(if neg { -f } else { f }));
            }
        }
        if neg && t.kind == Tok::Duration {
            if let Some(mut d) = super::parse_duration(self.text(t)) {
                self.pos += 2;
                d.value = -d.value;
                return Ok(OptValue::Duration(d));
            }
        }
        Ok(OptValue::Int(self.integer()?))
    }

    /// Database options until the end of the statement.
    fn db_options(&mut self) -> PResult<Vec<DbOption>> {
        let mut opts = Vec::new();
        while !self.at_end() {
            let Some(name) = self.option_name(DB_OPTIONS) else {
                return Err(self.error_here());
            };
            let value = self.opt_value()?;
            opts.push(DbOption { name, value });
        }
        Ok(opts)
    }

    pub(crate) fn drop_stmt(&mut self) -> PResult<Statement> {
        self.pos += 1;
        let t = self.peek();
        let what = if t.kind == Tok::Ident {
            self.text(t).to_ascii_lowercase()
        } else {
            String::new()
        };
        match what.as_str() {
            "database" => {
                self.pos += 1;
                let if_exists = self.if_exists()?;
                Ok(Statement::DropDatabase {
                    if_exists,
                    name: self.db_name()?,
                })
            }
            "table" => {
                self.pos += 1;
                let mut targets = Vec::new();
                loop {
                    let if_exists = self.if_exists()?;
                    targets.push(DropTarget {
                        if_exists,
                        name: self.obj_name()?,
                    });
                    if !self.eat(Tok::Comma) {
                        return Ok(Statement::DropTables(targets));
                    }
                }
            }
            "stable" => {
                self.pos += 1;
                let if_exists = self.if_exists()?;
                Ok(Statement::DropStable {
                    if_exists,
                    name: self.obj_name()?,
                })
            }
            "user" => {
                self.pos += 1;
                Ok(Statement::DropUser {
                    name: self.user_name()?,
                })
            }
            "topic" => {
                self.pos += 1;
                self.drop_topic()
            }
            "consumer" if self.is_kw_at(1, "group") => {
                self.pos += 2;
                self.drop_consumer_group()
            }
            _ => Err(self.error_here()),
        }
    }

    pub(crate) fn alter(&mut self) -> PResult<Statement> {
        self.pos += 1;
        let t = self.peek();
        let what = if t.kind == Tok::Ident {
            self.text(t).to_ascii_lowercase()
        } else {
            String::new()
        };
        match what.as_str() {
            "database" => {
                self.pos += 1;
                let name = self.db_name()?;
                if self.at_end() {
                    return Err(self.error_here());
                }
                let options = self.db_options()?;
                Ok(Statement::AlterDatabase { name, options })
            }
            "table" | "stable" => {
                self.pos += 1;
                let stable = what == "stable";
                let name = self.obj_name()?;
                let action = self.alter_table_action()?;
                Ok(Statement::AlterTable {
                    stable,
                    name,
                    action,
                })
            }
            "user" => {
                self.pos += 1;
                self.alter_user()
            }
            _ => Err(self.error_here()),
        }
    }

    fn alter_table_action(&mut self) -> PResult<AlterTableAction> {
        let t = self.peek();
        let verb = if t.kind == Tok::Ident {
            self.text(t).to_ascii_lowercase()
        } else {
            String::new()
        };
        let target = self.peek_at(1);
        let is_tag = self.tok_is(target, "tag");
        let is_col = self.tok_is(target, "column");
        match verb.as_str() {
            "add" | "drop" | "modify" | "rename" if is_tag || is_col => {
                self.pos += 2;
                Ok(match (verb.as_str(), is_tag) {
                    ("add", false) => AlterTableAction::AddColumn(self.column_def()?),
                    ("add", true) => AlterTableAction::AddTag(self.column_def()?),
                    ("drop", false) => AlterTableAction::DropColumn(self.column_name()?),
                    ("drop", true) => AlterTableAction::DropTag(self.column_name()?),
                    ("modify", false) => AlterTableAction::ModifyColumn(self.column_def()?),
                    ("modify", true) => AlterTableAction::ModifyTag(self.column_def()?),
                    (_, tag) => {
                        let from = self.column_name()?;
                        self.eat_kw("to");
                        let to = self.column_name()?;
                        if tag {
                            AlterTableAction::RenameTag { from, to }
                        } else {
                            AlterTableAction::RenameColumn { from, to }
                        }
                    }
                })
            }
            "set" if is_tag => {
                self.pos += 2;
                let mut sets = Vec::new();
                loop {
                    let name = self.column_name()?;
                    self.expect(Tok::Eq)?;
                    sets.push((name, self.expr()?));
                    if !self.eat(Tok::Comma) {
                        break;
                    }
                    // `SET TAG a=1, TAG b=2` is accepted as well as `SET TAG a=1, b=2`.
                    self.eat_kw("tag");
                }
                Ok(AlterTableAction::SetTags(sets))
            }
            _ => {
                let opts = self.table_options()?;
                if opts.is_empty() {
                    return Err(self.error_here());
                }
                Ok(AlterTableAction::Options(opts))
            }
        }
    }

    /// FLUSH DATABASE db / COMPACT DATABASE db [START WITH e] [END WITH e] / TRIM DATABASE db [WAL]
    pub(crate) fn db_maintenance(&mut self) -> PResult<Statement> {
        let verb = self.advance();
        self.expect_kw("database")?;
        let name = self.db_name()?;
        if self.tok_is(verb, "flush") {
            return Ok(Statement::FlushDatabase(name));
        }
        if self.tok_is(verb, "trim") {
            let wal = self.eat_kw("wal");
            return Ok(Statement::TrimDatabase { name, wal });
        }
        let start = if self.is_kw("start") && self.is_kw_at(1, "with") {
            self.pos += 2;
            Some(self.expr()?)
        } else {
            None
        };
        let end = if self.is_kw("end") && self.is_kw_at(1, "with") {
            self.pos += 2;
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Statement::CompactDatabase { name, start, end })
    }
}
