//! Test support: a local HTTP server on 127.0.0.1:0 that records requests and answers like the
//! service under test, and provider contexts that allow it.

use crate::sinks::registry::ProviderContext;
use crate::sinks::{OutboundPolicy, Provider, build_provider};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Answer = Arc<dyn Fn(&Recorded) -> Response + Send + Sync>;

/// The running server; dropped with the test runtime.
pub(crate) struct MockServer {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    /// Starts a server answering every request with `answer`.
    pub(crate) async fn start<F>(answer: F) -> MockServer
    where
        F: Fn(&Recorded) -> Response + Send + Sync + 'static,
    {
        let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let answer: Answer = Arc::new(answer);
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen2.clone();
                let answer = answer.clone();
                async move {
                    let rec = Recorded {
                        method,
                        path: uri.path().to_owned(),
                        query: uri.query().map(str::to_owned),
                        headers,
                        body,
                    };
                    let resp = answer(&rec);
                    seen.lock().unwrap().push(rec);
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockServer { addr, seen }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The requests seen so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

/// A response with a status, content type and body.
pub(crate) fn reply(status: u16, content_type: &str, body: impl Into<String>) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", content_type.to_owned())],
        body.into(),
    )
        .into_response()
}

/// A JSON response.
pub(crate) fn reply_json(status: u16, body: serde_json::Value) -> Response {
    reply(status, "application/json", body.to_string())
}

/// A context allowing 127.0.0.1 on any port, with a short timeout.
pub(crate) fn local_ctx() -> ProviderContext {
    ProviderContext {
        outbound: OutboundPolicy::allowing(["127.0.0.1"]),
        timeout: Duration::from_secs(5),
    }
}

/// Builds a provider from a JSON config with [`local_ctx`].
pub(crate) fn build_local(config: serde_json::Value) -> Arc<dyn Provider> {
    build_provider("test", &config, &local_ctx()).unwrap()
}

/// A JSON object as params.
pub(crate) fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().unwrap().clone()
}

/// Asserts that neither the provider's Debug nor `text` contain any of `secrets`.
pub(crate) fn assert_no_secrets(provider: &dyn Provider, texts: &[String], secrets: &[&str]) {
    let debug = format!("{provider:?}");
    for s in secrets {
        assert!(!debug.contains(s), "Debug leaks {s:?}: {debug}");
        for t in texts {
            assert!(!t.contains(s), "text leaks {s:?}: {t}");
        }
    }
}
