//! Configuration of the `dingtalk` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "dingtalk"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkConfig {
    /// `https://oapi.dingtalk.com/robot/send?access_token=…`; a secret.
    pub url: Secret,
    /// The robot's signing secret (`SEC…`).
    #[serde(default)]
    pub secret: Option<Secret>,
}
