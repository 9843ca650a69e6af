//! opcua_bench: values per second the OPC-UA source collects and writes for many monitored
//! items. It starts taosd, taosx and an OPC-UA server we did not write with N variables all
//! changing every period: npm node-opcua (`deploy/bench/opcua/server.js`, the default; it produces
//! values several times faster than asyncua) or PyPI asyncua (`taosx/tests/support/
//! opcua_server.py`); both installed by `taosadapter/tests/setup_peers.sh`. It creates a
//! subscription task in taosx (browse of the server's Plant folder, one super table per value
//! type) and, once every item reports, measures the task's counters over a window: values
//! received by the collector and rows written to taosd. See `--help`.

use bench::flags::Flags;
use bench::spawn::{http_json as http, sibling, Taosd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
Usage: opcua_bench [--flag value]...
  --items N         variables = monitored items (default 10000)
  --period MS       server update period of every variable (default 1000)
  --secs N          measuring window (default 30)
  --server KIND     node (node-opcua, default) or python (asyncua)
  --python PATH     python with asyncua (default $TAOS_TEST_VENV or ~/.cache/taos-venv)
  --node-modules D  node_modules with node-opcua (default $TAOS_TEST_NODE_MODULES or
                    ~/.cache/taos-node/node_modules)
  --taosd PATH      taosd binary (default: next to this program)
  --taosx PATH      taosx binary (default: next to this program)
  --out FILE        also append the result lines to FILE
";

const PY_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../taosx/tests/support/opcua_server.py"
);
const NODE_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/opcua/server.js");

fn free_port() -> u16 {
    bench::spawn::free_port().unwrap_or(0)
}

/// Kills a child process when dropped (errors leave nothing running).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_log(path: &PathBuf, needle: &str, within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(format!("no '{needle}' in {}:\n{text}", path.display()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU seconds (user + system) a process has used so far (Linux `/proc/<pid>/stat`).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// (values received, rows written) of the task.
fn counters(api: u16, task: &str) -> Result<(u64, u64), String> {
    let t = http(api, "GET", &format!("/api/v1/tasks/{task}"), "")?;
    let m = &t["metrics"];
    Ok((
        m["points_received"].as_u64().unwrap_or(0),
        m["rows_written"].as_u64().unwrap_or(0),
    ))
}

async fn run(f: &mut Flags) -> Result<Vec<String>, String> {
    let items: u64 = f.get("items", 10_000)?;
    let period: u64 = f.get("period", 1000)?;
    let secs: u64 = f.get("secs", 30)?;
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let kind = f.opt("server").unwrap_or_else(|| "node".into());
    let python = f.opt("python").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var("TAOS_TEST_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| home.join(".cache/taos-venv"))
            .join("bin/python")
    });
    let node_modules = f.opt("node-modules").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var("TAOS_TEST_NODE_MODULES")
            .map(PathBuf::from)
            .unwrap_or_else(|_| home.join(".cache/taos-node/node_modules"))
    });
    // node-opcua puts the server's own nodes in namespace 1, asyncua in the one it registers (2).
    let (mut server_cmd, server_name, ns) = match kind.as_str() {
        "node" => {
            let mut c = Command::new("node");
            c.arg(NODE_SERVER).env("NODE_PATH", &node_modules);
            (c, "node-opcua", 1)
        }
        "python" => {
            let mut c = Command::new(&python);
            c.arg(PY_SERVER);
            (c, "asyncua", 2)
        }
        o => return Err(format!("--server {o}: node or python")),
    };
    let taosd_bin = f
        .opt("taosd")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling("taosd"));
    let taosx_bin = f
        .opt("taosx")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling("taosx"));
    let mut taosd = Taosd::start(&taosd_bin)?;
    taosd.wait_ready(Duration::from_secs(60))?;
    let dir = taosd.dir.join("opcua");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let opc_port = free_port();
    let opc_log = dir.join("opcua.out");
    let t_server = Instant::now();
    let server = Guard(
        server_cmd
            .args([opc_port.to_string(), items.to_string()])
            .args(["--period", &period.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&opc_log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("{server_name} server: {e}"))?,
    );
    wait_log(&opc_log, "READY", Duration::from_secs(600)).await?;
    let server_start = t_server.elapsed().as_secs_f64();

    let (api, quic) = (free_port(), free_port());
    let log = dir.join("taosx.out");
    let taosx = Guard(
        Command::new(&taosx_bin)
            .args(["serve", "--serve.listen", &format!("127.0.0.1:{api}")])
            .args(["--serve.quic", &format!("127.0.0.1:{quic}")])
            .args(["--serve.data_dir", &dir.join("taosx").display().to_string()])
            .args([
                "--taos.dsn",
                &format!("taos://root:taosdata@127.0.0.1:{}", taosd.port),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("{}: {e}", taosx_bin.display()))?,
    );
    wait_log(&log, "taosx is ready", Duration::from_secs(30)).await?;
    let task = http(
        api,
        "POST",
        "/api/v1/tasks",
        &serde_json::json!({
            "name": "opcua-bench",
            "from": format!("opcua://127.0.0.1:{opc_port}/taos/test?root=ns={ns};s=Plant&sampling={period}ms&interval=500ms&queue_size=4&request_timeout=60s&connect_timeout=60s"),
            "to": "opcbench",
            "mapping": {
                "stable": "opc_{type}", "table": "t_{id}", "ts": {"field": "source_ts"},
                "columns": [{"name": "val", "type": "{type}", "field": "value"},
                            {"name": "quality", "type": "BIGINT"}],
                "tags": [{"name": "node", "type": "VARCHAR(64)", "field": "node_id"}]
            }
        })
        .to_string(),
    )?;
    let task_id = task["id"]
        .as_str()
        .ok_or(format!("task: {task}"))?
        .to_string();
    // Warm-up: every item has reported its first value (and the tables exist).
    let t_sub = Instant::now();
    loop {
        let (recv, _) = counters(api, &task_id)?;
        if recv >= 2 * items {
            break;
        }
        if t_sub.elapsed() > Duration::from_secs(600) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("only {recv} values after 600 s:\n{text}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let warmup = t_sub.elapsed().as_secs_f64();
    let (r0, w0) = counters(api, &task_id)?;
    let (taosx_pid, server_pid) = (taosx.0.id(), server.0.id());
    let (cx0, cs0) = (cpu_secs(taosx_pid), cpu_secs(server_pid));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (r1, w1) = counters(api, &task_id)?;
    let window = t0.elapsed().as_secs_f64();
    let taosx_cpu = (cpu_secs(taosx_pid) - cx0) / window * 100.0;
    let server_cpu = (cpu_secs(server_pid) - cs0) / window * 100.0;
    let server_rate = std::fs::read_to_string(&opc_log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| l.starts_with("RATE"))
        .map(|l| l.trim_start_matches("RATE ").to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    taosd.stop(Duration::from_secs(30));
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    Ok(vec![
        format!(
            "{server_name} server: {items} variables, every one updated every {period} ms (nominal {:.0} values/s; measured {server_rate}), started in {server_start:.1} s; {cpus} CPUs shared by server, taosx and taosd",
            items as f64 * 1000.0 / period as f64
        ),
        format!("subscription of {items} monitored items (browse + create) reporting after {warmup:.1} s"),
        format!(
            "collected {} values in {window:.1} s = {:.0} values/s; written {} rows = {:.0} rows/s",
            r1 - r0,
            (r1 - r0) as f64 / window,
            w1 - w0,
            (w1 - w0) as f64 / window
        ),
        format!(
            "CPU over the window: taosx (collector + writer, {build} build) {taosx_cpu:.0}% of one core, {server_name} server {server_cpu:.0}%"
        ),
    ])
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut f = match Flags::parse(std::env::args().skip(1), &["help"]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("opcua_bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if f.switch("help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let out = f.opt("out").map(PathBuf::from);
    let result = run(&mut f).await;
    bench::results::report("opcua_bench", out.as_deref(), result)
}
