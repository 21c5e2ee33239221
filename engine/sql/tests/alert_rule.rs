//! Alert rules written in SQL: the shipped orders drop alert driven through the streaming runtime
//! and the alert stage, with `for` semantics (pending, firing once, resolving once), revisions
//! that do not double count, checkpoints, labels per group, and header settings errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_sql::alert_rule::{AlertRule, fingerprint};
use aiops_sql::runtime::{EmissionKind, RuntimeConfig, StreamingPipeline};
use aiops_sql::settings::HoldFor;
use common::*;
use datafusion::arrow::array::{Array, AsArray, MapArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A minute boundary in 2023, so windows are epoch-aligned as in production.
const T0: i64 = 28_333_334 * 60_000;
const MIN: i64 = 60_000;

fn alert_file() -> PathBuf {
    pipelines_dir().join("orders_drop_alert.sql")
}

/// Orders per minute (`counts[m]` spread over minute `m`) and one deploy event per minute, so
/// every minute has an event even when it has no order.
fn traffic(counts: &[u64], service: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for (m, &c) in counts.iter().enumerate() {
        let start = T0 + m as i64 * MIN;
        for i in 0..c {
            rows.push(Row::Event {
                t: start + (i as i64 * MIN) / c as i64 + 7,
                kind: "order",
                labels: vec![("service", service.to_string())],
            });
        }
        rows.push(Row::Event {
            t: start + 30_000,
            kind: "deploy",
            labels: vec![("service", "ci".to_string())],
        });
    }
    rows
}

/// The drop scenario: low for 2 minutes (5, 6), normal, low for 5 minutes (10..=14, minute 13
/// without any order), normal again.
fn scenario() -> Vec<Row> {
    let mut counts = vec![150u64; 20];
    for m in [5, 6, 10, 11, 12, 14] {
        counts[m] = 40;
    }
    counts[13] = 0;
    arrival(&traffic(&counts, "checkout"), 7, 2_000)
}

/// A streaming pipeline with its alert stage, and the alerts produced so far with the watermark
/// after the call that produced them.
struct Rule {
    p: StreamingPipeline,
    rule: AlertRule,
    alerts: Vec<(Option<i64>, RecordBatch)>,
}

impl Rule {
    async fn new(file: &Path, source: &str) -> Rule {
        let checked = aiops_sql::check(file, source).await.unwrap();
        let cfg = checked.settings.runtime_config(RuntimeConfig::default());
        let p = StreamingPipeline::compile(file, source, &[], cfg)
            .await
            .unwrap();
        let rule = AlertRule::new(p.name(), checked.settings, &p.output_schema());
        Rule {
            p,
            rule,
            alerts: Vec::new(),
        }
    }

    async fn shipped() -> Rule {
        let source = std::fs::read_to_string(alert_file()).unwrap();
        Rule::new(&alert_file(), &source).await
    }

    async fn feed(&mut self, part: &str, tmax: i64, batch: RecordBatch) {
        let out = self.p.process(part, tmax, batch).await.unwrap();
        let size = self.p.window().size_ms();
        let wm = self.p.status().watermark_ms;
        for e in out.iter().filter(|e| e.kind == EmissionKind::Output) {
            if let Some(a) = self
                .rule
                .on_emission(e.window_start_ms, size, &e.batch)
                .unwrap()
            {
                self.alerts.push((wm, a));
            }
        }
        if let Some(w) = wm
            && let Some(a) = self.rule.on_watermark(w).unwrap()
        {
            self.alerts.push((wm, a));
        }
    }

    async fn feed_all(&mut self, bs: &[(String, i64, RecordBatch)]) {
        for (part, tmax, b) in bs {
            self.feed(part, *tmax, b.clone()).await;
        }
    }
}

/// One produced alert, decoded.
#[derive(Debug, Clone, PartialEq)]
struct Alert {
    wm: Option<i64>,
    time: i64,
    fingerprint: String,
    status: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: i64,
    ends_at: Option<i64>,
    source: String,
}

fn map_at(m: &MapArray, i: usize) -> BTreeMap<String, String> {
    let e = m.value(i);
    let k = e.column(0).as_string::<i32>();
    let v = e.column(1).as_string::<i32>();
    (0..e.len())
        .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
        .collect()
}

fn decode(alerts: &[(Option<i64>, RecordBatch)]) -> Vec<Alert> {
    let mut out = Vec::new();
    for (wm, b) in alerts {
        assert_eq!(
            b.schema(),
            aiops_schemas::schema_for(aiops_schemas::Kind::Alerts)
        );
        let ts = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        };
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (time, starts, ends) = (ts("time"), ts("starts_at"), ts("ends_at"));
        let (fp, status, source) = (s("fingerprint"), s("status"), s("source"));
        let labels = b.column_by_name("labels").unwrap().as_map();
        let annotations = b.column_by_name("annotations").unwrap().as_map();
        for i in 0..b.num_rows() {
            out.push(Alert {
                wm: *wm,
                time: time.value(i),
                fingerprint: fp.value(i).to_string(),
                status: status.value(i).to_string(),
                labels: map_at(labels, i),
                annotations: map_at(annotations, i),
                starts_at: starts.value(i),
                ends_at: ends.is_valid(i).then(|| ends.value(i)),
                source: source.value(i).to_string(),
            });
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn the_shipped_rule_fires_after_three_low_minutes_and_resolves_once() {
    let rows = scenario();
    // Small batches, so the watermark moves in small steps and the call that closed each
    // window can be told.
    let bs = batches("events", &rows, &[7], 1);
    let mut r = Rule::shipped().await;
    r.feed_all(&bs).await;
    let got = decode(&r.alerts);
    assert_eq!(got.len(), 2, "{got:#?}");
    let expected_labels = labels(&[
        ("alertname", "OrdersPerMinuteLow"),
        ("severity", "critical"),
    ]);
    let fp = fingerprint(&expected_labels);

    // Minutes 5 and 6 were low too, but two windows are not three: nothing came of them. The
    // alert fires when the third low window (minute 12) closes, starting at the first (10).
    let firing = &got[0];
    assert_eq!(firing.status, "firing");
    assert_eq!(firing.labels, expected_labels);
    assert_eq!(firing.fingerprint, fp);
    assert_eq!(firing.starts_at, T0 + 10 * MIN);
    assert_eq!(firing.time, firing.starts_at);
    assert_eq!(firing.ends_at, None);
    assert_eq!(firing.source, "aiops");
    assert_eq!(
        firing.annotations,
        labels(&[
            ("orders", "40"),
            (
                "summary",
                "only 40 orders in the minute (alert below 100 for 3 minutes)"
            )
        ])
    );
    let wm = firing.wm.unwrap();
    assert!(
        (T0 + 13 * MIN..T0 + 14 * MIN).contains(&wm),
        "fired at {wm}"
    );

    // Minute 13 had no order but an event, so it held (orders = 0) and the alert stayed; the
    // first normal minute (15) resolves it once its window closed.
    let resolved = &got[1];
    assert_eq!(resolved.status, "resolved");
    assert_eq!(resolved.fingerprint, fp);
    assert_eq!(resolved.labels, expected_labels);
    assert_eq!(resolved.starts_at, T0 + 10 * MIN);
    assert_eq!(resolved.ends_at, Some(T0 + 15 * MIN));
    assert_eq!(resolved.time, T0 + 15 * MIN);
    assert_eq!(resolved.annotations["orders"], "40");
    let wm = resolved.wm.unwrap();
    assert!(
        (T0 + 16 * MIN..T0 + 17 * MIN).contains(&wm),
        "resolved at {wm}"
    );
    assert_eq!(r.rule.active_groups(), 0);
}

#[tokio::test]
async fn alerts_do_not_depend_on_batching() {
    let rows = scenario();
    let mut reference: Option<Vec<Alert>> = None;
    for sizes in [vec![1usize], vec![7], vec![64, 3], vec![1024], vec![8192]] {
        let bs = batches("events", &rows, &sizes, 1);
        let mut r = Rule::shipped().await;
        r.feed_all(&bs).await;
        let got: Vec<Alert> = decode(&r.alerts)
            .into_iter()
            .map(|a| Alert { wm: None, ..a })
            .collect();
        assert_eq!(got.len(), 2, "{sizes:?}");
        match &reference {
            None => reference = Some(got),
            Some(x) => assert_eq!(&got, x, "{sizes:?}"),
        }
    }
}

#[tokio::test]
async fn a_restored_checkpoint_mid_streak_continues_like_an_uninterrupted_run() {
    let rows = scenario();
    let bs = batches("events", &rows, &[50], 1);
    let mut whole = Rule::shipped().await;
    whole.feed_all(&bs).await;
    let expected = whole.alerts.clone();
    assert_eq!(expected.len(), 2);
    let mut mid_streak = 0;
    for cut in 1..bs.len() {
        let mut first = Rule::shipped().await;
        first.feed_all(&bs[..cut]).await;
        if first.rule.active_groups() > 0 && first.rule.firing_groups() == 0 {
            mid_streak += 1;
        }
        let p_bytes = first.p.checkpoint().unwrap();
        let r_bytes = first.rule.checkpoint();
        let mut second = Rule::shipped().await;
        second.p.restore(&p_bytes).unwrap();
        second.rule.restore(&r_bytes).unwrap();
        second.alerts = first.alerts;
        second.feed_all(&bs[cut..]).await;
        assert!(second.alerts == expected, "cut at {cut}");
        assert_eq!(second.rule.checkpoint(), whole.rule.checkpoint());
    }
    assert!(mid_streak >= 2, "no cut fell inside a pending streak");
}

#[tokio::test]
async fn a_checkpoint_that_is_not_this_rules_is_refused() {
    let mut r = Rule::shipped().await;
    let bs = batches("events", &scenario(), &[200], 1);
    r.feed_all(&bs[..bs.len() / 2]).await;
    let before = r.rule.checkpoint();
    let e = r.rule.restore(b"not json").unwrap_err().to_string();
    assert!(e.contains("checkpoint"), "{e}");
    let mut other = AlertRule::new(
        "other_rule",
        aiops_sql::PipelineSettings::default(),
        &r.p.output_schema(),
    );
    let e = other.restore(&before).unwrap_err().to_string();
    assert!(e.contains("written by alert rule orders_drop_alert"), "{e}");
    assert_eq!(r.rule.checkpoint(), before);
}

#[tokio::test]
async fn revisions_and_repeated_emissions_do_not_count_twice() {
    // Low from minute 10 on; late orders for minute 11 arrive after its window closed (a
    // revision, still low), and later for minute 13 once the alert fires.
    let mut counts = vec![150u64; 18];
    for c in &mut counts[10..] {
        *c = 40;
    }
    let rows = arrival(&traffic(&counts, "checkout"), 1, 1_000);
    let late = |minute: i64| -> RecordBatch {
        let rows: Vec<Row> = (0..5)
            .map(|i| Row::Event {
                t: T0 + minute * MIN + 30_000 + i,
                kind: "order",
                labels: vec![("service", "checkout".to_string())],
            })
            .collect();
        to_batch("events", &rows)
    };
    let cut1 = rows
        .iter()
        .position(|r| r.time() >= T0 + 12 * MIN + 20_000)
        .unwrap();
    let cut2 = rows
        .iter()
        .position(|r| r.time() >= T0 + 14 * MIN + 20_000)
        .unwrap();
    let mut r = Rule::shipped().await;
    r.feed_all(&batches("events", &rows[..cut1], &[40], 1))
        .await;
    let revisions = r.p.status().counters.revisions;
    r.feed("events.0", T0 + 11 * MIN + 30_004, late(11)).await;
    assert_eq!(
        r.p.status().counters.revisions,
        revisions + 1,
        "no revision"
    );
    assert!(
        r.alerts.is_empty(),
        "fired on a revision: {:#?}",
        decode(&r.alerts)
    );
    r.feed_all(&batches("events", &rows[cut1..cut2], &[40], 1))
        .await;
    r.feed("events.0", T0 + 13 * MIN + 30_004, late(13)).await;
    r.feed_all(&batches("events", &rows[cut2..], &[40], 1))
        .await;
    assert!(r.p.status().counters.revisions >= revisions + 2);
    let got = decode(&r.alerts);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].status, "firing");
    assert_eq!(got[0].starts_at, T0 + 10 * MIN);
    let wm = got[0].wm.unwrap();
    assert!(wm >= T0 + 13 * MIN, "fired early, at {wm}");

    // The same window delivered twice (e.g. replayed after a restart without the stage's
    // checkpoint being newer) changes nothing.
    let mut fresh = Rule::shipped().await;
    let mut outs = Vec::new();
    for (part, tmax, b) in batches("events", &rows, &[40], 1) {
        outs.extend(fresh.p.process(&part, tmax, b).await.unwrap());
    }
    let size = fresh.p.window().size_ms();
    let mut fired = 0;
    for e in &outs {
        for _ in 0..2 {
            if let Some(b) = fresh
                .rule
                .on_emission(e.window_start_ms, size, &e.batch)
                .unwrap()
            {
                fired += b.num_rows();
            }
        }
    }
    assert_eq!(fired, 1);
}

#[tokio::test]
async fn a_late_revision_of_a_window_that_fired_does_not_fire_again() {
    // Fires in the first low window; the lateness is long enough for rows of that window to
    // arrive after the alert resolved.
    let source = "\
-- @lateness: 5m
INSERT INTO alerts
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  count(*) FILTER (WHERE type = 'order') AS orders
FROM events
GROUP BY tumble(time, INTERVAL '1 minute')
HAVING count(*) FILTER (WHERE type = 'order') < 100;
";
    let mut counts = vec![150u64; 16];
    counts[10] = 40;
    let rows = arrival(&traffic(&counts, "checkout"), 5, 1_000);
    let cut = rows
        .iter()
        .position(|r| r.time() >= T0 + 12 * MIN + 30_000)
        .unwrap();
    let mut r = Rule::new(Path::new("orders_low_now.sql"), source).await;
    r.feed_all(&batches("events", &rows[..cut], &[40], 1)).await;
    let got = decode(&r.alerts);
    assert_eq!(
        got.iter().map(|a| a.status.as_str()).collect::<Vec<_>>(),
        ["firing", "resolved"]
    );
    assert_eq!(got[1].ends_at, Some(T0 + 11 * MIN));
    let late: Vec<Row> = (0..5)
        .map(|i| Row::Event {
            t: T0 + 10 * MIN + 40_000 + i,
            kind: "order",
            labels: vec![("service", "checkout".to_string())],
        })
        .collect();
    let revisions = r.p.status().counters.revisions;
    r.feed(
        "events.0",
        T0 + 10 * MIN + 40_004,
        to_batch("events", &late),
    )
    .await;
    assert_eq!(
        r.p.status().counters.revisions,
        revisions + 1,
        "no revision"
    );
    r.feed_all(&batches("events", &rows[cut..], &[40], 1)).await;
    assert_eq!(decode(&r.alerts).len(), 2, "{:#?}", decode(&r.alerts));
}

#[tokio::test]
async fn each_group_is_an_alert_labelled_by_its_string_columns() {
    let source = "\
-- Orders per service: held for two minutes.
-- @for: 2m
-- @summary: {{service}} took {{orders}} orders
INSERT INTO alerts
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['service'] AS service,
  count(*) AS orders
FROM events
WHERE type = 'order'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['service']
HAVING count(*) < 20;
";
    let file = Path::new("service_orders_low.sql");
    let checked = aiops_sql::check(file, source).await.unwrap();
    assert_eq!(
        checked.settings.hold_for,
        Some(HoldFor::Duration { ms: 120_000 })
    );
    assert_eq!(checked.settings.windows_for(60_000), 2);
    let mut checkout = vec![50u64; 8];
    let mut cart = vec![50u64; 8];
    checkout[2..5].fill(10);
    cart[3] = 10; // one window only: pending, then dropped
    let mut rows = traffic(&checkout, "checkout");
    rows.extend(traffic(&cart, "cart"));
    let rows = arrival(&rows, 3, 1_000);
    let mut r = Rule::new(file, source).await;
    r.feed_all(&batches("events", &rows, &[100], 1)).await;
    let got = decode(&r.alerts);
    assert_eq!(got.len(), 2, "{got:#?}");
    let l = labels(&[("alertname", "service_orders_low"), ("service", "checkout")]);
    assert!(
        got.iter()
            .all(|a| a.labels == l && a.fingerprint == fingerprint(&l))
    );
    assert_eq!(got[0].status, "firing");
    assert_eq!(got[0].starts_at, T0 + 2 * MIN);
    assert_eq!(got[0].annotations["summary"], "checkout took 10 orders");
    assert_eq!(got[1].status, "resolved");
    assert_eq!(got[1].ends_at, Some(T0 + 5 * MIN));
}

#[test]
fn fingerprints_are_stable_and_independent_of_insertion_order() {
    let a = labels(&[("alertname", "X"), ("service", "api")]);
    let mut b = BTreeMap::new();
    b.insert("service".to_string(), "api".to_string());
    b.insert("alertname".to_string(), "X".to_string());
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_eq!(fingerprint(&a).len(), 16);
    assert_ne!(fingerprint(&a), fingerprint(&labels(&[("alertname", "X")])));
    assert_ne!(
        fingerprint(&labels(&[("a", "bc")])),
        fingerprint(&labels(&[("ab", "c")]))
    );
}

#[tokio::test]
async fn settings_are_parsed_and_refused_with_positions() {
    let checked = aiops_sql::check_file(&alert_file()).await.unwrap();
    assert_eq!(checked.output, "alerts");
    assert_eq!(checked.settings.hold_for, Some(HoldFor::Windows(3)));
    assert_eq!(checked.settings.severity.as_deref(), Some("critical"));
    assert_eq!(checked.settings.position("for"), Some((7, 10)));

    let body = "INSERT INTO alerts\nSELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n\nFROM events\nGROUP BY tumble(time, INTERVAL '1 minute')\nHAVING count(*) < 10;\n";
    let with = |header: &str| format!("{header}{body}");
    let file = Path::new("rule.sql");
    let cases: [(&str, (u64, u64), &str); 8] = [
        ("-- @fro: 3\n", (1, 4), "unknown setting @fro"),
        ("-- x\n-- @for: -1\n", (2, 10), "not a duration"),
        ("-- @for: 0\n", (1, 10), "1 or more"),
        (
            "-- @for: 150s\n",
            (1, 10),
            "not a multiple of the window (1m)",
        ),
        ("-- @lateness: 2\n", (1, 15), "needs a unit"),
        ("-- @severity: two words\n", (1, 15), "one word"),
        (
            "-- @summary: {{n}} {{m}}\n",
            (1, 20),
            "{{m}} names no column",
        ),
        ("-- @delay: 1s\n-- @delay: 2s\n", (2, 4), "set twice"),
    ];
    for (header, (line, column), text) in cases {
        let e = aiops_sql::check(file, &with(header)).await.unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{header:?}: {e}");
        assert!(e.message.contains(text), "{header:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("rule.sql:{line}:{column}: "))
        );
    }
    let derived = body.replace("INTO alerts", "INTO orders_low");
    let e = aiops_sql::check(file, &format!("-- @severity: page\n{derived}"))
        .await
        .unwrap_err();
    assert_eq!((e.line, e.column), (1, 15));
    assert!(e.message.contains("alert rules only"), "{e}");

    // Event-time settings apply to any pipeline and give its runtime configuration.
    let ok = aiops_sql::check(
        file,
        &format!("-- @delay: 10s\n-- @lateness: 2m\n{derived}"),
    )
    .await
    .unwrap();
    let cfg = ok.settings.runtime_config(RuntimeConfig::default());
    assert_eq!(cfg.watermark.delay_ms, 10_000);
    assert_eq!(cfg.allowed_lateness_ms, 120_000);
    assert_eq!(ok.settings.windows_for(60_000), 1);
}

#[tokio::test]
async fn delay_and_lateness_settings_override_the_engine_defaults() {
    let sql = "-- @delay: 10s\n-- @lateness: 2m\nINSERT INTO orders_1m SELECT tumble(time, INTERVAL '1 minute') AS w, count(*) AS n FROM events GROUP BY tumble(time, INTERVAL '1 minute')";
    let p = StreamingPipeline::compile(Path::new("o.sql"), sql, &[], RuntimeConfig::default())
        .await
        .unwrap();
    assert_eq!(p.runtime_config().watermark.delay_ms, 10_000);
    assert_eq!(p.runtime_config().allowed_lateness_ms, 120_000);
    assert_eq!(
        p.runtime_config().watermark.idle_timeout_ms,
        RuntimeConfig::default().watermark.idle_timeout_ms
    );
    let plain = "INSERT INTO orders_1m SELECT tumble(time, INTERVAL '1 minute') AS w, count(*) AS n FROM events GROUP BY tumble(time, INTERVAL '1 minute')";
    let q = StreamingPipeline::compile(Path::new("o.sql"), plain, &[], RuntimeConfig::default())
        .await
        .unwrap();
    assert_eq!(q.runtime_config(), RuntimeConfig::default());
}

#[tokio::test]
async fn partitions_setting_is_checked_against_what_can_be_split() {
    let file = Path::new("p.sql");
    let agg = "INSERT INTO orders_1m\nSELECT tumble(time, INTERVAL '1 minute') AS w, labels['shop'] AS shop, count(*) AS n\nFROM events\nGROUP BY tumble(time, INTERVAL '1 minute'), labels['shop'];\n";
    let ok = aiops_sql::check(file, &format!("-- @partitions: 3\n{agg}"))
        .await
        .unwrap();
    assert_eq!(ok.settings.partition_units(), 3);
    let plain = aiops_sql::check(file, agg).await.unwrap();
    assert_eq!(plain.settings.partition_units(), 1);
    let hop = agg.replace(
        "tumble(time, INTERVAL '1 minute')",
        "hop(time, INTERVAL '1 minute', INTERVAL '5 minutes')",
    );
    assert!(
        aiops_sql::check(file, &format!("-- @partitions: 2\n{hop}"))
            .await
            .is_ok()
    );
    let rule = "INSERT INTO alerts\nSELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n\nFROM events\nGROUP BY tumble(time, INTERVAL '1 minute')\nHAVING count(*) < 10;\n";
    let session = agg.replace(
        "tumble(time, INTERVAL '1 minute')",
        "session(time, INTERVAL '5 minutes')",
    );
    let derived = "INSERT INTO orders_5m\nSELECT tumble(w, INTERVAL '5 minutes') AS w5, sum(n) AS n\nFROM orders_1m\nGROUP BY tumble(w, INTERVAL '5 minutes');\n";
    let cases: [(String, &str); 5] = [
        (format!("-- @partitions: 0\n{agg}"), "from 1 to 64"),
        (format!("-- @partitions: lots\n{agg}"), "from 1 to 64"),
        (
            format!("-- @partitions: 3\n{rule}"),
            "alert rule runs as one unit",
        ),
        (format!("-- @partitions: 3\n{session}"), "session windows"),
        (
            format!("-- @partitions: 3\n{derived}"),
            "another pipeline's output",
        ),
    ];
    for (sql, text) in cases {
        let e = if text == "another pipeline's output" {
            // The upstream stream must be known for the query to plan at all.
            let up = StreamingPipeline::compile(file, agg, &[], RuntimeConfig::default())
                .await
                .unwrap();
            let Err(e) = StreamingPipeline::compile_with_streams(
                file,
                &sql,
                &[],
                &[("orders_1m".to_string(), up.output_schema())],
                RuntimeConfig::default(),
            )
            .await
            else {
                panic!("{sql}: a partitioned pipeline over a derived stream was accepted");
            };
            e
        } else {
            let Err(e) = aiops_sql::check(file, &sql).await else {
                panic!("{sql}: accepted");
            };
            e
        };
        assert_eq!(e.line, 1, "{sql}: {e}");
        assert!(e.message.contains(text), "{sql}: {e}");
    }
}
