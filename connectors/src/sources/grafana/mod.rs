//! Grafana unified-alerting webhook notifications (`POST /api/alerts/webhook/grafana`): the
//! Alertmanager payload shape plus Grafana's fields (`orgId`, `title`, `state`, `message`, and per
//! alert `values`, `valueString`, `silenceURL`, `dashboardURL`, `panelURL`), which are ignored.

use crate::error::DecodeError;
use crate::sources::alertmanager::decode_alerts;
use crate::sources::{PushDecoder, PushRequest, SourceBatch};

#[cfg(test)]
mod tests;

/// The Grafana webhook decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrafanaDecoder;

impl PushDecoder for GrafanaDecoder {
    fn name(&self) -> &'static str {
        "grafana"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        decode_alerts(body, "grafana", req)
    }
}
