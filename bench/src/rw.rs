//! Adapter from the harness's series to the connectors' remote_write encoder, so the harness
//! sends exactly what the engine's decoder is tested against.

use crate::bodies::SeriesSamples;
use crate::error::BenchError;

/// Encodes one `WriteRequest` (protobuf, snappy block) for `series`.
///
/// # Errors
/// [`BenchError::Encode`] if the encoder refuses it.
pub fn encode(series: &[SeriesSamples]) -> Result<Vec<u8>, BenchError> {
    use aiops_connectors::sources::remote_write as rw;
    let _ = (series, std::any::type_name::<rw::Placeholder>());
    Err(BenchError::Encode("encoder not wired yet".into()))
}
