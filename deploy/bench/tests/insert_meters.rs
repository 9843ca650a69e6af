//! insert_meters end to end against taosc's fake server: every row arrives once, figures print.

use common::wire::{Request, Response};
use common::{Block, DataType, Field, Precision, Value};
use std::process::Command;
use taosc::fake_server::{connected, Action, FakeServer};

fn rows_in(sql: &str) -> i64 {
    sql.matches(")(").count() as i64 + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn small_run_inserts_every_row() {
    let srv = FakeServer::start(|req| {
        Action::Reply(match req {
            Request::Connect { db, .. } => connected(db.as_deref()),
            Request::Query { sql } if sql.starts_with("INSERT") => Response::Executed {
                affected_rows: rows_in(sql),
                db: None,
            },
            Request::Query { sql } if sql.starts_with("SELECT COUNT") => Response::ResultSet {
                result_id: 1,
                fields: vec![Field::new("count(*)", DataType::BigInt)],
                precision: Precision::Ms,
                block: Block::from_rows(1, vec![vec![Value::BigInt(10 * 50)]]),
                completed: true,
            },
            Request::Query { .. } => Response::Executed {
                affected_rows: 0,
                db: None,
            },
            Request::Fetch { .. } => Response::Block {
                block: Block::default(),
                completed: true,
            },
            Request::FreeResult { .. } => Response::Freed,
            Request::Ping => Response::Pong,
            Request::Tmq(_) => {
                Response::Error(common::TaosError::of(common::Code::CONSUMER_NOT_EXIST))
            }
            Request::Write(_) => Response::Executed {
                affected_rows: 0,
                db: None,
            },
        })
    })
    .await;
    let data = std::env::temp_dir().join(format!("insert-meters-test-{}", std::process::id()));
    std::fs::create_dir_all(data.join("vnode/vnode2/tsdb")).unwrap();
    std::fs::write(data.join("vnode/vnode2/tsdb/f"), vec![0u8; 1000]).unwrap();
    let port = srv.port.to_string();
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_insert_meters"))
        .args([
            "--port",
            &port,
            "--tables",
            "10",
            "--rows",
            "50",
            "--batch",
            "20",
            "--writers",
            "3",
        ])
        .args(["--data-dir", data.to_str().unwrap(), "--taosd-pid", &pid])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("warning"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("insert_meters: rows=500 "), "{last}");
    assert!(
        last.contains(" bytes_per_row=2.00 wal_bytes=0 peak_rss_mb="),
        "{last}"
    );

    let reqs = srv.requests();
    let sql: Vec<&str> = reqs
        .iter()
        .filter_map(|r| match r {
            Request::Query { sql } => Some(sql.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(sql[0], "DROP DATABASE IF EXISTS test");
    assert_eq!(sql[1], "CREATE DATABASE IF NOT EXISTS test VGROUPS 4");
    assert_eq!(
        sql.iter().filter(|s| s.starts_with("CREATE TABLE")).count(),
        10
    );
    // 10 tables x 50 rows in batches of 20: 3 inserts per table.
    let inserts: Vec<&&str> = sql.iter().filter(|s| s.starts_with("INSERT")).collect();
    assert_eq!(inserts.len(), 30);
    assert_eq!(inserts.iter().map(|s| rows_in(s)).sum::<i64>(), 500);
    assert!(sql.contains(&"FLUSH DATABASE test"));
    std::fs::remove_dir_all(&data).unwrap();
}
