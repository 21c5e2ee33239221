//! The embedded event log: append-only segment files in one directory, for a single node.
//!
//! # Design constraints
//! - **Segments**: files `<first_seq:020>.seg` starting with the 8-byte magic `AIOLOG01`, sealed
//!   and replaced by a new one past `segment_bytes` (default 128 MiB). A sealed segment gets an
//!   index file `<first_seq:020>.idx` (written atomically; rebuilt by a scan if missing or stale).
//! - **Record framing** (little endian):
//!
//!   | offset | size | field |
//!   |---|---|---|
//!   | 0 | 4 | length of everything after the checksum field |
//!   | 4 | 4 | CRC32C of everything after this field |
//!   | 8 | 8 | sequence |
//!   | 16 | 8 | event time min (ms) |
//!   | 24 | 8 | event time max (ms) |
//!   | 32 | 8 | append time (wall clock ms; retention and dedup only) |
//!   | 40 | 2 | subject length `s` |
//!   | 42 | 2 | message id length `i` |
//!   | 44 | 4 | reserved (0) |
//!   | 48 | s | subject |
//!   | 48+s | i | message id |
//!   | 48+s+i | … | payload |
//! - **Durability**: one writer thread group-commits: it takes every queued append, writes them
//!   with one `write`, and with `fsync = "always"` (default) fsyncs once before acknowledging
//!   any of them. With an interval, it fsyncs at most that often. Readers only see committed
//!   records (fsynced, under `always`).
//! - **Recovery** on open: the last segment is scanned; a record cut short at its end, or a final
//!   record failing its checksum with nothing valid after it (a torn write), is truncated away
//!   and the complete records before it are kept. A damaged record with valid records after it
//!   is corruption: never served nor skipped — a reader returns [`LogError::Corrupt`] with the
//!   segment and byte offset when it reaches it.
//! - **De-duplication**: message ids seen within `dedup_window` (default 2 min, at most
//!   `dedup_max_ids`) are not stored again; the window is rebuilt from the log on open.
//! - **Time index**: per segment the largest event time and a sparse index (every 32 records:
//!   offset and the block's largest event time), so `seek_time` and `reader(from)` never scan
//!   from the start.
//! - **Retention**: whole sealed segments are deleted, oldest first, by age of their newest
//!   append and by total size; the active segment never is.
//! - **One writer per directory**: an exclusive lock on `LOCK`. A read-only open (`replay`,
//!   `log stats` beside a running engine) takes no lock, changes nothing and sees the log as it
//!   was when opened, until [`EmbeddedLog::refresh`].
//! - **Following another process** ([`EmbeddedLog::refresh`], or `follow` in the config for a
//!   background thread calling it every interval): a read-only log reads the bytes appended to
//!   its active segment since the last refresh (never from the start again), notes the complete,
//!   checksummed records, stops before a partial record (a write in progress, read once
//!   complete), and scans segments created since (the writer sealed the active one); segments
//!   retention deleted leave its list. It sees what the writer has written, which under fsync
//!   `always` may be a moment before the writer's fsync returns.
//! - **Wake-up**: after a commit has updated the segments' committed length (what readers
//!   read), the writer replaces the value of a `watch` channel with the next sequence, before
//!   acknowledging the appends; [`EventLog::subscribe`] hands out its receivers. In that order,
//!   a consumer woken by it always finds the records. A read-only log's signal changes only when
//!   a refresh found new records (after updating the segment list, so the same order holds).

mod config;
mod follow;
mod format;
mod reader;
mod segment;
mod shared;
mod writer;

pub use config::{EmbeddedConfig, FsyncPolicy};
pub use reader::EmbeddedReader;

use crate::{AppendMessage, Appended, EventLog, LogError, LogReader, LogStats, validate};
use async_trait::async_trait;
use follow::Follower;
use parking_lot::Mutex;
use shared::Shared;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};
use writer::{Dedup, Op, Writer};

/// The embedded log.
pub struct EmbeddedLog {
    cfg: EmbeddedConfig,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Op>,
    closed: AtomicBool,
    /// Set for a read-only log: brings its segment list up to date with the writing process.
    follower: Option<Arc<Follower>>,
    /// Tells the follow thread (if any) to stop.
    stop_follow: Arc<AtomicBool>,
    _lock: std::fs::File,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("dir", &self.cfg.dir)
            .finish()
    }
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `cfg.dir`, recovering a torn tail.
    ///
    /// # Errors
    /// [`LogError::Config`] if another process holds the directory; I/O and corruption errors
    /// (a sealed segment that is not a segment file).
    pub async fn open(cfg: EmbeddedConfig) -> Result<Self, LogError> {
        let c = cfg.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(c))
            .await
            .map_err(|e| LogError::Unavailable(format!("open task failed: {e}")))?
    }

    fn open_blocking(cfg: EmbeddedConfig) -> Result<Self, LogError> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("LOCK");
        if cfg.read_only && !lock_path.exists() {
            return Err(LogError::Config(format!(
                "{} is not an aiops log directory (no LOCK file)",
                dir.display()
            )));
        }
        let lock = std::fs::OpenOptions::new()
            .create(!cfg.read_only)
            .truncate(false)
            .read(true)
            .write(!cfg.read_only)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if !cfg.read_only && lock.try_lock().is_err() {
            return Err(LogError::Config(format!(
                "log directory {} is in use by another aiops process (lock file {})",
                dir.display(),
                lock_path.display()
            )));
        }
        let files = segment::list(&dir)?;
        let now = writer::wall_ms();
        let window_start = now - cfg.dedup_window.as_millis() as i64;
        let mut segments = Vec::with_capacity(files.len());
        let mut dedup = Dedup::default();
        let n = files.len();
        for (i, (first_seq, path)) in files.into_iter().enumerate() {
            let last = i + 1 == n;
            let seg = if last {
                let (seg, extras) = segment::scan(
                    &path,
                    first_seq,
                    if cfg.read_only {
                        segment::Tail::Stop
                    } else {
                        segment::Tail::Truncate
                    },
                    true,
                )?;
                for (id, seq, ts) in extras.ids {
                    if ts >= window_start {
                        dedup.insert(id, seq, ts);
                    }
                }
                seg
            } else {
                match segment::read_index(&path, first_seq) {
                    Some(s) if s.newest_append_ts < window_start => s,
                    _ => {
                        let (seg, extras) =
                            segment::scan(&path, first_seq, segment::Tail::Report, true)?;
                        for (id, seq, ts) in extras.ids {
                            if ts >= window_start {
                                dedup.insert(id, seq, ts);
                            }
                        }
                        if seg.corrupt.is_empty() && !cfg.read_only {
                            segment::write_index(&seg)?;
                        }
                        seg
                    }
                }
            };
            for (offset, reason) in &seg.corrupt {
                tracing::error!(segment = %seg.path.display(), offset, reason = %reason, "corrupt record in the log; readers will stop there");
            }
            segments.push(seg);
        }
        if segments.is_empty() && cfg.read_only {
            segments.push(segment::Segment::empty(&dir, 1));
        } else if segments.is_empty() {
            let seg = segment::Segment::empty(&dir, 1);
            writer::create_segment(&seg.path)?;
            writer::sync_dir(&dir)?;
            segments.push(seg);
        }
        let next_seq = segments.last().map(|s| s.next_seq).unwrap_or(1);
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            segments: Mutex::new(segments),
            failed: Mutex::new(None),
            notify: tokio::sync::watch::Sender::new(next_seq),
        });
        let (tx, rx) = mpsc::channel(cfg.writer_queue.max(1));
        let stop_follow = Arc::new(AtomicBool::new(false));
        if cfg.read_only {
            drop(rx);
            let follower = Arc::new(Follower::new(shared.clone()));
            if let Some(poll) = cfg.follow {
                spawn_follow(follower.clone(), stop_follow.clone(), poll, &dir)?;
            }
            return Ok(EmbeddedLog {
                cfg,
                shared,
                tx,
                closed: AtomicBool::new(false),
                follower: Some(follower),
                stop_follow,
                _lock: lock,
            });
        }
        let w = Writer::new(cfg.clone(), shared.clone(), dedup)?;
        std::thread::Builder::new()
            .name("aiops-log-writer".into())
            .spawn(move || w.run(rx))
            .map_err(io(&dir))?;
        // Ticks drive interval fsync and retention; the ticker ends when the writer's queue closes.
        let tick_tx = tx.clone();
        let every = match cfg.fsync {
            FsyncPolicy::Interval(d) => d.min(std::time::Duration::from_secs(1)),
            FsyncPolicy::Always => std::time::Duration::from_secs(1),
        };
        let _ = std::thread::Builder::new()
            .name("aiops-log-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    if tick_tx.is_closed() {
                        return;
                    }
                    // A full queue means the writer is busy anyway.
                    let _ = tick_tx.try_send(Op::Tick);
                }
            });
        tracing::debug!(dir = %dir.display(), "embedded log open");
        Ok(EmbeddedLog {
            cfg,
            shared,
            tx,
            closed: AtomicBool::new(false),
            follower: None,
            stop_follow,
            _lock: lock,
        })
    }

    /// Brings a read-only log up to date with what the writing process appended since it was
    /// opened or last refreshed: reads only the new bytes of the active segment and the segments
    /// created since, makes the complete records visible to readers (`reader`, `next_batch`,
    /// `seek_time`, `stats`) and then wakes [`EventLog::subscribe`] receivers if there were any.
    /// A record still being written is left for a later refresh. Returns the next sequence.
    /// Blocks on file reads (microseconds when little is new); for a writable log it only
    /// returns the next sequence, which its writer keeps current.
    ///
    /// # Errors
    /// [`LogError::Closed`] after `close`; I/O errors; [`LogError::Corrupt`] for a new file that
    /// is not a segment, or a sealed segment not ending with a complete record.
    pub fn refresh(&self) -> Result<u64, LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        match &self.follower {
            Some(f) => f.refresh(),
            None => Ok(self.shared.next_seq()),
        }
    }
}

/// Starts the thread that refreshes a read-only log every `poll` until `stop` is set. A failed
/// refresh is logged (once per distinct error) and tried again at the next interval.
fn spawn_follow(
    follower: Arc<Follower>,
    stop: Arc<AtomicBool>,
    poll: std::time::Duration,
    dir: &std::path::Path,
) -> Result<(), LogError> {
    let shown = dir.display().to_string();
    std::thread::Builder::new()
        .name("aiops-log-follow".into())
        .spawn(move || {
            let mut last_error = None;
            while !stop.load(Ordering::Acquire) {
                match follower.refresh() {
                    Ok(_) => last_error = None,
                    Err(e) => {
                        let msg = e.to_string();
                        if last_error.as_ref() != Some(&msg) {
                            tracing::warn!(dir = %shown, error = %msg, "following the log failed; retrying");
                            last_error = Some(msg);
                        }
                    }
                }
                std::thread::sleep(poll);
            }
        })
        .map(|_| ())
        .map_err(io(dir))
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn append(&self, msgs: Vec<AppendMessage>) -> Result<Vec<Appended>, LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        if self.cfg.read_only {
            return Err(LogError::Config(format!(
                "log {} is open read-only",
                self.cfg.dir.display()
            )));
        }
        for m in &msgs {
            validate(m)?;
        }
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Append(msgs, reply))
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    async fn reader(&self, from: u64) -> Result<Box<dyn LogReader>, LogError> {
        Ok(Box::new(EmbeddedReader::new(self.shared.clone(), from)))
    }

    async fn seek_time(&self, ts_ms: i64) -> Result<u64, LogError> {
        let segs = self.shared.segments.lock();
        for s in segs.iter() {
            if s.time_max < ts_ms {
                continue;
            }
            if let Some(e) = s.index.iter().find(|e| e.block_time_max >= ts_ms) {
                return Ok(e.seq);
            }
        }
        Ok(segs.last().map(|s| s.next_seq).unwrap_or(1))
    }

    async fn stats(&self) -> Result<LogStats, LogError> {
        if let Some(reason) = self.shared.failed.lock().clone() {
            return Err(LogError::Unavailable(format!(
                "the log writer stopped after an error and accepts no appends until restart: {reason}"
            )));
        }
        let segs = self.shared.segments.lock();
        let first_seq = segs.first().map(|s| s.first_seq).unwrap_or(1);
        let next_seq = segs.last().map(|s| s.next_seq).unwrap_or(1);
        Ok(LogStats {
            backend: "embedded".into(),
            first_seq,
            next_seq,
            messages: next_seq - first_seq,
            bytes: segs.iter().map(|s| s.len).sum(),
            durability: self.cfg.durability(),
            ..LogStats::default()
        })
    }

    async fn close(&self) -> Result<(), LogError> {
        self.stop_follow.store(true, Ordering::Release);
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Op::Close(reply)).await.is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// Bumped by the writer thread after each commit. A read-only log has no writer: its signal
    /// changes when [`EmbeddedLog::refresh`] (or the `follow` thread) found new records, never
    /// otherwise.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.notify.subscribe()
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // Stop the writer (and with it the ticker) if close was not called, and the follow thread.
        self.stop_follow.store(true, Ordering::Release);
        let (reply, _rx) = oneshot::channel();
        let _ = self.tx.try_send(Op::Close(reply));
        let _ = &self.shared;
    }
}
