//! taosc: the client library every program uses to talk to taosd over the native protocol
//! ([`common::wire`]), and the `taos` shell built on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), common::TaosError> {
//! let conn = taosc::Connection::connect(taosc::ConnectOptions::from_dsn("taos://root:taosdata@localhost:6030/power")?).await?;
//! let rows = conn.query("select ts, current from meters limit 3").await?.collect_rows().await?;
//! # Ok(()) }
//! ```

pub mod blocking;
pub mod connection;
pub mod options;
pub mod schemaless;
pub mod shell;
pub mod tmq;

/// An in-process fake taosd for tests (also for other crates' tests, with feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod fake_server;
#[cfg(test)]
mod tests;

pub use common::wire::{WriteRequest, WriteTable, WriteUsing};
pub use common::{Block, Code, Field, Precision, TaosError, Value};
pub use connection::{Connection, QueryResult, ResultSet};
pub use options::{ConnectOptions, DEFAULT_PORT};
pub use tmq::Consumer;
