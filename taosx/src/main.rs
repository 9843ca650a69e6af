//! taosx: data-in tasks (MQTT first) written to taosd through taosc, and the QUIC endpoint that
//! edge agents ship their buffered points to. `taosx serve [-c taosx.toml] [--section.key v]`.

mod api;
mod config;
mod quic;
mod run;
mod runtime;
mod store;

use config::Config;
use std::sync::Arc;

const USAGE: &str = "\
Usage: taosx serve [-c FILE] [--section.key VALUE]...
       taosx run -f <source DSN> -t <sink DSN> --parser <@file.json|JSON>   (taosx run --help)
       taosx --dump-config [-c FILE] | --version | --help

Keys (taosx.toml sections, TAOSX_<SECTION>_<KEY> variables, --section.key flags):
  serve.listen      HTTP API address (0.0.0.0:6050)
  serve.quic        agent endpoint, UDP (0.0.0.0:6055)
  serve.data_dir    task store, certificate, error archives (/var/lib/taos/taosx)
  serve.ssl_cert    certificate PEM (default <data_dir>/taosx.crt, generated on first start)
  serve.ssl_key     key PEM (default <data_dir>/taosx.key)
  serve.cert_names  names in a generated certificate
  taos.dsn          taosd to write to (taos://root:taosdata@localhost:6030)
  log.level         error | warn | info | debug | trace (info)
  log.path          directory for taosx.log (stderr when empty)
  monitor.fqdn, monitor.port, monitor.interval   taosKeeper reporting (off when fqdn is empty)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run") {
        std::process::exit(run_job(&args[1..]));
    }
    let version = format!("taosx {} (Rust)", env!("CARGO_PKG_VERSION"));
    let mut cli = taos_edge::config::cli(&args, USAGE, &version, "/etc/taos/taosx.toml");
    let mut cmd = None;
    for w in &cli.words {
        match w.as_str() {
            "-v" | "-vv" | "-vvv" => cli.flags.push(("log.level".into(), verbosity(w))),
            c if cmd.is_none() && !c.starts_with('-') => cmd = Some(c.to_string()),
            other => {
                eprintln!("taosx: unexpected argument '{other}'\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let (cfg, warnings): (Config, Vec<String>) =
        match taos_edge::config::load(cli.file.as_deref(), "TAOSX", std::env::vars(), &cli.flags) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("taosx: {e}");
                std::process::exit(2);
            }
        };
    if cli.dump {
        print!("{}", taos_edge::config::dump(&cfg));
        return;
    }
    match cmd.as_deref() {
        Some("serve") | None => {}
        Some(other) => {
            eprintln!("taosx: unknown command '{other}'\n{USAGE}");
            std::process::exit(2);
        }
    }
    taos_edge::config::init_logging(&cfg.log.level, &cfg.log.path, "taosx.log");
    for w in warnings {
        tracing::warn!("{w}");
    }
    std::process::exit(with_runtime(serve(cfg)));
}

/// Run `job` on a multi-threaded runtime; the exit code says how it went.
fn with_runtime(job: impl std::future::Future<Output = Result<(), String>>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taosx: cannot start runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(job) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("taosx: {e}");
            1
        }
    }
}

/// `taosx run ...`: a one-off job; logs go to stderr at warn unless RUST_LOG says otherwise.
fn run_job(args: &[String]) -> i32 {
    taos_edge::config::init_logging("warn", "", "");
    with_runtime(async move {
        run::main(args)
            .await
            .map_err(|e| format!("run: {e}\n{}", run::USAGE))
    })
}

fn verbosity(v: &str) -> String {
    match v {
        "-v" => "info",
        "-vv" => "debug",
        _ => "trace",
    }
    .to_string()
}

async fn serve(cfg: Config) -> Result<(), String> {
    let data_dir = cfg.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create data_dir {}: {e}", data_dir.display()))?;
    let store = store::Store::open(&data_dir).map_err(|e| e.to_string())?;
    let (cert_path, key_path) = cfg.cert_paths(&data_dir);
    let (certs, key, created) =
        taos_edge::tls::load_or_create(&cert_path, &key_path, &cfg.serve.cert_names)
            .map_err(|e| e.to_string())?;
    let fingerprint = certs
        .first()
        .map(|c| taos_edge::tls::fingerprint(c))
        .unwrap_or_default();
    if created {
        tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    }
    // Agents pin this: print it where an operator sees it.
    eprintln!("taosx certificate fingerprint (pin it in agent.toml): sha256:{fingerprint}");
    let taos = taosc::ConnectOptions::from_dsn(&cfg.taos.dsn).map_err(|e| e.to_string())?;
    let rt = Arc::new(runtime::Runtime::new(store, taos, data_dir, fingerprint));

    let quic_addr: std::net::SocketAddr = cfg
        .serve
        .quic
        .parse()
        .map_err(|e| format!("serve.quic '{}': {e}", cfg.serve.quic))?;
    let server_cfg = taos_edge::tls::server_config(certs, key).map_err(|e| e.to_string())?;
    let endpoint = quinn::Endpoint::server(server_cfg, quic_addr)
        .map_err(|e| format!("cannot listen on UDP {quic_addr}: {e}"))?;
    tokio::spawn(quic::serve(rt.clone(), endpoint.clone()));

    let listener = tokio::net::TcpListener::bind(&cfg.serve.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.serve.listen))?;
    // Resume the tasks that were running before the restart.
    for t in rt.store.tasks().map_err(|e| e.to_string())? {
        if t.running && t.agent.is_none() {
            rt.start_local(t.spec.clone());
        }
    }
    tracing::info!(api = %cfg.serve.listen, quic = %quic_addr, "taosx is ready");
    let app = api::router(rt.clone());
    let server = axum::serve(listener, app);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        r = server => r.map_err(|e| e.to_string())?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("taosx stopping");
    endpoint.close(0u32.into(), b"shutdown");
    Ok(())
}
