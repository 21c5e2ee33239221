//! `grafana`: an annotation through the Grafana HTTP API.
//!
//! Config: `url` (base, may include a sub-path), `token` (service-account token, sent as
//! `Authorization: Bearer`). Params: `text`, `tags?`, `time?` and `time_end?` (epoch ms),
//! `dashboard_uid?`, `panel_id?`. Grafana has no idempotency header, so every annotation carries
//! the tag `aiops-<16 hex of the key's SHA-256>` and the provider first looks it up
//! (`GET /api/annotations?tags=…`): a retry after a crash returns the existing annotation instead
//! of adding a second. Creation is `POST /api/annotations`; Grafana answers
//! `{"id":…,"message":"Annotation added"}` → output `{id}`.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::GrafanaConfig;
pub use sink::Grafana;
