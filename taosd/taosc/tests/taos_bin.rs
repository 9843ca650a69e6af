//! The real `taos` binary against the in-process fake server: output layout, exit status.

#[allow(dead_code)]
#[path = "../src/fake_server.rs"]
mod fake_server;

use common::wire::{Request, Response};
use common::{Block, Code, DataType, Field, Precision, TaosError, Value};
use fake_server::{connected, Action, FakeServer};
use std::process::Command;

fn handler(req: &Request) -> Action {
    Action::Reply(match req {
        Request::Connect { password, .. } if password != "taosdata" => {
            Response::Error(TaosError::of(Code::AUTH_FAILURE))
        }
        Request::Connect { db, .. } => connected(db.as_deref()),
        Request::Query { sql } if sql.starts_with("select") => Response::ResultSet {
            result_id: 1,
            fields: vec![
                Field::new("ts", DataType::Timestamp),
                Field::new("current", DataType::Float),
            ],
            precision: Precision::Ms,
            block: Block::from_rows(
                2,
                vec![vec![
                    Value::Timestamp(1_704_067_200_000),
                    Value::Float(10.3),
                ]],
            ),
            completed: true,
        },
        Request::Query { sql } if sql.starts_with("use") => Response::Executed {
            affected_rows: 0,
            db: Some("power".into()),
        },
        Request::Query { sql } if sql.starts_with("insert") => Response::Executed {
            affected_rows: 2,
            db: None,
        },
        Request::Query { .. } => Response::Error(TaosError::new(
            Code::PAR_SYNTAX_ERROR,
            "syntax error near \"bogus\"",
        )),
        Request::Fetch { .. } => Response::Block {
            block: Block::default(),
            completed: true,
        },
        Request::FreeResult { .. } => Response::Freed,
        Request::Ping => Response::Pong,
        Request::Tmq(_) => Response::Error(common::TaosError::of(common::Code::CONSUMER_NOT_EXIST)),
        Request::Write(_) => Response::Executed {
            affected_rows: 0,
            db: None,
        },
    })
}

fn taos(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_taos"))
        .args([
            "-c",
            "/nonexistent",
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-z",
            "UTC",
        ])
        .args(args)
        .output()
        .expect("run taos");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_print_like_taos() {
    let srv = FakeServer::start(handler).await;
    let (code, out, err) = taos(
        srv.port,
        &[
            "-s",
            "use power; select * from meters; insert into d0 values (now, 1)",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Database changed.");
    assert_eq!(
        lines[2],
        "           ts            |       current        |"
    );
    assert!(lines[3].starts_with("====="));
    assert_eq!(
        lines[4],
        " 2024-01-01 00:00:00.000 |                 10.3 |"
    );
    assert!(lines[5].starts_with("Query OK, 1 row(s) in set ("), "{out}");
    assert!(
        lines[7].starts_with("Query OK, 2 row(s) affected ("),
        "{out}"
    );

    let (code, _, err) = taos(srv.port, &["-s", "bogus"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("DB error: syntax error near \"bogus\" [0x2600] ("),
        "{err}"
    );

    let (code, out, _) = taos(srv.port, &["-r", "-s", "select 1"]);
    assert_eq!(code, 0);
    assert!(out.contains(" 1704067200000 |"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn script_continues_and_fails_at_end() {
    let srv = FakeServer::start(handler).await;
    let dir = std::env::temp_dir().join(format!("taos-bin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.sql");
    std::fs::write(&file, "# script\nbogus;\nselect * from meters;\n").unwrap();
    let (code, out, err) = taos(srv.port, &["-f", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("DB error"), "{err}");
    assert!(out.contains("Query OK, 1 row(s) in set"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_password_and_refusal() {
    let srv = FakeServer::start(handler).await;
    let (code, out, _) = taos(srv.port, &["-t"]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("127.0.0.1:{} is ok", srv.port).as_str())
    );

    let (code, _, err) = taos(srv.port, &["-pwrong", "-s", "select 1"]);
    assert_eq!(code, 1);
    assert!(err.contains("Authentication failure"), "{err}");

    // Bare -p with stdin not a terminal: the password is read from stdin.
    let out = Command::new(env!("CARGO_BIN_EXE_taos"))
        .args([
            "-c",
            "/nonexistent",
            "-h",
            "127.0.0.1",
            "-P",
            &srv.port.to_string(),
            "-p",
            "-s",
            "select 1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"taosdata\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = taos(dead, &["-s", "select 1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Unable to establish connection") && err.contains("0x8000000B"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interactive_reads_multiline_statements_from_a_pipe() {
    let srv = FakeServer::start(handler).await;
    let home = std::env::temp_dir().join(format!("taos-bin-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_taos"))
        .args([
            "-c",
            "/nonexistent",
            "-h",
            "127.0.0.1",
            "-P",
            &srv.port.to_string(),
            "-z",
            "UTC",
        ])
        .env("HOME", &home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"select *\n  from meters;\n-- nothing\nquit\nselect 2;\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("Query OK, 1 row(s) in set").count(),
        1,
        "{stdout}"
    );
    std::fs::remove_dir_all(&home).unwrap();
}
