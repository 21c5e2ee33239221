//! Event-time window functions callable from pipeline SQL.
//!
//! `tumble(time, INTERVAL '1 minute')` is the start of the fixed, non-overlapping window that
//! `time` falls in (windows are aligned to the Unix epoch). Grouping by it groups rows by window;
//! the same function gives the batch result that the streaming runtime must reproduce.
//!
//! `hop(time, INTERVAL slide, INTERVAL size)` groups by overlapping windows of `size` that start
//! every `slide`: one row counts in `size / slide` windows. The streaming runtime expands rows
//! into their windows; as a plain scalar (outside a GROUP BY that the runtime runs) it gives the
//! start of the latest window that holds `time`.
//!
//! `session(time, INTERVAL gap)` groups each key's events into sessions: events less than `gap`
//! apart belong to one session, which spans [first event, last event + gap). Sessions depend on
//! the other events of the same key, so only the streaming runtime computes them; as a plain
//! scalar (in a batch query) it returns `time` unchanged, which keeps pipelines planning.

use datafusion::arrow::array::{ArrayRef, AsArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit, TimestampMillisecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The `tumble` function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Tumble {
    signature: Signature,
}

impl Default for Tumble {
    fn default() -> Self {
        Tumble {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The `tumble` UDF, ready to register.
pub fn tumble() -> ScalarUDF {
    ScalarUDF::from(Tumble::default())
}

/// The `hop` UDF, ready to register.
pub fn hop() -> ScalarUDF {
    ScalarUDF::from(Hop::default())
}

/// The `session` UDF, ready to register.
pub fn session() -> ScalarUDF {
    ScalarUDF::from(Session::default())
}

/// Window size in ms from an interval scalar; months are refused (not a fixed length).
fn size_ms(v: &ColumnarValue) -> Result<i64> {
    match v {
        ColumnarValue::Scalar(s) => interval_ms(s),
        _ => exec_err!("tumble: the window size must be a constant INTERVAL"),
    }
}

/// Milliseconds of a constant interval; months are refused (not a fixed length) and the result
/// must be positive.
///
/// # Errors
/// A message naming what is wrong with the interval.
pub fn interval_ms(v: &ScalarValue) -> Result<i64> {
    let ms = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => {
            if i.months != 0 {
                return exec_err!("tumble: window sizes in months are not fixed; use days");
            }
            i64::from(i.days) * 86_400_000 + i.nanoseconds / 1_000_000
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            i64::from(i.days) * 86_400_000 + i64::from(i.milliseconds)
        }
        _ => {
            return exec_err!(
                "window sizes must be a constant INTERVAL such as INTERVAL '1 minute'"
            );
        }
    };
    if ms <= 0 {
        return exec_err!("window sizes must be positive, got {ms} ms");
    }
    Ok(ms)
}

fn window_return_type(name: &str, args: &[DataType], n: usize) -> Result<DataType> {
    let ok_interval =
        |d: &DataType| matches!(d, DataType::Interval(u) if *u != IntervalUnit::YearMonth);
    match args {
        [DataType::Timestamp(TimeUnit::Millisecond, tz), rest @ ..]
            if rest.len() + 1 == n && rest.iter().all(ok_interval) =>
        {
            Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))
        }
        _ => plan_err!(
            "{name}(time, {}) takes an event time column and constant intervals, got {args:?}",
            if n == 2 {
                "INTERVAL '…'"
            } else if name == "session" {
                "INTERVAL gap"
            } else {
                "INTERVAL slide, INTERVAL size"
            }
        ),
    }
}

/// Applies `start` (window start from event time) to the time argument.
fn map_time(
    name: &str,
    time: &ColumnarValue,
    tz: Option<Arc<str>>,
    start: impl Fn(i64) -> i64,
) -> Result<ColumnarValue> {
    match time {
        ColumnarValue::Array(a) => {
            let ts = a.as_primitive::<TimestampMillisecondType>();
            let out: TimestampMillisecondArray = ts.unary(start);
            let out: ArrayRef = Arc::new(out.with_timezone_opt(tz));
            Ok(ColumnarValue::Array(out))
        }
        ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(t, _)) => Ok(
            ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(t.map(start), tz)),
        ),
        other => exec_err!("{name}: unsupported time argument {:?}", other.data_type()),
    }
}

/// The `hop` function: overlapping windows of `size` every `slide`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Hop {
    signature: Signature,
}

impl Default for Hop {
    fn default() -> Self {
        Hop {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Hop {
    fn name(&self) -> &str {
        "hop"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        window_return_type("hop", args, 3)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, slide, size] = args.args.as_slice() else {
            return exec_err!("hop takes three arguments");
        };
        let slide = size_ms(slide)?;
        let size = size_ms(size)?;
        if size % slide != 0 {
            return exec_err!(
                "hop: the size ({size} ms) must be a multiple of the slide ({slide} ms)"
            );
        }
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        map_time("hop", time, tz, |t| t.div_euclid(slide) * slide)
    }
}

impl ScalarUDFImpl for Tumble {
    fn name(&self) -> &str {
        "tumble"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        window_return_type("tumble", args, 2)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, size] = args.args.as_slice() else {
            return exec_err!("tumble takes two arguments");
        };
        let size = size_ms(size)?;
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        map_time("tumble", time, tz, |t| t.div_euclid(size) * size)
    }
}

/// The `session` function: gap-separated sessions per group key. Only the streaming runtime
/// gives it session semantics; evaluated on its own it is the identity on `time`, because a
/// row's session cannot be known from the row alone.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Session {
    signature: Signature,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Session {
    fn name(&self) -> &str {
        "session"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        window_return_type("session", args, 2)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, gap] = args.args.as_slice() else {
            return exec_err!("session takes two arguments");
        };
        // Validated even though unused here, so a bad gap fails in batch as it does in streaming.
        size_ms(gap)?;
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        map_time("session", time, tz, |t| t)
    }
}
