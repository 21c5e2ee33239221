//! `dingtalk`: a message through a DingTalk custom robot webhook.
//!
//! Config: `url` (with `access_token`), `secret?` (the robot's "加签" secret). Params: `title` +
//! `text` (markdown message), or `text` alone (text message); `at_all?` (boolean). With a secret
//! the URL gets `&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(key = secret,
//! message = timestamp + "\n" + secret)))>`, as DingTalk documents. DingTalk answers
//! `{"errcode":0,"errmsg":"ok"}`; a non-zero errcode is an error, 130101 ("send too fast")
//! retryable.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::DingTalkConfig;
pub use sink::{DingTalk, sign};
