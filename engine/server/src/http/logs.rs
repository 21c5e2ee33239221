//! Log analysis over a time range: `GET /api/logs/analysis?service=&from=&to=` (viewer), the
//! service's templates with counts and change against a baseline, new templates, rate and error
//! surges, sample lines, linked runbooks and similar incidents ([`crate::logs_analysis`]).

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::logs_analysis::{
    AnalysisError, AnalysisKnowledge, AnalysisSources, BadParam, RawParams, analyze, parse_request,
};
use aiops_runtime::templates::processor::TemplatesHandle;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// What the log analysis handler needs.
#[derive(Clone, Default)]
pub struct LogsState {
    /// The read side (queries), when it runs.
    pub read: Option<crate::read::ReadSide>,
    /// The template miner (matching sample lines, first-seen times), when it runs here.
    pub templates: Option<Arc<TemplatesHandle>>,
    /// Runbooks and similar incidents; without it both are empty arrays.
    pub knowledge: Option<Arc<dyn AnalysisKnowledge>>,
}

impl std::fmt::Debug for LogsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsState")
            .field("read", &self.read.is_some())
            .field("templates", &self.templates.is_some())
            .field("knowledge", &self.knowledge.is_some())
            .finish()
    }
}

/// Adds the log analysis route.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/logs/analysis", get(analysis))
}

fn bad_param(e: &BadParam) -> ApiError {
    ApiError::json(
        StatusCode::BAD_REQUEST,
        json!({"error": e.to_string(), "reason": "bad_parameter", "parameter": e.param}),
    )
}

/// `GET /api/logs/analysis[?service=S][&from=T][&to=T][&baseline_from=T&baseline_to=T]`.
async fn analysis(
    State(st): State<LogsState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    const KNOWN: [&str; 6] = [
        "service",
        "from",
        "to",
        "baseline_from",
        "baseline_to",
        "samples",
    ];
    let mut vals: [Option<&str>; 6] = [None; 6];
    for (k, v) in &q {
        let Some(i) = KNOWN.iter().position(|n| n == k) else {
            return Err(ApiError::json(
                StatusCode::BAD_REQUEST,
                json!({
                    "error": format!("unknown parameter {k:?}: expected service, from, to, baseline_from, baseline_to, samples"),
                    "reason": "bad_parameter",
                    "parameter": k,
                }),
            ));
        };
        if vals[i].is_some() {
            return Err(bad_param(&BadParam {
                param: KNOWN[i],
                message: "given more than once".into(),
            }));
        }
        vals[i] = Some(v.as_str());
    }
    let raw = RawParams {
        service: vals[0],
        from: vals[1],
        to: vals[2],
        baseline_from: vals[3],
        baseline_to: vals[4],
    };
    let mut req = parse_request(&raw, crate::clock::now_ms()).map_err(|e| bad_param(&e))?;
    // `samples=false`: the templates, counts and surges without the sample scan over the
    // range's lines (the console's log search only flags templates; the scan is what costs).
    req.samples = match vals[5] {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => {
            return Err(bad_param(&BadParam {
                param: "samples",
                message: format!("{v:?} is not true or false"),
            }));
        }
    };
    let rs = st.read.as_ref().ok_or_else(ApiError::no_read_side)?;
    let src = AnalysisSources::new(rs, st.templates.clone());
    let knowledge = st.knowledge.clone();
    // On the query runtime, like every other read-side query.
    let task = rs
        .runtime
        .spawn(async move { analyze(&src, &req, knowledge.as_deref()).await });
    let out = match task.await {
        Ok(r) => r,
        Err(e) => return Err(ApiError::internal(format!("log analysis task failed: {e}"))),
    };
    match out {
        Ok(a) => Ok(axum::Json(a).into_response()),
        Err(AnalysisError::Query(e)) => Err(e.into()),
        Err(AnalysisError::Closed) => Err(ApiError::unavailable("the read side has shut down")),
        Err(e @ AnalysisError::Internal(_)) => Err(ApiError::internal(e.to_string())),
    }
}
