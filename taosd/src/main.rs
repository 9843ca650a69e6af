//! taosd: the database server. `taosd -c DIR` reads `DIR/taos.cfg`; with no config it starts on
//! localhost:6030 with a data dir it creates.

use taosd::config::DnodeConfig;
use taosd::server;

/// Bulk INSERTs allocate and free many small row vectors; mimalloc halves that cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

const HELP: &str = "Usage: taosd [-c CONFIG_DIR] [-C | --dump-config] [-V]

  -c DIR          directory holding taos.cfg (default /etc/taos when it exists)
  -C, --dump-config  print the effective configuration and exit
  -V, --version   print the version and exit
  -h, --help      this help

Every taos.cfg key can also be set as an environment variable TAOS_<KEY>, e.g. TAOS_SERVERPORT=6030.";

fn main() {
    let mut cfg_dir: Option<PathBuf> = None;
    let mut dump = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" | "--config-dir" => cfg_dir = args.next().map(PathBuf::from),
            s if s.starts_with("-c") && s.len() > 2 => cfg_dir = Some(PathBuf::from(&s[2..])),
            "-C" | "--dump-config" => dump = true,
            "-V" | "--version" => {
                println!("taosd version: {} (Rust)", common::SERVER_VERSION);
                return;
            }
            "-h" | "--help" => {
                println!("{HELP}");
                return;
            }
            other => {
                eprintln!("taosd: unknown argument {other}\n\n{HELP}");
                std::process::exit(2);
            }
        }
    }
    let config = match DnodeConfig::load(cfg_dir.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("taosd: cannot read configuration: {e}");
            std::process::exit(1);
        }
    };
    if dump {
        print!("{}", config.dump());
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TAOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taosd: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(config)) {
        tracing::error!("taosd stopped: {e}");
        std::process::exit(1);
    }
}

async fn run(config: DnodeConfig) -> Result<(), common::TaosError> {
    let (host, port) = config.listen_addr();
    // Opening the dnode takes the data dir lock first, so a second taosd on the same dir fails
    // on that (the clearer error) rather than on the port.
    let (dnode, coordinator) = taosd::start_single(config).await?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| {
            common::TaosError::new(
                common::Code::RPC_NETWORK_UNAVAIL,
                format!("cannot listen on {host}:{port}: {e}"),
            )
        })?;
    tracing::info!(endpoint = %dnode.config.endpoint(), data_dir = %dnode.config.data_dir.display(), "taosd is ready");
    coordinator.spawn_retention();
    coordinator.spawn_tmq_reaper();
    let server = tokio::spawn(server::serve(coordinator.clone(), listener));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| common::TaosError::internal(e.to_string()))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    server.abort();
    drop(coordinator);
    dnode.shutdown().await;
    Ok(())
}
