//! `taosx run` importing CSV into a real taosd with the parser JSON of taosX's CLI, and the
//! three error policies for records that do not fit.

mod support;

use std::process::Command;
use support::{bin, count_on, taosd};

const PARSER: &str = r#"{
  "parse": {
    "ts": {"as": "TIMESTAMP(ms)"}, "current": {"as": "FLOAT"}, "voltage": {"as": "INT"},
    "location": {"as": "VARCHAR(24)"}, "groupid": {"as": "INT"}, "tbname": {"as": "VARCHAR(32)"}
  },
  "model": {"name": "${tbname}", "using": "meters", "tags": ["location", "groupid"],
            "columns": ["ts", "current", "voltage"]}
}"#;

fn write_csv(path: &std::path::Path, rows: usize, bad: &[usize]) {
    let mut s = String::from("tbname,ts,current,voltage,groupid,location\n");
    for i in 0..rows {
        let t = i % 10;
        if bad.contains(&i) {
            // A voltage that is not a number.
            s.push_str(&format!(
                "d{t},{},1.5,high,{t},\"loc, {t}\"\n",
                1_700_000_000_000i64 + i as i64
            ));
        } else {
            s.push_str(&format!(
                "d{t},{},{}.25,{},{t},\"loc, {t}\"\n",
                1_700_000_000_000i64 + i as i64,
                i % 13,
                200 + i % 20
            ));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("taosx"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A taosd and the parser file in `dir`: the `-f`, `-t`, `--parser` and `--archive` values
/// for importing `csv` into `db`.
fn job(dir: &std::path::Path, csv: &std::path::Path, db: &str, port: u16) -> [String; 4] {
    let parser = dir.join("parser.json");
    std::fs::write(&parser, PARSER).unwrap();
    [
        format!("csv://{}", csv.display()),
        format!("taos://root:taosdata@127.0.0.1:{port}/{db}"),
        format!("@{}", parser.display()),
        dir.join("archive").display().to_string(),
    ]
}

#[test]
fn csv_import_with_error_policies() {
    let dir = tempfile::tempdir().unwrap();
    let (_taosd, port) = taosd(dir.path());
    let csv = dir.path().join("meters.csv");
    write_csv(&csv, 20_000, &[5, 777, 19_999]);
    let [from, to, p, a] = job(dir.path(), &csv, "csvdb", port);
    let archive = std::path::PathBuf::from(&a);
    let (ok, out) = run(&["-f", &from, "-t", &to, "--parser", &p, "--archive", &a]);
    assert!(ok, "{out}");
    assert!(out.contains("19997 rows written"), "{out}");
    assert!(out.contains("3 records rejected"), "{out}");
    assert_eq!(count_on(port, "csvdb.meters"), 19_997);
    assert_eq!(
        count_on(port, "csvdb.meters WHERE location = 'loc, 3'"),
        2000
    );
    let archived = std::fs::read_to_string(archive.join("errors.jsonl")).unwrap();
    assert_eq!(archived.lines().count(), 3, "{archived}");
    assert!(archived.contains("line 7"), "{archived}");

    // discard: nothing archived; error: the job stops and says why.
    let a2 = dir.path().join("archive2").display().to_string();
    let (ok, out) = run(&[
        "-f",
        &from,
        "-t",
        &to,
        "--parser",
        &p,
        "--on-error",
        "discard",
        "--archive",
        &a2,
    ]);
    assert!(ok, "{out}");
    assert!(!std::path::Path::new(&a2).join("errors.jsonl").exists());
    let (ok, out) = run(&[
        "-f",
        &from,
        "-t",
        &to,
        "--parser",
        &p,
        "--on-error",
        "error",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("line 7") && out.contains("voltage"), "{out}");
    // Bad invocations say what is wrong.
    let (ok, out) = run(&["-f", "csv:///nonexistent.csv", "-t", &to, "--parser", &p]);
    assert!(!ok && out.contains("nonexistent.csv"), "{out}");
    let (ok, out) = run(&[
        "-f",
        &from,
        "-t",
        &format!("taos://127.0.0.1:{port}"),
        "--parser",
        &p,
    ]);
    assert!(!ok && out.contains("no database"), "{out}");
    let (ok, out) = run(&["-f", &from, "-t", &to, "--parser", "{\"model\":{}}"]);
    assert!(!ok && out.contains("--parser"), "{out}");
}

/// Rows the mapping accepts but taosd refuses (a device clock in 1970, far outside the
/// database's KEEP) are found and set aside by the error policy; the rest of their batch is
/// written and the job goes on. With `error`, the job stops and says why.
#[test]
fn rows_taosd_refuses_follow_the_error_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_taosd, port) = taosd(dir.path());
    let csv = dir.path().join("clock.csv");
    let mut s = String::from("tbname,ts,current,voltage,groupid,location\n");
    for i in 0..5_000i64 {
        let ts = if i == 100 || i == 4_321 {
            1_000
        } else {
            1_700_000_000_000 + i
        };
        s.push_str(&format!(
            "d{},{ts},1.5,{},{},x\n",
            i % 7,
            200 + i % 9,
            i % 7
        ));
    }
    std::fs::write(&csv, s).unwrap();
    let [from, to, p, a] = job(dir.path(), &csv, "clockdb", port);
    let archive = std::path::PathBuf::from(&a);
    let (ok, out) = run(&["-f", &from, "-t", &to, "--parser", &p, "--archive", &a]);
    assert!(ok, "{out}");
    assert!(out.contains("4998 rows written"), "{out}");
    assert!(out.contains("2 records rejected"), "{out}");
    assert_eq!(count_on(port, "clockdb.meters"), 4_998);
    let archived = std::fs::read_to_string(archive.join("errors.jsonl")).unwrap();
    assert_eq!(archived.lines().count(), 2, "{archived}");
    assert!(
        archived.contains("d2") && archived.contains("d2\\\""),
        "row 100 is in table d2: {archived}"
    );
    let (ok, out) = run(&[
        "-f",
        &from,
        "-t",
        &to,
        "--parser",
        &p,
        "--on-error",
        "error",
    ]);
    assert!(!ok, "{out}");
    assert!(out.to_lowercase().contains("timestamp"), "{out}");
}
