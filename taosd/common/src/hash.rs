//! Table placement: MurmurHash3 (x86, 32-bit, seed 0) over `"<acctId>.<db>.<table>"`, as TDengine
//! hashes, so each vgroup owns a contiguous slice of the u32 space.

pub fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0x12345678;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k: u32 = 0;
    for (i, b) in tail.iter().enumerate() {
        k ^= (*b as u32) << (8 * i);
    }
    if !tail.is_empty() {
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Hash of a table name within a database (account id 1, as TDengine's OSS builds use).
pub fn table_hash(db: &str, table: &str) -> u32 {
    let key = format!("1.{db}.{table}");
    murmur3_32(key.as_bytes())
}

/// Split the u32 space evenly into `n` contiguous inclusive ranges.
pub fn hash_ranges(n: u32) -> Vec<(u32, u32)> {
    let n = n.max(1) as u64;
    let span = (u32::MAX as u64 + 1) / n;
    (0..n)
        .map(|i| {
            let begin = i * span;
            let end = if i == n - 1 {
                u32::MAX as u64
            } else {
                (i + 1) * span - 1
            };
            (begin as u32, end as u32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_space() {
        let r = hash_ranges(3);
        assert_eq!(r[0].0, 0);
        assert_eq!(r[2].1, u32::MAX);
        assert_eq!(r[0].1 + 1, r[1].0);
        assert_ne!(table_hash("db", "d1"), table_hash("db", "d2"));
    }
}
