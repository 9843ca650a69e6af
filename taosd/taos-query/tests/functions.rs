//! TDengine functions registered on a DataFusion session, run over small in-memory tables.

use common::{Precision, SessionTz};
use std::sync::Arc;
use taos_query::datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use taos_query::datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use taos_query::datafusion::common::ScalarValue;
use taos_query::datafusion::datasource::MemTable;
use taos_query::datafusion::prelude::{SessionConfig, SessionContext};
use taos_query::functions;

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn ctx_with(p: Precision, tz: SessionTz) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    functions::register_for(&ctx, p, tz);
    ctx
}

fn shanghai() -> SessionTz {
    SessionTz::Fixed(8 * 3600)
}

/// Table `t`: ts (ms), v DOUBLE, i INT, s VARCHAR, g VARCHAR (group), split over two partitions.
fn add_table(ctx: &SessionContext) {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("v", DataType::Float64, true),
        Field::new("i", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("g", DataType::Utf8, true),
    ]));
    let batch = |ts: Vec<i64>,
                 v: Vec<Option<f64>>,
                 i: Vec<Option<i32>>,
                 s: Vec<Option<&str>>,
                 g: Vec<&str>| {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(ts)),
            Arc::new(Float64Array::from(v)),
            Arc::new(Int32Array::from(i)),
            Arc::new(StringArray::from(s)),
            Arc::new(StringArray::from(g)),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("batch")
    };
    // Group a: points at 0s, 10s, 20s, 30s with values 1, 3, 5, 2 (counter reset at 30s);
    // group b: 0s -> 10, 5s -> NULL, 10s -> 20. Rows deliberately out of time order across
    // partitions so merging must sort.
    let p1 = batch(
        vec![T0 + 20_000, T0, T0 + 5_000],
        vec![Some(5.0), Some(1.0), None],
        vec![Some(7), Some(1), Some(7)],
        vec![Some("x"), Some("y"), None],
        vec!["a", "a", "b"],
    );
    let p2 = batch(
        vec![T0 + 30_000, T0 + 10_000, T0, T0 + 10_000],
        vec![Some(2.0), Some(3.0), Some(10.0), Some(20.0)],
        vec![Some(1), Some(7), None, Some(3)],
        vec![Some("x"), Some("x"), Some("z"), Some("w")],
        vec!["a", "a", "b", "b"],
    );
    let t = MemTable::try_new(schema, vec![vec![p1], vec![p2]]).expect("memtable");
    ctx.register_table("t", Arc::new(t)).expect("register");
}

/// Rows as strings (NULL for nulls) and the output column types.
async fn run(ctx: &SessionContext, sql: &str) -> (Vec<Vec<String>>, Vec<DataType>) {
    let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let types: Vec<DataType> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let batches = df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let row = (0..b.num_columns())
                .map(|c| {
                    let v = ScalarValue::try_from_array(b.column(c), r).expect("value");
                    if v.is_null() {
                        "NULL".to_string()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    (rows, types)
}

async fn one(ctx: &SessionContext, sql: &str) -> (String, DataType) {
    let (rows, types) = run(ctx, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    (rows[0][0].clone(), types[0].clone())
}

async fn fails(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => match df.collect().await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{sql} should fail"),
        },
    }
}

#[tokio::test]
async fn to_iso8601() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let (v, ty) = one(
        &ctx,
        &format!("select to_iso8601(arrow_cast({T0}, 'Timestamp(Millisecond, None)'))"),
    )
    .await;
    assert_eq!(v, "2024-01-01T08:00:00.000+08:00");
    assert_eq!(ty, DataType::Utf8);
    let (v, _) = one(
        &ctx,
        &format!(
            "select to_iso8601(arrow_cast({}, 'Timestamp(Millisecond, None)'), '+00:00')",
            T0 + 5
        ),
    )
    .await;
    assert_eq!(v, "2024-01-01T00:00:00.005+00:00");
    let (v, _) = one(
        &ctx,
        &format!("select to_iso8601(arrow_cast({T0}, 'Timestamp(Millisecond, None)'), 'Z')"),
    )
    .await;
    assert_eq!(v, "2024-01-01T00:00:00.000Z");
    let (v, _) = one(
        &ctx,
        &format!("select to_iso8601(arrow_cast({T0}, 'Timestamp(Millisecond, None)'), '-0530')"),
    )
    .await;
    assert_eq!(v, "2023-12-31T18:30:00.000-0530");
    // Microsecond timestamps show six digits; integers are read in the database precision.
    let (v, _) = one(
        &ctx,
        &format!(
            "select to_iso8601(arrow_cast({}, 'Timestamp(Microsecond, None)'))",
            T0 * 1000 + 7
        ),
    )
    .await;
    assert_eq!(v, "2024-01-01T08:00:00.000007+08:00");
    let (v, _) = one(&ctx, "select to_iso8601(1)").await;
    assert_eq!(v, "1970-01-01T08:00:00.001+08:00");
    let (v, _) = one(&ctx, "select to_iso8601(NULL)").await;
    assert_eq!(v, "NULL");
    let (rows, _) = run(
        &ctx,
        "select to_iso8601(ts) from t where g = 'b' order by ts",
    )
    .await;
    assert_eq!(rows[0][0], "2024-01-01T08:00:00.000+08:00");
    assert!(fails(&ctx, "select to_iso8601(ts, '8') from t")
        .await
        .contains("timzone"));

    // register(): the zone comes from datafusion.execution.time_zone, else UTC.
    let cfg = SessionConfig::new().set_str("datafusion.execution.time_zone", "+05:00");
    let ctx = SessionContext::new_with_config(cfg);
    functions::register(&ctx);
    let (v, _) = one(&ctx, "select to_iso8601(0)").await;
    assert_eq!(v, "1970-01-01T05:00:00.000+05:00");
    let ctx = SessionContext::new();
    functions::register(&ctx);
    let (v, _) = one(&ctx, "select to_iso8601(0)").await;
    assert_eq!(v, "1970-01-01T00:00:00.000+00:00");
}

#[tokio::test]
async fn to_unixtimestamp() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    let (v, ty) = one(&ctx, "select to_unixtimestamp('2024-01-01T00:00:00Z')").await;
    assert_eq!((v.as_str(), ty), ("1704067200000", DataType::Int64));
    let (v, _) = one(&ctx, "select to_unixtimestamp('2024-01-01 08:00:00.123')").await;
    assert_eq!(v, "1704067200123");
    let (v, ty) = one(&ctx, "select to_unixtimestamp('2024-01-01 08:00:00', 1)").await;
    assert_eq!(ty, DataType::Timestamp(TimeUnit::Millisecond, None));
    assert_eq!(v, "1704067200000");
    let (_, ty) = one(&ctx, "select to_unixtimestamp('2024-01-01 08:00:00', 0)").await;
    assert_eq!(ty, DataType::Int64);
    let (v, _) = one(&ctx, "select to_unixtimestamp('not a time')").await;
    assert_eq!(v, "NULL");
    let (v, _) = one(&ctx, "select to_unixtimestamp(NULL)").await;
    assert_eq!(v, "NULL");
    // Database precision.
    let ctx = ctx_with(Precision::Ns, SessionTz::Utc);
    let (v, _) = one(
        &ctx,
        "select to_unixtimestamp('2024-01-01T00:00:00.000000001+00:00')",
    )
    .await;
    assert_eq!(v, "1704067200000000001");
    let (_, ty) = one(&ctx, "select to_unixtimestamp('2024-01-01', 1)").await;
    assert_eq!(ty, DataType::Timestamp(TimeUnit::Nanosecond, None));
}

#[tokio::test]
async fn timediff() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let (v, ty) = one(
        &ctx,
        "select timediff('2022-01-01 08:00:00', '2022-01-01 08:00:01', 1000)",
    )
    .await;
    assert_eq!((v.as_str(), ty), ("-1", DataType::Int64));
    let (v, _) = one(
        &ctx,
        "select timediff('2022-01-01 08:00:01', '2022-01-01 08:00:00')",
    )
    .await;
    assert_eq!(v, "1000");
    let (v, _) = one(
        &ctx,
        "select timediff('2022-01-01 08:00:01', '2022-01-01 08:00:00', '1s')",
    )
    .await;
    assert_eq!(v, "1");
    let (v, _) = one(&ctx, "select timediff('2022-01-02', '2022-01-01', 3600000)").await;
    assert_eq!(v, "24");
    let (v, _) = one(&ctx, "select timediff(NULL, '2022-01-01')").await;
    assert_eq!(v, "NULL");
    let (v, _) = one(&ctx, "select timediff('bad', '2022-01-01')").await;
    assert_eq!(v, "NULL");
    // NULL or sub-precision units mean the precision itself.
    let (v, _) = one(&ctx, "select timediff(1000, 0, NULL)").await;
    assert_eq!(v, "1000");
    let (v, _) = one(&ctx, "select timediff(1000, 0, 0)").await;
    assert_eq!(v, "1000");
    // Column against a string and a timestamp of another unit.
    let (rows, _) = run(
        &ctx,
        "select timediff(ts, '2024-01-01 08:00:00', 1000) from t where g = 'a' order by ts",
    )
    .await;
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        vec!["0", "10", "20", "30"]
    );
    let (v, _) = one(
        &ctx,
        &format!("select timediff(arrow_cast({}, 'Timestamp(Microsecond, None)'), arrow_cast({}, 'Timestamp(Microsecond, None)'))", 5_000_123, 0),
    )
    .await;
    assert_eq!(v, "5000123");
}

#[tokio::test]
async fn to_char_and_to_timestamp() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let sql = format!(
        "select to_char(arrow_cast({}, 'Timestamp(Millisecond, None)'), 'yyyy-mm-dd hh24:mi:ss.ms Month DY Mon dd hh12 PM tzh \"yyyy\"')",
        T0 + 3_723_456
    );
    let (v, ty) = one(&ctx, &sql).await;
    assert_eq!(ty, DataType::Utf8);
    assert_eq!(
        v,
        "2024-01-01 09:02:03.456 January   MON Jan 01 09 AM +08 yyyy"
    );
    let (v, _) = one(
        &ctx,
        &format!(
            "select to_char(arrow_cast({T0}, 'Timestamp(Millisecond, None)'), 'us ns DAY d ddd')"
        ),
    )
    .await;
    assert_eq!(v, "000000 000000000 MONDAY    2 001");
    // TDengine's to_timestamp(str, fmt) replaces DataFusion's: the result is in the database
    // precision, read in the session zone.
    let (v, ty) = one(
        &ctx,
        "select to_timestamp('2023-10-10 10:10:10', 'yyyy-mm-dd hh24:mi:ss')",
    )
    .await;
    assert_eq!(ty, DataType::Timestamp(TimeUnit::Millisecond, None));
    assert_eq!(v, "1696903810000");
    let (v, _) = one(
        &ctx,
        "select to_timestamp('2023-JANUARY-01 02:03:04PM +00', 'YYYY-month-dd hh:mi:ssAM TZH')",
    )
    .await;
    assert_eq!(v, "1672581784000");
    let (v, _) = one(&ctx, "select to_timestamp('2023-10-10 10:10:10.123.000456.000000789+08', 'yyyy-mm-dd hh:mi:ss.ms.us.ns')").await;
    assert_eq!(v, "1696903810123");
    let (v, _) = one(&ctx, "select to_timestamp('garbage', 'yyyy-mm-dd')").await;
    assert_eq!(v, "NULL");
    let ctx = ctx_with(Precision::Ns, SessionTz::Utc);
    let (v, ty) = one(&ctx, "select to_timestamp('2023-10-10 10:10:10.123.000456.000000789', 'yyyy-mm-dd hh:mi:ss.ms.us.ns')").await;
    assert_eq!(ty, DataType::Timestamp(TimeUnit::Nanosecond, None));
    assert_eq!(v, "1696932610123456789");
    let (v, _) = one(
        &ctx,
        "select to_char(to_timestamp('2024-02-29', 'yyyy-mm-dd'), 'yyyy-mm-dd hh24:mi:ss.ns')",
    )
    .await;
    assert_eq!(v, "2024-02-29 00:00:00.000000000");
}

#[tokio::test]
async fn week_functions() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    let (v, _) = one(&ctx, "select weekday('2000-01-01')").await;
    assert_eq!(v, "5");
    let (v, _) = one(&ctx, "select dayofweek('2000-01-01')").await;
    assert_eq!(v, "7");
    let (v, _) = one(&ctx, "select weekofyear('2000-01-01')").await;
    assert_eq!(v, "52");
    let (rows, _) = run(&ctx, "select week('2000-01-01', 0), week('2000-01-01', 1), week('2000-01-01', 2), week('2000-01-01', 3), week('2000-01-01')").await;
    assert_eq!(rows[0], vec!["0", "0", "52", "52", "0"]);
    let (v, _) = one(&ctx, "select date(946656000000)").await;
    assert_eq!(v, "2000-01-01");
}

#[tokio::test]
async fn aggregates_twa_irate() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let (rows, types) = run(
        &ctx,
        "select g, twa(v, ts), irate(v, ts) from t group by g order by g",
    )
    .await;
    assert_eq!(types[1], DataType::Float64);
    assert_eq!(types[2], DataType::Float64);
    // a: trapezoids (1+3)/2*10 + (3+5)/2*10 + (5+2)/2*10 = 20+40+35 = 95 over 30 s.
    let twa_a: f64 = rows[0][1].parse().unwrap_or_default();
    assert!((twa_a - 95.0 / 30.0).abs() < 1e-12, "{rows:?}");
    // a: last two points 5 -> 2 (reset): the increase is 2 over 10 s.
    assert_eq!(rows[0][2], "0.2");
    // b: (10+20)/2 over 10 s; rate 10 per 10 s.
    assert_eq!(rows[1][1], "15");
    assert_eq!(rows[1][2], "1");
    // One point: twa is the value, irate 0; no values: NULL.
    let (rows, _) = run(&ctx, "select twa(v, ts), irate(v, ts) from t where ts = arrow_cast(1704067200000, 'Timestamp(Millisecond, None)') and g = 'a'").await;
    assert_eq!(rows[0], vec!["1", "0"]);
    let (rows, _) = run(
        &ctx,
        "select twa(v, ts), irate(v, ts) from t where v is null",
    )
    .await;
    assert_eq!(rows[0], vec!["NULL", "NULL"]);
    assert!(fails(&ctx, "select twa(v) from t")
        .await
        .contains("timestamp"));
}

#[tokio::test]
async fn aggregates_mode_leastsquares_histogram() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let (rows, types) = run(
        &ctx,
        "select g, mode(i), mode(s) from t group by g order by g",
    )
    .await;
    assert_eq!(types[1], DataType::Int32);
    assert_eq!(types[2], DataType::Utf8);
    // a: 7 and 1 twice each: ties go to the smallest value.
    assert_eq!(rows[0][1..], ["1", "x"]);
    // b: 7, NULL, 3: NULL skipped, tie -> smallest.
    assert_eq!(rows[1][1], "3");
    assert_eq!(rows[1][2], "w");
    let (v, _) = one(&ctx, "select mode(i) from t where i is null").await;
    assert_eq!(v, "NULL");

    // Least squares over v ordered by time: a = 1, 3, 5, 2 at x = 1, 3, 5, 7.
    let (v, ty) = one(
        &ctx,
        "select leastsquares(v, 1, 2, ts) from t where g = 'a'",
    )
    .await;
    assert_eq!(ty, DataType::Utf8);
    assert_eq!(v, "{slop:0.250000, intercept:1.750000}");
    let (v, _) = one(
        &ctx,
        "select leastsquares(v, 1, 2, ts) from t where g = 'zz'",
    )
    .await;
    assert_eq!(v, "NULL");

    let (v, ty) = one(
        &ctx,
        "select histogram(v, 'user_input', '[0, 2, 10]', 0) from t",
    )
    .await;
    assert_eq!(ty, DataType::Utf8);
    assert_eq!(
        v,
        r#"[{"lower_bin":0, "upper_bin":2, "count":2}, {"lower_bin":2, "upper_bin":10, "count":3}]"#
    );
    let (v, _) = one(
        &ctx,
        r#"select histogram(v, 'linear_bin', '{"start": 0.0, "width": 10.0, "count": 1, "infinity": true}', 1) from t"#,
    )
    .await;
    assert_eq!(
        v,
        r#"[{"lower_bin":-inf, "upper_bin":0, "count":0.000000}, {"lower_bin":0, "upper_bin":10, "count":0.833333}, {"lower_bin":10, "upper_bin":inf, "count":0.166667}]"#
    );
    assert!(fails(
        &ctx,
        "select histogram(v, 'user_input', '[2, 1]', 0) from t"
    )
    .await
    .contains("ascending"));
    // One row per bin through unnest.
    let (rows, _) = run(&ctx, "select unnest(histogram_bins(v, 'log_bin', '{\"start\":1.0, \"factor\": 2.0, \"count\": 2, \"infinity\": false}', 0)) from t").await;
    assert_eq!(
        rows,
        vec![
            vec![r#"{"lower_bin":1, "upper_bin":2, "count":1}"#.to_string()],
            vec![r#"{"lower_bin":2, "upper_bin":4, "count":1}"#.to_string()],
        ]
    );
}

#[tokio::test]
async fn scalars() {
    let ctx = ctx_with(Precision::Ms, shanghai());
    add_table(&ctx);
    let (v, ty) = one(&ctx, "select crc32('This is a string')").await;
    assert_eq!((v.as_str(), ty), ("141976383", DataType::UInt32));
    let (v, _) = one(&ctx, "select crc32(123)").await;
    assert_eq!(v, "2286445522");
    let (v, _) = one(&ctx, "select crc32(NULL)").await;
    assert_eq!(v, "NULL");
    let (rows, types) = run(&ctx, "select mod(10, 3), mod(1, 0), mod(-7.5, 2)").await;
    assert_eq!(rows[0], vec!["1", "NULL", "-1.5"]);
    assert_eq!(types[0], DataType::Float64);
    let (rows, types) = run(
        &ctx,
        "select sign(-5), sign(arrow_cast(0, 'Int32')), sign(2.5)",
    )
    .await;
    assert_eq!(rows[0], vec!["-1", "0", "1"]);
    assert_eq!(types[2], DataType::Float64);
    assert_eq!(types[1], DataType::Int32);
    let (v, _) = one(&ctx, "select rand(1)").await;
    assert_eq!(v.parse::<f64>().unwrap_or_default(), 16807.0 / 2147483647.0);
    let (v, _) = one(&ctx, "select rand()").await;
    let r: f64 = v.parse().unwrap_or(-1.0);
    assert!((0.0..1.0).contains(&r));
    let (rows, _) = run(
        &ctx,
        "select char(77), char(77, NULL, 77), char(77 * 256 + 77)",
    )
    .await;
    assert_eq!(rows[0], vec!["M", "MM", "MM"]);
    let (v, ty) = one(&ctx, "select ascii('testascii')").await;
    assert_eq!((v.as_str(), ty), ("116", DataType::Int64));
    let (rows, _) = run(&ctx, "select concat('a', 'b', 'c'), concat('a', NULL), concat_ws('-', 'a', 'b'), concat_ws('-', 'a', NULL)").await;
    assert_eq!(rows[0], vec!["abc", "NULL", "a-b", "NULL"]);
    let (rows, _) = run(&ctx, "select md5('mytext'), sha1('mytext'), to_base64('Hello, world!'), from_base64('SGVsbG8sIHdvcmxkIQ==')").await;
    assert_eq!(
        rows[0],
        vec![
            "947ef8c8db156a568d5974d71f7638f4",
            "65d922aad93c7e165ed888a2ab85befe9841fd39",
            "SGVsbG8sIHdvcmxkIQ==",
            "Hello, world!"
        ]
    );
    let (v, _) = one(&ctx, r#"select to_json('{"k": "v", "n": 1}')"#).await;
    assert_eq!(v, r#"{"k": "v", "n": 1}"#);
    assert!(fails(&ctx, "select to_json('{k: 1')")
        .await
        .contains("json"));
    // Column inputs.
    let (rows, _) = run(
        &ctx,
        "select concat(s, g), crc32(i) from t where g = 'a' order by ts",
    )
    .await;
    assert_eq!(rows[0][0], "ya");
    let _ = TimestampMicrosecondArray::from(vec![0i64]);
    let _ = Int64Array::from(vec![0i64]);
}

#[test]
fn contract() {
    assert!(
        functions::needs_ts("twa")
            && functions::needs_ts("irate")
            && functions::needs_ts("leastsquares")
    );
    assert!(!functions::needs_ts("mode"));
    for f in ["twa", "irate", "mode", "leastsquares", "histogram"] {
        assert!(functions::is_aggregate(f), "{f}");
    }
    assert!(!functions::is_aggregate("to_iso8601"));
}
