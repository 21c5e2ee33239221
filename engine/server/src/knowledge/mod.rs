//! The knowledge base at the edge: commands appended to the log and waited for, folder
//! imports, and what alerts and incidents are linked to (runbooks, similar past incidents).
//!
//! The entries and their index are the runtime's [`KnowledgeHandle`] (a processor over the
//! log); this module only writes commands and reads the handle, so every node and every
//! rebuild answers the same.
//!
//! - [`watch`]: the configured folder, imported at start and re-read while the engine runs.
//! - [`assistant`]: answers through a configured LLM, every call recorded in the log first.

pub mod assistant;
pub mod watch;

use crate::submit::Refused;
use aiops_alerting::AlertEngine;
use aiops_alerting::incident::{Incident, IncidentStatus};
use aiops_knowledge::{AlertContext, Command, IncidentDoc, KnowledgeBase};
use aiops_log::EventLog;
use aiops_runtime::CommandError;
use aiops_runtime::knowledge::processor::KnowledgeHandle;
use aiops_runtime::knowledge::{RefusalKind, command_message, refusal_kind};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a command may take to apply before the caller is told it is in the log and will.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands per log append during an import (one append is one write to the log).
const IMPORT_BATCH: usize = 64;

pub use crate::submit::SubmitError;

/// The kind of a knowledge processor's refusal and its message.
fn refused(reason: &str) -> (Refused, String) {
    let (kind, msg) = refusal_kind(reason);
    let kind = match kind {
        RefusalKind::Conflict => Refused::Conflict,
        RefusalKind::NotFound => Refused::NotFound,
        RefusalKind::Invalid => Refused::Invalid,
        RefusalKind::Failed => Refused::Failed,
    };
    (kind, msg.to_string())
}

/// The knowledge base of this process: where commands go and the state they build.
#[derive(Clone)]
pub struct Knowledge {
    /// The log commands are appended to.
    pub log: Arc<dyn EventLog>,
    /// The entries (the processor's state).
    pub handle: Arc<KnowledgeHandle>,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    /// Entries created or changed.
    pub imported: u64,
    /// Files whose entry was already the same.
    pub unchanged: u64,
    /// Entries of this source deleted because their file is gone.
    pub deleted: u64,
    /// Files that are not entries (empty index pages).
    pub skipped: u64,
    /// Files that are not valid entries, with why.
    pub failed: Vec<ImportFailure>,
}

/// A file an import could not take.
#[derive(Debug, Clone, Serialize)]
pub struct ImportFailure {
    /// The file, relative to the imported folder.
    pub path: String,
    /// Why.
    pub error: String,
}

impl Knowledge {
    /// Appends `cmd` and waits until the knowledge processor applied it; returns the log
    /// sequence of the command.
    ///
    /// # Errors
    /// [`SubmitError`].
    pub async fn submit(&self, cmd: &Command) -> Result<u64, SubmitError> {
        let msg = command_message(cmd, crate::clock::now_ms())
            .map_err(|e| SubmitError::Failed(e.to_string()))?;
        aiops_runtime::progress::command(
            &*self.log,
            &self.handle.progress,
            "knowledge base",
            msg,
            APPLY_TIMEOUT,
        )
        .await
        .map_err(|e| SubmitError::from_command(e, refused))
    }

    /// Imports Markdown `files` (path relative to the folder, text): entries whose content
    /// changed are written, equal ones skipped; with `prune`, entries of `source_prefix`
    /// whose file is not in `files` are deleted (a watched folder). Each entry's `source` is
    /// `<source_prefix><path>`.
    ///
    /// Commands go to the log in batches; a crash mid-import leaves the entries of the
    /// batches already appended, and importing again completes it (equal entries are no-ops).
    ///
    /// # Errors
    /// [`SubmitError::Unavailable`] / [`SubmitError::Pending`] when the log or the processor
    /// does not keep up; invalid files are reported in the [`ImportReport`], not errors.
    pub async fn import(
        &self,
        files: &[(String, String)],
        source_prefix: &str,
        prune: bool,
        by: &str,
    ) -> Result<ImportReport, SubmitError> {
        let (inputs, errors) = aiops_knowledge::entries_from_dir_listing(files);
        let skipped = files.len().saturating_sub(inputs.len() + errors.len()) as u64;
        let mut report = ImportReport {
            skipped,
            failed: errors
                .into_iter()
                .map(|(path, e)| ImportFailure {
                    path,
                    error: e.to_string(),
                })
                .collect(),
            ..ImportReport::default()
        };
        let now = crate::clock::now_ms();
        let mut cmds = Vec::new();
        {
            let kb = self.handle.kb.read();
            let mut seen = std::collections::BTreeSet::new();
            for mut input in inputs {
                let path = input.source.clone().unwrap_or_else(|| input.id.clone());
                input.source = Some(format!("{source_prefix}{path}"));
                if let Err(e) = aiops_knowledge::validate(&input) {
                    report.failed.push(ImportFailure {
                        path,
                        error: e.to_string(),
                    });
                    continue;
                }
                seen.insert(input.id.clone());
                if kb.entry(&input.id).is_some_and(|e| e.same_content(&input)) {
                    report.unchanged += 1;
                    continue;
                }
                cmds.push(Command::Put {
                    entry: input,
                    base_revision: None,
                    by: by.to_string(),
                    at_ms: now,
                });
            }
            if prune {
                for e in kb.entries() {
                    let ours = e
                        .source
                        .as_deref()
                        .is_some_and(|s| s.starts_with(source_prefix));
                    if ours && !seen.contains(&e.id) {
                        cmds.push(Command::Delete {
                            id: e.id.clone(),
                            base_revision: Some(e.revision),
                            by: by.to_string(),
                            at_ms: now,
                        });
                    }
                }
            }
        }
        for batch in cmds.chunks(IMPORT_BATCH) {
            let mut msgs = Vec::with_capacity(batch.len());
            for c in batch {
                msgs.push(command_message(c, now).map_err(|e| SubmitError::Failed(e.to_string()))?);
            }
            let appended = self
                .log
                .append(msgs)
                .await
                .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
            for (a, c) in appended.iter().zip(batch) {
                match self
                    .handle
                    .progress
                    .wait_for(a.seq, APPLY_TIMEOUT, "knowledge base")
                    .await
                {
                    Ok(()) => match c {
                        Command::Delete { .. } => report.deleted += 1,
                        _ => report.imported += 1,
                    },
                    Err(CommandError::Refused(r)) => report.failed.push(ImportFailure {
                        path: command_id(c).to_string(),
                        error: refusal_kind(&r).1.to_string(),
                    }),
                    Err(e) => return Err(SubmitError::from_command(e, refused)),
                }
            }
        }
        Ok(report)
    }
}

impl Knowledge {
    /// The processor's counts in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let s = *self.handle.summary.lock();
        format!(
            "# HELP aiops_knowledge_entries Knowledge entries (drafts included).\n# TYPE aiops_knowledge_entries gauge\naiops_knowledge_entries {}\n\
             # HELP aiops_knowledge_commands_total Knowledge commands read, by outcome.\n# TYPE aiops_knowledge_commands_total counter\n\
             aiops_knowledge_commands_total{{outcome=\"applied\"}} {}\naiops_knowledge_commands_total{{outcome=\"refused\"}} {}\n\
             aiops_knowledge_commands_total{{outcome=\"undecodable\"}} {}\n\
             # HELP aiops_knowledge_llm_calls_recorded LLM calls recorded in the log.\n# TYPE aiops_knowledge_llm_calls_recorded gauge\naiops_knowledge_llm_calls_recorded {}\n",
            s.entries, s.applied, s.refused, s.undecodable, s.llm_calls
        )
    }
}

/// What log analysis links to its templates: runbooks by service and template (then search
/// over the template's text), and similar resolved incidents of the service.
pub struct AnalysisLinks {
    /// The knowledge base.
    pub kb: Knowledge,
    /// Past incidents.
    pub alerting: Option<Arc<aiops_runtime::alerting::processor::AlertingHandle>>,
}

impl crate::logs_analysis::AnalysisKnowledge for AnalysisLinks {
    fn runbooks(&self, service: &str, template_id: &str, template: &str) -> Value {
        let ctx = AlertContext {
            alertname: String::new(),
            labels: [("service".to_string(), service.to_string())].into(),
            annotations: Default::default(),
            template_ids: vec![template_id.to_string()],
            top_templates: vec![template.to_string()],
        };
        match self.kb.handle.kb.read().link(&ctx, 3) {
            Ok(l) => serde_json::to_value(l).unwrap_or(Value::Array(Vec::new())),
            Err(e) => {
                tracing::warn!(error = %e, "knowledge links for log analysis failed");
                Value::Array(Vec::new())
            }
        }
    }

    fn similar(&self, service: &str, template_ids: &[String]) -> Value {
        let Some(h) = &self.alerting else {
            return Value::Array(Vec::new());
        };
        let engine = h.engine.read();
        let target = IncidentDoc {
            id: String::new(),
            services: vec![service.to_string()],
            template_ids: template_ids.to_vec(),
            ..IncidentDoc::default()
        };
        let past = past_incident_docs(&engine, "");
        serde_json::to_value(aiops_knowledge::similar_incidents(&target, &past, 5))
            .unwrap_or(Value::Array(Vec::new()))
    }
}

fn command_id(c: &Command) -> &str {
    match c {
        Command::Put { entry, .. } => &entry.id,
        Command::Delete { id, .. } | Command::Feedback { id, .. } | Command::Verify { id, .. } => {
            id
        }
    }
}

/// Mined log templates of `service` that are most frequent now, for the search fallback of
/// linking (at most `limit`).
fn top_templates(
    templates: Option<&aiops_runtime::templates::processor::TemplatesHandle>,
    service: &str,
    limit: usize,
) -> Vec<String> {
    let Some(t) = templates else {
        return Vec::new();
    };
    let miner = t.miner.read();
    let Some(drain) = miner.drain(service) else {
        return Vec::new();
    };
    let mut list: Vec<(u64, String)> = drain
        .templates()
        .map(|t| (t.count, t.template.to_string()))
        .collect();
    list.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    list.into_iter().take(limit).map(|(_, t)| t).collect()
}

/// The linking context of one alert.
pub fn alert_context(
    alert: &aiops_alerting::model::Alert,
    templates: Option<&aiops_runtime::templates::processor::TemplatesHandle>,
) -> AlertContext {
    AlertContext {
        alertname: alert.name.clone(),
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        template_ids: alert
            .labels
            .get("template_id")
            .map(|t| vec![t.clone()])
            .unwrap_or_default(),
        top_templates: top_templates(templates, &alert.service, 3),
    }
}

/// An incident as the similarity search sees it: its alerts' names, services and label
/// values (of the alerts the engine still holds), template ids from anomaly evidence, its
/// text, and — for resolved ones — the top root cause and the resolving note.
pub fn incident_doc(engine: &AlertEngine, inc: &Incident) -> IncidentDoc {
    let mut alertnames = std::collections::BTreeSet::new();
    let mut services = std::collections::BTreeSet::new();
    let mut label_values = std::collections::BTreeSet::new();
    let mut template_ids = std::collections::BTreeSet::new();
    for (fp, a) in &inc.alerts {
        alertnames.insert(a.name.clone());
        if !a.service.is_empty() {
            services.insert(a.service.clone());
        }
        if let Some(alert) = engine.alert(fp) {
            for (k, v) in &alert.labels {
                if k == "template_id" {
                    template_ids.insert(v.clone());
                } else if !matches!(k.as_str(), "alertname" | "severity") {
                    label_values.insert(format!("{k}={v}"));
                }
            }
        }
    }
    let mut text = inc.title.clone();
    for t in &inc.timeline {
        if matches!(
            t.kind.as_str(),
            "workflow" | "autoheal" | "note" | "anomaly"
        ) {
            text.push('\n');
            text.push_str(&t.text);
        }
    }
    let resolved = inc.status == IncidentStatus::Resolved;
    IncidentDoc {
        id: inc.id.clone(),
        title: inc.title.clone(),
        resolved,
        resolved_at_ms: inc.resolved_at_ms,
        alertnames: alertnames.into_iter().collect(),
        services: services.into_iter().collect(),
        label_values: label_values.into_iter().collect(),
        template_ids: template_ids.into_iter().collect(),
        text,
        root_cause: inc.root_causes.first().map(|r| {
            if r.reasons.is_empty() {
                r.service.clone()
            } else {
                format!("{}: {}", r.service, r.reasons.join("; "))
            }
        }),
        resolution: resolved
            .then(|| {
                // What acted last (a workflow, auto-heal or a person's note), else who resolved.
                inc.timeline
                    .iter()
                    .rev()
                    .find(|t| matches!(t.kind.as_str(), "workflow" | "autoheal" | "note"))
                    .or_else(|| inc.timeline.iter().rev().find(|t| t.kind == "resolved"))
                    .map(|t| t.text.clone())
            })
            .flatten(),
    }
}

/// Every resolved incident but `exclude`, as the similarity search sees it.
fn past_incident_docs(engine: &AlertEngine, exclude: &str) -> Vec<IncidentDoc> {
    engine
        .incidents()
        .closed()
        .filter(|i| i.id != exclude)
        .map(|i| incident_doc(engine, i))
        .collect()
}

/// Runbooks linked to an incident (through each of its alerts, deduplicated, deterministic
/// links first) and its similar past incidents (resolved ones, at most 5).
///
/// # Errors
/// The index failed (a bug in aiops).
pub fn incident_knowledge(
    kb: &KnowledgeBase,
    engine: &AlertEngine,
    inc: &Incident,
    templates: Option<&aiops_runtime::templates::processor::TemplatesHandle>,
) -> Result<Value, aiops_knowledge::KnowledgeError> {
    let mut runbooks: Vec<aiops_knowledge::LinkedEntry> = Vec::new();
    for fp in inc.alerts.keys() {
        let Some(alert) = engine.alert(fp) else {
            continue;
        };
        for l in kb.link(&alert_context(alert, templates), 5)? {
            if !runbooks.iter().any(|r| r.entry_id == l.entry_id) {
                runbooks.push(l);
            }
        }
    }
    // Deterministic links before search results, each group in the order found.
    runbooks.sort_by_key(|l| l.how == "search");
    runbooks.truncate(10);
    let target = incident_doc(engine, inc);
    let past = past_incident_docs(engine, &inc.id);
    let similar = aiops_knowledge::similar_incidents(&target, &past, 5);
    Ok(json!({ "runbooks": runbooks, "similar_incidents": similar }))
}
