//! The running `email` provider.

use super::config::{EmailConfig, SmtpTls};
use crate::sinks::params::{Params, only_known, opt_str_list, req_str};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::redact;
use crate::sinks::transport::truncate;
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;
use sha2::Digest;

const KNOWN: &[&str] = &["to", "cc", "subject", "body"];

/// Sends mail through one relay.
pub struct Email {
    host: String,
    port: u16,
    from: Mailbox,
    tls: SmtpTls,
    password: Option<String>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from.to_string())
            .field("tls", &self.tls)
            .field("auth", &self.password.is_some())
            .finish_non_exhaustive()
    }
}

/// The `Message-ID` of an effect: `<32 hex of SHA-256(key)@aiops>`.
pub fn message_id(idempotency_key: &str) -> String {
    let digest = sha2::Sha256::digest(idempotency_key.as_bytes());
    format!("<{}@aiops>", hex::encode(&digest[..16]))
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Email {
    /// Checks the settings and prepares the transport (no connection yet).
    ///
    /// # Errors
    /// [`SinkError::Config`] for a bad `from`, `tls = "none"` to a non-loopback host, or a
    /// username without password (or the reverse).
    pub fn new(config: EmailConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| SinkError::Config(format!("from: {e}")))?;
        if config.tls == SmtpTls::None && !is_loopback(&config.host) {
            return Err(SinkError::Config(format!(
                "tls: \"none\" is allowed only for a loopback relay, not {}",
                config.host
            )));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(ctx.timeout));
        builder = match config.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls | SmtpTls::Tls => {
                let params = TlsParameters::new(config.host.clone())
                    .map_err(|e| SinkError::Config(format!("tls: {e}")))?;
                if config.tls == SmtpTls::Tls {
                    builder.tls(Tls::Wrapper(params))
                } else {
                    builder.tls(Tls::Required(params))
                }
            }
        };
        let password = config.password.as_ref().map(|p| p.expose().to_owned());
        builder = match (config.username, &password) {
            (Some(u), Some(p)) => builder.credentials(Credentials::new(u, p.clone())),
            (None, None) => builder,
            _ => {
                return Err(SinkError::Config(
                    "username and password must be set together".into(),
                ));
            }
        };
        Ok(Email {
            host: config.host,
            port: config.port,
            from,
            tls: config.tls,
            password,
            transport: builder.build(),
        })
    }

    fn recipients(p: &Params, field: &str) -> Result<Vec<Mailbox>, SinkError> {
        opt_str_list(p, field)?
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.parse::<Mailbox>()
                    .map_err(|e| SinkError::params(format!("{field}[{i}]"), format!("{a:?}: {e}")))
            })
            .collect()
    }

    fn message(&self, p: &Params, key: &str) -> Result<Message, SinkError> {
        only_known(p, KNOWN)?;
        let to = Self::recipients(p, "to")?;
        if to.is_empty() {
            return Err(SinkError::params("to", "is required"));
        }
        let cc = Self::recipients(p, "cc")?;
        let subject = req_str(p, "subject")?;
        let body = req_str(p, "body")?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(key)));
        for m in to {
            b = b.to(m);
        }
        for m in cc {
            b = b.cc(m);
        }
        b.header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| SinkError::params("body", e.to_string()))
    }

    fn map_err(&self, e: lettre::transport::smtp::Error) -> SinkError {
        let secrets: Vec<&str> = self.password.iter().map(String::as_str).collect();
        let msg = redact(&e.to_string(), &secrets);
        let msg = format!("email {}:{}: {}", self.host, self.port, truncate(&msg, 400));
        if e.is_timeout() {
            return SinkError::Timeout;
        }
        let code = e.status().map(|c| i64::from(u16::from(c))).unwrap_or(-1);
        if e.is_transient() {
            SinkError::Service {
                code,
                message: msg,
                retryable: true,
            }
        } else if e.is_permanent() {
            SinkError::Service {
                code,
                message: msg,
                retryable: false,
            }
        } else if e.is_tls() || e.is_client() {
            SinkError::Config(msg)
        } else {
            SinkError::Network(msg)
        }
    }
}

#[async_trait::async_trait]
impl Provider for Email {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        let mut all = opt_str_list(call.params, "to").unwrap_or_default();
        all.extend(opt_str_list(call.params, "cc").unwrap_or_default());
        all.join(",")
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        self.message(p, "validate").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let msg = self.message(call.params, call.idempotency_key)?;
        let id = message_id(call.idempotency_key);
        let resp = self.transport.send(msg).await.map_err(|e| {
            let err = self.map_err(e);
            // The relay's reply may echo credentials or parameters only the executor can
            // redact; it logs the reason redacted, with the effect's key.
            tracing::warn!(
                kind = "email",
                host = %self.host,
                retryable = err.retryable(),
                "mail not accepted"
            );
            err
        })?;
        let code = resp.code().to_string();
        let line = resp.first_line().unwrap_or("").to_owned();
        tracing::info!(kind = "email", host = %self.host, code = %code, "mail accepted by the relay");
        Ok(EffectOutput {
            status: code,
            response: json!({"message_id": id, "reply": truncate(&line, 200)}),
        })
    }
}
