//! Event-time window functions callable from pipeline SQL.
//!
//! `tumble(time, INTERVAL '1 minute')` is the start of the fixed, non-overlapping window that
//! `time` falls in (windows are aligned to the Unix epoch). Grouping by it groups rows by window;
//! the same function gives the batch result that the streaming runtime must reproduce.

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

/// Window size in ms from an interval scalar; months are refused (not a fixed length).
fn size_ms(v: &ColumnarValue) -> Result<i64> {
    let ms = match v {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(i))) => {
            if i.months != 0 {
                return exec_err!("tumble: window sizes in months are not fixed; use days");
            }
            i64::from(i.days) * 86_400_000 + i.nanoseconds / 1_000_000
        }
        ColumnarValue::Scalar(ScalarValue::IntervalDayTime(Some(i))) => {
            i64::from(i.days) * 86_400_000 + i64::from(i.milliseconds)
        }
        _ => return exec_err!("tumble: the window size must be a constant INTERVAL"),
    };
    if ms <= 0 {
        return exec_err!("tumble: the window size must be positive, got {ms} ms");
    }
    Ok(ms)
}

impl ScalarUDFImpl for Tumble {
    fn name(&self) -> &str {
        "tumble"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [
                DataType::Timestamp(TimeUnit::Millisecond, tz),
                DataType::Interval(u),
            ] if *u != IntervalUnit::YearMonth => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))
            }
            _ => plan_err!(
                "tumble(time, INTERVAL '…') takes an event time column and a constant interval, got {args:?}"
            ),
        }
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
        let start = |t: i64| t.div_euclid(size) * size;
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
            other => exec_err!("tumble: unsupported time argument {:?}", other.data_type()),
        }
    }
}
