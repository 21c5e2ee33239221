//! Times of `http_json`: Unix ms to the request formats, and record times back to Unix ms.

use serde::{Deserialize, Serialize};

/// How a time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeFormat {
    /// Unix milliseconds.
    #[default]
    Ms,
    /// Unix seconds (fractions allowed when read).
    S,
    /// RFC 3339 (`2026-12-04T16:50:00Z`, offsets and fractions allowed when read).
    Rfc3339,
    /// When reading: a number above 10^11 is ms, else seconds; a string is RFC 3339 or a number.
    Auto,
}

/// `days` since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01 (days_from_civil).
fn days_from(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `ms` as RFC 3339 in UTC with milliseconds (`2026-12-04T16:50:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    let (h, mi, s, f) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}Z")
}

/// `ms` written as `format` (`auto` writes ms).
pub fn write(ms: i64, format: TimeFormat) -> String {
    match format {
        TimeFormat::Ms | TimeFormat::Auto => ms.to_string(),
        TimeFormat::S => {
            if ms.rem_euclid(1000) == 0 {
                ms.div_euclid(1000).to_string()
            } else {
                format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
            }
        }
        TimeFormat::Rfc3339 => rfc3339(ms),
    }
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`, `t` or a space as separator) to ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + frac_ms)
}

/// A record's time as Unix ms, read as `format`.
pub fn read(v: &serde_json::Value, format: TimeFormat) -> Option<i64> {
    use serde_json::Value;
    let from_number = |x: f64| -> Option<i64> {
        if !x.is_finite() {
            return None;
        }
        let ms = match format {
            TimeFormat::Ms => x,
            TimeFormat::S => x * 1000.0,
            TimeFormat::Auto | TimeFormat::Rfc3339 => {
                if x.abs() >= 1e11 {
                    x
                } else {
                    x * 1000.0
                }
            }
        };
        Some(ms.round() as i64)
    };
    match v {
        Value::Number(n) => n.as_f64().and_then(from_number),
        Value::String(s) => match format {
            TimeFormat::Rfc3339 => parse_rfc3339(s),
            TimeFormat::Auto => {
                parse_rfc3339(s).or_else(|| s.trim().parse::<f64>().ok().and_then(from_number))
            }
            TimeFormat::Ms | TimeFormat::S => s.trim().parse::<f64>().ok().and_then(from_number),
        },
        _ => None,
    }
}
