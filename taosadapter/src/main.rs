//! `taosadapter [-c taosadapter.toml] [-P port] [--host addr] [--taosConfigDir dir]`.
//!
//! Listens on 127.0.0.1:6041 by default: set `host = "0.0.0.0"` (or `--host`) to serve other
//! machines. Exits 0 after SIGTERM/SIGINT once in-flight requests are done.

use std::sync::Arc;
use taosadapter::config::{self, Action};
use taosadapter::App;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = match config::load(&args, std::env::vars()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("taosadapter: {e}");
            std::process::exit(2);
        }
    };
    match loaded.action {
        Action::Help => {
            print!("{}", config::help());
            return;
        }
        Action::Version => {
            println!("taosadapter version: {} (Rust)", common::SERVER_VERSION);
            return;
        }
        Action::DumpConfig => {
            print!("{}", loaded.config.dump());
            return;
        }
        Action::Run => {}
    }
    let cfg = loaded.config;
    if let Err(e) = init_logging(&cfg) {
        eprintln!("taosadapter: cannot open log: {e}");
        std::process::exit(1);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taosadapter: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cfg)) {
        tracing::error!("taosadapter stopped: {e}");
        std::process::exit(1);
    }
}

fn init_logging(cfg: &config::Config) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if cfg.log_path.is_empty() {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_ansi(ansi).with_writer(std::io::stderr).init();
    } else {
        std::fs::create_dir_all(&cfg.log_path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::Path::new(&cfg.log_path).join("taosadapter.log"))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    Ok(())
}

async fn run(cfg: config::Config) -> std::io::Result<()> {
    let addr = (cfg.host.clone(), cfg.port);
    let app = Arc::new(App::new(cfg)?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        listen = %local,
        taosd = ?app.pool.endpoints(),
        max_connect = app.config.effective_max_connect(),
        "taosadapter is ready"
    );
    taosadapter::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("taosadapter stopped");
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
