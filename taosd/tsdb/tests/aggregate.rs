//! `Tsdb::aggregate` must equal aggregating a `scan` of the same rows, whether the rows are in
//! the memtable, in files (answered from block statistics), overwritten or deleted.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type, Int64Type};
use arrow_array::Array;
use common::{DataType, Precision, Value};
use std::sync::Arc;
use tsdb::{
    AggColumn, AggSum, ColumnAgg, ColumnSchema, ScanRequest, Schema, TableAgg, TableWrite, Tsdb,
    TsdbOptions,
};

const DAY: i64 = 86_400_000;

fn schema() -> Arc<Schema> {
    let col = |id, name: &str, ty| ColumnSchema {
        id,
        name: name.into(),
        ty,
    };
    Arc::new(Schema {
        version: 1,
        columns: vec![
            col(1, "ts", DataType::Timestamp),
            col(2, "f", DataType::Float),
            col(3, "i", DataType::Int),
            col(4, "s", DataType::VarChar(16)),
            col(5, "b", DataType::BigInt),
        ],
    })
}

fn opts() -> TsdbOptions {
    TsdbOptions {
        precision: Precision::Ms,
        duration: DAY,
        keep: 3650 * DAY,
        buffer_bytes: 64 << 20,
        max_rows_per_block: 50,
        stt_trigger: 8,
        cache_last: true,
    }
}

fn agg_cols() -> Vec<AggColumn> {
    let c = |id, ty| AggColumn {
        id,
        ty,
        min_max: !matches!(ty, DataType::VarChar(_)),
        sum: !matches!(ty, DataType::VarChar(_)),
    };
    vec![
        c(2, DataType::Float),
        c(3, DataType::Int),
        c(4, DataType::VarChar(16)),
        c(5, DataType::BigInt),
    ]
}

/// Rows `from..to` (step `step` ms) of table `uid`; every 7th `i` NULL, `s` only on even rows.
fn write(db: &Tsdb, ver: u64, uid: u64, from: i64, to: i64, step: i64, bias: i64) {
    let rows: Vec<Vec<Value>> = (from..to)
        .step_by(step as usize)
        .map(|t| {
            let k = t / step + bias;
            vec![
                Value::Timestamp(t),
                Value::Float((k % 100) as f32 * 0.5 - 10.0),
                if k % 7 == 0 {
                    Value::Null
                } else {
                    Value::Int((k % 1000) as i32 - 300)
                },
                if k % 2 == 0 {
                    Value::VarChar(format!("v{k}"))
                } else {
                    Value::Null
                },
                Value::BigInt(k * 1_000_003),
            ]
        })
        .collect();
    db.write(
        ver,
        &[TableWrite {
            uid,
            suid: 100,
            schema: schema(),
            col_ids: vec![1, 2, 3, 4, 5],
            rows,
        }],
    )
    .unwrap();
}

/// The same aggregates computed from a scan.
fn reference(db: &Tsdb, uids: &[(u64, u64)], start: i64, end: i64) -> Vec<(u64, TableAgg)> {
    let batches = db
        .scan(&ScanRequest {
            uids: uids.to_vec(),
            start,
            end,
            col_ids: vec![1, 2, 3, 4, 5],
            schema: schema(),
            desc: false,
            limit: None,
        })
        .unwrap();
    let mut out = Vec::new();
    for (uid, b) in batches {
        let mut cols = Vec::new();
        let f = b.column(1).as_primitive::<Float32Type>();
        let vals: Vec<f32> = f.iter().flatten().collect();
        cols.push(ColumnAgg {
            count: vals.len() as u64,
            min: vals.iter().copied().reduce(f32::min).map(Value::Float),
            max: vals.iter().copied().reduce(f32::max).map(Value::Float),
            sum: (!vals.is_empty()).then(|| AggSum::Float(vals.iter().map(|&v| v as f64).sum())),
        });
        let i = b.column(2).as_primitive::<Int32Type>();
        let vals: Vec<i32> = i.iter().flatten().collect();
        cols.push(ColumnAgg {
            count: vals.len() as u64,
            min: vals.iter().min().map(|&v| Value::Int(v)),
            max: vals.iter().max().map(|&v| Value::Int(v)),
            sum: (!vals.is_empty()).then(|| AggSum::Int(vals.iter().map(|&v| v as i128).sum())),
        });
        cols.push(ColumnAgg {
            count: (b.num_rows() - b.column(3).null_count()) as u64,
            ..Default::default()
        });
        let x = b.column(4).as_primitive::<Int64Type>();
        let vals: Vec<i64> = x.iter().flatten().collect();
        cols.push(ColumnAgg {
            count: vals.len() as u64,
            min: vals.iter().min().map(|&v| Value::BigInt(v)),
            max: vals.iter().max().map(|&v| Value::BigInt(v)),
            sum: (!vals.is_empty()).then(|| AggSum::Int(vals.iter().map(|&v| v as i128).sum())),
        });
        out.push((
            uid,
            TableAgg {
                rows: b.num_rows() as u64,
                cols,
            },
        ));
    }
    out
}

/// Compare for several ranges; returns the blocks answered from statistics.
fn check(db: &Tsdb, what: &str) -> u64 {
    let uids = [(1, 100), (2, 100), (3, 100)];
    let mut from_stats = 0;
    for (start, end) in [
        (i64::MIN, i64::MAX),
        (0, DAY),
        (1234, 3 * DAY / 2 + 17),
        (DAY / 3, DAY / 3),
        (5 * DAY, 6 * DAY),
    ] {
        let (got, report) = db.aggregate(&uids, start, end, &agg_cols()).unwrap();
        let want = reference(db, &uids, start, end);
        assert_eq!(got.len(), want.len(), "{what} [{start}, {end}]: tables");
        for (uid, w) in want {
            assert_eq!(
                got.get(&uid),
                Some(&w),
                "{what} [{start}, {end}]: table {uid}"
            );
        }
        assert!(!report.saw_nan);
        from_stats += report.blocks_from_stats;
    }
    from_stats
}

#[test]
fn aggregate_equals_scan_through_flush_overwrite_delete_and_compaction() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let step = 60_000;
    write(&db, 1, 1, 0, 2 * DAY, step, 0);
    write(&db, 2, 2, DAY / 2, DAY, step / 2, 3);
    assert_eq!(check(&db, "memtable only"), 0);

    db.flush(b"m").unwrap();
    assert!(check(&db, "flushed") > 0, "blocks answered from statistics");

    // Overwrites in the memtable and a new table.
    write(&db, 3, 1, DAY / 4, DAY / 4 + 40 * step, step, 17);
    write(&db, 4, 3, 0, 1000, 10, 0);
    assert!(check(&db, "overwrite in memtable") > 0);

    // Overwrites in a second file, then a delete pending.
    db.flush(b"m").unwrap();
    check(&db, "overwrite in a second file");
    db.delete_range(5, 1, DAY / 3, DAY / 2).unwrap();
    db.delete_range(6, 2, i64::MIN, DAY / 2 + 5 * step).unwrap();
    check(&db, "deletes pending");
    db.flush(b"m").unwrap();
    check(&db, "deletes flushed");

    db.compact().unwrap();
    assert!(check(&db, "compacted") > 0);
}

#[test]
fn huge_bigints_are_read_not_taken_from_statistics() {
    let d = tempfile::tempdir().unwrap();
    let db = Tsdb::open(d.path(), opts()).unwrap();
    let big = (1i64 << 60) + 1;
    let rows = (0..10)
        .map(|k| {
            vec![
                Value::Timestamp(k),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::BigInt(big + k),
            ]
        })
        .collect();
    db.write(
        1,
        &[TableWrite {
            uid: 1,
            suid: 100,
            schema: schema(),
            col_ids: vec![1, 2, 3, 4, 5],
            rows,
        }],
    )
    .unwrap();
    db.flush(b"m").unwrap();
    let cols = [AggColumn {
        id: 5,
        ty: DataType::BigInt,
        min_max: true,
        sum: true,
    }];
    let (got, report) = db.aggregate(&[(1, 100)], 0, 100, &cols).unwrap();
    assert_eq!(report.blocks_from_stats, 0);
    let t = &got[&1];
    assert_eq!(t.rows, 10);
    assert_eq!(t.cols[0].min, Some(Value::BigInt(big)));
    assert_eq!(t.cols[0].max, Some(Value::BigInt(big + 9)));
    assert_eq!(t.cols[0].sum, Some(AggSum::Int(10 * big as i128 + 45)));
    // COUNT alone is always exact.
    let count_only = [AggColumn {
        min_max: false,
        sum: false,
        ..cols[0]
    }];
    let (got, report) = db.aggregate(&[(1, 100)], 0, 100, &count_only).unwrap();
    assert_eq!(report.blocks_from_stats, 1);
    assert_eq!(got[&1].cols[0].count, 10);
}
