//! Decoding and encoding of remote_write bodies.

use super::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::error::DecodeError;
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::{Kind, MetricBatchBuilder};
use prost::Message;

/// Largest decompressed body accepted (snappy states the size up front, so this is checked
/// before allocating).
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// The remote_write push decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteWriteDecoder;

impl PushDecoder for RemoteWriteDecoder {
    fn name(&self) -> &'static str {
        "remote_write"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        if let Some(enc) = req.content_encoding
            && !enc.trim().eq_ignore_ascii_case("snappy")
        {
            return Err(DecodeError::UnsupportedMediaType(format!(
                "Content-Encoding {enc:?}: remote_write bodies must be snappy-compressed"
            )));
        }
        if let Some(ct) = req.content_type {
            let ct = ct.split(';').next().unwrap_or("").trim();
            if !ct.is_empty() && ct != "application/x-protobuf" && ct != "application/octet-stream"
            {
                return Err(DecodeError::UnsupportedMediaType(format!(
                    "Content-Type {ct:?}: remote_write 1.0 bodies are application/x-protobuf"
                )));
            }
        }
        let size =
            snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
        if size > MAX_DECOMPRESSED_BYTES {
            return Err(DecodeError::TooLarge {
                size,
                limit: MAX_DECOMPRESSED_BYTES,
            });
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        let wr = WriteRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf {
            message: "prometheus.WriteRequest",
            detail: e.to_string(),
        })?;
        let mut b = MetricBatchBuilder::new();
        for (i, ts) in wr.timeseries.iter().enumerate() {
            if ts.samples.is_empty() {
                continue;
            }
            let name = ts
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map(|l| l.value.as_str())
                .ok_or_else(|| DecodeError::MissingField {
                    at: format!("series {i}"),
                    field: "__name__",
                })?;
            if name.is_empty() {
                return Err(DecodeError::InvalidValue {
                    at: format!("series {i}"),
                    field: "__name__".into(),
                    message: "is empty".into(),
                });
            }
            for s in &ts.samples {
                let labels = ts
                    .labels
                    .iter()
                    .filter(|l| l.name != "__name__")
                    .map(|l| (l.name.as_str(), l.value.as_str()));
                b.push(s.timestamp, name, labels, s.value);
            }
        }
        let time_range = b.time_range();
        SourceBatch::single(Kind::Metrics, "remote_write", time_range, b.finish())
    }
}

/// One series for [`encode_write_request`]: its labels (including `__name__`) and its
/// `(timestamp ms, value)` samples.
pub type Series = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Encodes series as a remote_write body (snappy block format of a protobuf `WriteRequest`).
/// Each series is its labels (including `__name__`) and its `(timestamp ms, value)` samples.
pub fn encode_write_request(series: &[Series]) -> Vec<u8> {
    let wr = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
            })
            .collect(),
    };
    let raw = wr.encode_to_vec();
    // Compressing an in-memory buffer cannot fail except for inputs over 4 GiB.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}
