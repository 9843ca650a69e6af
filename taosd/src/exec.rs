//! Statement execution on a dnode: parse, check privileges, run against the mnode catalog and
//! the vnodes. One file per statement family.

pub mod alter;
pub mod scan_router;
pub mod ddl;
pub mod eval;
pub mod insert;
pub mod select;
pub mod show;
pub mod user;

use crate::coordinator::Coordinator;
use common::{Code, Field, Precision, SessionTz, TaosError, TaosResult, Value};
use std::sync::Arc;
use taos_sql::ast::{ObjName, Statement};

/// Per-connection state.
#[derive(Debug, Clone)]
pub struct Session {
    pub conn_id: u64,
    pub user: String,
    pub superuser: bool,
    pub db: Option<String>,
    pub tz: SessionTz,
    /// Client application name (perf_connections).
    pub app: String,
}

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    Affected(i64),
    Rows(ResultRows),
}

#[derive(Debug, Default)]
pub struct ResultRows {
    pub fields: Vec<Field>,
    pub precision: Precision,
    pub rows: Vec<Vec<Value>>,
}

impl ResultRows {
    pub fn new(fields: Vec<Field>) -> ResultRows {
        ResultRows {
            fields,
            precision: Precision::Ms,
            rows: Vec::new(),
        }
    }
}

impl Session {
    /// The database a name refers to: its own qualifier or the session's current one.
    pub fn db_of<'a>(&'a self, name: &'a ObjName) -> TaosResult<&'a str> {
        name.db
            .as_deref()
            .or(self.db.as_deref())
            .ok_or_else(|| TaosError::of(Code::PAR_DB_NOT_SPECIFIED))
    }
}

impl Coordinator {
    pub async fn execute(self: &Arc<Self>, s: &mut Session, sql: &str) -> TaosResult<Output> {
        let stmts = taos_sql::parse(sql)?;
        let mut last = Output::Affected(0);
        for st in stmts {
            last = self.execute_stmt(s, st).await?;
        }
        Ok(last)
    }

    pub async fn execute_stmt(
        self: &Arc<Self>,
        s: &mut Session,
        st: Statement,
    ) -> TaosResult<Output> {
        use Statement as S;
        match st {
            S::CreateDatabase {
                if_not_exists,
                name,
                options,
            } => {
                self.create_database(s, if_not_exists, &name, &options)
                    .await
            }
            S::DropDatabase { if_exists, name } => self.drop_database(s, if_exists, &name).await,
            S::AlterDatabase { name, options } => self.alter_database(s, &name, &options).await,
            S::UseDatabase(name) => {
                self.mnode.read(|c| c.db(&name).map(|_| ()))?;
                self.check_privilege(s, &name, false)?;
                s.db = Some(name);
                Ok(Output::Affected(0))
            }
            S::FlushDatabase(name) => self.flush_database(&name).await,
            S::CompactDatabase { name, .. } => self.compact_database(&name).await,
            S::TrimDatabase { name, .. } => self.trim_database(&name).await,
            S::CreateStable {
                if_not_exists,
                name,
                columns,
                tags,
                options,
            } => {
                self.create_stable(s, if_not_exists, &name, &columns, &tags, &options)
                    .await
            }
            S::DropStable { if_exists, name } => self.drop_stable(s, if_exists, &name).await,
            S::CreateTable {
                if_not_exists,
                name,
                columns,
                options,
            } => {
                self.create_normal_table(s, if_not_exists, &name, &columns, &options)
                    .await
            }
            S::CreateSubTables(list) => self.create_sub_tables(s, list).await,
            S::DropTables(list) => self.drop_tables(s, list).await,
            S::Describe(name) => self.describe(s, &name).await,
            S::Insert(ins) => self.insert(s, ins).await,
            S::Select(q) => self.select(s, q).await,
            S::Show(show) => self.show(s, show).await,
            S::CreateUser {
                name,
                password,
                sysinfo,
                createdb,
            } => self.create_user(s, &name, &password, sysinfo, createdb),
            S::AlterUser { name, change } => self.alter_user(s, &name, change),
            S::DropUser { name } => self.drop_user(s, &name),
            S::Grant {
                privileges,
                on,
                user,
            } => self.grant(s, &privileges, &on, &user, true),
            S::Revoke {
                privileges,
                on,
                user,
            } => self.grant(s, &privileges, &on, &user, false),
            S::AlterTable {
                stable,
                name,
                action,
            } => self.alter_table(s, stable, &name, action).await,
            S::Delete { table, where_ } => self.delete(s, &table, where_.as_ref()).await,
            S::CreateTopic {
                if_not_exists,
                name,
                with_meta,
                source,
                sql,
            } => {
                self.create_topic(s, if_not_exists, &name, with_meta, &source, &sql)
                    .await
            }
            S::DropTopic {
                if_exists,
                force,
                name,
            } => self.drop_topic(s, if_exists, force, &name).await,
            S::DropConsumerGroup {
                if_exists,
                force,
                group,
                topic,
            } => {
                self.drop_consumer_group(if_exists, force, &group, &topic)
                    .await
            }
            S::KillQuery(id) => {
                self.conns.kill_query(&id, &s.user, s.superuser)?;
                Ok(Output::Affected(0))
            }
            S::KillConnection(id) => {
                self.conns.kill_connection(id, &s.user, s.superuser)?;
                Ok(Output::Affected(0))
            }
        }
    }

    /// Read needs READ (or WRITE implies nothing about READ); superusers pass.
    pub fn check_privilege(&self, s: &Session, db: &str, write: bool) -> TaosResult<()> {
        if s.superuser {
            return Ok(());
        }
        let ok = self.mnode.read(|c| {
            c.users
                .get(&s.user)
                .map(|u| {
                    let p = u
                        .privileges
                        .get(db)
                        .or_else(|| u.privileges.get("*"))
                        .copied()
                        .unwrap_or((false, false));
                    if write {
                        p.1
                    } else {
                        p.0
                    }
                })
                .unwrap_or(false)
        });
        if ok {
            Ok(())
        } else {
            Err(TaosError::of(Code::NO_RIGHTS))
        }
    }
}
