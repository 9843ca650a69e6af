//! Shared vocabulary of the platform. Depends on nothing of ours (see STYLE.md "Layering").

pub mod block;
pub mod config;
pub mod error;
pub mod fs;
pub mod hash;
pub mod schema;
pub mod time;
pub mod tmq;
pub mod types;
pub mod value;
pub mod wire;

pub use block::{Block, Column, Field};
pub use error::{Code, TaosError, TaosResult};
pub use schema::ColumnDef;
pub use time::{Precision, SessionTz};
pub use types::DataType;
pub use value::Value;

/// The version string we report; 3.3.x so that clients enable their newer protocol paths.
pub const SERVER_VERSION: &str = "3.3.6.0";
