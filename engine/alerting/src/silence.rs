//! Silences: matchers that mute alerts between a start and an end, with author and comment, as
//! Alertmanager has them, and their API v2 forms (`postableSilence`, `gettableSilence`).

use crate::matcher::{ApiMatcher, Matcher, MatcherError};
use crate::model::Labels;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// A matcher is invalid.
    #[error("silence matcher: {0}")]
    Matcher(#[from] MatcherError),
    /// A field is invalid.
    #[error("silence {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No silence with this id.
    #[error("silence {0} not found")]
    NotFound(String),
    /// The silence has already expired.
    #[error("silence {0} already expired")]
    Expired(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SilenceError {
    SilenceError::Invalid {
        field,
        message: message.into(),
    }
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Muting now.
    Active,
    /// Over.
    Expired,
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (a UUID for silences created through the API).
    pub id: String,
    /// All must match for an alert to be silenced.
    pub matchers: Vec<Matcher>,
    /// Start, Unix ms.
    pub starts_at_ms: i64,
    /// End, Unix ms.
    pub ends_at_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
}

impl Silence {
    /// Its state at `now_ms`.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether it mutes `labels` (state aside).
    pub fn matches(&self, labels: &Labels) -> bool {
        crate::matcher::all_match(&self.matchers, labels)
    }

    /// Alertmanager's checks: matchers present, at least one not matching the empty string (a
    /// silence must not mute everything), end after start, author and comment given.
    ///
    /// # Errors
    /// [`SilenceError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(invalid("matchers", "at least one matcher is required"));
        }
        if self.matchers.iter().all(|m| m.matches_value("")) {
            return Err(invalid(
                "matchers",
                "at least one matcher must not match the empty string",
            ));
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err(invalid("endsAt", "must be after startsAt"));
        }
        if self.created_by.trim().is_empty() {
            return Err(invalid("createdBy", "is required"));
        }
        if self.comment.trim().is_empty() {
            return Err(invalid("comment", "is required"));
        }
        Ok(())
    }

    /// The API v2 form at `now_ms`.
    pub fn to_gettable(&self, now_ms: i64) -> GettableSilence {
        GettableSilence {
            id: self.id.clone(),
            status: SilenceStatus {
                state: self.state(now_ms),
            },
            updated_at: format_rfc3339_ms(self.updated_at_ms),
            matchers: self.matchers.iter().map(ApiMatcher::from_matcher).collect(),
            starts_at: format_rfc3339_ms(self.starts_at_ms),
            ends_at: format_rfc3339_ms(self.ends_at_ms),
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        }
    }
}

/// All silences, by id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

impl Silences {
    /// Creates or replaces a silence.
    pub fn upsert(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }

    /// Ends a silence now (a pending one ends before it began).
    ///
    /// # Errors
    /// Unknown or already expired silence.
    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        match s.state(now_ms) {
            SilenceState::Expired => return Err(SilenceError::Expired(id.to_string())),
            SilenceState::Pending => s.starts_at_ms = now_ms,
            SilenceState::Active => {}
        }
        s.ends_at_ms = now_ms;
        s.updated_at_ms = now_ms;
        Ok(())
    }

    /// A silence by id.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// All silences in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// Ids of the active silences muting `labels`, sorted.
    pub fn silenced_by(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now_ms) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Forgets silences expired for longer than `retention_ms`.
    pub fn gc(&mut self, now_ms: i64, retention_ms: i64) {
        self.by_id
            .retain(|_, s| s.ends_at_ms.saturating_add(retention_ms) > now_ms);
    }
}

/// `silenceStatus` of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// `pending`, `active` or `expired`.
    pub state: SilenceState,
}

/// `gettableSilence` of Alertmanager's API v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    /// Id.
    pub id: String,
    /// State.
    pub status: SilenceStatus,
    /// Last change.
    pub updated_at: String,
    /// Matchers.
    pub matchers: Vec<ApiMatcher>,
    /// Start.
    pub starts_at: String,
    /// End.
    pub ends_at: String,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
}

/// `postableSilence` of Alertmanager's API v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Set to update an existing silence.
    #[serde(default)]
    pub id: Option<String>,
    /// Matchers.
    pub matchers: Vec<ApiMatcher>,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// End (RFC 3339).
    pub ends_at: String,
    /// Author.
    #[serde(default)]
    pub created_by: String,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

impl PostableSilence {
    /// The silence it describes, with `id`, changed at `now_ms`. A start in the past begins now.
    ///
    /// # Errors
    /// [`SilenceError`] naming the bad field.
    pub fn into_silence(self, id: String, now_ms: i64) -> Result<Silence, SilenceError> {
        let starts = parse_rfc3339_ms(&self.starts_at).ok_or_else(|| {
            invalid(
                "startsAt",
                format!("{:?} is not an RFC 3339 time", self.starts_at),
            )
        })?;
        let ends = parse_rfc3339_ms(&self.ends_at).ok_or_else(|| {
            invalid(
                "endsAt",
                format!("{:?} is not an RFC 3339 time", self.ends_at),
            )
        })?;
        if ends <= now_ms {
            return Err(invalid("endsAt", "is in the past"));
        }
        let matchers = self
            .matchers
            .iter()
            .map(ApiMatcher::to_matcher)
            .collect::<Result<Vec<_>, _>>()?;
        let s = Silence {
            id,
            matchers,
            starts_at_ms: starts.max(now_ms.min(starts.max(now_ms))),
            ends_at_ms: ends,
            created_by: self.created_by,
            comment: self.comment,
            updated_at_ms: now_ms,
        };
        s.validate()?;
        Ok(s)
    }
}

/// Parses an RFC 3339 time to Unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Formats Unix ms as RFC 3339 in UTC with milliseconds (`2026-11-25T10:00:00.000Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(m: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: "s".into(),
            matchers: crate::matcher::parse_matchers(m).unwrap_or_default(),
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "me".into(),
            comment: "why".into(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn states_and_expiry() {
        let mut all = Silences::default();
        all.upsert(s(r#"a="1""#, 100, 200));
        assert_eq!(
            all.get("s").map(|x| x.state(50)),
            Some(SilenceState::Pending)
        );
        assert_eq!(
            all.get("s").map(|x| x.state(150)),
            Some(SilenceState::Active)
        );
        assert_eq!(
            all.get("s").map(|x| x.state(200)),
            Some(SilenceState::Expired)
        );
        // Expiring a pending silence ends it before it began.
        all.expire("s", 50).unwrap_or_else(|e| panic!("{e}"));
        let x = all.get("s").cloned().unwrap_or_else(|| panic!("kept"));
        assert_eq!(
            (x.starts_at_ms, x.ends_at_ms, x.state(50)),
            (50, 50, SilenceState::Expired)
        );
        assert_eq!(all.expire("s", 60), Err(SilenceError::Expired("s".into())));
        assert_eq!(all.expire("t", 60), Err(SilenceError::NotFound("t".into())));
        all.gc(1000, 500);
        assert!(all.get("s").is_none());
    }

    #[test]
    fn validation_follows_alertmanager() {
        assert!(s(r#"a="1""#, 0, 10).validate().is_ok());
        let e = |x: Silence| {
            x.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(e(s("", 0, 10)).contains("at least one matcher"));
        assert!(e(s(r#"a=~".*""#, 0, 10)).contains("empty string"));
        assert!(e(s(r#"a="1""#, 10, 10)).contains("endsAt"));
    }

    #[test]
    fn api_forms_match_alertmanager() {
        let body = r#"{"matchers":[{"name":"alertname","value":"CpuHigh","isRegex":false,"isEqual":true}],
            "startsAt":"2026-11-25T10:00:00.000Z","endsAt":"2026-11-25T11:00:00Z",
            "createdBy":"tester","comment":"maintenance"}"#;
        let p: PostableSilence = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}"));
        let now = parse_rfc3339_ms("2026-11-25T10:00:00Z").unwrap_or_default();
        let sil = p
            .into_silence("id-1".into(), now)
            .unwrap_or_else(|e| panic!("{e}"));
        let g = serde_json::to_value(sil.to_gettable(now)).unwrap_or_default();
        assert_eq!(g["status"]["state"], "active");
        assert_eq!(g["startsAt"], "2026-11-25T10:00:00.000Z");
        assert_eq!(g["endsAt"], "2026-11-25T11:00:00.000Z");
        assert_eq!(g["matchers"][0]["isEqual"], true);
        assert_eq!(g["createdBy"], "tester");
        let bad: PostableSilence =
            serde_json::from_str(&body.replace("2026-11-25T11:00:00Z", "tomorrow"))
                .unwrap_or_else(|e| panic!("{e}"));
        let e = bad
            .into_silence("x".into(), now)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("endsAt"), "{e}");
    }
}
