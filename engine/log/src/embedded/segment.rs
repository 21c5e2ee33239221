//! Segment files: their in-memory summary (range, time span, sparse index), the scan that
//! rebuilds it and recovers a torn tail, and the persisted index of sealed segments.

use super::format::{self, Bad, SEGMENT_MAGIC};
use crate::LogError;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One sparse-index entry every this many records.
pub const INDEX_EVERY: u64 = 32;

/// A sparse index entry: where a block of records starts and the largest `time_max` in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// First sequence of the block.
    pub seq: u64,
    /// Byte offset of that record in the segment.
    pub offset: u64,
    /// Largest `time_max` of the block's records.
    pub block_time_max: i64,
}

/// What is known about one segment without reading it.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// Sequence of its first record (also its name).
    pub first_seq: u64,
    /// One past its last record's sequence.
    pub next_seq: u64,
    /// Bytes of complete, committed records (including the file magic).
    pub len: u64,
    /// Largest `time_max` in the segment.
    pub time_max: i64,
    /// Latest append time in the segment.
    pub newest_append_ts: i64,
    /// Sparse index.
    pub index: Vec<IndexEntry>,
    /// Records found damaged by a scan: (offset, reason). Readers stop there with `Corrupt`.
    pub corrupt: Vec<(u64, String)>,
}

impl Segment {
    /// An empty segment starting at `first_seq`.
    pub fn empty(dir: &Path, first_seq: u64) -> Segment {
        Segment {
            path: segment_path(dir, first_seq),
            first_seq,
            next_seq: first_seq,
            len: SEGMENT_MAGIC.len() as u64,
            time_max: i64::MIN,
            newest_append_ts: i64::MIN,
            index: Vec::new(),
            corrupt: Vec::new(),
        }
    }

    /// Accounts for one record appended at `offset`.
    pub fn note(&mut self, h: &format::Header, offset: u64, len: u64) {
        let n = h.seq - self.first_seq;
        if n.is_multiple_of(INDEX_EVERY) {
            self.index.push(IndexEntry {
                seq: h.seq,
                offset,
                block_time_max: h.time_max,
            });
        } else if let Some(last) = self.index.last_mut() {
            last.block_time_max = last.block_time_max.max(h.time_max);
        }
        self.next_seq = h.seq + 1;
        self.len = offset + len;
        self.time_max = self.time_max.max(h.time_max);
        self.newest_append_ts = self.newest_append_ts.max(h.append_ts);
    }

    /// A copy to continue a scan on ([`scan_from`]) without copying the whole sparse index: it
    /// keeps only the last index entry, the one further records of its block still extend.
    pub fn tail(&self) -> Segment {
        Segment {
            path: self.path.clone(),
            first_seq: self.first_seq,
            next_seq: self.next_seq,
            len: self.len,
            time_max: self.time_max,
            newest_append_ts: self.newest_append_ts,
            index: self.index.last().copied().into_iter().collect(),
            corrupt: Vec::new(),
        }
    }

    /// Takes over what a scan continued on this segment's [`Segment::tail`] found.
    pub fn extend(&mut self, tail: Segment) {
        // The tail's index starts with (an update of) this segment's last entry.
        self.index.truncate(self.index.len().saturating_sub(1));
        self.index.extend(tail.index);
        self.corrupt.extend(tail.corrupt);
        self.next_seq = tail.next_seq;
        self.len = tail.len;
        self.time_max = tail.time_max;
        self.newest_append_ts = tail.newest_append_ts;
    }

    /// The offset to start reading for `seq` (a block start at or before it).
    pub fn offset_for(&self, seq: u64) -> u64 {
        let i = self.index.partition_point(|e| e.seq <= seq);
        if i == 0 {
            SEGMENT_MAGIC.len() as u64
        } else {
            self.index[i - 1].offset
        }
    }
}

/// `<dir>/<first_seq:020>.seg`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

fn idx_path(seg: &Path) -> PathBuf {
    seg.with_extension("idx")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a scan found besides the segment summary.
#[derive(Debug, Default)]
pub struct ScanExtras {
    /// Bytes cut from a torn tail (only when `recover` was set).
    pub cut: u64,
    /// `(msg_id, seq, append_ts)` of every record, when asked for (dedup window rebuild).
    pub ids: Vec<(String, u64, i64)>,
}

/// What a scan does with a damaged tail (a last record cut short or failing its checksum, with
/// nothing valid after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Cut it away (the writer opening its active segment after a crash).
    Truncate,
    /// Stop before it, changing nothing (a read-only open while a writer may be mid-write).
    Stop,
    /// Record it as corruption (a sealed segment must end with a complete record).
    Report,
}

/// Reads a whole segment, verifying every record. With [`Tail::Truncate`], a torn tail — a final record cut
/// short, or a final record failing its checksum with nothing valid after it — is truncated away.
/// A damaged record with valid records after it is recorded in `corrupt` and skipped for the scan
/// only (readers refuse it).
///
/// # Errors
/// I/O errors, or a file that is not a segment.
pub fn scan(
    path: &Path,
    first_seq: u64,
    tail: Tail,
    want_ids: bool,
) -> Result<(Segment, ScanExtras), LogError> {
    let recover = tail == Tail::Truncate;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(recover)
        .open(path)
        .map_err(io(path))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut seg = Segment::empty(dir, first_seq);
    let mut extras = ScanExtras::default();
    if buf.len() < SEGMENT_MAGIC.len() {
        // A crash right after creating the file: rewrite the magic.
        if recover {
            file.set_len(0).map_err(io(path))?;
            file.write_all_at(SEGMENT_MAGIC, 0).map_err(io(path))?;
            file.sync_all().map_err(io(path))?;
            extras.cut = buf.len() as u64;
            return Ok((seg, extras));
        }
        return Err(LogError::Corrupt {
            segment: path.to_path_buf(),
            offset: 0,
            reason: "segment shorter than its header".into(),
        });
    }
    if &buf[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return Err(LogError::Corrupt {
            segment: path.to_path_buf(),
            offset: 0,
            reason: "not an aiops log segment (bad magic)".into(),
        });
    }
    if let Some((at, reason)) = walk(
        &buf,
        0,
        SEGMENT_MAGIC.len(),
        &mut seg,
        &mut extras,
        want_ids,
    ) {
        match tail {
            Tail::Report => seg.corrupt.push((at as u64, reason)),
            Tail::Stop => {}
            Tail::Truncate => {
                extras.cut = (buf.len() - at) as u64;
                tracing::warn!(segment = %path.display(), offset = at, bytes_cut = extras.cut, reason = %reason, "recovered torn tail of the log");
                file.set_len(at as u64).map_err(io(path))?;
                file.sync_all().map_err(io(path))?;
            }
        }
    }
    Ok((seg, extras))
}

/// Notes into `seg` every record of `buf[at..]`, where `buf` starts at byte `base` of the
/// segment file. A damaged record with a valid record after it is recorded in `seg.corrupt` and
/// stepped over; a damaged or short record with nothing valid after it is the tail: the walk
/// stops there and returns its position in `buf` and why.
fn walk(
    buf: &[u8],
    base: u64,
    mut at: usize,
    seg: &mut Segment,
    extras: &mut ScanExtras,
    want_ids: bool,
) -> Option<(usize, String)> {
    while at < buf.len() {
        match format::parse(buf, at) {
            Ok(p) => {
                if p.header.seq != seg.next_seq {
                    seg.corrupt.push((
                        base + at as u64,
                        format!(
                            "sequence {} where {} was expected",
                            p.header.seq, seg.next_seq
                        ),
                    ));
                }
                if want_ids {
                    extras
                        .ids
                        .push((p.msg_id.clone(), p.header.seq, p.header.append_ts));
                }
                seg.note(&p.header, base + at as u64, p.len as u64);
                at += p.len;
            }
            Err(bad) => {
                // Is there a valid record after this one? Only then is it corruption, not a tail.
                let next = match &bad {
                    Bad::Invalid(_) if buf.len() >= at + format::PREFIX => {
                        let len =
                            u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
                                as usize;
                        Some(at + format::PREFIX + len)
                    }
                    _ => None,
                };
                let valid_after =
                    next.is_some_and(|n| n < buf.len() && format::parse(buf, n).is_ok());
                let reason = match bad {
                    Bad::Short(need) => format!(
                        "record cut short: needs {need} bytes, {} left",
                        buf.len() - at
                    ),
                    Bad::Invalid(r) => r,
                };
                if !valid_after {
                    return Some((at, reason));
                }
                let n = next.unwrap_or(buf.len());
                seg.corrupt.push((base + at as u64, reason));
                // Keep sequence accounting going past the damaged record.
                if let Ok(p) = format::parse(buf, n) {
                    seg.next_seq = p.header.seq;
                }
                at = n;
            }
        }
    }
    None
}

/// Bytes read per call by [`scan_from`], so catching up on a large segment does not hold its
/// whole unread part in memory at once.
const SCAN_CHUNK: u64 = 16 << 20;

/// Reads what was appended to a segment file after `seg.len` (the end of the complete records
/// `seg` already accounts for) and notes the complete, checksummed records found into `seg`:
/// the scan of a segment another process is still writing, without rereading it from the start.
///
/// Stops, changing nothing, at a record cut short or failing its checksum with nothing valid
/// after it: that is a write in progress (a later call reads it once complete). A damaged record
/// with valid records after it is recorded in `seg.corrupt`, as [`scan`] does. A file still
/// shorter than the segment magic (just created) yields nothing yet. Returns the bytes of the
/// file past the records noted (a partial tail, 0 when the file ends at a record boundary).
///
/// # Errors
/// I/O errors, or a file that does not start with the segment magic.
pub fn scan_from(file: &File, seg: &mut Segment) -> Result<u64, LogError> {
    let path = seg.path.clone();
    let magic = SEGMENT_MAGIC.len() as u64;
    // Set when a chunk held no complete record (one record larger than a chunk): read it whole.
    let mut whole = false;
    loop {
        let size = file.metadata().map_err(io(&path))?.len();
        // Nothing noted yet: check the magic (the writer writes it right after creating the file).
        let from = if seg.len <= magic && seg.next_seq == seg.first_seq {
            0
        } else {
            seg.len
        };
        if size < magic || size <= seg.len {
            return Ok(size.saturating_sub(seg.len.max(magic)));
        }
        let want = if whole {
            size - from
        } else {
            (size - from).min(SCAN_CHUNK)
        };
        let buf = read_at(
            file,
            &path,
            from,
            usize::try_from(want).unwrap_or(usize::MAX),
        )?;
        let mut at = 0;
        if from == 0 {
            if buf.get(..SEGMENT_MAGIC.len()) != Some(&SEGMENT_MAGIC[..]) {
                return Err(LogError::Corrupt {
                    segment: path,
                    offset: 0,
                    reason: "not an aiops log segment (bad magic)".into(),
                });
            }
            at = SEGMENT_MAGIC.len();
        }
        let before = seg.len;
        let tail = walk(&buf, from, at, seg, &mut ScanExtras::default(), false);
        let end = from + buf.len() as u64;
        match tail {
            // A chunk ending on a record boundary: read on if the file is longer.
            None if end < size => {}
            None => return Ok(0),
            // Cut short by the chunk, not by the file: read on from the last complete record.
            Some(_) if end < size => whole = seg.len == before,
            Some((t, _)) => return Ok(end - (from + t as u64)),
        }
    }
}

/// Writes the index of a sealed segment beside it (`.idx`), atomically (write, fsync, rename).
///
/// # Errors
/// I/O errors.
pub fn write_index(seg: &Segment) -> Result<(), LogError> {
    let mut out = Vec::with_capacity(64 + seg.index.len() * 24);
    out.extend_from_slice(b"AIOIDX01");
    for v in [
        seg.first_seq,
        seg.next_seq,
        seg.len,
        seg.time_max as u64,
        seg.newest_append_ts as u64,
        seg.index.len() as u64,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for e in &seg.index {
        out.extend_from_slice(&e.seq.to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.block_time_max.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let path = idx_path(&seg.path);
    let tmp = path.with_extension("idx.tmp");
    {
        let f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all_at(&out, 0).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Loads a sealed segment's index if present, intact, and matching the segment file's length.
pub fn read_index(seg_path: &Path, first_seq: u64) -> Option<Segment> {
    let b = std::fs::read(idx_path(seg_path)).ok()?;
    if b.len() < 8 + 48 + 4 || &b[..8] != b"AIOIDX01" {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return None;
    }
    let r = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&body[8 + i * 8..16 + i * 8]);
        u64::from_le_bytes(a)
    };
    let n = r(5) as usize;
    if body.len() != 56 + n * 24 || r(0) != first_seq {
        return None;
    }
    let file_len = std::fs::metadata(seg_path).ok()?.len();
    if file_len != r(2) {
        return None;
    }
    let index = (0..n)
        .map(|i| {
            let at = 56 + i * 24;
            let g = |o: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&body[at + o..at + o + 8]);
                u64::from_le_bytes(a)
            };
            IndexEntry {
                seq: g(0),
                offset: g(8),
                block_time_max: g(16) as i64,
            }
        })
        .collect();
    Some(Segment {
        path: seg_path.to_path_buf(),
        first_seq,
        next_seq: r(1),
        len: r(2),
        time_max: r(3) as i64,
        newest_append_ts: r(4) as i64,
        index,
        corrupt: Vec::new(),
    })
}

/// Removes a segment and its index.
pub fn remove(seg: &Segment) {
    let _ = std::fs::remove_file(&seg.path);
    let _ = std::fs::remove_file(idx_path(&seg.path));
}

/// Lists `(first_seq, path)` of the segment files in `dir`, ascending.
///
/// # Errors
/// If the directory cannot be read.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "seg")
            && let Some(seq) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads `len` bytes at `offset` of a file (fewer at EOF).
///
/// # Errors
/// I/O errors.
pub fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, LogError> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}
