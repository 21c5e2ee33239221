//! Following a log another process writes: a read-only [`super::EmbeddedLog`] brings its
//! segment list up to date with what the writing process appended since the last look, reading
//! only the new bytes of the active segment and scanning the segments created since.

use super::segment::{self, Segment};
use super::shared::Shared;
use crate::LogError;
use parking_lot::Mutex;
use std::fs::File;
use std::sync::Arc;

/// The follower of one read-only log: its segment list lives in [`Shared`], like a writer's.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<Shared>,
    /// What refreshes keep between calls. Its lock also makes refreshes one at a time: only
    /// they change the segment list of a read-only log.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The active segment's file, kept open between refreshes (by its first sequence).
    active: Option<(u64, File)>,
    /// The directory's modification time at the last listing: a segment created or deleted
    /// since changes it.
    listed_mtime: Option<std::time::SystemTime>,
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a segment file, `None` while it does not exist (an empty directory's first segment
/// before the writer creates it).
fn open(path: &std::path::Path) -> Result<Option<File>, LogError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// A sealed segment must end with a complete record.
fn sealed_whole(seg: &Segment, rest: u64) -> Result<(), LogError> {
    if rest == 0 {
        return Ok(());
    }
    Err(LogError::Corrupt {
        segment: seg.path.clone(),
        offset: seg.len,
        reason: format!(
            "a newer segment exists but this one ends with {rest} bytes that are not a complete record"
        ),
    })
}

impl Follower {
    /// A follower of the segments in `shared` (as a read-only open found them).
    pub fn new(shared: Arc<Shared>) -> Follower {
        Follower {
            shared,
            state: Mutex::new(State::default()),
        }
    }

    /// Reads what the writing process appended since the last call and makes it visible to
    /// readers; wakes [`crate::EventLog::subscribe`] receivers when there is something new.
    /// Returns the next sequence.
    ///
    /// # Errors
    /// I/O errors; [`LogError::Corrupt`] for a segment that is not one, or a sealed segment that
    /// does not end with a complete record.
    pub fn refresh(&self) -> Result<u64, LogError> {
        let mut state = self.state.lock();
        let State {
            active,
            listed_mtime,
        } = &mut *state;
        let Some(mut tail) = self.shared.segments.lock().last().map(Segment::tail) else {
            return Ok(1);
        };
        if active
            .as_ref()
            .is_none_or(|(first, _)| *first != tail.first_seq)
        {
            *active = open(&tail.path)?.map(|f| (tail.first_seq, f));
        }
        let before = (tail.next_seq, tail.len);
        if let Some((_, file)) = active.as_ref() {
            segment::scan_from(file, &mut tail)?;
        }
        // Look for newer segments (and ones retention removed) when the directory changed, or
        // when the active segment had nothing new: the writer starts a segment only once the
        // previous one is complete, and a directory's time may be too coarse to tell two
        // changes within one clock tick apart.
        let mut newer: Vec<(Segment, File, u64)> = Vec::new();
        let mut listed = None;
        let dir = &self.shared.dir;
        let mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        if (tail.next_seq, tail.len) == before || mtime.is_none() || mtime != *listed_mtime {
            let files = segment::list(dir)?;
            *listed_mtime = mtime;
            let active_first = tail.first_seq;
            for (first_seq, path) in files.iter().filter(|(s, _)| *s > active_first) {
                let Some(file) = open(path)? else { break };
                let mut seg = Segment::empty(&self.shared.dir, *first_seq);
                if file.metadata().map_err(io(path))?.len() < seg.len {
                    break; // just created; its magic is not written yet
                }
                let rest = segment::scan_from(&file, &mut seg)?;
                // The segment before this one is sealed: it was complete before this one was
                // created, which was before the listing.
                match newer.last() {
                    // The active one was read before the listing: read its last records.
                    None => {
                        if let Some((_, f)) = active.as_ref() {
                            let rest = segment::scan_from(f, &mut tail)?;
                            sealed_whole(&tail, rest)?;
                        }
                    }
                    Some((prev, _, prev_rest)) => sealed_whole(prev, *prev_rest)?,
                }
                newer.push((seg, file, rest));
            }
            listed = Some(files);
        }
        let next_seq = {
            let mut segs = self.shared.segments.lock();
            if let Some(last) = segs.last_mut() {
                last.extend(tail);
            }
            if let Some(files) = &listed {
                let n = segs.len();
                let mut i = 0;
                // Retention in the writing process deletes whole sealed segments, oldest first.
                segs.retain(|s| {
                    i += 1;
                    i == n || files.iter().any(|(first, _)| *first == s.first_seq)
                });
            }
            if let Some((seg, file, _)) = newer.pop() {
                let first_seq = seg.first_seq;
                segs.extend(newer.into_iter().map(|(s, _, _)| s));
                segs.push(seg);
                *active = Some((first_seq, file));
            }
            segs.last().map(|s| s.next_seq).unwrap_or(1)
        };
        if next_seq > *self.shared.notify.borrow() {
            self.shared.notify.send_replace(next_seq);
        }
        Ok(next_seq)
    }
}
