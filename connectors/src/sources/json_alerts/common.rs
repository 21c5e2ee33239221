//! What the JSON alert decoders share (`json_alerts`, `am_api`, `datadog`, `cloudwatch`): checked
//! access to the fields of one JSON object, whose errors name the item and the field; time
//! parsing; the label-hash fingerprint; and the one batch built from normalized alerts.

use crate::error::DecodeError;
use crate::sources::json::parse_rfc3339_ms;
use crate::sources::validate::LabelRules;
use crate::sources::{PushRequest, SourceBatch};
use aiops_schemas::builders::AlertRow;
use aiops_schemas::partition::hash_labels;
use aiops_schemas::{AlertBatchBuilder, Kind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The JSON type of a value, for error messages (`a string`, `an object`, …).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object of a payload and where it is (`alert 2`, `line 3`, `alarm`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'a> {
    /// Where the object is, used in every error.
    pub(crate) at: &'a str,
    /// Its fields.
    pub(crate) m: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// A field of the wrong JSON type.
    pub(crate) fn wrong(&self, field: &str, expected: &'static str, v: &Value) -> DecodeError {
        DecodeError::WrongType {
            at: self.at.to_string(),
            field: field.to_string(),
            expected,
            got: type_name(v),
        }
    }

    /// A field of the right type with an unusable value.
    pub(crate) fn invalid(&self, field: &str, message: impl Into<String>) -> DecodeError {
        DecodeError::InvalidValue {
            at: self.at.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A required field that is absent (or null, or empty).
    pub(crate) fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField {
            at: self.at.to_string(),
            field,
        }
    }

    /// Fails on the first field not in `allowed` (`"a, b, c"`).
    pub(crate) fn check_fields(&self, allowed: &'static str) -> Result<(), DecodeError> {
        match self
            .m
            .keys()
            .find(|k| !allowed.split(", ").any(|a| a == *k))
        {
            Some(k) => Err(DecodeError::UnknownField {
                at: self.at.to_string(),
                field: k.clone(),
                allowed,
            }),
            None => Ok(()),
        }
    }

    /// A string field; absent and null are `None`.
    pub(crate) fn opt_str(&self, field: &str) -> Result<Option<&'a str>, DecodeError> {
        match self.m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(field, "a string", v)),
        }
    }

    /// A string field; absent, null and empty (a template variable with no value) are `None`.
    pub(crate) fn opt_nonempty(&self, field: &str) -> Result<Option<&'a str>, DecodeError> {
        Ok(self
            .opt_str(field)?
            .map(str::trim)
            .filter(|s| !s.is_empty()))
    }

    /// A required, non-empty string field.
    pub(crate) fn req_str(&self, field: &'static str) -> Result<&'a str, DecodeError> {
        self.opt_nonempty(field)?.ok_or_else(|| self.missing(field))
    }

    /// A string or number field as text (ids senders write either way); empty is `None`.
    pub(crate) fn opt_text(&self, field: &str) -> Result<Option<String>, DecodeError> {
        match self.m.get(field) {
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                Ok(self.opt_nonempty(field)?.map(str::to_string))
            }
            Some(v) => Err(self.wrong(field, "a string or a number", v)),
        }
    }

    /// An object field; absent and null are `None`.
    pub(crate) fn opt_obj(
        &self,
        field: &str,
    ) -> Result<Option<&'a Map<String, Value>>, DecodeError> {
        match self.m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(v) => Err(self.wrong(field, "an object", v)),
        }
    }

    /// An object of strings (`labels`, `annotations`); absent and null are empty. Keys must not
    /// be empty; entries with an empty value are dropped when `drop_empty` (Alertmanager's rule).
    pub(crate) fn str_map(
        &self,
        field: &str,
        drop_empty: bool,
    ) -> Result<BTreeMap<String, String>, DecodeError> {
        let Some(o) = self.opt_obj(field).map_err(|e| match e {
            DecodeError::WrongType { at, field, got, .. } => DecodeError::WrongType {
                at,
                field,
                expected: "an object of strings",
                got,
            },
            e => e,
        })?
        else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for (k, v) in o {
            let Value::String(s) = v else {
                return Err(self.wrong(&format!("{field}.{k}"), "a string", v));
            };
            if k.is_empty() {
                return Err(self.invalid(field, "has an empty key"));
            }
            if drop_empty && s.is_empty() {
                continue;
            }
            out.insert(k.clone(), s.clone());
        }
        Ok(out)
    }
}

/// Parses an RFC 3339 time into Unix ms, also with a numeric offset without colon
/// (`2026-11-25T10:00:00.000+0000`, as AWS writes it). `None` if it is not such a time.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Some(ms);
    }
    let b = s.as_bytes();
    let n = b.len();
    let colonless =
        n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit);
    if !colonless {
        return None;
    }
    parse_rfc3339_ms(&format!("{}:{}", &s[..n - 2], &s[n - 2..]))
}

/// Go's zero time (`0001-01-01T00:00:00Z`) and the empty string, which senders write for "unset".
pub(crate) fn is_unset_time(s: &str) -> bool {
    s.is_empty() || s.starts_with("0001-01-01")
}

/// The fingerprint of an alert whose sender gives no stable id: the hash of its labels.
pub(crate) fn labels_fingerprint(labels: &BTreeMap<String, String>) -> String {
    format!(
        "{:016x}",
        hash_labels(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    )
}

/// One alert after normalization, before it goes into the batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Normalized {
    /// Where the alert is in the body (`alert 1`, `line 3`), for the errors of [`alert_batch`].
    pub(crate) at: String,
    /// Stable identity.
    pub(crate) fingerprint: String,
    /// `true` when resolved.
    pub(crate) resolved: bool,
    /// Labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// Annotations.
    pub(crate) annotations: BTreeMap<String, String>,
    /// Start, Unix ms.
    pub(crate) starts_at_ms: i64,
    /// End (or expiry, for an Alertmanager API v2 firing alert), Unix ms.
    pub(crate) ends_at_ms: Option<i64>,
    /// Link to the producing rule.
    pub(crate) generator_url: Option<String>,
}

/// The one alert batch of a request, built only after every alert of it was normalized and
/// passed the shared checks: labels (relaxed rules: Datadog tags and CloudWatch dimensions are
/// not Prometheus names) and `starts_at` / `ends_at` within the time window.
///
/// # Errors
/// The first failed check, naming the alert and field; [`DecodeError::Internal`] if the builder
/// fails (a bug).
pub(crate) fn alert_batch(
    source: &'static str,
    alerts: &[Normalized],
    req: &PushRequest<'_>,
) -> Result<Vec<SourceBatch>, DecodeError> {
    let limits = &req.limits;
    for a in alerts {
        limits.check_labels(
            &a.at,
            "labels",
            LabelRules::Relaxed,
            a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        limits.check_time(&a.at, "starts_at", a.starts_at_ms, req.now_ms)?;
        if let Some(e) = a.ends_at_ms {
            limits.check_time(&a.at, "ends_at", e, req.now_ms)?;
        }
    }
    let mut b = AlertBatchBuilder::new();
    for a in alerts {
        b.push(AlertRow {
            fingerprint: &a.fingerprint,
            resolved: a.resolved,
            labels: a.labels.iter(),
            annotations: a.annotations.iter(),
            starts_at_ms: a.starts_at_ms,
            ends_at_ms: a.ends_at_ms,
            source,
            generator_url: a.generator_url.as_deref(),
        });
    }
    let time_range = b.time_range();
    SourceBatch::single(Kind::Alerts, source, time_range, b.finish())
}

/// Reading one row of an alert batch back, for the decoders' tests.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::sources::SourceBatch;
    use aiops_schemas::arrow_array::cast::AsArray;
    use aiops_schemas::arrow_array::types::TimestampMillisecondType;
    use aiops_schemas::arrow_array::{Array, RecordBatch};
    use std::collections::BTreeMap;

    /// One alert row, every column.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Row {
        pub(crate) time: i64,
        pub(crate) fingerprint: String,
        pub(crate) status: String,
        pub(crate) labels: BTreeMap<String, String>,
        pub(crate) annotations: BTreeMap<String, String>,
        pub(crate) starts_at: i64,
        pub(crate) ends_at: Option<i64>,
        pub(crate) source: String,
        pub(crate) generator_url: Option<String>,
    }

    fn map(b: &RecordBatch, col: &str, row: usize) -> BTreeMap<String, String> {
        let m = b.column_by_name(col).unwrap().as_map();
        let entries = m.value(row);
        let (k, v) = (
            entries.column(0).as_string::<i32>(),
            entries.column(1).as_string::<i32>(),
        );
        (0..k.len())
            .map(|i| (k.value(i).to_string(), v.value(i).to_string()))
            .collect()
    }

    /// Every row of the one batch of a decode result (which must have exactly one batch).
    pub(crate) fn rows(out: &[SourceBatch]) -> Vec<Row> {
        assert_eq!(out.len(), 1, "one batch per request");
        let b = &out[0].batch;
        let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
        let t = |c: &str| {
            b.column_by_name(c)
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        };
        let (fp, status, source, url) = (
            s("fingerprint"),
            s("status"),
            s("source"),
            s("generator_url"),
        );
        let (time, starts, ends) = (t("time"), t("starts_at"), t("ends_at"));
        (0..b.num_rows())
            .map(|i| Row {
                time: time.value(i),
                fingerprint: fp.value(i).to_string(),
                status: status.value(i).to_string(),
                labels: map(b, "labels", i),
                annotations: map(b, "annotations", i),
                starts_at: starts.value(i),
                ends_at: (!ends.is_null(i)).then(|| ends.value(i)),
                source: source.value(i).to_string(),
                generator_url: (!url.is_null(i)).then(|| url.value(i).to_string()),
            })
            .collect()
    }

    /// A map from pairs.
    pub(crate) fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_and_without_offset_colon() {
        assert_eq!(parse_time("2026-11-24T10:00:00Z"), Some(1_795_514_400_000));
        assert_eq!(
            parse_time("2026-11-24T10:00:00.123+0000"),
            Some(1_795_514_400_123)
        );
        assert_eq!(
            parse_time("2026-11-24T11:30:00.000+0130"),
            Some(1_795_514_400_000)
        );
        for bad in [
            "",
            "noon",
            "2026-11-24T10:00:00+00",
            "2026-11-24T10:00:00+00x0",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert!(is_unset_time("0001-01-01T00:00:00Z") && is_unset_time(""));
    }
}
