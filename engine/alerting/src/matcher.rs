//! Label matchers in Alertmanager's syntax (`name="value"`, `!=`, `=~`, `!~`), used by routes,
//! inhibition rules, silences and API filters. Regexes are anchored, and a missing label matches
//! as the empty string, as in Alertmanager.

use crate::model::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The comparison of a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `=~` (anchored regex)
    Re,
    /// `!~` (anchored regex, negated)
    NotRe,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// Why a matcher was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The text is not `name<op>value`.
    #[error("bad matcher {text:?}: {reason}")]
    Syntax {
        /// The matcher as given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The label name is not valid.
    #[error("bad label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    Name(String),
    /// The regex does not compile.
    #[error("bad regex {value:?} for {name}: {reason}")]
    Regex {
        /// Label name.
        name: String,
        /// The regex.
        value: String,
        /// The compiler's message.
        reason: String,
    },
}

/// One matcher.
#[derive(Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regex.
    pub value: String,
    re: Option<regex::Regex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Matcher {
    /// A matcher; compiles the regex of `=~` and `!~`.
    ///
    /// # Errors
    /// [`MatcherError`] for a bad label name or regex.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        if !valid_name(name) {
            return Err(MatcherError::Name(name.to_string()));
        }
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => {
                Some(regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    MatcherError::Regex {
                        name: name.to_string(),
                        value: value.to_string(),
                        reason: e.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses one matcher: `name="value"`, `name=~"a|b"`, `name!=value` (unquoted values are
    /// taken as written, trimmed), with `\"` and `\\` escapes inside quotes.
    ///
    /// # Errors
    /// [`MatcherError`] naming the problem.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let s = text.trim();
        let syntax = |reason: &str| MatcherError::Syntax {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| syntax("expected one of =, !=, =~, !~ after the label name"))?;
        let name = &s[..end];
        if name.is_empty() {
            return Err(syntax("empty label name"));
        }
        let rest = s[end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEq, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else {
            return Err(syntax(&format!(
                "expected one of =, !=, =~, !~ after {name:?}"
            )));
        };
        let rest = rest.trim();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(x) => out.push(x),
                        None => return Err(syntax("unfinished escape")),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(syntax("missing closing quote"));
            }
            if !chars.as_str().trim().is_empty() {
                return Err(syntax("text after the closing quote"));
            }
            out
        } else {
            rest.to_string()
        };
        Matcher::new(name, op, &value)
    }

    /// Whether `labels` satisfy the matcher (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        self.matches_value(v)
    }

    /// Whether a label value satisfies the matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::NotEq => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value.replace('\\', "\\\\").replace('"', "\\\"");
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), v)
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Matcher, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list of matchers, optionally in braces
/// (`{alertname="X", severity=~"crit.*"}`); commas inside quotes belong to the value.
///
/// # Errors
/// [`MatcherError`] for the first bad matcher.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| MatcherError::Syntax {
                text: text.to_string(),
                reason: "missing closing brace".into(),
            })?;
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ',' && !quoted {
            if !cur.trim().is_empty() {
                out.push(Matcher::parse(&cur)?);
            }
            cur.clear();
            continue;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(Matcher::parse(&cur)?);
    }
    Ok(out)
}

/// Whether all matchers match (true for none).
pub fn all_match(ms: &[Matcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

/// Matchers from Alertmanager's deprecated `match:` / `match_re:` maps.
///
/// # Errors
/// [`MatcherError`] for a bad name or regex.
pub fn matchers_from_legacy(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, MatcherError> {
    let mut out = Vec::new();
    for (k, v) in eq {
        out.push(Matcher::new(k, MatchOp::Eq, v)?);
    }
    for (k, v) in re {
        out.push(Matcher::new(k, MatchOp::Re, v)?);
    }
    Ok(out)
}

/// A matcher as Alertmanager's API v2 writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// `true` for `=`/`=~`, `false` for `!=`/`!~` (default `true`, as older clients omit it).
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl ApiMatcher {
    /// The matcher it stands for.
    ///
    /// # Errors
    /// [`MatcherError`] for a bad name or regex.
    pub fn to_matcher(&self) -> Result<Matcher, MatcherError> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Eq,
            (false, false) => MatchOp::NotEq,
            (true, true) => MatchOp::Re,
            (true, false) => MatchOp::NotRe,
        };
        Matcher::new(&self.name, op, &self.value)
    }

    /// The API form of a matcher.
    pub fn from_matcher(m: &Matcher) -> ApiMatcher {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: matches!(m.op, MatchOp::Re | MatchOp::NotRe),
            is_equal: matches!(m.op, MatchOp::Eq | MatchOp::Re),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_all_operators_and_quoting() {
        let m = parse_matchers(r#"{alertname="Disk, full", sev=~"crit.*",team!=db, x!~"a\"b"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let shown: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"alertname="Disk, full""#,
                r#"sev=~"crit.*""#,
                r#"team!="db""#,
                r#"x!~"a\"b""#
            ]
        );
        for s in &shown {
            assert_eq!(
                &Matcher::parse(s).map(|m| m.to_string()).unwrap_or_default(),
                s
            );
        }
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let m = Matcher::parse(r#"sev=~"crit""#).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.matches(&l(&[("sev", "crit")])));
        assert!(!m.matches(&l(&[("sev", "critical")])));
        let empty = Matcher::parse(r#"team="""#).unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.matches(&l(&[])));
        let ne = Matcher::parse(r#"team!~"db|web""#).unwrap_or_else(|e| panic!("{e}"));
        assert!(ne.matches(&l(&[("team", "ops")])) && !ne.matches(&l(&[("team", "db")])));
    }

    #[test]
    fn bad_matchers_say_why() {
        for (text, needle) in [
            ("foo~bar", "expected one of"),
            ("=x", "empty label name"),
            (r#"a=~"(""#, "bad regex"),
            (r#"a="x"#, "missing closing quote"),
            ("1a=b", "bad label name"),
        ] {
            let e = Matcher::parse(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn api_form_round_trips() {
        let j = r#"{"name":"job","value":"a|b","isRegex":true,"isEqual":false}"#;
        let a: ApiMatcher = serde_json::from_str(j).unwrap_or_else(|e| panic!("{e}"));
        let m = a.to_matcher().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.op, MatchOp::NotRe);
        assert_eq!(ApiMatcher::from_matcher(&m), a);
        let old: ApiMatcher = serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(old.is_equal);
    }
}
