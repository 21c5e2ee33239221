//! The built-in providers a workflow names by `type` alone, with no `[workflows.providers.NAME]`
//! (Keep's `context-provider` and `incident-db`): what the compiler checks about their `with:`
//! and the parts that need no I/O — the `incident-db` query language and the bounded lookback.
//! Their calls are effects like any provider's: the server runs them over the engine's own data
//! and the executor logs the result, so a replay or rebuild reuses it.
//!
//! `incident-db` query syntax: terms separated by spaces, all of which must hold. A term is
//! `field:value`, `field:"quoted value"` or `NOT field:value`; `AND` between terms is optional
//! (Keep writes it). Fields: `service`, `resolved` (`true`/`false`), `alertname`, `severity`,
//! `status` (`open`, `acknowledged`, `resolved`), `text` (a substring of the title). Values
//! compare case-insensitively. `OR` and parentheses are not supported (refused, naming them).

use serde_json::{Map, Value, json};

/// Kinds of the built-in providers.
pub const PROVIDER_KINDS: &[&str] = &[CONTEXT_PROVIDER, INCIDENT_DB];
/// Service context over a lookback.
pub const CONTEXT_PROVIDER: &str = "context-provider";
/// Past incidents.
pub const INCIDENT_DB: &str = "incident-db";
/// Longest `lookbackPeriod` of `context-provider`.
pub const MAX_LOOKBACK_MS: i64 = 24 * 3_600_000;
/// Default `lookbackPeriod`.
pub const DEFAULT_LOOKBACK_MS: i64 = 30 * 60_000;
/// Most incidents `incident-db` returns.
pub const MAX_LIMIT: u64 = 50;
/// Default `limit`.
pub const DEFAULT_LIMIT: u64 = 10;

/// True for a built-in provider kind.
pub fn is_builtin_provider(kind: &str) -> bool {
    PROVIDER_KINDS.contains(&kind)
}

/// Parameters the compiler adds to a built-in provider's `with:` when the author did not set
/// them: what the call is about (the trigger's service) and when (the execution's start, in log
/// time), rendered into the logged intent so the call does not depend on when it runs.
pub fn default_params(kind: &str) -> Vec<(&'static str, Value)> {
    match kind {
        CONTEXT_PROVIDER => vec![
            (
                "service",
                json!(
                    "{{ alert.service if alert is defined else (incident.service if incident is defined and incident.service else '') }}"
                ),
            ),
            ("at_ms", json!("{{ execution.started_ms }}")),
        ],
        _ => Vec::new(),
    }
}

/// `lookbackPeriod` in ms (default 30m).
///
/// # Errors
/// Not a duration, zero, or longer than 24h.
pub fn lookback_ms(params: &Map<String, Value>) -> Result<i64, String> {
    let Some(v) = params.get("lookbackPeriod") else {
        return Ok(DEFAULT_LOOKBACK_MS);
    };
    let s = v
        .as_str()
        .ok_or_else(|| format!("lookbackPeriod must be a duration such as \"30m\", got {v}"))?;
    let ms = crate::compile::duration_ms(s).map_err(|e| format!("lookbackPeriod: {e}"))?;
    if ms <= 0 || ms > MAX_LOOKBACK_MS {
        return Err(format!(
            "lookbackPeriod {s:?} must be more than 0 and at most 24h"
        ));
    }
    Ok(ms)
}

/// `limit` (default 10, at most 50).
///
/// # Errors
/// Not a positive integer, or above 50.
pub fn limit(params: &Map<String, Value>) -> Result<usize, String> {
    let n = match params.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("limit must be a whole number 1..=50, got {n}"))?,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("limit must be a whole number 1..=50, got {s:?}"))?,
        Some(o) => return Err(format!("limit must be a whole number 1..=50, got {o}")),
    };
    if n == 0 || n > MAX_LIMIT {
        return Err(format!("limit must be 1..=50, got {n}"));
    }
    Ok(usize::try_from(n).unwrap_or(50))
}

/// Checks a built-in provider's literal parameters at load (templated values are checked when
/// the call runs).
///
/// # Errors
/// What is wrong.
pub fn check_params(kind: &str, with: &Map<String, Value>) -> Result<(), String> {
    let literal = |k: &str| {
        with.get(k)
            .is_some_and(|v| !v.as_str().is_some_and(crate::template::is_template))
    };
    let known: &[&str] = match kind {
        CONTEXT_PROVIDER => &["lookbackPeriod", "service", "at_ms"],
        INCIDENT_DB => &["query", "limit"],
        _ => return Ok(()),
    };
    if let Some(k) = with.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "{kind}: unknown parameter {k:?} (known: {})",
            known.join(", ")
        ));
    }
    match kind {
        CONTEXT_PROVIDER if literal("lookbackPeriod") => lookback_ms(with).map(|_| ()),
        INCIDENT_DB => {
            if literal("limit") {
                limit(with)?;
            }
            match with.get("query") {
                None => Err(format!("{kind}: `query` is required")),
                // Templated values are checked with a stand-in for each `{{ … }}`, so a bad
                // field name is refused at load even in `service:{{ alert.service }} AND x:y`.
                Some(Value::String(q)) if !q.contains("{%") => IncidentQuery::parse(&stand_in(q))
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Some(Value::String(_)) => Ok(()),
                Some(o) => Err(format!("{kind}: query must be a string, got {o}")),
            }
        }
        _ => Ok(()),
    }
}

/// `q` with every `{{ … }}` replaced by `x`.
fn stand_in(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut rest = q;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        out.push('x');
        rest = rest[i..].find("}}").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out
}

/// A field of the incident query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Any of the incident's services (its alerts', its root causes').
    Service,
    /// Resolved or not (`true`/`false`).
    Resolved,
    /// Any of its alerts' names.
    AlertName,
    /// Its severity.
    Severity,
    /// `open`, `acknowledged` or `resolved`.
    Status,
    /// A substring of its title.
    Text,
}

const FIELDS: &str = "service, resolved, alertname, severity, status, text";

/// One term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Negated (`NOT`).
    pub not: bool,
    /// The field.
    pub field: Field,
    /// The value, lower-cased.
    pub value: String,
}

/// A parsed query: all terms must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentQuery {
    /// The terms.
    pub terms: Vec<Term>,
}

/// Why a query was refused: the author must fix the named term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incident-db: bad query term {term:?}: {reason}")]
pub struct QueryError {
    /// The term as written.
    pub term: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a query is matched against.
#[derive(Debug, Clone, Default)]
pub struct IncidentFacts<'a> {
    /// Services.
    pub services: Vec<&'a str>,
    /// Resolved.
    pub resolved: bool,
    /// Alert names.
    pub alert_names: Vec<&'a str>,
    /// Severity.
    pub severity: &'a str,
    /// Status word.
    pub status: &'a str,
    /// Title.
    pub title: &'a str,
}

/// Splits a query into raw terms, keeping quoted values (with their spaces) together.
fn tokens(q: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(QueryError {
            term: cur,
            reason: "the quote is not closed".into(),
        });
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

impl IncidentQuery {
    /// Parses a query.
    ///
    /// # Errors
    /// [`QueryError`] naming the first bad term.
    pub fn parse(q: &str) -> Result<IncidentQuery, QueryError> {
        let mut terms = Vec::new();
        let mut not = false;
        let mut expect_term = false;
        for raw in tokens(q)? {
            let bad = |reason: String| QueryError {
                term: raw.clone(),
                reason,
            };
            match raw.as_str() {
                "AND" | "and" => {
                    if terms.is_empty() || expect_term {
                        return Err(bad("AND needs a term on both sides".into()));
                    }
                    expect_term = true;
                    continue;
                }
                "NOT" | "not" => {
                    not = !not;
                    expect_term = true;
                    continue;
                }
                "OR" | "or" => {
                    return Err(bad(
                        "OR is not supported (terms are joined by AND; run two queries)".into(),
                    ));
                }
                _ => {}
            }
            if raw.starts_with('(') || raw.ends_with(')') {
                return Err(bad("parentheses are not supported".into()));
            }
            let Some((f, v)) = raw.split_once(':') else {
                return Err(bad(format!("expected field:value (fields: {FIELDS})")));
            };
            let field = match f.to_ascii_lowercase().as_str() {
                "service" => Field::Service,
                "resolved" => Field::Resolved,
                "alertname" | "alert" | "name" => Field::AlertName,
                "severity" => Field::Severity,
                "status" => Field::Status,
                "text" | "title" => Field::Text,
                other => return Err(bad(format!("unknown field {other:?} (fields: {FIELDS})"))),
            };
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            if v.is_empty() {
                return Err(bad("the value is empty".into()));
            }
            let value = v.to_lowercase();
            if field == Field::Resolved && !matches!(value.as_str(), "true" | "false") {
                return Err(bad("resolved must be true or false".into()));
            }
            if field == Field::Status
                && !matches!(value.as_str(), "open" | "acknowledged" | "resolved")
            {
                return Err(bad("status must be open, acknowledged or resolved".into()));
            }
            terms.push(Term { not, field, value });
            not = false;
            expect_term = false;
        }
        if expect_term {
            return Err(QueryError {
                term: q.trim().to_string(),
                reason: "the query ends with AND or NOT".into(),
            });
        }
        Ok(IncidentQuery { terms })
    }

    /// True when every term holds for `f`.
    pub fn matches(&self, f: &IncidentFacts<'_>) -> bool {
        self.terms.iter().all(|t| {
            let eq = |s: &str| s.to_lowercase() == t.value;
            let hit = match t.field {
                Field::Service => f.services.iter().any(|s| eq(s)),
                Field::Resolved => f.resolved == (t.value == "true"),
                Field::AlertName => f.alert_names.iter().any(|s| eq(s)),
                Field::Severity => eq(f.severity),
                Field::Status => eq(f.status),
                Field::Text => f.title.to_lowercase().contains(&t.value),
            };
            hit != t.not
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts<'a>(svc: &'a str, resolved: bool, title: &'a str) -> IncidentFacts<'a> {
        IncidentFacts {
            services: vec![svc],
            resolved,
            alert_names: vec!["HighLatency"],
            severity: "critical",
            status: if resolved { "resolved" } else { "open" },
            title,
        }
    }

    #[test]
    fn and_terms_quotes_and_not() {
        let q = IncidentQuery::parse("service:api AND resolved:true").unwrap();
        assert!(q.matches(&facts("api", true, "x")));
        assert!(!q.matches(&facts("api", false, "x")));
        assert!(!q.matches(&facts("web", true, "x")));
        let q = IncidentQuery::parse(r#"text:"disk full" NOT service:web"#).unwrap();
        assert!(q.matches(&facts("api", true, "Disk full on api")));
        assert!(!q.matches(&facts("web", true, "Disk full on web")));
        assert!(!q.matches(&facts("api", true, "Disk ok")));
        let q = IncidentQuery::parse("alertname:highlatency severity:CRITICAL").unwrap();
        assert!(q.matches(&facts("api", false, "")));
    }

    #[test]
    fn bad_terms_are_named() {
        for (q, term) in [
            ("service:api AND colour:red", "colour:red"),
            ("service:api OR service:web", "OR"),
            ("resolved:maybe", "resolved:maybe"),
            ("justtext", "justtext"),
            ("service:", "service:"),
            ("AND service:api", "AND"),
        ] {
            let e = IncidentQuery::parse(q).unwrap_err();
            assert_eq!(e.term, term, "{q}: {e}");
            assert!(e.to_string().contains(term));
        }
        assert!(IncidentQuery::parse("service:api AND").is_err());
        assert!(IncidentQuery::parse(r#"text:"open"#).is_err());
    }

    #[test]
    fn limits_and_lookback_are_bounded() {
        let m = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(limit(&m(json!({"limit": 5}))).unwrap(), 5);
        assert_eq!(limit(&m(json!({"limit": "7"}))).unwrap(), 7);
        assert_eq!(limit(&m(json!({}))).unwrap(), 10);
        assert!(limit(&m(json!({"limit": 51}))).is_err());
        assert!(limit(&m(json!({"limit": 0}))).is_err());
        assert_eq!(
            lookback_ms(&m(json!({"lookbackPeriod": "30m"}))).unwrap(),
            1_800_000
        );
        assert!(lookback_ms(&m(json!({"lookbackPeriod": "25h"}))).is_err());
        assert!(lookback_ms(&m(json!({"lookbackPeriod": "soon"}))).is_err());
    }
}
