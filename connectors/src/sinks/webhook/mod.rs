//! `webhook`: POST JSON to any HTTP endpoint, optionally signed.
//!
//! Headers sent with every call:
//! - `Idempotency-Key: <key>`: stable per effect, so the receiver can drop a retried delivery;
//! - `X-Aiops-Timestamp: <unix seconds>`;
//! - `X-Aiops-Signature: sha256=<hex>` when `secret` is set, where
//!   `hex = lowercase hex of HMAC-SHA256(key = secret, message = "<timestamp>.<body bytes>")` over
//!   the exact body bytes sent. Receivers recompute it, compare in constant time, and reject
//!   timestamps older than a few minutes (replay protection).
//!
//! Config: `url`, `secret?`, `headers?` (map). Params: `body` (any JSON; default: the params
//! except `headers`), `headers?`.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::WebhookConfig;
pub use sink::{Webhook, signature};
