//! `/ws` protocol details with a raw WebSocket client against the real binaries: envelope and
//! error replies, the raw block bytes, legacy fetch, malformed and truncated frames, stmt2 with
//! hand-built binds, and resources freed when a socket drops mid-result.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use support::Stack;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(port: u16, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
        .await
        .expect("ws connect");
    ws
}

async fn recv(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .expect("reply within 30s")
            .expect("socket open")
            .expect("frame");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

async fn text(ws: &mut Ws, msg: &str) -> Json {
    ws.send(Message::Text(msg.into())).await.expect("send");
    reply(ws).await
}

async fn reply(ws: &mut Ws) -> Json {
    match recv(ws).await {
        Message::Text(t) => {
            let v: Json = serde_json::from_str(t.as_str()).expect("JSON reply");
            for k in ["code", "message", "action", "req_id"] {
                assert!(v.get(k).is_some(), "{k} missing in {v}");
            }
            v
        }
        other => panic!("expected text, got {other:?}"),
    }
}

async fn call(ws: &mut Ws, action: &str, args: Json) -> Json {
    text(ws, &json!({"action": action, "args": args}).to_string()).await
}

async fn ok(ws: &mut Ws, action: &str, args: Json) -> Json {
    let v = call(ws, action, args).await;
    assert_eq!(v["code"], 0, "{action}: {v}");
    v
}

fn bin(req_id: u64, id: u64, action: u64, payload: &[u8]) -> Message {
    let mut b = Vec::new();
    b.extend_from_slice(&req_id.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&action.to_le_bytes());
    b.extend_from_slice(payload);
    Message::Binary(b.into())
}

fn sql_payload(sql: &str) -> Vec<u8> {
    let mut p = vec![1, 0];
    p.extend_from_slice(&(sql.len() as u32).to_le_bytes());
    p.extend_from_slice(sql.as_bytes());
    p
}

async fn connected(port: u16) -> Ws {
    let mut ws = open(port, "/ws").await;
    let v = ok(&mut ws, "version", json!(null)).await;
    assert!(v["version"].as_str().unwrap_or("").starts_with('3'), "{v}");
    ok(
        &mut ws,
        "conn",
        json!({"req_id": 1, "user": "root", "password": "taosdata", "db": ""}),
    )
    .await;
    ws
}

async fn binary_query(ws: &mut Ws, sql: &str) -> Json {
    ws.send(bin(5, 0, 6, &sql_payload(sql)))
        .await
        .expect("send");
    let v = reply(ws).await;
    assert_eq!(v["action"], "binary_query", "{v}");
    v
}

/// Fetch frame: (code, message, finished, block).
async fn binary_fetch(ws: &mut Ws, id: u64) -> (u32, String, u8, Vec<u8>) {
    ws.send(bin(77, id, 7, &[1, 0])).await.expect("send");
    let Message::Binary(b) = recv(ws).await else {
        panic!("binary fetch reply")
    };
    assert_eq!(&b[..8], &u64::MAX.to_le_bytes());
    assert_eq!(&b[8..16], &7u64.to_le_bytes());
    assert_eq!(&b[16..18], &1u16.to_le_bytes());
    assert_eq!(&b[26..34], &77u64.to_le_bytes());
    let code = u32::from_le_bytes(b[34..38].try_into().unwrap());
    let n = u32::from_le_bytes(b[38..42].try_into().unwrap()) as usize;
    let msg = String::from_utf8(b[42..42 + n].to_vec()).unwrap();
    assert_eq!(&b[42 + n..50 + n], &id.to_le_bytes());
    let finished = b[50 + n];
    let block = if finished == 0 {
        let len = u32::from_le_bytes(b[51 + n..55 + n].try_into().unwrap()) as usize;
        assert_eq!(b.len(), 55 + n + len);
        b[55 + n..].to_vec()
    } else {
        Vec::new()
    };
    (code, msg, finished, block)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_errors_and_raw_blocks() {
    let stack = Stack::start();
    let port = stack.port;

    // Before conn; malformed JSON; wrong password; duplicate conn; unknown action.
    let mut ws = open(port, "/ws").await;
    let v = text(&mut ws, "{not json").await;
    assert_eq!(
        (v["code"].as_i64(), v["action"].as_str()),
        (Some(65535), Some(""))
    );
    let v = call(&mut ws, "query", json!({"req_id": 3, "sql": "select 1"})).await;
    assert_eq!(
        (
            v["code"].as_i64(),
            v["message"].as_str(),
            v["req_id"].as_u64()
        ),
        (Some(65535), Some("server not connected"), Some(3))
    );
    let v = call(
        &mut ws,
        "conn",
        json!({"req_id": 4, "user": "root", "password": "bad", "db": ""}),
    )
    .await;
    assert_eq!(
        (v["code"].as_i64(), v["action"].as_str()),
        (Some(855), Some("conn")),
        "{v}"
    );
    let v = call(
        &mut ws,
        "conn",
        json!({"req_id": 4, "user": "root", "password": "taosdata", "db": "nodb"}),
    )
    .await;
    assert_eq!(v["code"].as_i64(), Some(904), "{v}");
    ok(
        &mut ws,
        "conn",
        json!({"req_id": 5, "user": "root", "password": "taosdata", "db": ""}),
    )
    .await;
    let v = call(
        &mut ws,
        "conn",
        json!({"req_id": 6, "user": "root", "password": "taosdata"}),
    )
    .await;
    assert_eq!(v["message"], "duplicate connections");
    let v = call(&mut ws, "frobnicate", json!({"req_id": 7})).await;
    assert_eq!(
        (v["code"].as_i64(), v["message"].as_str()),
        (Some(65535), Some("unknown action frobnicate"))
    );

    // The worked example of §4.5, byte for byte.
    ok(
        &mut ws,
        "query",
        json!({"sql": "create database if not exists wsp keep 36500"}),
    )
    .await;
    ok(
        &mut ws,
        "query",
        json!({"sql": "create table wsp.t (ts timestamp, v varchar(20))"}),
    )
    .await;
    let v = ok(
        &mut ws,
        "query",
        json!({"sql": "insert into wsp.t values (1000, 'a') (2000, null)"}),
    )
    .await;
    assert_eq!(
        (
            v["is_update"].as_bool(),
            v["affected_rows"].as_i64(),
            v["id"].as_u64()
        ),
        (Some(true), Some(2), Some(0))
    );
    let v = binary_query(&mut ws, "select ts, v from wsp.t order by ts").await;
    assert_eq!(v["fields_types"], json!([9, 8]));
    assert_eq!(v["fields_lengths"], json!([8, 20]));
    assert_eq!(v["fields_names"], json!(["ts", "v"]));
    assert_eq!(v["precision"], 0);
    let id = v["id"].as_u64().expect("result id");
    let (code, _, finished, block) = binary_fetch(&mut ws, id).await;
    assert_eq!((code, finished), (0, 0));
    let hex: String = block.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "010000004a0000000200000002000000000000800000000000000000\
         09080000000816000000100000000300000000e803000000000000d0070000000000000000\
         0000ffffffff010061"
    );
    let (code, _, finished, _) = binary_fetch(&mut ws, id).await;
    assert_eq!((code, finished), (0, 1));
    // Finished results are freed: fetching again is "result is nil"; free_result has no reply.
    let (code, msg, finished, _) = binary_fetch(&mut ws, id).await;
    assert_eq!((code, msg.as_str(), finished), (65535, "result is nil", 1));
    ws.send(Message::Text(
        json!({"action": "free_result", "args": {"req_id": 9, "id": id}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();

    // Legacy fetch + fetch_block, NCHAR as UCS-4.
    ok(
        &mut ws,
        "query",
        json!({"sql": "create table wsp.n (ts timestamp, n nchar(4))"}),
    )
    .await;
    ok(
        &mut ws,
        "query",
        json!({"sql": "insert into wsp.n values (1, '温度')"}),
    )
    .await;
    let v = ok(
        &mut ws,
        "query",
        json!({"req_id": 10, "sql": "select n from wsp.n"}),
    )
    .await;
    assert_eq!(v["action"], "query");
    let id = v["id"].as_u64().unwrap();
    let v = ok(&mut ws, "num_fields", json!({"result_id": id})).await;
    assert_eq!(v["num_fields"], 1);
    let v = ok(&mut ws, "fetch", json!({"req_id": 11, "id": id})).await;
    assert_eq!(
        (v["completed"].as_bool(), v["rows"].as_u64()),
        (Some(false), Some(1))
    );
    assert_eq!(v["lengths"], json!([10]));
    ws.send(Message::Text(
        json!({"action": "fetch_block", "args": {"req_id": 11, "id": id}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let Message::Binary(b) = recv(&mut ws).await else {
        panic!("fetch_block reply")
    };
    assert_eq!(&b[8..16], &id.to_le_bytes());
    let block = &b[16..];
    assert_eq!(block[28], 10, "NCHAR type code");
    assert_eq!(&block[29..33], &18i32.to_le_bytes(), "storage width 4*4+2");
    // Header, schema, length, one offset, then the value: u16 byte length and UCS-4 chars.
    let data = &block[28 + 9 + 4..];
    assert_eq!(&data[..2], &8u16.to_le_bytes());
    assert_eq!(&data[2..6], &('温' as u32).to_le_bytes());
    let v = ok(&mut ws, "fetch", json!({"req_id": 12, "id": id})).await;
    assert_eq!(v["completed"], true);

    // Small actions.
    ok(&mut ws, "query", json!({"sql": "use wsp"})).await;
    assert_eq!(ok(&mut ws, "get_current_db", json!({})).await["db"], "wsp");
    assert!(ok(&mut ws, "get_server_info", json!({})).await["info"]
        .as_str()
        .unwrap()
        .starts_with('3'));

    // Truncated and malformed binary frames: error replies, the session survives.
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let v = reply(&mut ws).await;
    assert_eq!(v["message"], "message length is too short");
    let mut p = sql_payload("select 1");
    p.truncate(8);
    ws.send(bin(20, 0, 6, &p)).await.unwrap();
    let v = reply(&mut ws).await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("uncompleted message"),
        "{v}"
    );
    ws.send(bin(21, 999, 9, &[1, 0, 255, 255, 255, 255, 1, 2]))
        .await
        .unwrap();
    let v = reply(&mut ws).await;
    assert_eq!(
        (
            v["code"].as_i64(),
            v["action"].as_str(),
            v["stmt_id"].as_u64()
        ),
        (Some(65535), Some("stmt2_bind"), Some(999))
    );
    ws.send(bin(22, 0, 42, &[])).await.unwrap();
    assert_eq!(reply(&mut ws).await["code"], 65535);
    // Random binary garbage on every action.
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for i in 0..2000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let action = [1, 2, 6, 9, 7, 3][(i % 6) as usize];
        let len = (x % 64) as usize;
        let payload: Vec<u8> = (0..len).map(|k| (x >> (k % 56)) as u8).collect();
        ws.send(bin(i, x % 4, action, &payload)).await.unwrap();
        let _ = recv(&mut ws).await;
    }
    let v = binary_query(&mut ws, "select count(*) from wsp.t").await;
    assert_eq!(v["code"], 0, "{v}");

    // stmt2 insert and query with hand-built binds.
    let init = ok(&mut ws, "stmt2_init", json!({"req_id": 30})).await;
    let sid = init["stmt_id"].as_u64().unwrap();
    ok(
        &mut ws,
        "query",
        json!({"sql": "create stable wsp.st (ts timestamp, v int) tags (t varchar(8))"}),
    )
    .await;
    let v = ok(&mut ws, "stmt2_prepare", json!({"stmt_id": sid, "sql": "insert into ? using wsp.st tags (?) values (?, ?)", "get_fields": true})).await;
    assert_eq!(v["is_insert"], true);
    let bt: Vec<i64> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bind_type"].as_i64().unwrap())
        .collect();
    assert_eq!(bt, vec![4, 2, 1, 1]);
    // Wrong column count in the bind: an error, nothing written.
    let bad = stmt2_bind(&[("c0", &[b"x"], &[(9, &[1]), (4, &[1])])], 3);
    ws.send(bin(31, sid, 9, &bad)).await.unwrap();
    let v = reply(&mut ws).await;
    assert_ne!(v["code"], 0, "{v}");
    let good = stmt2_bind(
        &[
            ("c1", &[b"a"], &[(9, &[1, 2, 3]), (4, &[10, 20, 30])]),
            ("c2", &[b"b"], &[(9, &[1]), (4, &[5])]),
        ],
        2,
    );
    ws.send(bin(32, sid, 9, &good)).await.unwrap();
    assert_eq!(reply(&mut ws).await["code"], 0);
    let v = ok(&mut ws, "stmt2_exec", json!({"stmt_id": sid})).await;
    assert_eq!(v["affected"], 4);
    ok(&mut ws, "stmt2_close", json!({"stmt_id": sid})).await;
    let v = ok(
        &mut ws,
        "query",
        json!({"sql": "select sum(v) from wsp.st"}),
    )
    .await;
    let rid = v["id"].as_u64().unwrap();
    let (_, _, _, block) = binary_fetch(&mut ws, rid).await;
    let sum = i64::from_le_bytes(block[28 + 9 + 1..28 + 9 + 9].try_into().unwrap());
    assert_eq!(sum, 65);

    // A socket dropped mid-result frees it; the adapter keeps serving.
    ok(
        &mut ws,
        "query",
        json!({"sql": "create table wsp.big (ts timestamp, v int)"}),
    )
    .await;
    let vals: Vec<String> = (0..20_000)
        .map(|i| format!("({}, {i})", 1_000_000 + i))
        .collect();
    ok(
        &mut ws,
        "query",
        json!({"sql": format!("insert into wsp.big values {}", vals.join(" "))}),
    )
    .await;
    for _ in 0..20 {
        let mut w2 = connected(port).await;
        let v = binary_query(&mut w2, "select * from wsp.big").await;
        let (code, _, finished, _) = binary_fetch(&mut w2, v["id"].as_u64().unwrap()).await;
        assert_eq!((code, finished), (0, 0));
        drop(w2);
    }
    let v = binary_query(&mut ws, "select count(*) from wsp.big").await;
    assert_eq!(v["code"], 0);

    // Legacy paths serve the same protocol.
    for path in ["/rest/ws", "/rest/stmt", "/rest/schemaless"] {
        let mut w = open(port, path).await;
        ok(
            &mut w,
            "conn",
            json!({"req_id": 0, "user": "root", "password": "taosdata", "db": "wsp"}),
        )
        .await;
        let v = ok(&mut w, "insert", json!({"req_id": 1, "protocol": 1, "precision": "ms", "data": "sm,t=a v=1i 1700000000000"})).await;
        assert_eq!(v["affected_rows"], 1);
    }
    ws.send(Message::Close(None)).await.unwrap();
}

/// A stmt2 bind payload: tables of (name, tag values, columns of (type, i64 values)).
#[allow(clippy::type_complexity)]
fn stmt2_bind(tables: &[(&str, &[&[u8]], &[(u32, &[i64])])], ncols: u32) -> Vec<u8> {
    fn colbuf(out: &mut Vec<u8>, ty: u32, vals: &[i64]) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
        out.extend(vals.iter().map(|_| 0u8));
        out.push(0);
        let size = if ty == 9 { 8 } else { 4 };
        out.extend_from_slice(&((vals.len() * size) as u32).to_le_bytes());
        for v in vals {
            out.extend_from_slice(&v.to_le_bytes()[..size]);
        }
        let n = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&n.to_le_bytes());
    }
    fn varbuf(out: &mut Vec<u8>, v: &[u8]) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.push(0);
        out.push(1);
        out.extend_from_slice(&(v.len() as i32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
        let n = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&n.to_le_bytes());
    }
    let mut names = Vec::new();
    for t in tables {
        names.extend_from_slice(&((t.0.len() + 1) as u16).to_le_bytes());
    }
    for t in tables {
        names.extend_from_slice(t.0.as_bytes());
        names.push(0);
    }
    let section = |parts: Vec<Vec<u8>>| {
        let mut s = Vec::new();
        for p in &parts {
            s.extend_from_slice(&(p.len() as u32).to_le_bytes());
        }
        for p in parts {
            s.extend_from_slice(&p);
        }
        s
    };
    let tags = section(
        tables
            .iter()
            .map(|t| {
                let mut b = Vec::new();
                for v in t.1 {
                    varbuf(&mut b, v)
                }
                b
            })
            .collect(),
    );
    let cols = section(
        tables
            .iter()
            .map(|t| {
                let mut b = Vec::new();
                for (ty, v) in t.2 {
                    colbuf(&mut b, *ty, v)
                }
                b
            })
            .collect(),
    );
    let ntags = tables.first().map(|t| t.1.len()).unwrap_or(0) as u32;
    let mut b = vec![1, 0];
    b.extend_from_slice(&(-1i32).to_le_bytes());
    let at = b.len();
    let names_at = 28u32;
    let tags_at = names_at + names.len() as u32;
    let cols_at = tags_at + tags.len() as u32;
    for v in [
        0,
        tables.len() as u32,
        ntags,
        ncols,
        names_at,
        tags_at,
        cols_at,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&names);
    b.extend_from_slice(&tags);
    b.extend_from_slice(&cols);
    let total = (b.len() - at) as u32;
    b[at..at + 4].copy_from_slice(&total.to_le_bytes());
    b
}
