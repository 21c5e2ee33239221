//! OTel `AnyValue`s as text: label and attribute values are strings in aiops' schemas.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde_json::Value as Json;

/// An `AnyValue` as a label or attribute value: strings as they are, numbers and booleans in
/// their usual text, bytes as base64 (the specification's rule for non-string attributes),
/// arrays and maps as JSON.
pub fn to_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => fmt_f64(*d),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(Value::StringValueStrindex(i)) => i.to_string(),
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let any = AnyValue {
                value: Some(other.clone()),
            };
            to_json(&any).to_string()
        }
    }
}

/// An `AnyValue` as JSON (log bodies that are not a string): maps as objects (a repeated key
/// keeps its last value), bytes as base64 strings, non-finite doubles as strings.
pub fn to_json(v: &AnyValue) -> Json {
    match &v.value {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| Json::String(fmt_f64(*d)), Json::Number)
        }
        Some(Value::BytesValue(b)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::StringValueStrindex(i)) => Json::from(*i),
        Some(Value::ArrayValue(a)) => Json::Array(a.values.iter().map(to_json).collect()),
        Some(Value::KvlistValue(kv)) => Json::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map_or(Json::Null, to_json),
                    )
                })
                .collect(),
        ),
    }
}

/// A float as Prometheus writes label values such as `le` and `quantile`: shortest round-trip
/// text, `+Inf`, `-Inf`, `NaN`.
pub fn fmt_f64(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}
