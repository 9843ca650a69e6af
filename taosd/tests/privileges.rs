//! A user without a privilege gets TDengine's 0x0303; GRANT and REVOKE change that at once.

mod support;

use support::TestServer;
use taosc::blocking::Connection;
use taosc::ConnectOptions;

fn connect(port: u16, user: &str, pass: &str) -> Connection {
    let mut o = ConnectOptions::new("127.0.0.1", port);
    o.user = user.into();
    o.password = pass.into();
    Connection::connect(o).expect("connect")
}

fn denied(r: Result<impl std::fmt::Debug, taosc::TaosError>) {
    match r {
        Err(e) => assert_eq!(e.code & 0xFFFF, 0x0303, "expected 0x0303, got {e}"),
        Ok(v) => panic!("expected 0x0303, got {v:?}"),
    }
}

#[test]
fn grants_and_revokes_gate_reads_and_writes() {
    let server = TestServer::start();
    let root = connect(server.port, "root", "taosdata");
    root.exec("CREATE DATABASE p1").expect("db");
    root.exec("CREATE TABLE p1.t (ts TIMESTAMP, v INT)")
        .expect("table");
    root.exec("INSERT INTO p1.t VALUES ('2024-01-01 00:00:00.000', 1)")
        .expect("insert");
    root.exec("CREATE USER u1 PASS 'secret123'").expect("user");
    let u1 = connect(server.port, "u1", "secret123");
    denied(u1.exec("SELECT * FROM p1.t"));
    denied(u1.exec("INSERT INTO p1.t VALUES ('2024-01-01 00:00:01.000', 2)"));
    denied(u1.exec("CREATE DATABASE p2"));
    denied(u1.exec("CREATE USER u2 PASS 'secret123'"));
    root.exec("GRANT READ ON p1.* TO u1").expect("grant read");
    assert_eq!(
        u1.query("SELECT * FROM p1.t")
            .expect("read")
            .collect_rows()
            .expect("rows")
            .len(),
        1
    );
    denied(u1.exec("INSERT INTO p1.t VALUES ('2024-01-01 00:00:01.000', 2)"));
    root.exec("GRANT WRITE ON p1.* TO u1").expect("grant write");
    assert_eq!(
        u1.exec("INSERT INTO p1.t VALUES ('2024-01-01 00:00:01.000', 2)")
            .expect("write"),
        1
    );
    root.exec("REVOKE ALL ON p1.* FROM u1").expect("revoke");
    denied(u1.exec("SELECT * FROM p1.t"));
    // A user may change their own password; the old one stops working.
    u1.exec("ALTER USER u1 PASS 'another123'")
        .expect("own password");
    let mut o = ConnectOptions::new("127.0.0.1", server.port);
    o.user = "u1".into();
    o.password = "secret123".into();
    let err = Connection::connect(o).err().expect("old password refused");
    assert_eq!(err.code & 0xFFFF, 0x0357);
    connect(server.port, "u1", "another123");
    root.exec("ALTER USER u1 ENABLE 0").expect("disable");
    let mut o = ConnectOptions::new("127.0.0.1", server.port);
    o.user = "u1".into();
    o.password = "another123".into();
    assert!(
        Connection::connect(o).is_err(),
        "a disabled user cannot log in"
    );
}
