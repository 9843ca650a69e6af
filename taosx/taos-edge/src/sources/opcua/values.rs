//! From an OPC-UA value to the flattened fields the mapping reads, the way taosX names them:
//!
//! | field | what |
//! |---|---|
//! | `id` | the identifier without its `i=`/`s=`/`g=`/`b=` prefix, `.` and backticks as `_` |
//! | `node_id` | the full node id (`ns=2;s=Temp1`) |
//! | `ns` | namespace index |
//! | `name`, `BrowseName` | browse name |
//! | `display_name`, `DisplayName` | display name (the browse name when the node has none) |
//! | `description`, `Description` | description (empty when the node has none) |
//! | `path`, `Path` | browse names from the browse root, joined by `/` (`Plant/Line1/Temp`; below the Objects folder when browsing from it); a listed node's browse name |
//! | `type` | lower-case TDengine type of the value (`double`, `int`, `bool`, `varchar`, ...) |
//! | `value` | the value (number, bool or string; arrays and structures as JSON text) |
//! | `quality` | the status code as a number (0 = Good) |
//! | `quality_text` | its name (`Good`, `BadNoCommunication`, ...) |
//! | `source_ts` / `server_ts` / `arrival_ts` | ms since the epoch (taosX's names `origin_ts` and `received_ts` too) |
//!
//! A CSV point list adds its rows' other columns as fields of their points (`stable`, `tbname`,
//! `type`, tags ...), replacing the ones above except the value, quality, timestamps and node
//! id. Their texts can use the fields above: `opc_{type}`, `t_{ns}_{id}`. A `type` from the
//! list converts the value to that type.
//!
//! A missing source timestamp falls back to the server's, and a missing server timestamp to the
//! arrival time, so a `source_ts` timestamp rule never rejects a value for lack of one.

use crate::mapping::Fields;
use opcua::types::{DataValue, Identifier, NodeId, Variant};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What is known of a point before its values arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInfo {
    pub node: NodeId,
    /// Browse name.
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub path: String,
    /// Fields from the point list row, as written there (templates expanded per value).
    pub extra: Vec<(String, String)>,
    /// The fields that do not change from value to value, made on first use (a value then
    /// costs a few small allocations instead of a map of twenty); set up `extra` before.
    pub statics: OnceLock<HashMap<String, Json>>,
}

impl PointInfo {
    fn statics(&self) -> &HashMap<String, Json> {
        self.statics.get_or_init(|| {
            let mut f = HashMap::with_capacity(16);
            f.insert("id".into(), json!(short_id(&self.node)));
            f.insert("node_id".into(), json!(self.node.to_string()));
            f.insert("ns".into(), json!(self.node.namespace));
            f.insert("name".into(), json!(self.name));
            // taosX's tag patterns spell node attributes this way.
            f.insert("BrowseName".into(), json!(self.name));
            f.insert("display_name".into(), json!(self.display_name));
            f.insert("DisplayName".into(), json!(self.display_name));
            f.insert("description".into(), json!(self.description));
            f.insert("Description".into(), json!(self.description));
            f.insert("path".into(), json!(self.path));
            f.insert("Path".into(), json!(self.path));
            for (k, v) in &self.extra {
                if !v.contains('{') {
                    f.insert(k.clone(), json!(v));
                }
            }
            f
        })
    }
}

/// The fields of one value: its own first, then its point's.
#[derive(Debug)]
pub struct ValueFields<'a> {
    own: Vec<(&'a str, Json)>,
    point: &'a HashMap<String, Json>,
}

impl Fields for ValueFields<'_> {
    fn field(&self, name: &str) -> Option<&Json> {
        self.own
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .or_else(|| self.point.get(name))
    }
}

impl std::ops::Index<&str> for ValueFields<'_> {
    type Output = Json;
    fn index(&self, name: &str) -> &Json {
        self.field(name)
            .unwrap_or_else(|| panic!("no field '{name}'"))
    }
}

impl ValueFields<'_> {
    /// All fields as one JSON object (the error archive, the preview).
    pub fn to_json(&self) -> Json {
        let mut m: serde_json::Map<String, Json> = self
            .point
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &self.own {
            m.insert(k.to_string(), v.clone());
        }
        Json::Object(m)
    }
}

/// The identifier part of a node id, as table names want it.
pub fn short_id(n: &NodeId) -> String {
    let raw = match &n.identifier {
        Identifier::Numeric(v) => v.to_string(),
        Identifier::String(s) => s.as_ref().to_string(),
        other => {
            let t = other.to_string();
            t.get(2..).unwrap_or("").to_string()
        }
    };
    raw.replace(['.', '`'], "_")
}

/// Lower-case TDengine type and JSON value of a variant.
pub fn variant_json(v: &Variant) -> (&'static str, Json) {
    match v {
        Variant::Empty => ("null", Json::Null),
        Variant::Boolean(b) => ("bool", json!(b)),
        Variant::SByte(x) => ("tinyint", json!(x)),
        Variant::Byte(x) => ("utinyint", json!(x)),
        Variant::Int16(x) => ("smallint", json!(x)),
        Variant::UInt16(x) => ("usmallint", json!(x)),
        Variant::Int32(x) => ("int", json!(x)),
        Variant::UInt32(x) => ("uint", json!(x)),
        Variant::Int64(x) => ("bigint", json!(x)),
        Variant::UInt64(x) => ("ubigint", json!(x)),
        Variant::Float(x) if x.is_finite() => ("float", json!(x)),
        Variant::Double(x) if x.is_finite() => ("double", json!(x)),
        // NaN and infinities have no JSON number: NULL.
        Variant::Float(_) => ("float", Json::Null),
        Variant::Double(_) => ("double", Json::Null),
        Variant::String(s) => ("varchar", json!(s.as_ref())),
        Variant::DateTime(d) => ("timestamp", json!(d.as_chrono().timestamp_millis())),
        Variant::LocalizedText(t) => ("varchar", json!(t.text.as_ref())),
        Variant::StatusCode(s) => ("uint", json!(s.bits())),
        other => ("varchar", json!(format!("{other:?}"))),
    }
}

/// The fields of one value of `point`.
pub fn fields<'a>(point: &'a PointInfo, dv: &DataValue, arrival_ms: i64) -> ValueFields<'a> {
    let statics = point.statics();
    let (ty, value) = dv
        .value
        .as_ref()
        .map(variant_json)
        .unwrap_or(("null", Json::Null));
    let status = dv.status.unwrap_or(opcua::types::StatusCode::Good);
    let server = dv
        .server_timestamp
        .as_ref()
        .map(|t| t.as_chrono().timestamp_millis())
        .filter(|t| *t > 0)
        .unwrap_or(arrival_ms);
    let source = dv
        .source_timestamp
        .as_ref()
        .map(|t| t.as_chrono().timestamp_millis())
        .filter(|t| *t > 0)
        .unwrap_or(server);
    // A point list's `type` names the type the value is converted to.
    let ty = match statics.get("type") {
        Some(t) => t.clone(),
        None => json!(ty),
    };
    let mut own: Vec<(&'a str, Json)> = Vec::with_capacity(10 + point.extra.len());
    own.extend([
        ("type", ty),
        ("value", value),
        ("quality", json!(status.bits())),
        ("quality_text", json!(status.to_string())),
        ("source_ts", json!(source)),
        ("server_ts", json!(server)),
        ("arrival_ts", json!(arrival_ms)),
        ("origin_ts", json!(source)),
        ("received_ts", json!(arrival_ms)),
    ]);
    let mut f = ValueFields {
        own,
        point: statics,
    };
    // Point-list texts with `{...}` are expanded per value (`opc_{type}`); `type` first, as the
    // others may name it.
    let mut templated: Vec<&(String, String)> = point
        .extra
        .iter()
        .filter(|(_, v)| v.contains('{'))
        .collect();
    templated.sort_by_key(|(k, _)| k != "type");
    for (k, v) in templated {
        let text = expand_text(v, &f);
        f.own.retain(|(n, _)| n != k);
        f.own.insert(0, (k.as_str(), json!(text)));
    }
    f
}

/// `{field}` in a point-list text replaced by the field's value (unknown names stay as they are).
fn expand_text(t: &str, fields: &ValueFields) -> String {
    if !t.contains('{') {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len() + 16);
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        match fields.field(name) {
            Some(Json::String(s)) => out.push_str(s),
            Some(Json::Null) | None => out.push_str(&rest[open..=open + close]),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_value() {
        let p = PointInfo {
            node: "ns=2;s=Line1.Temp".parse().unwrap(),
            name: "Temp".into(),
            display_name: "Line 1 temperature".into(),
            description: "°C at the inlet".into(),
            path: "Line1/Temp".into(),
            extra: Vec::new(),
            statics: OnceLock::new(),
        };
        let mut dv = DataValue::new_now(Variant::Double(21.5));
        dv.source_timestamp = None;
        let f = fields(&p, &dv, 7);
        assert_eq!(f["id"], json!("Line1_Temp"));
        assert_eq!(f["node_id"], json!("ns=2;s=Line1.Temp"));
        assert_eq!(
            (f["ns"].clone(), f["type"].clone()),
            (json!(2), json!("double"))
        );
        assert_eq!(f["value"], json!(21.5));
        assert_eq!(
            (&f["BrowseName"], &f["DisplayName"], &f["Path"]),
            (
                &json!("Temp"),
                &json!("Line 1 temperature"),
                &json!("Line1/Temp")
            )
        );
        assert_eq!(f["description"], json!("°C at the inlet"));
        assert_eq!(f["quality"], json!(0));
        assert_eq!(
            (&f["origin_ts"], &f["received_ts"]),
            (&f["source_ts"], &json!(7))
        );
        assert_eq!(
            f["source_ts"], f["server_ts"],
            "source falls back to server"
        );
        let n: NodeId = "ns=3;i=1005".parse().unwrap();
        assert_eq!(short_id(&n), "1005");
        assert_eq!(variant_json(&Variant::Int32(-3)), ("int", json!(-3)));
        assert_eq!(variant_json(&Variant::Double(f64::NAN)).1, Json::Null);
        let listed = PointInfo {
            extra: vec![
                ("stable".into(), "opc_{type}".into()),
                ("tbname".into(), "t_{ns}_{id}".into()),
                ("type".into(), "float".into()),
                ("location".into(), "hall {x}".into()),
            ],
            statics: OnceLock::new(),
            ..p.clone()
        };
        let f = fields(&listed, &dv, 7);
        let s = |k: &str| f[k].as_str().unwrap().to_string();
        assert_eq!(
            (s("stable"), s("tbname"), s("type"), s("location")),
            (
                "opc_float".into(),
                "t_2_Line1_Temp".into(),
                "float".into(),
                "hall {x}".into()
            )
        );
        let empty = DataValue::default();
        let f = fields(&p, &empty, 42);
        assert_eq!(
            (f["value"].clone(), f["source_ts"].clone()),
            (Json::Null, json!(42))
        );
    }
}
