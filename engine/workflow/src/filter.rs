//! Trigger filters: a dotted path into the trigger's object and an exact value or an anchored
//! regex (`r"…"` as in Keep, or `/…/`). A path that crosses a list matches when any element
//! does, so `alerts.name` matches an incident with any alert of that name.

use regex::Regex;
use serde_json::Value;

/// One compiled filter.
#[derive(Debug, Clone)]
pub struct Filter {
    path: Vec<String>,
    want: Want,
}

#[derive(Debug, Clone)]
enum Want {
    Exact(String),
    Regex(Regex),
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Filter {
    /// Compiles `key: value`.
    ///
    /// # Errors
    /// A bad regex or a value that is not a scalar.
    pub fn new(key: &str, value: &Value) -> Result<Filter, String> {
        if key.trim().is_empty() {
            return Err("filter key is empty".into());
        }
        let text = scalar(value)
            .ok_or_else(|| format!("filter {key:?}: value must be a string, number or bool"))?;
        let re = text
            .strip_prefix("r\"")
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| text.strip_prefix("r'").and_then(|r| r.strip_suffix('\'')))
            .or_else(|| {
                (text.len() >= 2 && text.starts_with('/') && text.ends_with('/'))
                    .then(|| &text[1..text.len() - 1])
            });
        let want = match re {
            Some(r) => Want::Regex(
                Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("filter {key:?}: bad regex {r:?}: {e}"))?,
            ),
            None => Want::Exact(text),
        };
        Ok(Filter {
            path: key.split('.').map(str::to_string).collect(),
            want,
        })
    }

    fn ok(&self, s: &str) -> bool {
        match &self.want {
            Want::Exact(e) => e == s,
            Want::Regex(r) => r.is_match(s),
        }
    }

    /// True when the value at the path (any, across lists) matches.
    pub fn matches(&self, v: &Value) -> bool {
        self.walk(v, 0)
    }

    fn walk(&self, v: &Value, i: usize) -> bool {
        if let Value::Array(a) = v {
            return a.iter().any(|x| self.walk(x, i));
        }
        if i == self.path.len() {
            return scalar(v).is_some_and(|s| self.ok(&s));
        }
        match v {
            Value::Object(o) => o.get(&self.path[i]).is_some_and(|x| self.walk(x, i + 1)),
            _ => false,
        }
    }
}

/// True when every filter matches.
pub fn all_match(filters: &[Filter], v: &Value) -> bool {
    filters.iter().all(|f| f.matches(v))
}
