//! The executor: the only place an effect happens. It runs the engine's intents that have no
//! result yet — each with its idempotency key, retries with doubling backoff on retryable
//! failures, a timeout per attempt — and appends their results to the log. Results of effects
//! that finish together go into one message, in one append (a group commit: one fsync for many
//! results). An intent stays "in flight" until the engine has read its result, so nothing runs
//! twice while a result travels through the log; after a crash, an intent without a result runs
//! again with the same key (DESIGN.md invariant 3). Never started for `replay` or `rebuild`.

use super::codec::results_message;
use super::processor::{IntentSink, WorkflowsHandle};
use aiops_connectors::sinks::EffectCall;
use aiops_log::EventLog;
use aiops_workflow::{EffectResult, Intent};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};

/// Results queued for the log at most (the effects wait when the log falls behind).
const RESULT_QUEUE: usize = 4096;
/// Results in one message at most.
const RESULTS_PER_MESSAGE: usize = 512;

/// Why a built-in `sql` or `verify` call failed: the message becomes the effect's result error
/// (a missing query, a planning or execution error, a limit the query ran into).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// What went wrong, for the effect's result.
    pub message: String,
}

impl QueryError {
    /// A failure described by `e`.
    pub fn of(e: impl std::fmt::Display) -> QueryError {
        QueryError {
            message: e.to_string(),
        }
    }
}

/// The built-in `sql` and `verify` calls of workflows, answered by the read side (which the
/// server wires in: the runtime has no SQL endpoint of its own).
#[async_trait::async_trait]
pub trait Queries: Send + Sync {
    /// A `sql` step: rows as JSON objects over `[at − window, at]`.
    ///
    /// # Errors
    /// [`QueryError`] for the effect's result (missing query, planning or execution error).
    async fn sql(
        &self,
        params: &Map<String, Value>,
        at_ms: i64,
        window_ms: i64,
    ) -> Result<Value, QueryError>;

    /// A `verify`: whether the condition holds at `at_ms`.
    ///
    /// # Errors
    /// [`QueryError`] for the effect's result.
    async fn verify(&self, params: &Map<String, Value>, at_ms: i64) -> Result<bool, QueryError>;
}

/// Counts of the executor (exported as metrics).
#[derive(Debug, Default)]
pub struct ExecutorStats {
    /// Calls made (attempts).
    pub attempts: AtomicU64,
    /// Intents finished successfully.
    pub succeeded: AtomicU64,
    /// Intents finished failed.
    pub failed: AtomicU64,
    /// Intents run again after a restart (no result in the log).
    pub resumed: AtomicU64,
    /// Result messages appended (each carries one or more results).
    pub result_messages: AtomicU64,
}

/// The executor.
pub struct Executor {
    handle: Arc<WorkflowsHandle>,
    log: Arc<dyn EventLog>,
    query: Arc<dyn Queries>,
    in_flight: Mutex<HashSet<String>>,
    /// Keys of intents logged since the executor last looked (see [`IntentSink::poke`]).
    fresh: Mutex<Vec<String>>,
    results: mpsc::Sender<EffectResult>,
    results_rx: Mutex<Option<mpsc::Receiver<EffectResult>>>,
    sem: Arc<Semaphore>,
    wake: Notify,
    sql_window_ms: i64,
    /// Counts.
    pub stats: ExecutorStats,
    /// Test hook: wait this long between logging the intent and the first request, so a crash
    /// test can land a `kill -9` there (`AIOPS_FAULT_EFFECT_DELAY_MS`).
    delay_ms: u64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("in_flight", &self.in_flight.lock().len())
            .finish()
    }
}

impl IntentSink for Executor {
    fn poke(&self, new: Vec<String>) {
        if !new.is_empty() {
            self.fresh.lock().extend(new);
        }
        self.wake.notify_one();
    }
    fn settled(&self, key: &str) {
        self.in_flight.lock().remove(key);
    }
}

impl Executor {
    /// An executor running at most `max_in_flight` effects at once.
    pub fn new(
        handle: Arc<WorkflowsHandle>,
        log: Arc<dyn EventLog>,
        query: Arc<dyn Queries>,
        max_in_flight: usize,
        sql_window: Duration,
    ) -> Arc<Executor> {
        let (results, results_rx) = mpsc::channel(RESULT_QUEUE);
        Arc::new(Executor {
            handle,
            log,
            query,
            in_flight: Mutex::new(HashSet::new()),
            fresh: Mutex::new(Vec::new()),
            results,
            results_rx: Mutex::new(Some(results_rx)),
            sem: Arc::new(Semaphore::new(max_in_flight.max(1))),
            wake: Notify::new(),
            sql_window_ms: i64::try_from(sql_window.as_millis()).unwrap_or(i64::MAX),
            stats: ExecutorStats::default(),
            delay_ms: std::env::var("AIOPS_FAULT_EFFECT_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }

    /// Runs until `shutdown` flips: whenever poked, starts every pending intent not in flight.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(rx) = self.results_rx.lock().take() {
            tokio::spawn(self.clone().write_results(rx, shutdown.clone()));
        }
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            // A wake brings the keys of new intents; the timer (and the first round after the
            // catch-up) scans every pending intent, so nothing is left behind whatever path made
            // it pending. Scanning at every wake would cost O(backlog) per step.
            let scan = tokio::select! {
                _ = self.wake.notified() => first,
                _ = tokio::time::sleep(Duration::from_millis(500)) => true,
                _ = shutdown.changed() => { continue; }
            };
            if !self.handle.caught_up.load(Ordering::Acquire) {
                continue;
            }
            // Only intents whose events are in the log: the runner holds this lock from
            // changing the engine until its events are appended.
            let published = self.handle.step_lock.lock().await;
            let fresh = std::mem::take(&mut *self.fresh.lock());
            let todo: Vec<Intent> = {
                let engine = self.handle.engine.read();
                let mut fl = self.in_flight.lock();
                let mut take = |i: &Intent| {
                    if fl.contains(&i.key) {
                        return false;
                    }
                    fl.insert(i.key.clone());
                    true
                };
                if scan {
                    engine
                        .pending_intents()
                        .filter(|i| take(i))
                        .cloned()
                        .collect()
                } else {
                    fresh
                        .iter()
                        .filter_map(|k| engine.pending_intent(k))
                        .filter(|i| take(i))
                        .cloned()
                        .collect()
                }
            };
            if first {
                // Intents pending when the engine caught up had no result in the log: a crash
                // interrupted them. They run again with the same key.
                self.stats
                    .resumed
                    .fetch_add(todo.len() as u64, Ordering::Relaxed);
                if !todo.is_empty() {
                    tracing::info!(
                        count = todo.len(),
                        "resuming effects without a logged result"
                    );
                }
                first = false;
            }
            drop(published);
            for intent in todo {
                tokio::spawn(self.clone().execute(intent));
            }
        }
    }

    async fn execute(self: Arc<Self>, intent: Intent) {
        // Wait for a verify's settle point before taking a slot, so waiting verifies do not
        // hold back other effects.
        if let Some(nb) = intent.not_before_ms {
            let wait = nb - crate::clock::now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
            }
        }
        let Ok(_permit) = self.sem.clone().acquire_owned().await else {
            self.in_flight.lock().remove(&intent.key);
            return;
        };
        if self.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        }
        let mut result = self.perform(&intent).await;
        let secrets = self.handle.providers.secrets();
        result.error = result.error.map(|e| secrets.redact(&e));
        result.status = secrets.redact(&result.status);
        secrets.redact_value(&mut result.response);
        if result.ok {
            self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        // Everything here was redacted above.
        // Debug, not info: one line per effect is a hot-path cost at thousands per second
        // (the result is in the log; the counters are on /metrics).
        tracing::debug!(key = %intent.key, kind = %intent.kind, ok = result.ok, status = %result.status, error = result.error.as_deref().unwrap_or(""), attempts = result.attempts, "effect finished");
        // The result must reach the log; until it does the intent stays in flight here. The
        // queue is bounded: effects wait when the log falls behind.
        if self.results.send(result).await.is_err() {
            self.in_flight.lock().remove(&intent.key);
        }
    }

    /// Appends queued results, as many as are ready in one message and one append, retrying
    /// with backoff until the log takes them (or shutdown).
    async fn write_results(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<EffectResult>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut batch = Vec::with_capacity(RESULTS_PER_MESSAGE);
        loop {
            batch.clear();
            let stopping = tokio::select! {
                n = rx.recv_many(&mut batch, RESULTS_PER_MESSAGE) => n == 0,
                r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
            };
            if stopping {
                // Whatever finished before shutdown gets one try; the rest runs again after the
                // restart, with the same keys.
                while batch.len() < RESULTS_PER_MESSAGE
                    && let Ok(r) = rx.try_recv()
                {
                    batch.push(r);
                }
                if !batch.is_empty() {
                    self.append_results(&batch, false).await;
                }
                return;
            }
            if !batch.is_empty() {
                self.append_results(&batch, true).await;
            }
        }
    }

    /// One message with `batch`, appended; retried with backoff while `retry` and the engine
    /// runs.
    async fn append_results(&self, batch: &[EffectResult], retry: bool) {
        let msg = match results_message(batch) {
            Ok(m) => m,
            Err(e) => {
                // A result that does not serialize is a bug; its intents run again after a
                // restart.
                tracing::error!(error = %e, results = batch.len(), "cannot encode effect results");
                return;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.log.append(vec![msg.clone()]).await {
                Ok(_) => {
                    self.stats.result_messages.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::warn!(results = batch.len(), error = %e, "cannot log effect results; retrying");
                    if !retry {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn perform(&self, intent: &Intent) -> EffectResult {
        let mut r = EffectResult {
            key: intent.key.clone(),
            ok: false,
            status: String::new(),
            response: Value::Null,
            error: None,
            attempts: 0,
            at_ms: 0,
        };
        match intent.kind.as_str() {
            "sql" => {
                r.attempts = 1;
                match self
                    .query
                    .sql(&intent.params, intent.at_ms, self.sql_window_ms)
                    .await
                {
                    Ok(rows) => {
                        r.ok = true;
                        r.status = "ok".into();
                        r.response = rows;
                    }
                    Err(e) => {
                        r.status = "error".into();
                        r.error = Some(e.message);
                    }
                }
            }
            "verify" => {
                r.attempts = 1;
                let at = intent.not_before_ms.unwrap_or(intent.at_ms);
                match self.query.verify(&intent.params, at).await {
                    Ok(v) => {
                        r.ok = v;
                        r.status = if v {
                            "condition true"
                        } else {
                            "condition false"
                        }
                        .into();
                        r.response = serde_json::json!({"value": v});
                    }
                    Err(e) => {
                        r.status = "error".into();
                        r.error = Some(e.message);
                    }
                }
            }
            _ => self.call_provider(intent, &mut r).await,
        }
        r.at_ms = crate::clock::now_ms();
        r
    }

    async fn call_provider(&self, intent: &Intent, r: &mut EffectResult) {
        let found = match &intent.provider {
            Some(name) => self
                .handle
                .providers
                .get(name)
                .ok_or_else(|| format!("provider {name:?} is not configured")),
            // Built-in providers (`context-provider`, `incident-db`) go by kind.
            None => self
                .handle
                .providers
                .builtin(&intent.kind)
                .ok_or_else(|| format!("no provider for kind {:?}", intent.kind)),
        };
        let p = match found {
            Ok(p) => p,
            Err(e) => {
                r.status = "refused".into();
                r.error = Some(e);
                return;
            }
        };
        let params = match self.handle.providers.reveal(&intent.params) {
            Ok(p) => p,
            Err(e) => {
                r.status = "refused".into();
                r.error = Some(e);
                return;
            }
        };
        let timeout =
            Duration::from_millis(u64::try_from(intent.timeout_ms.max(1)).unwrap_or(30_000));
        let mut backoff =
            Duration::from_millis(u64::try_from(intent.backoff_ms.max(0)).unwrap_or(1000));
        for attempt in 1..=intent.attempts.max(1) {
            r.attempts = attempt;
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let call = EffectCall {
                idempotency_key: &intent.key,
                params: &params,
            };
            match tokio::time::timeout(timeout, p.call(&call)).await {
                Ok(Ok(out)) => {
                    r.ok = true;
                    r.status = out.status;
                    r.response = out.response;
                    r.error = None;
                    return;
                }
                Ok(Err(e)) => {
                    r.status = "error".into();
                    r.error = Some(e.to_string());
                    if !e.retryable() {
                        return;
                    }
                }
                Err(_) => {
                    r.status = "timeout".into();
                    r.error = Some(format!("no answer within {timeout:?}"));
                }
            }
            if attempt < intent.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}
