//! A local stand-in for Grafana's HTTP API (Grafana cannot run here): folders, data sources,
//! dashboards, provisioned alert rules and annotations, answering and validating as Grafana's
//! documented API does (`/api/folders`, `/api/datasources`, `/api/dashboards/db`,
//! `/api/dashboards/uid/{uid}`, `/api/search`, `/api/v1/provisioning/alert-rules`,
//! `/api/annotations`). Every request that breaks the contract gets Grafana's error status and is
//! recorded as a violation, so a test asserts there were none.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the fake Grafana holds.
#[derive(Debug, Default)]
pub struct State {
    pub folders: BTreeMap<String, Value>,
    /// Data sources by uid, with the secure fields kept apart as Grafana keeps them encrypted.
    pub datasources: BTreeMap<String, Value>,
    pub secure: BTreeMap<String, Value>,
    /// uid → (dashboard JSON as stored, folder uid, version).
    pub dashboards: BTreeMap<String, (Value, String, i64)>,
    pub rules: BTreeMap<String, Value>,
    pub annotations: Vec<Value>,
    /// `METHOD path` of every write.
    pub writes: Vec<String>,
    /// Requests that broke the contract.
    pub violations: Vec<String>,
    next_id: i64,
}

/// A running fake Grafana.
pub struct FakeGrafana {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGrafana {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const TOKEN: &str = "glsa_fakegrafana_0123456789abcdef";

impl FakeGrafana {
    pub async fn start() -> FakeGrafana {
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { handle(&st, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGrafana { url, state, task }
    }

    pub fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().writes.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

fn reply(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn refuse(st: &mut State, status: StatusCode, what: String) -> Response {
    st.violations.push(what.clone());
    reply(status, json!({"message": what}))
}

fn uid_ok(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 40
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn handle(
    st: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = st.lock().unwrap();
    let path = uri.path().to_string();
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return reply(StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}));
    }
    if headers
        .get("x-grafana-org-id")
        .and_then(|v| v.to_str().ok())
        != Some("1")
    {
        return refuse(
            &mut st,
            StatusCode::BAD_REQUEST,
            format!("{path}: no X-Grafana-Org-Id"),
        );
    }
    let write = method != Method::GET;
    let body: Value = if write && method != Method::DELETE {
        if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return refuse(
                &mut st,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{method} {path}: content-type is not application/json"),
            );
        }
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    format!("{path}: bad json: {e}"),
                );
            }
        }
    } else {
        Value::Null
    };
    if write {
        st.writes.push(format!("{method} {path}"));
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), seg.as_slice()) {
        // Folders.
        ("GET", ["api", "folders", uid]) => match st.folders.get(*uid) {
            Some(f) => reply(StatusCode::OK, f.clone()),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"message": "folder not found"}),
            ),
        },
        ("POST", ["api", "folders"]) => {
            let (Some(uid), Some(title)) = (body["uid"].as_str(), body["title"].as_str()) else {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    "folder needs uid and title".into(),
                );
            };
            if !uid_ok(uid) || st.folders.contains_key(uid) {
                return refuse(
                    &mut st,
                    StatusCode::CONFLICT,
                    format!("folder uid {uid} invalid or taken"),
                );
            }
            st.next_id += 1;
            let f = json!({"id": st.next_id, "uid": uid, "title": title, "version": 1});
            st.folders.insert(uid.to_string(), f.clone());
            reply(StatusCode::OK, f)
        }
        // Data sources.
        ("GET", ["api", "datasources", "uid", uid]) => match st.datasources.get(*uid) {
            Some(d) => reply(StatusCode::OK, d.clone()),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"message": "Data source not found"}),
            ),
        },
        ("POST", ["api", "datasources"]) => {
            for k in ["name", "type", "access", "url"] {
                if !body[k].is_string() || body[k] == "" {
                    return refuse(
                        &mut st,
                        StatusCode::BAD_REQUEST,
                        format!("datasource: {k} is required"),
                    );
                }
            }
            if !matches!(body["access"].as_str(), Some("proxy" | "direct")) {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    "datasource: access must be proxy or direct".into(),
                );
            }
            if st.datasources.values().any(|d| d["name"] == body["name"]) {
                return refuse(
                    &mut st,
                    StatusCode::CONFLICT,
                    "data source with the same name already exists".into(),
                );
            }
            let uid = body["uid"].as_str().unwrap_or("generated").to_string();
            st.next_id += 1;
            let mut d = body.clone();
            let secure = d
                .as_object_mut()
                .unwrap()
                .remove("secureJsonData")
                .unwrap_or(json!({}));
            d["id"] = json!(st.next_id);
            d["orgId"] = json!(1);
            d["secureJsonFields"] = Value::Object(
                secure
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| (k.clone(), json!(true)))
                    .collect(),
            );
            st.secure.insert(uid.clone(), secure);
            st.datasources.insert(uid.clone(), d.clone());
            reply(
                StatusCode::OK,
                json!({"datasource": d, "id": st.next_id, "message": "Datasource added", "name": body["name"]}),
            )
        }
        ("PUT", ["api", "datasources", "uid", uid]) => {
            let Some(old) = st.datasources.get(*uid).cloned() else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"message": "Data source not found"}),
                );
            };
            let mut d = body.clone();
            if let Some(s) = d.as_object_mut().unwrap().remove("secureJsonData") {
                st.secure.insert(uid.to_string(), s);
            }
            d["id"] = old["id"].clone();
            d["orgId"] = json!(1);
            d["secureJsonFields"] = old["secureJsonFields"].clone();
            st.datasources.insert(uid.to_string(), d.clone());
            reply(
                StatusCode::OK,
                json!({"datasource": d, "id": old["id"], "message": "Datasource updated"}),
            )
        }
        // Dashboards.
        ("GET", ["api", "dashboards", "uid", uid]) => match st.dashboards.get(*uid) {
            Some((d, folder, version)) => {
                let mut d = d.clone();
                d["version"] = json!(version);
                reply(
                    StatusCode::OK,
                    json!({"dashboard": d, "meta": {"folderUid": folder, "slug": uid, "version": version}}),
                )
            }
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"message": "Dashboard not found"}),
            ),
        },
        ("POST", ["api", "dashboards", "db"]) => {
            let d = &body["dashboard"];
            if let Err(e) = check_dashboard(&st, d) {
                return refuse(&mut st, StatusCode::BAD_REQUEST, e);
            }
            let folder = body["folderUid"].as_str().unwrap_or("").to_string();
            if !st.folders.contains_key(&folder) {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    format!("folder {folder:?} not found"),
                );
            }
            let uid = d["uid"].as_str().unwrap().to_string();
            let existing = st.dashboards.get(&uid).cloned();
            if existing.is_some()
                && body["overwrite"] != json!(true)
                && d["version"] != json!(existing.as_ref().unwrap().2)
            {
                return refuse(
                    &mut st,
                    StatusCode::PRECONDITION_FAILED,
                    "version-mismatch".into(),
                );
            }
            st.next_id += 1;
            let id = existing
                .as_ref()
                .map(|e| e.0["id"].clone())
                .unwrap_or(json!(st.next_id));
            let version = existing.as_ref().map_or(1, |e| e.2 + 1);
            let mut stored = d.clone();
            stored["id"] = id.clone();
            stored.as_object_mut().unwrap().remove("version");
            st.dashboards.insert(uid.clone(), (stored, folder, version));
            reply(
                StatusCode::OK,
                json!({"id": id, "uid": uid, "url": format!("/d/{uid}/x"), "status": "success", "version": version, "slug": "x"}),
            )
        }
        ("DELETE", ["api", "dashboards", "uid", uid]) => match st.dashboards.remove(*uid) {
            Some((d, _, _)) => reply(
                StatusCode::OK,
                json!({"title": d["title"], "message": "Dashboard deleted", "id": d["id"]}),
            ),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"message": "Dashboard not found"}),
            ),
        },
        ("GET", ["api", "search"]) => {
            let tag = query.get("tag").cloned();
            let folder = query.get("folderUIDs").cloned();
            let hits: Vec<Value> = st
                .dashboards
                .iter()
                .filter(|(_, (d, f, _))| {
                    tag.as_ref().is_none_or(|t| d["tags"].as_array().unwrap().iter().any(|x| x == t))
                        && folder.as_ref().is_none_or(|x| x == f)
                })
                .map(|(uid, (d, f, _))| json!({"uid": uid, "title": d["title"], "type": "dash-db", "tags": d["tags"], "folderUid": f}))
                .collect();
            reply(StatusCode::OK, json!(hits))
        }
        // Provisioned alert rules.
        ("GET", ["api", "v1", "provisioning", "alert-rules"]) => reply(
            StatusCode::OK,
            json!(st.rules.values().cloned().collect::<Vec<_>>()),
        ),
        ("GET", ["api", "v1", "provisioning", "alert-rules", uid]) => match st.rules.get(*uid) {
            Some(r) => reply(StatusCode::OK, r.clone()),
            None => reply(StatusCode::NOT_FOUND, Value::Null),
        },
        ("POST", ["api", "v1", "provisioning", "alert-rules"])
        | ("PUT", ["api", "v1", "provisioning", "alert-rules", _]) => {
            if let Err(e) = check_rule(&st, &body) {
                return refuse(&mut st, StatusCode::BAD_REQUEST, e);
            }
            let uid = body["uid"].as_str().unwrap_or("").to_string();
            let exists = st.rules.contains_key(&uid);
            if method == Method::POST && exists {
                return refuse(&mut st, StatusCode::CONFLICT, format!("rule {uid} exists"));
            }
            if method == Method::PUT && (!exists || seg.last() != Some(&uid.as_str())) {
                return reply(StatusCode::NOT_FOUND, json!({"message": "rule not found"}));
            }
            st.next_id += 1;
            let mut r = body.clone();
            r["id"] = json!(st.next_id);
            r["provenance"] = json!("api");
            r["updated"] = json!("2026-12-02T10:00:00Z");
            st.rules.insert(uid, r.clone());
            reply(
                if method == Method::POST {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                r,
            )
        }
        ("DELETE", ["api", "v1", "provisioning", "alert-rules", uid]) => {
            st.rules.remove(*uid);
            (StatusCode::NO_CONTENT, "").into_response()
        }
        // Annotations.
        ("GET", ["api", "annotations"]) => {
            let tags: Vec<String> = query.get("tags").into_iter().cloned().collect();
            let limit: usize = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100);
            let found: Vec<Value> = st
                .annotations
                .iter()
                .filter(|a| {
                    tags.iter()
                        .all(|t| a["tags"].as_array().unwrap().iter().any(|x| x == t))
                })
                .take(limit)
                .cloned()
                .collect();
            reply(StatusCode::OK, json!(found))
        }
        ("POST", ["api", "annotations"]) => {
            if !body["text"].is_string() || !body["time"].is_i64() {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    "annotation needs text and time (epoch ms)".into(),
                );
            }
            if !body["tags"]
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string))
            {
                return refuse(
                    &mut st,
                    StatusCode::BAD_REQUEST,
                    "annotation tags must be strings".into(),
                );
            }
            st.next_id += 1;
            let mut a = body.clone();
            a["id"] = json!(st.next_id);
            st.annotations.push(a);
            reply(
                StatusCode::OK,
                json!({"id": st.next_id, "message": "Annotation added"}),
            )
        }
        ("PATCH", ["api", "annotations", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            let Some(a) = st.annotations.iter_mut().find(|a| a["id"] == json!(id)) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"message": "Annotation not found"}),
                );
            };
            for (k, v) in body.as_object().unwrap() {
                a[k] = v.clone();
            }
            reply(StatusCode::OK, json!({"message": "Annotation patched"}))
        }
        _ => refuse(
            &mut st,
            StatusCode::NOT_FOUND,
            format!("{method} {path}: no such endpoint"),
        ),
    }
}

/// The dashboard JSON model's rules Grafana enforces on save, and what a panel needs to render.
fn check_dashboard(st: &State, d: &Value) -> Result<(), String> {
    let uid = d["uid"].as_str().ok_or("dashboard.uid missing")?;
    if !uid_ok(uid) {
        return Err(format!(
            "dashboard uid {uid:?} is not 1-40 of [A-Za-z0-9_-]"
        ));
    }
    if d["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
        return Err("Dashboard title cannot be empty".into());
    }
    if !(d["id"].is_null()) {
        return Err(format!(
            "{uid}: a new or overwritten dashboard is sent without id"
        ));
    }
    if !d["schemaVersion"].is_i64() {
        return Err(format!("{uid}: schemaVersion must be a number"));
    }
    let mut ids = HashSet::new();
    for p in d["panels"].as_array().ok_or("panels must be a list")? {
        let id = p["id"].as_i64().ok_or("panel id must be a number")?;
        if !ids.insert(id) {
            return Err(format!("{uid}: panel id {id} twice"));
        }
        let g = &p["gridPos"];
        let (Some(x), Some(w), Some(_), Some(_)) = (
            g["x"].as_i64(),
            g["w"].as_i64(),
            g["y"].as_i64(),
            g["h"].as_i64(),
        ) else {
            return Err(format!("{uid}: panel {id} gridPos needs x, y, w, h"));
        };
        if x < 0 || w < 1 || x + w > 24 {
            return Err(format!("{uid}: panel {id} does not fit 24 columns"));
        }
        if !matches!(p["type"].as_str(), Some("timeseries" | "table" | "stat")) {
            return Err(format!("{uid}: panel {id} type {:?}", p["type"]));
        }
        let mut refs = HashSet::new();
        for t in p["targets"].as_array().ok_or("targets must be a list")? {
            let r = t["refId"].as_str().ok_or("target refId")?;
            if !refs.insert(r.to_string()) {
                return Err(format!("{uid}: panel {id} refId {r} twice"));
            }
            let ds = t["datasource"]["uid"].as_str().unwrap_or("");
            if !st.datasources.contains_key(ds) {
                return Err(format!("{uid}: panel {id} uses unknown data source {ds:?}"));
            }
            if !matches!(t["format"].as_str(), Some("time_series" | "table"))
                || t["rawSql"].as_str().is_none_or(|s| s.is_empty())
            {
                return Err(format!("{uid}: panel {id} target needs format and rawSql"));
            }
        }
    }
    Ok(())
}

/// The provisioning API's validation of an alert rule (`ProvisionedAlertRule`).
fn check_rule(st: &State, r: &Value) -> Result<(), String> {
    for k in [
        "title",
        "ruleGroup",
        "folderUID",
        "condition",
        "for",
        "noDataState",
        "execErrState",
    ] {
        if !r[k].is_string() || r[k] == "" {
            return Err(format!("alert rule: {k} is required"));
        }
    }
    if !uid_ok(r["uid"].as_str().unwrap_or("")) {
        return Err("alert rule uid invalid".into());
    }
    if !st.folders.contains_key(r["folderUID"].as_str().unwrap()) {
        return Err("folder does not exist".into());
    }
    if !matches!(
        r["noDataState"].as_str(),
        Some("Alerting" | "NoData" | "OK")
    ) {
        return Err("noDataState invalid".into());
    }
    if !matches!(
        r["execErrState"].as_str(),
        Some("Alerting" | "Error" | "OK")
    ) {
        return Err("execErrState invalid".into());
    }
    let data = r["data"].as_array().ok_or("data must be a list")?;
    if data.is_empty() {
        return Err("data is empty".into());
    }
    let mut refs = HashSet::new();
    for q in data {
        let ds = q["datasourceUid"].as_str().unwrap_or("");
        if ds != "__expr__" && !st.datasources.contains_key(ds) {
            return Err(format!("data source {ds:?} not found"));
        }
        refs.insert(q["refId"].as_str().unwrap_or("").to_string());
        if q["model"]["refId"] != q["refId"] {
            return Err("model.refId differs from refId".into());
        }
    }
    if !refs.contains(r["condition"].as_str().unwrap()) {
        return Err("condition is not a refId of data".into());
    }
    Ok(())
}
