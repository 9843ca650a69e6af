//! Two hosts in network namespaces joined by a veth pair: the "cloud" host runs taosd and taosx,
//! with a firewall (nftables) that lets in nothing from the link but UDP 6055; the "field"
//! host runs mosquitto, a paho-mqtt publisher and the agent. Points published at the field site
//! arrive in taosd. Needs root (ip netns); skipped with a message otherwise.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{bin, mapping, mosquitto_bin, python};

struct Net {
    cloud: String,
    field: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.cloud]);
        let _ = sh(&["ip", "netns", "del", &self.field]);
    }
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v)
}

fn spawn_in(ns: &str, program: &Path, args: &[&str], log: &Path) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait_for(log: &Path, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(needle)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no '{needle}' in {}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn agent_reaches_taosx_only_over_udp_6055() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || sh(&["ip", "netns", "list"]).is_err() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let Some(py) = python() else { return };
    let Some(mosq) = mosquitto_bin() else {
        panic!("mosquitto is not installed");
    };
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nftables is not installed (apt-get install nftables)");
    let id = std::process::id() % 100_000;
    let net = Net {
        cloud: format!("tx-cloud-{id}"),
        field: format!("tx-field-{id}"),
    };
    let (vc, vf) = (format!("vc{id}"), format!("vf{id}"));
    let subnet = 100 + (id % 150);
    let (cloud_ip, field_ip) = (format!("10.231.{subnet}.1"), format!("10.231.{subnet}.2"));
    for ns in [&net.cloud, &net.field] {
        sh(&["ip", "netns", "add", ns]).unwrap();
        in_ns(ns, &["ip", "link", "set", "lo", "up"]).unwrap();
    }
    sh(&[
        "ip", "link", "add", &vc, "type", "veth", "peer", "name", &vf,
    ])
    .unwrap();
    sh(&["ip", "link", "set", &vc, "netns", &net.cloud]).unwrap();
    sh(&["ip", "link", "set", &vf, "netns", &net.field]).unwrap();
    in_ns(
        &net.cloud,
        &["ip", "addr", "add", &format!("{cloud_ip}/24"), "dev", &vc],
    )
    .unwrap();
    in_ns(
        &net.field,
        &["ip", "addr", "add", &format!("{field_ip}/24"), "dev", &vf],
    )
    .unwrap();
    in_ns(&net.cloud, &["ip", "link", "set", &vc, "up"]).unwrap();
    in_ns(&net.field, &["ip", "link", "set", &vf, "up"]).unwrap();
    // The cloud host's firewall: loopback, replies, and UDP 6055; nothing else gets in.
    let rules = "table inet edge {\n chain input {\n  type filter hook input priority 0; policy drop;\n  iifname \"lo\" accept\n  ct state established,related accept\n  udp dport 6055 accept\n }\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("fw.nft");
    std::fs::write(&rules_file, rules).unwrap();
    in_ns(&net.cloud, &[nft, "-f", &rules_file.display().to_string()]).unwrap();

    // Cloud: taosd and taosx (API and taosd on loopback only, agents on UDP 6055).
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("taos.cfg"),
        format!(
            "fqdn 127.0.0.1\nserverPort 6030\ndataDir {}\nlogDir {}\n",
            dir.path().join("data").display(),
            dir.path().join("log").display()
        ),
    )
    .unwrap();
    let mut procs = Kill(Vec::new());
    let taosd_log = dir.path().join("taosd.out");
    procs.0.push(spawn_in(
        &net.cloud,
        &bin("taosd"),
        &["-c", &cfg.display().to_string()],
        &taosd_log,
    ));
    wait_for(&taosd_log, "taosd is ready", Duration::from_secs(60));
    let taosx_log = dir.path().join("taosx.out");
    procs.0.push(spawn_in(
        &net.cloud,
        &bin("taosx"),
        &[
            "serve",
            "--serve.listen",
            "127.0.0.1:6050",
            "--serve.quic",
            &format!("{cloud_ip}:6055"),
            "--serve.data_dir",
            &dir.path().join("taosx").display().to_string(),
            "--taos.dsn",
            "taos://root:taosdata@127.0.0.1:6030",
        ],
        &taosx_log,
    ));
    wait_for(&taosx_log, "taosx is ready", Duration::from_secs(30));
    let fingerprint = std::fs::read_to_string(&taosx_log)
        .unwrap()
        .lines()
        .find_map(|l| l.split("sha256:").nth(1).map(|s| s.trim().to_string()))
        .unwrap();
    let api = |method: &str, path: &str, body: &serde_json::Value| -> serde_json::Value {
        let out = in_ns(
            &net.cloud,
            &[
                "curl",
                "-s",
                "-X",
                method,
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
                &format!("http://127.0.0.1:6050{path}"),
            ],
        )
        .unwrap();
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    };
    let a = api("POST", "/api/v1/agents", &json!({"name": "field"}));
    let token = a["token"].as_str().unwrap().to_string();
    let agent_id = a["id"].as_str().unwrap().to_string();

    // The field host cannot reach anything of the cloud host but UDP 6055.
    let tcp_probe = in_ns(
        &net.field,
        &[
            "curl",
            "-s",
            "-m",
            "2",
            &format!("http://{cloud_ip}:6050/api/v1/health"),
        ],
    );
    assert!(
        tcp_probe.is_err(),
        "TCP reached the cloud host: {tcp_probe:?}"
    );

    // Field: mosquitto, the agent, a publisher.
    let mconf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &mconf,
        "listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n",
    )
    .unwrap();
    procs.0.push(spawn_in(
        &net.field,
        &mosq,
        &["-c", &mconf.display().to_string()],
        &dir.path().join("mosquitto.out"),
    ));
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "endpoint = \"{cloud_ip}:6055\"\ntoken = \"{token}\"\nfingerprint = \"{fingerprint}\"\n[buffer]\ndir = \"{}\"\n",
            dir.path().join("buffer").display()
        ),
    )
    .unwrap();
    let agent_log = dir.path().join("agent.out");
    procs.0.push(spawn_in(
        &net.field,
        &bin("taosx-agent"),
        &["-c", &agent_toml.display().to_string()],
        &agent_log,
    ));
    wait_for(&agent_log, "connected to taosx", Duration::from_secs(30));
    let t = api(
        "POST",
        "/api/v1/tasks",
        &json!({
            "name": "netns",
            "from": "mqtt://127.0.0.1:1883?topics=site/+/+::1",
            "to": "taos:///edge",
            "mapping": mapping(),
            "agent": agent_id,
        }),
    );
    assert!(t["id"].is_string(), "{t}");
    wait_for(&agent_log, "MQTT connected", Duration::from_secs(30));
    let script = "import json\nimport paho.mqtt.client as mqtt\n\
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id='netns-pub')\n\
        c.connect('127.0.0.1', 1883)\nc.loop_start()\n\
        ms = [c.publish(f'site/s{i % 3}/dev{i % 10}', json.dumps({'id': i % 10, 'ts': 1720000000000 + i, 'v': i, 'temp': 1.0}), qos=1) for i in range(1000)]\n\
        [m.wait_for_publish(60) for m in ms]\nc.loop_stop()\nc.disconnect()\n";
    in_ns(&net.field, &[&py.display().to_string(), "-c", script]).unwrap();
    let taos = bin("taos");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = in_ns(
            &net.cloud,
            &[
                &taos.display().to_string(),
                "-h",
                "127.0.0.1",
                "-P",
                "6030",
                "-s",
                "select count(*) from edge.sensors",
            ],
        )
        .unwrap_or_default();
        if out.contains("1000") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "points did not arrive: {out}\nagent:\n{}",
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
