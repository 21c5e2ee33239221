//! Decoding and encoding of remote_write bodies.
//!
//! The body is decoded one series at a time (a hand-rolled walk over the protobuf fields), not
//! into a whole `WriteRequest`: an empty `TimeSeries` is two bytes on the wire but a 48-byte
//! struct in memory, so decoding a bomb of millions of them at once took gigabytes. Series,
//! labels per series and the decompressed size are bounded before anything is allocated for
//! them.

use super::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::error::DecodeError;
use crate::sources::validate::{Accepts, LabelRules, check_media};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::{Kind, MetricBatchBuilder};
use prost::Message;

/// The default of `ingest.max_decoded_bytes` (the engine's default is derived from
/// `http.max_body_bytes`); snappy states the size up front, so it is checked before allocating.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// What remote_write 1.0 senders send.
const ACCEPTS: Accepts = Accepts {
    types: &["application/x-protobuf", "application/octet-stream"],
    encodings: &["snappy"],
};

/// The remote_write push decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteWriteDecoder;

/// Where a problem is (`series 3`, `series 3 sample 0`), formatted only for an error.
#[derive(Debug, Clone, Copy)]
struct At {
    series: usize,
    sample: Option<usize>,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "series {}", self.series)?;
        if let Some(j) = self.sample {
            write!(f, " sample {j}")?;
        }
        Ok(())
    }
}

/// One protobuf field value.
enum Field<'a> {
    Varint,
    Fixed,
    Bytes(&'a [u8]),
}

fn proto_err(detail: impl Into<String>) -> DecodeError {
    DecodeError::Protobuf {
        message: "prometheus.WriteRequest",
        detail: detail.into(),
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf
            .split_first()
            .ok_or_else(|| proto_err("truncated varint"))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(proto_err("varint longer than 10 bytes"))
}

/// The next field of a message: its tag and value; `None` at the end.
fn next_field<'a>(buf: &mut &'a [u8]) -> Result<Option<(u64, Field<'a>)>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let key = varint(buf)?;
    let (tag, wire) = (key >> 3, key & 7);
    if tag == 0 {
        return Err(proto_err("field number 0"));
    }
    let take = |buf: &mut &'a [u8], n: usize| -> Result<&'a [u8], DecodeError> {
        if buf.len() < n {
            return Err(proto_err(format!(
                "field {tag} runs past the end of its message"
            )));
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Ok(head)
    };
    let f = match wire {
        0 => {
            varint(buf)?;
            Field::Varint
        }
        1 => {
            take(buf, 8)?;
            Field::Fixed
        }
        2 => {
            let n = usize::try_from(varint(buf)?).map_err(|_| proto_err("length overflow"))?;
            Field::Bytes(take(buf, n)?)
        }
        5 => {
            take(buf, 4)?;
            Field::Fixed
        }
        w => {
            return Err(proto_err(format!(
                "field {tag} has unsupported wire type {w}"
            )));
        }
    };
    Ok(Some((tag, f)))
}

/// One series' labels (at most `max_labels + 1`, counting `__name__`) and samples.
fn decode_series(
    i: usize,
    mut buf: &[u8],
    max_labels: usize,
) -> Result<(Vec<Label>, Vec<Sample>), DecodeError> {
    let (mut labels, mut samples) = (Vec::new(), Vec::new());
    while let Some((tag, f)) = next_field(&mut buf)? {
        match (tag, f) {
            (1, Field::Bytes(b)) => {
                if labels.len() > max_labels {
                    return Err(DecodeError::InvalidLabel {
                        at: format!("series {i}"),
                        field: "labels".into(),
                        message: format!("has more than {max_labels} labels (ingest.max_labels)"),
                    });
                }
                labels.push(Label::decode(b).map_err(|e| proto_err(e.to_string()))?);
            }
            (2, Field::Bytes(b)) => {
                samples.push(Sample::decode(b).map_err(|e| proto_err(e.to_string()))?);
            }
            (1 | 2, _) => {
                return Err(proto_err(format!(
                    "series {i}: field {tag} is not a message"
                )));
            }
            // Exemplars, native histograms: not read.
            _ => {}
        }
    }
    Ok((labels, samples))
}

impl PushDecoder for RemoteWriteDecoder {
    fn name(&self) -> &'static str {
        "remote_write"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        check_media(req, ACCEPTS)?;
        if let Some(ct) = req.content_type
            && let Some(proto) = ct.split(';').skip(1).find_map(|p| {
                p.split_once('=')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
                    .map(|(_, v)| v.trim().trim_matches('"'))
            })
            && proto != "prometheus.WriteRequest"
        {
            return Err(DecodeError::UnsupportedMediaType(format!(
                "Content-Type proto={proto:?} is not accepted (accepted: prometheus.WriteRequest, \
                 remote_write 1.0; set protobuf_message: prometheus.WriteRequest in Prometheus)"
            )));
        }
        let limits = &req.limits;
        let size =
            snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
        if size > limits.max_decoded_bytes {
            return Err(DecodeError::TooLarge {
                size,
                compressed: body.len(),
                ratio: size / body.len().max(1),
                limit: limits.max_decoded_bytes,
            });
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        let mut b = MetricBatchBuilder::new();
        let mut buf = raw.as_slice();
        let mut i = 0usize;
        while let Some((tag, f)) = next_field(&mut buf)? {
            let series = match (tag, f) {
                (1, Field::Bytes(s)) => s,
                (1, _) => return Err(proto_err("field 1 (timeseries) is not a message")),
                // Metadata (field 3) and anything newer: not read.
                _ => continue,
            };
            if i >= limits.max_series {
                return Err(DecodeError::TooMany {
                    at: "body".into(),
                    what: "series",
                    limit: limits.max_series,
                    setting: "ingest.max_series_per_request",
                });
            }
            let at = At {
                series: i,
                sample: None,
            };
            i += 1;
            let (labels, samples) = decode_series(i - 1, series, limits.max_labels)?;
            if samples.is_empty() {
                continue;
            }
            let (name_idx, name) = labels
                .iter()
                .enumerate()
                .find(|(_, l)| l.name == "__name__")
                .map(|(k, l)| (k, l.value.as_str()))
                .ok_or_else(|| DecodeError::MissingField {
                    at: at.to_string(),
                    field: "__name__",
                })?;
            limits.check_metric_name(at, "__name__", name)?;
            // The first `__name__` is the metric name; a second one is a (reserved) label.
            let others = labels
                .iter()
                .enumerate()
                .filter(move |(k, _)| *k != name_idx)
                .map(|(_, l)| (l.name.as_str(), l.value.as_str()));
            // Prometheus 3 sends UTF-8 label names (`k8s.pod.name` from OTLP-translated or
            // UTF-8 scrape targets); refusing them would lose the whole request, which a sender
            // does not retry. Empty, reserved, repeated and control-character names are refused.
            limits.check_labels(at, "labels", LabelRules::Relaxed, others.clone())?;
            for (j, s) in samples.iter().enumerate() {
                let at = At {
                    sample: Some(j),
                    ..at
                };
                limits.check_time(at, "timestamp", s.timestamp, req.now_ms)?;
            }
            for s in &samples {
                b.push(s.timestamp, name, others.clone(), s.value);
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
