//! The one driver of a [`Processor`] over the log, and the blocks it is made of (which the
//! pipelines, with one position per pipeline, reuse).
//!
//! The recovery protocol (DESIGN.md invariants 1–3), written once:
//! 1. **Restore** the checkpoint if its configuration hash matches; otherwise start at `start`
//!    with empty state (the state is rebuilt from the log).
//! 2. **Collect** the ids of the processor's own outputs already in the log past the
//!    checkpoint's log head ([`OutputDedup`]): a crash may have left outputs of inputs after the
//!    checkpoint in the log.
//! 3. **Process** records in log order; each answer's messages have deterministic ids.
//! 4. **Drop** outputs already in the log (by id); **append** the rest of a step in one call.
//! 5. **Publish** the position (commands waiting on it learn their outcome).
//! 6. **Checkpoint** — position, log head, state — only after the outputs are in the log, every
//!    `checkpoint_every` ([`Cadence`]), and at shutdown.
//! 7. When idle, **tick** (append a clock tick) if a timer is due, and **follow**: wait for the
//!    log's append signal ([`aiops_log::EventLog::subscribe`]), a due timer or shutdown —
//!    never a fixed poll.

use crate::processor::{DriverCounts, Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::CommandProgress;
use crate::store::{Checkpoint, Store, StoreError};
use aiops_log::{AppendMessage, EventLog, LogError, LogReader, Record};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Records read per step.
pub const BATCH: usize = 1024;

/// How long an idle driver waits when no append signal comes (a backend without signals, e.g.
/// a log opened read-only beside another process): a safety net, not the way it reacts.
pub const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// Why a driver stopped. A restart resumes from the last checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Reading or appending to the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The processor could not go on.
    #[error(transparent)]
    Processor(#[from] ProcessorError),
}

/// The ids of a processor's outputs already in the log past a checkpoint.
#[derive(Debug, Default)]
pub struct OutputDedup {
    seen: HashSet<String>,
}

impl OutputDedup {
    /// Reads the log from `from` to its head as it is now and keeps the ids of messages
    /// `is_output` claims. The head is taken first: a log others keep appending to (ingest, on
    /// a cluster) has no end to read to, and everything this processor appended before it
    /// opened — or a previous owner before its fence — is before that head.
    ///
    /// # Errors
    /// [`LogError`] when the log cannot be read.
    pub async fn collect(
        log: &dyn EventLog,
        from: u64,
        is_output: impl Fn(&str, &str) -> bool,
    ) -> Result<OutputDedup, LogError> {
        let head = log.stats().await?.next_seq;
        Self::collect_keyed(log, from, head, is_output, |id| id).await
    }

    /// [`OutputDedup::collect`] up to `until` (exclusive), keeping `key(id)` instead of the id (see
    /// [`Processor::output_key`](crate::processor::Processor::output_key)); ask with
    /// [`OutputDedup::is_new_key`].
    ///
    /// # Errors
    /// [`LogError`] when the log cannot be read.
    pub async fn collect_keyed(
        log: &dyn EventLog,
        from: u64,
        until: u64,
        is_output: impl Fn(&str, &str) -> bool,
        key: impl Fn(&str) -> &str,
    ) -> Result<OutputDedup, LogError> {
        let mut seen = HashSet::new();
        let mut r = log.reader(from).await?;
        while r.position() < until {
            let batch = r.next_batch(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for rec in batch {
                if rec.seq >= until {
                    break;
                }
                if is_output(&rec.subject, &rec.msg_id) {
                    seen.insert(key(&rec.msg_id).to_string());
                }
            }
        }
        Ok(OutputDedup { seen })
    }

    /// True when `msg` is not in the log yet (it must be appended); false the first time a
    /// message already there comes again.
    pub fn is_new(&mut self, msg: &AppendMessage) -> bool {
        self.is_new_key(&msg.msg_id)
    }

    /// [`OutputDedup::is_new`] by key.
    pub fn is_new_key(&mut self, key: &str) -> bool {
        self.seen.is_empty() || !self.seen.remove(key)
    }

    /// Ids still expected (outputs found in the log and not re-derived yet).
    pub fn pending(&self) -> usize {
        self.seen.len()
    }
}

/// When a checkpoint is due: every `every`, and only when something changed since the last.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    every: Duration,
    last: Instant,
    dirty: bool,
}

impl Cadence {
    /// A cadence of `every`; the first checkpoint is due `every` from now.
    pub fn new(every: Duration) -> Cadence {
        Cadence {
            every,
            last: Instant::now(),
            dirty: true,
        }
    }

    /// State changed since the last checkpoint.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// A checkpoint was written.
    pub fn saved(&mut self) {
        self.last = Instant::now();
        self.dirty = false;
    }

    /// Whether a checkpoint is due now.
    pub fn due(&self) -> bool {
        self.dirty && self.last.elapsed() >= self.every
    }

    /// How long until a checkpoint is due (`None`: nothing to save).
    pub fn time_left(&self) -> Option<Duration> {
        self.dirty
            .then(|| self.every.saturating_sub(self.last.elapsed()))
    }
}

/// Waits until the log signals an append, `max` passes, or `shutdown` changes. A closed signal
/// (the log was closed) degrades to sleeping `max`.
pub async fn idle_wait(
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
    max: Duration,
) {
    tokio::select! {
        r = wake.changed() => {
            if r.is_err() {
                tokio::select! {
                    _ = tokio::time::sleep(max) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        _ = tokio::time::sleep(max) => {}
        _ = shutdown.changed() => {}
    }
}

/// How a driver starts.
pub struct DriverOptions {
    /// The checkpoint store (`None`: no checkpoints, e.g. a dry run).
    pub store: Option<Store>,
    /// Whether outputs are appended (false: a dry run or forensic replay; nothing is written).
    pub append: bool,
    /// Where to start without a usable checkpoint (the log's first sequence, or a replay's
    /// start).
    pub start: u64,
    /// How often to checkpoint while running.
    pub checkpoint_every: Duration,
    /// Where the position and command outcomes are published.
    pub progress: Arc<CommandProgress>,
    /// Whether checkpoints are written (false: the store is only restored from — a node
    /// following a unit another node owns keeps its state live for reads and writes nothing).
    pub write_checkpoints: bool,
}

impl DriverOptions {
    /// A cluster work unit's driver: the owner appends and checkpoints to `store`; a follower
    /// only restores from it and appends nothing.
    pub fn unit(
        store: Store,
        owner: bool,
        start: u64,
        checkpoint_every: Duration,
        progress: Arc<CommandProgress>,
    ) -> DriverOptions {
        DriverOptions {
            store: Some(store),
            append: owner,
            start,
            checkpoint_every,
            progress,
            write_checkpoints: owner,
        }
    }
}

/// Drives one [`Processor`] over the log; see the module documentation for the protocol.
pub struct Driver<P: Processor> {
    log: Arc<dyn EventLog>,
    processor: P,
    reader: Box<dyn LogReader>,
    store: Option<Store>,
    append: bool,
    write_checkpoints: bool,
    dedup: OutputDedup,
    progress: Arc<CommandProgress>,
    config_hash: u64,
    log_head: u64,
    start_head: u64,
    /// Where the dedup scan started: until the driver has read past `start_head`, outputs of
    /// a previous run (or owner) may lie anywhere from here on, so a checkpoint names this
    /// head, not `log_head`.
    scan_from: u64,
    caught_up: bool,
    cadence: Cadence,
    counts: DriverCounts,
    wake: watch::Receiver<u64>,
    collected: Option<Vec<AppendMessage>>,
    /// A periodic checkpoint being serialized and written beside the step loop.
    background: Option<tokio::task::JoinHandle<Result<(), DriverError>>>,
}

impl<P: Processor> std::fmt::Debug for Driver<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("processor", &P::NAME)
            .field("position", &self.reader.position())
            .finish()
    }
}

impl<P: Processor> Driver<P> {
    /// Restores `processor` from the checkpoint when it matches, collects its outputs already
    /// in the log (when appending) and positions the reader.
    ///
    /// # Errors
    /// [`DriverError`] when the log or store cannot be read or the checkpoint not restored.
    pub async fn open(
        log: Arc<dyn EventLog>,
        mut processor: P,
        opts: DriverOptions,
    ) -> Result<Driver<P>, DriverError> {
        // Subscribed first: an append from here on wakes the first idle wait.
        let wake = log.subscribe();
        let stats = log.stats().await?;
        let config_hash = processor.config_hash();
        let mut position = opts.start;
        let mut head = opts.start;
        if let Some(store) = &opts.store
            && let Some((ck, state)) = store.load()?
        {
            if ck.config_hash == config_hash {
                processor.restore(&state)?;
                position = ck.position;
                head = ck.log_head;
                tracing::info!(
                    processor = P::NAME,
                    position,
                    "{} resumes from its checkpoint",
                    P::WHAT
                );
            } else {
                tracing::info!(
                    processor = P::NAME,
                    "{} configuration changed: state is rebuilt from the log",
                    P::WHAT
                );
            }
        }
        let dedup = if opts.append {
            OutputDedup::collect_keyed(
                &*log,
                head,
                stats.next_seq,
                |s, id| processor.is_output(s, id),
                |id| processor.output_key(id),
            )
            .await?
        } else {
            OutputDedup::default()
        };
        let reader = log.reader(position).await?;
        opts.progress.moved_to(position);
        Ok(Driver {
            log,
            processor,
            reader,
            store: opts.store,
            append: opts.append,
            write_checkpoints: opts.write_checkpoints,
            dedup,
            progress: opts.progress,
            config_hash,
            log_head: stats.next_seq,
            start_head: stats.next_seq,
            scan_from: head,
            caught_up: false,
            cadence: Cadence::new(opts.checkpoint_every),
            counts: DriverCounts::default(),
            wake,
            collected: None,
            background: None,
        })
    }

    /// Keeps every message the processor produces (appended or not), for [`Driver::take_collected`].
    pub fn collecting(mut self) -> Self {
        self.collected = Some(Vec::new());
        self
    }

    /// The messages produced since [`Driver::collecting`] or the last call.
    pub fn take_collected(&mut self) -> Vec<AppendMessage> {
        self.collected
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// The processor, mutably (dry runs read what it collected).
    pub fn processor_mut(&mut self) -> &mut P {
        &mut self.processor
    }

    /// The next sequence to read.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// What the driver counted.
    pub fn counts(&self) -> DriverCounts {
        self.counts
    }

    /// Reads up to `max` records, feeds them to the processor, appends the new outputs in one
    /// call, publishes the position and checkpoints when due. Returns the records read (0 at the
    /// end of the log).
    ///
    /// # Errors
    /// [`DriverError`]; the caller stops and restarts from the checkpoint.
    pub async fn step(&mut self, max: usize) -> Result<usize, DriverError> {
        let records = self.reader.next_batch(max).await?;
        let lock = self.processor.step_lock();
        let guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let res = self.step_records(&records).await;
        drop(guard);
        match res {
            Ok(()) => {
                if self.writes_checkpoints() && self.cadence.due() {
                    self.checkpoint_beside().await?;
                }
                Ok(records.len())
            }
            Err(e) => {
                // Outputs of this step may not be in the log: whoever acts on them must stop.
                self.processor.stepped(&StepInfo {
                    position: self.reader.position(),
                    caught_up: false,
                    counts: self.counts,
                });
                Err(e)
            }
        }
    }

    async fn step_records(&mut self, records: &[Record]) -> Result<(), DriverError> {
        let mut append = Vec::new();
        let mut outcomes = Vec::new();
        let mut out = Outputs::default();
        for r in records {
            // Fence messages belong to the cluster's ownership protocol, not to any processor.
            if crate::wire::is_fence(&r.subject) {
                continue;
            }
            self.processor.on_record(r, &mut out)?;
            if let Some(o) = out.outcome.take() {
                outcomes.push((r.seq, o));
            }
            for m in out.messages.drain(..) {
                self.counts.outputs += 1;
                if let Some(c) = &mut self.collected {
                    c.push(m.clone());
                }
                if self.dedup.is_new_key(self.processor.output_key(&m.msg_id)) {
                    append.push(m);
                } else {
                    self.counts.already_in_log += 1;
                }
            }
        }
        self.counts.messages_read += records.len() as u64;
        if self.append && !append.is_empty() {
            let appended = self.log.append(append).await?;
            if let Some(last) = appended.last() {
                self.log_head = self.log_head.max(last.seq + 1);
            }
        }
        for (seq, o) in outcomes {
            self.progress.record(seq, o);
        }
        if let Some(last) = records.last() {
            self.progress.moved_to(last.seq + 1);
            self.cadence.changed();
        }
        if !self.caught_up && (records.is_empty() || self.reader.position() >= self.start_head) {
            self.caught_up = true;
            // Every output appended before this driver opened came from an input before
            // `start_head`, which it has now read again: nothing left to recognize.
            self.dedup = OutputDedup::default();
        }
        self.processor.stepped(&StepInfo {
            position: self.reader.position(),
            caught_up: self.caught_up,
            counts: self.counts,
        });
        Ok(())
    }

    /// The log head a checkpoint records: outputs of inputs after its position are at or after
    /// it. Before the driver has read past where the log ended when it opened, a previous run's
    /// outputs of those inputs may lie anywhere after the dedup scan's start (a checkpoint then
    /// naming the later `log_head` would let the next run miss them and append them twice).
    fn checkpoint_head(&self) -> u64 {
        if self.caught_up {
            self.log_head
        } else {
            self.scan_from.min(self.log_head)
        }
    }

    fn writes_checkpoints(&self) -> bool {
        self.store.is_some() && self.write_checkpoints
    }

    /// Writes the position, log head and state (nothing without a store, or when the driver
    /// only restores from it).
    ///
    /// # Errors
    /// [`DriverError`] when the state cannot be serialized or the store fails.
    pub async fn checkpoint(&mut self) -> Result<(), DriverError> {
        // A periodic checkpoint still being written must land first: an older state written
        // after this one would move the checkpoint back.
        self.join_background().await?;
        if !self.write_checkpoints {
            return Ok(());
        }
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = self.processor.snapshot()?;
        let ck = Checkpoint {
            config_hash: self.config_hash,
            position: self.reader.position(),
            log_head: self.checkpoint_head(),
        };
        store.save(&ck, state).await?;
        self.cadence.saved();
        Ok(())
    }

    /// A periodic checkpoint: the state is taken now (at a step boundary, after the step's
    /// outputs are in the log) and serialized and written on other threads while the driver
    /// steps on, when the processor offers a [`Processor::snapshot_job`]; else in line. At most
    /// one is in flight; while it is, a due checkpoint waits for the next step.
    async fn checkpoint_beside(&mut self) -> Result<(), DriverError> {
        if self.background.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.join_background().await?;
        let (Some(store), Some(job)) = (self.store.clone(), self.processor.snapshot_job()) else {
            return self.checkpoint().await;
        };
        let ck = Checkpoint {
            config_hash: self.config_hash,
            position: self.reader.position(),
            log_head: self.checkpoint_head(),
        };
        self.cadence.saved();
        self.background = Some(tokio::spawn(async move {
            let state = tokio::task::spawn_blocking(job)
                .await
                .map_err(|e| ProcessorError::new(P::NAME, e))??;
            store.save(&ck, state).await?;
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the periodic checkpoint in flight, if any, and returns its outcome.
    async fn join_background(&mut self) -> Result<(), DriverError> {
        match self.background.take() {
            Some(h) => h.await.map_err(|e| ProcessorError::new(P::NAME, e))?,
            None => Ok(()),
        }
    }

    /// Reads to the end of the log as it is now, or up to `until_seq`.
    ///
    /// # Errors
    /// [`DriverError`] from a step.
    pub async fn run_to_end(&mut self, until_seq: Option<u64>) -> Result<(), DriverError> {
        loop {
            if until_seq.is_some_and(|u| self.reader.position() >= u) {
                return Ok(());
            }
            if self.step(BATCH).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Follows the log until `shutdown` flips: steps while there is input; when idle, appends a
    /// clock tick if a timer is due (at most every `tick_every`), otherwise waits for the log's
    /// append signal, the next timer or checkpoint, or shutdown. Checkpoints at the end.
    ///
    /// # Errors
    /// [`DriverError`] from a step, a tick append or the final checkpoint.
    pub async fn follow(
        mut self,
        tick_every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), DriverError> {
        let mut last_tick = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.wake.borrow_and_update();
            if self.step(BATCH).await? > 0 {
                continue;
            }
            let now = crate::clock::now_ms();
            let deadline = self.processor.next_deadline_ms();
            let tick_in = tick_every.saturating_sub(last_tick.elapsed());
            if deadline.is_some_and(|t| t <= now) && tick_in.is_zero() && self.append {
                self.log
                    .append(vec![crate::wire::tick_message(now)])
                    .await?;
                self.counts.ticks += 1;
                last_tick = Instant::now();
                continue;
            }
            let mut wait = FALLBACK_POLL;
            if let Some(t) = deadline {
                let due_in = Duration::from_millis(u64::try_from(t - now).unwrap_or(0));
                wait = wait.min(due_in.max(tick_in));
            }
            if self.writes_checkpoints()
                && let Some(c) = self.cadence.time_left()
            {
                // While a checkpoint is being written a due one waits; do not spin meanwhile.
                let writing = self.background.as_ref().is_some_and(|h| !h.is_finished());
                wait = wait.min(if writing {
                    c.max(Duration::from_millis(5))
                } else {
                    c
                });
            }
            idle_wait(&mut self.wake, &mut shutdown, wait).await;
        }
        self.checkpoint().await
    }

    /// Drops the processor's checkpoint and opens a driver over the whole log that appends only
    /// outputs not already there and checkpoints once, when the caller says
    /// ([`Driver::checkpoint`]).
    ///
    /// # Errors
    /// [`DriverError`] from the store or the log.
    pub async fn prepare_rebuild(
        log: Arc<dyn EventLog>,
        processor: P,
        store: Store,
    ) -> Result<Driver<P>, DriverError> {
        store.clear().await?;
        let first = log.stats().await?.first_seq;
        Driver::open(
            log,
            processor,
            DriverOptions {
                store: Some(store),
                append: true,
                start: first,
                checkpoint_every: Duration::MAX,
                progress: Arc::new(CommandProgress::default()),
                write_checkpoints: true,
            },
        )
        .await
    }

    /// `aiops rebuild` of one processor: [`Driver::prepare_rebuild`], run to the end of the
    /// log, checkpoint. `progress` is called about once a second with (position, log head).
    ///
    /// # Errors
    /// [`DriverError`] from the store, the log or the processor.
    pub async fn rebuild(
        log: Arc<dyn EventLog>,
        processor: P,
        store: Store,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Driver<P>, DriverError> {
        let head = log.stats().await?.next_seq;
        let mut d = Driver::prepare_rebuild(log, processor, store).await?;
        let mut last = Instant::now();
        loop {
            let n = d.step(BATCH).await?;
            if last.elapsed() >= Duration::from_secs(1) {
                progress(d.position(), head);
                last = Instant::now();
            }
            if n == 0 {
                break;
            }
        }
        d.checkpoint().await?;
        Ok(d)
    }
}
