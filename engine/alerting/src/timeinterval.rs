//! Alertmanager's named time intervals (`time_intervals:`, and the legacy top-level
//! `mute_time_intervals:` of the same shape), used by routes' `mute_time_intervals` and
//! `active_time_intervals`.
//!
//! The syntax, validation and matching are Alertmanager's (`timeinterval/timeinterval.go` and
//! the `<time_interval_spec>` section of its configuration docs), so a config copied from
//! Alertmanager mutes the same minutes here: times of day are `[start, end)`, every other range is
//! inclusive, days of the month may count back from the month's end (`-1` is the last day) and are
//! clamped to the month, and an unspecified field matches everything. Everything is parsed and
//! checked when the config loads, so [`TimeInterval::contains`] cannot fail. Only UTC is
//! supported as `location` in this version.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a time interval in the config was refused; the message names the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeIntervalError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, TimeIntervalError> {
    Err(TimeIntervalError(msg.into()))
}

/// A named list of intervals, as routes refer to it; a time is in it when it is in any of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals; the named interval contains a time when any of these does.
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether `t_ms` (Unix ms) is in any of the intervals.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.time_intervals.iter().any(|i| i.contains(t_ms))
    }
}

/// One `<time_interval_spec>`: every field given must match; a field left out (or given as an
/// empty list) matches everything, as Alertmanager documents ("within each non-empty list, at
/// least one element must be satisfied").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// Times of day, `start_time` inclusive, `end_time` exclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    /// Weekdays by name, or ranges of them (`monday:friday`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<WeekdayRange>,
    /// Days of the month (`1:5`, `-3:-1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<DayOfMonthRange>,
    /// Months by name or number (`january:march`, `12`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthRange>,
    /// Years (`2020:2022`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<YearRange>,
    /// The time zone the fields are read in: absent or `UTC` (the only one supported for now).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "utc_only"
    )]
    pub location: Option<String>,
}

/// Zone names that are exactly UTC in the IANA database.
const UTC_NAMES: [&str; 4] = ["UTC", "Etc/UTC", "GMT", "Etc/GMT"];

fn utc_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref() {
        None => Ok(None),
        Some(z) if UTC_NAMES.contains(&z) => Ok(s),
        Some(other) => Err(serde::de::Error::custom(format!(
            "location {other:?}: only UTC is supported in this version (Alertmanager also takes \
             IANA zones and \"Local\"); write the times in UTC and drop `location`"
        ))),
    }
}

impl TimeInterval {
    /// Whether `t_ms` (Unix ms, read in UTC) is in the interval.
    pub fn contains(&self, t_ms: i64) -> bool {
        let Some(t) = DateTime::<Utc>::from_timestamp_millis(t_ms) else {
            return false;
        };
        let minute = t.hour() * 60 + t.minute();
        let weekday = t.weekday().num_days_from_sunday() as i32;
        let (year, month, day) = (t.year(), t.month() as i32, t.day() as i32);
        let days = days_in_month(year, t.month());
        any_or_empty(&self.times, |r| r.contains(minute))
            && any_or_empty(&self.weekdays, |r| r.0.contains(weekday))
            && any_or_empty(&self.days_of_month, |r| r.contains(day, days))
            && any_or_empty(&self.months, |r| r.0.contains(month))
            && any_or_empty(&self.years, |r| r.0.contains(year))
    }
}

fn any_or_empty<T>(xs: &[T], f: impl Fn(&T) -> bool) -> bool {
    xs.is_empty() || xs.iter().any(f)
}

fn days_in_month(y: i32, m: u32) -> i32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    chrono::NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day() as i32)
}

/// A range of minutes of the day, start inclusive, end exclusive (`end_time: '24:00'` is the
/// end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTime", into = "RawTime")]
pub struct TimeRange {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

impl TimeRange {
    /// A range from `HH:MM` texts, checked as the config loader checks it.
    ///
    /// # Errors
    /// [`TimeIntervalError`] for a malformed time or a start not before the end.
    pub fn new(start_time: &str, end_time: &str) -> Result<TimeRange, TimeIntervalError> {
        let (start, end) = (minute_of_day(start_time)?, minute_of_day(end_time)?);
        if start >= end {
            return err(format!(
                "start_time {start_time:?} must be before end_time {end_time:?}"
            ));
        }
        Ok(TimeRange { start, end })
    }

    /// First minute of the day in the range (0 = 00:00).
    pub fn start_minute(&self) -> u32 {
        self.start
    }

    /// First minute of the day after the range (1440 = 24:00).
    pub fn end_minute(&self) -> u32 {
        self.end
    }

    fn contains(&self, minute: u32) -> bool {
        (self.start..self.end).contains(&minute)
    }
}

/// `HH:MM` with two digits each, 00:00 to 23:59, or 24:00 (Alertmanager's `validTime`).
fn minute_of_day(s: &str) -> Result<u32, TimeIntervalError> {
    let b = s.as_bytes();
    let two = |i: usize| -> Option<u32> {
        let (h, l) = (b.get(i)?, b.get(i + 1)?);
        (h.is_ascii_digit() && l.is_ascii_digit())
            .then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
    };
    match (b.len() == 5 && b[2] == b':', two(0), two(3)) {
        (true, Some(h), Some(m)) if (h < 24 && m < 60) || (h == 24 && m == 0) => Ok(h * 60 + m),
        _ => err(format!(
            "couldn't parse time {s:?}: expected HH:MM from 00:00 to 24:00"
        )),
    }
}

impl TryFrom<RawTime> for TimeRange {
    type Error = TimeIntervalError;
    fn try_from(r: RawTime) -> Result<Self, TimeIntervalError> {
        match (r.start_time, r.end_time) {
            (Some(s), Some(e)) if !s.is_empty() && !e.is_empty() => TimeRange::new(&s, &e),
            _ => err("times: both start_time and end_time must be provided"),
        }
    }
}

impl From<TimeRange> for RawTime {
    fn from(t: TimeRange) -> RawTime {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        RawTime {
            start_time: Some(hm(t.start)),
            end_time: Some(hm(t.end)),
        }
    }
}

/// An inclusive range of integers, the common shape of weekday, day, month and year ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InclusiveRange {
    /// First value.
    pub begin: i32,
    /// Last value (inclusive).
    pub end: i32,
}

impl InclusiveRange {
    fn contains(&self, v: i32) -> bool {
        (self.begin..=self.end).contains(&v)
    }
}

/// A list item as written. YAML gives `2020` or `-1` unquoted as numbers, which Alertmanager
/// reads as their text, so numbers are accepted here too.
struct RangeText(String);

impl<'de> Deserialize<'de> for RangeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RangeText, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RangeText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a range `start:end`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RangeText, E> {
                Ok(RangeText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RangeText, E> {
                Ok(RangeText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RangeText, E> {
                Ok(RangeText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Splits `a:b` (or a lone `a`, meaning `a:a`), lower-cased, into parsed members.
fn split_range(
    s: &str,
    member: impl Fn(&str) -> Result<i32, TimeIntervalError>,
) -> Result<InclusiveRange, TimeIntervalError> {
    let l = s.trim().to_ascii_lowercase();
    let mut parts = l.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, _) => {
            let v = member(a)?;
            Ok(InclusiveRange { begin: v, end: v })
        }
        (Some(a), Some(b), None) => Ok(InclusiveRange {
            begin: member(a.trim())?,
            end: member(b.trim())?,
        }),
        _ => err(format!(
            "couldn't parse range {s:?}: expected a value or start:end"
        )),
    }
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

fn number(s: &str, what: &str) -> Result<i32, TimeIntervalError> {
    s.parse()
        .or_else(|_| err(format!("{s:?} is not a valid {what}")))
}

fn parse_weekdays(s: &str) -> Result<InclusiveRange, TimeIntervalError> {
    // Alertmanager takes weekdays by name only ("1:3" is refused).
    let r = split_range(s, |x| match WEEKDAYS.iter().position(|n| *n == x) {
        Some(i) => Ok(i as i32),
        None => err(format!(
            "{x:?} is not a valid weekday (sunday, monday, … saturday)"
        )),
    })?;
    if r.begin > r.end {
        return err(format!(
            "weekday range {s:?}: the start day is after the end day (the week runs sunday to \
             saturday; write two ranges to wrap)"
        ));
    }
    Ok(r)
}

fn parse_days_of_month(s: &str) -> Result<InclusiveRange, TimeIntervalError> {
    let r = split_range(s, |x| number(x, "day of the month"))?;
    for d in [r.begin, r.end] {
        if d == 0 || !(-31..=31).contains(&d) {
            return err(format!(
                "{d} is not a valid day of the month in {s:?}: use 1 to 31, or -31 to -1 from \
                 the end"
            ));
        }
    }
    if r.begin < 0 && r.end > 0 {
        return err(format!(
            "day range {s:?}: the end day must be negative if the start day is"
        ));
    }
    // As Alertmanager: reject ranges that are empty in every month (checked on 28 days).
    let on28 = |d: i32| if d < 0 { 28 + d } else { d };
    if on28(r.begin) > on28(r.end) {
        return err(format!(
            "day range {s:?}: end day {} is always before start day {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

fn parse_months(s: &str) -> Result<InclusiveRange, TimeIntervalError> {
    let r = split_range(s, |x| match MONTHS.iter().position(|n| *n == x) {
        Some(i) => Ok(i as i32 + 1),
        None => match x.parse::<i32>() {
            Ok(n) if (1..=12).contains(&n) => Ok(n),
            _ => err(format!(
                "{x:?} is not a valid month (january … december, or 1 … 12)"
            )),
        },
    })?;
    if r.begin > r.end {
        return err(format!(
            "month range {s:?}: end month {} is before start month {}",
            MONTHS[(r.end - 1) as usize],
            MONTHS[(r.begin - 1) as usize]
        ));
    }
    Ok(r)
}

fn parse_years(s: &str) -> Result<InclusiveRange, TimeIntervalError> {
    let r = split_range(s, |x| number(x, "year"))?;
    if r.begin > r.end {
        return err(format!(
            "year range {s:?}: end year {} is before start year {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

fn show_numbers(r: InclusiveRange) -> String {
    if r.begin == r.end {
        r.begin.to_string()
    } else {
        format!("{}:{}", r.begin, r.end)
    }
}

fn show_weekdays(r: InclusiveRange) -> String {
    let n = |d: i32| WEEKDAYS.get(d as usize).copied().unwrap_or("?");
    if r.begin == r.end {
        n(r.begin).to_string()
    } else {
        format!("{}:{}", n(r.begin), n(r.end))
    }
}

macro_rules! range_type {
    ($name:ident, $doc:literal, $parse:ident, $show:ident) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "RangeText", into = "String")]
        pub struct $name(InclusiveRange);

        impl $name {
            /// The range's bounds, both inclusive.
            pub fn range(&self) -> InclusiveRange {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = TimeIntervalError;
            fn from_str(s: &str) -> Result<$name, TimeIntervalError> {
                $parse(s).map($name)
            }
        }

        impl TryFrom<RangeText> for $name {
            type Error = TimeIntervalError;
            fn try_from(t: RangeText) -> Result<$name, TimeIntervalError> {
                t.0.parse()
            }
        }

        impl From<$name> for String {
            fn from(r: $name) -> String {
                $show(r.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$show(self.0))
            }
        }
    };
}

range_type!(
    WeekdayRange,
    "Weekdays by name, `monday` or `monday:friday` (0 = Sunday inside); a range cannot wrap past \
     Saturday.",
    parse_weekdays,
    show_weekdays
);
range_type!(
    DayOfMonthRange,
    "Days of the month, `1:5` or `-3:-1` (negative counts from the end, `-1` is the last day); \
     clamped to the month's length when matched.",
    parse_days_of_month,
    show_numbers
);
range_type!(
    MonthRange,
    "Months by case-insensitive name or number, `january:march` or `12`.",
    parse_months,
    show_numbers
);
range_type!(
    YearRange,
    "Years, `2020:2022` or `2030`.",
    parse_years,
    show_numbers
);

impl DayOfMonthRange {
    /// Alertmanager's matching: negative bounds count from the month's end, a start past the
    /// month's end never matches, and bounds are clamped to the month.
    fn contains(&self, day: i32, days_in_month: i32) -> bool {
        let abs = |d: i32| if d < 0 { days_in_month + d + 1 } else { d };
        let (begin, end) = (abs(self.0.begin), abs(self.0.end));
        if begin > days_in_month {
            return false;
        }
        let clamp = |d: i32| d.clamp(-days_in_month, days_in_month);
        day >= clamp(begin) && day <= clamp(end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .timestamp_millis()
    }

    fn interval(yaml: &str) -> TimeInterval {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn check(i: &TimeInterval, yes: &[&str], no: &[&str]) {
        for s in yes {
            assert!(i.contains(t(s)), "{i:?} should contain {s}");
        }
        for s in no {
            assert!(!i.contains(t(s)), "{i:?} should not contain {s}");
        }
    }

    #[test]
    fn empty_interval_contains_everything() {
        let i = interval("{}");
        check(&i, &["2006-01-02T15:04:00Z", "2007-01-03T10:04:00Z"], &[]);
        assert_eq!(i, TimeInterval::default());
        // An empty list is "unspecified" too, as the docs describe.
        check(
            &interval("weekdays: []\ntimes: []"),
            &["2026-11-25T10:00:00Z"],
            &[],
        );
    }

    #[test]
    fn business_hours_monday_to_friday() {
        // Alertmanager's timeinterval_test.go: 9am to 5pm, Monday to Friday.
        let i = interval(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']",
        );
        check(
            &i,
            &[
                "2020-05-04T15:04:00Z",
                "2020-05-05T10:04:00Z",
                "2020-06-09T09:04:00Z",
                "2020-05-04T09:00:00Z",
                "2020-05-04T16:59:59Z",
            ],
            &[
                "2020-05-03T15:04:00Z", // Sunday
                "2020-05-04T08:59:00Z",
                "2020-05-05T05:00:00Z",
                "2020-05-04T17:00:00Z", // end exclusive
            ],
        );
    }

    #[test]
    fn easter_2020() {
        let i = interval("days_of_month: ['4:6']\nmonths: ['april']\nyears: ['2020']");
        check(
            &i,
            &[
                "2020-04-04T15:04:00Z",
                "2020-04-05T00:00:00Z",
                "2020-04-06T23:05:00Z",
            ],
            &[
                "2018-05-03T15:04:00Z",
                "2020-04-03T23:59:00Z",
                "2020-06-04T23:59:00Z",
                "2019-04-06T23:59:00Z",
                "2020-04-07T00:00:00Z",
            ],
        );
        // Unquoted numbers in YAML mean the same.
        assert_eq!(
            interval("days_of_month: ['4:6']\nmonths: [4]\nyears: [2020]"),
            i
        );
    }

    #[test]
    fn negative_days_of_month_count_from_the_end() {
        let i = interval("days_of_month: ['-3:-1']");
        check(
            &i,
            &[
                "2020-01-31T15:04:00Z",
                "2020-01-30T15:04:00Z",
                "2020-01-29T15:04:00Z",
                "2020-06-30T00:00:00Z",
                "2020-02-29T23:05:00Z", // leap year
                "2026-02-26T00:00:00Z",
            ],
            &[
                "2018-05-03T15:04:00Z",
                "2020-01-27T15:04:00Z",
                "2020-04-03T23:59:00Z",
                "2020-03-01T00:00:00Z",
                "2026-02-25T23:59:00Z",
            ],
        );
        // `1:-1` is the whole month.
        check(
            &interval("days_of_month: ['1:-1']"),
            &["2026-02-01T00:00:00Z", "2026-02-28T23:59:00Z"],
            &[],
        );
        // The last day, by itself.
        check(
            &interval("days_of_month: [-1]"),
            &["2021-03-31T12:00:00Z", "2024-02-29T12:00:00Z"],
            &["2021-03-30T12:00:00Z", "2024-02-28T12:00:00Z"],
        );
    }

    #[test]
    fn out_of_range_days_are_clamped_to_the_month() {
        // Alertmanager's clamping case (-31 in a 30-day month is before its first day).
        let i = interval("months: ['june']\ndays_of_month: ['-31:-1']");
        check(
            &i,
            &["2020-06-30T00:00:00Z", "2020-06-01T00:00:00Z"],
            &["2020-05-31T00:00:00Z", "2020-07-01T00:00:00Z"],
        );
        // `-31:-30` is the 1st of a 30-day month and nothing in February.
        check(
            &interval("days_of_month: ['-31:-30']"),
            &[
                "2020-06-01T00:00:00Z",
                "2020-03-01T00:00:00Z",
                "2020-03-02T00:00:00Z",
            ],
            &[
                "2020-06-02T00:00:00Z",
                "2026-02-01T00:00:00Z",
                "2026-02-28T00:00:00Z",
            ],
        );
        // `1:31` in February ends on its last day; `30:31` never matches in February.
        check(
            &interval("days_of_month: ['1:31']"),
            &["2026-02-28T12:00:00Z"],
            &[],
        );
        check(
            &interval("days_of_month: ['30:31']"),
            &["2026-03-30T00:00:00Z"],
            &["2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"],
        );
    }

    #[test]
    fn last_week_of_the_first_quarter_in_business_hours() {
        // The "more advanced" example of Alertmanager's YAML tests.
        let i = interval(
            "weekdays: ['monday:friday', 'sunday']\nmonths: ['january:march']\n\
             days_of_month: ['-7:-1']\nyears: ['2020:2025', '2030:2035']\n\
             times: [{start_time: '09:00', end_time: '17:00'}]",
        );
        check(
            &i,
            &[
                "2021-01-27T09:00:00Z",
                "2021-01-28T16:59:00Z",
                "2021-01-29T13:00:00Z",
                "2025-03-31T13:00:00Z",
                "2035-01-31T13:00:00Z",
            ],
            &[
                "2021-01-30T13:00:00Z", // Saturday
                "2021-04-01T13:00:00Z", // April
                "2026-01-30T13:00:00Z", // 2026
                "2035-01-31T17:01:00Z", // after 5pm
            ],
        );
    }

    #[test]
    fn times_to_midnight_and_several_ranges() {
        let i = interval(
            "times: [{start_time: '00:00', end_time: '06:00'}, {start_time: '22:00', end_time: \
             '24:00'}]",
        );
        check(
            &i,
            &[
                "2026-11-25T23:59:59Z",
                "2026-11-25T22:00:00Z",
                "2026-11-26T00:00:00Z",
                "2026-11-26T05:59:00Z",
            ],
            &["2026-11-26T06:00:00Z", "2026-11-25T21:59:00Z"],
        );
        assert_eq!(
            i.times
                .iter()
                .map(|r| (r.start_minute(), r.end_minute()))
                .collect::<Vec<_>>(),
            [(0, 360), (1320, 1440)]
        );
    }

    #[test]
    fn names_are_case_insensitive_and_ranges_inclusive() {
        let i = interval("months: ['January:march', 'DECEMBER']\nweekdays: ['Saturday', 'sunday']");
        check(
            &i,
            &[
                "2026-01-03T00:00:00Z", // Saturday in January
                "2026-03-29T00:00:00Z", // Sunday in March
                "2026-12-27T12:00:00Z", // Sunday in December
            ],
            &["2026-04-04T00:00:00Z", "2026-03-30T00:00:00Z"],
        );
    }

    #[test]
    fn named_intervals_match_any_of_their_intervals() {
        let n: NamedTimeInterval = serde_yaml_ng::from_str(
            "name: offhours\ntime_intervals:\n  - weekdays: ['saturday', 'sunday']\n  - times: \
             [{start_time: '18:00', end_time: '24:00'}]\n    weekdays: ['monday:friday']",
        )
        .unwrap();
        assert!(n.contains(t("2026-11-28T10:00:00Z"))); // Saturday
        assert!(n.contains(t("2026-11-25T19:00:00Z"))); // Wednesday evening
        assert!(!n.contains(t("2026-11-25T10:00:00Z")));
        let none = NamedTimeInterval {
            name: "never".into(),
            time_intervals: vec![],
        };
        assert!(!none.contains(0));
    }

    #[test]
    fn serializes_back_to_the_config_form() {
        let yaml = "times: [{start_time: '09:00', end_time: '24:00'}]\nweekdays: ['monday:friday', \
                    sunday]\ndays_of_month: ['-3:-1', 1]\nmonths: ['january:march', 12]\nyears: \
                    ['2020:2022']\nlocation: UTC";
        let i = interval(yaml);
        let j = serde_json::to_value(&i).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "times": [{"start_time": "09:00", "end_time": "24:00"}],
                "weekdays": ["monday:friday", "sunday"],
                "days_of_month": ["-3:-1", "1"],
                "months": ["1:3", "12"],
                "years": ["2020:2022"],
                "location": "UTC",
            })
        );
        let back: TimeInterval = serde_json::from_value(j).unwrap();
        assert_eq!(back, i);
    }

    #[test]
    fn bad_intervals_name_the_value() {
        for (y, needle) in [
            (
                "times: [{start_time: '01:99', end_time: '23:59'}]",
                "couldn't parse time \"01:99\"",
            ),
            (
                "times: [{start_time: '00:00', end_time: '99:99'}]",
                "\"99:99\"",
            ),
            (
                "times: [{start_time: '12:30', end_time: '24:01'}]",
                "\"24:01\"",
            ),
            (
                "times: [{start_time: '9:00', end_time: '17:00'}]",
                "\"9:00\"",
            ),
            (
                "times: [{start_time: '17:31', end_time: '17:31'}]",
                "must be before end_time",
            ),
            (
                "times: [{start_time: '24:00', end_time: '17:41'}]",
                "must be before end_time",
            ),
            (
                "times: [{start_time: '14:03'}]",
                "both start_time and end_time",
            ),
            (
                "weekdays: ['friday:monday']",
                "start day is after the end day",
            ),
            (
                "weekdays: ['blurgsday:flurgsday']",
                "\"blurgsday\" is not a valid weekday",
            ),
            ("weekdays: ['1:3']", "\"1\" is not a valid weekday"),
            ("weekdays: ['-2:-1']", "\"-2\" is not a valid weekday"),
            (
                "weekdays: ['monday:tuesday:friday']",
                "couldn't parse range",
            ),
            ("days_of_month: ['0']", "0 is not a valid day of the month"),
            (
                "days_of_month: ['-50:-20']",
                "-50 is not a valid day of the month",
            ),
            (
                "days_of_month: ['1:50']",
                "50 is not a valid day of the month",
            ),
            ("days_of_month: ['-15:5']", "end day must be negative"),
            (
                "days_of_month: ['10:-25']",
                "end day -25 is always before start day 10",
            ),
            (
                "days_of_month: ['first']",
                "\"first\" is not a valid day of the month",
            ),
            (
                "months: ['martius:june']",
                "\"martius\" is not a valid month",
            ),
            (
                "months: ['march:junius']",
                "\"junius\" is not a valid month",
            ),
            ("months: ['13']", "\"13\" is not a valid month"),
            (
                "months: ['december:january']",
                "end month january is before start month december",
            ),
            (
                "years: ['2022:2020']",
                "end year 2020 is before start year 2022",
            ),
            ("location: Australia/Sydney", "only UTC is supported"),
            ("location: Local", "only UTC is supported"),
            ("weekday: [monday]", "unknown field"),
        ] {
            let e = serde_yaml_ng::from_str::<TimeInterval>(y)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{y}: {e}");
        }
        assert!(interval("location: UTC").location.is_some());
        assert_eq!(
            "monday:friday".parse::<WeekdayRange>().map(|r| r.range()),
            Ok(InclusiveRange { begin: 1, end: 5 })
        );
        assert!(TimeRange::new("10:00", "09:00").is_err());
    }
}
