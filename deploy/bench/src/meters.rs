//! The taosBenchmark "meters" workload: one super table of smart meters, child tables `d0..dN`,
//! rows one second apart with deterministic values, so runs are comparable byte for byte.

/// First timestamp of every child table (2023-11-14 22:13:20 UTC, ms precision).
pub const START_TS: i64 = 1_700_000_000_000;
/// Step between rows, ms.
pub const STEP_MS: i64 = 1_000;

pub const CITIES: [&str; 10] = [
    "California.SanFrancisco",
    "California.LosAngeles",
    "California.SanDiego",
    "California.SanJose",
    "California.PaloAlto",
    "California.Campbell",
    "California.MountainView",
    "California.Sunnyvale",
    "California.SantaClara",
    "California.Cupertino",
];

/// xorshift64*: tiny, fast, and the same on every machine.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi` (bias is irrelevant at these ranges).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + (self.next_u64() >> 11) % (hi - lo + 1)
    }
}

pub fn create_database_sql(db: &str, vgroups: u32) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {db} VGROUPS {vgroups}")
}

pub fn create_stable_sql(db: &str) -> String {
    format!(
        "CREATE STABLE IF NOT EXISTS {db}.meters (ts TIMESTAMP, current FLOAT, voltage INT, phase FLOAT) \
         TAGS (groupid INT, location VARCHAR(24))"
    )
}

pub fn create_table_sql(db: &str, table: u64) -> String {
    let groupid = table % 10 + 1;
    let city = CITIES[(table % CITIES.len() as u64) as usize];
    format!("CREATE TABLE IF NOT EXISTS {db}.d{table} USING {db}.meters TAGS ({groupid}, '{city}')")
}

/// The rows of one child table, generated in order.
#[derive(Debug, Clone)]
pub struct TableRows {
    pub table: u64,
    rng: XorShift,
    next: u64,
    total: u64,
}

impl TableRows {
    pub fn new(table: u64, total: u64) -> TableRows {
        TableRows {
            table,
            rng: XorShift::new(table + 1),
            next: 0,
            total,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.total - self.next
    }

    /// Replace `buf` with `INSERT INTO db.dN VALUES (...)...` of up to `max_rows` rows; returns
    /// the number of rows written.
    pub fn next_insert(&mut self, buf: &mut String, db: &str, max_rows: u64) -> u64 {
        let n = self.remaining().min(max_rows);
        buf.clear();
        buf.push_str("INSERT INTO ");
        buf.push_str(db);
        buf.push_str(".d");
        push_u64(buf, self.table);
        buf.push_str(" VALUES ");
        for _ in 0..n {
            let ts = START_TS + self.next as i64 * STEP_MS;
            let current = self.rng.range(950, 1250); // 9.50 ..= 12.50
            let voltage = self.rng.range(215, 225);
            let phase = self.rng.range(300, 360); // 0.300 ..= 0.360
            buf.push('(');
            push_u64(buf, ts as u64);
            buf.push(',');
            push_u64(buf, current / 100);
            buf.push('.');
            push_padded(buf, current % 100, 2);
            buf.push(',');
            push_u64(buf, voltage);
            buf.push_str(",0.");
            push_padded(buf, phase, 3);
            buf.push(')');
            self.next += 1;
        }
        n
    }
}

/// Append a decimal integer without going through `fmt`.
pub fn push_u64(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        buf.push(d as char);
    }
}

fn push_padded(buf: &mut String, v: u64, width: usize) {
    let start = buf.len();
    push_u64(buf, v);
    let len = buf.len() - start;
    for _ in len..width {
        buf.insert(start, '0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_text_is_deterministic_and_in_range() {
        let mut a = TableRows::new(3, 5);
        let mut buf = String::new();
        assert_eq!(a.next_insert(&mut buf, "test", 3), 3);
        assert!(
            buf.starts_with("INSERT INTO test.d3 VALUES (1700000000000,"),
            "{buf}"
        );
        let mut again = String::new();
        TableRows::new(3, 5).next_insert(&mut again, "test", 3);
        assert_eq!(buf, again);
        for row in buf.split('(').skip(1) {
            let vals: Vec<&str> = row.trim_end_matches(')').split(',').collect();
            let current: f64 = vals[1].parse().unwrap();
            let voltage: i32 = vals[2].parse().unwrap();
            let phase: f64 = vals[3].parse().unwrap();
            assert!(
                (9.5..=12.5).contains(&current) && vals[1].split('.').nth(1).unwrap().len() == 2
            );
            assert!((215..=225).contains(&voltage));
            assert!((0.3..=0.36).contains(&phase) && vals[3].len() == 5);
        }
        assert_eq!(a.next_insert(&mut buf, "test", 10), 2);
        assert!(buf.contains("(1700000004000,"));
        assert_eq!(a.remaining(), 0);
    }

    #[test]
    fn ddl() {
        assert_eq!(
            create_table_sql("test", 11),
            "CREATE TABLE IF NOT EXISTS test.d11 USING test.meters TAGS (2, 'California.LosAngeles')"
        );
        let mut s = String::new();
        push_u64(&mut s, 0);
        push_u64(&mut s, 18_446_744_073_709_551_615);
        assert_eq!(s, "018446744073709551615");
    }
}
