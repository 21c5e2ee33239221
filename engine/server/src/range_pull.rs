//! The range scheduler: runs one [`RangeSource`] (Prometheus `query_range`, HTTP JSON, SQL, …)
//! as a task owned by the process, asking it for event-time ranges and appending what comes back.
//!
//! # Ranges
//! Time is cut into ranges `[k·I, (k+1)·I)` of the source's interval `I` (Unix ms, aligned to
//! the epoch). Range `k` is due once `now ≥ (k+1)·I + delay` (`schedule.delay` leaves late data
//! time to arrive). The *position* is the end of the last range the log accepted; the scheduler
//! pulls from the position to the *frontier* (the end of the last due range), oldest first:
//! - on schedule that is one range;
//! - after aiops or the source was down it is the missed ranges (**backfill**), bounded by
//!   `schedule.max_backfill` (older ranges are skipped and counted), asked in requests of up to
//!   [`RangeSource::max_range`] while new ranges keep being added at the frontier;
//! - on the first start of a source, `schedule.initial_backfill` back (0: from the frontier).
//!
//! # Once, also across `kill -9`
//! Whatever the request size, what comes back is split into the ranges of the grid, rows outside
//! `[from, to)` dropped (so ranges never overlap), and each range is appended with message ids
//! derived from `(source id, from, to)` ([`IdBasis::ClientKey`]): a range pulled again (a
//! retry, a restart after `kill -9` between the append and the position write) gets the same
//! ids, and the log's duplicate window (2 min) stores it once. The position is written after
//! the append: single node as `DATA_DIR/datasource-positions/<id>.json` (temp file, fsync,
//! rename, fsync of the directory); in cluster mode as the key `position.<id>` of the data
//! source bucket ([`crate::datasources::DATASOURCES_BUCKET`]), where the next owner of the
//! `sources` unit reads it.
//!
//! # Failures
//! A failed pull is retried — the same range, never skipped — with exponential backoff (1 s to
//! 1 min for [`SourceError::Unavailable`], 5 s to 5 min otherwise; the source shows `failing`
//! with the error meanwhile). An append refused under backpressure (429/503 inside) is retried
//! with the same ids until the log takes it.

use crate::clock;
use crate::ingest::{IdBasis, Ingestor};
use aiops_connectors::sources::range::RangeSource;
use aiops_connectors::sources::{SourceBatch, SourceError};
use aiops_log::coord::Kv;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, BooleanArray, RecordBatch};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// The key prefix of a source's position in the data source bucket (cluster mode).
pub const POSITION_PREFIX: &str = "position.";

/// Where positions are kept.
#[derive(Debug)]
pub struct Positions {
    /// Single node: `DATA_DIR/datasource-positions`.
    dir: PathBuf,
    /// Cluster mode: positions live in the cluster bucket (set once the bucket is open).
    cluster: bool,
    kv: OnceLock<Arc<dyn Kv>>,
}

/// Why a position could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    /// The file or directory could not be read or written: the operator must check the data
    /// directory (space, permissions).
    #[error("position file {path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The cluster bucket did not answer; a retry may help.
    #[error("position in the cluster bucket: {0}")]
    Cluster(String),
}

impl Positions {
    /// Positions under `data_dir` (single node) or, with `cluster`, in the bucket given later
    /// to [`Positions::share`].
    pub fn new(data_dir: &Path, cluster: bool) -> Positions {
        Positions {
            dir: data_dir.join("datasource-positions"),
            cluster,
            kv: OnceLock::new(),
        }
    }

    /// Cluster mode: the data source bucket, where positions are kept from now on.
    pub fn share(&self, kv: Arc<dyn Kv>) {
        let _ = self.kv.set(kv);
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn kv(&self) -> Result<Option<&Arc<dyn Kv>>, PositionError> {
        match (self.cluster, self.kv.get()) {
            (false, _) => Ok(None),
            (true, Some(kv)) => Ok(Some(kv)),
            (true, None) => Err(PositionError::Cluster(
                "the data source bucket is not open yet".into(),
            )),
        }
    }

    /// The stored position of source `id`, if any.
    ///
    /// # Errors
    /// [`PositionError`] when the store cannot be read (an unreadable value is one too: a
    /// source must not silently start over).
    pub async fn load(&self, id: &str) -> Result<Option<i64>, PositionError> {
        let parse = |b: &[u8]| -> Option<i64> {
            serde_json::from_slice::<Value>(b)
                .ok()?
                .get("position_ms")?
                .as_i64()
        };
        if let Some(kv) = self.kv()? {
            let key = format!("{POSITION_PREFIX}{id}");
            let e = kv
                .get(&key)
                .await
                .map_err(|e| PositionError::Cluster(e.to_string()))?;
            return match e {
                None => Ok(None),
                Some(e) => parse(&e.value[..])
                    .map(Some)
                    .ok_or_else(|| PositionError::Cluster(format!("{key} is not a position"))),
            };
        }
        let path = self.file(id);
        match std::fs::read(&path) {
            Ok(b) => parse(&b).map(Some).ok_or(PositionError::File {
                path,
                detail: "not a position (expected {\"position_ms\": N})".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PositionError::File {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// Stores the position of source `id` durably (file: temp, fsync, rename, fsync of the
    /// directory; cluster: a put to the replicated bucket).
    ///
    /// # Errors
    /// [`PositionError`].
    pub async fn save(&self, id: &str, position_ms: i64) -> Result<(), PositionError> {
        let body = json!({"position_ms": position_ms}).to_string();
        if let Some(kv) = self.kv()? {
            kv.put(&format!("{POSITION_PREFIX}{id}"), body.into_bytes().into())
                .await
                .map_err(|e| PositionError::Cluster(e.to_string()))?;
            return Ok(());
        }
        let path = self.file(id);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_atomic(&dir, &path, body.as_bytes()))
            .await
            .map_err(|e| PositionError::File {
                path: self.file(id),
                detail: e.to_string(),
            })?
    }

    /// Forgets source `id`'s position (the source was removed).
    pub async fn forget(&self, id: &str) {
        match self.kv() {
            Ok(Some(kv)) => {
                if let Err(e) = kv.delete(&format!("{POSITION_PREFIX}{id}"), None).await {
                    tracing::warn!(id = %id, error = %e, "removing a data source position");
                }
            }
            Ok(None) => {
                let _ = std::fs::remove_file(self.file(id));
            }
            Err(_) => {}
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix:
/// a temp file beside it (mode 0600), fsync, rename over, fsync of the directory.
///
/// # Errors
/// [`PositionError::File`].
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), PositionError> {
    use std::io::Write;
    let fail = |e: std::io::Error| PositionError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = path.with_extension("tmp");
    // Readable by the engine's user only, from the first byte (these files can hold password
    // hashes, TOTP secrets, data source settings); a temp file left by a crash is replaced, not
    // reused with its old mode.
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)
}

/// What a range source is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Defined, not pulling here (cluster mode: another node owns the `sources` unit), or not
    /// started yet.
    Idle,
    /// Pulling on schedule; the last pull succeeded.
    Ok,
    /// More than one range behind: pulling the missed ranges.
    Backfilling,
    /// The last pull or append failed; retrying the same range.
    Failing,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Ok => "ok",
            State::Backfilling => "backfilling",
            State::Failing => "failing",
        }
    }
}

/// Per-kind counters.
#[derive(Debug, Default, Clone)]
struct PerKind {
    rows: u64,
    /// Distinct series (name and labels) in the last range that had rows of this kind.
    series_last_range: u64,
}

/// The health and counters of one range source, shared by its task, the API and `/metrics`.
#[derive(Debug)]
pub struct Health {
    inner: Mutex<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    state: State,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
    last_success_ms: Option<i64>,
    position_ms: Option<i64>,
    kinds: BTreeMap<&'static str, PerKind>,
    pulls: u64,
    failures: u64,
    ranges: u64,
    backfilled_ranges: u64,
    skipped_ms: u64,
    dropped_outside: u64,
    interval_ms: i64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            inner: Mutex::new(HealthInner {
                state: State::Idle,
                last_error: None,
                last_error_ms: None,
                last_success_ms: None,
                position_ms: None,
                kinds: BTreeMap::new(),
                pulls: 0,
                failures: 0,
                ranges: 0,
                backfilled_ranges: 0,
                skipped_ms: 0,
                dropped_outside: 0,
                interval_ms: 0,
            }),
        }
    }
}

impl Health {
    fn set_state(&self, s: State) {
        self.inner.lock().state = s;
    }

    /// The source stopped pulling on this node (cluster mode: another node owns the unit now).
    pub fn idle(&self) {
        self.set_state(State::Idle);
    }

    fn failed(&self, e: &str) {
        let mut h = self.inner.lock();
        h.state = State::Failing;
        h.failures += 1;
        h.last_error = Some(e.to_string());
        h.last_error_ms = Some(clock::now_ms());
    }

    /// The health as JSON: `state`, `last_error`, `last_success_ms`, `position_ms`, `lag_ms`
    /// (now − position), per kind `rows` and `series` (distinct series of the last range), and
    /// the counters `pulls`, `failures`, `ranges`, `backfilled_ranges`, `skipped_ms` (beyond
    /// `max_backfill`), `dropped_rows_outside_range`.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let h = self.inner.lock();
        let kinds: serde_json::Map<String, Value> = h
            .kinds
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    json!({"rows": v.rows, "series": v.series_last_range}),
                )
            })
            .collect();
        json!({
            "state": h.state.as_str(),
            "last_error": h.last_error,
            "last_error_ms": h.last_error_ms,
            "last_success_ms": h.last_success_ms,
            "position_ms": h.position_ms,
            "lag_ms": h.position_ms.map(|p| now_ms.saturating_sub(p).max(0)),
            "interval_ms": h.interval_ms,
            "kinds": kinds,
            "pulls": h.pulls,
            "failures": h.failures,
            "ranges": h.ranges,
            "backfilled_ranges": h.backfilled_ranges,
            "skipped_ms": h.skipped_ms,
            "dropped_rows_outside_range": h.dropped_outside,
        })
    }

    /// The source's lines of `/metrics` (`aiops_datasource_*{id="…"}`).
    pub fn metrics_text(&self, id: &str, now_ms: i64, out: &mut String) {
        use std::fmt::Write;
        let h = self.inner.lock();
        let id = id.replace(['\\', '"', '\n'], "_");
        let up = matches!(h.state, State::Ok | State::Backfilling) as u8;
        let _ = writeln!(out, "aiops_datasource_up{{id=\"{id}\"}} {up}");
        let _ = writeln!(
            out,
            "aiops_datasource_backfilling{{id=\"{id}\"}} {}",
            (h.state == State::Backfilling) as u8
        );
        if let Some(p) = h.position_ms {
            let _ = writeln!(
                out,
                "aiops_datasource_position_seconds{{id=\"{id}\"}} {}",
                p as f64 / 1000.0
            );
            let _ = writeln!(
                out,
                "aiops_datasource_lag_seconds{{id=\"{id}\"}} {}",
                now_ms.saturating_sub(p).max(0) as f64 / 1000.0
            );
        }
        if let Some(t) = h.last_success_ms {
            let _ = writeln!(
                out,
                "aiops_datasource_last_success_seconds{{id=\"{id}\"}} {}",
                t as f64 / 1000.0
            );
        }
        for (k, v) in &h.kinds {
            let _ = writeln!(
                out,
                "aiops_datasource_rows_total{{id=\"{id}\",kind=\"{k}\"}} {}",
                v.rows
            );
            let _ = writeln!(
                out,
                "aiops_datasource_series{{id=\"{id}\",kind=\"{k}\"}} {}",
                v.series_last_range
            );
        }
        for (name, v) in [
            ("pulls_total", h.pulls),
            ("failures_total", h.failures),
            ("ranges_total", h.ranges),
            ("backfilled_ranges_total", h.backfilled_ranges),
            ("dropped_rows_total", h.dropped_outside),
        ] {
            let _ = writeln!(out, "aiops_datasource_{name}{{id=\"{id}\"}} {v}");
        }
    }
}

/// The `# HELP`/`# TYPE` header of the `aiops_datasource_*` metrics (written once).
pub fn metrics_header(out: &mut String) {
    for (name, ty, help) in [
        (
            "up",
            "gauge",
            "1 when the range source's last pull succeeded",
        ),
        (
            "backfilling",
            "gauge",
            "1 while the source pulls missed ranges",
        ),
        (
            "position_seconds",
            "gauge",
            "End of the last range the log accepted",
        ),
        ("lag_seconds", "gauge", "Now minus the position"),
        (
            "last_success_seconds",
            "gauge",
            "Time of the last successful pull",
        ),
        ("rows_total", "counter", "Rows appended, per kind"),
        (
            "series",
            "gauge",
            "Distinct series in the last range, per kind",
        ),
        ("pulls_total", "counter", "Requests made to the source"),
        ("failures_total", "counter", "Failed pulls and appends"),
        ("ranges_total", "counter", "Ranges appended"),
        (
            "backfilled_ranges_total",
            "counter",
            "Ranges appended while catching up",
        ),
        (
            "dropped_rows_total",
            "counter",
            "Rows outside the range asked for, dropped",
        ),
    ] {
        out.push_str(&format!(
            "# HELP aiops_datasource_{name} {help}.\n# TYPE aiops_datasource_{name} {ty}\n"
        ));
    }
}

/// What the task needs besides the source.
#[derive(Debug, Clone)]
pub struct RangeTask {
    /// The data source id (part of every message id).
    pub id: String,
    /// Appends the rows.
    pub ingestor: Arc<Ingestor>,
    /// Where the position is kept.
    pub positions: Arc<Positions>,
    /// Shown by the API and `/metrics`.
    pub health: Arc<Health>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sleeps `d` unless `stop` flips first; false when stopped.
async fn nap(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    };
    slept && !*stop.borrow()
}

/// The next backoff after `d` for error `e`.
fn backoff(d: Option<Duration>, e: &SourceError) -> Duration {
    let (first, max) = match e {
        SourceError::Unavailable(_) => (Duration::from_secs(1), Duration::from_secs(60)),
        _ => (Duration::from_secs(5), Duration::from_secs(300)),
    };
    d.map_or(first, |d| (d * 2).min(max))
}

/// Pulls `source` on its schedule until `stop` flips (or the future is dropped: everything it
/// did is in the log and the position, so dropping it at any await is safe).
pub async fn run(task: RangeTask, source: Box<dyn RangeSource>, mut stop: watch::Receiver<bool>) {
    let id = task.id.as_str();
    let name = source.name();
    let sched = source.schedule();
    let interval = ms(source.interval()).max(1000);
    let delay = ms(sched.delay);
    // Requests cover whole ranges: at least one, at most max_range.
    let chunk = (ms(source.max_range()) / interval).max(1) * interval;
    let frontier = |now: i64| (now - delay).div_euclid(interval) * interval;
    task.health.inner.lock().interval_ms = interval;

    // The position: stored, or (first start) the frontier minus the initial backfill.
    let mut wait = None;
    let mut pos = loop {
        match task.positions.load(id).await {
            Ok(Some(p)) => break p.div_euclid(interval) * interval,
            Ok(None) => {
                let f = frontier(clock::now_ms());
                let p = (f - ms(sched.initial_backfill)).div_euclid(interval) * interval;
                match task.positions.save(id, p).await {
                    Ok(()) => break p,
                    Err(e) => task.health.failed(&e.to_string()),
                }
            }
            Err(e) => task.health.failed(&e.to_string()),
        }
        let e = SourceError::Unavailable(String::new());
        let d = backoff(wait, &e);
        wait = Some(d);
        tracing::warn!(id = %id, retry_in = ?d, "data source position unreadable; retrying");
        if !nap(d, &mut stop).await {
            return;
        }
    };
    task.health.inner.lock().position_ms = Some(pos);
    tracing::info!(id = %id, source = name, position_ms = pos, interval_ms = interval, "range source started");
    let mut wait: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let now = clock::now_ms();
        let f = frontier(now);
        let oldest = (f - ms(sched.max_backfill)).div_euclid(interval) * interval;
        if pos < oldest {
            tracing::warn!(id = %id, skipped_ms = oldest - pos, "missed ranges older than max_backfill are skipped");
            task.health.inner.lock().skipped_ms += u64::try_from(oldest - pos).unwrap_or(0);
            pos = oldest;
        }
        if pos >= f {
            {
                let mut h = task.health.inner.lock();
                if h.state == State::Backfilling {
                    h.state = State::Ok;
                }
            }
            // The next range is due at frontier + interval + delay.
            let due = f + interval + delay;
            let d = Duration::from_millis(u64::try_from(due - now).unwrap_or(0).max(1));
            if !nap(d, &mut stop).await {
                return;
            }
            continue;
        }
        let behind = f - pos > interval;
        {
            let mut h = task.health.inner.lock();
            if behind && h.state != State::Failing {
                h.state = State::Backfilling;
            }
            h.pulls += 1;
        }
        // One request: from the position to the next chunk boundary, not past the frontier.
        let to = ((pos.div_euclid(chunk) + 1) * chunk).min(f);
        // A stopped source (removed, replaced, its unit lost) does not finish a slow request.
        let pulled = tokio::select! {
            r = source.pull(pos, to) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let batches = match pulled {
            Ok(b) => b,
            Err(e) => {
                let d = backoff(wait, &e);
                wait = Some(d);
                tracing::warn!(id = %id, source = name, from_ms = pos, to_ms = to, error = %e, retry_in = ?d, "range pull failed; retrying the same range");
                task.health.failed(&e.to_string());
                if !nap(d, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        // Each range of the grid is appended with its own ids, whatever the request size.
        let mut from = pos;
        while from < to {
            let end = from + interval;
            let (part, _) = slice_range(&batches, from, end);
            let key = format!("range:{id}:{from}:{end}");
            if !part.is_empty() && !append(&task, &part, &key, &mut stop).await {
                return;
            }
            let mut h = task.health.inner.lock();
            h.ranges += 1;
            if behind {
                h.backfilled_ranges += 1;
            }
            for b in &part {
                let k = h.kinds.entry(b.kind.as_str()).or_default();
                k.rows += b.batch.num_rows() as u64;
                k.series_last_range = distinct_series(&b.batch);
            }
            drop(h);
            from = end;
        }
        let outside = outside_rows(&batches, pos, to);
        // The log has every range up to `to`: move the position there.
        loop {
            match task.positions.save(id, to).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(id = %id, error = %e, "saving the data source position; retrying");
                    task.health.failed(&e.to_string());
                    if !nap(Duration::from_secs(1), &mut stop).await {
                        return;
                    }
                }
            }
        }
        pos = to;
        wait = None;
        let mut h = task.health.inner.lock();
        h.position_ms = Some(pos);
        h.last_success_ms = Some(clock::now_ms());
        h.dropped_outside += outside;
        h.state = if f - pos > 0 {
            State::Backfilling
        } else {
            State::Ok
        };
    }
}

/// Appends one range's batches with the ids of `key`, retrying under backpressure; false when
/// stopped first.
async fn append(
    task: &RangeTask,
    part: &[SourceBatch],
    key: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut d = Duration::from_millis(50);
    loop {
        match task
            .ingestor
            .ingest(part.to_vec(), IdBasis::ClientKey(key))
            .await
        {
            Ok(_) => return true,
            Err(e) if e.is_retryable() => {
                tracing::debug!(id = %task.id, error = %e, "backpressure; retrying the same range");
                d = (d * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                // Not retryable is a bug (an encoding problem); the range is retried slowly
                // rather than skipped.
                tracing::error!(id = %task.id, error = %e, "range refused by the log; retrying in 60s");
                task.health.failed(&e.to_string());
                d = Duration::from_secs(60);
            }
        }
        if !nap(d, stop).await {
            return false;
        }
    }
}

/// The time column of a batch (the first column of every kind).
fn times(b: &RecordBatch) -> Option<&aiops_schemas::arrow_array::TimestampMillisecondArray> {
    b.column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
}

/// The rows of `batches` with a time in `[from, to)`, as batches with their time range;
/// the count of rows kept.
fn slice_range(batches: &[SourceBatch], from: i64, to: i64) -> (Vec<SourceBatch>, u64) {
    let mut out = Vec::new();
    let mut kept = 0u64;
    for sb in batches {
        let Some(t) = times(&sb.batch) else {
            continue;
        };
        let mask: BooleanArray = t
            .iter()
            .map(|v| Some(v.is_some_and(|v| v >= from && v < to)))
            .collect();
        if mask.true_count() == 0 {
            continue;
        }
        let batch = if mask.true_count() == sb.batch.num_rows() {
            sb.batch.clone()
        } else {
            match arrow_select::filter::filter_record_batch(&sb.batch, &mask) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "filtering a pulled batch (a bug)");
                    continue;
                }
            }
        };
        let range = times(&batch).and_then(|t| {
            let min = t.iter().flatten().min()?;
            let max = t.iter().flatten().max()?;
            Some((min, max))
        });
        kept += batch.num_rows() as u64;
        out.push(SourceBatch {
            kind: sb.kind,
            source: sb.source,
            batch,
            time_range: range,
        });
    }
    (out, kept)
}

/// Rows of `batches` outside `[from, to)` (dropped: ranges never overlap).
fn outside_rows(batches: &[SourceBatch], from: i64, to: i64) -> u64 {
    batches
        .iter()
        .filter_map(|sb| times(&sb.batch))
        .map(|t| {
            t.iter()
                .filter(|v| !v.is_some_and(|v| v >= from && v < to))
                .count() as u64
        })
        .sum()
}

/// Distinct (name, labels) pairs of a batch: the series it holds.
fn distinct_series(b: &RecordBatch) -> u64 {
    let names = b
        .column_by_name("name")
        .and_then(|c| c.as_string_opt::<i32>());
    let labels = b.column_by_name("labels").and_then(|c| c.as_map_opt());
    let mut seen = HashSet::new();
    for i in 0..b.num_rows() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if let Some(n) = names {
            n.value(i).hash(&mut h);
        }
        if let Some(m) = labels {
            let e = m.value(i);
            if let (Some(k), Some(v)) = (
                e.column(0).as_string_opt::<i32>(),
                e.column(1).as_string_opt::<i32>(),
            ) {
                for j in 0..k.len() {
                    k.value(j).hash(&mut h);
                    v.value(j).hash(&mut h);
                }
            }
        }
        seen.insert(h.finish());
    }
    seen.len() as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aiops_schemas::{Kind, MetricBatchBuilder};

    fn batch(times: &[i64]) -> SourceBatch {
        let mut b = MetricBatchBuilder::new();
        for (i, t) in times.iter().enumerate() {
            b.push(*t, "m", [("i", if i % 2 == 0 { "a" } else { "b" })], 1.0);
        }
        let time_range = b.time_range();
        SourceBatch {
            kind: Kind::Metrics,
            source: "test",
            batch: b.finish().unwrap(),
            time_range,
        }
    }

    #[test]
    fn ranges_keep_only_their_rows() {
        let b = vec![batch(&[0, 999, 1000, 1500, 2000])];
        let (p, kept) = slice_range(&b, 1000, 2000);
        assert_eq!(kept, 2);
        assert_eq!(p[0].time_range, Some((1000, 1500)));
        assert_eq!(outside_rows(&b, 0, 2000), 1);
        assert!(slice_range(&b, 5000, 6000).0.is_empty());
        assert_eq!(distinct_series(&b[0].batch), 2);
    }

    #[tokio::test]
    async fn positions_survive_and_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let p = Positions::new(dir.path(), false);
        assert_eq!(p.load("s").await.unwrap(), None);
        p.save("s", 60_000).await.unwrap();
        p.save("s", 120_000).await.unwrap();
        assert_eq!(
            Positions::new(dir.path(), false).load("s").await.unwrap(),
            Some(120_000)
        );
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("datasource-positions"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::write(dir.path().join("datasource-positions/s.json"), b"garbage").unwrap();
        assert!(
            p.load("s").await.is_err(),
            "a broken position is an error, not a restart"
        );
        p.forget("s").await;
        assert_eq!(p.load("s").await.unwrap(), None);
        // Cluster mode without the bucket yet: an error, not the file.
        assert!(Positions::new(dir.path(), true).load("s").await.is_err());
    }
}
