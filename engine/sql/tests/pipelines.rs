//! Every shipped pipeline checks, and every file in `pipelines/tests/bad/` is refused with the
//! position and reason its first line states (`-- error: LINE:COL: text`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_sql::pipeline::pipeline_files;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines"))
}

#[tokio::test]
async fn shipped_pipelines_check() {
    let files = pipeline_files(root()).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let p = aiops_sql::check_file(&f)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.inputs.is_empty());
        assert_eq!(
            p.output_schema.field(0).name(),
            "window_start",
            "{}",
            f.display()
        );
    }
    let p = aiops_sql::check_file(&root().join("node_memory_per_host.sql"))
        .await
        .unwrap();
    assert_eq!(p.output, "node_memory_1m");
    assert_eq!(p.inputs, vec!["metrics".to_string()]);
    let names: Vec<&str> = p
        .output_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "window_start",
            "host",
            "available_min_bytes",
            "available_avg_bytes"
        ]
    );
}

#[tokio::test]
async fn bad_pipelines_are_refused_with_position_and_reason() {
    let files = pipeline_files(&root().join("tests/bad")).unwrap();
    assert!(files.len() >= 5);
    for f in files {
        let source = std::fs::read_to_string(&f).unwrap();
        let marker = source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- error: "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `-- error: LINE:COL: text`",
                    f.display()
                )
            });
        let (pos, text) = marker.split_once(": ").unwrap();
        let (line, col) = pos.split_once(':').unwrap();
        let e = aiops_sql::check(&f, &source)
            .await
            .expect_err(&format!("{} was accepted", f.display()));
        assert_eq!(
            (e.line, e.column),
            (line.parse().unwrap(), col.parse().unwrap()),
            "{}: {e}",
            f.display()
        );
        assert!(
            e.message.contains(text),
            "{}: message {:?} lacks {text:?}",
            f.display(),
            e.message
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:{line}:{col}: ", f.display())),
            "{shown}"
        );
    }
}
