//! The one YAML loader for everything aiops reads as YAML (the alerting configuration, workflow
//! and strategy files, and every YAML body an API accepts): `serde_yaml_ng`, behind a guard on
//! alias expansion.
//!
//! YAML anchors and aliases let a 22 KB text ("billion laughs") expand to millions of nodes,
//! which takes seconds of CPU and a lot of memory to deserialize. `serde_yaml_ng`'s own limit
//! (alias jumps up to 100 × the document's events) still lets such a file through, so before
//! the real parse a counting pass walks the expanded tree and stops as soon as it passes
//! [`MAX_EXPANDED_NODES`] (or one node per byte of text for a large file without tricks):
//! the cost of refusing is bounded by the limit, not by the expansion.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use std::cell::Cell;
use std::fmt;

/// Nodes (scalars, sequences, mappings) a YAML text may expand to through aliases. A text
/// without aliases has at most about one node per byte, so the limit used is the larger of
/// this and the text's length in bytes.
pub const MAX_EXPANDED_NODES: usize = 100_000;

/// Flow collections (`[ ]`, `{ }`) nested deeper than this are refused before the parse. The
/// YAML scanner keeps a record per open flow level and looks at them again for every token, so
/// 20,000 nested `{a: ` (85 KB) took 1.5 s of CPU before the deserializer's recursion limit
/// (128) refused them; no configuration nests anywhere near this deep.
pub const MAX_FLOW_DEPTH: usize = 1_000;

/// Why a YAML text was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Anchors and aliases expand the document past the node limit (the author must write the
    /// values out or split the file).
    #[error(
        "YAML aliases expand the document to more than {limit} nodes (limit: {MAX_EXPANDED_NODES} nodes \
         or one per byte of text, whichever is larger); refused without expanding it — write the \
         repeated values out or split the file"
    )]
    TooManyNodes {
        /// The limit that applied to this text.
        limit: usize,
    },
    /// Flow collections nested past [`MAX_FLOW_DEPTH`] (the author must flatten the value).
    #[error(
        "YAML flow collections ([ ] or {{ }}) nested deeper than {MAX_FLOW_DEPTH} levels at line \
         {line} column {column}; refused before parsing"
    )]
    TooDeep {
        /// 1-based line of the bracket that went past the limit.
        line: usize,
        /// 1-based column (characters) of that bracket.
        column: usize,
    },
    /// The text does not parse or does not fit the expected type (the author must fix it).
    #[error("{0}")]
    Parse(#[from] serde_yaml_ng::Error),
}

impl YamlError {
    /// The 1-based line the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            YamlError::TooManyNodes { .. } => None,
            YamlError::TooDeep { line, .. } => Some(*line),
            YamlError::Parse(e) => e.location().map(|l| l.line()),
        }
    }
}

/// Deserializes `text` after checking its alias expansion ([`check_expansion`]).
///
/// # Errors
/// [`YamlError::TooManyNodes`] for an alias bomb, [`YamlError::Parse`] otherwise.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    check_flow_depth(text)?;
    check_expansion(text)?;
    Ok(serde_yaml_ng::from_str(text)?)
}

/// Refuses a text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`], in one pass over
/// its characters. Brackets inside quoted strings and comments do not count; one inside a
/// plain or block scalar does, which could refuse only a text with a thousand unclosed
/// brackets in its values.
///
/// # Errors
/// [`YamlError::TooDeep`] naming where the limit was passed.
pub fn check_flow_depth(text: &str) -> Result<(), YamlError> {
    let mut depth = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let (mut double, mut single, mut escaped, mut comment) = (false, false, false, false);
    // Whether the previous character can precede a token (a quote or `#` starts one only there).
    let mut boundary = true;
    for ch in text.chars() {
        column += 1;
        if ch == '\n' {
            (line, column, comment, boundary) = (line + 1, 0, false, true);
            continue;
        }
        if comment {
            continue;
        }
        if double {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                double = false;
            }
            continue;
        }
        if single {
            // `''` inside a single-quoted string closes and reopens it: the same count.
            single = ch != '\'';
            continue;
        }
        match ch {
            '#' if boundary => comment = true,
            '"' if boundary => double = true,
            '\'' if boundary => single = true,
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(YamlError::TooDeep { line, column });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        boundary = ch.is_whitespace() || matches!(ch, '[' | '{' | ',' | ':' | '-');
    }
    Ok(())
}

/// Refuses a text whose anchors and aliases expand it past the node limit, after visiting at
/// most that many nodes. Texts without an alias (`*name`) skip the walk.
///
/// # Errors
/// [`YamlError::TooManyNodes`]. Other problems of the text are left to the real parse, which
/// reports them with their location.
pub fn check_expansion(text: &str) -> Result<(), YamlError> {
    if !text.contains('*') {
        return Ok(());
    }
    let limit = MAX_EXPANDED_NODES.max(text.len());
    let budget = Cell::new(limit);
    let exceeded = Cell::new(false);
    let seed = Count {
        budget: &budget,
        exceeded: &exceeded,
    };
    // Only the first document: the callers parse single documents and `from_str` refuses more.
    let mut repetition = false;
    if let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next()
        && let Err(e) = seed.deserialize(doc)
    {
        // serde_yaml_ng's own alias guard (jumps > 100 × events) can trip before the budget:
        // the same cause, reported the same way.
        repetition = e.to_string().contains("repetition limit");
    }
    if exceeded.get() || repetition {
        return Err(YamlError::TooManyNodes { limit });
    }
    Ok(())
}

/// A seed that visits every node of the expanded tree, spending one unit of budget per node.
#[derive(Clone, Copy)]
struct Count<'a> {
    budget: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Count<'_> {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("node limit"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.spend()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.spend()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.spend()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.spend()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.spend()?;
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.spend()?;
        self.deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged node (`!Tag value`): the tag, then the value.
        self.spend()?;
        let (_, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_EXPANDED_NODES, YamlError, from_str};
    use std::time::{Duration, Instant};

    /// The classic "billion laughs": nine levels of nine aliases, ~10⁹ nodes from ~1 KB.
    fn laughs(levels: usize) -> String {
        let mut s = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..levels {
            let refs = vec![format!("*a{}", i - 1); 9].join(",");
            s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        s
    }

    #[test]
    fn alias_bomb_is_refused_fast_with_the_limit_named() {
        let text = laughs(9);
        let t = Instant::now();
        let r = from_str::<serde_yaml_ng::Value>(&text);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains(&MAX_EXPANDED_NODES.to_string()) && e.contains("aliases"),
            "{e}"
        );
    }

    #[test]
    fn a_wide_22_kb_bomb_is_refused_by_the_budget() {
        // Few levels, wide lists: serde_yaml_ng's own guard (100 × events) would let this
        // expand to millions of nodes.
        let lols = vec!["lol"; 2500].join(",");
        let refs = |n: &str| vec![format!("*{n}"); 2200].join(",");
        let text = format!(
            "a: &a [{lols}]\nb: &b [{}]\nc: [{}]\n",
            refs("a"),
            refs("b")
        );
        assert!(text.len() > 20_000, "{}", text.len());
        let t = Instant::now();
        let e = from_str::<serde_yaml_ng::Value>(&text).err();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(matches!(e, Some(YamlError::TooManyNodes { .. })), "{e:?}");
    }

    #[test]
    fn ordinary_aliases_and_plain_files_load() {
        let text = "base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\nstar: '*not an alias*'\n";
        let v: serde_yaml_ng::Value = from_str(text).unwrap_or_default();
        assert_eq!(v["two"]["y"][1].as_i64(), Some(2));
        // A small expansion (three levels) stays under the limit.
        assert!(from_str::<serde_yaml_ng::Value>(&laughs(3)).is_ok());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_parse_with_its_place() {
        for (open, close) in [("{a: ", "}"), ("[", "]")] {
            let text = format!(
                "x: 1\ny: {}z{}\n",
                open.repeat(20_000),
                close.repeat(20_000)
            );
            let t = Instant::now();
            let e = from_str::<serde_yaml_ng::Value>(&text).err();
            assert!(
                t.elapsed() < Duration::from_millis(100),
                "{:?}",
                t.elapsed()
            );
            match e {
                Some(YamlError::TooDeep { line, column }) => {
                    assert_eq!(line, 2);
                    assert_eq!(column, 3 + 1000 * open.len() + 1);
                }
                other => panic!("{other:?}"),
            }
        }
        // At the limit the parser decides (serde's own recursion limit refuses it, quickly).
        let text = format!("y: {}z{}\n", "[".repeat(1_000), "]".repeat(1_000));
        let t = Instant::now();
        let e = from_str::<serde_yaml_ng::Value>(&text).err();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(matches!(e, Some(YamlError::Parse(_))), "{e:?}");
        // Brackets in quotes and comments do not count; ordinary nesting loads.
        let brackets = "[".repeat(2_000);
        let text =
            format!("a: \"{brackets}\"\nb: '{brackets}'\n# {brackets}\nc: [[1, {{d: [2]}}]]\n");
        let v: serde_yaml_ng::Value = from_str(&text).unwrap();
        assert_eq!(v["c"][0][1]["d"][0].as_i64(), Some(2));
    }

    #[test]
    fn parse_errors_keep_their_line() {
        let e = from_str::<serde_yaml_ng::Value>("a: 1\nb: [\n*x").err();
        assert!(matches!(e, Some(YamlError::Parse(_))), "{e:?}");
        assert!(e.and_then(|e| e.line()).is_some());
    }
}
