//! Which pages exist, who may see them, and which API answers each one shows.
//!
//! A page's template receives one context (built by the server):
//!
//! ```json
//! { "lang": "en" | "zh", "theme": "auto" | "dark" | "light",
//!   "path": "/alerts", "url": "/alerts?filter=…",
//!   "q": { query parameters, strings, with the page's defaults filled in },
//!   "params": { path parameters },
//!   "user": { "name": "…", "role": "viewer" | "operator" | "admin", "kind": "user" | "token" },
//!   "csrf": "…", "now_ms": 1764900000000, "from_ms": …, "to_ms": …,
//!   "nav": [ { "path", "title_en", "title_zh", "section", "active": bool } ],
//!   "page": { "path", "title_en", "title_zh", "section", "live_ms" },
//!   "data": { "<fetch key>": <the API's JSON answer>
//!             | { "error": { "status": 403, "message": "…" } } } }
//! ```

pub mod core;
pub mod ops;

/// The least role that may open a page (as the API's roles: viewer < operator < admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MinRole {
    /// Anyone signed in.
    Viewer,
    /// Operators and admins.
    Operator,
    /// Admins only.
    Admin,
}

/// HTTP method of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (query routes such as `/api/sql` that read with a body).
    Post,
}

/// One API call a page makes to fill `data.<key>`.
#[derive(Debug, Clone, Copy)]
pub struct Fetch {
    /// Where the answer goes in the context: `data.<key>`.
    pub key: &'static str,
    /// The method.
    pub method: Method,
    /// The API path and query, e.g. `/api/incidents/{id}` or `/api/logs/search?q={q}&limit=200`.
    /// `{name}` is replaced by the URL-encoded path parameter, query parameter, or built-in
    /// (`now_ms`, `from_ms`, `to_ms`) of that name; a missing one becomes the empty string.
    pub path: &'static str,
    /// A JSON body for `POST`; `{name}` inside it is replaced by the JSON-string-escaped value
    /// (without quotes), so place it inside a string: `{"query": "{sql}"}`.
    pub body: Option<&'static str>,
    /// Only fetched when this query parameter is present and not empty (e.g. the SQL console
    /// runs a query only when one was given).
    pub when: Option<&'static str>,
}

/// One page of the console.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The route, as axum writes it: `/`, `/alerts`, `/incidents/{id}`.
    pub path: &'static str,
    /// The template (a file in `templates/`).
    pub template: &'static str,
    /// Title in English.
    pub title_en: &'static str,
    /// Title in Chinese.
    pub title_zh: &'static str,
    /// Navigation group: `overview`, `alerts`, `monitoring`, `logs`, `deploys`, `knowledge`,
    /// `automation`, `admin`.
    pub section: &'static str,
    /// Listed in the navigation (pages with a path parameter are not).
    pub nav: bool,
    /// The least role that may open it.
    pub role: MinRole,
    /// Reload the page's `main` block this often while it is open (0 = not live).
    pub live_ms: u32,
    /// Defaults of query parameters (e.g. `("range", "1h")`); `range` sets `from_ms`/`to_ms`.
    pub defaults: &'static [(&'static str, &'static str)],
    /// The API answers it shows.
    pub fetch: &'static [Fetch],
}

/// A `GET` fetch.
pub(crate) const fn get(key: &'static str, path: &'static str) -> Fetch {
    Fetch {
        key,
        method: Method::Get,
        path,
        body: None,
        when: None,
    }
}

/// A `GET` fetch made only when the query parameter `when` is given.
pub(crate) const fn get_when(key: &'static str, path: &'static str, when: &'static str) -> Fetch {
    Fetch {
        key,
        method: Method::Get,
        path,
        body: None,
        when: Some(when),
    }
}

/// A read-only `POST` (a query with a body).
pub(crate) const fn post(
    key: &'static str,
    path: &'static str,
    body: &'static str,
    when: Option<&'static str>,
) -> Fetch {
    Fetch {
        key,
        method: Method::Post,
        path,
        body: Some(body),
        when,
    }
}

/// Every page, navigation order.
pub fn all() -> impl Iterator<Item = &'static Page> {
    core::PAGES.iter().chain(ops::PAGES.iter())
}

/// Every template: `(name, source)`.
pub(crate) fn templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    core::TEMPLATES.iter().chain(ops::TEMPLATES.iter())
}
