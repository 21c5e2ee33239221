//! The alerting engine as a [`Processor`]: alert batches, alerting commands, anomaly events,
//! workflow steps of incidents and clock ticks in log order in; decisions appended to
//! `aiops.alerting`, one message per input message that caused any.

use super::codec::{decisions_message, parse_control};
use crate::processor::{Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::{CommandError, CommandProgress};
use crate::wire::{self, CLOCK_SUBJECT, CONTROL_SUBJECT, DECISIONS_SUBJECT, EFFECTS_SUBJECT};
use aiops_alerting::incident::AnomalyEvidence;
use aiops_alerting::model::{alerts_from_batch, map_row};
use aiops_alerting::{AlertEngine, Control, Decision};
use aiops_log::Record;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Counts of one run (field names are read by tests, the bench and `/api/…/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Alert observations fed to the engine.
    pub alerts: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Decision messages already in the log (recognized by id, not appended again).
    pub already_in_log: u64,
    /// Input messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
    /// Commands the engine refused (unknown silence or incident, …).
    pub refused_commands: u64,
    /// Clock ticks appended.
    pub ticks: u64,
}

/// What the HTTP API shares with the processor: the engine, how far it has read, and what became
/// of recent commands.
pub struct AlertingHandle {
    /// The engine (the processor writes, the API reads).
    pub engine: RwLock<AlertEngine>,
    /// How far the engine has read, and what became of recent commands.
    pub progress: Arc<CommandProgress>,
    /// Counts so far.
    pub summary: Mutex<AlertRunSummary>,
    /// The configuration text (served by `/api/v2/status`).
    pub config_text: String,
}

impl std::fmt::Debug for AlertingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

impl AlertingHandle {
    /// A handle around `engine`.
    pub fn new(engine: AlertEngine, config_text: String) -> Arc<AlertingHandle> {
        Arc::new(AlertingHandle {
            engine: RwLock::new(engine),
            progress: Arc::new(CommandProgress::default()),
            summary: Mutex::new(AlertRunSummary::default()),
            config_text,
        })
    }

    /// Waits until the engine has consumed sequence `seq` (or `timeout` passes) and returns what
    /// became of it if it was a command.
    ///
    /// # Errors
    /// [`CommandError::Refused`] with the engine's reason, or [`CommandError::Timeout`].
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), CommandError> {
        self.progress
            .wait_for(seq, timeout, "alerting engine")
            .await
    }
}

/// The hash that ties a checkpoint to its configuration.
pub fn config_hash(text: &str) -> u64 {
    wire::hash(text.as_bytes())
}

/// The alerting processor.
pub struct AlertProcessor {
    handle: Arc<AlertingHandle>,
    config_hash: u64,
    /// Processor-specific counts; the driver's are merged in [`Processor::stepped`].
    summary: AlertRunSummary,
    decisions: Vec<Decision>,
}

impl AlertProcessor {
    /// A processor feeding the engine of `handle`.
    pub fn new(handle: Arc<AlertingHandle>) -> AlertProcessor {
        AlertProcessor {
            config_hash: config_hash(&handle.config_text),
            handle,
            summary: AlertRunSummary::default(),
            decisions: Vec::new(),
        }
    }

    /// Counts so far.
    pub fn summary(&self) -> AlertRunSummary {
        self.summary
    }

    /// The engine's decisions for one record.
    fn decide(&mut self, r: &Record) -> Vec<Decision> {
        let kind = Kind::from_subject(&r.subject);
        if kind == Some(Kind::Alerts) {
            let (env, batch) = match aiops_schemas::decode(&r.payload) {
                Ok(x) => x,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            let alerts = match alerts_from_batch(&batch) {
                Ok(a) => a,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            self.summary.alerts += alerts.len() as u64;
            // Pushed alerts are timed by when aiops received them (a resent alert keeps its
            // startsAt); alerts of SQL rules (no ingest stamp) by their event time.
            let at = if env.ingest_ts_ms > 0 {
                env.ingest_ts_ms
            } else {
                env.time_max_ms
            };
            return self.handle.engine.write().observe(at, alerts);
        }
        if kind == Some(Kind::Events) {
            let batch = match aiops_schemas::decode(&r.payload) {
                Ok((_, b)) => b,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            let evidence = anomaly_evidence(&batch);
            let mut out = Vec::new();
            let mut engine = self.handle.engine.write();
            for (service, ev) in evidence {
                let c = Control::Anomaly {
                    service,
                    evidence: Some(Box::new(ev)),
                };
                if let Ok(d) = engine.control(r.time_max_ms, c) {
                    out.extend(d);
                }
            }
            return out;
        }
        if r.subject == CLOCK_SUBJECT {
            return self.handle.engine.write().advance(r.time_max_ms);
        }
        if r.subject == EFFECTS_SUBJECT {
            // Workflow and auto-heal steps of an incident go into its timeline (no decision).
            let mut engine = self.handle.engine.write();
            for line in crate::workflows::codec::parse_effects(&r.payload) {
                if let crate::workflows::codec::EffectsLine::Event(ev) = line
                    && let Some(inc) = ev.incident()
                {
                    let kind = if ev.id().starts_with("autoheal/") {
                        "autoheal"
                    } else {
                        "workflow"
                    };
                    let _ = engine.control(
                        ev.at_ms(),
                        Control::Note {
                            incident: inc.to_string(),
                            kind: kind.into(),
                            text: ev.text(),
                        },
                    );
                }
            }
        }
        Vec::new()
    }

    fn command(&mut self, r: &Record, out: &mut Outputs) -> Vec<Decision> {
        match parse_control(&r.payload) {
            None => Vec::new(),
            Some(Err(e)) => {
                self.summary.refused_commands += 1;
                out.refused(format!("bad command: {e}"));
                tracing::warn!(seq = r.seq, error = %e, "alerting ignores a malformed command");
                Vec::new()
            }
            Some(Ok(ev)) => match self.handle.engine.write().control(ev.at_ms, ev.command) {
                Ok(d) => {
                    out.applied();
                    d
                }
                Err(e) => {
                    self.summary.refused_commands += 1;
                    out.refused(e.to_string());
                    tracing::info!(seq = r.seq, reason = %e, "alerting command refused");
                    Vec::new()
                }
            },
        }
    }

    fn undecodable(&mut self, r: &Record, e: &str) -> Vec<Decision> {
        self.summary.undecodable += 1;
        tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "alerting skips an undecodable message");
        Vec::new()
    }
}

impl Processor for AlertProcessor {
    const NAME: &'static str = "alerting";

    fn config_hash(&self) -> u64 {
        self.config_hash
    }

    fn is_output(&self, subject: &str, _msg_id: &str) -> bool {
        subject == DECISIONS_SUBJECT
    }

    /// One decisions message per input (`x.<input seq>.<hash>`): keyed by the input, so the
    /// decisions of an input logged by an earlier release (incident decisions carried the whole
    /// incident before) are recognized and history is not written twice in two encodings.
    fn output_key<'a>(&self, msg_id: &'a str) -> &'a str {
        wire::input_key(wire::ids::DECISIONS, msg_id)
    }

    fn on_record(&mut self, r: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        self.decisions = if r.subject == CONTROL_SUBJECT {
            self.command(r, out)
        } else {
            self.decide(r)
        };
        if self.decisions.is_empty() {
            return Ok(());
        }
        self.summary.decisions += self.decisions.len() as u64;
        let msg = decisions_message(r.seq, &self.decisions)
            .map_err(|e| ProcessorError::new(Self::NAME, e))?;
        out.push(msg);
        Ok(())
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.handle.engine.read().next_deadline_ms()
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        self.handle
            .engine
            .read()
            .snapshot()
            .map_err(|e| ProcessorError::new(Self::NAME, e))
    }

    /// Serialized in line, written beside the loop: cloning the state (10,000 alerts: 70 ms at
    /// the workspace's opt-level) costs more than serializing it (42 ms, 12 MB), so only the
    /// store write leaves the step loop.
    fn snapshot_job(&self) -> Option<crate::processor::SnapshotJob> {
        let bytes = self.snapshot();
        Some(Box::new(move || bytes))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        self.handle
            .engine
            .write()
            .restore(state)
            .map_err(|e| ProcessorError::new(Self::NAME, e))
    }

    fn stepped(&mut self, info: &StepInfo) {
        self.summary.messages_read = info.counts.messages_read;
        self.summary.already_in_log = info.counts.already_in_log;
        self.summary.ticks = info.counts.ticks;
        *self.handle.summary.lock() = self.summary;
    }
}

/// Anomaly events (`type = 'anomaly'`) with a `service` label in an events batch, each as the
/// service and the evidence the event gives (its labels `pipeline`, `series`, `detector`; its
/// attributes `value`, `expected`, `lower`, `upper`, `direction`, `signal`, `context`,
/// `explanation`, `confidence`, `watched_ms`). Events of older releases or other writers lack
/// some of them: what is missing stays empty, and the message stands in for the explanation.
fn anomaly_evidence(b: &RecordBatch) -> Vec<(String, AnomalyEvidence)> {
    let (Some(t), Some(labels)) = (
        b.column_by_name("type")
            .and_then(|c| c.as_string_opt::<i32>()),
        b.column_by_name("labels").and_then(|c| c.as_map_opt()),
    ) else {
        return Vec::new();
    };
    let attributes = b.column_by_name("attributes").and_then(|c| c.as_map_opt());
    let message = b
        .column_by_name("message")
        .and_then(|c| c.as_string_opt::<i32>());
    let time = b
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>());
    let mut out = Vec::new();
    for i in 0..b.num_rows() {
        if !t.is_valid(i) || t.value(i) != "anomaly" || labels.is_null(i) {
            continue;
        }
        let l = map_row(labels, i);
        let Some(service) = l.get("service") else {
            continue;
        };
        let a = attributes
            .filter(|a| !a.is_null(i))
            .map(|a| map_row(a, i))
            .unwrap_or_default();
        let text = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
        let number = |k: &str| a.get(k).and_then(|v| v.parse::<f64>().ok());
        let mut explanation = text(&a, "explanation");
        if explanation.is_empty()
            && let Some(m) = message.filter(|m| m.is_valid(i))
        {
            explanation = m.value(i).to_string();
        }
        let ev = AnomalyEvidence {
            at_ms: time.filter(|c| c.is_valid(i)).map_or(0, |c| c.value(i)),
            pipeline: text(&l, "pipeline"),
            series: text(&l, "series"),
            detector: text(&l, "detector"),
            // The template miner says which of its signals fired in its `kind` label.
            signal: a
                .get("signal")
                .or_else(|| l.get("kind"))
                .cloned()
                .unwrap_or_default(),
            value: number("value"),
            expected: number("expected"),
            lower: number("lower"),
            upper: number("upper"),
            direction: text(&a, "direction"),
            context: text(&a, "context"),
            explanation,
            confidence: number("confidence"),
            watched_ms: a
                .get("watched_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        out.push((service.clone(), ev.bounded()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::builders::EventBatchBuilder;

    #[test]
    fn anomaly_events_become_evidence_whatever_release_wrote_them() {
        let mut b = EventBatchBuilder::new();
        let hostile = "db\"}<script>alert(1)</script>";
        b.push(
            60_000,
            "anomaly",
            "p: load = 812 …",
            [
                ("service", hostile),
                ("pipeline", "p"),
                ("series", "load"),
                ("detector", "ensemble"),
            ],
            [
                ("value", "812"),
                ("expected", "240"),
                ("lower", "180"),
                ("upper", "300"),
                ("direction", "up"),
                ("signal", "seasonal"),
                ("context", "unusual for this phase"),
                (
                    "explanation",
                    "value 812 is above the expected 240 [180, 300]",
                ),
                ("confidence", "0.41"),
                ("watched_ms", "12000000"),
            ],
        );
        // An event of an older release: numbers only, the message says the rest.
        b.push(
            120_000,
            "anomaly",
            "p: load = 9 on {service=web} is above the expected 3",
            [("service", "web"), ("series", "load")],
            [("value", "9"), ("expected", "NaN")],
        );
        // Not evidence: another type, or no service.
        b.push(120_000, "deploy", "x", [("service", "web")], [("a", "b")]);
        b.push(120_000, "anomaly", "x", [("host", "h")], [("value", "1")]);
        let batch = b.finish().unwrap_or_else(|e| panic!("{e}"));
        let ev = anomaly_evidence(&batch);
        assert_eq!(ev.len(), 2, "{ev:?}");
        let (svc, e) = &ev[0];
        assert_eq!(svc, hostile, "kept as data");
        assert_eq!(e.at_ms, 60_000);
        assert_eq!(
            (e.value, e.expected, e.lower, e.upper, e.confidence),
            (
                Some(812.0),
                Some(240.0),
                Some(180.0),
                Some(300.0),
                Some(0.41)
            )
        );
        assert_eq!(
            (e.signal.as_str(), e.direction.as_str(), e.watched_ms),
            ("seasonal", "up", 12_000_000)
        );
        assert_eq!(
            (e.pipeline.as_str(), e.series.as_str(), e.detector.as_str()),
            ("p", "load", "ensemble")
        );
        let (svc, old) = &ev[1];
        assert_eq!(svc, "web");
        assert_eq!((old.value, old.expected), (Some(9.0), None));
        assert_eq!(
            old.explanation,
            "p: load = 9 on {service=web} is above the expected 3"
        );
        assert!(old.signal.is_empty() && old.context.is_empty());
    }
}
