//! Grafana's PostgreSQL macro expansion (`pkg/tsdb/grafana-postgresql-datasource/macros.go`),
//! so a generated panel query can be run on the read side as the text Grafana will send.
//!
//! Grafana first substitutes template variables (`$__interval`, `$__interval_ms`), then macros:
//! `$__time`, `$__timeEpoch`, `$__timeFilter`, `$__timeFrom`, `$__timeTo`, `$__timeGroup`,
//! `$__timeGroupAlias`, `$__unixEpochFilter`, `$__unixEpochFrom`, `$__unixEpochTo`,
//! `$__unixEpochGroup`, `$__unixEpochGroupAlias`. Times are UTC RFC 3339 with the fraction's
//! trailing zeros dropped, like Go's `time.RFC3339Nano`.

use std::sync::OnceLock;

/// The time range and interval a query is expanded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRange {
    /// Start, Unix ms.
    pub from_ms: i64,
    /// End, Unix ms.
    pub to_ms: i64,
    /// `$__interval`, ms.
    pub interval_ms: i64,
}

/// Why a query could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    /// A macro Grafana does not know.
    #[error("unknown macro $__{0}")]
    Unknown(String),
    /// A macro with the wrong arguments.
    #[error("macro $__{name}: {detail}")]
    Args {
        /// The macro.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// `ms` as Go's `time.RFC3339Nano` in UTC: `2026-12-02T08:10:00Z`, `…:59.999Z`, `….5Z`.
pub fn rfc3339_nano(ms: i64) -> String {
    let s = aiops_alerting::silence::format_rfc3339_ms(ms);
    match s.strip_suffix('Z').and_then(|b| b.split_once('.')) {
        Some((whole, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{frac}Z")
            }
        }
        None => s,
    }
}

/// A Grafana interval (`1m`, `30s`, `1h`, `500ms`, `'5m'`) in ms.
fn interval_ms(arg: &str) -> Option<i64> {
    let a = arg.trim().trim_matches('\'').trim_matches('"');
    let split = a.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = a.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    Some(n * mult)
}

/// Seconds as Go's `%v` of a float64 prints them: `60`, `0.5`.
fn secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

/// A Grafana interval string for `ms` (`1m`, `30s`, `500ms`), as `$__interval` renders.
pub fn interval_text(ms: i64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn macro_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    // Grafana's own pattern: `\$(__\w+)\(([^\)]*)\)` — arguments cannot hold a `)`.
    RE.get_or_init(|| regex::Regex::new(r"\$__(\w+)\(([^)]*)\)").unwrap_or_else(|_| unreachable!()))
}

/// Expands `sql` for `range` as Grafana's PostgreSQL data source does.
///
/// # Errors
/// [`MacroError`] for an unknown macro or wrong arguments.
pub fn expand(sql: &str, range: &QueryRange) -> Result<String, MacroError> {
    let sql = sql
        .replace("$__interval_ms", &range.interval_ms.to_string())
        .replace("$__interval", &interval_text(range.interval_ms));
    let mut out = String::with_capacity(sql.len() + 64);
    let mut last = 0;
    for cap in macro_re().captures_iter(&sql) {
        let (Some(all), Some(name), Some(args)) = (cap.get(0), cap.get(1), cap.get(2)) else {
            continue;
        };
        out.push_str(&sql[last..all.start()]);
        out.push_str(&one(name.as_str(), args.as_str(), range)?);
        last = all.end();
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

fn one(name: &str, args: &str, r: &QueryRange) -> Result<String, MacroError> {
    let args: Vec<&str> = if args.trim().is_empty() {
        Vec::new()
    } else {
        args.split(',').map(str::trim).collect()
    };
    let need = |n: usize| -> Result<(), MacroError> {
        if args.len() < n {
            Err(MacroError::Args {
                name: name.to_string(),
                detail: format!("needs {n} argument(s), got {}", args.len()),
            })
        } else {
            Ok(())
        }
    };
    let group = |args: &[&str]| -> Result<i64, MacroError> {
        need(2)?;
        interval_ms(args[1])
            .filter(|ms| *ms > 0)
            .ok_or_else(|| MacroError::Args {
                name: name.to_string(),
                detail: format!("{:?} is not an interval", args[1]),
            })
    };
    Ok(match name {
        "time" => {
            need(1)?;
            format!("{} AS \"time\"", args[0])
        }
        "timeEpoch" => {
            need(1)?;
            format!("extract(epoch from {}) as \"time\"", args[0])
        }
        "timeFilter" => {
            need(1)?;
            format!(
                "{} BETWEEN '{}' AND '{}'",
                args[0],
                rfc3339_nano(r.from_ms),
                rfc3339_nano(r.to_ms)
            )
        }
        "timeFrom" => format!("'{}'", rfc3339_nano(r.from_ms)),
        "timeTo" => format!("'{}'", rfc3339_nano(r.to_ms)),
        "timeGroup" | "timeGroupAlias" => {
            let s = secs(group(&args)?);
            let alias = if name == "timeGroupAlias" {
                " AS \"time\""
            } else {
                ""
            };
            format!("floor(extract(epoch from {})/{s})*{s}{alias}", args[0])
        }
        "unixEpochFilter" => {
            need(1)?;
            format!(
                "{c} >= {} AND {c} <= {}",
                r.from_ms.div_euclid(1000),
                r.to_ms.div_euclid(1000),
                c = args[0]
            )
        }
        "unixEpochFrom" => r.from_ms.div_euclid(1000).to_string(),
        "unixEpochTo" => r.to_ms.div_euclid(1000).to_string(),
        "unixEpochGroup" | "unixEpochGroupAlias" => {
            let s = secs(group(&args)?);
            let alias = if name == "unixEpochGroupAlias" {
                " AS \"time\""
            } else {
                ""
            };
            format!("floor(({})/{s})*{s}{alias}", args[0])
        }
        other => return Err(MacroError::Unknown(other.to_string())),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const R: QueryRange = QueryRange {
        from_ms: 1_796_199_000_000,
        to_ms: 1_796_199_599_999,
        interval_ms: 60_000,
    };

    #[test]
    fn expands_like_grafana() {
        // Expected texts from Grafana's macros_test.go, with our range.
        let q = "SELECT $__timeGroupAlias(time, $__interval), avg(v) FROM t WHERE $__timeFilter(time) AND $__unixEpochFilter(ts) GROUP BY 1";
        assert_eq!(
            expand(q, &R).unwrap(),
            "SELECT floor(extract(epoch from time)/60)*60 AS \"time\", avg(v) FROM t WHERE time BETWEEN '2026-12-02T08:10:00Z' AND '2026-12-02T08:19:59.999Z' AND ts >= 1796199000 AND ts <= 1796199599 GROUP BY 1"
        );
        assert_eq!(
            expand("$__timeGroup(t, '500ms')", &R).unwrap(),
            "floor(extract(epoch from t)/0.5)*0.5"
        );
        assert_eq!(expand("$__time(a)", &R).unwrap(), "a AS \"time\"");
        assert_eq!(
            expand("$__unixEpochGroupAlias(ts, 5m)", &R).unwrap(),
            "floor((ts)/300)*300 AS \"time\""
        );
        assert_eq!(
            expand("x > $__timeFrom()", &R).unwrap(),
            "x > '2026-12-02T08:10:00Z'"
        );
        assert_eq!(expand("$__interval_ms", &R).unwrap(), "60000");
        assert_eq!(rfc3339_nano(1_796_199_000_500), "2026-12-02T08:10:00.5Z");
    }

    #[test]
    fn refuses_unknown_macros_and_bad_intervals() {
        assert_eq!(
            expand("$__nope(x)", &R).unwrap_err(),
            MacroError::Unknown("nope".into())
        );
        assert!(matches!(
            expand("$__timeGroup(t, soon)", &R).unwrap_err(),
            MacroError::Args { .. }
        ));
        assert!(matches!(
            expand("$__timeFilter()", &R).unwrap_err(),
            MacroError::Args { .. }
        ));
    }
}
