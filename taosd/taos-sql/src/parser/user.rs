//! Users, privileges and KILL.

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::Tok;
use common::{Code, TaosError};

/// TSDB_USER_LEN - 1
const MAX_USER_NAME: usize = 23;
/// TSDB_PASSWORD_LEN bound on what a user may type.
const MAX_PASSWORD: usize = 255;

impl<'a> Parser<'a> {
    /// A user name: an identifier of at most 23 bytes.
    pub(crate) fn user_name(&mut self) -> PResult<String> {
        let name = self.ident_max(usize::MAX)?;
        if name.len() > MAX_USER_NAME {
            return Err(TaosError::of(Code::PAR_NAME_OR_PASSWD_TOO_LONG));
        }
        Ok(name)
    }

    fn password(&mut self) -> PResult<String> {
        let p = self.string()?;
        if p.is_empty() {
            return Err(TaosError::of(Code::PAR_PASSWD_EMPTY));
        }
        if p.len() > MAX_PASSWORD {
            return Err(TaosError::of(Code::PAR_NAME_OR_PASSWD_TOO_LONG));
        }
        Ok(p)
    }

    /// After `CREATE USER`: `u PASS 'p' [SYSINFO 0|1] [CREATEDB 0|1]`
    pub(crate) fn create_user(&mut self) -> PResult<Statement> {
        let name = self.user_name()?;
        self.expect_kw("pass")?;
        let password = self.password()?;
        let (mut sysinfo, mut createdb) = (None, None);
        loop {
            if sysinfo.is_none() && self.eat_kw("sysinfo") {
                sysinfo = Some(self.integer()?);
            } else if createdb.is_none() && self.eat_kw("createdb") {
                createdb = Some(self.integer()?);
            } else {
                return Ok(Statement::CreateUser {
                    name,
                    password,
                    sysinfo,
                    createdb,
                });
            }
        }
    }

    /// After `ALTER USER`: `u PASS 'p' | ENABLE n | SYSINFO n | CREATEDB n`
    pub(crate) fn alter_user(&mut self) -> PResult<Statement> {
        let name = self.user_name()?;
        let change = if self.eat_kw("pass") {
            AlterUserAction::Pass(self.password()?)
        } else if self.eat_kw("enable") {
            AlterUserAction::Enable(self.integer()?)
        } else if self.eat_kw("sysinfo") {
            AlterUserAction::Sysinfo(self.integer()?)
        } else if self.eat_kw("createdb") {
            AlterUserAction::Createdb(self.integer()?)
        } else {
            return Err(self.error_here());
        };
        Ok(Statement::AlterUser { name, change })
    }

    /// `GRANT privs ON target TO u` / `REVOKE privs ON target FROM u`
    pub(crate) fn grant(&mut self) -> PResult<Statement> {
        let verb = self.advance();
        let grant = self.tok_is(verb, "grant");
        let mut privileges = Vec::new();
        loop {
            let p = if self.eat_kw("read") {
                Privilege::Read
            } else if self.eat_kw("write") {
                Privilege::Write
            } else if self.eat_kw("all") {
                self.eat_kw("privileges");
                Privilege::All
            } else {
                return Err(self.error_here());
            };
            privileges.push(p);
            if !self.eat(Tok::Comma) {
                break;
            }
        }
        self.expect_kw("on")?;
        let on = self.privilege_target()?;
        self.expect_kw(if grant { "to" } else { "from" })?;
        let user = self.user_name()?;
        Ok(if grant {
            Statement::Grant {
                privileges,
                on,
                user,
            }
        } else {
            Statement::Revoke {
                privileges,
                on,
                user,
            }
        })
    }

    /// `*.*`, `db.*`, `db.tb`, or a bare `db` (= `db.*`).
    fn privilege_target(&mut self) -> PResult<PrivilegeTarget> {
        if self.eat(Tok::Star) {
            self.expect(Tok::Dot)?;
            self.expect(Tok::Star)?;
            return Ok(PrivilegeTarget {
                db: None,
                table: None,
            });
        }
        let db = self.db_name()?;
        if !self.eat(Tok::Dot) {
            return Ok(PrivilegeTarget {
                db: Some(db),
                table: None,
            });
        }
        if self.eat(Tok::Star) {
            return Ok(PrivilegeTarget {
                db: Some(db),
                table: None,
            });
        }
        Ok(PrivilegeTarget {
            db: Some(db),
            table: Some(self.table_name()?),
        })
    }

    /// `KILL QUERY 'id'` / `KILL CONNECTION n`
    pub(crate) fn kill(&mut self) -> PResult<Statement> {
        self.pos += 1;
        if self.eat_kw("query") {
            return Ok(Statement::KillQuery(self.string()?));
        }
        self.expect_kw("connection")?;
        Ok(Statement::KillConnection(self.integer()?))
    }
}
