//! Appending a run's figures to a file under deploy/bench/results/: the date, the command line that
//! produced them, then the lines the program printed.

use std::io::Write;
use std::path::Path;

pub fn append(path: &Path, lines: &[String]) -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let when = common::time::format_timestamp(
        common::Precision::Ms.now(),
        common::Precision::Ms,
        common::SessionTz::Utc,
    );
    let text = format!(
        "\n# {when} UTC\n$ {}\n{}\n",
        args.join(" "),
        lines.join("\n")
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The end of a benchmark that returns its figures: print them, append them to `out` when
/// given, and the exit code (a failure prints why).
pub fn report(
    program: &str,
    out: Option<&Path>,
    result: Result<Vec<String>, String>,
) -> std::process::ExitCode {
    match result {
        Ok(lines) => {
            for l in &lines {
                println!("{l}");
            }
            if let Some(path) = out {
                if let Err(e) = append(path, &lines) {
                    eprintln!("{program}: cannot write {}: {e}", path.display());
                }
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
