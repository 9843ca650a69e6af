//! The write-ahead log: a segmented, append-only, CRC-checked log of `(index, payload)` records.
//! The vnode uses it as its raft log, so indexes are raft log indexes (TDengine's "version").
//!
//! # Files
//!
//! ```text
//! <dir>/00000000000000000001.wal     segment whose first record has index 1
//! <dir>/00000000000000052017.wal     next segment, first index 52017 (= last index of the previous + 1)
//! ```
//!
//! A segment is named by the index of its first record, 20 decimal digits, so names sort in log
//! order. Appends go to the last segment; a new segment is started when the last one has reached
//! `segment_bytes` (a batch is never split from its segment in the middle of a record, so
//! segments may overshoot by one batch). Indexes are contiguous across the whole log.
//!
//! # Record framing (little-endian)
//!
//! ```text
//! +-------------+-----------------------------+-----------+-----------------+
//! | len: u32    | crc: u32                    | index: u64| payload: len B  |
//! +-------------+-----------------------------+-----------+-----------------+
//!                crc32c(index bytes ++ payload)
//! ```
//!
//! # Recovery
//!
//! [`Wal::open`] reads every segment and checks every record (length, CRC, expected index).
//! A bad record in the **last** segment that is not followed by a valid record (a write torn by
//! a crash, or garbage/zeros after it) is cut off with `set_len` and a warning. A bad record
//! anywhere else, or one followed by a valid record, is corruption: `open` fails with
//! [`StorageError::WalCorrupted`] (TDengine code 0x1003) rather than silently dropping data.
//!
//! # Durability (`WAL_LEVEL`)
//!
//! * level 2: every `append` ends with `fdatasync` of the segment(s) it wrote.
//! * level 1: `append` returns without syncing; it syncs when `fsync_period_ms` has elapsed since
//!   the last sync (checked at each append). There is **no background thread**: the owner should
//!   call [`Wal::tick`] from its timer (e.g. every `fsync_period_ms`) so an idle log is synced too.
//!   `fsync_period_ms == 0` means sync on every append, as in TDengine.
//!
//! # In-memory index
//!
//! For every segment the byte offset of each record is kept (8 bytes per record), so `read` of a
//! small tail range is one positioned read, and a large range is one read per segment.
//!
//! # Removal
//!
//! `truncate_from(i)` (raft conflict) deletes whole segments starting at or after `i` and cuts
//! the segment holding `i`. `purge_upto(i)` (after a flush/snapshot) deletes only whole segments
//! whose records are all `<= i`; so `first_index()` may stay below `i + 1`.

use crate::error::{sync_dir, StorageError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Size of the record header: len u32 + crc u32 + index u64.
pub const HEADER_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// 1 = fsync every `fsync_period_ms`, 2 = fsync before `append` returns.
    pub level: u8,
    pub fsync_period_ms: u64,
    /// A new segment is started once the current one reaches this size.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            level: 1,
            fsync_period_ms: 3000,
            segment_bytes: 64 << 20,
        }
    }
}

struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
    /// Byte offset of record `first + i`.
    offsets: Vec<u64>,
    len: u64,
}

impl Segment {
    fn last(&self) -> Option<u64> {
        if self.offsets.is_empty() {
            None
        } else {
            Some(self.first + self.offsets.len() as u64 - 1)
        }
    }
}

pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    segs: Vec<Segment>,
    /// Index into `segs` of the first segment written since the last sync.
    dirty_from: Option<usize>,
    last_sync: Instant,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.wal")
}

fn encode(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let mut h = crc32c::crc32c(&index.to_le_bytes());
    h = crc32c::crc32c_append(h, payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
}

enum Bad {
    /// The record runs past the end of the data.
    Short,
    /// Header present but CRC or index wrong; `claimed` is the full record length it announces.
    Invalid { claimed: usize, why: String },
}

/// Parse one record at the start of `data`; returns (total length, index, payload range).
fn parse(data: &[u8], expected: u64) -> Result<(usize, &[u8]), Bad> {
    if data.len() < HEADER_BYTES {
        return Err(Bad::Short);
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let total = HEADER_BYTES + len;
    if data.len() < total {
        return Err(Bad::Short);
    }
    let idx_bytes = &data[8..16];
    let payload = &data[16..total];
    let mut h = crc32c::crc32c(idx_bytes);
    h = crc32c::crc32c_append(h, payload);
    if h != crc {
        return Err(Bad::Invalid {
            claimed: total,
            why: "CRC mismatch".into(),
        });
    }
    let mut ib = [0u8; 8];
    ib.copy_from_slice(idx_bytes);
    let index = u64::from_le_bytes(ib);
    if index != expected {
        return Err(Bad::Invalid {
            claimed: total,
            why: format!("index {index}, expected {expected}"),
        });
    }
    Ok((total, payload))
}

impl Wal {
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, StorageError> {
        std::fs::create_dir_all(dir).map_err(StorageError::io(dir))?;
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(StorageError::io(dir))? {
            let entry = entry.map_err(StorageError::io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".wal") {
                match stem.parse::<u64>() {
                    Ok(first) if stem.len() == 20 => firsts.push(first),
                    _ => tracing::warn!(file = name, "ignoring unexpected file in WAL directory"),
                }
            }
        }
        firsts.sort_unstable();
        let mut segs: Vec<Segment> = Vec::with_capacity(firsts.len());
        let n = firsts.len();
        for (k, first) in firsts.into_iter().enumerate() {
            let is_last = k + 1 == n;
            let path = dir.join(segment_name(first));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(StorageError::io(&path))?;
            let data = std::fs::read(&path).map_err(StorageError::io(&path))?;
            let mut offsets = Vec::new();
            let mut pos = 0usize;
            let mut expected = first;
            while pos < data.len() {
                match parse(&data[pos..], expected) {
                    Ok((total, _)) => {
                        offsets.push(pos as u64);
                        pos += total;
                        expected += 1;
                    }
                    Err(bad) => {
                        let (why, followed) = match bad {
                            Bad::Short => ("truncated record".to_string(), false),
                            Bad::Invalid { claimed, why } => {
                                let next = pos + claimed;
                                (
                                    why,
                                    next < data.len() && parse(&data[next..], expected + 1).is_ok(),
                                )
                            }
                        };
                        if is_last && !followed {
                            tracing::warn!(
                                segment = %path.display(),
                                offset = pos,
                                dropped_bytes = data.len() - pos,
                                reason = %why,
                                "WAL: cutting off a torn tail record"
                            );
                            file.set_len(pos as u64).map_err(StorageError::io(&path))?;
                            file.sync_all().map_err(StorageError::io(&path))?;
                            break;
                        }
                        return Err(StorageError::WalCorrupted(format!(
                            "{}: {why} at byte offset {pos} (record index {expected})",
                            path.display()
                        )));
                    }
                }
            }
            let len = pos as u64;
            if offsets.is_empty() && !is_last {
                tracing::warn!(segment = %path.display(), "WAL: removing an empty segment");
                drop(file);
                std::fs::remove_file(&path).map_err(StorageError::io(&path))?;
                continue;
            }
            if let Some(prev) = segs.last() {
                if let Some(prev_last) = prev.last() {
                    if !offsets.is_empty() && first != prev_last + 1 {
                        return Err(StorageError::WalCorrupted(format!(
                            "{}: segment starts at index {first} but the previous one ends at {prev_last}",
                            path.display()
                        )));
                    }
                }
            }
            segs.push(Segment {
                first,
                path,
                file,
                offsets,
                len,
            });
        }
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            segs,
            dirty_from: None,
            last_sync: Instant::now(),
        })
    }

    pub fn options(&self) -> WalOptions {
        self.opts
    }

    pub fn set_options(&mut self, opts: WalOptions) {
        self.opts = opts;
    }

    pub fn first_index(&self) -> Option<u64> {
        self.segs
            .iter()
            .find(|s| !s.offsets.is_empty())
            .map(|s| s.first)
    }

    pub fn last_index(&self) -> Option<u64> {
        self.segs.iter().rev().find_map(|s| s.last())
    }

    fn new_segment(&mut self, first: u64) -> Result<(), StorageError> {
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StorageError::io(&path))?;
        sync_dir(&self.dir)?;
        self.segs.push(Segment {
            first,
            path,
            file,
            offsets: Vec::new(),
            len: 0,
        });
        Ok(())
    }

    /// Append records; their indexes must be contiguous and follow `last_index()` (any start
    /// is accepted when the log is empty).
    pub fn append(&mut self, records: &[(u64, &[u8])]) -> Result<(), StorageError> {
        let Some(&(start, _)) = records.first() else {
            return Ok(());
        };
        for (i, (idx, _)) in records.iter().enumerate() {
            if *idx != start + i as u64 {
                return Err(StorageError::InvalidArgument(format!(
                    "WAL append: indexes not contiguous ({} follows {})",
                    idx,
                    start + i as u64 - 1
                )));
            }
        }
        if let Some(last) = self.last_index() {
            if start != last + 1 {
                return Err(StorageError::InvalidArgument(format!(
                    "WAL append: index {start} does not follow the last index {last}"
                )));
            }
        }
        let mut i = 0;
        let mut buf = Vec::new();
        while i < records.len() {
            let need_new = match self.segs.last() {
                None => true,
                Some(s) if s.offsets.is_empty() => s.first != records[i].0,
                Some(s) => s.len >= self.opts.segment_bytes,
            };
            if need_new {
                if let Some(s) = self.segs.last() {
                    if s.offsets.is_empty() {
                        let path = s.path.clone();
                        self.segs.pop();
                        std::fs::remove_file(&path).map_err(StorageError::io(&path))?;
                    }
                }
                self.new_segment(records[i].0)?;
            }
            let seg_idx = self.segs.len() - 1;
            let seg = &mut self.segs[seg_idx];
            buf.clear();
            let mut new_offsets = Vec::new();
            // At least one record goes into this segment; stop when it is full.
            loop {
                new_offsets.push(seg.len + buf.len() as u64);
                encode(&mut buf, records[i].0, records[i].1);
                i += 1;
                if i == records.len() || seg.len + buf.len() as u64 >= self.opts.segment_bytes {
                    break;
                }
            }
            if let Err(e) = seg.file.write_all_at(&buf, seg.len) {
                let _ = seg.file.set_len(seg.len);
                return Err(StorageError::Io {
                    path: seg.path.clone(),
                    source: e,
                });
            }
            seg.len += buf.len() as u64;
            seg.offsets.extend(new_offsets);
            self.dirty_from.get_or_insert(seg_idx);
        }
        let due = self.last_sync.elapsed() >= Duration::from_millis(self.opts.fsync_period_ms);
        if self.opts.level >= 2 || due {
            self.sync()?;
        }
        Ok(())
    }

    /// fsync every segment written since the last sync.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(from) = self.dirty_from.take() {
            for s in self.segs.iter().skip(from) {
                s.file.sync_data().map_err(StorageError::io(&s.path))?;
            }
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// For WAL_LEVEL 1: sync if something is unsynced and `fsync_period_ms` has elapsed.
    /// Call it from a timer; there is no background thread.
    pub fn tick(&mut self) -> Result<(), StorageError> {
        if self.dirty_from.is_some()
            && self.last_sync.elapsed() >= Duration::from_millis(self.opts.fsync_period_ms)
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Records with `from <= index <= to_inclusive` that exist (the range is clamped to
    /// `first_index()..=last_index()`), CRC-checked.
    pub fn read(&self, from: u64, to_inclusive: u64) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        if from > to_inclusive {
            return Ok(out);
        }
        let start_seg = self
            .segs
            .partition_point(|s| s.first <= from)
            .saturating_sub(1);
        for seg in &self.segs[start_seg..] {
            let Some(seg_last) = seg.last() else { continue };
            if seg.first > to_inclusive {
                break;
            }
            let a = from.max(seg.first);
            let b = to_inclusive.min(seg_last);
            if a > b {
                continue;
            }
            let start = seg.offsets[(a - seg.first) as usize];
            let end = if b == seg_last {
                seg.len
            } else {
                seg.offsets[(b - seg.first + 1) as usize]
            };
            let mut buf = vec![0u8; (end - start) as usize];
            seg.file
                .read_exact_at(&mut buf, start)
                .map_err(StorageError::io(&seg.path))?;
            out.reserve((b - a + 1) as usize);
            let mut pos = 0usize;
            for idx in a..=b {
                match parse(&buf[pos..], idx) {
                    Ok((total, payload)) => {
                        out.push((idx, payload.to_vec()));
                        pos += total;
                    }
                    Err(_) => {
                        return Err(StorageError::WalCorrupted(format!(
                            "{}: record {idx} at byte offset {} fails its check",
                            seg.path.display(),
                            start as usize + pos
                        )))
                    }
                }
            }
        }
        Ok(out)
    }

    /// Remove every record with index >= `index`.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StorageError> {
        while let Some(s) = self.segs.last() {
            if s.first >= index {
                let path = s.path.clone();
                self.segs.pop();
                std::fs::remove_file(&path).map_err(StorageError::io(&path))?;
            } else {
                break;
            }
        }
        if let Some(s) = self.segs.last_mut() {
            let keep = (index - s.first) as usize;
            if keep < s.offsets.len() {
                let new_len = s.offsets[keep];
                s.file.set_len(new_len).map_err(StorageError::io(&s.path))?;
                s.file.sync_all().map_err(StorageError::io(&s.path))?;
                s.offsets.truncate(keep);
                s.len = new_len;
            }
        }
        if let Some(d) = self.dirty_from {
            if d >= self.segs.len() {
                self.dirty_from = self.segs.len().checked_sub(1);
            }
        }
        sync_dir(&self.dir)
    }

    /// Delete whole segments whose records are all `<= index`.
    pub fn purge_upto(&mut self, index: u64) -> Result<(), StorageError> {
        let mut n = 0;
        for s in &self.segs {
            match s.last() {
                Some(l) if l <= index => n += 1,
                _ => break,
            }
        }
        if n == 0 {
            return Ok(());
        }
        for s in self.segs.drain(..n) {
            std::fs::remove_file(&s.path).map_err(StorageError::io(&s.path))?;
        }
        self.dirty_from = self.dirty_from.map(|d| d.saturating_sub(n));
        if self.segs.is_empty() {
            self.dirty_from = None;
        }
        sync_dir(&self.dir)
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segs.iter().map(|s| s.len).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "WAL: final sync failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seg: u64) -> WalOptions {
        WalOptions {
            level: 1,
            fsync_period_ms: 1000,
            segment_bytes: seg,
        }
    }

    fn payload(i: u64) -> Vec<u8> {
        format!("record-{i}-")
            .repeat((i % 5 + 1) as usize)
            .into_bytes()
    }

    fn fill(w: &mut Wal, from: u64, to: u64) {
        for i in from..=to {
            let p = payload(i);
            w.append(&[(i, &p)]).unwrap();
        }
    }

    #[test]
    fn append_read_reopen_across_segments() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = Wal::open(d.path(), opts(200)).unwrap();
            assert_eq!(w.first_index(), None);
            fill(&mut w, 1, 50);
            // batch append
            let ps: Vec<Vec<u8>> = (51..=60).map(payload).collect();
            let recs: Vec<(u64, &[u8])> = (51..=60)
                .zip(ps.iter())
                .map(|(i, p)| (i, p.as_slice()))
                .collect();
            w.append(&recs).unwrap();
            assert!(w.segment_count() > 3);
            assert_eq!((w.first_index(), w.last_index()), (Some(1), Some(60)));
            assert!(w.append(&[(62, b"x")]).is_err());
            let r = w.read(10, 12).unwrap();
            assert_eq!(
                r,
                vec![(10, payload(10)), (11, payload(11)), (12, payload(12))]
            );
        }
        let w = Wal::open(d.path(), opts(200)).unwrap();
        assert_eq!((w.first_index(), w.last_index()), (Some(1), Some(60)));
        let all = w.read(0, 100).unwrap();
        assert_eq!(all.len(), 60);
        for (i, (idx, p)) in all.iter().enumerate() {
            assert_eq!(*idx, i as u64 + 1);
            assert_eq!(*p, payload(*idx));
        }
        assert_eq!(w.read(60, 60).unwrap().len(), 1);
        assert!(w.read(61, 70).unwrap().is_empty());
    }

    #[test]
    fn level2_and_empty_start() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Wal::open(
            d.path(),
            WalOptions {
                level: 2,
                ..opts(1 << 20)
            },
        )
        .unwrap();
        w.append(&[(100, b"a"), (101, b"b")]).unwrap();
        assert_eq!(w.first_index(), Some(100));
        w.set_options(opts(1 << 20));
        w.append(&[(102, b"c")]).unwrap();
        w.tick().unwrap();
        drop(w);
        let w = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert_eq!(w.read(100, 102).unwrap().len(), 3);
    }

    fn last_segment(dir: &Path) -> PathBuf {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v.pop().unwrap()
    }

    #[test]
    fn torn_tail_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = Wal::open(d.path(), opts(1 << 20)).unwrap();
            fill(&mut w, 1, 10);
        }
        let seg = last_segment(d.path());
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        {
            let mut w = Wal::open(d.path(), opts(1 << 20)).unwrap();
            assert_eq!(w.last_index(), Some(9));
            // garbage after the last good record
            w.append(&[(10, b"ten")]).unwrap();
        }
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&[0xAB; 7]);
        std::fs::write(&seg, &bytes).unwrap();
        let w = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert_eq!(w.last_index(), Some(10));
        assert_eq!(w.read(10, 10).unwrap()[0].1, b"ten".to_vec());
        // a corrupt last record (bad CRC, nothing valid after it) is also a torn tail
        drop(w);
        let mut bytes = std::fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xFF;
        std::fs::write(&seg, &bytes).unwrap();
        let w = Wal::open(d.path(), opts(1 << 20)).unwrap();
        assert_eq!(w.last_index(), Some(9));
    }

    #[test]
    fn corrupt_middle_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = Wal::open(d.path(), opts(1 << 20)).unwrap();
            fill(&mut w, 1, 10);
        }
        let seg = last_segment(d.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[HEADER_BYTES + 2] ^= 0x55; // payload of record 1
        std::fs::write(&seg, &bytes).unwrap();
        let e = Wal::open(d.path(), opts(1 << 20)).err().unwrap();
        assert!(matches!(e, StorageError::WalCorrupted(_)), "{e}");
        assert_eq!(e.to_taos().short_code(), 0x1003);

        // corruption in a non-last segment is an error even at its end
        let d = tempfile::tempdir().unwrap();
        {
            let mut w = Wal::open(d.path(), opts(100)).unwrap();
            fill(&mut w, 1, 30);
        }
        let mut v: Vec<PathBuf> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        let len = std::fs::metadata(&v[0]).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&v[0])
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        assert!(matches!(
            Wal::open(d.path(), opts(100)),
            Err(StorageError::WalCorrupted(_))
        ));
    }

    #[test]
    fn truncate_and_purge() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Wal::open(d.path(), opts(150)).unwrap();
        fill(&mut w, 1, 40);
        w.truncate_from(25).unwrap();
        assert_eq!(w.last_index(), Some(24));
        fill(&mut w, 25, 30);
        assert_eq!(w.read(24, 25).unwrap()[1], (25, payload(25)));
        w.purge_upto(12).unwrap();
        let first = w.first_index().unwrap();
        assert!(first <= 13 && first > 1, "first {first}");
        assert_eq!(w.read(0, 100).unwrap().len() as u64, 30 - first + 1);
        drop(w);
        let mut w = Wal::open(d.path(), opts(150)).unwrap();
        assert_eq!(w.last_index(), Some(30));
        assert_eq!(w.first_index(), Some(first));
        w.truncate_from(first).unwrap();
        assert_eq!(w.last_index(), None);
        w.append(&[(7, b"seven")]).unwrap();
        w.purge_upto(100).unwrap();
        assert_eq!(w.first_index(), None);
        w.append(&[(200, b"x")]).unwrap();
        drop(w);
        let w = Wal::open(d.path(), opts(150)).unwrap();
        assert_eq!((w.first_index(), w.last_index()), (Some(200), Some(200)));
    }
}
