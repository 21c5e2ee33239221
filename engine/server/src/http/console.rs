//! The console at `/`: its pages, the sign-in flow (password, then a TOTP code or its
//! enrolment), the stylesheet and script, and the console users API.
//!
//! A page lists the API routes it shows ([`aiops_console::pages`]). Its handler calls them
//! through the API router itself, with the caller's own cookie or bearer token, so a page shows
//! exactly what the API would give that caller (roles, errors, audit are the API's), then renders
//! the page's template. Actions on a page are the page's JavaScript calling the API with the
//! session cookie and the session's CSRF token (checked by the auth middleware).
//!
//! Every answer carries a strict Content-Security-Policy: the console loads nothing but its own
//! stylesheet and script, runs no inline code, and can be framed by nobody.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use crate::console::sessions::{
    Kind, SESSION_COOKIE, Session, Sessions, Stage, random_secret, same,
};
use crate::console::users::{
    UserError, UserRecord, UserStore, UserView, hash_password, verify_password,
};
use aiops_console::pages::{Fetch, Method as FetchMethod, MinRole, Page};
use aiops_read::auth::{Role, TokenStore};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{RequestPartsExt, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// The policy of every console answer (see the module doc).
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The pre-sign-in cookie the login form's CSRF field must equal.
const LOGIN_COOKIE: &str = "aiops_login";

/// Header the live refresh sends to get only a page's `main` block.
const FRAGMENT_HEADER: &str = "x-console-fragment";

/// The console's handles (the sign-in routes and the users API).
#[derive(Clone)]
pub struct ConsoleState {
    /// The templates.
    pub console: Arc<aiops_console::Console>,
    /// Sessions, sign-in limits and counters.
    pub sessions: Arc<Sessions>,
    /// Console users.
    pub users: Arc<UserStore>,
    /// API tokens (sign-in with a token).
    pub tokens: Arc<TokenStore>,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState").finish_non_exhaustive()
    }
}

/// The pages' state: the console's handles plus the API router the pages call.
#[derive(Clone)]
struct Pages {
    st: ConsoleState,
    api: Router,
}

/// The console users API (under the API's auth middleware, admin only).
pub fn api_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/console/users", get(list_users).post(create_user))
        .route(
            "/api/console/users/{name}",
            axum::routing::delete(delete_user),
        )
        .route("/api/console/users/{name}/reset", post(reset_user))
}

/// The console's own router: pages, sign-in, assets. `api` is the finished API router the
/// pages call.
pub fn router(st: ConsoleState, api: Router) -> Router {
    let pages = Pages {
        st: st.clone(),
        api,
    };
    let mut r: Router<Pages> = Router::new();
    for page in aiops_console::pages::all() {
        r = r.route(
            page.path,
            get(move |s: State<Pages>, req: Request| render_page(s, page, req)),
        );
    }
    let r = r.with_state(pages);
    let signin: Router = Router::new()
        .route("/login", get(login_form).post(login))
        .route("/login/totp", get(totp_form).post(totp))
        .route("/login/enrol", get(enrol_form).post(enrol))
        .route("/logout", post(logout))
        .route("/console/app.css", get(css))
        .route("/console/app.js", get(js))
        .with_state(st);
    r.merge(signin)
        .layer(axum::middleware::map_response(harden))
}

/// Security headers on every console answer.
async fn harden(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn css(Query(q): Query<BTreeMap<String, String>>) -> Response {
    asset(aiops_console::assets::CSS, "text/css; charset=utf-8", &q)
}

async fn js(Query(q): Query<BTreeMap<String, String>>) -> Response {
    asset(
        aiops_console::assets::JS,
        "text/javascript; charset=utf-8",
        &q,
    )
}

fn asset(body: &'static str, ty: &'static str, q: &BTreeMap<String, String>) -> Response {
    // A versioned URL never changes content; an unversioned one is revalidated.
    let cache = if q.get("v").map(String::as_str) == Some(aiops_console::assets::version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, cache)],
        body,
    )
        .into_response()
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: u64,
    secure: bool,
) -> (header::HeaderName, String) {
    let mut c =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}");
    if secure {
        c.push_str("; Secure");
    }
    (header::SET_COOKIE, c)
}

/// Whether a request's `Origin` (when it has one) is this listener's (the `Host` it was sent to).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("\u{0}");
    !host.is_empty() && bare == host
}

/// The language: the `aiops_lang` cookie, else the browser's `Accept-Language`.
fn lang(headers: &HeaderMap) -> &'static str {
    match cookie(headers, "aiops_lang") {
        Some("zh") => return "zh",
        Some("en") => return "en",
        _ => {}
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The first language listed wins (browsers list in order of preference).
    if accept.trim_start().to_ascii_lowercase().starts_with("zh") {
        "zh"
    } else {
        "en"
    }
}

fn theme(headers: &HeaderMap) -> &'static str {
    match cookie(headers, "aiops_theme") {
        Some("dark") => "dark",
        Some("light") => "light",
        _ => "auto",
    }
}

/// The live session of a request's cookie (signed in, not half-way).
fn active_session(sessions: &Sessions, headers: &HeaderMap) -> Option<(String, Session)> {
    let c = cookie(headers, SESSION_COOKIE)?;
    let s = sessions.get(c, Instant::now())?;
    (s.stage == Stage::Active).then(|| (c.to_string(), s))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

fn allowed(have: Role, need: MinRole) -> bool {
    have.allows(match need {
        MinRole::Viewer => Role::Viewer,
        MinRole::Operator => Role::Operator,
        MinRole::Admin => Role::Admin,
    })
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// A local path to go back to after sign-in (never another site: `//evil` or `https://…`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Visible ASCII only: browsers drop tabs and newlines from URLs, so `/\t/evil` would
        // become `//evil`, and a control character would not be a valid header.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn error_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    status: StatusCode,
    message: &str,
) -> Response {
    let ctx = json!({
        "lang": lang(headers), "theme": theme(headers),
        "status": status.as_u16(), "message": message,
    });
    match st.console.render("error.html", &ctx) {
        Ok(b) => html(status, b),
        Err(e) => {
            tracing::error!(error = %e, "console error page failed to render");
            (status, message.to_string()).into_response()
        }
    }
}

/// The caller of a page: a signed-in session, or an API token in `Authorization` (scripts,
/// the bench). `None` = not signed in.
async fn page_caller(
    st: &ConsoleState,
    headers: &HeaderMap,
) -> Option<(String, Role, String, &'static str)> {
    if let Some(t) = bearer(headers) {
        let rec = st.tokens.verify_async(t).await?;
        return Some((rec.name, rec.role, String::new(), "token"));
    }
    let (c, s) = active_session(&st.sessions, headers)?;
    let kind = match &s.kind {
        Kind::User => "user",
        Kind::Token(id) => {
            // A revoked token's session ends.
            if !st.tokens.list().iter().any(|t| &t.id == id) {
                st.sessions.close(&c);
                return None;
            }
            "token"
        }
    };
    Some((s.user, s.role, s.csrf, kind))
}

/// Query parameters: the first value of each, over the page's defaults.
fn query_map(page: &Page, raw: Option<&str>) -> BTreeMap<String, String> {
    let mut q: BTreeMap<String, String> = page
        .defaults
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let pairs: Vec<(String, String)> = raw
        .and_then(|r| serde_urlencoded::from_str(r).ok())
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in pairs {
        if seen.insert(k.clone()) {
            q.insert(k, v);
        }
    }
    q
}

/// `{name}` → the URL-encoded (`json` false) or JSON-string-escaped (`json` true) value.
fn fill(template: &str, vars: &BTreeMap<String, String>, json_escape: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        // A nested brace before the closing one: the outer one is not a placeholder.
        let name = if name.contains('{') { "{" } else { name };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        out.push_str(&rest[..open]);
        if valid {
            let v = vars.get(name).map(String::as_str).unwrap_or("");
            if json_escape {
                let quoted = serde_json::to_string(v).unwrap_or_default();
                out.push_str(&quoted[1..quoted.len().saturating_sub(1).max(1)]);
            } else {
                out.push_str(&urlencode(v));
            }
            rest = &rest[open + close + 1..];
        } else {
            // Not a placeholder (a JSON object's brace): keep the brace, scan on after it.
            out.push('{');
            rest = &rest[open + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Drops the query pairs whose value is empty, so a page's optional filter left unset is no
/// filter at all (`?filter=&limit=5` → `?limit=5`).
fn drop_empty_pairs(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Calls one API route for a page with the caller's credentials; the answer as JSON, or
/// `{"error": {status, message}}`.
async fn fetch(
    api: &Router,
    f: &Fetch,
    vars: &BTreeMap<String, String>,
    headers: &HeaderMap,
    csrf: &str,
) -> Value {
    let uri = drop_empty_pairs(&fill(f.path, vars, false));
    let (method, body) = match f.method {
        FetchMethod::Get => (Method::GET, Body::empty()),
        FetchMethod::Post => (
            Method::POST,
            Body::from(f.body.map(|b| fill(b, vars, true)).unwrap_or_default()),
        ),
    };
    let mut req = match axum::http::Request::builder()
        .method(method)
        .uri(&uri)
        .body(body)
    {
        Ok(r) => r,
        Err(e) => return json!({"error": {"status": 400, "message": format!("{uri}: {e}")}}),
    };
    for h in [header::COOKIE, header::AUTHORIZATION, header::HOST] {
        if let Some(v) = headers.get(&h) {
            req.headers_mut().insert(h, v.clone());
        }
    }
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(csrf) {
        req.headers_mut().insert("x-csrf-token", v);
    }
    req.extensions_mut().insert(crate::auth::ConsoleRead);
    let resp = match api.clone().oneshot(req).await {
        Ok(r) => r,
        Err(e) => return json!({"error": {"status": 500, "message": e.to_string()}}),
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    if status.is_success() {
        parsed
    } else {
        let message = match &parsed {
            Value::Object(o) => o
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| parsed.to_string()),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        json!({"error": {"status": status.as_u16(), "message": message}})
    }
}

async fn render_page(State(p): State<Pages>, page: &'static Page, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let headers = &parts.headers.clone();
    let fragment = headers.get(FRAGMENT_HEADER).and_then(|v| v.to_str().ok()) == Some("main");
    let Some((user, role, csrf, kind)) = page_caller(&p.st, headers).await else {
        // The live refresh of a page whose session ended: 401, so the script reloads into the
        // sign-in page instead of placing it inside the old one.
        if fragment {
            return (StatusCode::UNAUTHORIZED, "session ended; sign in again").into_response();
        }
        let here = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        return redirect(&format!("/login?next={}", urlencode(&here)));
    };
    if !allowed(role, page.role) {
        return error_page(
            &p.st,
            headers,
            StatusCode::FORBIDDEN,
            &format!(
                "{} needs a role this account ({user}, {}) does not have",
                page.path,
                role_name(role)
            ),
        );
    }
    let q = query_map(page, parts.uri.query());
    let params: BTreeMap<String, String> = parts
        .extract::<Path<BTreeMap<String, String>>>()
        .await
        .map(|Path(p)| p)
        .unwrap_or_default();
    let now_ms = crate::clock::now_ms();
    let range_ms = q
        .get("range")
        .and_then(|r| humantime::parse_duration(r).ok())
        .map_or(3_600_000, |d| {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        });
    let to_ms = q
        .get("to_ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(now_ms);
    let from_ms = q
        .get("from_ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(to_ms.saturating_sub(range_ms));
    let mut vars = q.clone();
    vars.extend(params.clone());
    vars.insert("now_ms".into(), now_ms.to_string());
    vars.insert("from_ms".into(), from_ms.to_string());
    vars.insert("to_ms".into(), to_ms.to_string());
    // A page that runs a query on open (`/sql?q=`, `/knowledge?ask=`) runs it only when the
    // browser says the request comes from the console itself or was typed: a link or image on
    // another site, even a same-site one on another port (SameSite cookies do not look at
    // ports), cannot make a signed-in user run SQL or ask the LLM.
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    let wanted: Vec<&Fetch> = page
        .fetch
        .iter()
        .filter(|f| {
            f.when
                .is_none_or(|w| q.get(w).is_some_and(|v| !v.is_empty()))
        })
        .filter(|f| !(cross_site && f.method == FetchMethod::Post && f.when.is_some()))
        .collect();
    let answers = futures::future::join_all(
        wanted
            .iter()
            .map(|f| fetch(&p.api, f, &vars, headers, &csrf)),
    )
    .await;
    let data: serde_json::Map<String, Value> = wanted
        .iter()
        .zip(answers)
        .map(|(f, v)| (f.key.to_string(), v))
        .collect();
    let nav: Vec<Value> = aiops_console::pages::all()
        .filter(|n| n.nav && allowed(role, n.role))
        .map(|n| {
            json!({"path": n.path, "title_en": n.title_en, "title_zh": n.title_zh,
                   "section": n.section, "active": n.path == page.path})
        })
        .collect();
    let ctx = json!({
        "lang": lang(headers), "theme": theme(headers),
        "path": parts.uri.path(),
        "url": parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/"),
        "q": q, "params": params,
        "user": {"name": user, "role": role_name(role), "kind": kind},
        "csrf": csrf, "now_ms": now_ms, "from_ms": from_ms, "to_ms": to_ms,
        "nav": nav,
        "page": {"path": page.path, "title_en": page.title_en, "title_zh": page.title_zh,
                 "section": page.section, "live_ms": page.live_ms},
        "data": data,
        "assets_version": aiops_console::assets::version(),
    });
    let rendered = if fragment {
        p.st.console.render_block(page.template, "main", &ctx)
    } else {
        p.st.console.render(page.template, &ctx)
    };
    let body = match rendered {
        Ok(b) => b,
        Err(e) => {
            let err =
                ApiError::internal(format!("console page {} failed to render: {e}", page.path));
            return err.into_response();
        }
    };
    if !fragment {
        return html(StatusCode::OK, body);
    }
    // Live refresh: an unchanged block is 304, so an idle page costs no transfer.
    let etag = format!(
        "\"{}\"",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()))[..16]
    );
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

fn signin_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    template: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    let mut ctx = json!({"lang": lang(headers), "theme": theme(headers),
        "assets_version": aiops_console::assets::version()});
    if let (Some(c), Value::Object(e)) = (ctx.as_object_mut(), extra) {
        c.extend(e);
    }
    match st.console.render(template, &ctx) {
        Ok(b) => html(status, b),
        Err(e) => {
            ApiError::internal(format!("console {template} failed to render: {e}")).into_response()
        }
    }
}

/// `GET /login`.
async fn login_form(
    State(st): State<ConsoleState>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    if active_session(&st.sessions, &headers).is_some() {
        return redirect(&next);
    }
    login_page(&st, &headers, &next, StatusCode::OK, None)
}

fn login_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let csrf = random_secret();
    let mut resp = signin_page(
        st,
        headers,
        "login.html",
        status,
        json!({"csrf": csrf, "next": next, "error": error}),
    );
    let (k, v) = set_cookie(
        LOGIN_COOKIE,
        &csrf,
        600,
        st.sessions.settings().secure_cookies,
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(k, v);
    }
    resp
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

fn client_addr(req_ext: Option<&ConnectInfo<SocketAddr>>) -> String {
    req_ext.map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

fn with_cookie(
    mut resp: Response,
    name: &str,
    value: &str,
    max_age: u64,
    secure: bool,
) -> Response {
    let (k, v) = set_cookie(name, value, max_age, secure);
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(k, v);
    }
    resp
}

/// `POST /login`: a user name and password, or an API token.
async fn login(State(st): State<ConsoleState>, req: Request) -> Response {
    let addr = client_addr(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let bytes = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let form: LoginForm = match serde_urlencoded::from_bytes(&bytes) {
        Ok(f) => f,
        Err(e) => {
            return login_page(
                &st,
                &headers,
                "/",
                StatusCode::BAD_REQUEST,
                Some(&format!("malformed form: {e}")),
            );
        }
    };
    let next = safe_next(Some(&form.next));
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same(expected, &form.csrf) || !same_origin(&headers) {
        st.sessions.count("bad_csrf");
        return login_page(
            &st,
            &headers,
            &next,
            StatusCode::FORBIDDEN,
            Some("the form expired or came from another site; sign in again"),
        );
    }
    let who = form.username.trim().to_string();
    let by_token = !form.token.is_empty();
    // A name that cannot be a user's is refused before it takes a rate-limit slot (the
    // limiter's keys stay short and few).
    if !by_token && crate::console::users::check_name(&who).is_err() {
        st.sessions.count("bad_password");
        return login_page(
            &st,
            &headers,
            &next,
            StatusCode::UNAUTHORIZED,
            Some("wrong user name or password"),
        );
    }
    let limited = if by_token { None } else { Some(who.as_str()) };
    if let Err(wait) = st.sessions.attempt(limited, &addr, Instant::now()) {
        st.sessions.count("rate_limited");
        let mut resp = login_page(
            &st,
            &headers,
            &next,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "too many sign-in attempts; try again in {} s",
                wait.ceil().max(1.0)
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("{}", wait.ceil().max(1.0) as u64)) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let secure = st.sessions.settings().secure_cookies;
    let max_age = st.sessions.settings().session_max.as_secs();
    if by_token {
        let Some(rec) = st.tokens.verify_async(form.token.trim()).await else {
            st.sessions.count("bad_token");
            return login_page(
                &st,
                &headers,
                &next,
                StatusCode::UNAUTHORIZED,
                Some("that is not a valid API token"),
            );
        };
        st.sessions.count("ok");
        tracing::info!(token = %rec.id, name = %rec.name, "console sign-in with an API token");
        let c = st.sessions.open(
            &rec.name,
            rec.role,
            Kind::Token(rec.id),
            Stage::Active,
            Instant::now(),
        );
        return with_cookie(redirect(&next), SESSION_COOKIE, &c, max_age, secure);
    }
    let user = match st.users.get(&who).await {
        Ok(u) => u,
        Err(e) => {
            // The store's path is for the operator's log, not for whoever is signing in.
            tracing::error!(error = %e, "console sign-in: the user store failed");
            return error_page(
                &st,
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable: the console user store cannot be read (see the engine's log)",
            );
        }
    };
    // Without the user, a hash is still checked, so the answer's timing does not tell which
    // names exist.
    let phc = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password.clone());
    let ok = slow_hash(move || verify_password(&phc, &form.password))
        .await
        .unwrap_or(false)
        && user.is_some();
    let Some(u) = user.filter(|_| ok) else {
        st.sessions.count("bad_password");
        return login_page(
            &st,
            &headers,
            &next,
            StatusCode::UNAUTHORIZED,
            Some("wrong user name or password"),
        );
    };
    let (stage, to) = match &u.totp {
        Some(_) => (Stage::Totp, "/login/totp"),
        None => {
            let mut secret = vec![0u8; 20];
            rand::fill(&mut secret[..]);
            (Stage::Enrol(secret), "/login/enrol")
        }
    };
    let c = st
        .sessions
        .open(&u.name, u.role, Kind::User, stage, Instant::now());
    with_cookie(redirect(to), SESSION_COOKIE, &c, max_age, secure)
}

/// Runs an Argon2 computation (tens of ms of CPU and 19 MiB) off the async workers, at most
/// two at a time: a burst of sign-ins queues here instead of stalling ingest and the API.
/// `None` only if the blocking task could not run (the runtime is shutting down).
async fn slow_hash<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = PERMITS.acquire().await.ok()?;
    tokio::task::spawn_blocking(f).await.ok()
}

/// [`hash_password`] through [`slow_hash`], as the API's error.
async fn hash_off_workers(password: String) -> Result<String, ApiError> {
    slow_hash(move || hash_password(&password))
        .await
        .ok_or_else(|| ApiError::unavailable("the engine is shutting down"))?
        .map_err(user_error)
}

/// An Argon2 hash of nothing anyone knows, checked when the user does not exist.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

fn pending(st: &ConsoleState, headers: &HeaderMap) -> Option<(String, Session)> {
    let c = cookie(headers, SESSION_COOKIE)?;
    let s = st.sessions.get(c, Instant::now())?;
    (s.stage != Stage::Active && s.kind == Kind::User).then(|| (c.to_string(), s))
}

/// `GET /login/totp`.
async fn totp_form(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    match pending(&st, &headers) {
        Some((_, s)) if s.stage == Stage::Totp => signin_page(
            &st,
            &headers,
            "totp.html",
            StatusCode::OK,
            json!({"csrf": s.csrf, "error": null}),
        ),
        _ => redirect("/login"),
    }
}

/// `GET /login/enrol`.
async fn enrol_form(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    match pending(&st, &headers) {
        Some((_, s)) => match &s.stage {
            Stage::Enrol(secret) => enrol_page(&st, &headers, &s, secret, StatusCode::OK, None),
            _ => redirect("/login/totp"),
        },
        None => redirect("/login"),
    }
}

fn enrol_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    s: &Session,
    secret: &[u8],
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let issuer = &st.sessions.settings().totp_issuer;
    let uri = aiops_console::totp::otpauth_uri(issuer, &s.user, secret);
    let qr = aiops_console::qr::svg(&uri).unwrap_or_default();
    signin_page(
        st,
        headers,
        "enrol.html",
        status,
        json!({
            "csrf": s.csrf, "error": error, "qr_svg": qr,
            "secret": aiops_console::totp::base32_encode(secret),
            "issuer": issuer, "account": s.user,
        }),
    )
}

/// The TOTP forms' fields.
#[derive(Debug, Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

fn unix_secs() -> u64 {
    u64::try_from(crate::clock::now_ms() / 1000).unwrap_or(0)
}

async fn code_form(req: Request) -> (HeaderMap, String, CodeForm) {
    let addr = client_addr(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 10)
        .await
        .unwrap_or_default();
    let form = serde_urlencoded::from_bytes(&bytes).unwrap_or(CodeForm {
        code: String::new(),
        csrf: String::new(),
    });
    (parts.headers, addr, form)
}

/// `POST /login/totp`: the second factor of an enrolled user.
async fn totp(State(st): State<ConsoleState>, req: Request) -> Response {
    let (headers, addr, form) = code_form(req).await;
    let Some((cookie_v, s)) = pending(&st, &headers).filter(|(_, s)| s.stage == Stage::Totp) else {
        return redirect("/login");
    };
    let again = |status, msg: &str| {
        signin_page(
            &st,
            &headers,
            "totp.html",
            status,
            json!({"csrf": s.csrf, "error": msg}),
        )
    };
    if !same(&s.csrf, &form.csrf) || !same_origin(&headers) {
        st.sessions.count("bad_csrf");
        return again(
            StatusCode::FORBIDDEN,
            "the form expired or came from another site",
        );
    }
    if st
        .sessions
        .attempt(Some(&s.user), &addr, Instant::now())
        .is_err()
    {
        st.sessions.count("rate_limited");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts; wait a minute",
        );
    }
    let now = unix_secs();
    let mut accepted = false;
    let result = st
        .users
        .modify(&s.user, |u| {
            // The closure may run again after a concurrent change (cluster bucket): decide
            // afresh each time.
            accepted = false;
            let step = u
                .totp
                .as_deref()
                .and_then(aiops_console::totp::base32_decode)
                .and_then(|secret| aiops_console::totp::verify(&secret, &form.code, now));
            match step {
                // A code is good once: a replayed one (same or older step) is refused.
                Some(step) if step > u.totp_step => {
                    u.totp_step = step;
                    u.failed_totp = 0;
                    u.last_login_ms = Some(crate::clock::now_ms());
                    accepted = true;
                }
                _ => u.failed_totp += 1,
            }
            true
        })
        .await;
    match result {
        Ok(_) if accepted => finish(&st, &cookie_v),
        Ok(_) => {
            st.sessions.count("bad_totp");
            tracing::info!(user = %s.user, "console sign-in: wrong TOTP code");
            again(StatusCode::UNAUTHORIZED, "wrong code")
        }
        Err(e) => error_page(
            &st,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        ),
    }
}

/// Signed in: a new session id, the cookie, the overview.
fn finish(st: &ConsoleState, cookie_v: &str) -> Response {
    let Some(next) = st.sessions.advance(cookie_v, Stage::Active, Instant::now()) else {
        return redirect("/login");
    };
    st.sessions.count("ok");
    let s = st.sessions.settings();
    with_cookie(
        redirect("/"),
        SESSION_COOKIE,
        &next,
        s.session_max.as_secs(),
        s.secure_cookies,
    )
}

/// `POST /login/enrol`: the first code from the app proves the secret was taken.
async fn enrol(State(st): State<ConsoleState>, req: Request) -> Response {
    let (headers, addr, form) = code_form(req).await;
    let Some((cookie_v, s)) = pending(&st, &headers) else {
        return redirect("/login");
    };
    let Stage::Enrol(secret) = s.stage.clone() else {
        return redirect("/login/totp");
    };
    if !same(&s.csrf, &form.csrf) || !same_origin(&headers) {
        st.sessions.count("bad_csrf");
        return enrol_page(
            &st,
            &headers,
            &s,
            &secret,
            StatusCode::FORBIDDEN,
            Some("the form expired or came from another site"),
        );
    }
    if st
        .sessions
        .attempt(Some(&s.user), &addr, Instant::now())
        .is_err()
    {
        st.sessions.count("rate_limited");
        return enrol_page(
            &st,
            &headers,
            &s,
            &secret,
            StatusCode::TOO_MANY_REQUESTS,
            Some("too many attempts; wait a minute"),
        );
    }
    let Some(step) = aiops_console::totp::verify(&secret, &form.code, unix_secs()) else {
        st.sessions.count("bad_totp");
        let _ = st
            .users
            .modify(&s.user, |u| {
                u.failed_totp += 1;
                true
            })
            .await;
        return enrol_page(
            &st,
            &headers,
            &s,
            &secret,
            StatusCode::UNAUTHORIZED,
            Some("wrong code: check the app's clock and type the current code"),
        );
    };
    let encoded = aiops_console::totp::base32_encode(&secret);
    let mut enrolled_meanwhile = false;
    let result = st
        .users
        .modify(&s.user, |u| {
            // Someone enrolled this user since the password was given (the user on another
            // sign-in): an older half-finished sign-in must not replace that secret.
            enrolled_meanwhile = u.totp.is_some();
            if enrolled_meanwhile {
                return false;
            }
            u.totp = Some(encoded.clone());
            u.totp_step = step;
            u.failed_totp = 0;
            u.last_login_ms = Some(crate::clock::now_ms());
            true
        })
        .await;
    match result {
        Ok(_) if enrolled_meanwhile => {
            st.sessions.close(&cookie_v);
            redirect("/login")
        }
        Ok(_) => {
            tracing::info!(user = %s.user, "console user enrolled a TOTP second factor");
            finish(&st, &cookie_v)
        }
        Err(e) => error_page(
            &st,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        ),
    }
}

/// `POST /logout`.
async fn logout(State(st): State<ConsoleState>, req: Request) -> Response {
    let (headers, _, form) = code_form(req).await;
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Some(s) = st.sessions.get(c, Instant::now())
    {
        if !same(&s.csrf, &form.csrf) || !same_origin(&headers) {
            st.sessions.count("bad_csrf");
            return error_page(
                &st,
                &headers,
                StatusCode::FORBIDDEN,
                "sign-out refused: the form came from another site",
            );
        }
        st.sessions.close(c);
    }
    let s = st.sessions.settings();
    with_cookie(redirect("/login"), SESSION_COOKIE, "", 0, s.secure_cookies)
}

/// The console's handles, or 404 when `[console] enabled = false`.
fn enabled(st: Option<ConsoleState>) -> Result<ConsoleState, ApiError> {
    st.ok_or_else(|| {
        ApiError::reason(
            StatusCode::NOT_FOUND,
            "console_disabled",
            "the console is disabled ([console] enabled = false)",
        )
    })
}

fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::Invalid(m) => ApiError::reason(StatusCode::BAD_REQUEST, "invalid", m),
        UserError::Exists(_) => ApiError::reason(StatusCode::CONFLICT, "exists", e.to_string()),
        UserError::NotFound(_) => {
            ApiError::reason(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        UserError::Store { .. } => {
            ApiError::reason(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string())
        }
    }
}

/// `GET /api/console/users`.
async fn list_users(State(st): State<Option<ConsoleState>>) -> ApiResult {
    let st = enabled(st)?;
    let users = st.users.list().await.map_err(user_error)?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(axum::Json(json!({"users": views})).into_response())
}

/// `POST /api/console/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: Role,
    password: String,
}

/// `POST /api/console/users`.
async fn create_user(
    State(st): State<Option<ConsoleState>>,
    caller: Option<axum::Extension<Caller>>,
    body: axum::body::Bytes,
) -> ApiResult {
    let st = enabled(st)?;
    let n: NewUser = super::knowledge::body(&body, "console user")?;
    let rec = UserRecord {
        password: hash_off_workers(n.password.clone()).await?,
        name: n.name,
        role: n.role,
        totp: None,
        totp_step: 0,
        created_ms: crate::clock::now_ms(),
        last_login_ms: None,
        failed_totp: 0,
    };
    let (name, role) = (rec.name.clone(), rec.role);
    st.users.create(rec).await.map_err(user_error)?;
    tracing::info!(user = %name, role = role.as_str(), by = %caller.map(|c| c.0.name.clone()).unwrap_or_default(), "console user created");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"name": name, "role": role})),
    )
        .into_response())
}

/// `DELETE /api/console/users/{name}`.
async fn delete_user(
    State(st): State<Option<ConsoleState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let st = enabled(st)?;
    if !st.users.delete(&name).await.map_err(user_error)? {
        return Err(user_error(UserError::NotFound(name)));
    }
    st.sessions.close_user(&name);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/console/users/{name}/reset` body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reset {
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/console/users/{name}/reset`: a new TOTP at the next sign-in (and a new password).
async fn reset_user(
    State(st): State<Option<ConsoleState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let st = enabled(st)?;
    let r: Reset = if body.is_empty() {
        Reset::default()
    } else {
        super::knowledge::body(&body, "reset")?
    };
    let hash = match &r.password {
        Some(p) => Some(hash_off_workers(p.clone()).await?),
        None => None,
    };
    let u = st
        .users
        .modify(&name, |u| {
            u.totp = None;
            u.totp_step = 0;
            u.failed_totp = 0;
            if let Some(h) = &hash {
                u.password = h.clone();
            }
            true
        })
        .await
        .map_err(user_error)?;
    st.sessions.close_user(&name);
    Ok(axum::Json(json!({"name": u.name, "enrolled": false})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_encoded_for_their_place() {
        let vars: BTreeMap<String, String> = [("q", "a&b=\"c\""), ("id", "x/y")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        assert_eq!(
            fill("/api/x/{id}?q={q}&m={missing}", &vars, false),
            "/api/x/x%2Fy?q=a%26b%3D%22c%22&m="
        );
        assert_eq!(
            fill(r#"{"query": "{q}"}"#, &vars, true),
            r#"{"query": "a&b=\"c\""}"#
        );
        // Braces that are not a placeholder stay.
        assert_eq!(fill("{ }", &vars, true), "{ }");
        assert_eq!(
            drop_empty_pairs(&fill(
                "/a?f={missing}&label.{missing}={missing}&id={id}",
                &vars,
                false
            )),
            "/a?id=x%2Fy"
        );
        assert_eq!(drop_empty_pairs("/a?f="), "/a");
    }

    #[test]
    fn next_is_always_local() {
        assert_eq!(safe_next(Some("/alerts?x=1")), "/alerts?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "/\t/evil.example",
            "/\n",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
    }

    #[test]
    fn origins_must_be_the_listener() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9464"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9464"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; aiops_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, "aiops_session"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
