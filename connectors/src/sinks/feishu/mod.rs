//! `feishu`: a message through a Feishu/Lark custom bot webhook.
//!
//! Config: `url`, `secret?` (the bot's signature secret). Params: `text` (plain text message), or
//! `title` + `content` (markdown → an interactive card; `color?` sets the header template).
//! With a secret the body carries `timestamp` (unix seconds, a string) and
//! `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))`, as Feishu
//! documents. Feishu answers `{"code":0,...}`; a non-zero code is an error, and 11232
//! ("frequency limited") is retryable.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::FeishuConfig;
pub use sink::{Feishu, sign};
