//! Token and cost counters of one chat model, for `/metrics`.
//!
//! Live calls are counted by the adapters; answers served from the record (replay, rebuild, a
//! retry after a crash) are counted as `recorded_hits` by the assistant and cost nothing.

use super::Usage;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cumulative counters of one model since start. Cheap to update (relaxed atomics).
#[derive(Debug, Default)]
pub struct LlmCounters {
    calls: AtomicU64,
    failures: AtomicU64,
    recorded_hits: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    /// USD × 10⁹, so the sum stays an integer.
    cost_nano_usd: AtomicU64,
}

/// A copy of [`LlmCounters`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CounterSnapshot {
    /// Calls that reached the model and were answered.
    pub calls: u64,
    /// Calls that failed (HTTP error, timeout, network, malformed answer).
    pub failures: u64,
    /// Answers taken from the record instead of calling out.
    pub recorded_hits: u64,
    /// Prompt tokens of answered calls.
    pub input_tokens: u64,
    /// Answer tokens of answered calls.
    pub output_tokens: u64,
    /// Cost of answered calls in USD (from the configured prices).
    pub cost_usd: f64,
}

impl LlmCounters {
    /// Counts an answered call.
    pub fn answered(&self, usage: &Usage, cost_usd: f64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.input_tokens
            .fetch_add(usage.input_tokens, Ordering::Relaxed);
        self.output_tokens
            .fetch_add(usage.output_tokens, Ordering::Relaxed);
        if cost_usd.is_finite() && cost_usd > 0.0 {
            // Saturating float → int conversion; a nano-dollar resolution is plenty.
            let nano = (cost_usd * 1e9).round() as u64;
            self.cost_nano_usd.fetch_add(nano, Ordering::Relaxed);
        }
    }

    /// Counts a failed call.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer served from the record.
    pub fn recorded_hit(&self) {
        self.recorded_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            recorded_hits: self.recorded_hits.load(Ordering::Relaxed),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
            cost_usd: self.cost_nano_usd.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl CounterSnapshot {
    /// Prometheus text lines (no `# HELP`/`# TYPE`; see [`CounterSnapshot::help`]) for the model
    /// configured as `provider`, labelled `provider`, `api` and `model`.
    pub fn prometheus_lines(&self, provider: &str, api: &str, model: &str) -> String {
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let labels = format!(
            "provider=\"{}\",api=\"{}\",model=\"{}\"",
            esc(provider),
            esc(api),
            esc(model)
        );
        let mut out = String::new();
        for (name, value) in [
            ("aiops_llm_calls_total", self.calls.to_string()),
            ("aiops_llm_failures_total", self.failures.to_string()),
            (
                "aiops_llm_recorded_hits_total",
                self.recorded_hits.to_string(),
            ),
            (
                "aiops_llm_input_tokens_total",
                self.input_tokens.to_string(),
            ),
            (
                "aiops_llm_output_tokens_total",
                self.output_tokens.to_string(),
            ),
            ("aiops_llm_cost_usd_total", self.cost_usd.to_string()),
        ] {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
        out
    }

    /// `(metric name, help)` of every line [`CounterSnapshot::prometheus_lines`] writes; all
    /// are counters.
    pub fn help() -> &'static [(&'static str, &'static str)] {
        &[
            ("aiops_llm_calls_total", "LLM calls answered by the model"),
            ("aiops_llm_failures_total", "LLM calls that failed"),
            (
                "aiops_llm_recorded_hits_total",
                "LLM answers served from the log instead of calling out",
            ),
            (
                "aiops_llm_input_tokens_total",
                "Prompt tokens of answered calls",
            ),
            (
                "aiops_llm_output_tokens_total",
                "Answer tokens of answered calls",
            ),
            (
                "aiops_llm_cost_usd_total",
                "Cost of answered calls in USD from the configured prices",
            ),
        ]
    }
}
