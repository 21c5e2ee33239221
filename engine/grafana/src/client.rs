//! The Grafana HTTP API client: bearer token, organisation header, JSON in and out, a timeout,
//! and errors that carry Grafana's `message` but never the token.

use super::{GrafanaError, GrafanaSettings};
use reqwest::Method;
use serde_json::Value;

/// Counts what a client did: the sync reports writes so a second sync shows zero.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// GETs.
    pub reads: u64,
    /// POSTs, PUTs, PATCHes and DELETEs.
    pub writes: u64,
}

/// A client for one Grafana (its `Debug` leaves the token out).
pub struct GrafanaClient {
    http: reqwest::Client,
    base: url::Url,
    token: String,
    org_id: i64,
    /// What it did so far.
    pub requests: Requests,
}

impl std::fmt::Debug for GrafanaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaClient")
            .field("base", &self.base.as_str())
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

impl GrafanaClient {
    /// A client from `[grafana]`.
    ///
    /// # Errors
    /// [`GrafanaError::NotConfigured`] without a URL or token, or with a URL that does not parse.
    pub fn new(s: &GrafanaSettings) -> Result<GrafanaClient, GrafanaError> {
        let url = s.url.as_deref().ok_or_else(|| {
            GrafanaError::NotConfigured(
                "set grafana.url (AIOPS__GRAFANA__URL), e.g. http://127.0.0.1:3000".into(),
            )
        })?;
        let token = s.token.as_ref().ok_or_else(|| {
            GrafanaError::NotConfigured(
                "set grafana.token to a Grafana service-account token (AIOPS__GRAFANA__TOKEN)"
                    .into(),
            )
        })?;
        if token.expose().trim().is_empty() {
            return Err(GrafanaError::NotConfigured(
                "grafana.token is empty (AIOPS__GRAFANA__TOKEN)".into(),
            ));
        }
        let mut base = url::Url::parse(url)
            .map_err(|e| GrafanaError::NotConfigured(format!("grafana.url {url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(GrafanaError::NotConfigured(format!(
                "grafana.url {url:?}: expected http:// or https://"
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        // The same guard as every outbound call: a private or metadata grafana.url must be
        // listed in [outbound] allow; names are checked again after DNS and on redirects.
        s.outbound.check(base.as_str()).map_err(|e| {
            GrafanaError::NotConfigured(format!(
                "grafana.url: {e}; list Grafana's host in [outbound] allow to reach it"
            ))
        })?;
        let http = s
            .outbound
            .client(s.timeout)
            .map_err(|e| GrafanaError::Internal(format!("http client: {e}")))?;
        Ok(GrafanaClient {
            http,
            base,
            token: token.expose().to_string(),
            org_id: s.org_id,
            requests: Requests::default(),
        })
    }

    /// `GET path`; `None` on 404.
    ///
    /// # Errors
    /// [`GrafanaError`] on transport errors and other non-2xx answers.
    pub async fn get(&mut self, path: &str) -> Result<Option<Value>, GrafanaError> {
        self.requests.reads += 1;
        match self.call(Method::GET, path, None).await {
            Ok(v) => Ok(Some(v)),
            Err(GrafanaError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A write (`POST`, `PUT`, `PATCH`, `DELETE`) with a JSON body; returns Grafana's answer.
    ///
    /// # Errors
    /// [`GrafanaError`] on transport errors and non-2xx answers.
    pub async fn write(
        &mut self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, GrafanaError> {
        self.requests.writes += 1;
        self.call(method, path, Some(body)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, GrafanaError> {
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let mut url = self
            .base
            .join(p.trim_start_matches('/'))
            .map_err(|e| GrafanaError::Internal(format!("grafana path {p}: {e}")))?;
        if !q.is_empty() {
            url.set_query(Some(q));
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header("X-Grafana-Org-Id", self.org_id.to_string())
            .header("Accept", "application/json");
        if let Some(b) = body.filter(|b| !b.is_null()) {
            req = req.json(b);
        }
        let transport = |detail: String| GrafanaError::Transport {
            method: method.to_string(),
            path: p.to_string(),
            detail: detail.replace(&self.token, "***"),
        };
        let resp = req.send().await.map_err(|e| {
            transport(match aiops_connectors::outbound::refusal_reason(&e) {
                Some(reason) => format!("refused by the outbound guard: {reason}"),
                None => e.to_string(),
            })
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| transport(e.to_string()))?;
        let v: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into())
            })
        };
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let message = v["message"]
            .as_str()
            .map(str::to_string)
            .or_else(|| v.as_str().map(str::to_string))
            .unwrap_or_default()
            .replace(&self.token, "***");
        Err(GrafanaError::Status {
            method: method.to_string(),
            path: p.to_string(),
            status,
            message,
        })
    }
}
