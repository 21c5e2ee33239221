//! Reading a call's params (the action's `with:` block) with errors that name the field.

use crate::sinks::SinkError;
use serde_json::{Map, Value};

/// The params object.
pub(crate) type Params = Map<String, Value>;

/// Refuses fields outside `known`, so a typo is an error rather than a silently ignored field.
pub(crate) fn only_known(p: &Params, known: &[&str]) -> Result<(), SinkError> {
    for key in p.keys() {
        if !known.contains(&key.as_str()) {
            return Err(SinkError::params(
                key.clone(),
                format!("unknown field (allowed: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The JSON type name of a value, for messages.
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

/// A required non-empty string.
pub(crate) fn req_str<'a>(p: &'a Params, field: &str) -> Result<&'a str, SinkError> {
    match opt_str(p, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(SinkError::params(field, "must not be empty")),
        None => Err(SinkError::params(field, "is required")),
    }
}

/// An optional string (absent or null is `None`).
pub(crate) fn opt_str<'a>(p: &'a Params, field: &str) -> Result<Option<&'a str>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(SinkError::params(
            field,
            format!("must be a string, got {}", type_name(v)),
        )),
    }
}

/// An optional string or list of strings, as a list.
pub(crate) fn opt_str_list(p: &Params, field: &str) -> Result<Vec<String>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(SinkError::params(
                    format!("{field}[{i}]"),
                    format!("must be a string, got {}", type_name(other)),
                )),
            })
            .collect(),
        Some(v) => Err(SinkError::params(
            field,
            format!(
                "must be a string or a list of strings, got {}",
                type_name(v)
            ),
        )),
    }
}

/// An optional object.
pub(crate) fn opt_object<'a>(p: &'a Params, field: &str) -> Result<Option<&'a Params>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(SinkError::params(
            field,
            format!("must be an object, got {}", type_name(v)),
        )),
    }
}

/// An optional array.
pub(crate) fn opt_array<'a>(
    p: &'a Params,
    field: &str,
) -> Result<Option<&'a Vec<Value>>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(SinkError::params(
            field,
            format!("must be an array, got {}", type_name(v)),
        )),
    }
}

/// An optional integer; a string of digits is accepted too, since rendered templates are text.
pub(crate) fn opt_i64(p: &Params, field: &str) -> Result<Option<i64>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| SinkError::params(field, "must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| SinkError::params(field, format!("must be an integer, got {s:?}"))),
        Some(v) => Err(SinkError::params(
            field,
            format!("must be an integer, got {}", type_name(v)),
        )),
    }
}

/// An object of string values (headers, facts) as pairs; non-string scalars are rendered as text.
pub(crate) fn opt_string_map(p: &Params, field: &str) -> Result<Vec<(String, String)>, SinkError> {
    let Some(m) = opt_object(p, field)? else {
        return Ok(Vec::new());
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            other => Err(SinkError::params(
                format!("{field}.{k}"),
                format!("must be a string, got {}", type_name(other)),
            )),
        })
        .collect()
}

/// A short stable hash of the idempotency key (16 hex digits of SHA-256), for labels and ids
/// that services show to people.
pub(crate) fn key_hash16(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}
