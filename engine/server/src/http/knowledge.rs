//! The knowledge base over HTTP (the plan's §6.5): search, ask with citations, update, one
//! entry's read and delete, feedback, verification, folder import, drafts from resolved
//! incidents and the runbooks linked to an alert. Reads answer from the knowledge processor's
//! state; writes are commands appended to the log, answered once applied (409 names the
//! change that won a concurrent update).

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::knowledge::assistant::Assistant;
use crate::knowledge::{Knowledge, incident_doc};
use aiops_connectors::sinks::llm::Passage;
use aiops_knowledge::{AlertContext, AskRequest, Command, EntryInput, SearchQuery};
use aiops_runtime::alerting::processor::AlertingHandle;
use aiops_runtime::knowledge::processor::KnowledgeHandle;
use aiops_runtime::templates::processor::TemplatesHandle;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest body of an update or import request: an entry may be 1 MiB of Markdown, escaped.
const KNOWLEDGE_BODY_LIMIT: usize = 4 << 20;

/// What the knowledge handlers need.
#[derive(Clone)]
pub struct KnowledgeState {
    /// The knowledge base, when enabled.
    pub kb: Option<Knowledge>,
    /// Alerts and incidents (linking, drafts).
    pub alerting: Option<Arc<AlertingHandle>>,
    /// Mined templates (the search fallback of linking).
    pub templates: Option<Arc<TemplatesHandle>>,
    /// The LLM assistant, when configured.
    pub assistant: Option<Arc<Assistant>>,
}

/// Adds the knowledge routes to the router.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let big = || DefaultBodyLimit::max(KNOWLEDGE_BODY_LIMIT);
    r.route("/api/knowledge/search", get(search))
        .route("/api/knowledge/ask", post(ask))
        .route("/api/knowledge/update", post(update).layer(big()))
        .route("/api/knowledge/import", post(import).layer(big()))
        .route("/api/knowledge/entries", get(list))
        .route(
            "/api/knowledge/entries/{*id}",
            get(get_entry).delete(delete_entry),
        )
        .route("/api/knowledge/feedback", post(feedback))
        .route("/api/knowledge/verify", post(verify))
        .route("/api/knowledge/drafts", get(drafts))
        .route("/api/knowledge/link", get(link))
}

fn kb(st: &KnowledgeState) -> ApiResult<&Knowledge> {
    st.kb.as_ref().ok_or_else(|| {
        ApiError::reason(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "the knowledge base is disabled ([knowledge] enabled = false)",
        )
    })
}

fn index_error(e: aiops_knowledge::KnowledgeError) -> ApiError {
    match e {
        aiops_knowledge::KnowledgeError::Invalid(m) => {
            ApiError::reason(StatusCode::BAD_REQUEST, "invalid", m)
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// Decodes a JSON request body; a 400 names `what` and the path of the bad field.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = if path == "." {
            format!("bad {what}: {}", e.inner())
        } else {
            format!("bad {what}: {path}: {}", e.inner())
        };
        ApiError::reason(StatusCode::BAD_REQUEST, "invalid", msg)
    })
}

pub(crate) fn who(caller: Option<&axum::Extension<crate::auth::Caller>>) -> String {
    caller
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "api".into())
}

/// Builds the index if a write made it stale, on a blocking thread: a rebuild of a large base
/// takes seconds and must not hold an async worker (queries after it take milliseconds).
pub(crate) async fn warm(h: &Arc<KnowledgeHandle>) -> ApiResult<()> {
    let h = h.clone();
    tokio::task::spawn_blocking(move || h.kb.read().warm())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map(|_| ())
        .map_err(index_error)
}

fn bad_param(m: impl Into<String>) -> ApiError {
    ApiError::reason(StatusCode::BAD_REQUEST, "bad_parameter", m)
}

async fn search(
    State(st): State<KnowledgeState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let kb = kb(&st)?;
    let mut query = SearchQuery {
        limit: 10,
        ..SearchQuery::default()
    };
    for (k, v) in q {
        match k.as_str() {
            "q" => query.text = v,
            "tag" => query.tags.push(v),
            "service" => query.service = Some(v),
            "owner" => query.owner = Some(v),
            "limit" => {
                query.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => return Err(bad_param("limit must be 1 to 100")),
                }
            }
            "drafts" => {
                query.include_drafts = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad_param("drafts must be true or false")),
                }
            }
            other => {
                return Err(bad_param(format!(
                    "unknown parameter {other:?}: expected q, tag, service, owner, limit, drafts"
                )));
            }
        }
    }
    if query.text.trim().is_empty()
        && query.tags.is_empty()
        && query.service.is_none()
        && query.owner.is_none()
    {
        return Err(bad_param(
            "q (the search text) is required unless tag, service or owner filter",
        ));
    }
    warm(&kb.handle).await?;
    let hits = kb.handle.kb.read().search(&query).map_err(index_error)?;
    Ok(axum::Json(json!({ "hits": hits })).into_response())
}

/// The body of `POST /api/knowledge/ask`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    question: String,
    /// An alert to answer about: its name, labels and annotations.
    #[serde(default)]
    context: Option<AskContext>,
    /// Whether to use the configured LLM (default true when one is configured).
    #[serde(default)]
    llm: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AskContext {
    #[serde(default)]
    alertname: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    /// An alert the engine holds, by fingerprint (its labels and annotations are used).
    #[serde(default)]
    fingerprint: Option<String>,
}

async fn ask(State(st): State<KnowledgeState>, raw: axum::body::Bytes) -> ApiResult {
    let kb = kb(&st)?;
    let b: AskBody = body(&raw, "question")?;
    let context = match b.context {
        None => None,
        Some(c) => Some(alert_context(&st, c)?),
    };
    let req = AskRequest {
        question: b.question.clone(),
        context,
    };
    warm(&kb.handle).await?;
    let answer = kb.handle.kb.read().ask(&req).map_err(index_error)?;
    let mut out = serde_json::to_value(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    let use_llm = b.llm.unwrap_or(true);
    if let (Some(a), true) = (&st.assistant, use_llm) {
        let passages = passages(kb, &req, &answer);
        match a.answer(&b.question, &passages).await {
            Ok(ans) => {
                out["llm"] = json!({
                    "provider": a.provider,
                    "answer": ans.text,
                    "cited": ans.cited,
                    "tool_uses": ans.tool_uses,
                    "calls": ans.calls,
                    "recorded_hits": ans.recorded_hits,
                    "usage": ans.usage,
                    "cost_usd": ans.cost_usd,
                });
            }
            Err(e) => {
                // The retrieval-only answer above stands; say why the LLM's is missing.
                out["llm"] = json!({ "provider": a.provider, "error": e.to_string() });
            }
        }
    }
    Ok(axum::Json(out).into_response())
}

/// The passages an LLM answers from: the cited sentences' sections and the nearest hits.
fn passages(kb: &Knowledge, req: &AskRequest, answer: &aiops_knowledge::Answer) -> Vec<Passage> {
    let base = kb.handle.kb.read();
    let mut out: Vec<Passage> = Vec::new();
    let mut push = |id: String, text: String| {
        if !out.iter().any(|p| p.id == id) && out.len() < 8 {
            out.push(Passage { id, text });
        }
    };
    for s in &answer.sentences {
        push(format!("{}#{}", s.entry_id, s.section), s.text.clone());
    }
    let q = SearchQuery {
        text: req.question.clone(),
        limit: 5,
        ..SearchQuery::default()
    };
    if let Ok(hits) = base.search(&q) {
        for h in hits {
            // Snippets are HTML for display: the model gets plain text.
            let text = h
                .snippet
                .replace("<mark>", "")
                .replace("</mark>", "")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            push(format!("{}#{}", h.entry_id, h.section), text);
        }
    }
    out
}

/// An ask or link context from a body or a query: a held alert by fingerprint, else the
/// given name, labels and annotations.
fn alert_context(st: &KnowledgeState, c: AskContext) -> ApiResult<AlertContext> {
    if let Some(fp) = &c.fingerprint {
        let h = st
            .alerting
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("alerting is not running in this process"))?;
        let e = h.engine.read();
        let a = e
            .alert(fp)
            .ok_or_else(|| ApiError::not_found(format!("no alert with fingerprint {fp}")))?;
        return Ok(crate::knowledge::alert_context(a, st.templates.as_deref()));
    }
    let mut labels = c.labels;
    let alertname = c
        .alertname
        .or_else(|| labels.get("alertname").cloned())
        .unwrap_or_default();
    if !alertname.is_empty() {
        labels.insert("alertname".into(), alertname.clone());
    }
    Ok(AlertContext {
        alertname,
        template_ids: labels.get("template_id").cloned().into_iter().collect(),
        labels,
        annotations: c.annotations,
        top_templates: Vec::new(),
    })
}

/// The body of `POST /api/knowledge/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    entry: EntryInput,
    /// The revision the change was made from (0: the entry must not exist). Absent: create or
    /// replace whatever is there.
    #[serde(default)]
    base_revision: Option<u64>,
}

async fn update(
    State(st): State<KnowledgeState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let kb = kb(&st)?;
    let b: UpdateBody = body(&raw, "entry")?;
    aiops_knowledge::validate(&b.entry)
        .map_err(|e| ApiError::reason(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
    let id = b.entry.id.clone();
    let cmd = Command::Put {
        entry: b.entry,
        base_revision: b.base_revision,
        by: who(caller.as_ref()),
        at_ms: crate::clock::now_ms(),
    };
    kb.submit(&cmd).await.map_err(ApiError::from)?;
    entry_answer(kb, &id)
}

fn entry_answer(kb: &Knowledge, id: &str) -> ApiResult {
    let base = kb.handle.kb.read();
    match base.entry(id) {
        Some(e) => Ok(axum::Json(json!({ "entry": e })).into_response()),
        None => Err(ApiError::reason(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no knowledge entry {id}"),
        )),
    }
}

async fn get_entry(State(st): State<KnowledgeState>, Path(id): Path<String>) -> ApiResult {
    entry_answer(kb(&st)?, &id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    base_revision: Option<u64>,
}

async fn delete_entry(
    State(st): State<KnowledgeState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
) -> ApiResult {
    let kb = kb(&st)?;
    if kb.handle.kb.read().entry(&id).is_none() {
        return Err(ApiError::reason(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no knowledge entry {id}"),
        ));
    }
    let cmd = Command::Delete {
        id,
        base_revision: q.base_revision,
        by: who(caller.as_ref()),
        at_ms: crate::clock::now_ms(),
    };
    kb.submit(&cmd).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(
    State(st): State<KnowledgeState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let kb = kb(&st)?;
    let mut drafts = false;
    for (k, v) in q {
        match (k.as_str(), v.as_str()) {
            ("drafts", "true" | "1") => drafts = true,
            ("drafts", "false" | "0") => drafts = false,
            _ => {
                return Err(bad_param(format!(
                    "unknown parameter {k:?}: expected drafts=true|false"
                )));
            }
        }
    }
    let base = kb.handle.kb.read();
    let list: Vec<Value> = base
        .entries()
        .filter(|e| drafts || !e.draft)
        .map(|e| {
            json!({"id": e.id, "title": e.title, "tags": e.tags, "owner": e.owner, "revision": e.revision,
                   "updated_at_ms": e.updated_at_ms, "updated_by": e.updated_by, "draft": e.draft,
                   "last_verified_ms": e.last_verified_ms, "helpful": e.helpful, "not_helpful": e.not_helpful,
                   "source": e.source})
        })
        .collect();
    let hash = format!("{:016x}", base.state_hash());
    Ok(
        axum::Json(json!({ "entries": list, "count": list.len(), "state_hash": hash }))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    id: String,
    helpful: bool,
}

async fn feedback(
    State(st): State<KnowledgeState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let kb = kb(&st)?;
    let b: FeedbackBody = body(&raw, "feedback")?;
    let cmd = Command::Feedback {
        id: b.id.clone(),
        helpful: b.helpful,
        by: who(caller.as_ref()),
        at_ms: crate::clock::now_ms(),
    };
    kb.submit(&cmd).await.map_err(ApiError::from)?;
    entry_answer(kb, &b.id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    id: String,
}

async fn verify(
    State(st): State<KnowledgeState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let kb = kb(&st)?;
    let b: VerifyBody = body(&raw, "verification")?;
    let cmd = Command::Verify {
        id: b.id.clone(),
        by: who(caller.as_ref()),
        at_ms: crate::clock::now_ms(),
    };
    kb.submit(&cmd).await.map_err(ApiError::from)?;
    entry_answer(kb, &b.id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    files: Vec<ImportFile>,
    /// Delete entries of the same source whose file is not in `files` (a whole folder).
    #[serde(default)]
    prune: bool,
    /// Names the imported folder: entries get the source `import:<name>/<path>`.
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    path: String,
    text: String,
}

async fn import(
    State(st): State<KnowledgeState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult {
    let kb = kb(&st)?;
    let b: ImportBody = body(&raw, "import")?;
    if b.files.len() > 5_000 {
        return Err(bad_param("at most 5000 files per import request"));
    }
    let source = b.source.unwrap_or_default();
    if source.len() > 200 || source.contains([':', '/']) {
        return Err(bad_param("source: at most 200 characters, no ':' or '/'"));
    }
    if b.prune && source.is_empty() {
        // Pruning deletes the entries of this source that are not in `files`: it must name one.
        return Err(bad_param("source is required with prune"));
    }
    let prefix = format!("import:{source}/");
    let files: Vec<(String, String)> = b.files.into_iter().map(|f| (f.path, f.text)).collect();
    let report = kb
        .import(&files, &prefix, b.prune, &who(caller.as_ref()))
        .await
        .map_err(ApiError::from)?;
    Ok(axum::Json(report).into_response())
}

/// Drafts proposed from resolved incidents that have no entry yet (newest 20); accept one by
/// posting it (edited or not) to `/api/knowledge/update`.
async fn drafts(State(st): State<KnowledgeState>) -> ApiResult {
    let kb = kb(&st)?;
    let h = st
        .alerting
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("alerting is not running in this process"))?;
    let e = h.engine.read();
    let base = kb.handle.kb.read();
    let mut resolved: Vec<&aiops_alerting::incident::Incident> = e.incidents().closed().collect();
    resolved.sort_by(|a, b| {
        b.resolved_at_ms
            .cmp(&a.resolved_at_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut out = Vec::new();
    for inc in resolved.into_iter() {
        let doc = incident_doc(&e, inc);
        let timeline: Vec<(i64, String, String)> = inc
            .timeline
            .iter()
            .map(|t| (t.at_ms, t.kind.clone(), t.text.clone()))
            .collect();
        let draft = aiops_knowledge::draft_from_incident(&doc, &timeline);
        if base.entry(&draft.id).is_some_and(|e| !e.draft) {
            continue;
        }
        out.push(json!({"incident": inc.id, "entry": draft}));
        if out.len() == 20 {
            break;
        }
    }
    Ok(axum::Json(json!({ "drafts": out })).into_response())
}

/// Runbooks linked to an alert: `fingerprint=` (an alert the engine holds), or `alertname=`
/// with `label.<name>=` and `annotation.<name>=`.
async fn link(
    State(st): State<KnowledgeState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let kb = kb(&st)?;
    let mut c = AskContext {
        alertname: None,
        labels: Default::default(),
        annotations: Default::default(),
        fingerprint: None,
    };
    for (k, v) in q {
        if k == "fingerprint" {
            c.fingerprint = Some(v);
        } else if k == "alertname" {
            c.alertname = Some(v);
        } else if let Some(l) = k.strip_prefix("label.") {
            c.labels.insert(l.to_string(), v);
        } else if let Some(a) = k.strip_prefix("annotation.") {
            c.annotations.insert(a.to_string(), v);
        } else {
            return Err(bad_param(format!(
                "unknown parameter {k:?}: expected fingerprint, alertname, label.<name>, annotation.<name>"
            )));
        }
    }
    if c.fingerprint.is_none() && c.alertname.is_none() && c.labels.is_empty() {
        return Err(bad_param(
            "fingerprint or alertname (or labels) is required",
        ));
    }
    let ctx = alert_context(&st, c)?;
    warm(&kb.handle).await?;
    let runbooks = kb.handle.kb.read().link(&ctx, 10).map_err(index_error)?;
    Ok(axum::Json(json!({ "runbooks": runbooks })).into_response())
}
