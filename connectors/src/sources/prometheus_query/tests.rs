//! Unit tests without a network: settings, range alignment, parsing of answers.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::outbound::OutboundPolicy;
use crate::sources::range::RangeSource;
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};

fn cfg(extra: &str) -> PrometheusQueryConfig {
    toml::from_str(&format!(
        "url = \"http://127.0.0.1:9090\"\nquery = \"up\"\nstep = \"10s\"\n{extra}"
    ))
    .unwrap()
}

fn source(extra: &str) -> PrometheusQuerySource {
    cfg(extra)
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap()
}

#[test]
fn ranges_do_not_share_evaluation_times() {
    let s = source("");
    // [0, 60s) → 0 .. 50s; [60s, 120s) → 60s .. 110s.
    assert_eq!(s.eval_range(0, 60_000), Some((0, 50_000)));
    assert_eq!(s.eval_range(60_000, 120_000), Some((60_000, 110_000)));
    // Unaligned bounds round inwards.
    assert_eq!(s.eval_range(1, 60_001), Some((10_000, 60_000)));
    // A range holding no multiple of the step asks nothing.
    assert_eq!(s.eval_range(1, 9_999), None);
}

#[test]
fn matrix_answers_become_metric_rows() {
    let s = source("labels = { src = \"prom\" }");
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"up","job":"node","src":"theirs"},"values":[[0,"1"],[10,"NaN"],[20,"+Inf"],[60,"1"]]},
        {"metric":{"__name__":"up","job":"db"},"values":[[30.5,"0"]]}]}}"#;
    let p = s.parse(body, 0, 60_000).unwrap();
    // NaN and the point at 60 s (outside [0, 60 s)) are dropped.
    assert_eq!(p.dropped, 2);
    let b = p.batch.unwrap().batch;
    assert_eq!(b.num_rows(), 3);
    let t = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(t.values().to_vec(), vec![0, 20_000, 30_500]);
    let v = b.column(3).as_primitive::<Float64Type>();
    assert!(v.value(1).is_infinite());
    // The configured label wins.
    let labels = b.column(2).as_map().value(0);
    let vals = labels.column(1).as_string::<i32>();
    assert!((0..vals.len()).any(|i| vals.value(i) == "prom"));
    assert!(!(0..vals.len()).any(|i| vals.value(i) == "theirs"));
}

#[test]
fn series_without_a_name_need_metric() {
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"job":"node"},"values":[[0,"1"]]}]}}"#;
    let e = source("").parse(body, 0, 60_000).unwrap_err();
    assert!(
        matches!(e, crate::SourceError::Config(ref m) if m.starts_with("metric:")),
        "{e}"
    );
    let p = source("metric = \"node_up\"")
        .parse(body, 0, 60_000)
        .unwrap();
    assert_eq!(p.batch.unwrap().batch.num_rows(), 1);
}

#[test]
fn bad_labels_and_non_matrix_answers_are_reported() {
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"up","bad-name":"x"},"values":[[0,"1"]]}]}}"#;
    let p = source("").parse(body, 0, 60_000).unwrap();
    assert!(p.batch.is_none());
    assert_eq!(p.dropped, 1);
    assert!(p.first_problem.unwrap().contains("bad-name"));
    let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert!(source("").parse(vector, 0, 1).is_err());
    assert!(matches!(
        source("").parse(b"<html>", 0, 1),
        Err(crate::SourceError::Unavailable(_))
    ));
}

#[test]
fn invalid_settings_name_their_field() {
    let c = cfg(
        "interval = \"10ms\"\nmax_range = \"40h\"\nbasic_auth = { username = \"u\", password = { value = \"p\" } }\nbearer_token = { env = \"X\" }",
    );
    let e = c
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap_err()
        .to_string();
    for field in ["interval:", "max_range:", "basic_auth, bearer_token:"] {
        assert!(e.contains(field), "{field} in {e}");
    }
    // Loopback is refused unless allowed.
    let e = cfg("")
        .build_with(&OutboundPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("url:") && e.contains("loopback"), "{e}");
    let e =
        toml::from_str::<PrometheusQueryConfig>("url = \"http://h\"\nqeury = \"up\"").unwrap_err();
    assert!(e.to_string().contains("qeury"), "{e}");
}

#[test]
fn secrets_are_read_from_env_and_never_serialized() {
    let c = cfg("bearer_token = { value = \"s3cr3t-token\" }");
    let shown = serde_json::to_string(&c).unwrap();
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let missing = cfg("bearer_token = { env = \"AIOPS_TEST_SURELY_UNSET_VAR\" }")
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("bearer_token") && missing.contains("AIOPS_TEST_SURELY_UNSET_VAR"));
    assert_eq!(source("").name(), "prometheus");
}
