//! `anomaly()` and `time_until()` in pipeline SQL: the detector stage after the streaming
//! runtime scores exactly what a detector fed the batch query's values gives (differential), one
//! anomaly event per episode, checkpoints anywhere resume bit for bit, and forecasts of a ramp
//! reach the threshold when the ramp does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_detect::{Detector, DetectorConfig};
use aiops_sql::detect::DetectStage;
use aiops_sql::runtime::{EmissionKind, RuntimeConfig, StreamingPipeline};
use common::*;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType};
use std::collections::BTreeMap;
use std::path::Path;

const T0: i64 = 28_333_334 * 60_000;
const MIN: i64 = 60_000;

const SCORED: &str = "INSERT INTO load_scored
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['instance'] AS host,
       avg(value) AS load, anomaly(avg(value), 'robust_z', 0.9) AS score
FROM metrics WHERE name = 'node_load1'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";

const ETA: &str = "INSERT INTO disk_eta
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['instance'] AS host,
       min(value) AS avail, time_until(min(value), 0) AS seconds_to_full
FROM metrics WHERE name = 'node_filesystem_avail_bytes'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";

/// Load samples every 15 s for three hosts over `minutes`; web-2 jumps ×6 for 3 minutes at
/// `spike`.
fn load(minutes: i64, spike: i64, seed: u64) -> Vec<Row> {
    let mut rng = Rng(seed);
    let mut rows = Vec::new();
    for m in 0..minutes {
        for (h, host) in ["web-1", "web-2", "db-1"].iter().enumerate() {
            for k in 0..4 {
                let base = 2.0 + h as f64;
                let mut v = base + (rng.below(1000) as f64 / 1000.0 - 0.5) * 0.2;
                if *host == "web-2" && (spike..spike + 3).contains(&m) {
                    v = base * 6.0;
                }
                rows.push(Row::Metric {
                    t: T0 + m * MIN + k * 15_000 + rng.below(500) as i64,
                    name: "node_load1",
                    labels: vec![("instance", host.to_string())],
                    value: v,
                });
            }
        }
    }
    rows
}

async fn pipeline(source: &str) -> StreamingPipeline {
    StreamingPipeline::compile(
        Path::new("scored.sql"),
        source,
        &[],
        RuntimeConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `batches` through the pipeline and its stage; returns the output batches and events.
async fn run_staged(
    p: &mut StreamingPipeline,
    stage: &mut DetectStage,
    batches: &[(String, i64, RecordBatch)],
) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
    let mut outs = Vec::new();
    let mut events = Vec::new();
    let mut take = |em: Vec<aiops_sql::Emission>, stage: &mut DetectStage| {
        for e in em.into_iter().filter(|e| e.kind == EmissionKind::Output) {
            let d = stage.on_emission(e.window_start_ms, &e.batch).unwrap();
            outs.push(d.batch);
            events.extend(d.events);
        }
    };
    for (part, tmax, b) in batches {
        let em = p.process(part, *tmax, b.clone()).await.unwrap();
        take(em, stage);
    }
    let em = p.finish().await.unwrap();
    take(em, stage);
    (outs, events)
}

fn stage_of(p: &StreamingPipeline) -> DetectStage {
    DetectStage::new(p.name(), p.detect_specs(), &p.output_schema()).unwrap()
}

/// (window start, host) → column value, for every output row.
fn by_group(batches: &[RecordBatch], col: &str) -> BTreeMap<(i64, String), Option<f64>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let ws = b
            .column_by_name("window_start")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let host = b.column_by_name("host").unwrap().as_string::<i32>();
        let v = b.column_by_name(col).unwrap().as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.insert(
                (ws.value(i), host.value(i).to_string()),
                v.is_valid(i).then(|| v.value(i)),
            );
        }
    }
    out
}

#[tokio::test]
async fn the_stage_scores_what_a_detector_fed_the_batch_values_gives() {
    let rows = load(120, 90, 3);
    let arrived = arrival(&rows, 5, 2_000);
    let batches = batches("metrics", &arrived, &[97, 13, 256], 2);
    let mut p = pipeline(SCORED).await;
    let mut stage = stage_of(&p);
    let (outs, _) = run_staged(&mut p, &mut stage, &batches).await;
    let streamed = by_group(&outs, "score");

    // The same SELECT in batch: anomaly() is the identity there, so `score` holds the values.
    let file = std::env::temp_dir().join(format!("scored-{}.sql", std::process::id()));
    std::fs::write(&file, SCORED).unwrap();
    let batch = batch_result(&file, "metrics", &rows).await;
    let values = by_group(&batch, "score");
    assert_eq!(values.len(), streamed.len());
    let mut expected = BTreeMap::new();
    let mut detectors: BTreeMap<String, _> = BTreeMap::new();
    for ((ws, host), v) in &values {
        let d = detectors.entry(host.clone()).or_insert_with(|| {
            DetectorConfig::by_name("robust_z")
                .unwrap()
                .build()
                .unwrap()
        });
        let verdict = d.observe(*ws, v.unwrap());
        expected.insert(
            (*ws, host.clone()),
            (!verdict.warming_up).then_some(verdict.score),
        );
    }
    assert_eq!(streamed, expected);
    assert!(streamed.values().any(Option::is_some), "all warming up");
}

/// An anomaly event: labels, attributes, time.
type AnomalyRow = (BTreeMap<String, String>, BTreeMap<String, String>, i64);

/// (labels, attributes, time) of anomaly events.
fn anomaly_events(events: &[RecordBatch]) -> Vec<AnomalyRow> {
    let map = |b: &RecordBatch, col: &str, i: usize| -> BTreeMap<String, String> {
        let m = b.column_by_name(col).unwrap().as_map();
        let e = m.value(i);
        let k = e.column(0).as_string::<i32>();
        let v = e.column(1).as_string::<i32>();
        (0..e.len())
            .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
            .collect()
    };
    let mut out = Vec::new();
    for b in events {
        let t = b
            .column_by_name("time")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let ty = b.column_by_name("type").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(ty.value(i), "anomaly");
            out.push((map(b, "labels", i), map(b, "attributes", i), t.value(i)));
        }
    }
    out
}

#[tokio::test]
async fn a_spike_is_one_anomaly_event_of_its_series_and_nothing_else() {
    let rows = load(150, 100, 9);
    let batches = batches("metrics", &arrival(&rows, 2, 2_000), &[200], 1);
    let mut p = pipeline(SCORED).await;
    let mut stage = stage_of(&p);
    let (_, events) = run_staged(&mut p, &mut stage, &batches).await;
    let evs = anomaly_events(&events);
    assert_eq!(evs.len(), 1, "one episode, one event: {evs:?}");
    let (labels, attrs, t) = &evs[0];
    assert_eq!(labels["host"], "web-2");
    assert_eq!(labels["series"], "score");
    assert_eq!(labels["detector"], "robust_z");
    assert_eq!(labels["pipeline"], "scored");
    assert_eq!(*t, T0 + 100 * MIN);
    assert_eq!(attrs["direction"], "up");
    let value: f64 = attrs["value"].parse().unwrap();
    let upper: f64 = attrs["upper"].parse().unwrap();
    assert!(value > upper && value > 15.0, "{attrs:?}");
    assert!(attrs["score"].parse::<f64>().unwrap() >= 0.9);
}

/// A label value that would break markup, a JSON string or a `k=v` list if pasted raw.
const HOSTILE: &str = "web-2\"}, <script>alert(1)</script>='";

/// One point per `step_ms` for `points` steps of a daily wave around 100 with noise on two hosts,
/// the hostile one jumping to 1,000 at point `spike`.
fn wave(points: i64, step_ms: i64, spike: i64, seed: u64) -> Vec<Row> {
    let mut rng = Rng(seed);
    let mut rows = Vec::new();
    for k in 0..points {
        let t = T0 + k * step_ms;
        let phase = (t % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
        for host in ["web-1", HOSTILE] {
            let mut v = 100.0 + 20.0 * phase.sin() + (rng.below(1000) as f64 / 1000.0 - 0.5) * 4.0;
            if host == HOSTILE && k == spike {
                v = 1_000.0;
            }
            rows.push(Row::Metric {
                t: t + rng.below(500) as i64,
                name: "node_load1",
                labels: vec![("instance", host.to_string())],
                value: v,
            });
        }
    }
    rows
}

/// The SELECT of [`SCORED`] with another detector, threshold and window.
fn scored_with(detector: &str, threshold: f64, window: &str) -> String {
    format!(
        "INSERT INTO load_scored
SELECT tumble(time, INTERVAL '{window}') AS window_start, labels['instance'] AS host,
       avg(value) AS load, anomaly(avg(value), '{detector}', {threshold}) AS score
FROM metrics WHERE name = 'node_load1'
GROUP BY tumble(time, INTERVAL '{window}'), labels['instance'];
"
    )
}

/// What every explained anomaly event holds, whichever detector wrote it.
fn assert_explained(attrs: &BTreeMap<String, String>, min_watched_ms: i64) {
    let signal = &attrs["signal"];
    assert!(
        [
            "value",
            "seasonal",
            "persistence",
            "drift",
            "change",
            "context",
            "range"
        ]
        .contains(&signal.as_str()),
        "an obvious spike names what fired: {attrs:?}"
    );
    let watched: i64 = attrs["watched_ms"].parse().unwrap();
    assert!(watched >= min_watched_ms, "{attrs:?}");
    let confidence: f64 = attrs["confidence"].parse().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{attrs:?}");
    let period: i64 = attrs["period_ms"].parse().unwrap();
    assert!(period >= 0);
    let explanation = &attrs["explanation"];
    assert!(
        explanation.starts_with("value 1000 is above the expected "),
        "{explanation}"
    );
    assert!(explanation.contains(&attrs["context"]), "{attrs:?}");
    assert!(explanation.contains("; watched "), "{explanation}");
    assert!(!attrs["context"].is_empty());
}

#[tokio::test]
async fn an_anomaly_event_explains_itself_and_carries_a_hostile_label_as_data() {
    // 1-minute points for 3 hours, the spike at 2 h 30 min.
    let rows = wave(180, MIN, 150, 5);
    let batches = batches("metrics", &arrival(&rows, 3, 2_000), &[64], 1);
    let mut p = pipeline(&scored_with("robust_z", 0.9, "1 minute")).await;
    let mut stage = stage_of(&p);
    let (_, events) = run_staged(&mut p, &mut stage, &batches).await;
    let evs = anomaly_events(&events);
    let spikes: Vec<&AnomalyRow> = evs.iter().filter(|e| e.2 == T0 + 150 * MIN).collect();
    assert_eq!(spikes.len(), 1, "{evs:?}");
    let (labels, attrs, _) = spikes[0];
    assert_eq!(labels["host"], HOSTILE, "the label value is kept as it was");
    // robust_z reports neither the signal nor the time watched: the stage fills both in.
    assert_explained(attrs, 150 * MIN);
    assert_eq!(attrs["watched_ms"], (150 * MIN).to_string());
    assert!(
        attrs["explanation"].contains("watched 2 h 30 min"),
        "{attrs:?}"
    );
    assert!(
        !attrs["explanation"].contains("<script>"),
        "numbers, not labels"
    );
    let message = events
        .iter()
        .flat_map(|b| {
            let m = b.column_by_name("message").unwrap().as_string::<i32>();
            (0..b.num_rows())
                .map(|i| m.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .find(|m| m.contains(HOSTILE))
        .unwrap();
    assert!(message.ends_with(&attrs["explanation"]), "{message}");
}

#[tokio::test]
async fn the_ensemble_explains_its_anomaly_with_its_own_signal_confidence_and_time_watched() {
    // 5-minute points for 2.5 days (the ensemble judges after a day and a half), the spike at
    // 2 days 6 hours.
    let spike = (54 * 3_600_000) / (5 * MIN);
    let rows = wave(720, 5 * MIN, spike, 7);
    let batches = batches("metrics", &rows, &[97], 1);
    let mut p = pipeline(&scored_with("ensemble", 0.5, "5 minutes")).await;
    let mut stage = stage_of(&p);
    let (_, events) = run_staged(&mut p, &mut stage, &batches).await;
    let evs = anomaly_events(&events);
    // The 5-minute window that holds the spike (T0 is not on a 5-minute boundary).
    let at = T0 + spike * 5 * MIN;
    let spikes: Vec<&AnomalyRow> = evs
        .iter()
        .filter(|e| e.2 <= at && at < e.2 + 5 * MIN)
        .collect();
    assert_eq!(spikes.len(), 1, "{evs:?}");
    let (labels, attrs, _) = spikes[0];
    assert_eq!(labels["host"], HOSTILE);
    assert_explained(attrs, 36 * 3_600_000);
    assert!(
        attrs["confidence"].parse::<f64>().unwrap() > 0.0,
        "{attrs:?}"
    );
}

#[tokio::test]
async fn a_checkpoint_anywhere_resumes_bit_for_bit() {
    let rows = load(120, 80, 4);
    let batches = batches("metrics", &arrival(&rows, 8, 2_000), &[64, 301], 2);
    let mut p = pipeline(SCORED).await;
    let mut stage = stage_of(&p);
    let (want_out, want_ev) = run_staged(&mut p, &mut stage, &batches).await;
    for cut in [1, batches.len() / 3, batches.len() / 2, batches.len() - 1] {
        let mut p = pipeline(SCORED).await;
        let mut stage = stage_of(&p);
        let mut outs = Vec::new();
        let mut events = Vec::new();
        for (part, tmax, b) in &batches[..cut] {
            for e in p.process(part, *tmax, b.clone()).await.unwrap() {
                if e.kind == EmissionKind::Output {
                    let d = stage.on_emission(e.window_start_ms, &e.batch).unwrap();
                    outs.push(d.batch);
                    events.extend(d.events);
                }
            }
        }
        let (ps, ss) = (p.checkpoint().unwrap(), stage.checkpoint().unwrap());
        let mut p = pipeline(SCORED).await;
        p.restore(&ps).unwrap();
        let mut stage = stage_of(&p);
        stage.restore(&ss).unwrap();
        let (o, e) = run_staged(&mut p, &mut stage, &batches[cut..]).await;
        outs.extend(o);
        events.extend(e);
        assert_eq!(outs, want_out, "outputs, cut at {cut}");
        assert_eq!(events, want_ev, "events, cut at {cut}");
    }
    let other = DetectStage::new("other", p.detect_specs(), &p.output_schema()).unwrap();
    let mut other = other;
    assert!(other.restore(&stage.checkpoint().unwrap()).is_err());
}

#[tokio::test]
async fn time_until_forecasts_when_a_filling_disk_is_full() {
    // 100 GB free, losing 50 MB a minute: full 2,000 minutes after the start.
    let mut rows = Vec::new();
    for m in 0..600 {
        for k in 0..2 {
            rows.push(Row::Metric {
                t: T0 + m * MIN + k * 30_000,
                name: "node_filesystem_avail_bytes",
                labels: vec![("instance", "db-1".to_string())],
                value: 100e9 - 50e6 * (m as f64 + k as f64 / 2.0),
            });
            rows.push(Row::Metric {
                t: T0 + m * MIN + k * 30_000 + 1,
                name: "node_filesystem_avail_bytes",
                labels: vec![("instance", "web-1".to_string())],
                value: 40e9,
            });
        }
    }
    let batches = batches("metrics", &rows, &[500], 1);
    let mut p = pipeline(ETA).await;
    let mut stage = stage_of(&p);
    let (outs, _) = run_staged(&mut p, &mut stage, &batches).await;
    let eta = by_group(&outs, "seconds_to_full");
    let last = T0 + 599 * MIN;
    let db = eta[&(last, "db-1".to_string())].expect("a crossing is forecast");
    let want = (2000.0 - 599.0) * 60.0;
    assert!(
        (db - want).abs() < 0.05 * want,
        "forecast {db} s, the ramp reaches 0 in {want} s"
    );
    assert_eq!(
        eta[&(last, "web-1".to_string())],
        None,
        "a flat disk never fills"
    );
}

#[tokio::test]
async fn time_until_returns_the_crossing_time_its_third_argument_picks() {
    // A noisy disk filling at 50 MB a minute: the forecast band has a width, so its near edge
    // crosses 0 before the point forecast, and its far edge after.
    let mut rng = Rng(11);
    let mut rows = Vec::new();
    for m in 0..600 {
        rows.push(Row::Metric {
            t: T0 + m * MIN,
            name: "node_filesystem_avail_bytes",
            labels: vec![("instance", "db-1".to_string())],
            value: 100e9 - 50e6 * m as f64 + (rng.below(1000) as f64 - 500.0) * 2e6,
        });
    }
    let sql = "INSERT INTO disk_eta
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['instance'] AS host,
       time_until(min(value), 0) AS plain,
       time_until(min(value), 0, 'expected') AS expected,
       time_until(min(value), 0, 'earliest') AS earliest,
       time_until(min(value), 0, 'LATEST') AS latest
FROM metrics WHERE name = 'node_filesystem_avail_bytes'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";
    let batches = batches("metrics", &rows, &[100], 1);
    let mut p = pipeline(sql).await;
    let mut stage = stage_of(&p);
    let (outs, _) = run_staged(&mut p, &mut stage, &batches).await;
    let last = (T0 + 599 * MIN, "db-1".to_string());
    let col = |c: &str| by_group(&outs, c)[&last];
    let expected = col("expected").expect("a crossing is forecast");
    assert_eq!(col("plain"), Some(expected), "'expected' is the default");
    let earliest = col("earliest").expect("the near edge crosses first");
    assert!(earliest < expected, "{earliest} < {expected}");
    if let Some(latest) = col("latest") {
        assert!(latest > expected, "{latest} > {expected}");
    }
    let want = (2000.0 - 599.0) * 60.0;
    assert!((expected - want).abs() < 0.1 * want, "{expected} vs {want}");

    // Anything else is refused, naming the allowed values.
    for bad in ["'soon'", "1", "name"] {
        let sql = format!(
            "INSERT INTO s SELECT tumble(time, INTERVAL '1 minute') AS w,\n  time_until(avg(value), 0, {bad}) AS x\nFROM metrics GROUP BY tumble(time, INTERVAL '1 minute'), name;"
        );
        let e = aiops_sql::check(Path::new("p.sql"), &sql)
            .await
            .unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        for allowed in ["'expected'", "'earliest'", "'latest'"] {
            assert!(e.message.contains(allowed), "{e}");
        }
    }
}

#[tokio::test]
async fn misplaced_or_malformed_detector_calls_are_refused_with_their_position() {
    let cases = [
        (
            "INSERT INTO s SELECT tumble(time, INTERVAL '1 minute') AS w,\n  1 + anomaly(avg(value)) AS x\nFROM metrics GROUP BY tumble(time, INTERVAL '1 minute');",
            (2, 7),
            "whole SELECT column",
        ),
        (
            "INSERT INTO s SELECT tumble(time, INTERVAL '1 minute') AS w,\n  anomaly(avg(value), 'nope') AS x\nFROM metrics GROUP BY tumble(time, INTERVAL '1 minute');",
            (2, 3),
            "unknown detector",
        ),
        (
            "INSERT INTO s SELECT tumble(time, INTERVAL '1 minute') AS w,\n  time_until(avg(value), name) AS x\nFROM metrics GROUP BY tumble(time, INTERVAL '1 minute'), name;",
            (2, 3),
            "number literal",
        ),
    ];
    for (sql, (line, col), msg) in cases {
        let e = aiops_sql::check(Path::new("p.sql"), sql).await.unwrap_err();
        assert_eq!((e.line, e.column), (line, col), "{e}");
        assert!(e.message.contains(msg), "{e}");
    }
}
