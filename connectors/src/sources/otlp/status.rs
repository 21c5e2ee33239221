//! `google.rpc.Status`, the body of an OTLP/HTTP error answer (protobuf or JSON, like the
//! request), and the gRPC codes OTLP uses.

use super::source::Encoding;

/// `google.rpc.Status` without `details` (which OTLP receivers need not send).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What is wrong, for the sender's operator.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `google.rpc.Code` values OTLP answers use.
pub mod code {
    /// The request is malformed; do not retry it.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The caller lacks the role.
    pub const PERMISSION_DENIED: i32 = 7;
    /// Backpressure: retry later.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// A bug in aiops.
    pub const INTERNAL: i32 = 13;
    /// The log is unavailable: retry later.
    pub const UNAVAILABLE: i32 = 14;
    /// No valid token.
    pub const UNAUTHENTICATED: i32 = 16;
}

impl RpcStatus {
    /// The status as a body in `enc`: protobuf, or `{"code": …, "message": …}`.
    pub fn encode_as(&self, enc: Encoding) -> Vec<u8> {
        match enc {
            Encoding::Protobuf => prost::Message::encode_to_vec(self),
            Encoding::Json => serde_json::json!({"code": self.code, "message": self.message})
                .to_string()
                .into_bytes(),
        }
    }
}
