//! `taos` command-line flags, spelled as TDengine's shell spells them. Parsed by hand: `-p` takes
//! its value only when attached (`-ptaosdata`), which argument parsers do not express well.

use std::path::PathBuf;

/// How the password was given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Password {
    /// Not given: taos.cfg / built-in default (`taosdata`).
    #[default]
    Default,
    /// `-pSECRET` or `--password=SECRET`.
    Given(String),
    /// Bare `-p` / `--password`: ask on the terminal, or read a line from stdin.
    Prompt,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Password,
    pub database: Option<String>,
    /// `-s`: statements to run instead of the interactive shell.
    pub commands: Option<String>,
    /// `-f`: a script to run instead of the interactive shell.
    pub file: Option<PathBuf>,
    pub cfg_dir: Option<PathBuf>,
    pub dsn: Option<String>,
    /// `-r`: timestamps as raw integers.
    pub raw_time: bool,
    /// `-t` / `-k`: only check that the server answers.
    pub check: bool,
    pub timezone: Option<String>,
    /// `-w`: widest column for VARCHAR/NCHAR values (default 30).
    pub width: Option<usize>,
    pub version: bool,
    pub help: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("option '{0}' requires an argument")]
    MissingValue(String),
    #[error("invalid value '{value}' for option '{flag}': {why}")]
    BadValue {
        flag: String,
        value: String,
        why: &'static str,
    },
    #[error("unknown option '{0}' (see --help)")]
    Unknown(String),
    #[error("unexpected argument '{0}' (see --help)")]
    Unexpected(String),
}

pub const USAGE: &str = "\
Usage: taos [OPTION...]
  -h, --host=HOST          TDengine server FQDN to connect (default: firstEp of taos.cfg, or localhost)
  -P, --port=PORT          TCP port of the server (default: serverPort of taos.cfg, or 6030)
  -u, --user=USER          User name (default: root)
  -p[PASSWORD], --password[=PASSWORD]
                           Password, attached (-ptaosdata); a bare -p asks for it
                           (or reads a line from stdin when stdin is not a terminal)
  -d, --database=DATABASE  Database to use after connecting
  -s, --commands=SQL       Run these ;-separated statements and exit
  -f, --file=FILE          Run the statements of FILE (one per line or ;-terminated;
                           lines starting with -- or # are comments) and exit
  -c, --config-dir=DIR     Directory of taos.cfg (default: /etc/taos)
  -E, --dsn=DSN            Connect by DSN: taos://user:pass@host:port/db
  -r, --raw-time           Print timestamps as raw integers
  -t, -k, --check          Check that the server answers: prints \"<host>:<port> is ok\"
  -z, --timezone=TZ        Time zone for rendering and parsing timestamps (e.g. UTC, Asia/Shanghai)
  -w, --width=WIDTH        Display width of VARCHAR/NCHAR columns (default: 30)
  -V, --version            Print the version and exit
      --help               Print this help and exit

In the shell: end statements with ';' (or '\\G' for vertical output); 'source FILE;' runs a
script; 'quit', 'exit' or 'q' leaves; Ctrl-C clears the line.
";

/// Parse the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Args, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut a = Args::default();
    let mut it = args.into_iter().map(Into::into);
    while let Some(arg) = it.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let flag = format!("--{name}");
            match name {
                "help" => a.help = true,
                "version" => a.version = true,
                "raw-time" => a.raw_time = true,
                "check" => a.check = true,
                "password" => {
                    a.password = attached.map(Password::Given).unwrap_or(Password::Prompt)
                }
                "host" | "port" | "user" | "database" | "commands" | "file" | "config-dir"
                | "dsn" | "timezone" | "width" => {
                    let v = match attached {
                        Some(v) => v,
                        None => it
                            .next()
                            .ok_or_else(|| ArgError::MissingValue(flag.clone()))?,
                    };
                    set_value(&mut a, name, &flag, v)?;
                }
                _ => return Err(ArgError::Unknown(arg)),
            }
            continue;
        }
        let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
            return Err(ArgError::Unexpected(arg));
        };
        let mut chars = short.chars();
        let c = chars.next().unwrap_or('-');
        let rest: String = chars.collect();
        let long = match c {
            'h' => "host",
            'P' => "port",
            'u' => "user",
            'd' => "database",
            's' => "commands",
            'f' => "file",
            'c' => "config-dir",
            'E' => "dsn",
            'z' => "timezone",
            'w' => "width",
            'p' => {
                a.password = if rest.is_empty() {
                    Password::Prompt
                } else {
                    Password::Given(rest)
                };
                continue;
            }
            'r' | 't' | 'k' | 'V' | '?' if rest.is_empty() => {
                match c {
                    'r' => a.raw_time = true,
                    'V' => a.version = true,
                    '?' => a.help = true,
                    _ => a.check = true,
                }
                continue;
            }
            _ => return Err(ArgError::Unknown(arg)),
        };
        let flag = format!("-{c}");
        let v = if rest.is_empty() {
            it.next()
                .ok_or_else(|| ArgError::MissingValue(flag.clone()))?
        } else {
            rest
        };
        set_value(&mut a, long, &flag, v)?;
    }
    Ok(a)
}

fn set_value(a: &mut Args, name: &str, flag: &str, v: String) -> Result<(), ArgError> {
    let bad = |value: &str, why| ArgError::BadValue {
        flag: flag.to_string(),
        value: value.to_string(),
        why,
    };
    match name {
        "host" => a.host = Some(v),
        "port" => {
            a.port = Some(
                v.parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(&v, "expected 1..65535"))?,
            )
        }
        "user" => a.user = Some(v),
        "database" => a.database = Some(v),
        "commands" => a.commands = Some(v),
        "file" => a.file = Some(PathBuf::from(v)),
        "config-dir" => a.cfg_dir = Some(PathBuf::from(v)),
        "dsn" => a.dsn = Some(v),
        "timezone" => a.timezone = Some(v),
        "width" => {
            a.width = Some(
                v.parse()
                    .ok()
                    .filter(|w| *w > 0)
                    .ok_or_else(|| bad(&v, "expected a positive number"))?,
            )
        }
        _ => return Err(ArgError::Unknown(flag.to_string())),
    }
    Ok(())
}
