//! Errors of sources: what was wrong with a pushed body, or why a pull source failed.

/// Why a pushed request body was rejected. The whole body is rejected; nothing of it is kept.
/// Messages name the line (NDJSON) or element (JSON array), the field and the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The body is not valid snappy (block format).
    #[error("body is not valid snappy (block format) compressed data: {0}")]
    Snappy(String),
    /// The body is labelled `Content-Encoding: gzip` but is not valid gzip.
    #[error("body is not valid gzip data: {0}")]
    Gzip(String),
    /// The decompressed body is not a valid protobuf message of the expected type.
    #[error("body is not a valid protobuf {message}: {detail}")]
    Protobuf {
        /// The expected message type.
        message: &'static str,
        /// What prost reported.
        detail: String,
    },
    /// The body is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line (for NDJSON, the record's line).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser reported.
        message: String,
    },
    /// A required field is absent.
    #[error("{at}: missing required field \"{field}\"")]
    MissingField {
        /// Where: `line 3`, `element 2`, `series 5`, `alert 1`.
        at: String,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{at}: field \"{field}\" must be {expected}, got {got}")]
    WrongType {
        /// Where.
        at: String,
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        got: &'static str,
    },
    /// A field has the right type but a value that cannot be used.
    #[error("{at}: field \"{field}\" {message}")]
    InvalidValue {
        /// Where.
        at: String,
        /// The field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A field this endpoint does not know (a typo would otherwise lose data silently).
    #[error("{at}: unknown field \"{field}\" (allowed: {allowed})")]
    UnknownField {
        /// Where.
        at: String,
        /// The field.
        field: String,
        /// The allowed fields.
        allowed: &'static str,
    },
    /// The content type or encoding is not one this endpoint reads.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The body holds no events.
    #[error("body is empty: no events to ingest")]
    Empty,
    /// A bug in the decoder: it produced a batch that does not fit its schema. Not the sender's fault.
    #[error("internal error building the batch (a bug in aiops): {0}")]
    Internal(String),
    /// The decompressed body would exceed the limit (a compression bomb or a misconfigured
    /// sender); refused before anything is decompressed.
    #[error(
        "decompressed body of {size} bytes ({ratio}:1 from the {compressed}-byte body) exceeds \
         the limit of {limit} bytes (ingest.max_decoded_bytes); send smaller requests"
    )]
    TooLarge {
        /// Declared decompressed size.
        size: usize,
        /// The size of the body as received.
        compressed: usize,
        /// `size / compressed`, rounded down: the compression ratio.
        ratio: usize,
        /// The limit.
        limit: usize,
    },
    /// A repeated element (series, labels) exceeds its per-request limit; refused while
    /// decoding, before more of them are allocated.
    #[error("{at}: more than {limit} {what} in one request ({setting}); send smaller requests")]
    TooMany {
        /// Where (`body`).
        at: String,
        /// What was counted (`series`).
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The setting that raises it.
        setting: &'static str,
    },
    /// An event time outside the accepted window around the ingest time.
    #[error("{at}: field \"{field}\" {message}")]
    TimeOutOfWindow {
        /// Where: `line 3`, `series 2 sample 0`, `alert 1`.
        at: String,
        /// The field.
        field: String,
        /// The time and the bound it passes.
        message: String,
    },
    /// A label name or value no query could use, or too many labels.
    #[error("{at}: field \"{field}\" {message}")]
    InvalidLabel {
        /// Where.
        at: String,
        /// `labels`, or `labels.<name>` when one label is at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl DecodeError {
    /// A short, bounded label for the rejection metric.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Snappy(_) => "bad_snappy",
            DecodeError::Gzip(_) => "bad_gzip",
            DecodeError::Protobuf { .. } => "bad_protobuf",
            DecodeError::Json { .. } => "bad_json",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::UnknownField { .. } => "unknown_field",
            DecodeError::UnsupportedMediaType(_) => "unsupported_media_type",
            DecodeError::Empty => "empty",
            DecodeError::TooLarge { .. } | DecodeError::TooMany { .. } => "too_large",
            DecodeError::TimeOutOfWindow { .. } => "time_out_of_window",
            DecodeError::InvalidLabel { .. } => "invalid_label",
            DecodeError::Internal(_) => "internal",
        }
    }

    /// The error with every text taken from the request bounded and its control characters
    /// escaped: a hostile field name or value (100 KB, or with `\n` to forge log lines) is
    /// never echoed whole into an answer or the log. Names keep 128 characters, messages 512.
    pub fn bounded(self) -> DecodeError {
        const NAME: usize = 128;
        const TEXT: usize = 512;
        match self {
            DecodeError::Snappy(m) => DecodeError::Snappy(bound_text(&m, TEXT)),
            DecodeError::Gzip(m) => DecodeError::Gzip(bound_text(&m, TEXT)),
            DecodeError::Protobuf { message, detail } => DecodeError::Protobuf {
                message,
                detail: bound_text(&detail, TEXT),
            },
            DecodeError::Json {
                line,
                column,
                message,
            } => DecodeError::Json {
                line,
                column,
                message: bound_text(&message, TEXT),
            },
            DecodeError::MissingField { at, field } => DecodeError::MissingField {
                at: bound_text(&at, NAME),
                field,
            },
            DecodeError::WrongType {
                at,
                field,
                expected,
                got,
            } => DecodeError::WrongType {
                at: bound_text(&at, NAME),
                field: bound_text(&field, NAME),
                expected,
                got,
            },
            DecodeError::InvalidValue { at, field, message } => DecodeError::InvalidValue {
                at: bound_text(&at, NAME),
                field: bound_text(&field, NAME),
                message: bound_text(&message, TEXT),
            },
            DecodeError::UnknownField { at, field, allowed } => DecodeError::UnknownField {
                at: bound_text(&at, NAME),
                field: bound_text(&field, NAME),
                allowed,
            },
            DecodeError::UnsupportedMediaType(m) => {
                DecodeError::UnsupportedMediaType(bound_text(&m, TEXT))
            }
            DecodeError::Internal(m) => DecodeError::Internal(bound_text(&m, TEXT)),
            DecodeError::TooMany {
                at,
                what,
                limit,
                setting,
            } => DecodeError::TooMany {
                at: bound_text(&at, NAME),
                what,
                limit,
                setting,
            },
            DecodeError::TimeOutOfWindow { at, field, message } => DecodeError::TimeOutOfWindow {
                at: bound_text(&at, NAME),
                field: bound_text(&field, NAME),
                message: bound_text(&message, TEXT),
            },
            DecodeError::InvalidLabel { at, field, message } => DecodeError::InvalidLabel {
                at: bound_text(&at, NAME),
                field: bound_text(&field, NAME),
                message: bound_text(&message, TEXT),
            },
            e @ (DecodeError::Empty | DecodeError::TooLarge { .. }) => e,
        }
    }

    /// A JSON syntax or shape error from serde_json, on a line counted from `line_offset`.
    pub fn json(e: &serde_json::Error, line_offset: usize) -> DecodeError {
        let message = e.to_string();
        DecodeError::Json {
            line: e.line() + line_offset,
            column: e.column(),
            message: message.split(" at line").next().unwrap_or("").to_string(),
        }
    }
}

/// At most `max` characters of `s`, control characters escaped (`\n`, `\u{0}`), and when cut
/// the original size: text from a request that goes into an error message.
pub fn bound_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > max {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}

/// Why a pull source could not produce its next batch.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source's configuration is invalid; fix the config file.
    #[error("invalid source config: {0}")]
    Config(String),
    /// A network or peer problem; retrying later may help.
    #[error("source unavailable (retry may help): {0}")]
    Unavailable(String),
    /// A bug: the source produced something inconsistent.
    #[error("internal source error (a bug): {0}")]
    Internal(String),
}
