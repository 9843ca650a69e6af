//! Bad input never takes the server down: garbage on the port, requests before login, wrong
//! credentials, a hostile frame length.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::TestServer;
use taosc::blocking::Connection;
use taosc::ConnectOptions;

fn raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn garbage_wrong_credentials_and_hostile_frames_are_refused() {
    let server = TestServer::start();
    // Garbage and a 4 GiB length prefix: answered with an error or closed, never a crash.
    raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    raw(server.port, &[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
    raw(
        server.port,
        &[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0xEE, 0xEE, 0xEE, 0xEE],
    );
    // A query before Connect is refused.
    let frame = common::wire::encode(
        7,
        &common::wire::Request::Query {
            sql: "show databases".into(),
        },
    )
    .expect("encode");
    let reply = raw_first_frame(server.port, &frame);
    let (_, resp): (u64, common::wire::Response) = common::wire::decode(&reply).expect("decode");
    assert!(
        matches!(resp, common::wire::Response::Error(e) if e.short_code() == 0x0357),
        "unexpected reply"
    );
    // Wrong password and unknown user.
    let mut bad = ConnectOptions::new("127.0.0.1", server.port);
    bad.password = "wrong".into();
    let err = Connection::connect(bad).err().expect("must fail");
    assert_eq!(err.code & 0xFFFF, 0x0357, "{err}");
    let mut nouser = ConnectOptions::new("127.0.0.1", server.port);
    nouser.user = "nobody".into();
    let err = Connection::connect(nouser).err().expect("must fail");
    assert_eq!(err.code & 0xFFFF, 0x0351, "{err}");
    // The server is still there and correct.
    let conn = Connection::connect(ConnectOptions::new("127.0.0.1", server.port)).expect("connect");
    conn.exec("CREATE DATABASE IF NOT EXISTS b")
        .expect("create");
    let err = conn
        .exec("INSERT INTO b.nosuch VALUES (now, 1)")
        .err()
        .expect("must fail");
    assert_eq!(err.code & 0xFFFF, 0x2603);
    let err = conn.exec("SELECT * FROM").err().expect("must fail");
    assert!(matches!(err.code & 0xFFFF, 0x2600 | 0x2601), "{err}");
}

fn raw_first_frame(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("len");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("body");
    body
}
