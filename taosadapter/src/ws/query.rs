//! `query` (JSON) and binary query (action 6) (PROTOCOLS.md §4.3).

use super::block::user_length;
use super::conn::{parse_args, Session};
use super::{fetch, Reply, WsError, WsResult};
use common::{Field, Precision};
use serde_json::{json, Map, Value as Json};
use taosc::QueryResult;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct QueryArgs {
    sql: String,
}

/// `{"action":"query","args":{"req_id":..,"sql":".."}}`.
pub async fn json_query(s: &mut Session, args: &Json) -> WsResult<Reply> {
    let a: QueryArgs = parse_args(args)?;
    run(s, &a.sql).await
}

/// Binary action 6: `[u16 version=1][u32 sql_len][sql]`.
pub async fn binary_query(s: &mut Session, payload: &[u8]) -> WsResult<Reply> {
    let sql = parse_binary_sql(payload)?;
    run(s, sql).await
}

/// The SQL of a binary query payload (after the 24-byte header).
pub fn parse_binary_sql(payload: &[u8]) -> WsResult<&str> {
    if payload.len() < 7 {
        return Err(WsError::new("message length is too short"));
    }
    let version = u16::from_le_bytes([payload[0], payload[1]]);
    if version != 1 {
        return Err(WsError::new(format!(
            "unknown binary query version:{version}"
        )));
    }
    let len = u32::from_le_bytes([payload[2], payload[3], payload[4], payload[5]]) as usize;
    let rest = &payload[6..];
    let Some(sql) = rest.get(..len) else {
        return Err(WsError::new(format!(
            "uncompleted message, sql length:{len}, remainMessageLength:{}",
            rest.len()
        )));
    };
    std::str::from_utf8(sql).map_err(|_| WsError::new("sql is not valid UTF-8"))
}

/// Run a statement; a result set is registered under a new result id.
pub async fn run(s: &mut Session, sql: &str) -> WsResult<Reply> {
    let conn = s.conn()?;
    let r = conn.query(sql).await?;
    Ok(Reply::Json(register(s, r)))
}

/// Register a query result (if it has rows) and describe it as the query reply fields.
pub fn register(s: &mut Session, r: QueryResult) -> Map<String, Json> {
    match r {
        QueryResult::Affected(n) => {
            let mut m = Map::new();
            m.insert("id".into(), json!(0));
            m.insert("is_update".into(), json!(true));
            m.insert("affected_rows".into(), json!(n));
            m.insert("fields_count".into(), json!(0));
            for k in [
                "fields_names",
                "fields_types",
                "fields_lengths",
                "fields_precisions",
                "fields_scales",
            ] {
                m.insert(k.into(), Json::Null);
            }
            m.insert("precision".into(), json!(0));
            m
        }
        QueryResult::Rows(rs) => {
            let id = s.next_result_id();
            let mut m = describe(rs.fields(), rs.precision());
            m.insert("id".into(), json!(id));
            m.insert("is_update".into(), json!(false));
            m.insert("affected_rows".into(), json!(0));
            s.results.insert(id, fetch::Entry::new(id, rs));
            m
        }
    }
}

/// `fields_count`, `fields_names`, `fields_types`, `fields_lengths`, `precision`,
/// `fields_precisions`, `fields_scales`.
pub fn describe(fields: &[Field], precision: Precision) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("fields_count".into(), json!(fields.len()));
    m.insert(
        "fields_names".into(),
        json!(fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()),
    );
    m.insert(
        "fields_types".into(),
        json!(fields.iter().map(|f| f.ty.id()).collect::<Vec<_>>()),
    );
    m.insert(
        "fields_lengths".into(),
        json!(fields.iter().map(|f| user_length(f.ty)).collect::<Vec<_>>()),
    );
    m.insert("precision".into(), json!(precision.id()));
    m.insert("fields_precisions".into(), json!(vec![0; fields.len()]));
    m.insert("fields_scales".into(), json!(vec![0; fields.len()]));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sql_framing() {
        let mut p = vec![1, 0];
        p.extend_from_slice(&8u32.to_le_bytes());
        p.extend_from_slice(b"select 1");
        assert_eq!(parse_binary_sql(&p).unwrap(), "select 1");
        assert!(parse_binary_sql(&p[..10])
            .unwrap_err()
            .message
            .starts_with("uncompleted message"));
        p[0] = 2;
        assert_eq!(
            parse_binary_sql(&p).unwrap_err().message,
            "unknown binary query version:2"
        );
        assert_eq!(
            parse_binary_sql(&[1]).unwrap_err().message,
            "message length is too short"
        );
    }
}
