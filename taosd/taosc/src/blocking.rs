//! A synchronous face on [`crate::Connection`] for the CLI, scripts and tests: each connection
//! drives its own current-thread tokio runtime.

use crate::options::ConnectOptions;
use common::time::Precision;
use common::{Block, Field, TaosError, Value};
use std::sync::Arc;
use tokio::runtime::Runtime;

fn runtime() -> Result<Arc<Runtime>, TaosError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| TaosError::internal(format!("cannot start runtime: {e}")))
}

/// Blocking connection. Must not be used from inside an async runtime.
#[derive(Clone)]
pub struct Connection {
    rt: Arc<Runtime>,
    conn: crate::Connection,
}

impl Connection {
    pub fn connect(opts: ConnectOptions) -> Result<Connection, TaosError> {
        let rt = runtime()?;
        let conn = rt.block_on(crate::Connection::connect(opts))?;
        Ok(Connection { rt, conn })
    }

    pub fn query(&self, sql: &str) -> Result<QueryResult, TaosError> {
        let inner = self.rt.block_on(self.conn.query(sql))?;
        Ok(QueryResult {
            rt: self.rt.clone(),
            inner,
        })
    }

    pub fn exec(&self, sql: &str) -> Result<i64, TaosError> {
        self.rt.block_on(self.conn.exec(sql))
    }

    /// See [`crate::Connection::write`].
    pub fn write(&self, req: common::wire::WriteRequest) -> Result<i64, TaosError> {
        self.rt.block_on(self.conn.write(req))
    }

    pub fn ping(&self) -> Result<(), TaosError> {
        self.rt.block_on(self.conn.ping())
    }

    pub fn current_db(&self) -> Option<String> {
        self.conn.current_db()
    }

    pub fn server_version(&self) -> String {
        self.conn.server_version()
    }

    pub fn options(&self) -> &ConnectOptions {
        self.conn.options()
    }

    /// The async connection underneath (shares the session).
    pub fn as_async(&self) -> &crate::Connection {
        &self.conn
    }
}

/// Blocking [`crate::QueryResult`].
pub struct QueryResult {
    rt: Arc<Runtime>,
    inner: crate::QueryResult,
}

impl QueryResult {
    pub fn affected_rows(&self) -> i64 {
        self.inner.affected_rows()
    }

    pub fn fields(&self) -> &[Field] {
        self.inner.fields()
    }

    pub fn precision(&self) -> Precision {
        self.inner.precision()
    }

    pub fn has_result_set(&self) -> bool {
        self.inner.has_result_set()
    }

    pub fn next_block(&mut self) -> Result<Option<Block>, TaosError> {
        self.rt.block_on(self.inner.next_block())
    }

    pub fn collect_rows(self) -> Result<Vec<Vec<Value>>, TaosError> {
        self.rt.block_on(self.inner.collect_rows())
    }
}
