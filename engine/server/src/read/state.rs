//! The engine's live state as read-side tables: `alert_states`, `silences`, `incidents`,
//! `workflow_executions`, `deploys`. Snapshots are built from the in-memory engines on each scan; no
//! secret, template context or token is part of any row.

use crate::alerting::processor::AlertingHandle;
use crate::workflows::processor::WorkflowsHandle;
use aiops_read::state::{StateError, StateSource, StateTableDef, batch_from_json};
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::arrow_schema::{DataType, Field, Schema, SchemaRef};
use aiops_schemas::schema::time_type;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// The engines the tables read.
#[derive(Debug, Clone)]
pub struct EngineState {
    /// Alerting, when it runs in this process.
    pub alerting: Option<Arc<AlertingHandle>>,
    /// Workflows, when they run in this process.
    pub workflows: Option<Arc<WorkflowsHandle>>,
    /// Deploys, when enabled.
    pub deploys: Option<Arc<aiops_runtime::deploys::processor::DeployHandle>>,
}

fn schema(cols: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    ))
}

fn defs() -> &'static Vec<StateTableDef> {
    static DEFS: OnceLock<Vec<StateTableDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let s = DataType::Utf8;
        let t = time_type();
        let i = DataType::Int64;
        vec![
            StateTableDef {
                name: "alert_states",
                schema: schema(&[
                    ("fingerprint", s.clone(), false),
                    ("alertname", s.clone(), true),
                    ("status", s.clone(), false),
                    ("state", s.clone(), false),
                    ("severity", s.clone(), true),
                    ("service", s.clone(), true),
                    ("source", s.clone(), true),
                    ("starts_at", t.clone(), false),
                    ("updated_at", t.clone(), false),
                    ("count", i.clone(), false),
                    ("flapping", DataType::Boolean, false),
                    ("summary", s.clone(), true),
                    ("labels", s.clone(), false),
                ]),
                doc: "Every alert the alerting engine knows: status firing or resolved, state active or suppressed (silenced, inhibited, flapping).",
            },
            StateTableDef {
                name: "silences",
                schema: schema(&[
                    ("id", s.clone(), false),
                    ("state", s.clone(), false),
                    ("matchers", s.clone(), false),
                    ("starts_at", s.clone(), false),
                    ("ends_at", s.clone(), false),
                    ("created_by", s.clone(), true),
                    ("comment", s.clone(), true),
                ]),
                doc: "Silences (active, pending and expired).",
            },
            StateTableDef {
                name: "incidents",
                schema: schema(&[
                    ("id", s.clone(), false),
                    ("title", s.clone(), false),
                    ("status", s.clone(), false),
                    ("severity", s.clone(), true),
                    ("opened_at", t.clone(), false),
                    ("acknowledged_at", t.clone(), true),
                    ("resolved_at", t.clone(), true),
                    ("alerts", i.clone(), false),
                    ("firing", i.clone(), false),
                ]),
                doc: "Incidents, open and resolved.",
            },
            StateTableDef {
                name: "workflow_executions",
                schema: schema(&[
                    ("id", s.clone(), false),
                    ("workflow", s.clone(), false),
                    ("status", s.clone(), false),
                    ("cause", s.clone(), false),
                    ("incident", s.clone(), true),
                    ("reason", s.clone(), true),
                    ("started_at", t.clone(), false),
                    ("finished_at", t, true),
                ]),
                doc: "Workflow executions: running ones and the recent finished ones.",
            },
            StateTableDef {
                name: "deploys",
                schema: schema(&[
                    ("id", s.clone(), false),
                    ("service", s.clone(), false),
                    ("environment", s.clone(), false),
                    ("version", s.clone(), false),
                    ("previous_version", s.clone(), true),
                    ("source", s.clone(), false),
                    ("strategy", s.clone(), false),
                    ("requested_by", s.clone(), true),
                    ("status", s.clone(), false),
                    ("risk_score", DataType::Float64, false),
                    ("risk_reasons", s.clone(), true),
                    ("verdict", s.clone(), true),
                    ("verification_score", DataType::Float64, true),
                    ("reasons", s.clone(), true),
                    ("rollback_status", s.clone(), true),
                    ("rollback_of", s.clone(), true),
                    ("started_at", time_type(), false),
                    ("finished_at", time_type(), true),
                ]),
                doc: "Deploys: what was deployed where, its risk, verification verdict and rollback (docs/deploys.md).",
            },
        ]
    })
}

impl EngineState {
    fn alert_rows(&self) -> Vec<Value> {
        let Some(h) = &self.alerting else {
            return Vec::new();
        };
        let engine = h.engine.read();
        engine
            .alerts()
            .iter()
            .map(|v| {
                let e = v.entry;
                let a = &e.alert;
                json!({
                    "fingerprint": a.fingerprint,
                    "alertname": a.labels.get("alertname"),
                    "status": if e.status == aiops_alerting::model::Status::Firing { "firing" } else { "resolved" },
                    "state": v.state(),
                    "severity": a.severity,
                    "service": a.service,
                    "source": a.source,
                    "starts_at": a.starts_at_ms,
                    "updated_at": e.last_seen_ms,
                    "count": e.count,
                    "flapping": e.flapping,
                    "summary": a.annotations.get("summary"),
                    "labels": serde_json::to_string(&a.labels).unwrap_or_default(),
                })
            })
            .collect()
    }

    fn silence_rows(&self) -> Vec<Value> {
        let Some(h) = &self.alerting else {
            return Vec::new();
        };
        let engine = h.engine.read();
        let now = engine.clock_ms().max(crate::clock::now_ms());
        engine
            .silences()
            .iter()
            .map(|s| {
                let g = serde_json::to_value(s.to_gettable(now)).unwrap_or(Value::Null);
                json!({
                    "id": g["id"],
                    "state": g["status"]["state"],
                    "matchers": g["matchers"].to_string(),
                    "starts_at": g["startsAt"],
                    "ends_at": g["endsAt"],
                    "created_by": g["createdBy"],
                    "comment": g["comment"],
                })
            })
            .collect()
    }

    fn incident_rows(&self) -> Vec<Value> {
        let Some(h) = &self.alerting else {
            return Vec::new();
        };
        let engine = h.engine.read();
        let inc = engine.incidents();
        inc.open()
            .chain(inc.closed())
            .map(|i| {
                json!({
                    "id": i.id,
                    "title": i.title,
                    "status": i.status,
                    "severity": i.severity,
                    "opened_at": i.opened_at_ms,
                    "acknowledged_at": i.acknowledged_at_ms,
                    "resolved_at": i.resolved_at_ms,
                    "alerts": i.alerts.len(),
                    "firing": i.alerts.values().filter(|a| a.status == "firing").count(),
                })
            })
            .collect()
    }

    fn deploy_rows(&self) -> Vec<Value> {
        let Some(h) = &self.deploys else {
            return Vec::new();
        };
        let book = h.book.read();
        book.deploys()
            .map(|d| {
                let join = |v: Vec<&str>| (!v.is_empty()).then(|| v.join("; "));
                json!({
                    "id": d.id,
                    "service": d.service,
                    "environment": d.environment,
                    "version": d.version,
                    "previous_version": d.previous_version,
                    "source": d.source,
                    "strategy": serde_json::to_value(d.strategy).unwrap_or(Value::Null),
                    "requested_by": d.requested_by,
                    "status": d.status.as_str(),
                    "risk_score": d.risk.score,
                    "risk_reasons": join(d.risk.reasons.iter().map(|r| r.detail.as_str()).collect()),
                    "verdict": d.decision.as_ref().map(|x| x.verdict.as_str()),
                    "verification_score": d.verification.as_ref().and_then(|v| v.judgement.as_ref()).map(|j| j.score),
                    "reasons": d.decision.as_ref().and_then(|x| join(x.reasons.iter().map(String::as_str).collect())),
                    "rollback_status": d.rollback.as_ref().map(|r| r.status.clone()),
                    "rollback_of": d.rollback_of,
                    "started_at": d.started_at_ms,
                    "finished_at": d.finished_at_ms,
                })
            })
            .collect()
    }

    fn execution_rows(&self) -> Vec<Value> {
        let Some(w) = &self.workflows else {
            return Vec::new();
        };
        let e = w.engine.read();
        let mut rows: Vec<Value> = e
            .active()
            .map(|x| {
                json!({
                    "id": x.id, "workflow": x.workflow,
                    "status": serde_json::to_value(x.status).unwrap_or(Value::Null).as_str().map(str::to_string).unwrap_or_else(|| format!("{:?}", x.status).to_lowercase()),
                    "cause": x.cause, "incident": x.incident, "started_at": x.started_ms,
                })
            })
            .collect();
        rows.extend(e.recent().map(|x| {
            json!({
                "id": x.id, "workflow": x.workflow, "status": x.status, "cause": x.cause,
                "incident": x.incident, "reason": x.reason, "started_at": x.started_ms,
                "finished_at": x.finished_ms,
            })
        }));
        rows
    }
}

#[async_trait]
impl StateSource for EngineState {
    fn tables(&self) -> Vec<StateTableDef> {
        defs().clone()
    }

    async fn rows(&self, table: &str) -> Result<Vec<RecordBatch>, StateError> {
        let Some(def) = defs().iter().find(|d| d.name == table) else {
            return Err(StateError::UnknownTable(table.to_string()));
        };
        let rows = match table {
            "alert_states" => self.alert_rows(),
            "silences" => self.silence_rows(),
            "incidents" => self.incident_rows(),
            "workflow_executions" => self.execution_rows(),
            "deploys" => self.deploy_rows(),
            _ => Vec::new(),
        };
        Ok(vec![batch_from_json(&def.schema, &rows)?])
    }
}
