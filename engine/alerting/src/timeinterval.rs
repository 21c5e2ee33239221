//! Alertmanager's named time intervals (`time_intervals:`), used by routes'
//! `mute_time_intervals` and `active_time_intervals`: times of day, weekdays, days of the month
//! (negative from the month's end), months and years, all inclusive ranges, in UTC.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A named list of intervals; a time is in it when it is in any of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals.
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether `t_ms` is in any of the intervals.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.time_intervals.iter().any(|i| i.contains(t_ms))
    }
}

/// A time of day range, minutes since midnight, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTime", into = "RawTime")]
pub struct TimeRange {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    start_time: String,
    end_time: String,
}

fn minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("bad time {s:?}: expected HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("bad time {s:?}"))?,
        m.parse().map_err(|_| format!("bad time {s:?}"))?,
    );
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("bad time {s:?}: out of range"));
    }
    Ok(h * 60 + m)
}

impl TryFrom<RawTime> for TimeRange {
    type Error = String;
    fn try_from(r: RawTime) -> Result<Self, String> {
        let (start, end) = (minutes(&r.start_time)?, minutes(&r.end_time)?);
        if start >= end {
            return Err(format!(
                "start_time {} must be before end_time {}",
                r.start_time, r.end_time
            ));
        }
        Ok(TimeRange { start, end })
    }
}

impl From<TimeRange> for RawTime {
    fn from(t: TimeRange) -> RawTime {
        RawTime {
            start_time: format!("{:02}:{:02}", t.start / 60, t.start % 60),
            end_time: format!("{:02}:{:02}", t.end / 60, t.end % 60),
        }
    }
}

/// An inclusive range of numbers (weekday 0 = Sunday, day of month ±, month 1–12, year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    lo: i32,
    hi: i32,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn one(s: &str, names: &[&str], base: i32) -> Result<i32, String> {
    let l = s.trim().to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == l) {
        return Ok(i as i32 + base);
    }
    l.parse().map_err(|_| format!("unknown value {s:?}"))
}

fn range(s: &str, names: &[&str], base: i32) -> Result<Range, String> {
    // Negative numbers (days of month) contain '-' but never ':'; ranges use ':'.
    let (a, b) = s.split_once(':').unwrap_or((s, s));
    Ok(Range {
        lo: one(a, names, base)?,
        hi: one(b, names, base)?,
    })
}

macro_rules! range_list {
    ($name:ident, $doc:literal, $names:expr, $base:expr, $check:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "Vec<String>", into = "Vec<String>")]
        pub struct $name(Vec<Range>, Vec<String>);

        impl TryFrom<Vec<String>> for $name {
            type Error = String;
            fn try_from(v: Vec<String>) -> Result<Self, String> {
                let mut out = Vec::new();
                for s in &v {
                    let r = range(s, $names, $base)?;
                    let check: fn(&Range) -> Result<(), String> = $check;
                    check(&r).map_err(|e| format!("{s:?}: {e}"))?;
                    out.push(r);
                }
                Ok($name(out, v))
            }
        }

        impl From<$name> for Vec<String> {
            fn from(x: $name) -> Vec<String> {
                x.1
            }
        }
    };
}

range_list!(
    Weekdays,
    "Weekday ranges (`monday:friday`).",
    &WEEKDAYS,
    0,
    |r| {
        if (0..7).contains(&r.lo) && (0..7).contains(&r.hi) && r.lo <= r.hi {
            Ok(())
        } else {
            Err("weekdays must be names in order (sunday … saturday)".into())
        }
    }
);
range_list!(
    DaysOfMonth,
    "Day-of-month ranges (`1:5`, `-3:-1`).",
    &[],
    0,
    |r| {
        let ok = |d: i32| (1..=31).contains(&d) || (-31..=-1).contains(&d);
        if ok(r.lo) && ok(r.hi) && (r.lo.signum() != r.hi.signum() || r.lo <= r.hi) {
            Ok(())
        } else {
            Err("days must be 1..31 or -31..-1, start before end".into())
        }
    }
);
range_list!(
    Months,
    "Month ranges (`january:march`, `12`).",
    &MONTHS,
    1,
    |r| {
        if (1..=12).contains(&r.lo) && (1..=12).contains(&r.hi) && r.lo <= r.hi {
            Ok(())
        } else {
            Err("months must be 1..12 or names, in order".into())
        }
    }
);
range_list!(Years, "Year ranges (`2020:2022`).", &[], 0, |r| {
    if r.lo > 0 && r.lo <= r.hi {
        Ok(())
    } else {
        Err("years must be positive, in order".into())
    }
});

/// One interval: every field present must match; absent fields match everything.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// Times of day.
    #[serde(default)]
    pub times: Vec<TimeRange>,
    /// Weekdays.
    pub weekdays: Option<Weekdays>,
    /// Days of the month.
    pub days_of_month: Option<DaysOfMonth>,
    /// Months.
    pub months: Option<Months>,
    /// Years.
    pub years: Option<Years>,
    /// Time zone: only `UTC` in this version.
    #[serde(default, deserialize_with = "utc_only")]
    pub location: Option<String>,
}

fn utc_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref() {
        None | Some("UTC") | Some("Etc/UTC") => Ok(s),
        Some(other) => Err(serde::de::Error::custom(format!(
            "location {other:?}: only UTC is supported in this version; write the times in UTC"
        ))),
    }
}

fn days_in_month(y: i32, m: u32) -> i32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    chrono::NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day() as i32)
}

impl TimeInterval {
    /// Whether `t_ms` (UTC) is in the interval.
    pub fn contains(&self, t_ms: i64) -> bool {
        let Some(t) = DateTime::<Utc>::from_timestamp_millis(t_ms) else {
            return false;
        };
        let minute = t.hour() * 60 + t.minute();
        if !self.times.is_empty()
            && !self
                .times
                .iter()
                .any(|r| minute >= r.start && minute < r.end)
        {
            return false;
        }
        let in_ranges = |rs: &[Range], v: i32| rs.iter().any(|r| v >= r.lo && v <= r.hi);
        if let Some(w) = &self.weekdays
            && !in_ranges(&w.0, t.weekday().num_days_from_sunday() as i32)
        {
            return false;
        }
        if let Some(d) = &self.days_of_month {
            let len = days_in_month(t.year(), t.month());
            let day = t.day() as i32;
            let abs = |x: i32| if x < 0 { len + 1 + x } else { x };
            if !d
                .0
                .iter()
                .any(|r| day >= abs(r.lo).max(1) && day <= abs(r.hi).min(len))
            {
                return false;
            }
        }
        if let Some(m) = &self.months
            && !in_ranges(&m.0, t.month() as i32)
        {
            return false;
        }
        if let Some(y) = &self.years
            && !in_ranges(&y.0, t.year())
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        crate::silence::parse_rfc3339_ms(s).unwrap_or_default()
    }

    fn interval(yaml: &str) -> TimeInterval {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn documented_examples() {
        // Business hours Monday to Friday.
        let i = interval(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']",
        );
        assert!(i.contains(t("2026-11-25T09:00:00Z"))); // Wednesday
        assert!(!i.contains(t("2026-11-25T17:00:00Z"))); // end exclusive
        assert!(!i.contains(t("2026-11-28T10:00:00Z"))); // Saturday
        // The last three days of the month.
        let i = interval("days_of_month: ['-3:-1']");
        assert!(i.contains(t("2026-02-26T00:00:00Z")) && i.contains(t("2026-02-28T23:59:00Z")));
        assert!(!i.contains(t("2026-02-25T12:00:00Z")));
        assert!(i.contains(t("2026-11-28T00:00:00Z")) && !i.contains(t("2026-11-27T00:00:00Z")));
        // Months by name, years.
        let i = interval("months: ['november:december']\nyears: ['2026']");
        assert!(i.contains(t("2026-11-25T00:00:00Z")) && !i.contains(t("2027-11-25T00:00:00Z")));
        let i = interval("times: [{start_time: '22:00', end_time: '24:00'}]");
        assert!(i.contains(t("2026-11-25T23:59:00Z")));
    }

    #[test]
    fn bad_intervals_are_refused() {
        for (y, needle) in [
            ("weekdays: ['friday:monday']", "in order"),
            ("weekdays: ['funday']", "unknown value"),
            (
                "times: [{start_time: '17:00', end_time: '09:00'}]",
                "before end_time",
            ),
            ("months: ['13']", "months"),
            ("location: Europe/Paris", "only UTC"),
        ] {
            let e = serde_yaml_ng::from_str::<TimeInterval>(y)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{y}: {e}");
        }
    }
}
