use super::influx::{parse_line, parse_lines, parse_value};
use super::opentsdb::{parse_json, parse_telnet};
use super::schema::{alter_sql, create_sql, sized_len, StableSchema};
use super::*;
use std::borrow::Cow;

fn one(s: &str) -> Point<'_> {
    match parse_line(s, 1) {
        Ok(p) => p,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn nchar(s: &str) -> FieldValue<'_> {
    FieldValue::NChar(Cow::Borrowed(s))
}

#[test]
fn basic_line_borrows() {
    let p = one("cpu,host=a,region=us-west usage_user=58i,usage_idle=1.5 1700000000000000000");
    assert_eq!(p.measurement, "cpu");
    assert!(matches!(p.measurement, Cow::Borrowed(_)));
    assert_eq!(
        p.tags,
        vec![
            (Cow::Borrowed("host"), nchar("a")),
            (Cow::Borrowed("region"), nchar("us-west"))
        ]
    );
    assert_eq!(
        p.fields[0],
        (Cow::Borrowed("usage_user"), FieldValue::BigInt(58))
    );
    assert_eq!(
        p.fields[1],
        (Cow::Borrowed("usage_idle"), FieldValue::Double(1.5))
    );
    assert_eq!(p.timestamp, Some(1_700_000_000_000_000_000));
    for (k, v) in p.tags.iter() {
        assert!(matches!(k, Cow::Borrowed(_)));
        assert!(matches!(v, FieldValue::NChar(Cow::Borrowed(_))));
    }
}

#[test]
fn escapes() {
    let p = one(r#"my\ meas\,x,ta\=g\ k=v\,a\ l\=ue f\,i\=e\ ld="a \"q\" \\ b",g=1 5"#);
    assert_eq!(p.measurement, "my meas,x");
    assert_eq!(p.tags[0].0, "ta=g k");
    assert_eq!(p.tags[0].1, nchar("v,a l=ue"));
    assert_eq!(p.fields[0].0, "f,i=e ld");
    assert_eq!(
        p.fields[0].1,
        FieldValue::VarChar(Cow::Borrowed(r#"a "q" \ b"#))
    );
    assert_eq!(p.fields[1].1, FieldValue::Double(1.0));
    assert_eq!(p.timestamp, Some(5));
    // Other backslashes stay as written.
    let p = one(r"m,t=a\b f=1");
    assert_eq!(p.tags[0].1, nchar(r"a\b"));
    // Measurement does not unescape '='.
    let p = one(r"m\=x f=1");
    assert_eq!(p.measurement, r"m\=x");
}

#[test]
fn quoted_strings_with_separators() {
    let p = one(r#"m s="a b,c=d e",t=L"ünï code",b=B"\x0aff",g=G"POINT(1 2)" 1"#);
    assert_eq!(
        p.fields[0].1,
        FieldValue::VarChar(Cow::Borrowed("a b,c=d e"))
    );
    assert_eq!(p.fields[1].1, FieldValue::NChar(Cow::Borrowed("ünï code")));
    assert_eq!(
        p.fields[2].1,
        FieldValue::VarBinary(Cow::Owned(vec![0x0a, 0xff]))
    );
    assert_eq!(
        p.fields[3].1,
        FieldValue::Geometry(Cow::Borrowed("POINT(1 2)"))
    );
    assert_eq!(p.timestamp, Some(1));
    assert_eq!(p.fields[1].1.data_type(), common::DataType::NChar(8));
    assert_eq!(p.fields[0].1.data_type(), common::DataType::VarChar(9));
    let p = one(r#"m s="" 1"#);
    assert_eq!(p.fields[0].1, FieldValue::VarChar(Cow::Borrowed("")));
    let p = one(r#"m b=B"plain" 1"#);
    assert_eq!(
        p.fields[0].1,
        FieldValue::VarBinary(Cow::Borrowed(b"plain"))
    );
}

#[test]
fn every_type_suffix() {
    use FieldValue as F;
    let cases: &[(&str, FieldValue)] = &[
        ("1", F::Double(1.0)),
        ("-1.5e3", F::Double(-1500.0)),
        ("2f64", F::Double(2.0)),
        ("2.5f32", F::Float(2.5)),
        ("-128i8", F::TinyInt(-128)),
        ("255u8", F::UTinyInt(255)),
        ("-32768i16", F::SmallInt(-32768)),
        ("65535u16", F::USmallInt(65535)),
        ("2147483647i32", F::Int(i32::MAX)),
        ("4294967295u32", F::UInt(u32::MAX)),
        ("9223372036854775807i64", F::BigInt(i64::MAX)),
        ("-9223372036854775808i", F::BigInt(i64::MIN)),
        ("18446744073709551615u64", F::UBigInt(u64::MAX)),
        ("7u", F::UBigInt(7)),
        ("t", F::Bool(true)),
        ("T", F::Bool(true)),
        ("true", F::Bool(true)),
        ("True", F::Bool(true)),
        ("TRUE", F::Bool(true)),
        ("f", F::Bool(false)),
        ("F", F::Bool(false)),
        ("false", F::Bool(false)),
        ("False", F::Bool(false)),
        ("FALSE", F::Bool(false)),
    ];
    for (text, want) in cases {
        assert_eq!(
            &parse_value(text).unwrap_or_else(|e| panic!("{text}: {e}")),
            want,
            "{text}"
        );
        let line = format!("m v={text} 1");
        assert_eq!(&one(&line).fields[0].1, want, "{line}");
    }
    for bad in [
        "128i8",
        "256u8",
        "-1u",
        "1.5i",
        "abc",
        "inf",
        "nan",
        "1e999",
        "i",
        "0x10i",
        "tru",
        "1_0",
        "-",
        "3.4e39f32",
    ] {
        assert!(parse_value(bad).is_err(), "{bad} should fail");
    }
    use common::DataType as D;
    assert_eq!(F::UBigInt(1).data_type(), D::UBigInt);
    assert_eq!(F::Float(1.0).data_type(), D::Float);
    assert_eq!(F::Bool(true).data_type(), D::Bool);
}

#[test]
fn missing_timestamp_comments_blank_lines() {
    let body = b"# a comment\n\n   \ncpu f=1\r\n  # indented comment\ncpu,h=x f=2 10\n";
    let pts: Vec<_> = parse_lines(body)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[0].line, 4);
    assert_eq!(pts[0].timestamp, None);
    assert_eq!(pts[1].line, 6);
    assert_eq!(pts[1].timestamp, Some(10));
}

#[test]
fn malformed_lines_name_their_line() {
    let bad = [
        "cpu",
        "cpu ",
        "cpu,host f=1",
        "cpu,host= f=1",
        "cpu,=a f=1",
        "cpu,h=a=b f=1",
        ",h=a f=1",
        "cpu f",
        "cpu f=",
        "cpu =1",
        "cpu f=1,",
        "cpu f=\"open",
        "cpu f=\"x\"y",
        "cpu f=1 12x",
        "cpu f=1 1 2",
        "cpu f=1 99999999999999999999",
        "cpu f=1,g",
    ];
    for b in bad {
        let body = format!("ok f=1 1\n\n{b}\nok f=2 2\n");
        let errs: Vec<_> = parse_lines(body.as_bytes())
            .filter_map(|r| r.err())
            .collect();
        assert_eq!(errs.len(), 1, "{b:?}: {errs:?}");
        assert_eq!(errs[0].line, 3, "{b:?}");
        assert_eq!(errs[0].code, SML_INVALID_DATA);
        assert!(errs[0].to_string().starts_with("line 3: "), "{}", errs[0]);
    }
    let mut body = b"ok f=1\n".to_vec();
    body.extend_from_slice(b"cpu,h=\xff\xfe f=1\n");
    let r: Vec<_> = parse_lines(&body).collect();
    assert!(matches!(&r[1], Err(e) if e.line == 2 && e.message.contains("UTF-8")));
}

#[test]
fn huge_lines() {
    let big = "x".repeat(1 << 20);
    let line = format!("m,t={big} s=\"{big}\",n=1i 1");
    let p = one(&line);
    assert_eq!(p.tags[0].1, nchar(&big));
    assert_eq!(
        p.fields[0].1,
        FieldValue::VarChar(Cow::Borrowed(big.as_str()))
    );
    let mut many = String::from("m ");
    for i in 0..5000 {
        if i > 0 {
            many.push(',');
        }
        many.push_str(&format!("f{i}={i}i"));
    }
    assert_eq!(one(&many).fields.len(), 5000);
}

/// Random mutations of valid lines never panic, and whatever parses obeys the basic shape.
#[test]
fn mutation_fuzz_never_panics() {
    let corpus: &[&[u8]] = &[
        b"cpu,hostname=host_0,region=eu-west-1 usage_user=58i,usage_system=2i 1451606400000000000",
        br#"m\ x,t\,a=v\=1 s="a \"b\" c",n=L"n",g=G"POINT(1 2)",b=B"\x0a" 1"#,
        b"st,t1=3i64,t2=4f64 c1=3i64,c2=false,c3=1.5f32 1626006833639000000",
        b"# comment\n\nm f=1\r\nm,t=1 f=t",
        "m,é=ü s=\"日本\" 1".as_bytes(),
    ];
    let alphabet = b" ,=\\\"\n\r#iu8fLGBte.-0123456789x";
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut parsed = 0usize;
    for it in 0..100_000 {
        let mut buf = corpus[it % corpus.len()].to_vec();
        for _ in 0..1 + rnd() % 4 {
            let r = rnd();
            let pos = if buf.is_empty() {
                0
            } else {
                (r as usize >> 8) % (buf.len() + 1)
            };
            match r % 5 {
                0 if pos < buf.len() => {
                    buf.remove(pos);
                }
                1 => buf.insert(pos, alphabet[(r as usize >> 32) % alphabet.len()]),
                2 if pos < buf.len() => buf[pos] = alphabet[(r as usize >> 32) % alphabet.len()],
                3 if pos < buf.len() => buf[pos] = (r >> 40) as u8,
                _ => buf.truncate(pos),
            }
        }
        for p in parse_lines(&buf).flatten() {
            assert!(!p.measurement.is_empty());
            assert!(!p.fields.is_empty());
            parsed += 1;
        }
        for p in parse_telnet(&buf).flatten() {
            assert_eq!(p.fields.len(), 1);
        }
        let _ = parse_json(&buf);
    }
    assert!(parsed > 1000, "fuzz corpus mostly rejected: {parsed}");
}

#[test]
fn child_table_names_are_deterministic() {
    let a = one("cpu,b=2,a=1 f=1");
    let b = one("cpu,a=1,b=2 g=2 5");
    let c = one("cpu,a=1,b=3 f=1");
    let d = one("mem,a=1,b=2 f=1");
    let n = child_table_name(&a.measurement, &a.tags);
    assert_eq!(n, child_table_name(&b.measurement, &b.tags));
    assert_ne!(n, child_table_name(&c.measurement, &c.tags));
    assert_ne!(n, child_table_name(&d.measurement, &d.tags));
    assert!(n.starts_with("t_") && n.len() == 34 && n[2..].bytes().all(|c| c.is_ascii_hexdigit()));
    // Fixed value: MD5("cpu,a=1,b=2"), so names never change between releases.
    assert_eq!(n, "t_c725c32edb579c245ccd5899672e02e7");
    assert_eq!(
        child_table_name("cpu", &[]),
        "t_d9747e2da342bdb995f6389533ad1a3d"
    );
    assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
}

fn md5_hex(s: &str) -> String {
    child_table_name_of_key(s)[2..].to_string()
}

#[test]
fn telnet_and_json() {
    let body = b"put sys.cpu 1700000000 42.5 host=a dc=x\nsys.mem 1700000000123 7i32 host=b\n\nm 0 t host=c\n";
    let pts: Vec<_> = parse_telnet(body)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[0].measurement, "sys.cpu");
    assert_eq!(pts[0].timestamp, Some(1_700_000_000_000_000_000));
    assert_eq!(
        pts[0].fields,
        vec![(Cow::Borrowed(VALUE_COLUMN), FieldValue::Double(42.5))]
    );
    assert_eq!(pts[0].tags[1], (Cow::Borrowed("dc"), nchar("x")));
    assert_eq!(pts[1].timestamp, Some(1_700_000_000_123_000_000));
    assert_eq!(pts[1].fields[0].1, FieldValue::Int(7));
    assert_eq!(pts[2].timestamp, None);
    assert_eq!(pts[2].line, 4);
    let bad: Vec<_> = parse_telnet(b"m 1700000000 1 a=b\nm 17000000001 1 a=b\n")
        .filter_map(|r| r.err())
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 2);
    assert_eq!(bad[0].code, SML_INVALID_PRECISION);

    let json = br#"[{"metric":"sys.cpu","timestamp":1700000000000,"value":1.5,"tags":{"host":"a","n":2}},
        {"metric":"m","timestamp":{"value":5,"type":"us"},"value":{"value":7,"type":"tinyint"},"tags":{"t":{"value":"x","type":"varchar"}}},
        {"metric":"m","timestamp":0,"value":"s","tags":{}}]"#;
    let pts = parse_json(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pts[0].timestamp, Some(1_700_000_000_000_000_000));
    assert_eq!(pts[0].tags[0].1, FieldValue::NChar(Cow::Owned("a".into())));
    assert_eq!(pts[0].tags[1].1, FieldValue::Double(2.0));
    assert_eq!(pts[1].timestamp, Some(5_000));
    assert_eq!(pts[1].fields[0].1, FieldValue::TinyInt(7));
    assert_eq!(
        pts[1].tags[0].1,
        FieldValue::VarChar(Cow::Owned("x".into()))
    );
    assert_eq!(pts[2].timestamp, None);
    assert_eq!(
        pts[2].fields[0].1,
        FieldValue::VarChar(Cow::Owned("s".into()))
    );
    let e = parse_json(
        br#"[{"metric":"m","timestamp":1700000000,"value":1},{"metric":"m","value":1}]"#,
    );
    assert!(
        matches!(e, Err(e) if e.line == 2),
        "second point lacks a timestamp"
    );
    let e = parse_json(
        br#"{"metric":"m","timestamp":1700000000,"value":{"value":300,"type":"tinyint"}}"#,
    );
    assert!(matches!(e, Err(e) if e.line == 1 && e.message.contains("out of range")));
    assert!(parse_json(b"{not json").is_err());
}

fn batch_of(body: &str) -> Result<Batch<'_>, SmlError> {
    let pts: Vec<_> = parse_lines(body.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(SmlError::from)?;
    Batch::new(pts, TsPrecision::Ms)
}

#[test]
fn batch_groups_rows_and_checks_types() {
    let b = batch_of(
        "cpu,h=a x=1,y=2 1\ncpu,h=a x=3,y=4 2\ncpu,h=a x=5 3\ncpu,h=b x=1i32 4\nmem f=\"s\" 5\n",
    );
    // The fourth line makes x an INT after DOUBLE: a conflict named at line 4.
    let e = b.err().expect("type conflict");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.code(), 0x3004);
    assert!(e.to_string().starts_with("line 4: "), "{e}");

    let b = batch_of("cpu,h=a x=1,y=2 1\ncpu,h=a x=3,y=4 2\ncpu,h=a x=5 3\ncpu,h=b.c x=1 4\nmem f=\"abc\" 5\nmem f=\"abcdef\" 6\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.tables.len(), 3);
    assert_eq!(
        b.tables[0].groups.len(),
        2,
        "x,y and x alone are separate groups"
    );
    assert_eq!(b.tables[0].groups[0].rows, vec![0, 1]);
    assert_eq!(b.tables[0].groups[1].columns, vec!["x".to_string()]);
    assert_eq!(b.tables[1].tag_values, vec![Value::NChar("b.c".into())]);
    assert_eq!(b.ts, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(b.needs.len(), 2);
    assert_eq!(
        b.needs[1].columns,
        vec![("f".to_string(), common::DataType::VarChar(6), 5)]
    );
    assert!(b.tables[2].tag_names.is_empty());

    // Names: dots become underscores; duplicates and `_ts` are refused.
    let b = batch_of("a.b,t.x=1 f.y=1 1\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.needs[0].stable, "a_b");
    assert_eq!(b.needs[0].tags[0].0, "t_x");
    assert_eq!(b.needs[0].columns[0].0, "f_y");
    for (body, line) in [
        ("m f=1 1\nm f=1,f=2 2\n", 2),
        ("m,f=a f=1 1\n", 1),
        ("m _ts=1 1\n", 1),
        ("m f=1 1\nm,f=x g=1 2", 2),
    ] {
        let e = batch_of(body)
            .err()
            .unwrap_or_else(|| panic!("{body}: should fail"));
        assert_eq!(e.line, Some(line), "{body}: {e}");
    }
}

#[test]
fn precision_scaling() {
    assert_eq!(TsPrecision::S.to_wire(2), Some(2000));
    assert_eq!(TsPrecision::M.to_wire(1), Some(60_000));
    assert_eq!(TsPrecision::H.to_wire(1), Some(3_600_000));
    assert_eq!(TsPrecision::H.to_wire(i64::MAX), None);
    assert_eq!(TsPrecision::S.wire(), Precision::Ms);
    assert_eq!(TsPrecision::from(Precision::Us), TsPrecision::Us);
    assert_eq!(TsPrecision::parse("u"), Some(TsPrecision::Us));
    assert_eq!(TsPrecision::parse(""), Some(TsPrecision::Ns));
    assert_eq!(TsPrecision::parse("x"), None);
    let pts: Vec<_> = parse_lines(b"m f=1 9223372036854775807")
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    assert!(Batch::new(pts, TsPrecision::S).is_err());
}

#[test]
fn ddl_text_and_widening() {
    use common::DataType as D;
    assert_eq!(sized_len(3, 100), 8);
    assert_eq!(sized_len(9, 100), 16);
    assert_eq!(sized_len(90, 100), 100);
    let need = StableNeed {
        stable: "cpu".into(),
        columns: vec![("f".into(), D::Double, 1), ("s".into(), D::VarChar(20), 2)],
        tags: vec![("host".into(), D::NChar(5), 1)],
    };
    let c = create_sql("db", &need).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.sql,
        "CREATE STABLE IF NOT EXISTS `db`.`cpu` (`_ts` TIMESTAMP, `f` DOUBLE, `s` VARCHAR(32)) TAGS (`host` NCHAR(8))"
    );
    let no_tags = StableNeed {
        stable: "m".into(),
        columns: vec![("f".into(), D::Double, 1)],
        tags: vec![],
    };
    assert!(create_sql("db", &no_tags)
        .map(|d| d.sql)
        .unwrap_or_default()
        .ends_with("TAGS (`_tag_null` NCHAR(1))"));

    let have = StableSchema::new(
        "_ts".into(),
        vec![("f".into(), D::Double), ("s".into(), D::VarChar(16))],
        vec![("host".into(), D::NChar(8))],
    );
    let need2 = StableNeed {
        stable: "cpu".into(),
        columns: vec![
            ("f".into(), D::Double, 1),
            ("s".into(), D::VarChar(20), 2),
            ("n".into(), D::BigInt, 3),
        ],
        tags: vec![
            ("host".into(), D::NChar(9), 4),
            ("rack".into(), D::NChar(2), 4),
        ],
    };
    let sql: Vec<String> = alter_sql("db", &have, &need2)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|d| d.sql)
        .collect();
    assert_eq!(
        sql,
        vec![
            "ALTER STABLE `db`.`cpu` MODIFY COLUMN `s` VARCHAR(32)",
            "ALTER STABLE `db`.`cpu` ADD COLUMN `n` BIGINT",
            "ALTER STABLE `db`.`cpu` MODIFY TAG `host` NCHAR(16)",
            "ALTER STABLE `db`.`cpu` ADD TAG `rack` NCHAR(8)",
        ]
    );
    assert!(
        alter_sql("db", &have, &need).map(|v| v.len()).unwrap_or(9) == 1,
        "only s grows"
    );
    let conflict = StableNeed {
        stable: "cpu".into(),
        columns: vec![("f".into(), D::BigInt, 7)],
        tags: vec![],
    };
    let e = alter_sql("db", &have, &conflict).err().expect("conflict");
    assert_eq!((e.line, e.code()), (Some(7), 0x3004));
    let too_long = StableNeed {
        stable: "cpu".into(),
        columns: vec![],
        tags: vec![("host".into(), D::NChar(5000), 3)],
    };
    let e = alter_sql("db", &have, &too_long).err().expect("too long");
    assert_eq!((e.line, e.code()), (Some(3), 0x2653));
}

/// Parse throughput of TSBS-shaped lines; run with `--release -- --nocapture` for real figures.
#[test]
fn parse_throughput() {
    let mut body = String::new();
    for i in 0..20_000 {
        body.push_str(&format!(
            "cpu,hostname=host_{h},region=eu-west-1,datacenter=eu-west-1a,rack={r},os=Ubuntu16.04LTS,arch=x64,team=NYC,service=18,service_version=1,service_environment=production usage_user={a}i,usage_system={b}i,usage_idle={c}i,usage_nice=6i,usage_iowait=50i,usage_irq=21i,usage_softirq=33i,usage_steal=4i,usage_guest=90i,usage_guest_nice=41i {ts}\n",
            h = i % 1000,
            r = (i % 1000) % 97,
            a = i % 100,
            b = (i * 7) % 100,
            c = (i * 13) % 100,
            ts = 1_451_606_400_000_000_000i64 + i as i64 * 10_000_000_000
        ));
    }
    let rounds = if cfg!(debug_assertions) { 3 } else { 30 };
    let start = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..rounds {
        for p in parse_lines(body.as_bytes()) {
            n += p.map(|p| p.fields.len()).unwrap_or(0);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, rounds * 20_000 * 10);
    println!(
        "influx parse: {:.0} MB/s, {:.0} lines/s ({} build)",
        (body.len() * rounds) as f64 / secs / 1e6,
        (20_000 * rounds) as f64 / secs,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    // Validation, schema needs, child-table naming and row grouping of the same lines.
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let pts: Vec<_> = parse_lines(body.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let b = Batch::new(pts, TsPrecision::Ns).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.tables.len(), 1000);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "influx parse + batch: {:.0} MB/s, {:.0} lines/s",
        (body.len() * rounds) as f64 / secs / 1e6,
        (20_000 * rounds) as f64 / secs
    );
}
