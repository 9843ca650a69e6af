//! The `taos` shell's pure parts: flags, statement splitting, table rendering. No server needed.

use common::time::{Precision, SessionTz};
use common::{DataType, Field, TaosError, Value};
use std::time::Duration;
use taosc::shell::args::{parse_args, ArgError, Password};
use taosc::shell::render::{self, RenderOptions};
use taosc::shell::script::{is_complete, script_statements, statements, Statement};
use taosc::shell::{is_quit, source_target};

fn utc() -> RenderOptions {
    RenderOptions {
        tz: SessionTz::Utc,
        ..Default::default()
    }
}

#[test]
fn password_attached_bare_and_long() {
    let a = parse_args(["-h", "node1", "-P", "7030", "-uroot", "-ptaosdata"]).unwrap();
    assert_eq!(a.host.as_deref(), Some("node1"));
    assert_eq!(a.port, Some(7030));
    assert_eq!(a.user.as_deref(), Some("root"));
    assert_eq!(a.password, Password::Given("taosdata".into()));

    // A bare -p never swallows the next argument.
    let a = parse_args(["-p", "-s", "show databases"]).unwrap();
    assert_eq!(a.password, Password::Prompt);
    assert_eq!(a.commands.as_deref(), Some("show databases"));

    assert_eq!(
        parse_args(["--password=s3cret"]).unwrap().password,
        Password::Given("s3cret".into())
    );
    assert_eq!(
        parse_args(["--password"]).unwrap().password,
        Password::Prompt
    );
    assert_eq!(
        parse_args(Vec::<String>::new()).unwrap().password,
        Password::Default
    );
}

#[test]
fn other_flags() {
    let a = parse_args([
        "-c", "/tmp/cfg", "-dpower", "-f", "x.sql", "-r", "-t", "-z", "UTC", "-w", "40", "-V",
    ])
    .unwrap();
    assert_eq!(a.cfg_dir.as_deref(), Some(std::path::Path::new("/tmp/cfg")));
    assert_eq!(a.database.as_deref(), Some("power"));
    assert_eq!(a.file.as_deref(), Some(std::path::Path::new("x.sql")));
    assert!(a.raw_time && a.check && a.version);
    assert_eq!(a.timezone.as_deref(), Some("UTC"));
    assert_eq!(a.width, Some(40));
    assert!(parse_args(["--help"]).unwrap().help);
    assert!(parse_args(["-k"]).unwrap().check);
    assert_eq!(
        parse_args(["--host=h", "--port", "1"]).unwrap().port,
        Some(1)
    );

    assert_eq!(
        parse_args(["-s"]).unwrap_err(),
        ArgError::MissingValue("-s".into())
    );
    assert!(matches!(
        parse_args(["-P", "x"]).unwrap_err(),
        ArgError::BadValue { .. }
    ));
    assert!(matches!(
        parse_args(["-x"]).unwrap_err(),
        ArgError::Unknown(_)
    ));
    assert!(matches!(
        parse_args(["stray"]).unwrap_err(),
        ArgError::Unexpected(_)
    ));
}

#[test]
fn table_layout_matches_taos() {
    let fields = vec![
        Field::new("ts", DataType::Timestamp),
        Field::new("current", DataType::Float),
    ];
    let rows = vec![vec![
        Value::Timestamp(1_704_067_200_000),
        Value::Float(10.3),
    ]];
    let out = render::format_table(&fields, Precision::Ms, &rows, &utc());
    let expected = "           ts            |       current        |\n\
                    =================================================\n \
                    2024-01-01 00:00:00.000 |                 10.3 |\n";
    assert_eq!(out, expected);
    // Empty results print no header.
    assert_eq!(
        render::format_table(&fields, Precision::Ms, &[], &utc()),
        ""
    );
}

#[test]
fn cells_align_truncate_and_show_null() {
    let fields = vec![
        Field::new("v", DataType::Int),
        Field::new("location", DataType::VarChar(64)),
        Field::new("flag", DataType::Bool),
    ];
    let opts = RenderOptions {
        max_text_width: 10,
        ..utc()
    };
    let widths: Vec<usize> = fields
        .iter()
        .map(|f| render::column_width(f, Precision::Ms, &opts))
        .collect();
    assert_eq!(widths, vec![11, 10, 5]);
    let row = [
        Value::Null,
        Value::VarChar("California.SanFrancisco".into()),
        Value::Bool(true),
    ];
    let line = render::format_row(&row, &widths, Precision::Ms, &opts);
    assert_eq!(line, "        NULL | California |  true |\n");
    let header = render::format_header(&fields, &widths);
    assert_eq!(
        header.lines().next().unwrap(),
        "      v      |  location  | flag  |"
    );
    assert_eq!(header.lines().nth(1).unwrap().len(), 11 + 10 + 5 + 9);
}

#[test]
fn timestamps_raw_and_precise() {
    let f = vec![Field::new("ts", DataType::Timestamp)];
    let us = render::format_table(
        &f,
        Precision::Us,
        &[vec![Value::Timestamp(1_500_000)]],
        &utc(),
    );
    assert!(us.contains(" 1970-01-01 00:00:01.500000 |"), "{us}");
    let raw = RenderOptions {
        raw_time: true,
        ..utc()
    };
    let out = render::format_table(
        &f,
        Precision::Ms,
        &[vec![Value::Timestamp(1_704_067_200_000)]],
        &raw,
    );
    assert!(out.ends_with(" 1704067200000 |\n"), "{out}");
    let shanghai = RenderOptions {
        tz: SessionTz::parse("Asia/Shanghai").unwrap(),
        ..utc()
    };
    let out = render::format_table(&f, Precision::Ms, &[vec![Value::Timestamp(0)]], &shanghai);
    assert!(out.contains("1970-01-01 08:00:00.000"), "{out}");
}

#[test]
fn footers_and_errors() {
    let d = Duration::from_micros(3210);
    assert_eq!(
        render::rows_in_set(1, d),
        "Query OK, 1 row(s) in set (0.003210s)"
    );
    assert_eq!(
        render::rows_affected(2, Duration::from_micros(1234)),
        "Query OK, 2 row(s) affected (0.001234s)"
    );
    let e = TaosError::new(
        common::Code::PAR_SYNTAX_ERROR,
        "syntax error near \"selec\"",
    );
    assert_eq!(
        render::db_error(&e, Duration::from_micros(123)),
        "DB error: syntax error near \"selec\" [0x2600] (0.000123s)"
    );
}

#[test]
fn vertical_rows() {
    let fields = vec![
        Field::new("ts", DataType::Timestamp),
        Field::new("voltage", DataType::Int),
    ];
    let row = [Value::Timestamp(0), Value::Int(220)];
    let out = render::format_vertical_row(
        1,
        &fields,
        &row.iter().collect::<Vec<_>>(),
        Precision::Ms,
        &utc(),
    );
    assert_eq!(
        out,
        "*************************** 1.row ***************************\n     ts: 1970-01-01 00:00:00.000\nvoltage: 220\n"
    );
}

fn sqls(v: Vec<Statement>) -> Vec<String> {
    v.into_iter().map(|s| s.sql).collect()
}

#[test]
fn statement_splitting() {
    assert_eq!(
        sqls(statements(
            "use db; insert into t values (now, 'a;b'); select 1"
        )),
        vec!["use db", "insert into t values (now, 'a;b')", "select 1"]
    );
    assert_eq!(
        sqls(statements("select 'it''s;' from t;")),
        vec!["select 'it''s;' from t"]
    );
    let v = statements("select * from t\\G");
    assert!(v[0].vertical && v[0].sql == "select * from t");
    assert!(is_complete("select 1;"));
    assert!(!is_complete("select ';"));
    assert!(!is_complete("select 1; select"));
}

#[test]
fn script_files() {
    let multi = "# setup\ncreate database d;\n-- a comment\ncreate table d.t (\n  ts timestamp,\n  v int\n);\nselect 1 -- trailing\n;\n";
    assert_eq!(
        sqls(script_statements(multi)),
        vec![
            "create database d",
            "create table d.t (\n  ts timestamp,\n  v int\n)",
            "select 1"
        ]
    );
    let per_line = "show databases\n# comment\n\nselect 1\n";
    assert_eq!(
        sqls(script_statements(per_line)),
        vec!["show databases", "select 1"]
    );
}

#[test]
fn shell_commands() {
    assert!(is_quit("quit") && is_quit("exit;") && is_quit(" q ") && is_quit("QUIT;"));
    assert!(!is_quit("quits"));
    assert_eq!(source_target("source /tmp/a.sql"), Some("/tmp/a.sql"));
    assert_eq!(source_target("select 1"), None);
}
