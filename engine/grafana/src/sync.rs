//! Plans what aiops wants in Grafana from the engine's state and applies it: reads each object
//! first and writes only the ones that differ, so a second sync with nothing changed writes
//! nothing (and dashboard versions in Grafana count real changes only).
//!
//! Before anything is written, every generated panel and rule query is expanded as Grafana will
//! expand it and run on the read side; a query that fails stops the sync with the panel's name.

use super::client::{GrafanaClient, Requests};
use super::dashboard::{self, AlertDesc, ColumnKind, DataSourceRef, PipelineDesc};
use super::macros::{self, QueryRange};
use super::rules::{self, RuleTarget};
use super::{GrafanaError, GrafanaSettings, SqlSource};
use aiops_read::auth::{Role, TokenStore};
use aiops_runtime::pipelines::load::read_dir;
use aiops_runtime::pipelines::runner::InfoBoard;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What the Grafana automation needs from the running engine.
#[derive(Debug)]
pub struct GrafanaContext {
    /// `[grafana]`.
    pub settings: GrafanaSettings,
    /// The pipeline directory (descriptions and alert rule headers).
    pub pipelines_dir: PathBuf,
    /// Where the Postgres endpoint listens (the data source's default address).
    pub pg_addr: Option<std::net::SocketAddr>,
    /// Tokens (a data source token is created here when none is configured).
    pub tokens: Arc<TokenStore>,
    /// One sync at a time.
    pub lock: tokio::sync::Mutex<()>,
}

/// An annotation aiops keeps in Grafana, found again by its marker tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// The tag that identifies it (`aiops-<16 hex>`).
    pub marker: String,
    /// Start, Unix ms.
    pub time_ms: i64,
    /// End, Unix ms (a region), if any.
    pub time_end_ms: Option<i64>,
    /// Text.
    pub text: String,
    /// Tags, the marker last.
    pub tags: Vec<String>,
}

/// Everything a sync would write.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The data source (without its password).
    pub datasource: Value,
    /// Dashboards.
    pub dashboards: Vec<Value>,
    /// Grafana alert rules.
    pub rules: Vec<Value>,
    /// Incident and deploy annotations.
    pub annotations: Vec<Annotation>,
    /// Uids of every pipeline file on disk: never deleted as stale, even while a pipeline is
    /// refused, reloading or has no data yet.
    pub keep: BTreeSet<String>,
}

/// What a sync did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    /// Objects created (`dashboard aiops-overview`, …).
    pub created: Vec<String>,
    /// Objects updated because they differed.
    pub updated: Vec<String>,
    /// Objects removed (dashboards and rules of pipelines that no longer exist).
    pub deleted: Vec<String>,
    /// Objects already as wanted.
    pub unchanged: usize,
    /// HTTP requests made.
    pub requests: Requests,
}

/// What to sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Folder, data source, dashboards and annotations.
    Dashboards,
    /// Folder and alert rules.
    Alerts,
}

fn run_err(what: &str, e: aiops_read::limits::QueryError) -> GrafanaError {
    GrafanaError::Query {
        what: what.to_string(),
        message: e.message,
        code: e.code.to_string(),
    }
}

async fn rows(rs: &impl SqlSource, what: &str, sql: &str) -> Result<Vec<Value>, GrafanaError> {
    let b = rs.query(sql).await.map_err(|e| run_err(what, e))?;
    aiops_read::json::rows_json(&b).map_err(|e| GrafanaError::Internal(e.to_string()))
}

fn alertname_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)'((?:[^']|'')+)'\s+AS\s+alertname\b")
            .unwrap_or_else(|_| unreachable!())
    })
}

/// The leading comment of a pipeline file (header settings left out).
fn description(sql: &str) -> String {
    sql.lines()
        .map_while(|l| l.trim().strip_prefix("--"))
        .map(str::trim)
        .filter(|l| !l.starts_with('@'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pipelines as the dashboards see them: the running ones (their output columns from the
/// read side) with their file's description and alert settings.
///
/// # Errors
/// The read side fails.
pub async fn describe(
    ctx: &GrafanaContext,
    board: &InfoBoard,
    rs: &impl SqlSource,
) -> Result<Vec<PipelineDesc>, GrafanaError> {
    let running: Vec<(String, String)> = board
        .read()
        .pipelines
        .iter()
        .map(|p| (p.name.clone(), p.output.clone()))
        .collect();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(files) = read_dir(&ctx.pipelines_dir) {
        for f in files {
            if let Some(stem) = f.file.file_stem().and_then(|s| s.to_str()) {
                sources.insert(stem.to_string(), f.sql);
            }
        }
    }
    let mut columns: BTreeMap<String, Vec<(String, ColumnKind)>> = BTreeMap::new();
    for r in rows(
        rs,
        "the column list",
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .await?
    {
        let (Some(t), Some(c), Some(ty)) = (
            r["table_name"].as_str(),
            r["column_name"].as_str(),
            r["data_type"].as_str(),
        ) else {
            continue;
        };
        columns
            .entry(t.to_string())
            .or_default()
            .push((c.to_string(), ColumnKind::of_sql_type(c, ty)));
    }
    let mut out = Vec::new();
    for (name, output) in running {
        let sql = sources.get(&name).cloned().unwrap_or_default();
        let alert = (output == "alerts").then(|| {
            let settings =
                aiops_sql::settings::parse(std::path::Path::new(&name), &sql).unwrap_or_default();
            AlertDesc {
                alertname: alertname_re()
                    .captures(&sql)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().replace("''", "'"))
                    .unwrap_or_else(|| name.clone()),
                severity: settings.severity,
                summary: settings.summary,
            }
        });
        out.push(PipelineDesc {
            columns: if alert.is_some() {
                Vec::new()
            } else {
                columns.get(&output).cloned().unwrap_or_default()
            },
            description: description(&sql),
            name,
            output,
            alert,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn datasource(s: &GrafanaSettings, pg_addr: Option<std::net::SocketAddr>) -> Value {
    let addr = s
        .datasource_address
        .clone()
        .or_else(|| pg_addr.map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1:5433".into());
    json!({
        "uid": s.datasource_uid,
        "name": s.datasource_name,
        "type": s.datasource_type,
        "access": "proxy",
        "url": addr,
        "user": "grafana",
        "database": "aiops",
        "basicAuth": false,
        "isDefault": false,
        "readOnly": false,
        "jsonData": {"database": "aiops", "sslmode": "disable", "postgresVersion": 1500, "timescaledb": false, "maxOpenConns": 10, "timeInterval": "1m"},
    })
}

fn marker(kind: &str, id: &str) -> String {
    let mut h = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, kind.as_bytes());
    h = aiops_schemas::partition::fnv1a(h, &[0xff]);
    h = aiops_schemas::partition::fnv1a(h, id.as_bytes());
    format!("aiops-{h:016x}")
}

async fn annotations(rs: &impl SqlSource, since_ms: i64) -> Result<Vec<Annotation>, GrafanaError> {
    let mut out = Vec::new();
    for r in rows(
        rs,
        "incident annotations",
        &format!(
            "SELECT id, title, status, severity, CAST(opened_at AS BIGINT) AS opened, CAST(resolved_at AS BIGINT) AS resolved FROM incidents WHERE CAST(opened_at AS BIGINT) >= {since_ms} ORDER BY opened_at"
        ),
    )
    .await?
    {
        let (Some(id), Some(opened)) = (r["id"].as_str(), r["opened"].as_i64()) else {
            continue;
        };
        let sev = r["severity"].as_str().unwrap_or("none");
        let m = marker("incident", id);
        out.push(Annotation {
            time_ms: opened,
            time_end_ms: r["resolved"].as_i64(),
            text: format!(
                "Incident {}: {} ({}, {sev})",
                id,
                r["title"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or("")
            ),
            tags: vec!["aiops".into(), "incident".into(), m.clone()],
            marker: m,
        });
    }
    for r in rows(
        rs,
        "deploy annotations",
        &format!(
            "SELECT CAST(time AS BIGINT) AS t, message, labels['service'] AS service, labels['version'] AS version FROM events WHERE type = 'deploy' AND time >= '{}' ORDER BY time",
            macros::rfc3339_nano(since_ms)
        ),
    )
    .await?
    {
        let Some(t) = r["t"].as_i64() else { continue };
        let service = r["service"].as_str().unwrap_or("");
        let version = r["version"].as_str().unwrap_or("");
        let m = marker("deploy", &format!("{t}/{service}/{version}"));
        let mut tags = vec!["aiops".to_string(), "deploy".to_string()];
        if !service.is_empty() {
            tags.push(service.to_string());
        }
        tags.push(m.clone());
        let msg = r["message"].as_str().unwrap_or("");
        out.push(Annotation {
            time_ms: t,
            time_end_ms: None,
            text: if msg.is_empty() {
                format!("Deploy {service} {version}").trim().to_string()
            } else {
                msg.to_string()
            },
            tags,
            marker: m,
        });
    }
    // Deploy records (`POST /api/deploy`, CI/CD webhooks, rollout watchers): one annotation per
    // deploy from its start to its end, with its status and verdict. A read side without the
    // `deploys` table (an older engine) has none.
    let records = match rs
        .query(&format!(
            "SELECT id, service, environment, version, previous_version, status, verdict, CAST(started_at AS BIGINT) AS t, CAST(finished_at AS BIGINT) AS t_end FROM deploys WHERE started_at >= '{}' ORDER BY started_at, id",
            macros::rfc3339_nano(since_ms)
        ))
        .await
    {
        Ok(b) => aiops_read::json::rows_json(&b).map_err(|e| GrafanaError::Internal(e.to_string()))?,
        Err(e) if e.message.contains("deploys") => {
            tracing::debug!(error = %e.message, "no deploys table on the read side: no deploy record annotations");
            Vec::new()
        }
        Err(e) => return Err(run_err("deploy record annotations", e)),
    };
    for r in records {
        let (Some(id), Some(t)) = (r["id"].as_str(), r["t"].as_i64()) else {
            continue;
        };
        let service = r["service"].as_str().unwrap_or("");
        let m = marker("deploy-record", id);
        let mut tags = vec!["aiops".to_string(), "deploy".to_string()];
        if !service.is_empty() {
            tags.push(service.to_string());
        }
        tags.push(m.clone());
        let verdict = r["verdict"]
            .as_str()
            .map(|v| format!(", verdict {v}"))
            .unwrap_or_default();
        out.push(Annotation {
            time_ms: t,
            time_end_ms: r["t_end"].as_i64(),
            text: format!(
                "Deploy {id}: {service} {} → {} in {} ({}{verdict})",
                r["previous_version"].as_str().unwrap_or("?"),
                r["version"].as_str().unwrap_or(""),
                r["environment"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
            ),
            tags,
            marker: m,
        });
    }
    Ok(out)
}

/// Runs every generated query on the read side as Grafana will send it (last 5 minutes).
async fn check_queries(rs: &impl SqlSource, plan: &Plan, now_ms: i64) -> Result<(), GrafanaError> {
    let range = QueryRange {
        from_ms: now_ms - 300_000,
        to_ms: now_ms,
        interval_ms: 60_000,
    };
    let mut all = Vec::new();
    for d in &plan.dashboards {
        let title = d["title"].as_str().unwrap_or("");
        for (panel, ref_id, sql) in dashboard::queries(d) {
            all.push((
                format!("dashboard {title:?} panel {panel:?} ({ref_id})"),
                sql,
            ));
        }
    }
    for r in &plan.rules {
        if let Some(sql) = rules::rule_sql(r) {
            all.push((
                format!("alert rule {:?}", r["title"].as_str().unwrap_or("")),
                sql.to_string(),
            ));
        }
    }
    for (what, sql) in all {
        let expanded = macros::expand(&sql, &range).map_err(|e| GrafanaError::Query {
            what: what.clone(),
            message: e.to_string(),
            code: "42601".into(),
        })?;
        rs.query(&expanded).await.map_err(|e| run_err(&what, e))?;
    }
    Ok(())
}

fn load_keep(ctx: &GrafanaContext) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    for f in read_dir(&ctx.pipelines_dir).unwrap_or_default() {
        if let Some(stem) = f.file.file_stem().and_then(|s| s.to_str()) {
            keep.insert(dashboard::pipeline_uid(stem));
            keep.insert(rules::rule_uid(stem));
        }
    }
    keep
}

/// The plan for the engine's current state.
///
/// # Errors
/// The read side fails, or a generated query does not run on it.
pub async fn plan(
    ctx: &GrafanaContext,
    board: &InfoBoard,
    rs: &impl SqlSource,
    scope: Scope,
    now_ms: i64,
) -> Result<Plan, GrafanaError> {
    let s = &ctx.settings;
    let pipelines = describe(ctx, board, rs).await?;
    let ds = DataSourceRef {
        uid: s.datasource_uid.clone(),
        kind: s.datasource_type.clone(),
    };
    let mut plan = Plan {
        datasource: datasource(s, ctx.pg_addr),
        dashboards: Vec::new(),
        rules: Vec::new(),
        annotations: Vec::new(),
        keep: load_keep(ctx),
    };
    match scope {
        Scope::Dashboards => {
            plan.dashboards
                .push(dashboard::overview_dashboard(&pipelines, &ds));
            plan.dashboards.extend(
                pipelines
                    .iter()
                    .filter_map(|p| dashboard::pipeline_dashboard(p, &ds)),
            );
            plan.annotations =
                annotations(rs, now_ms - s.annotation_days.max(0) * 86_400_000).await?;
        }
        Scope::Alerts => {
            let t = RuleTarget {
                folder_uid: s.folder_uid.clone(),
                group: s.rule_group.clone(),
                datasource_uid: s.datasource_uid.clone(),
                org_id: s.org_id,
            };
            plan.rules = pipelines
                .iter()
                .filter_map(|p| {
                    p.alert
                        .as_ref()
                        .map(|a| rules::grafana_rule(&p.name, a, &t))
                })
                .collect();
        }
    }
    check_queries(rs, &plan, now_ms).await?;
    Ok(plan)
}

/// `v` without the keys Grafana adds or changes on save.
fn strip(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// Whether every key of `want` has the same value in `have` (Grafana adds fields of its own).
fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| covers(hv, wv))),
        _ => have == want,
    }
}

async fn folder(
    c: &mut GrafanaClient,
    s: &GrafanaSettings,
    r: &mut Report,
) -> Result<(), GrafanaError> {
    let path = format!("api/folders/{}", s.folder_uid);
    match c.get(&path).await? {
        None => {
            c.write(
                Method::POST,
                "api/folders",
                &json!({"uid": s.folder_uid, "title": s.folder_title}),
            )
            .await?;
            r.created.push(format!("folder {}", s.folder_uid));
        }
        Some(f) if f["title"] != json!(s.folder_title) => {
            c.write(
                Method::PUT,
                &path,
                &json!({"title": s.folder_title, "version": f["version"], "overwrite": true}),
            )
            .await?;
            r.updated.push(format!("folder {}", s.folder_uid));
        }
        Some(_) => r.unchanged += 1,
    }
    Ok(())
}

async fn datasource_sync(
    c: &mut GrafanaClient,
    ctx: &GrafanaContext,
    want: &Value,
    r: &mut Report,
    now_ms: i64,
) -> Result<(), GrafanaError> {
    let s = &ctx.settings;
    let path = format!("api/datasources/uid/{}", s.datasource_uid);
    match c.get(&path).await? {
        None => {
            let password = match &s.datasource_token {
                Some(t) => t.expose().to_string(),
                None => {
                    let (rec, token) = ctx
                        .tokens
                        .create("grafana-datasource", Role::Viewer, now_ms)
                        .map_err(|e| GrafanaError::Internal(e.to_string()))?;
                    tracing::info!(token_id = %rec.id, "created a viewer token for the Grafana data source");
                    token
                }
            };
            let mut body = want.clone();
            body["secureJsonData"] = json!({"password": password});
            c.write(Method::POST, "api/datasources", &body).await?;
            r.created.push(format!("datasource {}", s.datasource_uid));
        }
        Some(have) if !covers(&have, want) => {
            let mut body = want.clone();
            body["id"] = have["id"].clone();
            if let Some(t) = &s.datasource_token {
                body["secureJsonData"] = json!({"password": t.expose()});
            }
            c.write(Method::PUT, &path, &body).await?;
            r.updated.push(format!("datasource {}", s.datasource_uid));
        }
        Some(_) => r.unchanged += 1,
    }
    Ok(())
}

async fn dashboards_sync(
    c: &mut GrafanaClient,
    s: &GrafanaSettings,
    want: &[Value],
    keep: &BTreeSet<String>,
    r: &mut Report,
) -> Result<(), GrafanaError> {
    let mut wanted = uids(want);
    wanted.extend(keep.iter().cloned());
    for d in want {
        let uid = d["uid"].as_str().unwrap_or_default();
        let have = c.get(&format!("api/dashboards/uid/{uid}")).await?;
        let same = have.as_ref().is_some_and(|h| {
            covers(&strip(&h["dashboard"], &["id", "version"]), d)
                && h["meta"]["folderUid"] == json!(s.folder_uid)
        });
        if same {
            r.unchanged += 1;
            continue;
        }
        c.write(
            Method::POST,
            "api/dashboards/db",
            &json!({
                "dashboard": d,
                "folderUid": s.folder_uid,
                "overwrite": true,
                "message": "aiops grafana sync: generated from the pipelines",
            }),
        )
        .await?;
        if have.is_some() {
            r.updated.push(format!("dashboard {uid}"));
        } else {
            r.created.push(format!("dashboard {uid}"));
        }
    }
    // Dashboards of pipelines that are gone: only aiops' own (uid prefix, in its folder).
    let found = c
        .get(&format!(
            "api/search?type=dash-db&tag=aiops&folderUIDs={}",
            s.folder_uid
        ))
        .await?
        .unwrap_or(Value::Null);
    delete_stale(
        c,
        &found,
        "aiops-p-",
        &wanted,
        "dashboard",
        |u| format!("api/dashboards/uid/{u}"),
        r,
    )
    .await?;
    Ok(())
}

fn uids(want: &[Value]) -> BTreeSet<String> {
    want.iter()
        .filter_map(|d| d["uid"].as_str().map(str::to_string))
        .collect()
}

/// Deletes the objects of `listed` with aiops' uid `prefix` that are not `wanted` (their pipeline
/// is gone); objects without the prefix are someone else's and stay.
async fn delete_stale(
    c: &mut GrafanaClient,
    listed: &Value,
    prefix: &str,
    wanted: &BTreeSet<String>,
    what: &str,
    path_of: impl Fn(&str) -> String,
    r: &mut Report,
) -> Result<(), GrafanaError> {
    for have in listed.as_array().into_iter().flatten() {
        let Some(uid) = have["uid"].as_str() else {
            continue;
        };
        if uid.starts_with(prefix) && !wanted.contains(uid) {
            c.write(Method::DELETE, &path_of(uid), &Value::Null).await?;
            r.deleted.push(format!("{what} {uid}"));
        }
    }
    Ok(())
}

/// Fields of a provisioned rule aiops sets (Grafana adds `id`, `updated`, `provenance`, …).
const RULE_FIELDS: &[&str] = &[
    "title",
    "folderUID",
    "ruleGroup",
    "condition",
    "data",
    "for",
    "noDataState",
    "execErrState",
    "isPaused",
    "labels",
    "annotations",
];

fn rule_fields(v: &Value) -> Value {
    Value::Object(
        RULE_FIELDS
            .iter()
            .map(|k| ((*k).to_string(), v[*k].clone()))
            .collect(),
    )
}

async fn rules_sync(
    c: &mut GrafanaClient,
    want: &[Value],
    keep: &BTreeSet<String>,
    r: &mut Report,
) -> Result<(), GrafanaError> {
    let mut wanted = uids(want);
    wanted.extend(keep.iter().cloned());
    for rule in want {
        let uid = rule["uid"].as_str().unwrap_or_default();
        let path = format!("api/v1/provisioning/alert-rules/{uid}");
        match c.get(&path).await? {
            None => {
                c.write(Method::POST, "api/v1/provisioning/alert-rules", rule)
                    .await?;
                r.created.push(format!("alert rule {uid}"));
            }
            Some(have) if !covers(&rule_fields(&have), &rule_fields(rule)) => {
                c.write(Method::PUT, &path, rule).await?;
                r.updated.push(format!("alert rule {uid}"));
            }
            Some(_) => r.unchanged += 1,
        }
    }
    let all = c
        .get("api/v1/provisioning/alert-rules")
        .await?
        .unwrap_or(Value::Null);
    delete_stale(
        c,
        &all,
        "aiops-r-",
        &wanted,
        "alert rule",
        |u| format!("api/v1/provisioning/alert-rules/{u}"),
        r,
    )
    .await?;
    Ok(())
}

async fn annotations_sync(
    c: &mut GrafanaClient,
    want: &[Annotation],
    r: &mut Report,
) -> Result<(), GrafanaError> {
    for a in want {
        let found = c
            .get(&format!(
                "api/annotations?tags={}&type=annotation&limit=1",
                a.marker
            ))
            .await?
            .unwrap_or(Value::Null);
        let mut body = json!({"time": a.time_ms, "text": a.text, "tags": a.tags});
        if let Some(end) = a.time_end_ms {
            body["timeEnd"] = json!(end);
        }
        match found.as_array().and_then(|l| l.first()) {
            None => {
                c.write(Method::POST, "api/annotations", &body).await?;
                r.created.push(format!("annotation {}", a.marker));
            }
            Some(have) => {
                let end_differs = a
                    .time_end_ms
                    .is_some_and(|e| have["timeEnd"].as_i64() != Some(e));
                if have["text"] != json!(a.text) || end_differs {
                    let id = have["id"].as_i64().unwrap_or_default();
                    c.write(Method::PATCH, &format!("api/annotations/{id}"), &body)
                        .await?;
                    r.updated.push(format!("annotation {}", a.marker));
                } else {
                    r.unchanged += 1;
                }
            }
        }
    }
    Ok(())
}

/// Applies `plan` to the Grafana of `ctx`.
///
/// # Errors
/// [`GrafanaError`]: not configured, Grafana unreachable or refusing a request (what was written
/// before stays; the next sync continues from there).
pub async fn apply(
    ctx: &GrafanaContext,
    plan: &Plan,
    scope: Scope,
    now_ms: i64,
) -> Result<Report, GrafanaError> {
    let _one = ctx.lock.lock().await;
    let s = &ctx.settings;
    let mut c = GrafanaClient::new(s)?;
    let mut r = Report::default();
    folder(&mut c, s, &mut r).await?;
    match scope {
        Scope::Dashboards => {
            datasource_sync(&mut c, ctx, &plan.datasource, &mut r, now_ms).await?;
            dashboards_sync(&mut c, s, &plan.dashboards, &plan.keep, &mut r).await?;
            annotations_sync(&mut c, &plan.annotations, &mut r).await?;
        }
        Scope::Alerts => rules_sync(&mut c, &plan.rules, &plan.keep, &mut r).await?,
    }
    r.requests = c.requests;
    tracing::info!(
        created = r.created.len(),
        updated = r.updated.len(),
        deleted = r.deleted.len(),
        unchanged = r.unchanged,
        "grafana sync"
    );
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_and_alertnames_come_from_the_file() {
        let sql = "-- CPU per host\n-- per minute.\n-- @for: 5\nINSERT INTO alerts SELECT 'Disk''Full' AS alertname FROM x";
        assert_eq!(description(sql), "CPU per host per minute.");
        let c = alertname_re().captures(sql).unwrap();
        assert_eq!(c.get(1).unwrap().as_str().replace("''", "'"), "Disk'Full");
        assert_ne!(marker("incident", "a"), marker("deploy", "a"));
        assert!(covers(
            &json!({"a": 1, "b": {"c": 2, "d": 3}}),
            &json!({"b": {"c": 2}})
        ));
        assert!(!covers(&json!({"a": 1}), &json!({"a": 2})));
    }
}
