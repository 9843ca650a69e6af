//! The OPC-UA source definition and its DSN.
//!
//! `opcua://[user[:password]@]host:port[/path]?options` (also `opc+ua://` and
//! `opc.tcp://`). The definition is checked when the task is created; files it names (a CSV
//! point list, certificates) are read where the task runs, which may be an agent.
//!
//! | option | meaning |
//! |---|---|
//! | `failover=h2:4840/path,opc.tcp://h3:4840` | more endpoints, tried in turn when one fails |
//! | `connect_timeout=10s`, `request_timeout=10s` | as in taosX (default 10 s each) |
//! | `security_mode=None\|Sign\|SignAndEncrypt` | message security (default None) |
//! | `security_policy=None\|Basic256Sha256\|...` | default Basic256Sha256 when the mode is not None |
//! | `auth=anonymous\|username\|certificate` | default username when a user is given |
//! | `username=`, `password=` | instead of the DSN's user info |
//! | `user_cert=`, `user_key=` | X.509 identity (default: the client's own certificate) |
//! | `pki=/dir` | client certificate store (default beside the task directories) |
//! | `trust_server=false` | only talk to servers whose certificate is in `<pki>/trusted` |
//! | `nodes=ns=2;s=Temp1,ns=2;i=5` | the points, by node id |
//! | `points=/path.csv` | the points from a CSV point list (`point_id`, `enable`; other columns become fields of the point) |
//! | `root=`, `namespaces=2,3`, `node_class=Variable`, `id_regex=`, `name_regex=`, `depth=` | browse filters |
//! | `mode=subscribe\|poll` | subscription (default) or polling (`observe` is an alias of poll) |
//! | `interval=1s` | publishing interval (subscribe) or poll period |
//! | `sampling=500ms`, `queue_size=10` | monitored item sampling interval and queue |
//! | `deadband=0.5`, `deadband_type=absolute\|percent` | data change filter |
//! | `backlog=500000` | values held while the sink is slow (see the module `opcua`) |
//! | `point_update=none\|append\|update`, `rescan=600s` | taosX's dynamic point update: resolve the points again every `rescan` and add new ones (append) or also drop vanished ones (update) without a restart |

use crate::dsn::{parse_duration_ms, unescape};
use serde::{Deserialize, Serialize};

/// taosX's dynamic point update: what a periodic rescan of the point selection changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PointUpdate {
    /// The points resolved when the session starts stay as they are.
    #[default]
    None,
    /// New points are collected too.
    Append,
    /// New points are added and points gone from the selection dropped.
    Update,
}

/// How values are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// A subscription with one monitored item per point: the server reports changes.
    Subscribe,
    /// Read every point each interval (measured from the end of the previous read).
    Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityMode {
    None,
    Sign,
    SignAndEncrypt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Auth {
    Anonymous,
    UserName {
        user: String,
        password: String,
    },
    /// X.509 user identity; `None` paths mean the client's own (channel) certificate.
    Certificate {
        cert: Option<String>,
        key: Option<String>,
    },
}

/// Which points to collect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Points {
    /// Node ids as written (`ns=2;s=Temp1`).
    Nodes(Vec<String>),
    /// A CSV point list file, read where the task runs.
    File(String),
    Browse(BrowseFilter),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowseFilter {
    /// Where browsing starts (default the Objects folder, `i=85`).
    pub root: String,
    /// Namespace indexes a point must be in; empty = any but 0 (the server's own nodes).
    pub namespaces: Vec<u16>,
    /// Node classes to keep (names as in the standard: Variable, Object, ...).
    pub node_classes: Vec<String>,
    pub id_regex: Option<String>,
    pub name_regex: Option<String>,
    /// How many levels below the root are visited.
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpcUaSource {
    /// `opc.tcp://` URLs: the first, then the failover endpoints.
    pub endpoints: Vec<String>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub security_mode: SecurityMode,
    /// `None`, `Basic256Sha256` (the default with security) or another policy the stack knows.
    pub security_policy: String,
    pub auth: Auth,
    pub pki: Option<String>,
    pub trust_server: bool,
    pub points: Points,
    pub mode: Mode,
    pub interval_ms: u64,
    pub sampling_ms: u64,
    pub queue_size: u32,
    /// Values held between collection and writing (tasks stored before it existed: default).
    #[serde(default = "default_backlog")]
    pub backlog: usize,
    #[serde(default)]
    pub point_update: PointUpdate,
    /// Rescan period of `point_update` (taosX's default 600 s).
    #[serde(default = "default_rescan")]
    pub rescan_ms: u64,
    pub deadband: f64,
    /// 1 = absolute, 2 = percent (the standard's DeadbandType values).
    pub deadband_type: u32,
}

fn default_backlog() -> usize {
    super::BACKLOG
}

fn default_rescan() -> u64 {
    600_000
}

/// Does this DSN belong to the OPC-UA source?
pub fn is_opcua_dsn(dsn: &str) -> bool {
    ["opcua://", "opc+ua://", "opc.tcp://"]
        .iter()
        .any(|p| dsn.starts_with(p))
}

/// A host:port[/path] or full URL as an `opc.tcp://` URL.
fn endpoint_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("opc.tcp://")
        .or_else(|| s.strip_prefix("opcua://"))
        .unwrap_or(s);
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid OPC-UA port '{p}' in '{s}'"))?,
        ),
        None => (hostport, 4840),
    };
    if host.is_empty() || host.contains(['@', '?', ' ']) {
        return Err(format!("invalid OPC-UA endpoint host in '{s}'"));
    }
    Ok(format!("opc.tcp://{host}:{port}{path}"))
}

fn flag(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("option {k}: '{v}' is not true or false")),
    }
}

impl OpcUaSource {
    /// Parse an OPC-UA source DSN (see the module documentation).
    pub fn parse(dsn: &str) -> Result<OpcUaSource, String> {
        let (_, rest) = dsn
            .split_once("://")
            .ok_or_else(|| format!("'{dsn}' is not an OPC-UA DSN"))?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, target) = match main.split_once('/') {
            // The user info can only be before the first '/'.
            Some((auth, _)) if auth.contains('@') => {
                let (u, h) = main.rsplit_once('@').unwrap_or(("", main));
                (Some(u), h)
            }
            None if main.contains('@') => {
                let (u, h) = main.rsplit_once('@').unwrap_or(("", main));
                (Some(u), h)
            }
            _ => (None, main),
        };
        let mut user = None;
        let mut password = None;
        if let Some(u) = userinfo {
            match u.split_once(':') {
                Some((a, b)) => {
                    user = Some(unescape(a));
                    password = Some(unescape(b));
                }
                None => user = Some(unescape(u)),
            }
        }
        let mut s = OpcUaSource {
            endpoints: vec![endpoint_url(target)?],
            connect_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
            security_mode: SecurityMode::None,
            security_policy: String::new(),
            auth: Auth::Anonymous,
            pki: None,
            trust_server: true,
            points: Points::Nodes(Vec::new()),
            mode: Mode::Subscribe,
            interval_ms: 0,
            sampling_ms: 1000,
            queue_size: 10,
            backlog: default_backlog(),
            point_update: PointUpdate::None,
            rescan_ms: default_rescan(),
            deadband: 0.0,
            deadband_type: 1,
        };
        let mut auth_kind: Option<String> = None;
        let (mut user_cert, mut user_key) = (None, None);
        let mut nodes: Vec<String> = Vec::new();
        let mut file = None;
        let mut browse = BrowseFilter {
            root: "i=85".into(),
            namespaces: Vec::new(),
            node_classes: vec!["Variable".into()],
            id_regex: None,
            name_regex: None,
            depth: 10,
        };
        let mut browse_given = false;
        for kv in query.split('&').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = unescape(v);
            match k {
                "failover" | "endpoints" => {
                    for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                        s.endpoints.push(endpoint_url(e)?);
                    }
                }
                "connect_timeout" => s.connect_timeout_ms = parse_duration_ms(&v)?.max(1),
                "request_timeout" => s.request_timeout_ms = parse_duration_ms(&v)?.max(1),
                "security_mode" => {
                    s.security_mode = match v.to_ascii_lowercase().as_str() {
                        "none" => SecurityMode::None,
                        "sign" => SecurityMode::Sign,
                        "signandencrypt" | "sign_and_encrypt" => SecurityMode::SignAndEncrypt,
                        _ => {
                            return Err(format!(
                                "security_mode '{v}' (None, Sign or SignAndEncrypt)"
                            ))
                        }
                    }
                }
                "security_policy" => {
                    let p: opcua::crypto::SecurityPolicy =
                        v.parse().unwrap_or(opcua::crypto::SecurityPolicy::Unknown);
                    if p == opcua::crypto::SecurityPolicy::Unknown {
                        return Err(format!(
                            "security_policy '{v}' is not supported (None, Basic256Sha256, Aes128Sha256RsaOaep, Aes256Sha256RsaPss, Basic256, Basic128Rsa15)"
                        ));
                    }
                    s.security_policy = p.to_str().to_string();
                }
                "auth" => auth_kind = Some(v.to_ascii_lowercase()),
                "username" | "user" => user = Some(v),
                "password" => password = Some(v),
                "user_cert" => user_cert = Some(v),
                "user_key" => user_key = Some(v),
                "pki" => s.pki = Some(v),
                "trust_server" => s.trust_server = flag(k, &v)?,
                "nodes" | "node" => nodes.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                ),
                "points" => file = Some(v),
                "root" => {
                    browse.root = v;
                    browse_given = true;
                }
                "namespaces" | "ns" => {
                    for n in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        browse
                            .namespaces
                            .push(n.parse().map_err(|_| format!("invalid namespace '{n}'"))?);
                    }
                    browse_given = true;
                }
                "node_class" | "node_classes" => {
                    browse.node_classes.clear();
                    for c in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        browse.node_classes.push(node_class_name(c)?.to_string());
                    }
                    browse_given = true;
                }
                "id_regex" => {
                    regex::Regex::new(&v).map_err(|e| format!("id_regex: {e}"))?;
                    browse.id_regex = Some(v);
                    browse_given = true;
                }
                "name_regex" => {
                    regex::Regex::new(&v).map_err(|e| format!("name_regex: {e}"))?;
                    browse.name_regex = Some(v);
                    browse_given = true;
                }
                "depth" => {
                    browse.depth = v
                        .parse()
                        .ok()
                        .filter(|d| (1..=64).contains(d))
                        .ok_or_else(|| format!("depth '{v}' (1 to 64)"))?;
                    browse_given = true;
                }
                "mode" => {
                    s.mode = match v.to_ascii_lowercase().as_str() {
                        "subscribe" | "subscription" => Mode::Subscribe,
                        "poll" | "observe" | "polling" => Mode::Poll,
                        _ => return Err(format!("mode '{v}' (subscribe or poll)")),
                    }
                }
                "interval" => s.interval_ms = parse_duration_ms(&v)?.max(1),
                "sampling" | "sampling_interval" => s.sampling_ms = parse_duration_ms(&v)?,
                "queue_size" => {
                    s.queue_size = v
                        .parse()
                        .ok()
                        .filter(|q| *q >= 1)
                        .ok_or_else(|| format!("invalid queue_size '{v}'"))?
                }
                "point_update" | "update_mode" => {
                    s.point_update = match v.to_ascii_lowercase().as_str() {
                        "none" => PointUpdate::None,
                        "append" => PointUpdate::Append,
                        "update" => PointUpdate::Update,
                        _ => return Err(format!("point_update '{v}' (none, append or update)")),
                    }
                }
                // Shorter than taosX's 60 s minimum is allowed: a small server, a test.
                "rescan" | "rescan_interval" => s.rescan_ms = parse_duration_ms(&v)?.max(1000),
                "backlog" => {
                    s.backlog = v
                        .parse()
                        .ok()
                        .filter(|b| (1..=50_000_000).contains(b))
                        .ok_or_else(|| format!("invalid backlog '{v}' (1 to 50000000 values)"))?
                }
                "deadband" => {
                    s.deadband = v
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d >= 0.0)
                        .ok_or_else(|| format!("invalid deadband '{v}'"))?
                }
                "deadband_type" => {
                    s.deadband_type = match v.to_ascii_lowercase().as_str() {
                        "absolute" | "abs" => 1,
                        "percent" | "pct" => 2,
                        _ => return Err(format!("deadband_type '{v}' (absolute or percent)")),
                    }
                }
                other => return Err(format!("unknown OPC-UA option '{other}'")),
            }
        }
        // Points: exactly one way of choosing them.
        let ways = [!nodes.is_empty(), file.is_some(), browse_given]
            .iter()
            .filter(|b| **b)
            .count();
        if ways > 1 {
            return Err(
                "choose points one way: nodes=, points= (a CSV file) or browse filters".into(),
            );
        }
        s.points = if !nodes.is_empty() {
            for n in &nodes {
                check_node_id(n)?;
            }
            Points::Nodes(nodes)
        } else if let Some(f) = file {
            Points::File(f)
        } else {
            check_node_id(&browse.root)?;
            Points::Browse(browse)
        };
        // Security: a policy goes with the mode.
        if s.security_policy.is_empty() {
            s.security_policy = if s.security_mode == SecurityMode::None {
                "None".into()
            } else {
                "Basic256Sha256".into()
            };
        }
        if (s.security_mode == SecurityMode::None) != (s.security_policy == "None") {
            return Err(format!(
                "security policy {} does not go with mode {:?} (None goes only with None)",
                s.security_policy, s.security_mode
            ));
        }
        s.auth = match auth_kind.as_deref() {
            None if user.is_some() => Auth::UserName {
                user: user.unwrap_or_default(),
                password: password.unwrap_or_default(),
            },
            None | Some("anonymous") => Auth::Anonymous,
            Some("username" | "password" | "user") => Auth::UserName {
                user: user
                    .ok_or("auth=username needs a user (opcua://user:pass@host or username=)")?,
                password: password.unwrap_or_default(),
            },
            Some("certificate" | "cert" | "x509") => {
                if user_cert.is_some() != user_key.is_some() {
                    return Err("user_cert and user_key go together".into());
                }
                Auth::Certificate {
                    cert: user_cert,
                    key: user_key,
                }
            }
            Some(o) => return Err(format!("auth '{o}' (anonymous, username or certificate)")),
        };
        if matches!(s.auth, Auth::Certificate { .. }) && s.security_mode == SecurityMode::None {
            // The identity token is signed with the channel's nonce: it needs a secure channel.
            return Err(
                "certificate authentication needs security_mode Sign or SignAndEncrypt".into(),
            );
        }
        if s.interval_ms == 0 {
            s.interval_ms = match s.mode {
                Mode::Subscribe => 1000,
                Mode::Poll => 10_000,
            };
        }
        Ok(s)
    }
}

/// The standard spelling of a node class name.
pub fn node_class_name(c: &str) -> Result<&'static str, String> {
    Ok(match c.to_ascii_lowercase().as_str() {
        "variable" => "Variable",
        "object" => "Object",
        "method" => "Method",
        "objecttype" => "ObjectType",
        "variabletype" => "VariableType",
        "referencetype" => "ReferenceType",
        "datatype" => "DataType",
        "view" => "View",
        _ => return Err(format!("unknown node class '{c}'")),
    })
}

/// A node id the OPC-UA stack can parse (`ns=2;s=Temp1`, `i=85`, `ns=3;g=...`).
pub fn check_node_id(n: &str) -> Result<(), String> {
    n.parse::<opcua::types::NodeId>()
        .map(|_| ())
        .map_err(|_| format!("invalid node id '{n}' (e.g. ns=2;s=Temp1 or ns=2;i=5)"))
}

/// The points of a CSV point list (taosX's format): the `point_id` column (required), rows with
/// `enable` 0 skipped, every other column a field of its point for the mapping (`stable`,
/// `tbname`, `type`, `tag::VARCHAR(32)::location` as `location`). UTF-8 with or without BOM, at
/// least one data row.
pub fn read_point_list(text: &str) -> Result<Vec<ListedPoint>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().ok_or("the point list is empty")?);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let id_col = col("point_id").ok_or("the point list has no point_id column")?;
    let enable_col = col("enable");
    // Every other column is a field of its points: `tag::TYPE::name` under `name`.
    let field_cols: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != id_col && Some(*i) != enable_col)
        .map(|(i, h)| {
            let h = h.trim();
            let name = match h.split("::").collect::<Vec<_>>()[..] {
                [t, _, name] if t.eq_ignore_ascii_case("tag") => name.trim().to_string(),
                _ => h.to_ascii_lowercase(),
            };
            (i, name)
        })
        .filter(|(_, n)| !n.is_empty() && !PROTECTED_FIELDS.contains(&n.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines.enumerate() {
        let f = split_csv(line);
        let id = f.get(id_col).map(|s| s.trim()).unwrap_or("");
        if id.is_empty() {
            return Err(format!("point list line {}: point_id is empty", i + 2));
        }
        if let Some(c) = enable_col {
            if f.get(c).map(|s| s.trim()) == Some("0") {
                continue;
            }
        }
        check_node_id(id).map_err(|e| format!("point list line {}: {e}", i + 2))?;
        if !seen.insert(id.to_string()) {
            return Err(format!(
                "point list line {}: point_id {id} is listed twice",
                i + 2
            ));
        }
        let fields = field_cols
            .iter()
            .filter_map(|(c, name)| {
                let v = f.get(*c)?.trim();
                (!v.is_empty()).then(|| (name.clone(), v.to_string()))
            })
            .collect();
        out.push(ListedPoint {
            id: id.to_string(),
            fields,
        });
    }
    if out.is_empty() {
        return Err("the point list has no enabled data row".into());
    }
    Ok(out)
}

/// Fields a point list cannot set: they describe the value itself.
const PROTECTED_FIELDS: [&str; 9] = [
    "value",
    "quality",
    "quality_text",
    "source_ts",
    "server_ts",
    "arrival_ts",
    "origin_ts",
    "received_ts",
    "node_id",
];

/// One enabled row of a CSV point list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPoint {
    pub id: String,
    /// The row's other columns (`stable`, `tbname`, `type`, tags ...) as (field, text); texts
    /// may use `{id}`, `{ns}`, `{type}` and the point's other fields.
    pub fields: Vec<(String, String)>,
}

/// One CSV line with `"` quoting (node ids contain `;` and `=`, rarely `,`).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns() {
        let s = OpcUaSource::parse(
            "opcua://op%40x:p%26w@10.0.0.5:4841/OPCUA/Sim?failover=10.0.0.6:4841/OPCUA/Sim&nodes=ns=2;s=Temp1,ns=2;i=5&security_mode=SignAndEncrypt&mode=poll&interval=1s&connect_timeout=3s",
        )
        .unwrap();
        assert_eq!(
            s.endpoints,
            vec![
                "opc.tcp://10.0.0.5:4841/OPCUA/Sim".to_string(),
                "opc.tcp://10.0.0.6:4841/OPCUA/Sim".to_string()
            ]
        );
        assert_eq!(
            s.auth,
            Auth::UserName {
                user: "op@x".into(),
                password: "p&w".into()
            }
        );
        assert_eq!(s.security_policy, "Basic256Sha256");
        assert_eq!(
            (s.mode, s.interval_ms, s.connect_timeout_ms),
            (Mode::Poll, 1000, 3000)
        );
        assert_eq!(
            s.points,
            Points::Nodes(vec!["ns=2;s=Temp1".into(), "ns=2;i=5".into()])
        );
        let s = OpcUaSource::parse(
            "opc.tcp://h:4840?root=ns=2;s=Plant&name_regex=^v1&sampling=200ms&deadband=0.5",
        )
        .unwrap();
        let Points::Browse(b) = &s.points else {
            panic!("not browse")
        };
        assert_eq!(
            (b.root.as_str(), b.name_regex.as_deref()),
            ("ns=2;s=Plant", Some("^v1"))
        );
        assert_eq!((s.sampling_ms, s.deadband, s.interval_ms), (200, 0.5, 1000));
        assert_eq!(s.auth, Auth::Anonymous);
        let s = OpcUaSource::parse("opcua://h").unwrap();
        assert_eq!(s.endpoints, vec!["opc.tcp://h:4840".to_string()]);
        assert!(matches!(s.points, Points::Browse(_)));
        for bad in [
            "opcua://h:0",
            "opcua://h?bogus=1",
            "opcua://h?nodes=ns=2;x",
            "opcua://h?security_mode=Sign&security_policy=None",
            "opcua://h?security_policy=Basic999",
            "opcua://h?auth=certificate",
            "opcua://h?nodes=i=1&points=/a.csv",
            "opcua://h?name_regex=(",
            "opcua://h?interval=soon",
            "opcua://h?mode=push",
        ] {
            assert!(OpcUaSource::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration_ms("1.5s").unwrap(), 1500);
        assert_eq!(parse_duration_ms("2m").unwrap(), 120_000);
    }

    #[test]
    fn point_lists() {
        let l = read_point_list(
            "\u{feff}name,point_id,enable\na,\"ns=2;s=a,b\",1\nb,ns=2;i=5,0\nc,i=7,\n",
        )
        .unwrap();
        let ids: Vec<&str> = l.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["ns=2;s=a,b", "i=7"]);
        assert_eq!(l[0].fields, [("name".to_string(), "a".to_string())]);
        let l = read_point_list(
            "point_id,stable,tbname,tag::VARCHAR(32)::location,value\nns=2;s=v1,opc_{type},t_{id},hall 1,9\n",
        )
        .unwrap();
        let f: Vec<(&str, &str)> = l[0]
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("stable", "opc_{type}"),
                ("tbname", "t_{id}"),
                ("location", "hall 1")
            ],
            "a `value` column cannot stand in for the value"
        );
        assert!(read_point_list("point_id\n").is_err());
        assert!(read_point_list("id\ni=1\n").is_err());
        assert!(read_point_list("point_id\ni=1\ni=1\n").is_err());
        assert!(read_point_list("point_id\nnot-a-node\n").is_err());
    }
}
