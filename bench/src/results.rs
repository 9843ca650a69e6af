//! Appending a run's figures to a file under bench/results/: the date, the command line that
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
