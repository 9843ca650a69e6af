//! Users and privileges: CREATE/ALTER/DROP USER, GRANT/REVOKE READ|WRITE|ALL ON db.*.
//! Only superusers manage users; a user may change their own password.

use crate::dnode::Dnode;
use crate::exec::{Output, Session};
use crate::mnode::catalog::{now_ms, UserInfo};
use common::{Code, TaosError, TaosResult};
use taos_sql::ast::{AlterUserAction, Privilege, PrivilegeTarget};

fn check_password(p: &str) -> TaosResult<()> {
    if p.is_empty() {
        return Err(TaosError::of(Code::PAR_PASSWD_EMPTY));
    }
    if p.len() < 8 {
        return Err(TaosError::new(
            Code::PAR_PASSWD_EMPTY,
            "Password too short or empty: at least 8 characters",
        ));
    }
    if p.len() > 255 {
        return Err(TaosError::new(
            Code::PAR_NAME_OR_PASSWD_TOO_LONG,
            "Value is too long: a password has at most 255 characters",
        ));
    }
    Ok(())
}

fn superuser_only(s: &Session) -> TaosResult<()> {
    if s.superuser {
        Ok(())
    } else {
        Err(TaosError::of(Code::NO_RIGHTS))
    }
}

impl Dnode {
    pub fn create_user(
        &self,
        s: &Session,
        name: &str,
        password: &str,
        sysinfo: Option<i64>,
        createdb: Option<i64>,
    ) -> TaosResult<Output> {
        superuser_only(s)?;
        check_password(password)?;
        if name.is_empty() || name.len() > 23 {
            return Err(TaosError::new(
                Code::PAR_NAME_OR_PASSWD_TOO_LONG,
                "Name or password too long: user name is at most 23 bytes",
            ));
        }
        self.mnode.mutate(|c| {
            if c.users.contains_key(name) {
                return Err(TaosError::of(Code::USER_ALREADY_EXIST));
            }
            let mut u = UserInfo::new(name, password, false, now_ms());
            u.sysinfo = sysinfo.map(|v| v != 0).unwrap_or(true);
            u.createdb = createdb.map(|v| v != 0).unwrap_or(false);
            c.users.insert(name.to_string(), u);
            Ok(())
        })?;
        Ok(Output::Affected(0))
    }

    pub fn alter_user(
        &self,
        s: &Session,
        name: &str,
        change: AlterUserAction,
    ) -> TaosResult<Output> {
        let own_password = matches!(change, AlterUserAction::Pass(_)) && s.user == name;
        if !own_password {
            superuser_only(s)?;
        }
        self.mnode.mutate(|c| {
            let u = c.users.get_mut(name).ok_or_else(|| {
                TaosError::new(Code::INVALID_USER, format!("Invalid user: {name}"))
            })?;
            match &change {
                AlterUserAction::Pass(p) => {
                    check_password(p)?;
                    u.pass_hash = crate::mnode::catalog::hash_password(&u.salt, p);
                }
                AlterUserAction::Enable(v) => {
                    if u.superuser && *v == 0 {
                        return Err(TaosError::new(
                            Code::NO_RIGHTS,
                            "the root user cannot be disabled",
                        ));
                    }
                    u.enable = *v != 0;
                }
                AlterUserAction::Sysinfo(v) => u.sysinfo = *v != 0,
                AlterUserAction::Createdb(v) => u.createdb = *v != 0,
            }
            Ok(())
        })?;
        Ok(Output::Affected(0))
    }

    pub fn drop_user(&self, s: &Session, name: &str) -> TaosResult<Output> {
        superuser_only(s)?;
        self.mnode.mutate(|c| {
            match c.users.get(name) {
                None => {
                    return Err(TaosError::new(
                        Code::INVALID_USER,
                        format!("Invalid user: {name}"),
                    ))
                }
                Some(u) if u.superuser => {
                    return Err(TaosError::new(
                        Code::NO_RIGHTS,
                        "the root user cannot be dropped",
                    ))
                }
                _ => {}
            }
            c.users.remove(name);
            Ok(())
        })?;
        Ok(Output::Affected(0))
    }

    /// GRANT (`grant` true) or REVOKE privileges on `db.*` (or `*.*`); table-level targets are
    /// treated as their database.
    pub fn grant(
        &self,
        s: &Session,
        privileges: &[Privilege],
        on: &PrivilegeTarget,
        user: &str,
        grant: bool,
    ) -> TaosResult<Output> {
        superuser_only(s)?;
        let db = on.db.clone().unwrap_or_else(|| "*".into());
        if db != "*" {
            self.mnode.read(|c| c.db(&db).map(|_| ()))?;
        }
        let (r, w) = privileges.iter().fold((false, false), |(r, w), p| match p {
            Privilege::Read => (true, w),
            Privilege::Write => (r, true),
            Privilege::All => (true, true),
        });
        self.mnode.mutate(|c| {
            let u = c.users.get_mut(user).ok_or_else(|| {
                TaosError::new(Code::INVALID_USER, format!("Invalid user: {user}"))
            })?;
            let entry = u.privileges.entry(db.clone()).or_insert((false, false));
            if grant {
                entry.0 |= r;
                entry.1 |= w;
            } else {
                entry.0 &= !r;
                entry.1 &= !w;
            }
            if *entry == (false, false) {
                u.privileges.remove(&db);
            }
            Ok(())
        })?;
        Ok(Output::Affected(0))
    }
}
