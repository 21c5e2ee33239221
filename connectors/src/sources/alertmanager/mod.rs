//! Alertmanager webhook notifications (`POST /api/alerts/webhook/alertmanager`), payload
//! version 4, normalized into alert events. The payload parsing is shared with Grafana's webhook,
//! which sends the same shape with extra fields.

mod payload;
#[cfg(test)]
mod tests;

pub use payload::{AlertmanagerDecoder, decode_alerts};
