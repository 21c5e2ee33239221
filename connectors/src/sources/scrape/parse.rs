//! The Prometheus text exposition format 0.0.4: `name{label="value",…} value [timestamp]` lines,
//! `#` comments (HELP/TYPE are skipped), label value escapes `\\`, `\"`, `\n`, and the values
//! `NaN`, `+Inf`, `-Inf`. Histogram and summary series are plain samples here.

/// A line that is not valid exposition format.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The explicit timestamp in ms, if the line had one.
    pub timestamp_ms: Option<i64>,
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let mut chars = line.char_indices().peekable();
    let mut end = 0;
    while let Some(&(i, c)) = chars.peek() {
        if !is_name_char(c, i == 0) {
            break;
        }
        end = i + c.len_utf8();
        chars.next();
    }
    if end == 0 {
        return Err("expected a metric name".into());
    }
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("expected label=\"value\"")?;
            let lname = rest[..eq].trim().to_string();
            if lname.is_empty()
                || !lname
                    .chars()
                    .enumerate()
                    .all(|(i, c)| is_name_char(c, i == 0) && c != ':')
            {
                return Err(format!("bad label name {lname:?}"));
            }
            rest = rest[eq + 1..].trim_start();
            rest = rest.strip_prefix('"').ok_or("label value must be quoted")?;
            let mut value = String::new();
            let mut it = rest.char_indices();
            let close = loop {
                match it.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match it.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err("unterminated label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            labels.push((lname, value));
            rest = rest[close + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err("expected ',' or '}' after a label".into());
            }
        }
    }
    let mut parts = rest.split_whitespace();
    let v = parts.next().ok_or("missing value")?;
    let value = parse_value(v).ok_or_else(|| format!("bad value {v:?}"))?;
    let timestamp_ms = match parts.next() {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("bad timestamp {t:?}"))?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses a whole exposition body.
///
/// # Errors
/// The first invalid line, with its number.
pub fn parse_text(body: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?);
    }
    Ok(out)
}
