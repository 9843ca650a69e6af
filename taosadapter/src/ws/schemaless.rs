//! Schemaless `insert` over WebSocket (PROTOCOLS.md §4.4), through [`taosc::schemaless::Writer`]
//! with the adapter-wide schema cache. The target is the session's current database.

use super::conn::{parse_args, Session};
use super::{Reply, WsError, WsResult};
use serde_json::Value as Json;
use taosc::schemaless::TsPrecision;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct InsertArgs {
    protocol: i64,
    precision: Option<String>,
    data: String,
    db: Option<String>,
}

/// Map the client's precision string: `""` (not configured) / `h` / `m` / `s` / `ms` / `u` /
/// `ns`. Not configured means nanoseconds, as for InfluxDB.
pub fn precision(p: &str) -> Option<TsPrecision> {
    match p {
        "" => Some(TsPrecision::Ns),
        "us" | "μ" | "µ" => Some(TsPrecision::Us),
        p => TsPrecision::parse(p),
    }
}

pub async fn insert(s: &mut Session, args: &Json) -> WsResult<Reply> {
    let a: InsertArgs = parse_args(args)?;
    let conn = s.conn()?;
    let db = a
        .db
        .filter(|d| !d.is_empty())
        .or_else(|| conn.current_db())
        .ok_or_else(|| WsError::from(common::TaosError::of(common::Code::PAR_DB_NOT_SPECIFIED)))?;
    let p = a.precision.unwrap_or_default();
    let prec = precision(&p).ok_or_else(|| WsError::new(format!("unknown precision {p}")))?;
    let writer = s.app.sml_writer(conn);
    let data = a.data.as_bytes();
    let r = match a.protocol {
        1 => writer.write_influx(&db, data, prec).await,
        2 => writer.write_opentsdb_telnet(&db, data).await,
        3 => writer.write_opentsdb_json(&db, data).await,
        0 => return Err(WsError::new("schemaless write protocol is null")),
        p => return Err(WsError::new(format!("unknown schemaless protocol {p}"))),
    };
    match r {
        Ok(summary) => {
            s.app
                .metrics
                .rows_written("websocket", summary.rows.max(0) as u64);
            Ok(fields![
                ("affected_rows", summary.rows),
                ("total_rows", summary.lines)
            ])
        }
        Err(e) => Err(WsError {
            code: e.code() as u32,
            message: e.to_string(),
        }),
    }
}
