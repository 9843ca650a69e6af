//! Users and privileges: CREATE/ALTER/DROP USER, GRANT/REVOKE READ|WRITE|ALL ON db.*.
//! Only superusers manage users; a user may change their own password.

use crate::coordinator::Coordinator;
use crate::exec::{Output, Session};
use taos_mnode::catalog::{now_ms, UserInfo};
use taos_mnode::{MnodeRequest, UserChange};
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

impl Coordinator {
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
        let mut u = UserInfo::new(name, password, false, now_ms());
        u.sysinfo = sysinfo.map(|v| v != 0).unwrap_or(true);
        u.createdb = createdb.map(|v| v != 0).unwrap_or(false);
        self.mnode.propose(MnodeRequest::CreateUser(u))?;
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
        let change = match change {
            AlterUserAction::Pass(p) => {
                let salt = self
                    .mnode
                    .read(|c| c.users.get(name).map(|u| u.salt.clone()))
                    .ok_or_else(|| {
                        TaosError::new(Code::INVALID_USER, format!("Invalid user: {name}"))
                    })?;
                check_password(&p)?;
                UserChange::PassHash(taos_mnode::catalog::hash_password(&salt, &p))
            }
            AlterUserAction::Enable(v) => UserChange::Enable(v != 0),
            AlterUserAction::Sysinfo(v) => UserChange::Sysinfo(v != 0),
            AlterUserAction::Createdb(v) => UserChange::Createdb(v != 0),
        };
        self.mnode.propose(MnodeRequest::AlterUser {
            name: name.to_string(),
            change,
        })?;
        Ok(Output::Affected(0))
    }

    pub fn drop_user(&self, s: &Session, name: &str) -> TaosResult<Output> {
        superuser_only(s)?;
        self.mnode.propose(MnodeRequest::DropUser {
            name: name.to_string(),
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
        self.mnode.propose(MnodeRequest::Grant {
            user: user.to_string(),
            db,
            read: r,
            write: w,
            grant,
        })?;
        Ok(Output::Affected(0))
    }
}
