//! Why a provider call failed, and whether trying again can help.
//!
//! Messages are written to the event log and shown to operators, so they never carry secrets:
//! they name the provider kind and at most the host, never a full URL, query string or header.

/// A provider failure. [`SinkError::retryable`] tells the engine whether to try again.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SinkError {
    /// A param (the action's `with:` block) or a config field is missing or wrong.
    #[error("bad field \"{field}\": {message}")]
    Params {
        /// The field, e.g. `summary` or `args[2]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Policy refused the call: outbound guard (SSRF), allowlist, or a refused argument.
    #[error("refused: {reason}")]
    Refused {
        /// Why, naming at most the host.
        reason: String,
    },
    /// The service answered with a non-success HTTP status.
    #[error("HTTP {status}: {body_excerpt}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the answer (at most 512 bytes, secrets removed).
        body_excerpt: String,
    },
    /// The service answered success at the HTTP level but reported an error code in its body
    /// (Feishu `code`, DingTalk `errcode`, Slack-style `ok: false`).
    #[error("service error {code}: {message}")]
    Service {
        /// The service's error code.
        code: i64,
        /// The service's message (limited, secrets removed).
        message: String,
        /// Whether the service documents this code as transient (e.g. rate limited).
        retryable: bool,
    },
    /// The request could not be sent or the answer not read (DNS, connect, TLS, reset).
    #[error("network: {0}")]
    Network(String),
    /// The call did not finish within its timeout.
    #[error("timed out")]
    Timeout,
    /// A command could not be started or exited unsuccessfully.
    #[error("exec: {0}")]
    Exec(String),
    /// The provider configuration is unusable (caught when building, or at call time).
    #[error("config: {0}")]
    Config(String),
    /// A failure that retrying may fix although its kind is usually permanent (an `exec`
    /// command configured with `retry_on_failure`).
    #[error("{0} (retryable by configuration)")]
    RetryableExec(String),
}

impl SinkError {
    /// Whether trying again can help: network errors, timeouts, HTTP 429 and 5xx and service
    /// codes documented as transient are retryable; 4xx, policy refusals and bad params are not.
    pub fn retryable(&self) -> bool {
        match self {
            SinkError::Network(_) | SinkError::Timeout | SinkError::RetryableExec(_) => true,
            SinkError::Http { status, .. } => *status == 429 || *status >= 500,
            SinkError::Service { retryable, .. } => *retryable,
            SinkError::Params { .. }
            | SinkError::Refused { .. }
            | SinkError::Exec(_)
            | SinkError::Config(_) => false,
        }
    }

    /// A [`SinkError::Params`] for `field`.
    pub fn params(field: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError::Params {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A [`SinkError::Refused`] with `reason`.
    pub fn refused(reason: impl Into<String>) -> Self {
        SinkError::Refused {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SinkError;

    #[test]
    fn retryable_classification() {
        assert!(SinkError::Network("reset".into()).retryable());
        assert!(SinkError::Timeout.retryable());
        for status in [429, 500, 502, 503] {
            let e = SinkError::Http {
                status,
                body_excerpt: String::new(),
            };
            assert!(e.retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 410] {
            let e = SinkError::Http {
                status,
                body_excerpt: String::new(),
            };
            assert!(!e.retryable(), "{status}");
        }
        assert!(!SinkError::params("x", "y").retryable());
        assert!(!SinkError::refused("loopback").retryable());
        assert!(!SinkError::Exec("exit 1".into()).retryable());
        assert!(SinkError::RetryableExec("exit 1".into()).retryable());
        assert!(!SinkError::Config("bad".into()).retryable());
        assert!(
            SinkError::Service {
                code: 11232,
                message: "frequency limited".into(),
                retryable: true
            }
            .retryable()
        );
    }
}
