//! The single writer: owns the active segment, assigns sequences, de-duplicates message ids,
//! group-commits (one write and at most one fsync per round of queued appends), rolls segments
//! and applies retention. Appenders talk to it through a bounded queue.

use super::config::{EmbeddedConfig, FsyncPolicy};
use super::format::{self, Header, SEGMENT_MAGIC};
use super::segment::{self, Segment};
use super::shared::Shared;
use crate::{AppendMessage, Appended, LogError};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Reply to one append call.
pub type Reply = oneshot::Sender<Result<Vec<Appended>, LogError>>;

/// What the writer is asked to do.
pub enum Op {
    /// Append these messages.
    Append(Vec<AppendMessage>, Reply),
    /// Time passed: fsync on interval, apply retention.
    Tick,
    /// Flush, fsync and stop.
    Close(oneshot::Sender<Result<(), LogError>>),
}

/// Recent message ids, evicted by age and count.
#[derive(Debug, Default)]
pub struct Dedup {
    ids: HashMap<String, (u64, i64)>,
    order: VecDeque<(String, i64)>,
}

impl Dedup {
    /// Remembers an id.
    pub fn insert(&mut self, id: String, seq: u64, ts: i64) {
        if self.ids.insert(id.clone(), (seq, ts)).is_none() {
            self.order.push_back((id, ts));
        }
    }

    fn get(&self, id: &str) -> Option<u64> {
        self.ids.get(id).map(|v| v.0)
    }

    fn evict(&mut self, now: i64, window: Duration, max: usize) {
        let oldest = now - window.as_millis() as i64;
        while let Some((id, ts)) = self.order.front() {
            if self.order.len() > max || *ts < oldest {
                if self.ids.get(id).is_some_and(|v| v.1 == *ts) {
                    self.ids.remove(id);
                }
                self.order.pop_front();
            } else {
                break;
            }
        }
    }
}

/// Wall-clock milliseconds: used only for append time (retention by age, dedup window).
#[allow(clippy::disallowed_methods)]
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The writer's state, run on its own thread.
pub struct Writer {
    cfg: EmbeddedConfig,
    shared: Arc<Shared>,
    file: File,
    /// Offset of the end of committed data in the active segment.
    len: u64,
    next_seq: u64,
    dedup: Dedup,
    dirty: bool,
    last_sync: Instant,
    failed: Option<String>,
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Writer {
    /// A writer appending to the last segment of `shared`.
    ///
    /// # Errors
    /// If the active segment cannot be opened.
    pub fn new(cfg: EmbeddedConfig, shared: Arc<Shared>, dedup: Dedup) -> Result<Writer, LogError> {
        let (path, len, next_seq) = {
            let segs = shared.segments.lock();
            let last = segs
                .last()
                .ok_or_else(|| LogError::Config("log has no segment".into()))?;
            (last.path.clone(), last.len, last.next_seq)
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Writer {
            cfg,
            shared,
            file,
            len,
            next_seq,
            dedup,
            dirty: false,
            last_sync: Instant::now(),
            failed: None,
        })
    }

    /// Serves the queue until it closes or a `Close` arrives.
    pub fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        while let Some(op) = rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut close = None;
            match op {
                Op::Append(m, r) => batch.push((m, r)),
                Op::Tick => {}
                Op::Close(r) => close = Some(r),
            }
            // Group commit: take everything already queued.
            while close.is_none() && batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(Op::Append(m, r)) => batch.push((m, r)),
                    Ok(Op::Tick) => {}
                    Ok(Op::Close(r)) => close = Some(r),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.round(batch);
            }
            self.maybe_sync();
            self.retention();
            if let Some(r) = close {
                let res = self.file.sync_all().map_err(|source| LogError::Io {
                    path: self.shared.dir.clone(),
                    source,
                });
                let _ = r.send(res);
                return;
            }
        }
    }

    /// Stops accepting appends after a disk error, and says so to health checks.
    fn fail(&mut self, reason: String) {
        *self.shared.failed.lock() = Some(reason.clone());
        self.failed = Some(reason);
    }

    fn maybe_sync(&mut self) {
        if let FsyncPolicy::Interval(d) = self.cfg.fsync
            && self.dirty
            && self.last_sync.elapsed() >= d
        {
            if let Err(e) = self.file.sync_data() {
                tracing::error!(error = %e, "log fsync failed");
                self.fail(format!("fsync failed: {e}"));
            }
            self.dirty = false;
            self.last_sync = Instant::now();
        }
    }

    fn round(&mut self, batch: Vec<(Vec<AppendMessage>, Reply)>) {
        if let Some(f) = &self.failed {
            for (_, r) in batch {
                let _ = r.send(Err(LogError::Unavailable(format!(
                    "log writer stopped after an error: {f}"
                ))));
            }
            return;
        }
        let now = wall_ms();
        self.dedup
            .evict(now, self.cfg.dedup_window, self.cfg.dedup_max_ids);
        let mut buf = Vec::new();
        // Records of this round not yet written: (header, offset in buf, len) for the index.
        let mut pending: Vec<(Header, u64, u64)> = Vec::new();
        let mut results: Vec<Vec<Appended>> = Vec::with_capacity(batch.len());
        let mut error: Option<LogError> = None;
        'outer: for (msgs, _) in &batch {
            let mut out = Vec::with_capacity(msgs.len());
            for m in msgs {
                if let Some(seq) = self.dedup.get(&m.msg_id) {
                    out.push(Appended {
                        seq,
                        duplicate: true,
                    });
                    continue;
                }
                let rec_len = (format::PREFIX
                    + format::FIXED
                    + m.subject.len()
                    + m.msg_id.len()
                    + m.payload.len()) as u64;
                if self.len + buf.len() as u64 + rec_len > self.cfg.segment_bytes
                    && (self.len > SEGMENT_MAGIC.len() as u64 || !buf.is_empty())
                    && let Err(e) = self
                        .flush(&mut buf, &mut pending)
                        .and_then(|()| self.roll())
                {
                    error = Some(e);
                    break 'outer;
                }
                let h = Header {
                    seq: self.next_seq,
                    time_min: m.time_min_ms,
                    time_max: m.time_max_ms,
                    append_ts: now,
                };
                let at = self.len + buf.len() as u64;
                format::encode(&mut buf, &h, &m.subject, &m.msg_id, &m.payload);
                pending.push((h, at, rec_len));
                self.dedup.insert(m.msg_id.clone(), self.next_seq, now);
                out.push(Appended {
                    seq: self.next_seq,
                    duplicate: false,
                });
                self.next_seq += 1;
            }
            results.push(out);
        }
        if error.is_none() {
            error = self.flush(&mut buf, &mut pending).err();
        }
        match error {
            None => {
                for ((_, r), out) in batch.into_iter().zip(results) {
                    let _ = r.send(Ok(out));
                }
            }
            Some(e) => {
                tracing::error!(error = %e, "log append failed; the writer stops accepting appends");
                self.fail(e.to_string());
                for (_, r) in batch {
                    let _ = r.send(Err(LogError::Unavailable(format!(
                        "log append failed: {e}"
                    ))));
                }
            }
        }
    }

    /// Writes and (per policy) fsyncs `buf` at the end of the active segment, then publishes the
    /// new records to readers. On failure the file is cut back to its committed length.
    fn flush(
        &mut self,
        buf: &mut Vec<u8>,
        pending: &mut Vec<(Header, u64, u64)>,
    ) -> Result<(), LogError> {
        if buf.is_empty() {
            return Ok(());
        }
        let path = self.shared.active_path();
        let written = self
            .file
            .write_all_at(buf, self.len)
            .and_then(|()| match self.cfg.fsync {
                FsyncPolicy::Always => self.file.sync_data(),
                FsyncPolicy::Interval(_) => Ok(()),
            });
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(io(&path)(e));
        }
        if matches!(self.cfg.fsync, FsyncPolicy::Always) {
            self.last_sync = Instant::now();
        } else {
            self.dirty = true;
        }
        self.len += buf.len() as u64;
        let next_seq = pending.last().map(|(h, _, _)| h.seq + 1);
        {
            let mut segs = self.shared.segments.lock();
            if let Some(active) = segs.last_mut() {
                for (h, at, len) in pending.iter() {
                    active.note(h, *at, *len);
                }
            }
        }
        // Only now, with the records visible to readers, wake consumers: one woken earlier could
        // read nothing and go back to sleep (a lost wake-up). `send_replace` updates the value
        // even with no receiver and needs no async context.
        if let Some(next) = next_seq {
            self.shared.notify.send_replace(next);
        }
        buf.clear();
        pending.clear();
        Ok(())
    }

    /// Seals the active segment (fsync, index file) and starts a new one.
    fn roll(&mut self) -> Result<(), LogError> {
        let sealed = {
            let segs = self.shared.segments.lock();
            segs.last().cloned()
        };
        self.file
            .sync_all()
            .map_err(|e| io(&self.shared.active_path())(e))?;
        if let Some(s) = &sealed {
            segment::write_index(s)?;
        }
        let seg = Segment::empty(&self.shared.dir, self.next_seq);
        let file = create_segment(&seg.path)?;
        sync_dir(&self.shared.dir)?;
        self.file = file;
        self.len = SEGMENT_MAGIC.len() as u64;
        self.shared.segments.lock().push(seg);
        Ok(())
    }

    /// Deletes the oldest sealed segments beyond the retention limits.
    fn retention(&mut self) {
        if self.cfg.retention_age.is_none() && self.cfg.retention_bytes.is_none() {
            return;
        }
        let now = wall_ms();
        let mut removed = Vec::new();
        {
            let mut segs = self.shared.segments.lock();
            loop {
                if segs.len() < 2 {
                    break;
                }
                let total: u64 = segs.iter().map(|s| s.len).sum();
                let too_big = self.cfg.retention_bytes.is_some_and(|b| total > b);
                let too_old = self
                    .cfg
                    .retention_age
                    .is_some_and(|a| segs[0].newest_append_ts < now - a.as_millis() as i64);
                if !(too_big || too_old) {
                    break;
                }
                removed.push(segs.remove(0));
            }
        }
        for s in &removed {
            tracing::info!(segment = %s.path.display(), first_seq = s.first_seq, next_seq = s.next_seq, "retention removed a log segment");
            segment::remove(s);
        }
    }
}

/// Creates a segment file with its magic, durably.
///
/// # Errors
/// I/O errors.
pub fn create_segment(path: &std::path::Path) -> Result<File, LogError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all_at(SEGMENT_MAGIC, 0).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(f)
}

/// Fsyncs a directory so a created or renamed file survives power loss.
///
/// # Errors
/// I/O errors.
pub fn sync_dir(dir: &std::path::Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
