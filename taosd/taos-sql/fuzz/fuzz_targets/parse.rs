//! `cargo +nightly fuzz run parse` from `sql/`: the parser must never panic or overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = taos_sql::parse(sql);
    }
});
