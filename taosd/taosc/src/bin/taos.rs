//! `taos`: TDengine's command-line shell. See `taos --help`.

use common::time::SessionTz;
use rustyline::error::ReadlineError;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use taosc::blocking::Connection;
use taosc::shell::args::{parse_args, Args, Password, USAGE};
use taosc::shell::render::RenderOptions;
use taosc::shell::{is_quit, script, Session};
use taosc::ConnectOptions;

const DEFAULT_CFG_DIR: &str = "/etc/taos";

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("taos: {e}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!(
            "taos version: {} (TDengine protocol {})",
            env!("CARGO_PKG_VERSION"),
            common::SERVER_VERSION
        );
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

/// Connection options: taos.cfg, then a DSN, then individual flags.
fn options(args: &Args) -> Result<ConnectOptions, String> {
    let dir = args
        .cfg_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CFG_DIR));
    let mut o = ConnectOptions::from_cfg_dir(&dir)
        .map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
    if let Some(dsn) = &args.dsn {
        o = ConnectOptions::from_dsn(dsn).map_err(|e| e.message)?;
    }
    if let Some(h) = &args.host {
        o.host = h.clone();
        o.second_ep = None;
    }
    if let Some(p) = args.port {
        o.port = p;
    }
    if let Some(u) = &args.user {
        o.user = u.clone();
    }
    match &args.password {
        Password::Default => {}
        Password::Given(p) => o.password = p.clone(),
        Password::Prompt => {
            o.password = read_password().map_err(|e| format!("failed to read password: {e}"))?
        }
    }
    if let Some(d) = &args.database {
        o.db = Some(d.clone());
    }
    if let Some(z) = &args.timezone {
        o.tz = Some(z.clone());
    }
    o.app = "taos".into();
    Ok(o)
}

/// Ask on the terminal without echo; from a pipe, take the first line.
fn read_password() -> std::io::Result<String> {
    let mut line = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("Enter password: ");
        let _ = std::io::stderr().flush();
        let echo_off = std::process::Command::new("stty")
            .arg("-echo")
            .status()
            .is_ok_and(|s| s.success());
        let r = std::io::stdin().lock().read_line(&mut line);
        if echo_off {
            let _ = std::process::Command::new("stty").arg("echo").status();
        }
        eprintln!();
        r?;
    } else {
        std::io::stdin().lock().read_line(&mut line)?;
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn run(args: Args) -> Result<ExitCode, String> {
    let opts = options(&args)?;
    let tz = match &opts.tz {
        Some(z) => SessionTz::parse(z).ok_or_else(|| format!("invalid time zone '{z}'"))?,
        None => SessionTz::Local,
    };
    let render = RenderOptions {
        raw_time: args.raw_time,
        tz,
        max_text_width: args.width.unwrap_or(30),
    };
    let ep = format!("{}:{}", opts.host, opts.port);

    if args.check {
        return Ok(match Connection::connect(opts).and_then(|c| c.ping()) {
            Ok(()) => {
                println!("{ep} is ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{ep} is not ok: {} [0x{:08X}]", e.message, e.code);
                ExitCode::FAILURE
            }
        });
    }

    let conn = Connection::connect(opts).map_err(|e| {
        format!(
            "failed to connect to server, reason: {} [0x{:08X}]",
            e.message, e.code
        )
    })?;
    let mut session = Session::new(conn, render);

    if args.commands.is_some() || args.file.is_some() {
        if let Some(sql) = &args.commands {
            session.run_all(&script::statements(sql));
        }
        if let Some(path) = &args.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("failed to open file {}: {e}", path.display()))?;
            session.run_all(&script::script_statements(&text));
        }
        return Ok(if session.failures > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    interactive(&mut session)?;
    Ok(ExitCode::SUCCESS)
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".taos_history"))
}

fn interactive(session: &mut Session) -> Result<(), String> {
    let mut rl =
        rustyline::DefaultEditor::new().map_err(|e| format!("cannot start line editor: {e}"))?;
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!(
        "Welcome to the taos shell (client {}), connected to server version {}.",
        env!("CARGO_PKG_VERSION"),
        session.conn.server_version()
    );
    println!("End statements with ';'. Type 'quit' to leave, '--help' on the command line for options.\n");
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "taos> " } else { "   -> " };
        match rl.readline(prompt) {
            Ok(line) => {
                if buf.is_empty() && is_quit(&line) {
                    break;
                }
                if !buf.is_empty() {
                    buf.push('\n');
                }
                buf.push_str(&line);
                let (stmts, rest) = script::split(&buf);
                if stmts.is_empty() && rest.is_empty() {
                    buf.clear();
                    continue;
                }
                if !rest.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(buf.replace('\n', " "));
                buf.clear();
                for s in &stmts {
                    if is_quit(&s.sql) {
                        return save(&mut rl, &history);
                    }
                    session.run(s);
                }
            }
            Err(ReadlineError::Interrupted) => buf.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("failed to read input: {e}")),
        }
    }
    save(&mut rl, &history)
}

fn save(rl: &mut rustyline::DefaultEditor, history: &Option<PathBuf>) -> Result<(), String> {
    if let Some(h) = history {
        let _ = rl.save_history(h);
    }
    Ok(())
}
