//! Engine behaviour through the public API, as the vnode uses it.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use common::{DataType, Precision, Value};
use std::sync::Arc;
use std::time::Instant;
use tsdb::{ColumnSchema, ScanRequest, Schema, TableWrite, Tsdb, TsdbOptions};

const DAY: i64 = 86_400_000;

fn schema(extra: bool) -> Arc<Schema> {
    let mut columns = vec![
        ColumnSchema {
            id: 1,
            name: "ts".into(),
            ty: DataType::Timestamp,
        },
        ColumnSchema {
            id: 2,
            name: "current".into(),
            ty: DataType::Float,
        },
        ColumnSchema {
            id: 3,
            name: "voltage".into(),
            ty: DataType::Int,
        },
        ColumnSchema {
            id: 4,
            name: "note".into(),
            ty: DataType::VarChar(16),
        },
    ];
    if extra {
        columns.push(ColumnSchema {
            id: 5,
            name: "added".into(),
            ty: DataType::BigInt,
        });
    }
    Arc::new(Schema {
        version: if extra { 2 } else { 1 },
        columns,
    })
}

fn opts() -> TsdbOptions {
    TsdbOptions {
        precision: Precision::Ms,
        duration: DAY,
        keep: 10 * DAY,
        buffer_bytes: 1 << 20,
        max_rows_per_block: 100,
        stt_trigger: 2,
        cache_last: true,
    }
}

fn tw(uid: u64, suid: u64, col_ids: &[u16], rows: Vec<Vec<Value>>, extra: bool) -> TableWrite {
    TableWrite {
        uid,
        suid,
        schema: schema(extra),
        col_ids: col_ids.to_vec(),
        rows,
    }
}

fn row(ts: i64, cur: f32, volt: i32) -> Vec<Value> {
    vec![Value::Timestamp(ts), Value::Float(cur), Value::Int(volt)]
}

fn req(uids: &[(u64, u64)], start: i64, end: i64, extra: bool) -> ScanRequest {
    ScanRequest {
        uids: uids.to_vec(),
        start,
        end,
        col_ids: if extra {
            vec![1, 2, 3, 4, 5]
        } else {
            vec![1, 2, 3, 4]
        },
        schema: schema(extra),
        desc: false,
        limit: None,
    }
}

/// Render a batch as rows of strings for easy comparison.
fn render(b: &RecordBatch) -> Vec<String> {
    (0..b.num_rows())
        .map(|i| {
            b.columns()
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        "NULL".to_string()
                    } else {
                        arrow_cast_string(c).as_string::<i32>().value(i).to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn arrow_cast_string(c: &Arc<dyn Array>) -> Arc<dyn Array> {
    use arrow_array::StringArray;
    let n = c.len();
    let s: StringArray = (0..n)
        .map(|i| {
            if c.is_null(i) {
                return None;
            }
            Some(match c.data_type() {
                arrow_schema::DataType::Timestamp(_, _) => c
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i)
                    .to_string(),
                arrow_schema::DataType::Float32 => {
                    c.as_primitive::<Float32Type>().value(i).to_string()
                }
                arrow_schema::DataType::Int32 => c.as_primitive::<Int32Type>().value(i).to_string(),
                arrow_schema::DataType::Int64 => c
                    .as_primitive::<arrow_array::types::Int64Type>()
                    .value(i)
                    .to_string(),
                arrow_schema::DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
                t => format!("?{t}"),
            })
        })
        .collect();
    Arc::new(s)
}

fn scan_all(db: &Tsdb, uids: &[(u64, u64)], extra: bool) -> Vec<(u64, Vec<String>)> {
    db.scan(&req(uids, i64::MIN, i64::MAX, extra))
        .unwrap()
        .iter()
        .map(|(u, b)| (*u, render(b)))
        .collect()
}

#[test]
fn write_scan_out_of_order_and_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let n = db
        .write(
            1,
            &[tw(
                10,
                100,
                &[1, 2, 3],
                vec![row(3, 1.5, 220), row(1, 1.0, 219), row(2, 2.0, 221)],
                false,
            )],
        )
        .unwrap();
    assert_eq!(n, 3);
    // overwrite ts 2: only voltage supplied (current NONE keeps 2.0); ts 3: explicit NULL current
    db.write(
        2,
        &[tw(
            10,
            100,
            &[1, 3],
            vec![vec![Value::Timestamp(2), Value::Int(999)]],
            false,
        )],
    )
    .unwrap();
    db.write(
        3,
        &[tw(
            10,
            100,
            &[1, 2, 4],
            vec![vec![
                Value::Timestamp(3),
                Value::Null,
                Value::VarChar("x".into()),
            ]],
            false,
        )],
    )
    .unwrap();
    // duplicate inside one batch: the later row wins
    db.write(
        4,
        &[tw(
            10,
            100,
            &[1, 2, 3],
            vec![row(5, 5.0, 1), row(5, 6.0, 2)],
            false,
        )],
    )
    .unwrap();
    let got = scan_all(&db, &[(10, 100)], false);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        vec!["1,1,219,NULL", "2,2,999,NULL", "3,NULL,220,x", "5,6,2,NULL"]
    );
    // range, desc, limit
    let mut r = req(&[(10, 100)], 2, 3, false);
    r.desc = true;
    let b = db.scan(&r).unwrap();
    assert_eq!(render(&b[0].1), vec!["3,NULL,220,x", "2,2,999,NULL"]);
    r.limit = Some(1);
    r.col_ids = vec![3];
    let b = db.scan(&r).unwrap();
    assert_eq!(render(&b[0].1), vec!["3,220"]);
    assert_eq!(b[0].1.schema().field(0).name(), "ts");
    assert_eq!(b[0].1.schema().field(1).name(), "voltage");
    // errors are typed
    assert!(db.write(5, &[tw(10, 100, &[2, 1], vec![], false)]).is_err());
    let e = db
        .write(
            5,
            &[tw(
                10,
                100,
                &[1, 9],
                vec![vec![Value::Timestamp(1), Value::Int(1)]],
                false,
            )],
        )
        .unwrap_err();
    assert_eq!(e.to_taos().short_code(), 0x0118);
}

#[test]
fn flush_merges_files_and_memtable_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(d.path(), opts()).unwrap();
        assert_eq!(db.flushed_version(), 0);
        assert_eq!(db.meta_blob(), None);
        let rows: Vec<Vec<Value>> = (0..250)
            .map(|i| row(i * 1000, i as f32, i as i32))
            .collect();
        db.write(1, &[tw(1, 100, &[1, 2, 3], rows, false)]).unwrap();
        db.write(
            2,
            &[tw(2, 100, &[1, 2, 3], vec![row(DAY + 5, 7.0, 7)], false)],
        )
        .unwrap();
        db.flush(b"meta-1").unwrap();
        assert_eq!(db.flushed_version(), 2);
        assert_eq!(db.memtable_bytes(), 0);
        assert_eq!(db.file_count(), 2, "two file sets");
        // newer data in the memtable overwrites file rows: NONE keeps the file's value
        db.write(
            3,
            &[tw(
                1,
                100,
                &[1, 3],
                vec![vec![Value::Timestamp(0), Value::Int(-1)]],
                false,
            )],
        )
        .unwrap();
        db.write(
            4,
            &[tw(1, 100, &[1, 2, 3], vec![row(250_000, 1.0, 1)], false)],
        )
        .unwrap();
        let got = scan_all(&db, &[(1, 100), (2, 100)], false);
        assert_eq!(got[0].1.len(), 251);
        assert_eq!(got[0].1[0], "0,0,-1,NULL");
        assert_eq!(got[0].1[250], "250000,1,1,NULL");
        assert_eq!(got[1].1, vec![format!("{},7,7,NULL", DAY + 5)]);
        // a second flush: file vs file merge keeps NONE semantics
        db.flush(b"meta-2").unwrap();
        assert_eq!(scan_all(&db, &[(1, 100), (2, 100)], false), got);
        let stats = db.table_stats(1).unwrap();
        assert!(stats.len() >= 3, "250 rows in blocks of 100");
        let s = &stats[0].2;
        assert_eq!((s.rows, s.ts_min, s.cols[1].count), (100, 0, 100));
        assert_eq!(s.cols[1].max, 99.0);
    }
    // a file left by a crash is removed on open
    std::fs::write(
        d.path().join("data").join("0000000000009999.parquet"),
        b"junk",
    )
    .unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    assert_eq!(db.flushed_version(), 4);
    assert_eq!(db.meta_blob().as_deref(), Some(&b"meta-2"[..]));
    assert!(!d
        .path()
        .join("data")
        .join("0000000000009999.parquet")
        .exists());
    let got = scan_all(&db, &[(1, 100), (2, 100)], false);
    assert_eq!(got[0].1.len(), 251);
    assert_eq!(got[0].1[0], "0,0,-1,NULL");
    // the last row comes from files
    let last = db.last_row(1, 100, &schema(false)).unwrap().unwrap();
    assert_eq!(
        last,
        vec![
            Value::Timestamp(250_000),
            Value::Float(1.0),
            Value::Int(1),
            Value::Null
        ]
    );
    // a corrupt data file is an error, not a panic
    drop(db);
    for e in std::fs::read_dir(d.path().join("data")).unwrap() {
        let p = e.unwrap().path();
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 20] ^= 0xFF;
        std::fs::write(&p, b).unwrap();
    }
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let e = db
        .scan(&req(&[(1, 100)], i64::MIN, i64::MAX, false))
        .unwrap_err();
    assert_eq!(e.to_taos().short_code(), 0x0104, "{e}");
}

#[test]
fn writes_continue_during_flush() {
    let d = tempfile::tempdir().unwrap();
    let db = Arc::new(Tsdb::open(d.path(), opts()).unwrap());
    let rows: Vec<Vec<Value>> = (0..20_000).map(|i| row(i, 1.0, 1)).collect();
    db.write(1, &[tw(1, 100, &[1, 2, 3], rows, false)]).unwrap();
    let db2 = db.clone();
    let t = std::thread::spawn(move || db2.flush(b"").unwrap());
    for v in 2..50u64 {
        db.write(
            v,
            &[tw(
                1,
                100,
                &[1, 2, 3],
                vec![row(100_000 + v as i64, 2.0, 2)],
                false,
            )],
        )
        .unwrap();
        let got = db.scan(&req(&[(1, 100)], 0, i64::MAX, false)).unwrap();
        assert_eq!(got[0].1.num_rows(), 20_000 + v as usize - 1);
    }
    t.join().unwrap();
    assert!(db.flushed_version() >= 1);
    assert_eq!(
        db.scan(&req(&[(1, 100)], 0, i64::MAX, false)).unwrap()[0]
            .1
            .num_rows(),
        20_048
    );
}

#[test]
fn delete_and_drop() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let rows = |a: i64, b: i64| (a..b).map(|i| row(i, i as f32, 0)).collect::<Vec<_>>();
    db.write(
        1,
        &[
            tw(1, 100, &[1, 2, 3], rows(0, 10), false),
            tw(2, 100, &[1, 2, 3], rows(0, 10), false),
        ],
    )
    .unwrap();
    db.write(2, &[tw(3, 3, &[1, 2, 3], rows(0, 10), false)])
        .unwrap();
    db.flush(b"").unwrap();
    db.write(3, &[tw(1, 100, &[1, 2, 3], rows(10, 20), false)])
        .unwrap();
    // delete spans file and memtable
    assert_eq!(db.delete_range(4, 1, 5, 14).unwrap(), 10);
    // re-insert after the delete survives
    db.write(5, &[tw(1, 100, &[1, 2, 3], rows(7, 8), false)])
        .unwrap();
    let got = scan_all(&db, &[(1, 100)], false);
    let ts: Vec<&str> = got[0]
        .1
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(
        ts,
        vec!["0", "1", "2", "3", "4", "7", "15", "16", "17", "18", "19"]
    );
    db.drop_table(6, 2).unwrap();
    assert!(scan_all(&db, &[(2, 100)], false).is_empty());
    db.drop_group(7, 3).unwrap();
    assert!(scan_all(&db, &[(3, 3)], false).is_empty());
    assert_eq!(db.last_row(2, 100, &schema(false)).unwrap(), None);
    db.flush(b"").unwrap();
    let before = scan_all(&db, &[(1, 100), (2, 100), (3, 3)], false);
    assert_eq!(before.len(), 1);
    assert!(db.tombstone_count() >= 3);
    // compaction applies the tombstones physically and then forgets them
    db.compact().unwrap();
    assert_eq!(scan_all(&db, &[(1, 100), (2, 100), (3, 3)], false), before);
    assert_eq!(db.tombstone_count(), 0);
    drop(db);
    let db = Tsdb::open(d.path(), opts()).unwrap();
    assert_eq!(scan_all(&db, &[(1, 100), (2, 100), (3, 3)], false), before);
}

#[test]
fn compaction_keeps_results() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let mut v = 0;
    for round in 0..4i64 {
        for uid in 1..=5u64 {
            v += 1;
            let rows: Vec<Vec<Value>> = (0..50)
                .map(|i| {
                    let ts = i * 997 + round * 13;
                    if i % 3 == 0 {
                        vec![Value::Timestamp(ts), Value::Null, Value::Int(round as i32)]
                    } else {
                        row(ts, (uid as f32) + i as f32, round as i32)
                    }
                })
                .collect();
            // voltage only every other round: NONE across files
            if round % 2 == 0 {
                db.write(v, &[tw(uid, 100, &[1, 2, 3], rows, false)])
                    .unwrap();
            } else {
                let rows = rows.into_iter().map(|mut r| {
                    r.pop();
                    r
                });
                db.write(v, &[tw(uid, 100, &[1, 2], rows.collect(), false)])
                    .unwrap();
            }
        }
        // partial overwrite: only current supplied
        v += 1;
        db.write(
            v,
            &[tw(
                1,
                100,
                &[1, 2],
                vec![vec![Value::Timestamp(997), Value::Float(round as f32)]],
                false,
            )],
        )
        .unwrap();
        db.flush(b"").unwrap();
    }
    let uids: Vec<(u64, u64)> = (1..=5).map(|u| (u, 100)).collect();
    let before = scan_all(&db, &uids, false);
    let files = db.file_count();
    db.compact().unwrap();
    assert!(db.file_count() < files, "{} -> {}", files, db.file_count());
    assert_eq!(scan_all(&db, &uids, false), before);
    let row997 = before[0].1.iter().find(|r| r.starts_with("997,")).unwrap();
    assert_eq!(row997, "997,3,0,NULL");
}

#[test]
fn expire_drops_old_file_sets() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    for day in 0..5i64 {
        db.write(
            day as u64 + 1,
            &[tw(
                1,
                100,
                &[1, 2, 3],
                vec![row(day * DAY + 10, 1.0, 1)],
                false,
            )],
        )
        .unwrap();
    }
    db.flush(b"").unwrap();
    assert_eq!(db.file_count(), 5);
    // keep = 10 days; now = day 12.5 -> file sets 0 and 1 end before day 2.5
    assert_eq!(db.expire(12 * DAY + DAY / 2).unwrap(), 2);
    assert_eq!(db.file_count(), 3);
    let got = scan_all(&db, &[(1, 100)], false);
    assert_eq!(got[0].1.len(), 3);
    assert_eq!(std::fs::read_dir(d.path().join("data")).unwrap().count(), 3);
}

#[test]
fn schema_evolution_add_column() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    db.write(1, &[tw(1, 100, &[1, 2, 3], vec![row(1, 1.0, 1)], false)])
        .unwrap();
    db.flush(b"").unwrap();
    db.write(
        2,
        &[tw(
            1,
            100,
            &[1, 2, 5],
            vec![vec![
                Value::Timestamp(2),
                Value::Float(2.0),
                Value::BigInt(42),
            ]],
            true,
        )],
    )
    .unwrap();
    let got = scan_all(&db, &[(1, 100)], true);
    assert_eq!(got[0].1, vec!["1,1,1,NULL,NULL", "2,2,NULL,NULL,42"]);
    db.flush(b"").unwrap();
    assert_eq!(scan_all(&db, &[(1, 100)], true), got);
    // a rename keeps the id: only output names change
    let mut s = (*schema(true)).clone();
    s.columns[4].name = "renamed".into();
    let mut r = req(&[(1, 100)], 0, 10, true);
    r.schema = Arc::new(s);
    let b = db.scan(&r).unwrap();
    assert_eq!(b[0].1.schema().field(4).name(), "renamed");
    assert_eq!(render(&b[0].1), got[0].1);
}

#[test]
fn last_row_cache_follows_writes() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let s = schema(false);
    assert_eq!(db.last_row(1, 100, &s).unwrap(), None);
    db.write(
        1,
        &[tw(
            1,
            100,
            &[1, 2, 3, 4],
            vec![vec![
                Value::Timestamp(5),
                Value::Float(1.0),
                Value::Int(2),
                Value::VarChar("a".into()),
            ]],
            false,
        )],
    )
    .unwrap();
    let l = db.last_row(1, 100, &s).unwrap().unwrap();
    assert_eq!(l[2], Value::Int(2));
    // same ts: NONE keeps, NULL overwrites
    db.write(
        2,
        &[tw(
            1,
            100,
            &[1, 2],
            vec![vec![Value::Timestamp(5), Value::Null]],
            false,
        )],
    )
    .unwrap();
    let l = db.last_row(1, 100, &s).unwrap().unwrap();
    assert_eq!(
        l,
        vec![
            Value::Timestamp(5),
            Value::Null,
            Value::Int(2),
            Value::VarChar("a".into())
        ]
    );
    // older ts does not change it; newer does
    db.write(
        3,
        &[tw(
            1,
            100,
            &[1, 3],
            vec![
                vec![Value::Timestamp(4), Value::Int(9)],
                vec![Value::Timestamp(6), Value::Int(7)],
            ],
            false,
        )],
    )
    .unwrap();
    let l = db.last_row(1, 100, &s).unwrap().unwrap();
    assert_eq!(
        l,
        vec![Value::Timestamp(6), Value::Null, Value::Int(7), Value::Null]
    );
    // the cached answer equals the computed one
    let mut o = opts();
    o.cache_last = false;
    drop(db);
    let d2 = tempfile::tempdir().unwrap();
    let db2 = Tsdb::open(d2.path(), o).unwrap();
    db2.write(
        1,
        &[tw(
            1,
            100,
            &[1, 2, 3, 4],
            vec![vec![
                Value::Timestamp(5),
                Value::Float(1.0),
                Value::Int(2),
                Value::VarChar("a".into()),
            ]],
            false,
        )],
    )
    .unwrap();
    db2.write(
        2,
        &[tw(
            1,
            100,
            &[1, 2],
            vec![vec![Value::Timestamp(5), Value::Null]],
            false,
        )],
    )
    .unwrap();
    db2.write(
        3,
        &[tw(
            1,
            100,
            &[1, 3],
            vec![
                vec![Value::Timestamp(4), Value::Int(9)],
                vec![Value::Timestamp(6), Value::Int(7)],
            ],
            false,
        )],
    )
    .unwrap();
    assert_eq!(db2.last_row(1, 100, &s).unwrap().unwrap(), l);
}

/// The taosBenchmark "meters" shape: prints bytes per row on disk and write() throughput.
/// ts 1 s steps per table; current 8.00..12.00 (2 decimals, 400 distinct values), voltage
/// 215..225, phase 0.000..1.000 (3 decimals, 1001 distinct values), uniformly random.
/// Scale with TSDB_METERS_TABLES / TSDB_METERS_ROWS (default 1000 x 10,000).
#[test]
fn meters_bytes_per_row_and_write_throughput() {
    let tables: u64 = std::env::var("TSDB_METERS_TABLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let per: i64 = std::env::var("TSDB_METERS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let d = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.duration = 10 * DAY;
    o.keep = 3650 * DAY;
    o.buffer_bytes = 512 << 20;
    o.max_rows_per_block = 4096;
    let db = Tsdb::open(d.path(), o).unwrap();
    let schema = Arc::new(Schema {
        version: 1,
        columns: vec![
            ColumnSchema {
                id: 1,
                name: "ts".into(),
                ty: DataType::Timestamp,
            },
            ColumnSchema {
                id: 2,
                name: "current".into(),
                ty: DataType::Float,
            },
            ColumnSchema {
                id: 3,
                name: "voltage".into(),
                ty: DataType::Int,
            },
            ColumnSchema {
                id: 4,
                name: "phase".into(),
                ty: DataType::Float,
            },
        ],
    });
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = 1_700_000_000_000i64;
    let mut write_time = std::time::Duration::ZERO;
    let mut flush_time = std::time::Duration::ZERO;
    let mut version = 0;
    for uid in 1..=tables {
        let rows: Vec<Vec<Value>> = (0..per)
            .map(|i| {
                vec![
                    Value::Timestamp(start + i * 1000),
                    Value::Float(((10.0 + (rnd() - 0.5) * 4.0) * 100.0).round() as f32 / 100.0),
                    Value::Int(215 + (rnd() * 11.0) as i32),
                    Value::Float((rnd() * 1000.0).round() as f32 / 1000.0),
                ]
            })
            .collect();
        version += 1;
        let w = TableWrite {
            uid,
            suid: 1,
            schema: schema.clone(),
            col_ids: vec![1, 2, 3, 4],
            rows,
        };
        let t = Instant::now();
        db.write(version, std::slice::from_ref(&w)).unwrap();
        write_time += t.elapsed();
        if db.should_flush() {
            let t = Instant::now();
            db.flush(b"").unwrap();
            flush_time += t.elapsed();
        }
    }
    let t = Instant::now();
    db.flush(b"").unwrap();
    flush_time += t.elapsed();
    let total = tables * per as u64;
    let bytes = db.disk_bytes();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "meters ({profile}): {tables} tables x {per} rows = {total} rows; {} files, {bytes} bytes on disk = {:.2} bytes/row",
        db.file_count(),
        bytes as f64 / total as f64
    );
    println!(
        "meters ({profile}): write() {:.0} rows/s ({:.2} s); flush {:.0} rows/s ({:.2} s)",
        total as f64 / write_time.as_secs_f64(),
        write_time.as_secs_f64(),
        total as f64 / flush_time.as_secs_f64(),
        flush_time.as_secs_f64()
    );
    assert!((bytes as f64 / total as f64) < 8.0, "bytes/row blew up");
    // one table's scan reads only its blocks
    let t = Instant::now();
    let r = ScanRequest {
        uids: vec![(tables / 2, 1)],
        start: i64::MIN,
        end: i64::MAX,
        col_ids: vec![1, 2, 3, 4],
        schema: schema.clone(),
        desc: false,
        limit: None,
    };
    let got = db.scan(&r).unwrap();
    assert_eq!(got[0].1.num_rows(), per as usize);
    println!(
        "meters ({profile}): scan of one table {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
