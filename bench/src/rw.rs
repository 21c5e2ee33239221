//! Adapter from the harness's series to the connectors' remote_write encoder, so the harness
//! sends exactly what the engine's decoder is tested against.

use crate::bodies::SeriesSamples;
use crate::error::BenchError;

/// Encodes one `WriteRequest` (protobuf, snappy block) for `series`.
///
/// # Errors
/// [`BenchError::Encode`] if the encoder produced nothing for a non-empty input.
pub fn encode(series: &[SeriesSamples]) -> Result<Vec<u8>, BenchError> {
    use aiops_connectors::sources::remote_write as rw;
    let input: Vec<rw::Series> = series
        .iter()
        .map(|s| (s.labels.clone(), s.samples.clone()))
        .collect();
    let body = rw::encode_write_request(&input);
    if body.is_empty() && !series.is_empty() {
        return Err(BenchError::Encode(
            "remote_write encoder produced an empty body".into(),
        ));
    }
    Ok(body)
}
