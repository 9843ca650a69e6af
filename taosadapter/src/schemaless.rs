//! Schemaless writes over HTTP: InfluxDB v1 line protocol and OpenTSDB (PROTOCOLS.md §3).
//!
//! Parsing, schema evolution and writing belong to [`taosc::schemaless`]; this module only picks
//! the connection, makes sure the database is there, and keeps one schema cache for the whole
//! adapter (shared by every pooled connection through [`Writer::with_connection`]).

pub mod influx;
pub mod opentsdb;

use crate::pool::{PoolError, PoolKey};
use crate::App;
use common::{Code, TaosError};
use std::sync::Arc;
use taosc::schemaless::{SmlError, TsPrecision, WriteSummary, Writer};

/// What kind of body to write.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    Influx(TsPrecision),
    OpenTsdbJson,
    OpenTsdbTelnet,
}

impl Protocol {
    /// Label for `taosadapter_rows_written_total`.
    pub fn metric(self) -> &'static str {
        match self {
            Protocol::Influx(_) => "influxdb",
            Protocol::OpenTsdbJson => "opentsdb_json",
            Protocol::OpenTsdbTelnet => "opentsdb_telnet",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A bad line or a TDengine error while writing.
    #[error(transparent)]
    Sml(#[from] SmlError),
}

/// Write `body` into `db` as `user`. With `smlAutoCreateDB`, a missing database is created
/// (precision ns, like the real adapter) before writing.
pub async fn write(
    app: &Arc<App>,
    user: &str,
    password: &str,
    db: &str,
    body: &[u8],
    protocol: Protocol,
) -> Result<WriteSummary, WriteError> {
    let key = PoolKey::new(user, password).with_db(Some(db));
    let mut conn = app.pool.get(&key).await?;
    // The pool ran `USE db` on a new connection and ignored its error: a connection without
    // the database means the database is not usable (usually: it does not exist).
    if conn.current_db().as_deref() != Some(db) {
        let quoted = format!("`{}`", db.replace('`', "``"));
        let missing = match conn.exec(&format!("USE {quoted}")).await {
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if let Some(e) = missing {
            if !(app.config.sml_auto_create_db && e.is(Code::DB_NOT_EXIST)) {
                conn.discard();
                return Err(SmlError::from(e).into());
            }
            tracing::info!(db = %db, "creating database for schemaless write (smlAutoCreateDB)");
            let created = conn
                .exec(&format!(
                    "CREATE DATABASE IF NOT EXISTS {quoted} PRECISION 'ns'"
                ))
                .await;
            let used = match created {
                Ok(_) => conn.exec(&format!("USE {quoted}")).await,
                Err(e) => Err(e),
            };
            if let Err(e) = used {
                conn.discard();
                return Err(SmlError::from(e).into());
            }
        }
    }
    let writer = app.sml_writer(conn.conn().clone());
    let result = match protocol {
        Protocol::Influx(p) => writer.write_influx(db, body, p).await,
        Protocol::OpenTsdbJson => writer.write_opentsdb_json(db, body).await,
        Protocol::OpenTsdbTelnet => writer.write_opentsdb_telnet(db, body).await,
    };
    match &result {
        Ok(s) => app
            .metrics
            .rows_written(protocol.metric(), s.rows.max(0) as u64),
        Err(e) if e.line.is_none() => {
            tracing::debug!(db = %db, error = %e, "schemaless write failed");
        }
        Err(_) => {}
    }
    Ok(result?)
}

/// The writer prototype holding the shared schema cache.
pub fn new_writer(proto: &std::sync::OnceLock<Writer>, conn: taosc::Connection) -> Writer {
    match proto.get() {
        Some(w) => w.with_connection(conn),
        None => {
            let w = Writer::new(conn.clone());
            let _ = proto.set(w);
            proto
                .get()
                .map(|p| p.with_connection(conn.clone()))
                .unwrap_or_else(|| Writer::new(conn))
        }
    }
}

/// The message to show for a failed write: the line and reason, without the hex code prefix.
pub fn message(e: &WriteError) -> String {
    match e {
        WriteError::Sml(s) => s.to_string(),
        WriteError::Pool(PoolError::Taos(t)) => t.message.clone(),
        WriteError::Pool(p) => p.to_string(),
    }
}

/// Whether an error is the client's fault (bad line, bad value) rather than the server's.
pub fn is_client_error(e: &SmlError) -> bool {
    e.line.is_some()
}

/// The TDengine error inside a write failure, for messages.
pub fn taos_error(e: &WriteError) -> Option<&TaosError> {
    match e {
        WriteError::Sml(s) => Some(&s.error),
        WriteError::Pool(PoolError::Taos(t)) => Some(t),
        WriteError::Pool(PoolError::Timeout) => None,
    }
}
