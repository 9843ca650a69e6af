//! Parse throughput of the INSERT hot path and of a mixed statement set.
//! `cargo run --release -p taos-sql --example parse_bench`

use std::time::Instant;

fn measure(name: &str, sql: &str, rounds: usize) {
    let start = Instant::now();
    for _ in 0..rounds {
        match taos_sql::parse(sql) {
            Ok(v) => assert!(!v.is_empty()),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (sql.len() * rounds) as f64 / 1e6;
    println!(
        "{name:<28} {:>8} bytes  {:>8.1} MB/s  {:>10.1} stmts/s",
        sql.len(),
        mb / secs,
        rounds as f64 / secs
    );
}

fn main() {
    let mut insert = String::from("INSERT INTO d1 VALUES ");
    for i in 0..10_000i64 {
        insert.push_str(&format!(
            "({},{:.1},{},{:.2})",
            1_700_000_000_000 + i,
            10.0 + (i % 7) as f64 * 0.3,
            215 + i % 9,
            0.31
        ));
    }
    measure("insert 10k rows", &insert, 300);

    let mut multi = String::from("INSERT INTO ");
    for t in 0..100 {
        multi.push_str(&format!("d{t} USING meters TAGS ({t}, 'loc{t}') VALUES "));
        for i in 0..100i64 {
            multi.push_str(&format!("(now + {i}s, {}.5, 'x{i}', null) ", i));
        }
    }
    measure("insert 100 tables x 100", &multi, 300);

    let select = "SELECT _wstart, avg(current), max(voltage) FROM db.meters WHERE ts >= '2024-01-01' AND groupid IN (1,2,3) \
                  PARTITION BY tbname INTERVAL(1h) SLIDING(30m) FILL(PREV) ORDER BY _wstart DESC LIMIT 100";
    measure("select with window", select, 200_000);
}
