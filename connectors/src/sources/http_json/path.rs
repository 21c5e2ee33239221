//! The JSON path syntax of an `http_json` mapping — a small subset of JSONPath:
//!
//! | form | selects |
//! |---|---|
//! | `$` | the whole document (or record) |
//! | `a.b.c` or `$.a.b.c` | object members |
//! | `a[0]` | an array element |
//! | `a["x.y"]` | a member whose name has dots or brackets |
//! | `data[*]` | every element of an array (only in `rows`) |
//!
//! A path that does not match selects nothing (a missing optional field); it is never an error
//! at run time. Syntax errors are found when the source is configured.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
    /// Every element of an array.
    Each,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `text`.
    ///
    /// # Errors
    /// A message naming the position and what was expected.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let rest = t.strip_prefix('$').unwrap_or(t);
        let b = rest.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        // A path not starting with `$` starts with a bare member name.
        let mut expect_key = !t.starts_with('$') && !rest.is_empty() && !rest.starts_with('[');
        while i < b.len() || expect_key {
            if expect_key {
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                if i == start {
                    return Err(format!("{text:?}: a member name is missing at {start}"));
                }
                steps.push(Step::Key(rest[start..i].to_string()));
                expect_key = false;
                continue;
            }
            match b[i] {
                b'.' => {
                    i += 1;
                    expect_key = true;
                }
                b'[' => {
                    let close = rest[i..]
                        .find(']')
                        .map(|c| c + i)
                        .ok_or_else(|| format!("{text:?}: `[` at {i} is not closed"))?;
                    let inner = rest[i + 1..close].trim();
                    if inner == "*" {
                        steps.push(Step::Each);
                    } else if let Some(q) = inner
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                    {
                        steps.push(Step::Key(q.to_string()));
                    } else {
                        let n = inner.parse::<usize>().map_err(|_| {
                            format!("{text:?}: [{inner}] is not an index, [*] or a quoted name")
                        })?;
                        steps.push(Step::Index(n));
                    }
                    i = close + 1;
                }
                other => {
                    return Err(format!(
                        "{text:?}: unexpected {:?} at {i} (expected . or [)",
                        other as char
                    ));
                }
            }
        }
        Ok(JsonPath { steps })
    }

    /// Whether the path has a `[*]` (selects many values).
    pub fn has_each(&self) -> bool {
        self.steps.contains(&Step::Each)
    }

    /// The values the path selects in `v`.
    pub fn select<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![v];
        for s in &self.steps {
            let mut next = Vec::new();
            for c in cur {
                match (s, c) {
                    (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                    (Step::Index(n), Value::Array(a)) => next.extend(a.get(*n)),
                    (Step::Each, Value::Array(a)) => next.extend(a.iter()),
                    (Step::Each, Value::Object(m)) => next.extend(m.values()),
                    _ => {}
                }
            }
            cur = next;
        }
        cur
    }

    /// The one value the path selects (the first), if any and not `null`.
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.select(v).into_iter().next().filter(|v| !v.is_null())
    }
}
