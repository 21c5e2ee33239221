//! The HTTP listener: hyper's HTTP/1.1 connection driver with the limits axum's `serve` lacks.
//!
//! - **Connection cap** (`http.max_connections`): a connection slot is taken *before* accepting,
//!   so at the cap new clients wait in the kernel's accept backlog instead of being refused, and
//!   are accepted as soon as any connection ends.
//! - **Header read timeout** (`http.header_read_timeout`): a client must send a complete request
//!   head within it — also an idle keep-alive connection waiting for its next request — or the
//!   connection is closed. Idle and stalled clients therefore hold a slot for at most this long,
//!   which bounds how long a flood of idle sockets can delay `/api/health`.
//! - **Body read timeout** (`http.body_read_timeout`): the whole request body must arrive within
//!   it, counted from the end of the head; a slower body (slow-loris) is cut and answered
//!   `408 Request Timeout` with `Connection: close`, whatever the route's handler made of the
//!   broken body.

use crate::config::HttpConfig;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// After the shutdown signal, connections get this long to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` with the connection limits of `cfg` until `shutdown` completes,
/// then lets open connections finish (at most [`DRAIN`]).
///
/// # Errors
/// None today (accept errors such as running out of file descriptors are logged and retried);
/// the `Result` keeps the signature of `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        cfg.body_read_timeout,
        body_deadline,
    ));
    let header_timeout = cfg.header_read_timeout;
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let (close_tx, close_rx) = watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The slot first: at the cap the next client waits in the backlog (not refused).
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Handlers that limit per client (console sign-in) read the peer address.
        let svc = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        ));
        let mut close = close_rx.clone();
        conns.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(socket), svc);
            let mut conn = std::pin::pin!(conn);
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            // Header timeouts, resets and malformed requests end up here.
                            tracing::debug!(peer = %peer, error = %e, "http connection ended");
                        }
                        break;
                    }
                    _ = close.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
            drop(permit);
        });
        // Reap finished connections so the set does not grow with every one ever served.
        while conns.try_join_next().is_some() {}
    }
    let _ = close_tx.send(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "http: connections still open after the drain period; closing them"
        );
        conns.abort_all();
    }
    Ok(())
}

/// Gives the request body a deadline; answers 408 when the body missed it.
async fn body_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let body = Body::new(DeadlineBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(limit)),
        expired: expired.clone(),
        limit,
    });
    let resp = next.run(Request::from_parts(parts, body)).await;
    if !expired.load(Ordering::Acquire) {
        return resp;
    }
    tracing::info!(path = %path, secs = limit.as_secs_f64(), "http: request body not received in time (http.body_read_timeout)");
    let mut resp = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "error": format!(
                "the request body did not arrive within {}s (http.body_read_timeout); send it faster or in smaller requests",
                limit.as_secs_f64()
            ),
            "reason": "body_timeout",
        })),
    )
        .into_response();
    // The rest of the body is unread: the connection cannot carry another request.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Why a body was cut.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?} (http.body_read_timeout)")]
struct BodyTimeout(Duration);

/// A request body that fails once its deadline passes while data is still outstanding.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    limit: Duration,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        // Data already here wins over the deadline: a complete body is never cut.
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
