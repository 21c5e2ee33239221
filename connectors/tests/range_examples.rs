//! The commented database and cloud API source examples of `aiops.example.toml` parse into the
//! registry's source configs and build (their secret references replaced by values), so the
//! examples users copy stay valid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::registry::PullSourceConfig;

/// The `# [[sources]]` blocks of the example's "Databases and cloud APIs" part, uncommented.
fn example_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../aiops.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text
        .find("# Databases and cloud APIs")
        .expect("aiops.example.toml documents the database sources");
    let mut blocks: Vec<String> = Vec::new();
    for line in text[start..].lines() {
        let Some(rest) = line.strip_prefix('#') else {
            break;
        };
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        if rest == "[[sources]]" {
            blocks.push(String::new());
        } else if let Some(b) = blocks.last_mut() {
            if rest.is_empty() {
                continue;
            }
            b.push_str(rest);
            b.push('\n');
        }
    }
    blocks
}

#[test]
fn database_and_cloud_examples_parse_and_build() {
    let blocks = example_blocks();
    let types: Vec<&str> = ["postgres", "clickhouse", "cloudwatch", "datadog"].to_vec();
    assert_eq!(blocks.len(), types.len(), "{blocks:#?}");
    let allow = OutboundPolicy::default();
    for (block, ty) in blocks.iter().zip(types) {
        // The examples read secrets from the environment; here they are given as values.
        let block = regex_lite_env(block);
        let value: toml::Value = toml::from_str(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let json = serde_json::to_value(&value).unwrap();
        let cfg = PullSourceConfig::from_json(&json).unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert_eq!(cfg.type_name(), ty);
        match cfg.build_range(&allow) {
            Some(Ok(src)) => assert!(!src.name().is_empty()),
            Some(Err(e)) => panic!("{ty}: {e}"),
            None => panic!("{ty} is not a range source"),
        }
    }
}

/// `{ env = "NAME" }` → `{ value = "example-secret-value" }`.
fn regex_lite_env(block: &str) -> String {
    let mut out = String::new();
    let mut rest = block;
    while let Some(i) = rest.find("{ env = \"") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('}').expect("a closed inline table");
        out.push_str("{ value = \"example-secret-value\" }");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
