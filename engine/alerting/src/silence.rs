//! Silences: matchers that mute alerts between a start and an end, with author and comment, as
//! Alertmanager has them (`silence/silence.go`), and their API v2 forms (`postableSilence`,
//! `gettableSilence` of `api/v2/openapi.yaml`) so `amtool` and Grafana can manage them here.
//!
//! Times are Unix ms taken from the log, never from a clock, so replaying the same silence
//! commands gives the same states. Ids are chosen by the caller (the server mints them), which
//! keeps this module deterministic.

use crate::matcher::{ApiMatcher, MatchOp, Matcher, MatcherError};
use crate::model::Labels;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a silence or a silence command was refused; the client sent it, so the message names the
/// field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// A matcher is invalid.
    #[error("silence matcher: {0}")]
    Matcher(#[from] MatcherError),
    /// A field is invalid.
    #[error("silence {field}: {message}")]
    Invalid {
        /// The field, as the API names it (`matchers`, `startsAt`, `endsAt`, …).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No silence with this id.
    #[error("silence {0} not found")]
    NotFound(String),
    /// The silence has already expired, so it cannot be expired again.
    #[error("silence {0} already expired")]
    Expired(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SilenceError {
    SilenceError::Invalid {
        field,
        message: message.into(),
    }
}

/// Where a silence is in its life at a given time (`silenceStatus.state` of the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Muting now.
    Active,
    /// Over; kept for the retention period so it can be listed and recreated.
    Expired,
}

/// A silence; serialized (matchers as strings) in engine checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (a UUID for silences created through the API).
    pub id: String,
    /// All must match for an alert to be silenced.
    pub matchers: Vec<Matcher>,
    /// Start, Unix ms (inclusive).
    pub starts_at_ms: i64,
    /// End, Unix ms (exclusive: the silence is expired from this instant).
    pub ends_at_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change, Unix ms.
    pub updated_at_ms: i64,
}

/// Alertmanager's `matchesEmpty`: only `=""` and a regex matching "" count. Negative matchers
/// never do, so a silence of only `a!="x"` is accepted, as in Alertmanager.
fn matches_empty(m: &Matcher) -> bool {
    match m.op {
        MatchOp::Eq | MatchOp::Re => m.matches_value(""),
        MatchOp::NotEq | MatchOp::NotRe => false,
    }
}

impl Silence {
    /// Its state at `now_ms`: pending before the start, expired from the end on, else active
    /// (Alertmanager's `CurrentState`).
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether its matchers all match `labels` (state aside).
    pub fn matches(&self, labels: &Labels) -> bool {
        crate::matcher::all_match(&self.matchers, labels)
    }

    /// Alertmanager's checks (`validateSilence`): at least one matcher, at least one that does
    /// not match the empty string (so a silence cannot mute everything), valid label names, and
    /// an end after the start. Like Alertmanager, an empty author or comment is accepted; the
    /// API form requires the fields to be present.
    ///
    /// # Errors
    /// [`SilenceError::Invalid`] naming the field, or [`SilenceError::Matcher`].
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(invalid("matchers", "at least one matcher is required"));
        }
        for m in &self.matchers {
            // Matchers are checked when built; this catches ones deserialized from elsewhere.
            if !crate::matcher::is_valid_label_name(&m.name) {
                return Err(MatcherError::Name(m.name.clone()).into());
            }
        }
        if self.matchers.iter().all(matches_empty) {
            return Err(invalid(
                "matchers",
                "at least one matcher must not match the empty string",
            ));
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err(invalid(
                "endsAt",
                format!(
                    "start time must be before end time (startsAt {}, endsAt {})",
                    format_rfc3339_ms(self.starts_at_ms),
                    format_rfc3339_ms(self.ends_at_ms)
                ),
            ));
        }
        Ok(())
    }

    /// The API v2 form at `now_ms`, as `GET /api/v2/silences` returns it.
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
            annotations: Labels::new(),
        }
    }

    /// The API v2 form a client would post to update this silence.
    pub fn to_postable(&self) -> PostableSilence {
        PostableSilence {
            id: Some(self.id.clone()),
            matchers: self.matchers.iter().map(ApiMatcher::from_matcher).collect(),
            starts_at: format_rfc3339_ms(self.starts_at_ms),
            ends_at: format_rfc3339_ms(self.ends_at_ms),
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
            annotations: Labels::new(),
        }
    }
}

/// All silences by id, part of the engine's checkpointed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

impl Silences {
    /// Creates a silence, or replaces the one with the same id. (Alertmanager expires an active
    /// silence whose matchers change and creates a new id; here the caller picks the final id.)
    pub fn upsert(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }

    /// Ends a silence at `now_ms`, as Alertmanager's expire does: an active one ends now, a
    /// pending one gets start = end = now so it never mutes anything.
    ///
    /// # Errors
    /// [`SilenceError::NotFound`] for an unknown id, [`SilenceError::Expired`] when it is
    /// already over.
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

    /// How many silences are kept (any state).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no silence is kept.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Ids of the active silences muting `labels` at `now_ms`, sorted.
    pub fn silenced_by(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now_ms) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Forgets silences that ended more than `retention_ms` before `now_ms` (Alertmanager's
    /// GC: a silence is dropped once `endsAt + retention` is before now).
    pub fn gc(&mut self, now_ms: i64, retention_ms: i64) {
        self.by_id
            .retain(|_, s| s.ends_at_ms.saturating_add(retention_ms) >= now_ms);
    }
}

/// `silenceStatus` of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// `pending`, `active` or `expired`.
    pub state: SilenceState,
}

/// `gettableSilence` of Alertmanager's API v2, field for field, so `amtool silence query` and
/// Grafana read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    /// Id.
    pub id: String,
    /// State at the time of the request.
    pub status: SilenceStatus,
    /// Last change (RFC 3339, ms, UTC).
    pub updated_at: String,
    /// Matchers.
    pub matchers: Vec<ApiMatcher>,
    /// Start (RFC 3339, ms, UTC).
    pub starts_at: String,
    /// End (RFC 3339, ms, UTC).
    pub ends_at: String,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
    /// Silence annotations (Alertmanager 0.32); always empty here, since silences do not keep
    /// them yet, but present because the spec lists the field as required.
    #[serde(default)]
    pub annotations: Labels,
}

/// `postableSilence` of Alertmanager's API v2 (the body of `POST /api/v2/silences`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Set to update an existing silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Matchers.
    pub matchers: Vec<ApiMatcher>,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// End (RFC 3339).
    pub ends_at: String,
    /// Author; required, may be empty (as in Alertmanager).
    pub created_by: String,
    /// Comment; required, may be empty (as in Alertmanager).
    pub comment: String,
    /// Silence annotations (Alertmanager 0.32); accepted so newer clients are not refused, but
    /// not kept in this version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
}

impl PostableSilence {
    /// The silence it describes, with `id`, received at `now_ms`. As Alertmanager's API: the
    /// start must be before the end, the end must not be in the past, and a start in the past
    /// becomes `now_ms`.
    ///
    /// # Errors
    /// [`SilenceError`] naming the bad field (an unparsable time, a bad matcher, or a failed
    /// [`Silence::validate`]).
    pub fn into_silence(self, id: String, now_ms: i64) -> Result<Silence, SilenceError> {
        let time = |field: &'static str, s: &str| {
            parse_rfc3339_ms(s).ok_or_else(|| {
                invalid(
                    field,
                    format!("{s:?} is not an RFC 3339 time (like 2026-11-25T10:00:00.000Z)"),
                )
            })
        };
        let starts = time("startsAt", &self.starts_at)?;
        let ends = time("endsAt", &self.ends_at)?;
        if ends <= starts {
            return Err(invalid("endsAt", "start time must be before end time"));
        }
        if ends < now_ms {
            return Err(invalid("endsAt", "end time can't be in the past"));
        }
        let matchers = self
            .matchers
            .iter()
            .map(ApiMatcher::to_matcher)
            .collect::<Result<Vec<_>, _>>()?;
        let s = Silence {
            id,
            matchers,
            starts_at_ms: starts.max(now_ms),
            ends_at_ms: ends,
            created_by: self.created_by,
            comment: self.comment,
            updated_at_ms: now_ms,
        };
        s.validate()?;
        Ok(s)
    }
}

/// Parses an RFC 3339 time (any offset, any fraction) to Unix ms, truncating below the ms; the
/// one parser for API times in this crate.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Formats Unix ms as RFC 3339 in UTC with milliseconds (`2026-11-25T10:00:00.000Z`), the form
/// Alertmanager's API writes (a time outside chrono's range prints as the epoch).
pub fn format_rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::matcher::parse_matchers;

    fn s(m: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: "s".into(),
            matchers: parse_matchers(m).unwrap(),
            starts_at_ms: start,
            ends_at_ms: end,
            created_by: "me".into(),
            comment: "why".into(),
            updated_at_ms: 0,
        }
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ms(t: &str) -> i64 {
        parse_rfc3339_ms(t).unwrap()
    }

    #[test]
    fn state_transitions() {
        let x = s(r#"a="1""#, 100, 200);
        assert_eq!(x.state(50), SilenceState::Pending);
        assert_eq!(x.state(99), SilenceState::Pending);
        assert_eq!(x.state(100), SilenceState::Active);
        assert_eq!(x.state(199), SilenceState::Active);
        assert_eq!(x.state(200), SilenceState::Expired);
        assert_eq!(
            serde_json::to_string(&SilenceState::Pending).unwrap(),
            "\"pending\""
        );
    }

    #[test]
    fn expiring_pending_active_and_expired_silences() {
        let mut all = Silences::default();
        all.upsert(s(r#"a="1""#, 100, 200));
        all.upsert(Silence {
            id: "t".into(),
            ..s(r#"a="1""#, 100, 200)
        });
        // A pending silence ends before it began.
        all.expire("s", 50).unwrap();
        let x = all.get("s").unwrap();
        assert_eq!(
            (x.starts_at_ms, x.ends_at_ms, x.updated_at_ms, x.state(50)),
            (50, 50, 50, SilenceState::Expired)
        );
        assert!(all.silenced_by(&l(&[("a", "1")]), 150) == ["t"]);
        // An active one ends now and keeps its start.
        all.expire("t", 150).unwrap();
        let x = all.get("t").unwrap();
        assert_eq!((x.starts_at_ms, x.ends_at_ms), (100, 150));
        assert!(all.silenced_by(&l(&[("a", "1")]), 150).is_empty());
        // Expired or unknown ones are errors.
        assert_eq!(all.expire("s", 60), Err(SilenceError::Expired("s".into())));
        assert_eq!(all.expire("u", 60), Err(SilenceError::NotFound("u".into())));
        assert_eq!(all.len(), 2);
        // Garbage collection keeps them for the retention period.
        all.gc(150 + 500, 500);
        assert_eq!(all.len(), 1);
        all.gc(150 + 501, 500);
        assert!(all.is_empty());
    }

    #[test]
    fn silenced_by_uses_regex_and_negative_matchers() {
        let mut all = Silences::default();
        for (id, m) in [
            ("db", r#"{service=~"db|cache", env!="staging"}"#),
            ("notweb", r#"team!~"web.*", severity="critical""#),
            ("later", r#"service="db""#),
        ] {
            let mut x = s(m, 0, 1000);
            x.id = id.into();
            if id == "later" {
                x.starts_at_ms = 500;
            }
            x.validate().unwrap();
            all.upsert(x);
        }
        let now = 100;
        assert_eq!(
            all.silenced_by(&l(&[("service", "db"), ("env", "prod")]), now),
            ["db"]
        );
        assert!(
            all.silenced_by(&l(&[("service", "db"), ("env", "staging")]), now)
                .is_empty()
        );
        assert!(all.silenced_by(&l(&[("service", "dbx")]), now).is_empty());
        assert_eq!(
            all.silenced_by(&l(&[("severity", "critical"), ("service", "cache")]), now),
            ["db", "notweb"]
        );
        assert!(
            all.silenced_by(&l(&[("severity", "critical"), ("team", "webapp")]), now)
                .is_empty()
        );
        assert_eq!(
            all.silenced_by(&l(&[("service", "db")]), 600),
            ["db", "later"]
        );
        assert!(all.silenced_by(&l(&[("service", "db")]), 1000).is_empty());
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
        assert!(e(s("", 0, 10)).contains("at least one matcher is required"));
        for all_empty in [r#"a=~".*""#, r#"a="""#, r#"a="", b=~"x|""#] {
            assert!(
                e(s(all_empty, 0, 10)).contains("must not match the empty string"),
                "{all_empty}"
            );
        }
        // Negative matchers do not count as matching the empty string (Alertmanager's rule).
        assert!(s(r#"a!="x""#, 0, 10).validate().is_ok());
        assert!(s(r#"a!~".*""#, 0, 10).validate().is_ok());
        assert!(s(r#"a=~".*", b="1""#, 0, 10).validate().is_ok());
        assert!(
            e(s(r#"a="1""#, 10, 10)).contains("silence endsAt: start time must be before end time")
        );
        assert!(e(s(r#"a="1""#, 10, 5)).contains("endsAt"));
        // Author and comment may be empty, as in Alertmanager.
        let mut anon = s(r#"a="1""#, 0, 10);
        anon.created_by.clear();
        anon.comment.clear();
        assert!(anon.validate().is_ok());
    }

    #[test]
    fn checkpoint_form_round_trips() {
        let mut all = Silences::default();
        all.upsert(s(r#"{a=~"x\\d", b!="q\"r"}"#, 1, 2));
        let j = serde_json::to_value(&all).unwrap();
        assert_eq!(j["by_id"]["s"]["matchers"][0], r#"a=~"x\\d""#);
        let back: Silences = serde_json::from_value(j).unwrap();
        assert_eq!(back, all);
    }

    /// A silence as Alertmanager 0.27–0.31 returns it from `GET /api/v2/silences` (Go's field
    /// order, which JSON readers ignore).
    const AM_GETTABLE: &str = r#"{
        "id": "8a1f3c2e-6b7d-4e5f-9a0b-1c2d3e4f5a6b",
        "status": {"state": "active"},
        "updatedAt": "2026-11-25T10:00:00.000Z",
        "comment": "maintenance window",
        "createdBy": "tester",
        "endsAt": "2026-11-25T12:00:00.000Z",
        "matchers": [
            {"isEqual": true, "isRegex": false, "name": "alertname", "value": "CpuHigh"},
            {"isEqual": false, "isRegex": true, "name": "instance", "value": "db-\\d+"}
        ],
        "startsAt": "2026-11-25T10:00:00.000Z"
    }"#;

    #[test]
    fn api_forms_match_alertmanager() {
        let am: GettableSilence = serde_json::from_str(AM_GETTABLE).unwrap();
        assert_eq!(am.status.state, SilenceState::Active);
        assert!(am.annotations.is_empty());
        // What amtool would post to create the same silence.
        let body = r#"{"matchers":[{"name":"alertname","value":"CpuHigh","isRegex":false,"isEqual":true},
            {"name":"instance","value":"db-\\d+","isRegex":true,"isEqual":false}],
            "startsAt":"2026-11-25T09:00:00Z","endsAt":"2026-11-25T13:00:00+01:00",
            "createdBy":"tester","comment":"maintenance window"}"#;
        let p: PostableSilence = serde_json::from_str(body).unwrap();
        let now = ms("2026-11-25T10:00:00Z");
        let sil = p.into_silence(am.id.clone(), now).unwrap();
        // The start in the past became now; the end was converted to UTC.
        assert_eq!(
            (sil.starts_at_ms, sil.ends_at_ms),
            (now, ms("2026-11-25T12:00:00Z"))
        );
        assert!(sil.matches(&l(&[("alertname", "CpuHigh"), ("instance", "web-1")])));
        assert!(!sil.matches(&l(&[("alertname", "CpuHigh"), ("instance", "db-12")])));
        let ours = sil.to_gettable(now);
        assert_eq!(ours, am);
        let mut expected: serde_json::Value = serde_json::from_str(AM_GETTABLE).unwrap();
        expected["annotations"] = serde_json::json!({});
        assert_eq!(serde_json::to_value(&ours).unwrap(), expected);
        assert_eq!(
            sil.to_gettable(ms("2026-11-25T12:00:00Z")).status.state,
            SilenceState::Expired
        );
        // The postable form of a silence reads back as the same silence.
        let again = sil.to_postable().into_silence(sil.id.clone(), now).unwrap();
        assert_eq!(again, sil);
        // Silence annotations (Alertmanager 0.32) are accepted.
        let with_ann = body.replacen('{', r#"{"annotations":{"ticket":"OPS-1"},"#, 1);
        let p: PostableSilence = serde_json::from_str(&with_ann).unwrap();
        assert!(p.into_silence("x".into(), now).is_ok());
    }

    #[test]
    fn api_errors_name_the_field() {
        let now = ms("2026-11-25T10:00:00Z");
        let base = serde_json::json!({
            "matchers": [{"name": "alertname", "value": "CpuHigh", "isRegex": false}],
            "startsAt": "2026-11-25T10:00:00.000Z", "endsAt": "2026-11-25T11:00:00.000Z",
            "createdBy": "tester", "comment": "maintenance"
        });
        let err = |patch: serde_json::Value| {
            let mut v = base.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            match serde_json::from_value::<PostableSilence>(v) {
                Err(e) => e.to_string(),
                Ok(p) => p
                    .into_silence("x".into(), now)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            }
        };
        for (patch, needle) in [
            (
                serde_json::json!({"endsAt": "tomorrow"}),
                r#"silence endsAt: "tomorrow" is not an RFC 3339 time"#,
            ),
            (
                serde_json::json!({"startsAt": "2026-13-01T00:00:00Z"}),
                "silence startsAt",
            ),
            (
                serde_json::json!({"endsAt": "2026-11-25T10:00:00Z"}),
                "start time must be before end time",
            ),
            (
                serde_json::json!({"startsAt": "2026-11-25T08:00:00Z", "endsAt": "2026-11-25T09:00:00Z"}),
                "end time can't be in the past",
            ),
            (
                serde_json::json!({"matchers": []}),
                "at least one matcher is required",
            ),
            (
                serde_json::json!({"matchers": [{"name": "a", "value": "(", "isRegex": true}]}),
                "silence matcher: bad regex \"(\" for label a",
            ),
            (
                serde_json::json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}]}),
                "must not match the empty string",
            ),
            (
                serde_json::json!({"matchers": [{"name": "1a", "value": "x", "isRegex": false}]}),
                "bad label name",
            ),
        ] {
            let e = err(patch.clone());
            assert!(e.contains(needle), "{patch}: {e}");
        }
        // Omitting a required field is refused by the JSON reader, naming the field.
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("comment");
        let e = serde_json::from_value::<PostableSilence>(v)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("missing field `comment`")));
    }

    #[test]
    fn rfc3339_helpers() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-11-25T11:00:00.250+01:00"),
            Some(ms("2026-11-25T10:00:00.250Z"))
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-25T10:00:00.123456789Z").map(|t| t % 1000),
            Some(123)
        );
        assert_eq!(parse_rfc3339_ms("2026-11-25 10:00"), None);
        assert_eq!(parse_rfc3339_ms(""), None);
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(ms("2026-11-25T10:00:00.5Z")),
            "2026-11-25T10:00:00.500Z"
        );
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
