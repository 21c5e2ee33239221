//! The range macros of a pull query (`$__from`, `$__to`, `$__from_ms`, `$__to_ms`) turned into
//! the database's bound parameters — never into spliced text.
//!
//! A small lexer skips string literals, quoted identifiers, comments and (PostgreSQL)
//! dollar-quoted strings, so a macro written inside a literal stays text. Placeholders the user
//! wrote themselves (`$1`, `?`) are refused: aiops binds exactly the parameters it rewrote.

/// Which range value a bound parameter carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Start of the range, a timestamp (UTC).
    From,
    /// End of the range (exclusive), a timestamp (UTC).
    To,
    /// Start of the range, Unix milliseconds (integer).
    FromMs,
    /// End of the range (exclusive), Unix milliseconds (integer).
    ToMs,
}

impl Param {
    /// The macro as written in a query.
    pub fn macro_name(self) -> &'static str {
        match self {
            Param::From => "$__from",
            Param::To => "$__to",
            Param::FromMs => "$__from_ms",
            Param::ToMs => "$__to_ms",
        }
    }

    /// The ClickHouse query-parameter name (sent as `param_<name>`).
    pub fn clickhouse_name(self) -> &'static str {
        match self {
            Param::From => "aiops_from",
            Param::To => "aiops_to",
            Param::FromMs => "aiops_from_ms",
            Param::ToMs => "aiops_to_ms",
        }
    }

    /// The value for the range `[from_ms, to_ms)`, in ms.
    pub fn ms(self, from_ms: i64, to_ms: i64) -> i64 {
        match self {
            Param::From | Param::FromMs => from_ms,
            Param::To | Param::ToMs => to_ms,
        }
    }

    /// Whether the parameter is a timestamp (else an integer of ms).
    pub fn is_timestamp(self) -> bool {
        matches!(self, Param::From | Param::To)
    }
}

/// The SQL dialect, for quoting rules and placeholder syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: `$1`, `$2`, … (each distinct macro one parameter).
    Postgres,
    /// MySQL / MariaDB: `?` per occurrence.
    Mysql,
    /// ClickHouse query parameters: `{aiops_from:DateTime64(3, 'UTC')}`.
    ClickHouse,
    /// ClickHouse before query parameters (18.x): the range as numeric literals aiops formats
    /// from its own integers (no user text is ever spliced).
    ClickHouseInline,
}

/// A query with its macros rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The SQL sent to the database.
    pub sql: String,
    /// What to bind, in placeholder order (PostgreSQL: per `$n`; MySQL: per `?`; ClickHouse:
    /// each distinct parameter once).
    pub params: Vec<Param>,
}

/// Why a query cannot be used; whoever wrote the query must change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {0}")]
pub struct QueryError(pub String);

const MACROS: [Param; 4] = [Param::FromMs, Param::ToMs, Param::From, Param::To];

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Rewrites the range macros of `query` for `dialect`.
///
/// # Errors
/// [`QueryError`] for an unknown `$__` macro, a placeholder written by hand, an unterminated
/// literal or comment, or an empty query.
pub fn rewrite(query: &str, dialect: Dialect) -> Result<Rewritten, QueryError> {
    if query.trim().is_empty() {
        return Err(QueryError("is empty".into()));
    }
    let b = query.as_bytes();
    let backslash_escapes = !matches!(dialect, Dialect::Postgres);
    let mut out = String::with_capacity(query.len() + 16);
    let mut params: Vec<Param> = Vec::new();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                i = skip_quoted(b, i, c, backslash_escapes && c != b'`')
                    .ok_or_else(|| QueryError(format!("unterminated {} at byte {i}", c as char)))?;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            b'#' if dialect == Dialect::Mysql => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = query[i + 2..]
                    .find("*/")
                    .map(|p| i + 2 + p + 2)
                    .ok_or_else(|| QueryError(format!("unterminated comment at byte {i}")))?;
            }
            b'?' if dialect == Dialect::Mysql => {
                return Err(QueryError(format!(
                    "has a `?` placeholder at byte {i}; write $__from / $__to instead (aiops \
                     binds those as parameters)"
                )));
            }
            b'$' => {
                let rest = &query[i..];
                if let Some(p) = MACROS.iter().copied().find(|p| {
                    rest.starts_with(p.macro_name())
                        && !b
                            .get(i + p.macro_name().len())
                            .is_some_and(|&n| is_ident(n))
                }) {
                    out.push_str(&query[copied..i]);
                    out.push_str(&placeholder(dialect, p, &mut params));
                    i += p.macro_name().len();
                    copied = i;
                    continue;
                }
                if rest.starts_with("$__") {
                    let end = rest[1..]
                        .bytes()
                        .position(|n| !is_ident(n))
                        .map_or(rest.len(), |p| p + 1);
                    return Err(QueryError(format!(
                        "unknown macro {} (known: $__from, $__to, $__from_ms, $__to_ms)",
                        crate::error::bound_text(&rest[..end], 40)
                    )));
                }
                if dialect == Dialect::Postgres {
                    if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        return Err(QueryError(format!(
                            "has a positional parameter at byte {i}; write $__from / $__to \
                             instead (aiops binds those as parameters)"
                        )));
                    }
                    // A dollar-quoted string: $tag$ … $tag$.
                    let tag_end = rest[1..].bytes().position(|n| !is_ident(n)).map(|p| p + 1);
                    if let Some(te) = tag_end.filter(|&te| rest.as_bytes().get(te) == Some(&b'$')) {
                        let tag = &rest[..=te];
                        i = rest[tag.len()..]
                            .find(tag)
                            .map(|p| i + tag.len() + p + tag.len())
                            .ok_or_else(|| {
                                QueryError(format!("unterminated dollar-quoted string at byte {i}"))
                            })?;
                        continue;
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(&query[copied..]);
    Ok(Rewritten { sql: out, params })
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

/// The index after the closing quote of the literal opened at `i` (a doubled quote is an
/// escaped quote; with `backslash`, so is `\'`).
fn skip_quoted(b: &[u8], i: usize, q: u8, backslash: bool) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

fn placeholder(dialect: Dialect, p: Param, params: &mut Vec<Param>) -> String {
    match dialect {
        Dialect::Postgres => {
            let n = match params.iter().position(|x| *x == p) {
                Some(n) => n + 1,
                None => {
                    params.push(p);
                    params.len()
                }
            };
            format!("${n}")
        }
        Dialect::Mysql => {
            params.push(p);
            "?".to_string()
        }
        Dialect::ClickHouse => {
            if !params.contains(&p) {
                params.push(p);
            }
            let ty = if p.is_timestamp() {
                "DateTime64(3, 'UTC')"
            } else {
                "Int64"
            };
            format!("{{{}:{ty}}}", p.clickhouse_name())
        }
        Dialect::ClickHouseInline => {
            if !params.contains(&p) {
                params.push(p);
            }
            // Filled by `inline_values` once the range is known.
            format!("\u{0}{}\u{0}", p.clickhouse_name())
        }
    }
}

/// For [`Dialect::ClickHouseInline`]: the SQL with the range written as literals formatted from
/// integers (seconds rounded outwards for `$__from`/`$__to`; rows are filtered to the exact
/// range afterwards).
pub fn inline_values(r: &Rewritten, from_ms: i64, to_ms: i64) -> String {
    let mut sql = r.sql.clone();
    for p in &r.params {
        let ms = p.ms(from_ms, to_ms);
        let lit = match p {
            Param::From => format!("toDateTime({}, 'UTC')", ms.div_euclid(1000)),
            Param::To => format!(
                "toDateTime({}, 'UTC')",
                ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
            ),
            Param::FromMs | Param::ToMs => format!("toInt64({ms})"),
        };
        sql = sql.replace(&format!("\u{0}{}\u{0}", p.clickhouse_name()), &lit);
    }
    sql
}
