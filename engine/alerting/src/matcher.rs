//! Label matchers in Alertmanager's syntax (`name="value"`, `!=`, `=~`, `!~`), used by routes,
//! inhibition rules, silences and API filters.
//!
//! The rules are Alertmanager's (`pkg/labels/parse.go`, `matcher.go`) so a config or an `amtool`
//! filter means the same here: regexes are anchored (`^(?:…)$`), a missing label matches as the
//! empty string, values may be quoted or not, and inside a value `\"`, `\\` and `\n` are escapes
//! while any other backslash is kept as written (so `=~"\d+"` is the regex `\d+`).

use crate::model::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The comparison of a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals.
    Eq,
    /// `!=`: the value differs.
    NotEq,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    NotRe,
}

impl MatchOp {
    /// The operator as written in the matcher syntax.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }

    /// Whether the value is a regex (`=~`, `!~`); API forms carry this as `isRegex`.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Re | MatchOp::NotRe)
    }

    /// Whether the operator is positive (`=`, `=~`); API forms carry this as `isEqual`.
    pub fn is_equal(self) -> bool {
        matches!(self, MatchOp::Eq | MatchOp::Re)
    }

    /// The operator for the API's two flags.
    pub fn from_flags(is_regex: bool, is_equal: bool) -> MatchOp {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Eq,
            (false, false) => MatchOp::NotEq,
            (true, true) => MatchOp::Re,
            (true, false) => MatchOp::NotRe,
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a matcher was refused; the user wrote it, so each variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The text is not `name<op>value`.
    #[error("bad matcher {text:?}: {reason}")]
    Syntax {
        /// The matcher (or list) as given.
        text: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// The label name is empty.
    #[error("empty label name in matcher")]
    EmptyName,
    /// The label name is not a Prometheus label name.
    #[error("bad label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    Name(String),
    /// The regex does not compile.
    #[error("bad regex {value:?} for label {name}: {reason}")]
    Regex {
        /// Label name.
        name: String,
        /// The regex as given.
        value: String,
        /// The regex compiler's message.
        reason: String,
    },
}

/// One label matcher; for `=~` and `!~` it carries its compiled, anchored regex.
#[derive(Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value, or regex source for `=~` / `!~` (unanchored, as written).
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

impl Eq for Matcher {}

/// Whether `n` is a Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Matcher {
    /// A matcher; compiles the regex of `=~` and `!~` once, anchored as `^(?:value)$`.
    ///
    /// # Errors
    /// [`MatcherError`] for an empty or bad label name, or a regex that does not compile.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        if name.is_empty() {
            return Err(MatcherError::EmptyName);
        }
        if !is_valid_label_name(name) {
            return Err(MatcherError::Name(name.to_string()));
        }
        let re = if op.is_regex() {
            let re =
                regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::Regex {
                    name: name.to_string(),
                    value: value.to_string(),
                    reason: e.to_string(),
                })?;
            Some(re)
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses one matcher: `name="value"`, `name=~"a|b"`, `name!=value`, with whitespace allowed
    /// around each part. Quoted values may contain `\"`, `\\` and `\n`; unquoted ones are
    /// trimmed and unescaped the same way.
    ///
    /// # Errors
    /// [`MatcherError`] naming the problem (a missing operator, an unbalanced quote, a bad name
    /// or regex).
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let s = text.trim();
        let syntax = |reason: String| MatcherError::Syntax {
            text: text.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(syntax("empty matcher".into()));
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let name = &s[..end];
        let rest = s[end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEq, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else if name.is_empty() {
            return Err(syntax(
                "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) at the start".into(),
            ));
        } else {
            return Err(syntax(format!(
                "expected one of =, !=, =~, !~ after {name:?}"
            )));
        };
        if name.is_empty() {
            return Err(syntax("empty label name before the operator".into()));
        }
        let value = unescape(rest.trim()).map_err(|r| syntax(r.into()))?;
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

/// Alertmanager's value unescaping: an optional pair of surrounding quotes; `\"`, `\\`, `\n`
/// are escapes, any other backslash is literal; an unescaped `"` may only close a quoted value.
fn unescape(raw: &str) -> Result<String, &'static str> {
    let (body, quoted) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let mut out = String::with_capacity(body.len());
    let mut closed = false;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek().map(|&(_, n)| n) {
                Some('n') => {
                    out.push('\n');
                    chars.next();
                }
                Some(n @ ('"' | '\\')) => {
                    out.push(n);
                    chars.next();
                }
                // A spurious escape (`\d`) or a trailing backslash is kept as written.
                _ => out.push('\\'),
            },
            '"' if quoted && i + 1 == body.len() => closed = true,
            '"' if quoted => return Err("text after the closing quote (escape a quote as \\\")"),
            '"' => return Err("unescaped \" in an unquoted value (quote the value)"),
            c => out.push(c),
        }
    }
    if quoted && !closed {
        return Err("missing closing quote");
    }
    Ok(out)
}

impl fmt::Display for Matcher {
    /// The canonical form, `name="value"`, escaped so [`Matcher::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = String::with_capacity(self.value.len() + 2);
        for c in self.value.chars() {
            match c {
                '\\' => v.push_str("\\\\"),
                '\n' => v.push_str("\\n"),
                '"' => v.push_str("\\\""),
                c => v.push(c),
            }
        }
        write!(f, "{}{}\"{}\"", self.name, self.op, v)
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;
    fn from_str(s: &str) -> Result<Matcher, MatcherError> {
        Matcher::parse(s)
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Matcher, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list of matchers, optionally in braces
/// (`{alertname="X", severity=~"crit.*"}`), as `amtool` and the API filters take them. Commas
/// inside quotes belong to the value; one trailing comma is allowed; `{}` is the empty list.
///
/// # Errors
/// [`MatcherError`] for the first bad matcher, an empty one between commas, or an unclosed brace.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .trim_end()
            .strip_suffix('}')
            .ok_or_else(|| MatcherError::Syntax {
                text: text.to_string(),
                reason: "missing closing brace".into(),
            })?;
    }
    let mut tokens = Vec::new();
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
            tokens.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        tokens.push(cur);
    }
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if t.trim().is_empty() {
            return Err(MatcherError::Syntax {
                text: text.to_string(),
                reason: format!("matcher {} is empty (two commas in a row?)", i + 1),
            });
        }
        out.push(Matcher::parse(t)?);
    }
    Ok(out)
}

/// Whether all matchers match (true for none), the way routes, inhibitions and silences combine
/// them.
pub fn all_match(ms: &[Matcher], labels: &Labels) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

/// Matchers from Alertmanager's deprecated `match:` (equality) and `match_re:` (regex) maps, so
/// old configs keep working; equality matchers come first, each group in name order.
///
/// # Errors
/// [`MatcherError`] for a bad name or regex.
pub fn matchers_from_legacy(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, MatcherError> {
    let mut out = Vec::with_capacity(eq.len() + re.len());
    for (k, v) in eq {
        out.push(Matcher::new(k, MatchOp::Eq, v)?);
    }
    for (k, v) in re {
        out.push(Matcher::new(k, MatchOp::Re, v)?);
    }
    Ok(out)
}

/// A matcher as Alertmanager's API v2 writes it (`matcher` in `openapi.yaml`), for silences and
/// anything else `amtool` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// `true` for `=`/`=~`, `false` for `!=`/`!~`; defaults to `true` because clients older than
    /// Alertmanager 0.22 omit it.
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
        Matcher::new(
            &self.name,
            MatchOp::from_flags(self.is_regex, self.is_equal),
            &self.value,
        )
    }

    /// The API form of a matcher.
    pub fn from_matcher(m: &Matcher) -> ApiMatcher {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
        }
    }
}

impl From<&Matcher> for ApiMatcher {
    fn from(m: &Matcher) -> ApiMatcher {
        ApiMatcher::from_matcher(m)
    }
}

impl TryFrom<&ApiMatcher> for Matcher {
    type Error = MatcherError;
    fn try_from(a: &ApiMatcher) -> Result<Matcher, MatcherError> {
        a.to_matcher()
    }
}

impl TryFrom<ApiMatcher> for Matcher {
    type Error = MatcherError;
    fn try_from(a: ApiMatcher) -> Result<Matcher, MatcherError> {
        a.to_matcher()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(s: &str) -> Matcher {
        Matcher::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_all_operators_and_quoting() {
        let ms = parse_matchers(r#"{alertname="Disk, full", sev=~"crit.*",team!=db, x!~"a\"b"}"#)
            .unwrap();
        let shown: Vec<String> = ms.iter().map(ToString::to_string).collect();
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
            assert_eq!(&m(s).to_string(), s);
        }
    }

    #[test]
    fn alertmanager_documented_examples() {
        // The examples of ParseMatchers' doc comment in pkg/labels/parse.go.
        let ms = parse_matchers(r#"{foo = "bar", dings != "bums", }"#).unwrap();
        assert_eq!(ms, [m(r#"foo="bar""#), m(r#"dings!="bums""#)]);
        assert_eq!(parse_matchers("foo=bar,dings!=bums").unwrap(), ms);
        assert_eq!(parse_matchers("foo=bar, dings!=bums").unwrap(), ms);
        let q = parse_matchers(r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#)
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            q[0].value,
            r#"She said: "Hi, ladies! That's gender-neutral…""#
        );
        let sc = parse_matchers(r#"statuscode=~"5..""#).unwrap();
        assert!(sc[0].matches(&l(&[("statuscode", "503")])));
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert!(parse_matchers("").unwrap().is_empty());
    }

    #[test]
    fn escapes_follow_alertmanager() {
        // A spurious escape keeps its backslash, so regex classes survive quoting.
        let d = m(r#"code=~"\d+""#);
        assert_eq!(d.value, r"\d+");
        assert!(d.matches(&l(&[("code", "503")])) && !d.matches(&l(&[("code", "5x")])));
        assert_eq!(d.to_string(), r#"code=~"\\d+""#);
        assert_eq!(m(&d.to_string()), d);
        assert_eq!(m(r#"a="x\ny""#).value, "x\ny");
        assert_eq!(m(r#"a="x\\y""#).value, r"x\y");
        assert_eq!(m(r"a=x\y").value, r"x\y");
        assert_eq!(m(r#"a = "  padded  " "#).value, "  padded  ");
        assert_eq!(m("a=").value, "");
        assert_eq!(m(r#"a="""#).value, "");
        let nl = Matcher::new("a", MatchOp::Eq, "1\n2\"3\\").unwrap();
        assert_eq!(nl.to_string(), r#"a="1\n2\"3\\""#);
        assert_eq!(m(&nl.to_string()), nl);
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let re = m(r#"sev=~"crit""#);
        assert!(re.matches(&l(&[("sev", "crit")])));
        assert!(!re.matches(&l(&[("sev", "critical")])));
        let alt = m(r#"team=~"db|infra""#);
        assert!(alt.matches(&l(&[("team", "infra")])) && !alt.matches(&l(&[("team", "dbx")])));
        let empty = m(r#"team="""#);
        assert!(empty.matches(&l(&[])));
        assert!(!m(r#"team!="""#).matches(&l(&[])));
        assert!(m(r#"team!="db""#).matches(&l(&[])));
        let ne = m(r#"team!~"db|web""#);
        assert!(ne.matches(&l(&[("team", "ops")])) && !ne.matches(&l(&[("team", "db")])));
        assert!(ne.matches(&l(&[])));
        assert!(m(r#"x=~".*""#).matches(&l(&[])));
        assert!(all_match(&[], &l(&[])));
        assert!(!all_match(&[re, alt], &l(&[("sev", "crit")])));
    }

    #[test]
    fn bad_matchers_say_why() {
        for (text, needle) in [
            (
                "foo~bar",
                r#"bad matcher "foo~bar": expected one of =, !=, =~, !~ after "foo""#,
            ),
            ("foo", r#"expected one of =, !=, =~, !~ after "foo""#),
            ("=x", "empty label name"),
            ("", "empty matcher"),
            ("-a=b", "expected a label name"),
            (r#"a=~"(""#, r#"bad regex "(" for label a"#),
            (r#"a="x"#, "missing closing quote"),
            (r#"a="x\""#, "missing closing quote"),
            (r#"a="x" y"#, "text after the closing quote"),
            (r#"a=x"y"#, "unquoted value"),
            ("1a=b", "bad label name \"1a\""),
        ] {
            let e = Matcher::parse(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{text}: {e}");
        }
        for (text, needle) in [
            (r#"{a="b""#, "missing closing brace"),
            ("a=b,,c=d", "matcher 2 is empty"),
            (",a=b", "matcher 1 is empty"),
        ] {
            let e = parse_matchers(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert_eq!(
            Matcher::new("", MatchOp::Eq, "x"),
            Err(MatcherError::EmptyName)
        );
        assert_eq!(
            Matcher::new("a-b", MatchOp::Eq, "x"),
            Err(MatcherError::Name("a-b".into()))
        );
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Deserialize, Serialize)]
        struct Cfg {
            matchers: Vec<Matcher>,
        }
        let c: Cfg =
            serde_yaml_ng::from_str("matchers: ['severity=\"critical\"', 'team=~\"db|infra\"']")
                .unwrap();
        assert_eq!(c.matchers[1].op, MatchOp::Re);
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(
            j,
            r#"{"matchers":["severity=\"critical\"","team=~\"db|infra\""]}"#
        );
        let bad = serde_yaml_ng::from_str::<Cfg>("matchers: ['a=~\"(\"']");
        assert!(
            bad.err()
                .is_some_and(|e| e.to_string().contains("bad regex"))
        );
    }

    #[test]
    fn legacy_maps() {
        let eq = BTreeMap::from([("service".to_string(), "db".to_string())]);
        let re = BTreeMap::from([("severity".to_string(), "crit.*|page".to_string())]);
        let ms = matchers_from_legacy(&eq, &re).unwrap();
        assert_eq!(ms, [m(r#"service="db""#), m(r#"severity=~"crit.*|page""#)]);
        let bad = BTreeMap::from([("x".to_string(), "(".to_string())]);
        assert!(matchers_from_legacy(&eq, &bad).is_err());
    }

    #[test]
    fn api_form_round_trips() {
        let j = r#"{"name":"job","value":"a|b","isRegex":true,"isEqual":false}"#;
        let a: ApiMatcher = serde_json::from_str(j).unwrap();
        let mm = Matcher::try_from(&a).unwrap();
        assert_eq!(mm.op, MatchOp::NotRe);
        assert_eq!(ApiMatcher::from(&mm), a);
        assert_eq!(serde_json::to_string(&a).unwrap(), j);
        let old: ApiMatcher =
            serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false}"#).unwrap();
        assert!(old.is_equal);
        assert_eq!(old.to_matcher().unwrap().op, MatchOp::Eq);
        for op in [MatchOp::Eq, MatchOp::NotEq, MatchOp::Re, MatchOp::NotRe] {
            assert_eq!(MatchOp::from_flags(op.is_regex(), op.is_equal()), op);
        }
    }

    proptest! {
        #[test]
        fn display_parses_back(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            value in "\\PC{0,12}|[ ,\"\\\\\\n{}=~!a]{0,8}",
            op in 0..4usize,
        ) {
            let op = [MatchOp::Eq, MatchOp::NotEq, MatchOp::Re, MatchOp::NotRe][op];
            let value = if op.is_regex() { regex::escape(&value) } else { value };
            let a = Matcher::new(&name, op, &value).unwrap();
            let back = Matcher::parse(&a.to_string()).unwrap();
            prop_assert_eq!(&back, &a);
            let list = format!("{{{a}, {a}}}");
            prop_assert_eq!(parse_matchers(&list).unwrap(), vec![a.clone(), a]);
        }
    }
}
