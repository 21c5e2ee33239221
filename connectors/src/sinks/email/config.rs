//! Configuration of the `email` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "email"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP relay's host name or IP.
    pub host: String,
    /// The relay's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The sender, `ops@example.com` or `aiops <ops@example.com>`.
    pub from: String,
    /// SMTP AUTH user (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP AUTH password; a secret.
    #[serde(default)]
    pub password: Option<Secret>,
    /// How the connection is protected.
    #[serde(default)]
    pub tls: SmtpTls,
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on loopback.
    None,
    /// Upgrade with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

fn default_port() -> u16 {
    587
}
