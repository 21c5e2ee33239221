//! Unit tests of the SQL sources without a database: macro rewriting, config checks, mapping.

use super::config::SqlConfig;
use super::mapping::{Cell, MappingError, OutputKind, RowMapping, Table, TimeUnit, time_ms};
use super::query::{Dialect, Param, inline_values, rewrite};
use crate::outbound::OutboundPolicy;
use crate::sources::validate::IngestLimits;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::Float64Type;

#[test]
fn macros_become_bound_parameters() {
    let q = "SELECT ts, v FROM t WHERE ts >= $__from AND ts < $__to AND ms < $__to_ms AND ts >= $__from";
    let pg = rewrite(q, Dialect::Postgres).unwrap();
    assert_eq!(
        pg.sql,
        "SELECT ts, v FROM t WHERE ts >= $1 AND ts < $2 AND ms < $3 AND ts >= $1"
    );
    assert_eq!(pg.params, vec![Param::From, Param::To, Param::ToMs]);
    let my = rewrite(q, Dialect::Mysql).unwrap();
    assert_eq!(
        my.sql,
        "SELECT ts, v FROM t WHERE ts >= ? AND ts < ? AND ms < ? AND ts >= ?"
    );
    assert_eq!(
        my.params,
        vec![Param::From, Param::To, Param::ToMs, Param::From]
    );
    let ch = rewrite(q, Dialect::ClickHouse).unwrap();
    assert_eq!(
        ch.sql,
        "SELECT ts, v FROM t WHERE ts >= {aiops_from:DateTime64(3, 'UTC')} AND ts < \
         {aiops_to:DateTime64(3, 'UTC')} AND ms < {aiops_to_ms:Int64} AND ts >= \
         {aiops_from:DateTime64(3, 'UTC')}"
    );
    assert_eq!(ch.params, vec![Param::From, Param::To, Param::ToMs]);
}

#[test]
fn macros_inside_literals_and_comments_stay_text() {
    let q = "SELECT '$__from', \"$__to\" -- $__from\n FROM t /* $__to */ WHERE x = $tag$ $__from $tag$ AND t < $__to";
    let pg = rewrite(q, Dialect::Postgres).unwrap();
    assert_eq!(
        pg.sql,
        "SELECT '$__from', \"$__to\" -- $__from\n FROM t /* $__to */ WHERE x = $tag$ $__from $tag$ AND t < $1"
    );
    assert_eq!(pg.params, vec![Param::To]);
    // MySQL: backslash escapes inside strings and `#` comments.
    let my = rewrite(
        "SELECT 'it\\'s $__from' # $__to\nFROM t WHERE a < $__to",
        Dialect::Mysql,
    )
    .unwrap();
    assert_eq!(
        my.sql,
        "SELECT 'it\\'s $__from' # $__to\nFROM t WHERE a < ?"
    );
}

#[test]
fn hand_written_placeholders_and_unknown_macros_are_refused() {
    let e = rewrite("SELECT * FROM t WHERE a > $1", Dialect::Postgres).unwrap_err();
    assert!(e.to_string().contains("positional parameter"), "{e}");
    let e = rewrite("SELECT * FROM t WHERE a > ?", Dialect::Mysql).unwrap_err();
    assert!(e.to_string().contains("`?` placeholder"), "{e}");
    let e = rewrite("SELECT * FROM t WHERE a > $__fromage", Dialect::Postgres).unwrap_err();
    assert!(e.to_string().contains("unknown macro $__fromage"), "{e}");
    let e = rewrite("SELECT 'open", Dialect::Mysql).unwrap_err();
    assert!(e.to_string().contains("unterminated"), "{e}");
    assert!(rewrite("  ", Dialect::Postgres).is_err());
    // A `?` is only a placeholder outside literals.
    assert!(rewrite("SELECT '?' FROM t", Dialect::Mysql).is_ok());
}

#[test]
fn inline_clickhouse_values_are_integers_rounded_outwards() {
    let r = rewrite(
        "SELECT * FROM t WHERE ts >= $__from AND ts < $__to AND ms < $__to_ms",
        Dialect::ClickHouseInline,
    )
    .unwrap();
    assert_eq!(
        inline_values(&r, 1_500, 3_001),
        "SELECT * FROM t WHERE ts >= toDateTime(1, 'UTC') AND ts < toDateTime(4, 'UTC') AND \
         ms < toInt64(3001)"
    );
}

fn metrics_mapping() -> RowMapping {
    toml::from_str(
        "kind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"orders\", \"revenue\"]\nmetric_prefix = \"shop_\"\nlabels = { env = \"prod\" }\n",
    )
    .unwrap()
}

fn table() -> Table {
    Table {
        columns: vec![
            "ts".into(),
            "region".into(),
            "orders".into(),
            "revenue".into(),
        ],
        rows: vec![
            vec![
                Cell::TimeMs(1_000),
                Cell::Text("eu".into()),
                Cell::Int(3),
                Cell::Decimal("12.50".into()),
            ],
            vec![Cell::TimeMs(2_000), Cell::Null, Cell::Int(4), Cell::Null],
            // Outside the range: dropped.
            vec![
                Cell::TimeMs(5_000),
                Cell::Text("us".into()),
                Cell::Int(9),
                Cell::Float(1.0),
            ],
        ],
    }
}

#[test]
fn metric_rows_map_values_labels_and_range() {
    let m = metrics_mapping();
    m.check().unwrap();
    let out = m
        .map(&table(), "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, Kind::Metrics);
    assert_eq!(out[0].time_range, Some((1_000, 2_000)));
    let b = &out[0].batch;
    // Row 1: orders + revenue; row 2: orders only (NULL revenue is no sample).
    assert_eq!(b.num_rows(), 3);
    let names = b.column(1).as_string::<i32>();
    assert_eq!(
        (0..3).map(|i| names.value(i)).collect::<Vec<_>>(),
        ["shop_orders", "shop_revenue", "shop_orders"]
    );
    let values = b.column(3).as_primitive::<Float64Type>();
    assert_eq!(values.values().to_vec(), vec![3.0, 12.5, 4.0]);
    let labels = b.column(2).as_map();
    let first = labels.value(0);
    let keys = first.column(0).as_string::<i32>();
    let vals = first.column(1).as_string::<i32>();
    let pairs: Vec<(&str, &str)> = (0..keys.len())
        .map(|i| (keys.value(i), vals.value(i)))
        .collect();
    assert_eq!(pairs, [("region", "eu"), ("env", "prod")]);
    // Row 2's NULL region is omitted.
    assert_eq!(labels.value(2).len(), 1);
}

#[test]
fn an_empty_result_maps_to_nothing() {
    let empty = Table::default();
    let out = metrics_mapping()
        .map(&empty, "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap();
    assert!(out.is_empty());
}

#[test]
fn mapping_errors_name_the_row_and_column() {
    let m = metrics_mapping();
    let mut t = table();
    t.rows[1][2] = Cell::Text("many".into());
    let e = m
        .map(&t, "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap_err();
    assert!(
        matches!(&e, MappingError::Cell { row: 2, column, role: "value_columns", .. } if column == "orders"),
        "{e}"
    );
    assert!(e.to_string().contains("\"many\" is not a number"), "{e}");
    t.rows[0][0] = Cell::Null;
    let e = m
        .map(&t, "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("row 1, column \"ts\" (time_column): is NULL"),
        "{e}"
    );
    t.columns[0] = "time".into();
    let e = m
        .map(&t, "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "column \"ts\" (time_column) is not in the query result (columns: time, region"
        ),
        "{e}"
    );
    // A label column whose name no Prometheus query could use.
    let mut t = table();
    t.columns[1] = "the region".into();
    let e = m
        .map(&t, "postgres", 0, 5_000, &IngestLimits::default())
        .unwrap_err();
    assert!(e.to_string().contains("row 1"), "{e}");
    assert!(e.to_string().contains("not a Prometheus label name"), "{e}");
}

#[test]
fn logs_and_events_map_message_severity_attributes() {
    let t = Table {
        columns: vec![
            "at".into(),
            "level".into(),
            "msg".into(),
            "host".into(),
            "user_id".into(),
        ],
        rows: vec![vec![
            Cell::Text("2026-01-02 03:04:05.250".into()),
            Cell::Text("ERROR".into()),
            Cell::Text("disk full".into()),
            Cell::Text("db1".into()),
            Cell::Int(42),
        ]],
    };
    let logs: RowMapping = toml::from_str(
        "kind = \"log\"\ntime_column = \"at\"\nmessage_column = \"msg\"\nseverity_column = \"level\"\nlabel_columns = [\"host\"]\n",
    )
    .unwrap();
    logs.check().unwrap();
    let t0 = time_ms(&Cell::Text("2026-01-02T03:04:05.250Z".into()), TimeUnit::S).unwrap();
    let out = logs
        .map(&t, "mysql", t0, t0 + 1, &IngestLimits::default())
        .unwrap();
    let b = &out[0].batch;
    assert_eq!(out[0].kind, Kind::Logs);
    assert_eq!(b.column(1).as_string::<i32>().value(0), "error");
    assert_eq!(b.column(2).as_string::<i32>().value(0), "disk full");
    let attrs = b.column(4).as_map().value(0);
    assert_eq!(attrs.column(0).as_string::<i32>().value(0), "user_id");
    assert_eq!(attrs.column(1).as_string::<i32>().value(0), "42");

    let events: RowMapping = toml::from_str(
        "kind = \"events\"\ntime_column = \"at\"\nevent_type = \"db_alert\"\nmessage_column = \"msg\"\n",
    )
    .unwrap();
    events.check().unwrap();
    let out = events
        .map(&t, "mysql", t0, t0 + 1, &IngestLimits::default())
        .unwrap();
    assert_eq!(out[0].kind, Kind::Events);
    assert_eq!(
        out[0].batch.column(1).as_string::<i32>().value(0),
        "db_alert"
    );
    // The event types aiops writes itself cannot come from a source.
    let forged: RowMapping = toml::from_str("kind = \"events\"\nevent_type = \"audit\"\n").unwrap();
    assert!(forged.check().is_err());
}

#[test]
fn numeric_times_follow_the_unit() {
    assert_eq!(
        time_ms(&Cell::Int(1_700_000_000), TimeUnit::S),
        Ok(1_700_000_000_000)
    );
    assert_eq!(time_ms(&Cell::Float(1.5), TimeUnit::S), Ok(1_500));
    assert_eq!(time_ms(&Cell::Int(1_500), TimeUnit::Ms), Ok(1_500));
    assert_eq!(time_ms(&Cell::Int(1_500_000), TimeUnit::Us), Ok(1_500));
    assert_eq!(time_ms(&Cell::Int(1_500_000_000), TimeUnit::Ns), Ok(1_500));
    assert_eq!(
        time_ms(&Cell::Text("2026-01-02".into()), TimeUnit::S).map(|t| t % 86_400_000),
        Ok(0)
    );
    assert!(time_ms(&Cell::Bool(true), TimeUnit::S).is_err());
    assert!(time_ms(&Cell::Int(i64::MAX), TimeUnit::S).is_err());
}

#[test]
fn inconsistent_mappings_are_refused_with_every_problem() {
    let m: RowMapping =
        toml::from_str("kind = \"metrics\"\nmessage_column = \"m\"\nmetric_prefix = \"1x\"\nvalue_columns = [\"v\"]\n").unwrap();
    let e = m.check().unwrap_err().to_string();
    assert!(e.contains("message_column is not used for metrics"), "{e}");
    assert!(e.contains("not a Prometheus name"), "{e}");
    let m: RowMapping = toml::from_str("kind = \"logs\"\n").unwrap();
    assert!(
        m.check()
            .unwrap_err()
            .to_string()
            .contains("message_column")
    );
    assert!(toml::from_str::<RowMapping>("kind = \"metrics\"\nvalue_column = \"v\"\n").is_err());
    assert_eq!(m.kind, OutputKind::Logs);
}

fn sql_config(extra: &str) -> SqlConfig {
    toml::from_str(&format!(
        "query = \"SELECT ts, v FROM t WHERE ts >= $__from AND ts < $__to\"\n{extra}\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"v\"]\n"
    ))
    .unwrap()
}

#[test]
fn targets_come_from_url_or_fields_and_passwords_never_from_urls() {
    let c = sql_config("url = \"postgres://aiops@db.example:6543/shop\"");
    let t = c.target(Dialect::Postgres).unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.database.as_str()
        ),
        ("db.example", 6543, "aiops", "shop")
    );
    let c = sql_config("host = \"db.example\"\nuser = \"root\"");
    assert_eq!(c.target(Dialect::Mysql).unwrap().port, 3306);
    let c = sql_config("url = \"postgres://aiops:hunter22@db.example/shop\"");
    let e = c.target(Dialect::Postgres).unwrap_err();
    assert!(e.contains("must not contain the password"), "{e}");
    assert!(!e.contains("hunter22"));
    let e = sql_config("url = \"mysql://db.example/shop\"")
        .target(Dialect::Postgres)
        .unwrap_err();
    assert!(e.contains("postgres://"), "{e}");
}

#[test]
fn build_checks_outbound_password_and_query() {
    let c = sql_config("host = \"127.0.0.1\"\nport = 5432");
    let e = c
        .build(Dialect::Postgres, &OutboundPolicy::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("loopback"), "{e}");
    let allow = OutboundPolicy::allowing(["127.0.0.1"]);
    assert!(c.build(Dialect::Postgres, &allow).is_ok());
    let c = sql_config(
        "host = \"127.0.0.1\"\npassword = { env = \"AIOPS_TEST_SQL_PASSWORD_SURELY_UNSET\" }",
    );
    let e = c.build(Dialect::Postgres, &allow).unwrap_err().to_string();
    assert!(
        e.contains("AIOPS_TEST_SQL_PASSWORD_SURELY_UNSET is not set"),
        "{e}"
    );
    let mut c = sql_config("host = \"127.0.0.1\"");
    c.query = "SELECT * FROM t WHERE a = ?".into();
    let e = c.build(Dialect::Mysql, &allow).unwrap_err().to_string();
    assert!(e.contains("placeholder"), "{e}");
}
