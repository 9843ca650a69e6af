//! Client behaviour against the in-process fake server.

use crate::fake_server::{connected, Action, FakeServer};
use crate::{ConnectOptions, Connection};
use common::wire::{Request, Response};
use common::{Block, Code, DataType, Field, Precision, TaosError, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn opts(port: u16) -> ConnectOptions {
    ConnectOptions {
        db: Some("power".into()),
        ..ConnectOptions::new("127.0.0.1", port)
    }
}

fn block(vals: &[i32]) -> Block {
    Block::from_rows(
        2,
        vals.iter()
            .map(|v| {
                vec![
                    Value::Timestamp(1_700_000_000_000 + *v as i64),
                    Value::Int(*v),
                ]
            })
            .collect(),
    )
}

fn fields() -> Vec<Field> {
    vec![
        Field::new("ts", DataType::Timestamp),
        Field::new("v", DataType::Int),
    ]
}

/// A server that answers Connect, `select` with two blocks, `bad` with a syntax error, and
/// anything else as executed.
fn scripted(req: &Request) -> Action {
    Action::Reply(match req {
        Request::Connect { db, .. } => connected(db.as_deref()),
        Request::Query { sql } if sql.starts_with("select") => Response::ResultSet {
            result_id: 99,
            fields: fields(),
            precision: Precision::Ms,
            block: block(&[1, 2]),
            completed: false,
        },
        Request::Query { sql } if sql == "bad" => Response::Error(TaosError::new(
            Code::PAR_SYNTAX_ERROR,
            "syntax error near \"bad\"",
        )),
        Request::Query { .. } => Response::Executed {
            affected_rows: 3,
            db: None,
        },
        Request::Fetch { result_id: 99 } => Response::Block {
            block: block(&[3]),
            completed: true,
        },
        Request::Fetch { .. } => {
            Response::Error(TaosError::new(Code::INVALID_PARA, "no such result"))
        }
        Request::FreeResult { .. } => Response::Freed,
        Request::Ping => Response::Pong,
        Request::Tmq(_) => Response::Error(common::TaosError::of(common::Code::CONSUMER_NOT_EXIST)),
        Request::Write(_) => Response::Executed {
            affected_rows: 0,
            db: None,
        },
    })
}

#[tokio::test]
async fn connect_reports_session() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    assert_eq!(conn.server_version(), "3.3.6.0");
    assert_eq!(conn.current_db().as_deref(), Some("power"));
    assert_eq!(conn.cluster_id(), 42);
    conn.ping().await.unwrap();
    match &srv.requests()[0] {
        Request::Connect {
            user, password, db, ..
        } => {
            assert_eq!((user.as_str(), password.as_str()), ("root", "taosdata"));
            assert_eq!(db.as_deref(), Some("power"));
        }
        other => panic!("first request {other:?}"),
    }
}

#[tokio::test]
async fn connect_follows_redirect() {
    let target = FakeServer::start(scripted).await;
    let ep = format!("127.0.0.1:{}", target.port);
    let front =
        FakeServer::start(move |_| Action::Reply(Response::Redirect { ep: ep.clone() })).await;
    let conn = Connection::connect(opts(front.port)).await.unwrap();
    assert_eq!(
        conn.exec("create table t (ts timestamp, v int)")
            .await
            .unwrap(),
        3
    );
    assert_eq!(front.requests().len(), 1);
    assert_eq!(target.requests().len(), 2);
}

#[tokio::test]
async fn endless_redirects_fail() {
    // A server that redirects every Connect to itself.
    let me = Arc::new(std::sync::OnceLock::<u16>::new());
    let m2 = me.clone();
    let srv = FakeServer::start(move |_| {
        let ep = format!("127.0.0.1:{}", m2.get().copied().unwrap_or(1));
        Action::Reply(Response::Redirect { ep })
    })
    .await;
    me.set(srv.port).unwrap();
    let err = Connection::connect(opts(srv.port)).await.err().unwrap();
    assert_eq!(err.short_code(), 0x000B, "{err}");
    assert!(err.message.contains("too many redirects"), "{err}");
    assert_eq!(srv.requests().len(), crate::connection::MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn query_fetches_second_block() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    let mut res = conn.query("select * from t").await.unwrap();
    assert_eq!(res.fields(), &fields()[..]);
    assert_eq!(res.precision(), Precision::Ms);
    assert_eq!(res.next_block().await.unwrap().unwrap().rows, 2);
    assert_eq!(res.next_block().await.unwrap().unwrap().rows, 1);
    assert!(res.next_block().await.unwrap().is_none());

    let rows = conn
        .query("select * from t")
        .await
        .unwrap()
        .collect_rows()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2],
        vec![Value::Timestamp(1_700_000_000_003), Value::Int(3)]
    );
    // Both results completed: nothing to free.
    assert!(!srv
        .requests()
        .iter()
        .any(|r| matches!(r, Request::FreeResult { .. })));
}

#[tokio::test]
async fn dropped_result_is_freed() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    drop(conn.query("select * from t").await.unwrap());
    conn.ping().await.unwrap();
    assert!(srv
        .requests()
        .iter()
        .any(|r| matches!(r, Request::FreeResult { result_id: 99 })));
}

#[tokio::test]
async fn server_errors_propagate_with_code() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    let err = conn.query("bad").await.err().unwrap();
    assert_eq!(err.code, 0x8000_2600);
    assert!(err.message.contains("bad"));
    // The session is still usable.
    conn.ping().await.unwrap();

    let auth =
        FakeServer::start(|_| Action::Reply(Response::Error(TaosError::of(Code::AUTH_FAILURE))))
            .await;
    let err = Connection::connect(opts(auth.port)).await.err().unwrap();
    assert_eq!(err.short_code(), 0x0357);
}

#[tokio::test]
async fn refused_connection_is_0x000b() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Connection::connect(opts(port)).await.err().unwrap();
    assert_eq!(err.short_code(), 0x000B);
    assert_eq!(err.code, 0x8000_000B);
    assert!(
        err.message.starts_with("Unable to establish connection"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn second_ep_used_when_first_is_down() {
    let srv = FakeServer::start(scripted).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = ConnectOptions {
        second_ep: Some(format!("127.0.0.1:{}", srv.port)),
        ..opts(dead)
    };
    Connection::connect(o).await.unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn use_updates_current_db() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    conn.exec("use meters_db").await.unwrap();
    assert_eq!(conn.current_db().as_deref(), Some("meters_db"));
}

#[tokio::test]
async fn broken_link_resends_idempotent_once() {
    // The first `show` kills the connection; the client must reconnect with the same db.
    let shows = Arc::new(AtomicUsize::new(0));
    let s2 = shows.clone();
    let srv = FakeServer::start(move |req| match req {
        Request::Query { sql } if sql.starts_with("show") => {
            if s2.fetch_add(1, Ordering::SeqCst) == 0 {
                Action::Close
            } else {
                Action::Reply(Response::Executed {
                    affected_rows: 0,
                    db: None,
                })
            }
        }
        Request::Query { sql } if sql.starts_with("insert") => Action::Close,
        other => scripted(other),
    })
    .await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    conn.exec("use other").await.unwrap();
    conn.exec("show tables").await.unwrap();
    assert_eq!(shows.load(Ordering::SeqCst), 2);
    let connects: Vec<_> = srv
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::Connect { db, .. } => Some(db),
            _ => None,
        })
        .collect();
    assert_eq!(
        connects,
        vec![Some("power".to_string()), Some("other".to_string())]
    );

    // Not idempotent: the error surfaces, not a second insert.
    let err = conn
        .exec("insert into t values (now, 1)")
        .await
        .err()
        .unwrap();
    assert_eq!(err.short_code(), 0x0018, "{err}");
    // ... and the next request reconnects.
    conn.ping().await.unwrap();
}

#[tokio::test]
async fn clones_share_one_session() {
    let srv = FakeServer::start(scripted).await;
    let conn = Connection::connect(opts(srv.port)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move {
            c.query("select 1").await?.collect_rows().await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 3);
    }
    let connects = srv
        .requests()
        .iter()
        .filter(|r| matches!(r, Request::Connect { .. }))
        .count();
    assert_eq!(connects, 1);
}

#[test]
fn blocking_wrapper() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(FakeServer::start(scripted));
    let conn = crate::blocking::Connection::connect(opts(srv.port)).unwrap();
    let res = conn.query("select * from t").unwrap();
    assert!(res.has_result_set());
    assert_eq!(res.collect_rows().unwrap().len(), 3);
    assert_eq!(conn.exec("insert into t values (now, 1)").unwrap(), 3);
}
