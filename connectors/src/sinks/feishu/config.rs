//! Configuration of the `feishu` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "feishu"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeishuConfig {
    /// The bot webhook URL (`…/open-apis/bot/v2/hook/<token>`); a secret.
    pub url: Secret,
    /// The bot's signature secret ("signature verification" in the bot's security settings).
    #[serde(default)]
    pub secret: Option<Secret>,
}
