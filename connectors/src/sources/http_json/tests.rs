//! Unit tests without a network: paths, times, settings, records to rows.
#![allow(clippy::unwrap_used)]

use super::path::JsonPath;
use super::time::{TimeFormat, parse_rfc3339, read, rfc3339, write};
use super::*;
use crate::outbound::OutboundPolicy;
use serde_json::json;

#[test]
fn paths_select_what_they_say() {
    let doc = json!({"data": [{"ts": 1, "labels": {"region": "eu", "a.b": "x"}}, {"ts": 2}], "next": null});
    let rows = JsonPath::parse("$.data[*]").unwrap();
    assert_eq!(rows.select(&doc).len(), 2);
    assert!(rows.has_each());
    let r = &doc["data"][0];
    assert_eq!(
        JsonPath::parse("labels.region").unwrap().get(r),
        Some(&json!("eu"))
    );
    assert_eq!(
        JsonPath::parse("labels[\"a.b\"]").unwrap().get(r),
        Some(&json!("x"))
    );
    assert_eq!(
        JsonPath::parse("$.data[1].ts").unwrap().get(&doc),
        Some(&json!(2))
    );
    assert_eq!(JsonPath::parse("$.next").unwrap().get(&doc), None);
    assert_eq!(JsonPath::parse("$").unwrap().select(&doc).len(), 1);
    for bad in ["a..b", "a[", "a[x]", "$x"] {
        assert!(JsonPath::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn times_round_trip() {
    let t = 1_796_402_400_123; // 2026-12-04T16:40:00.123Z
    assert_eq!(rfc3339(t), "2026-12-04T16:40:00.123Z");
    assert_eq!(parse_rfc3339("2026-12-04T16:40:00.123Z"), Some(t));
    assert_eq!(parse_rfc3339("2026-12-04T18:40:00.123+02:00"), Some(t));
    assert_eq!(parse_rfc3339("2026-12-04T16:40:00.123456789Z"), Some(t));
    assert_eq!(parse_rfc3339("2026-13-04T16:40:00Z"), None);
    assert_eq!(write(t, TimeFormat::S), "1796402400.123");
    assert_eq!(write(1_000, TimeFormat::S), "1");
    assert_eq!(
        read(&json!(1_796_402_400), TimeFormat::Auto),
        Some(1_796_402_400_000)
    );
    assert_eq!(read(&json!(t), TimeFormat::Auto), Some(t));
    assert_eq!(read(&json!("1796402400.123"), TimeFormat::S), Some(t));
    assert_eq!(
        read(&json!("2026-12-04T16:40:00.123Z"), TimeFormat::Auto),
        Some(t)
    );
    assert_eq!(read(&json!(true), TimeFormat::Auto), None);
}

fn cfg(mapping: &str, extra: &str) -> HttpJsonConfig {
    toml::from_str(&format!(
        "url = \"http://127.0.0.1:8080/api\"\n{extra}\n[mapping]\n{mapping}"
    ))
    .unwrap()
}

#[test]
fn settings_problems_name_their_field() {
    let c = cfg(
        "kind = \"metric\"\ntime = \"ts\"\nlabels = { r = \"a[*]\" }",
        "time_format = \"auto\"\nheaders = { Authorization = \"Bearer x\" }\nmax_pages = 0",
    );
    let e = c
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap_err()
        .to_string();
    for f in [
        "time_format:",
        "headers.Authorization:",
        "max_pages:",
        "mapping.labels.r:",
        "mapping.name, mapping.name_field:",
        "mapping.value:",
    ] {
        assert!(e.contains(f), "{f} in {e}");
    }
    let url_template = toml::from_str::<HttpJsonConfig>(
        "url = \"http://h/x?from=$__from\"\n[mapping]\nkind = \"log\"\ntime = \"t\"\nmessage = \"m\"",
    )
    .unwrap();
    assert!(
        url_template
            .problems()
            .iter()
            .any(|p| p.starts_with("url:"))
    );
    let meta = toml::from_str::<HttpJsonConfig>(
        "url = \"http://169.254.169.254/latest\"\n[mapping]\nkind = \"log\"\ntime = \"t\"\nmessage = \"m\"",
    )
    .unwrap();
    let e = meta
        .build_with(&OutboundPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("metadata"), "{e}");
}

#[test]
fn placeholders_are_substituted_and_escaped() {
    let v = json!({"range": {"from": "$__from", "to": "$__to"}, "q": "t > $__from"});
    let out = super::source::tests_support::subst_json(&v, "1000", "2000");
    assert_eq!(
        out,
        json!({"range": {"from": 1000, "to": 2000}, "q": "t > 1000"})
    );
    let out = super::source::tests_support::subst_json(&v, "2026-01-01T00:00:00.000Z", "x");
    assert_eq!(out["range"]["from"], json!("2026-01-01T00:00:00.000Z"));
}
