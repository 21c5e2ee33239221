//! `teams`: a message through a Microsoft Teams "Workflows" (Power Automate) webhook, as an
//! Adaptive Card.
//!
//! Config: `url`. Params: `title`, `text`, `facts?` (map → FactSet). Body:
//! `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
//! "contentUrl":null,"content":{AdaptiveCard 1.4}}]}`. The flow answers 200 or 202.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::TeamsConfig;
pub use sink::Teams;
