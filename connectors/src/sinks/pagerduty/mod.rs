//! `pagerduty`: an alert event through the PagerDuty Events API v2.
//!
//! Config: `routing_key` (the integration key; a secret), `url?` (default
//! `https://events.pagerduty.com/v2/enqueue`). Params: `event_action` (`trigger` (default),
//! `acknowledge`, `resolve`), `dedup_key` (default for `trigger`: the idempotency key, so a retried
//! trigger is one incident; required for `acknowledge`/`resolve`, which must name the trigger's
//! key), and for `trigger`: `summary`, `source`, `severity` (`critical|error|warning|info`),
//! `timestamp?`, `component?`, `group?`, `class?`, `custom_details?`, `links?`, `images?`.
//! PagerDuty answers 202 `{"status":"success","dedup_key":…}`, 400 for an invalid event, 429 when
//! throttled (retryable).

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::PagerDutyConfig;
pub use sink::PagerDuty;
