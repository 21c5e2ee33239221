//! The executor: the only place an effect happens. It runs the engine's intents that have no
//! result yet — each with its idempotency key, retries with doubling backoff on retryable
//! failures, a timeout per attempt — and appends one result per intent to the log. An intent
//! stays "in flight" until the runner has read its result, so nothing runs twice while a result
//! travels through the log; after a crash, an intent without a result runs again with the same
//! key (DESIGN.md invariant 3). Never started for `replay` or `rebuild`.

use super::codec::result_message;
use super::query::QueryEngine;
use super::runner::{IntentSink, WorkflowsHandle};
use aiops_connectors::sinks::EffectCall;
use aiops_log::EventLog;
use aiops_workflow::{EffectResult, Intent};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

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
}

/// The executor.
pub struct Executor {
    handle: Arc<WorkflowsHandle>,
    log: Arc<dyn EventLog>,
    query: Arc<QueryEngine>,
    in_flight: Mutex<HashSet<String>>,
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
    fn poke(&self) {
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
        query: Arc<QueryEngine>,
        max_in_flight: usize,
        sql_window: Duration,
    ) -> Arc<Executor> {
        Arc::new(Executor {
            handle,
            log,
            query,
            in_flight: Mutex::new(HashSet::new()),
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
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => { continue; }
            }
            if !self.handle.caught_up.load(Ordering::Acquire) {
                continue;
            }
            // Only intents whose events are in the log: the runner holds this lock from
            // changing the engine until its events are appended.
            let published = self.handle.step_lock.lock().await;
            let todo: Vec<Intent> = {
                let engine = self.handle.engine.read();
                let mut fl = self.in_flight.lock();
                engine
                    .pending_intents()
                    .filter(|i| fl.insert(i.key.clone()))
                    .cloned()
                    .collect()
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
                let me = self.clone();
                let sd = shutdown.clone();
                tokio::spawn(async move { me.execute(intent, sd).await });
            }
        }
    }

    async fn execute(
        self: Arc<Self>,
        intent: Intent,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
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
        tracing::info!(key = %intent.key, kind = %intent.kind, ok = result.ok, status = %result.status, error = result.error.as_deref().unwrap_or(""), attempts = result.attempts, "effect finished");
        let Ok(msg) = result_message(&result) else {
            self.in_flight.lock().remove(&intent.key);
            return;
        };
        // The result must reach the log; until it does the intent stays in flight here.
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.log.append(vec![msg.clone()]).await {
                Ok(_) => return,
                Err(e) => {
                    if *shutdown.borrow() {
                        return;
                    }
                    tracing::warn!(key = %intent.key, error = %e, "cannot log an effect result; retrying");
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
                        r.error = Some(e);
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
                        r.error = Some(e);
                    }
                }
            }
            _ => self.call_provider(intent, &mut r).await,
        }
        r.at_ms = crate::clock::now_ms();
        r
    }

    async fn call_provider(&self, intent: &Intent, r: &mut EffectResult) {
        let Some(name) = &intent.provider else {
            r.status = "refused".into();
            r.error = Some(format!("no provider for kind {:?}", intent.kind));
            return;
        };
        let Some(p) = self.handle.providers.get(name) else {
            r.status = "refused".into();
            r.error = Some(format!("provider {name:?} is not configured"));
            return;
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
