//! Keeps docs/events.md equal to the reference generated from the schemas.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[test]
fn docs_events_md_matches_schemas() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
    let expected = aiops_schemas::reference::markdown();
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    if actual != expected {
        if std::env::var_os("AIOPS_BLESS").is_some() {
            std::fs::write(path, &expected).unwrap();
            return;
        }
        panic!("docs/events.md is out of date; run with AIOPS_BLESS=1 to regenerate it");
    }
}
