//! State shared by the writer, readers and the log handle: the list of segments and what of
//! them is committed. The writer is the only one that changes it.

use super::segment::Segment;
use parking_lot::Mutex;
use std::path::PathBuf;

/// The segments of one log directory.
#[derive(Debug)]
pub struct Shared {
    /// The log directory.
    pub dir: PathBuf,
    /// Segments in sequence order; the last is the active one. A segment's `len` covers only
    /// committed records, so readers never see a half-written one.
    pub segments: Mutex<Vec<Segment>>,
    /// Set when the writer stopped after a disk error; appends and stats then fail.
    pub failed: Mutex<Option<String>>,
    /// The wake-up signal of [`crate::EventLog::subscribe`]: the next sequence, replaced by the
    /// writer right after a commit made records visible in `segments` (so a woken reader finds
    /// them). Kept here, not in the writer, so receivers stay valid as long as any reader or
    /// the log handle lives.
    pub notify: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Path of the active segment.
    pub fn active_path(&self) -> PathBuf {
        self.segments
            .lock()
            .last()
            .map(|s| s.path.clone())
            .unwrap_or_else(|| self.dir.clone())
    }

    /// One past the last committed sequence.
    pub fn next_seq(&self) -> u64 {
        self.segments.lock().last().map(|s| s.next_seq).unwrap_or(1)
    }
}
