//! The OpenAPI 3.0 document of every route ([`ROUTES`]), with the role each needs, served at
//! `GET /api/openapi.json`. A test checks the list against the routes the code registers.

use super::AppState;
use crate::auth::{Need, required};
use axum::Router;
use axum::http::Method;
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Adds `GET /api/openapi.json`.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/openapi.json", get(openapi))
}

/// Every route of the API: method, path template, summary. The OpenAPI document is generated
/// from it, and a test checks it against the routes the code registers.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/api/health", "Liveness and log reachability."),
    (
        "get",
        "/metrics",
        "Self-metrics in the Prometheus text format.",
    ),
    ("get", "/api/openapi.json", "This document."),
    (
        "get",
        "/api/log/stats",
        "Counts, time range and bytes per kind.",
    ),
    (
        "get",
        "/api/pipelines",
        "The running pipelines with watermarks and lag.",
    ),
    (
        "get",
        "/api/logs/templates",
        "Mined log templates per service.",
    ),
    (
        "get",
        "/api/cluster",
        "Cluster mode: live nodes, work units, owners and this node's role.",
    ),
    (
        "post",
        "/api/v1/write",
        "Prometheus remote_write (snappy protobuf).",
    ),
    ("post", "/api/ingest/metrics", "Metrics as JSON."),
    (
        "post",
        "/v1/metrics",
        "OTLP/HTTP metrics (protobuf or OTLP/JSON, gzip): ExportMetricsServiceResponse, partial success for rejected points.",
    ),
    (
        "post",
        "/v1/logs",
        "OTLP/HTTP logs (protobuf or OTLP/JSON, gzip): ExportLogsServiceResponse, partial success for rejected records.",
    ),
    (
        "post",
        "/api/otlp/v1/metrics",
        "OTLP/HTTP metrics (same as /v1/metrics).",
    ),
    (
        "post",
        "/api/otlp/v1/logs",
        "OTLP/HTTP logs (same as /v1/logs).",
    ),
    ("post", "/api/ingest/logs", "Logs as JSON."),
    (
        "post",
        "/api/logs",
        "Submit logs as JSON (same as /api/ingest/logs).",
    ),
    (
        "post",
        "/api/ingest/events",
        "Events (deploys, changes) as JSON.",
    ),
    (
        "post",
        "/api/alerts/webhook/alertmanager",
        "Alertmanager webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/grafana",
        "Grafana alerting webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/datadog",
        "Datadog webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/cloudwatch",
        "CloudWatch (SNS) alarm receiver.",
    ),
    ("post", "/api/alerts", "Alerts as JSON."),
    (
        "post",
        "/api/v2/alerts",
        "Alertmanager API v2: post alerts.",
    ),
    ("get", "/api/v2/alerts", "Alertmanager API v2: list alerts."),
    (
        "get",
        "/api/v2/alerts/groups",
        "Alertmanager API v2: alert groups.",
    ),
    (
        "get",
        "/api/v2/silences",
        "Alertmanager API v2: list silences.",
    ),
    (
        "post",
        "/api/v2/silences",
        "Alertmanager API v2: create or update a silence.",
    ),
    (
        "get",
        "/api/v2/silence/{id}",
        "Alertmanager API v2: one silence.",
    ),
    (
        "delete",
        "/api/v2/silence/{id}",
        "Alertmanager API v2: expire a silence.",
    ),
    (
        "get",
        "/api/v2/status",
        "Alertmanager API v2: status and configuration.",
    ),
    (
        "get",
        "/api/v2/receivers",
        "Alertmanager API v2: receivers.",
    ),
    (
        "get",
        "/api/incidents",
        "Incidents (open, resolved or all).",
    ),
    (
        "get",
        "/api/incidents/{id}",
        "One incident with its timeline, the runbooks linked to its alerts and similar resolved incidents (root cause, what fixed them).",
    ),
    (
        "get",
        "/api/knowledge/search",
        "Knowledge search (BM25, title and headings weighted, English stemming, Chinese bigrams): q, tag, service, owner, limit, drafts; hits with section and highlighted snippet.",
    ),
    (
        "post",
        "/api/knowledge/ask",
        "Answer a question with sentences cited from entries (entry id and section), or no answer with the nearest entries; with a configured LLM also its answer, every call recorded in the log.",
    ),
    (
        "post",
        "/api/knowledge/update",
        "Create or replace an entry (base_revision for optimistic concurrency: 409 names the change that won).",
    ),
    (
        "post",
        "/api/knowledge/import",
        "Import Markdown files ({files:[{path,text}], source}): changed entries written, equal ones skipped.",
    ),
    (
        "get",
        "/api/knowledge/entries",
        "Every entry (id, title, tags, revision, feedback, last verified) and the entries' state hash.",
    ),
    ("get", "/api/knowledge/entries/{*id}", "One entry."),
    (
        "delete",
        "/api/knowledge/entries/{*id}",
        "Delete an entry (base_revision optional).",
    ),
    (
        "post",
        "/api/knowledge/feedback",
        "Helpful / not helpful feedback on an entry (re-ranks it).",
    ),
    (
        "post",
        "/api/knowledge/verify",
        "Mark an entry verified now (last_verified).",
    ),
    (
        "get",
        "/api/knowledge/drafts",
        "Draft entries proposed from resolved incidents (timeline, root cause, remedy); accept with /api/knowledge/update.",
    ),
    (
        "get",
        "/api/knowledge/link",
        "Runbooks linked to an alert: fingerprint, or alertname with label.<name> and annotation.<name>.",
    ),
    (
        "post",
        "/api/deploy",
        "Record a deploy (service, environment, version, previous_version, strategy, status, change, run): risk with reasons, policy (approval, freeze → 409), verification window; run: true runs the deploy workflow once.",
    ),
    (
        "get",
        "/api/deploy/status",
        "One deploy (?id=) with risk, verification (per-metric judgement, baseline) and decision; a service's deploys (?service=); or every deploy not final.",
    ),
    (
        "post",
        "/api/deploy/rollback",
        "Roll a deploy back ({id, reason}): runs the rollback workflow once (409 when already rolling back or rolled back).",
    ),
    (
        "get",
        "/api/deploys",
        "Deploy history (service, environment, limit; newest first) and DORA figures per service: deployment frequency, change failure rate, time to restore.",
    ),
    (
        "post",
        "/api/deploy/hooks/{kind}",
        "CI/CD webhook reporting deploys (github, gitlab, argocd, flux): no token, the signature or shared secret is checked; nothing is recorded when it is wrong.",
    ),
    (
        "post",
        "/api/incidents/{id}/ack",
        "Acknowledge an incident.",
    ),
    (
        "post",
        "/api/incidents/{id}/resolve",
        "Resolve an incident.",
    ),
    (
        "get",
        "/api/alerting/stats",
        "Alerting statistics (noise, budgets).",
    ),
    ("get", "/api/alerting/inhibit_rules", "Inhibition rules."),
    (
        "post",
        "/api/alerting/inhibit_rules",
        "Add an inhibition rule.",
    ),
    (
        "delete",
        "/api/alerting/inhibit_rules/{id}",
        "Remove an inhibition rule.",
    ),
    ("get", "/api/workflows", "Deployed workflows."),
    ("post", "/api/workflows", "Create a workflow (YAML body)."),
    ("get", "/api/workflows/{id}", "One workflow's YAML."),
    ("put", "/api/workflows/{id}", "Replace a workflow."),
    ("delete", "/api/workflows/{id}", "Remove a workflow."),
    (
        "post",
        "/api/workflows/{id}/execute",
        "Run a workflow manually.",
    ),
    (
        "get",
        "/api/workflows/{id}/executions",
        "A workflow's executions.",
    ),
    ("get", "/api/workflows/executions/{*rest}", "One execution."),
    (
        "post",
        "/api/workflows/executions/{*rest}",
        "Approve or reject an execution's step (`{id}/approve`, `{id}/reject`).",
    ),
    ("get", "/api/autoheal/strategies", "Auto-heal strategies."),
    (
        "post",
        "/api/autoheal/diagnose",
        "Which strategy an incident would get.",
    ),
    (
        "post",
        "/api/autoheal/fix",
        "Run an incident's strategy now.",
    ),
    (
        "post",
        "/api/sql",
        "Run a SQL query over the archive, the log and live state.",
    ),
    (
        "get",
        "/api/sql/tables",
        "Tables and columns queryable with SQL.",
    ),
    (
        "get",
        "/api/metrics",
        "A metric's series over a range (name, from, to, step, label.<name>).",
    ),
    (
        "get",
        "/api/logs/search",
        "Search logs by text, labels, severity and time range.",
    ),
    (
        "get",
        "/api/logs/analysis",
        "Log templates of a range (service, from, to, baseline_from, baseline_to) against a baseline: counts, change, new templates, rate and error surges, samples, runbooks, similar incidents.",
    ),
    (
        "get",
        "/api/tokens",
        "API tokens (ids, names, roles; never the tokens).",
    ),
    (
        "post",
        "/api/tokens",
        "Create an API token; the answer shows it once.",
    ),
    ("delete", "/api/tokens/{id}", "Revoke an API token."),
    (
        "get",
        "/api/console/users",
        "Console users (names, roles, TOTP enrolled; never hashes or secrets).",
    ),
    (
        "post",
        "/api/console/users",
        "Create a console user (name, role, initial password); TOTP is enrolled at first sign-in.",
    ),
    (
        "delete",
        "/api/console/users/{name}",
        "Delete a console user and end their sessions.",
    ),
    (
        "post",
        "/api/console/users/{name}/reset",
        "Reset a console user's TOTP (and password); enrol again at the next sign-in.",
    ),
    ("get", "/api/archive", "Parquet archive statistics."),
    (
        "get",
        "/api/grafana/dashboards",
        "The Grafana data source, dashboards and annotations a sync would write.",
    ),
    (
        "post",
        "/api/grafana/dashboards",
        "Sync the folder, data source, dashboards and annotations to Grafana.",
    ),
    (
        "get",
        "/api/grafana/alerts",
        "The Grafana alert rules for the SQL alert rules.",
    ),
    (
        "post",
        "/api/grafana/alerts",
        "Sync the Grafana alert rules for the SQL alert rules.",
    ),
    (
        "get",
        "/api/business-metrics",
        "Business metrics: the pipelines writing a derived stream.",
    ),
    (
        "post",
        "/api/business-metrics",
        "Create a business metric {name, sql, description?}; compiled with the directory first.",
    ),
    (
        "get",
        "/api/business-metrics/{name}",
        "One business metric.",
    ),
    (
        "put",
        "/api/business-metrics/{name}",
        "Replace a business metric's SQL.",
    ),
    (
        "delete",
        "/api/business-metrics/{name}",
        "Remove a business metric (its stream stays queryable).",
    ),
    (
        "get",
        "/api/business-metrics/{name}/data",
        "A business metric's windows in a range (from, to, limit).",
    ),
    (
        "get",
        "/api/alerts/rules",
        "SQL alert rules with their state.",
    ),
    (
        "post",
        "/api/alerts/rules",
        "Create a SQL alert rule {name, sql, description?}.",
    ),
    ("get", "/api/alerts/rules/{name}", "One SQL alert rule."),
    (
        "put",
        "/api/alerts/rules/{name}",
        "Replace a SQL alert rule.",
    ),
    (
        "delete",
        "/api/alerts/rules/{name}",
        "Remove a SQL alert rule.",
    ),
    (
        "get",
        "/api/datasources",
        "Pull sources (scrapes, demo): from the config file and created through the API.",
    ),
    (
        "post",
        "/api/datasources",
        "Create and start a pull source {id, type, …settings}; kept across restarts.",
    ),
    ("get", "/api/datasources/{id}", "One pull source."),
    (
        "put",
        "/api/datasources/{id}",
        "Replace an API-created pull source (restarts it).",
    ),
    (
        "delete",
        "/api/datasources/{id}",
        "Stop and remove an API-created pull source.",
    ),
    (
        "post",
        "/api/datasources/{id}/test",
        "Pull once from a source and report what came back; nothing is written.",
    ),
    (
        "get",
        "/api/datasources/{id}/metrics",
        "A source's health: state, last error, position, lag, rows and series per kind, pulls, failures, backfilled ranges.",
    ),
];

fn method_of(m: &str) -> Method {
    match m {
        "post" => Method::POST,
        "put" => Method::PUT,
        "delete" => Method::DELETE,
        _ => Method::GET,
    }
}

/// The OpenAPI 3.0 document of [`ROUTES`], with each route's required role.
pub fn openapi_doc() -> Value {
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for (m, p, summary) in ROUTES {
        let need = required(&method_of(m), p);
        let (security, role) = match need {
            Need::Open => (json!([]), "none".to_string()),
            Need::Role(r) => (json!([{"bearer": []}]), r.as_str().to_string()),
        };
        let params: Vec<Value> = p
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|n| json!({"name": n.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), json!({"description": "Success."}));
        responses.insert(
            "400".into(),
            json!({"description": "Bad request: the body names what is wrong."}),
        );
        if need != Need::Open {
            responses.insert("401".into(), json!({"description": "No or unknown token."}));
            responses.insert(
                "403".into(),
                json!({"description": "The token's role does not allow this."}),
            );
            responses.insert(
                "429".into(),
                json!({"description": "Rate limit of the token exceeded."}),
            );
        }
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{m}_{}", p.trim_start_matches('/').replace(['/', '{', '}', '*', '.'], "_")),
            "security": security,
            "x-aiops-role": role,
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if matches!(*m, "post" | "put") {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let openapi_path = p.replace("{*rest}", "{rest}");
        paths
            .entry(openapi_path)
            .or_default()
            .insert((*m).to_string(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "aiops HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Ingest, alerting, workflows and the read side of aiops. Bearer API tokens with roles ingest, viewer, operator, admin.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_doc())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every `.route("…")` in the sources (and every push endpoint) is in the document, and the
    /// document lists no route the code does not register.
    #[test]
    fn openapi_matches_the_registered_routes() {
        let mut code = std::collections::BTreeSet::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let mut rest = text.as_str();
                    while let Some(i) = rest.find(".route(") {
                        rest = &rest[i + 7..];
                        let t = rest.trim_start();
                        if let Some(s) = t.strip_prefix('"') {
                            let end = s.find('"').unwrap();
                            // The console's sign-in pages and assets are not API routes.
                            let console_page =
                                !["/api", "/v1", "/metrics"].iter().any(|p| s.starts_with(p));
                            if s.starts_with('/') && !console_page {
                                code.insert(s[..end].to_string());
                            }
                        }
                    }
                }
            }
        }
        for p in crate::auth::ingest_paths() {
            code.insert(p.to_string());
        }
        let documented: std::collections::BTreeSet<String> =
            ROUTES.iter().map(|r| r.1.to_string()).collect();
        let missing: Vec<_> = code.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&code).collect();
        assert!(extra.is_empty(), "documented but not registered: {extra:?}");
        let doc = openapi_doc();
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["paths"]["/api/health"]["get"]["security"], json!([]));
        assert_eq!(doc["paths"]["/api/tokens"]["post"]["x-aiops-role"], "admin");
    }
}
