//! An MQTT task over TLS (our CA, checked by rustls) with username/password against a real
//! mosquitto listener, and the same task with a wrong password failing visibly.

mod support;

use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{free_port, mapping, mosquitto_bin, python, Proc, Stack};

fn sh(cmd: &str, dir: &std::path::Path) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mqtt_over_tls_with_password() {
    let Some(py) = python() else { return };
    let mut s = Stack::start();
    let d = s.dir.path().join("tls");
    std::fs::create_dir_all(&d).unwrap();
    // A CA and a broker certificate for 127.0.0.1 (openssl, as an operator would).
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=edge-test-ca 2>/dev/null", &d);
    sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null", &d);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf 2>/dev/null", &d);
    sh("mosquitto_passwd -b -c passwd edge s3cret", &d);
    let port = free_port();
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nper_listener_settings true\nlistener {port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/srv.pem\n\
             keyfile {0}/srv.key\nallow_anonymous false\npassword_file {0}/passwd\npersistence false\n",
            d.display()
        ),
    )
    .unwrap();
    // `user root`: a root-started mosquitto would otherwise drop to its own user and be
    // unable to read the key in our private temp dir (no effect when not started as root).
    let broker = Proc::spawn(
        Command::new(mosquitto_bin().unwrap()).arg("-c").arg(&conf),
        d.join("mosquitto.out"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{}", broker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = d.join("ca.pem").display().to_string();
    let task = |name: &str, password: &str| {
        json!({
            "name": name,
            "from": format!("mqtts://edge:{password}@127.0.0.1:{port}?topics=secure/+/+::1&ca={ca}&client_id={name}"),
            "to": "taos:///secure",
            "mapping": mapping(),
        })
    };
    let (status, good) = s.api("POST", "/api/v1/tasks", Some(&task("tls-ok", "s3cret")));
    assert_eq!(status, 201, "{good}");
    let (status, bad) = s.api("POST", "/api/v1/tasks", Some(&task("tls-bad", "wrong")));
    assert_eq!(status, 201, "{bad}");
    s.taosx.wait_log("MQTT connected", Duration::from_secs(20));
    let script = format!(
        r#"
import json, ssl
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-pub")
c.tls_set(ca_certs="{ca}")
c.username_pw_set("edge", "s3cret")
c.connect("127.0.0.1", {port})
c.loop_start()
ms = [c.publish(f"secure/s{{i % 3}}/d{{i % 4}}", json.dumps({{"id": i % 4, "ts": 1730000000000 + i, "v": i, "temp": 1.0}}), qos=1) for i in range(400)]
for m in ms: m.wait_for_publish(60)
c.loop_stop(); c.disconnect()
"#
    );
    let st = Command::new(&py).args(["-c", &script]).status().unwrap();
    assert!(st.success());
    assert_eq!(
        s.wait_count("secure.sensors", 400, Duration::from_secs(30)),
        400,
        "{}",
        s.taosx.log()
    );
    // The task with the wrong password says why it gets nothing.
    let id = bad["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, t) = s.api("GET", &format!("/api/v1/tasks/{id}"), None);
        let e = t["metrics"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !e.is_empty() {
            assert_eq!(t["metrics"]["source_connected"], false, "{t}");
            break;
        }
        assert!(Instant::now() < deadline, "no error reported: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
