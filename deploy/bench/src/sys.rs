//! What the server costs: bytes on disk under its data dir, peak memory from /proc.

use std::path::Path;

/// Total size of regular files under `path` (0 if it does not exist). Symlinks are not followed.
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries.flatten().map(|e| dir_bytes(&e.path())).sum()
}

/// Bytes in `DATA/vnode/*/<sub>` summed over vnodes (`sub` = "tsdb", "wal", ...).
pub fn vnode_bytes(data_dir: &Path, sub: &str) -> u64 {
    let Ok(vnodes) = std::fs::read_dir(data_dir.join("vnode")) else {
        return 0;
    };
    vnodes
        .flatten()
        .map(|v| dir_bytes(&v.path().join(sub)))
        .sum()
}

/// Peak resident set (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_peak_rss_and_sizes() {
        assert!(peak_rss_kib(std::process::id()).unwrap_or(0) > 0);
        let dir = std::env::temp_dir().join(format!("bench-sys-{}", std::process::id()));
        let tsdb = dir.join("vnode/vnode2/tsdb");
        std::fs::create_dir_all(&tsdb).unwrap();
        std::fs::write(tsdb.join("f1"), [0u8; 100]).unwrap();
        std::fs::create_dir_all(dir.join("vnode/vnode3/wal")).unwrap();
        std::fs::write(dir.join("vnode/vnode3/wal/0.log"), [0u8; 7]).unwrap();
        assert_eq!(vnode_bytes(&dir, "tsdb"), 100);
        assert_eq!(vnode_bytes(&dir, "wal"), 7);
        assert_eq!(dir_bytes(&dir), 107);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
