//! `email`: a plain-text message over SMTP (lettre, tokio, rustls with ring).
//!
//! Config: `host`, `port` (default 587), `from`, `username?` + `password?`, `tls`
//! (`starttls` (default), `tls` for implicit TLS on 465, or `none`, allowed only for a loopback
//! relay since it would send credentials and mail in clear). Params: `to` (string or list),
//! `cc?`, `subject`, `body`. The `Message-ID` is `<32 hex of SHA-256(idempotency key)@aiops>`,
//! the same for every retry of one effect, so receivers and archives can drop duplicates. The
//! target is the recipients. SMTP 4xx answers are retryable, 5xx permanent.
//!
//! SMTP relays are usually internal hosts, so the HTTP outbound policy does not apply here: the
//! operator names the one relay in config, and params cannot choose the host.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::{EmailConfig, SmtpTls};
pub use sink::{Email, message_id};
