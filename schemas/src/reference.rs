//! The human-readable reference of every event kind, generated from the schemas.
//!
//! `docs/events.md` holds this text; a test fails when the two differ, so the docs cannot drift
//! from the code. Regenerate with `cargo run -p aiops-server -- schema-docs > docs/events.md`.

use crate::kind::Kind;
use crate::schema::{SCHEMA_VERSION, columns};
use std::fmt::Write;

fn type_name(dt: &arrow_schema::DataType) -> String {
    use arrow_schema::DataType as T;
    match dt {
        T::Timestamp(_, _) => "timestamp (ms, UTC)".into(),
        T::Utf8 => "string".into(),
        T::Float64 => "float64".into(),
        T::Map(_, _) => "map<string, string>".into(),
        other => format!("{other}"),
    }
}

/// The Markdown reference of every event kind at the current schema version.
pub fn markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Event kinds (schema version {SCHEMA_VERSION})\n");
    let _ = writeln!(
        s,
        "Generated from `schemas/src/schema.rs`; a test keeps this file equal to the code.\n\
         Every event is stored in the log as part of an Arrow batch under the subject\n\
         `aiops.<kind>.<partition>`; the batch's header (see `schemas/src/codec.rs`) carries the\n\
         schema version, the event count, the ingest time and the event-time range.\n"
    );
    for kind in Kind::ALL {
        let _ = writeln!(s, "## `{kind}`\n");
        let _ = writeln!(s, "| column | type | null | meaning |");
        let _ = writeln!(s, "|---|---|---|---|");
        for c in columns(kind) {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                c.name,
                type_name(&c.data_type),
                if c.nullable { "yes" } else { "no" },
                c.doc
            );
        }
        s.push('\n');
    }
    s
}
