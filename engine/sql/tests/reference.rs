//! Reference tables: the shipped CSV loads, pipeline SQL joins telemetry with a table, Parquet
//! files round-trip, and every malformed file is refused with its name (and line, for CSV).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_schemas::{Kind, LogBatchBuilder, schema_for};
use aiops_sql::reference::{self, MAX_FILE_BYTES, MAX_ROWS, ReferenceError};
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn shipped_tables() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/tables"
    ))
    .to_path_buf()
}

/// Writes `contents` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Loads `path`, expecting an error; returns its message.
fn refused(path: &Path) -> String {
    match reference::load(path) {
        Ok(t) => panic!("{} loaded: {t:?}", path.display()),
        Err(e) => e.to_string(),
    }
}

async fn query(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

fn services_batch(table: &reference::ReferenceTable) -> Vec<(String, String, String)> {
    let col = |i: usize| {
        table
            .batch
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    let (s, t, r) = (col(0), col(1), col(2));
    (0..table.num_rows())
        .map(|i| {
            (
                s.value(i).to_string(),
                t.value(i).to_string(),
                r.value(i).to_string(),
            )
        })
        .collect()
}

#[test]
fn shipped_services_csv_loads_as_utf8_columns() {
    let tables = reference::load_dir(&shipped_tables()).unwrap();
    let services = tables.iter().find(|t| t.name == "services").unwrap();
    let schema = services.batch.schema();
    let columns: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        columns,
        [
            ("service", &DataType::Utf8),
            ("team", &DataType::Utf8),
            ("tier", &DataType::Utf8)
        ]
    );
    assert!(services.num_rows() >= 6);
    let rows = services_batch(services);
    assert!(rows.contains(&("checkout".into(), "payments".into(), "1".into())));
    assert!(services.path.ends_with("services.csv"));
}

/// The query of docs/sql.md, "Reference tables", over real log rows.
#[tokio::test]
async fn pipeline_sql_joins_logs_with_a_reference_table() {
    let none: [(&str, &str); 0] = [];
    let mut b = LogBatchBuilder::new();
    // Window [0, 60 s).
    b.push(1_000, "error", "boom", [("service", "checkout")], none);
    b.push(10_000, "error", "boom", [("service", "payments")], none);
    b.push(20_000, "error", "boom", [("service", "cart")], none);
    b.push(30_000, "info", "ok", [("service", "checkout")], none);
    b.push(
        40_000,
        "error",
        "no such service",
        [("service", "legacy")],
        none,
    );
    b.push(50_000, "error", "no service label", [("host", "a")], none);
    // Window [60 s, 120 s).
    b.push(61_000, "error", "boom", [("service", "checkout")], none);
    b.push(62_000, "error", "boom", [("service", "search")], none);
    b.push(63_000, "error", "boom", [("service", "cart")], none);
    b.push(64_000, "warn", "hmm", [("service", "auth")], none);
    b.push(65_000, "error", "boom", [("service", "auth")], none);
    let logs = b.finish().unwrap();

    let ctx = aiops_sql::catalog::session().unwrap();
    ctx.deregister_table("logs").unwrap();
    let table = MemTable::try_new(schema_for(Kind::Logs), vec![vec![logs]]).unwrap();
    ctx.register_table("logs", Arc::new(table)).unwrap();
    let services = reference::load(&shipped_tables().join("services.csv")).unwrap();
    reference::register(&ctx, &[services]).unwrap();

    let out = query(
        &ctx,
        "SELECT tumble(l.time, INTERVAL '1 minute') AS window_start, s.team AS team, \
                count(*) AS errors \
         FROM logs l JOIN services s ON l.labels['service'] = s.service \
         WHERE l.severity = 'error' \
         GROUP BY tumble(l.time, INTERVAL '1 minute'), s.team \
         ORDER BY window_start, team",
    )
    .await;
    let expected = "\
+----------------------+------------+--------+
| window_start         | team       | errors |
+----------------------+------------+--------+
| 1970-01-01T00:00:00Z | payments   | 2      |
| 1970-01-01T00:00:00Z | storefront | 1      |
| 1970-01-01T00:01:00Z | identity   | 1      |
| 1970-01-01T00:01:00Z | payments   | 1      |
| 1970-01-01T00:01:00Z | storefront | 2      |
+----------------------+------------+--------+";
    assert_eq!(out, expected);

    // The same join, grouped by team only, with a tier filter on the reference side.
    let out = query(
        &ctx,
        "SELECT s.team AS team, count(*) AS errors \
         FROM logs l JOIN services s ON l.labels['service'] = s.service \
         WHERE l.severity = 'error' AND s.tier = '1' \
         GROUP BY s.team ORDER BY team",
    )
    .await;
    let expected = "\
+----------+--------+
| team     | errors |
+----------+--------+
| identity | 1      |
| payments | 3      |
+----------+--------+";
    assert_eq!(out, expected);
}

#[tokio::test]
async fn register_refuses_a_name_already_defined() {
    let ctx = aiops_sql::catalog::session().unwrap();
    let services = reference::load(&shipped_tables().join("services.csv")).unwrap();
    reference::register(&ctx, std::slice::from_ref(&services)).unwrap();
    let e = reference::register(&ctx, &[services])
        .unwrap_err()
        .to_string();
    assert!(e.contains("services.csv"), "{e}");
    assert!(e.contains("already defined"), "{e}");
}

#[tokio::test]
async fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("owner", DataType::Utf8, true),
        Field::new("slo_ms", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["checkout", "cart", "search"])),
        Arc::new(StringArray::from(vec![Some("ann"), None, Some("bo")])),
        Arc::new(Int64Array::from(vec![Some(250), Some(400), None])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    for (file, compression) in [
        ("slo.parquet", Compression::SNAPPY),
        ("slo_plain.parquet", Compression::UNCOMPRESSED),
    ] {
        let path = dir.path().join(file);
        let props = WriterProperties::builder()
            .set_compression(compression)
            // Several row groups, so the loader has to put them together.
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let table = reference::load(&path).unwrap();
        assert_eq!(table.name, file.trim_end_matches(".parquet"));
        assert_eq!(table.batch.columns(), batch.columns());
        let fields = |s: &Schema| -> Vec<(String, DataType, bool)> {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
                .collect()
        };
        assert_eq!(fields(&table.batch.schema()), fields(&schema));
    }

    let tables = reference::load_dir(dir.path()).unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["slo", "slo_plain"]);
    let ctx = aiops_sql::catalog::session().unwrap();
    reference::register(&ctx, &tables).unwrap();
    let out = query(
        &ctx,
        "SELECT service, slo_ms * 2 AS doubled FROM slo WHERE slo_ms IS NOT NULL ORDER BY service",
    )
    .await;
    let expected = "\
+----------+---------+
| service  | doubled |
+----------+---------+
| cart     | 800     |
| checkout | 500     |
+----------+---------+";
    assert_eq!(out, expected);
}

#[test]
fn csv_details_bom_quotes_empty_cells_and_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "owners.csv",
        b"\xEF\xBB\xBF service , note\n\ncheckout,\"a, \"\"quoted\"\"\nnote\"\ncart,\n",
    );
    let t = reference::load(&path).unwrap();
    assert_eq!(t.name, "owners");
    let schema = t.batch.schema();
    assert_eq!(schema.field(0).name(), "service");
    assert_eq!(schema.field(1).name(), "note");
    let note = t
        .batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(t.num_rows(), 2);
    assert_eq!(note.value(0), "a, \"quoted\"\nnote");
    assert!(note.is_null(1), "an empty cell is NULL");

    let path = write(dir.path(), "header_only.csv", b"a,b\n");
    let t = reference::load(&path).unwrap();
    assert_eq!(t.num_rows(), 0);
    assert_eq!(t.batch.num_columns(), 2);
}

#[test]
fn refuses_other_extensions_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["services.json", "services.CSV", "services"] {
        let path = write(dir.path(), name, b"a\n1\n");
        let e = refused(&path);
        assert!(e.contains(name), "{e}");
        assert!(e.contains(".csv or .parquet"), "{e}");
        assert!(matches!(
            reference::load(&path),
            Err(ReferenceError::Extension { .. })
        ));
    }
}

#[test]
fn refuses_names_that_are_not_identifiers_or_are_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["My-Table.csv", "1st.csv", "Services.csv", "a b.csv"] {
        let path = write(dir.path(), name, b"a\n1\n");
        let e = refused(&path);
        assert!(e.contains(name), "{e}");
        assert!(e.contains("plain SQL identifier"), "{e}");
    }
    for name in ["logs.csv", "metrics.csv", "alerts.csv", "events.csv"] {
        let path = write(dir.path(), name, b"a\n1\n");
        let e = refused(&path);
        assert!(e.contains(name), "{e}");
        assert!(e.contains("is an input stream"), "{e}");
    }
}

#[test]
fn refuses_malformed_csv_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 8] = [
        ("empty.csv", b"", "empty.csv:1: empty file"),
        ("blank.csv", b"\n\n", "blank.csv:1: empty file"),
        (
            "unnamed.csv",
            b"service,,tier\nx,y,z\n",
            "unnamed.csv:1: column 2 of the header row has no name",
        ),
        (
            "twice.csv",
            b"service,team,service\nx,y,z\n",
            "twice.csv:1: column name `service` appears twice",
        ),
        (
            "short.csv",
            b"service,team,tier\ncheckout,payments,1\ncart,storefront\n",
            "short.csv:3: 2 cells where the header row has 3",
        ),
        (
            "long.csv",
            b"service,team\ncheckout,payments\n\ncart,storefront,2\n",
            "long.csv:4: 3 cells where the header row has 2",
        ),
        (
            // A quoted cell spanning two lines: the bad row is on line 4 of the file.
            "multiline.csv",
            b"service,note\ncheckout,\"two\nlines\"\ncart\n",
            "multiline.csv:4: 1 cells where the header row has 2",
        ),
        (
            "latin1.csv",
            b"service,team\ncaf\xe9,payments\n",
            "latin1.csv:2: cell 1 is not valid UTF-8",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = write(dir.path(), name, contents);
        let e = refused(&path);
        assert!(e.contains(expected), "{name}: {e}");
        assert!(matches!(
            reference::load(&path),
            Err(ReferenceError::Csv { .. })
        ));
    }
}

#[test]
fn refuses_unreadable_and_corrupt_files_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let e = refused(&missing);
    assert!(e.contains("missing.csv: cannot read"), "{e}");

    std::fs::create_dir(dir.path().join("folder.csv")).unwrap();
    let e = refused(&dir.path().join("folder.csv"));
    assert!(e.contains("folder.csv: cannot read"), "{e}");

    for (name, contents) in [
        ("garbage.parquet", &b"service,team\nx,y\n"[..]),
        ("empty.parquet", &b""[..]),
        ("truncated.parquet", &b"PAR1\x00\x00PAR1"[..]),
    ] {
        let path = write(dir.path(), name, contents);
        let e = refused(&path);
        assert!(e.contains(&format!("{name}: invalid Parquet file")), "{e}");
    }
}

#[test]
fn refuses_tables_over_the_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse file one byte over the limit: refused before it is read.
    let path = dir.path().join("huge.csv");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    let e = refused(&path);
    assert!(e.contains("huge.csv"), "{e}");
    assert!(e.contains("held in memory"), "{e}");
    assert!(matches!(
        reference::load(&path),
        Err(ReferenceError::FileTooLarge { .. })
    ));

    let mut rows = b"n\n".to_vec();
    for _ in 0..=MAX_ROWS {
        rows.extend_from_slice(b"1\n");
    }
    let path = write(dir.path(), "many.csv", &rows);
    let e = refused(&path);
    assert!(e.contains("many.csv"), "{e}");
    assert!(e.contains(&format!("more than {MAX_ROWS} rows")), "{e}");

    // Exactly the limit is fine.
    rows.truncate(rows.len() - 2);
    let path = write(dir.path(), "enough.csv", &rows);
    assert_eq!(reference::load(&path).unwrap().num_rows(), MAX_ROWS);
}

#[test]
fn load_dir_sorts_skips_other_files_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        reference::load_dir(&dir.path().join("nope"))
            .unwrap()
            .is_empty(),
        "a missing directory holds no tables"
    );
    write(dir.path(), "zones.csv", b"zone\neu\n");
    write(dir.path(), "accounts.csv", b"account\nacme\n");
    write(dir.path(), "README.md", b"not a table");
    write(dir.path(), ".draft.csv", b"");
    std::fs::create_dir(dir.path().join("old")).unwrap();
    write(&dir.path().join("old"), "old.csv", b"");
    let tables = reference::load_dir(dir.path()).unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["accounts", "zones"]);

    // A broken file in the directory fails the whole load, naming the file.
    write(dir.path(), "broken.csv", b"a,b\n1\n");
    let e = reference::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("broken.csv:2:"), "{e}");
    std::fs::remove_file(dir.path().join("broken.csv")).unwrap();

    write(dir.path(), "zones.parquet", b"not even parquet");
    let e = reference::load_dir(dir.path()).unwrap_err();
    assert!(matches!(e, ReferenceError::Duplicate { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("zones.csv"), "{e}");
    assert!(e.contains("zones.parquet"), "{e}");
    assert!(e.contains("`zones`"), "{e}");

    // A file where a directory is expected.
    let file = write(dir.path(), "plain", b"");
    let e = reference::load_dir(&file).unwrap_err().to_string();
    assert!(e.contains("plain: cannot read"), "{e}");
}
