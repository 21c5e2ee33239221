//! `slack`: a message through a Slack incoming webhook, as Block Kit.
//!
//! Config: `url` (the webhook URL; its path is the token). Params: `text` (required; the
//! notification fallback and the main section), `title?` (header block), `fields?` (map →
//! section fields, 10 per section), `footer?` (context block), `color?` (wraps the blocks in a
//! legacy attachment, the only way Slack colours a message), `blocks?` (raw Block Kit array,
//! replaces the generated blocks). Slack answers 200 `ok`, or 4xx with a short reason such as
//! `invalid_payload`; 429 when rate limited.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::SlackConfig;
pub use sink::Slack;
