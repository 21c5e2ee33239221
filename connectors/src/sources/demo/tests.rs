//! Tests of the demo generator: determinism, counter semantics, the scripted incidents, pacing
//! and termination. No network.

use super::incidents::{self, IncidentKind};
use super::*;
use crate::sources::{PullSource, SourceBatch};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, RecordBatch, StringArray};
use std::collections::HashMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

const START_MS: i64 = 1_714_521_600_000; // 2024-05-01T00:00:00Z

fn cfg(duration: Duration) -> DemoConfig {
    DemoConfig {
        speed: 0.0,
        start: Some(UNIX_EPOCH + Duration::from_millis(START_MS as u64)),
        duration: Some(duration),
        ..DemoConfig::default()
    }
}

fn all_ticks(cfg: &DemoConfig) -> Vec<Vec<SourceBatch>> {
    let mut src = DemoSource::new(cfg).unwrap();
    let mut out = Vec::new();
    while let Some(b) = src.next_tick().unwrap() {
        out.push(b);
    }
    out
}

fn of_kind(tick: &[SourceBatch], kind: Kind) -> Option<&RecordBatch> {
    tick.iter().find(|b| b.kind == kind).map(|b| &b.batch)
}

fn strings(batch: &RecordBatch, col: &str) -> Vec<String> {
    let a: &StringArray = batch.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

fn times(batch: &RecordBatch) -> Vec<i64> {
    let a = batch
        .column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    a.values().to_vec()
}

/// Each row's map column as sorted `k=v` pairs joined by commas.
fn maps(batch: &RecordBatch, col: &str) -> Vec<String> {
    let m = batch.column_by_name(col).unwrap().as_map();
    (0..m.len())
        .map(|i| {
            let entries = m.value(i);
            let k = entries.column(0).as_string::<i32>();
            let v = entries.column(1).as_string::<i32>();
            let mut pairs: Vec<String> = (0..k.len())
                .map(|j| format!("{}={}", k.value(j), v.value(j)))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .collect()
}

/// `(series key, value)` of every sample of a metrics batch.
fn samples(batch: &RecordBatch) -> Vec<(String, f64)> {
    let names = strings(batch, "name");
    let labels = maps(batch, "labels");
    let values = batch
        .column_by_name("value")
        .unwrap()
        .as_primitive::<aiops_schemas::arrow_array::types::Float64Type>();
    names
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (n, l))| (format!("{n}{{{l}}}"), values.value(i)))
        .collect()
}

fn is_counter(key: &str) -> bool {
    let name = key.split('{').next().unwrap_or("");
    name.ends_with("_total")
        || name.ends_with("_bucket")
        || name.ends_with("_count")
        || name.ends_with("_sum")
}

#[test]
fn same_seed_same_batches_different_seed_different() {
    let a = all_ticks(&cfg(Duration::from_secs(3600)));
    let b = all_ticks(&cfg(Duration::from_secs(3600)));
    assert_eq!(a.len(), 360);
    for (ta, tb) in a.iter().zip(&b) {
        assert_eq!(ta.len(), tb.len());
        for (x, y) in ta.iter().zip(tb) {
            assert_eq!(x.kind, y.kind);
            assert_eq!(x.batch, y.batch);
            assert_eq!(x.time_range, y.time_range);
        }
    }
    let mut other = cfg(Duration::from_secs(3600));
    other.seed = 2;
    let c = all_ticks(&other);
    assert_ne!(
        of_kind(&a[0], Kind::Metrics),
        of_kind(&c[0], Kind::Metrics),
        "a different seed must give different data"
    );
}

#[test]
fn one_batch_per_kind_per_tick_at_tick_time() {
    let ticks = all_ticks(&cfg(Duration::from_secs(600)));
    for (k, tick) in ticks.iter().enumerate() {
        let t = START_MS + k as i64 * 10_000;
        let mut kinds: Vec<Kind> = tick.iter().map(|b| b.kind).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), tick.len(), "one batch per kind");
        assert!(
            tick.iter().all(|b| b.batch.num_rows() > 0),
            "no empty batches"
        );
        assert!(tick.iter().all(|b| b.source == SOURCE_NAME));
        let m = of_kind(tick, Kind::Metrics).expect("metrics every tick");
        assert!(times(m).iter().all(|&x| x == t));
        assert_eq!(tick[0].time_range, Some((t, t)));
        // 6 hosts × (CPU counters + 6 gauges/counters) + 4 services × 16 + orders.
        assert!(m.num_rows() > 6 * (8 + 6) + 4 * 16, "{}", m.num_rows());
        assert!(
            of_kind(tick, Kind::Logs).is_some(),
            "access logs every tick"
        );
    }
    let names: std::collections::HashSet<String> = ticks
        .iter()
        .flat_map(|t| strings(of_kind(t, Kind::Metrics).unwrap(), "name"))
        .collect();
    for expected in [
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_load1",
        "node_network_receive_bytes_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "orders_total",
    ] {
        assert!(names.contains(expected), "missing {expected}");
    }
}

#[test]
fn counters_never_decrease_except_at_the_scripted_restart() {
    // 2.5 hours: the first cycle's memory leak (and its restart) is inside.
    let ticks = all_ticks(&cfg(Duration::from_secs(9000)));
    let schedule = incidents::schedule(1, 0, START_MS, 6, 4);
    let leak = schedule
        .iter()
        .find(|i| matches!(i.kind, IncidentKind::MemoryLeak { .. }))
        .unwrap();
    let IncidentKind::MemoryLeak { host } = leak.kind else {
        unreachable!()
    };
    let host_label = format!("host=host-{}", host + 1);
    let restart_tick = ((leak.end_ms - START_MS) + 9_999) / 10_000;
    let mut last: HashMap<String, f64> = HashMap::new();
    let mut resets = 0;
    for (k, tick) in ticks.iter().enumerate() {
        for (key, v) in samples(of_kind(tick, Kind::Metrics).unwrap()) {
            if !is_counter(&key) {
                continue;
            }
            if let Some(&prev) = last.get(&key)
                && v < prev
            {
                assert_eq!(
                    k as i64, restart_tick,
                    "{key} fell from {prev} to {v} at tick {k}"
                );
                assert!(
                    key.contains(&host_label),
                    "{key} reset but is not on the leaking host"
                );
                resets += 1;
            }
            last.insert(key, v);
        }
    }
    assert!(
        resets > 0,
        "the scripted restart must reset the host's counters"
    );
    // The restart is announced as an event at that tick.
    let events = of_kind(&ticks[restart_tick as usize], Kind::Events).expect("restart event");
    assert!(strings(events, "type").contains(&"restart".to_string()));
}

#[test]
fn error_burst_follows_a_deploy_and_fires_an_alert() {
    let ticks = all_ticks(&cfg(Duration::from_secs(3600)));
    let burst = incidents::schedule(1, 0, START_MS, 6, 4)[0];
    let IncidentKind::ErrorBurst { service } = burst.kind else {
        panic!("first incident is the error burst")
    };
    let name = ["checkout", "payments", "search", "frontend"][service];
    let err_key = format!("http_requests_total{{method=GET,service={name},status=500}}");
    let ok_key = format!("http_requests_total{{method=GET,service={name},status=200}}");
    let mut prev: Option<(f64, f64)> = None;
    let mut first_high = None;
    let mut deploys = Vec::new();
    let mut alerts = Vec::new();
    let mut error_logs_in_burst = 0;
    for (k, tick) in ticks.iter().enumerate() {
        let t = START_MS + k as i64 * 10_000;
        let s: HashMap<String, f64> = samples(of_kind(tick, Kind::Metrics).unwrap())
            .into_iter()
            .collect();
        let (e, o) = (s[&err_key], s[&ok_key]);
        if let Some((pe, po)) = prev {
            let ratio = (e - pe) / ((e - pe) + (o - po)).max(1.0);
            if ratio > 0.05 && first_high.is_none() {
                first_high = Some(t);
            }
        }
        prev = Some((e, o));
        if let Some(ev) = of_kind(tick, Kind::Events) {
            for (kind, labels) in strings(ev, "type").into_iter().zip(maps(ev, "labels")) {
                if kind == "deploy" && labels.contains(&format!("service={name}")) {
                    deploys.push(t);
                }
            }
        }
        if let Some(al) = of_kind(tick, Kind::Alerts) {
            for (status, labels) in strings(al, "status").into_iter().zip(maps(al, "labels")) {
                if labels.contains("alertname=HighErrorRate") {
                    alerts.push((t, status));
                }
            }
        }
        if burst.active(t)
            && let Some(logs) = of_kind(tick, Kind::Logs)
        {
            error_logs_in_burst += strings(logs, "severity")
                .iter()
                .zip(maps(logs, "labels"))
                .filter(|(sev, l)| *sev == "error" && l.contains(&format!("service={name}")))
                .count();
        }
    }
    let first_high = first_high.expect("5xx ratio must rise during the burst");
    assert!(
        burst.active(first_high),
        "5xx rise at {first_high} outside the burst {burst:?}"
    );
    let deploy = deploys
        .iter()
        .copied()
        .filter(|&d| d <= first_high)
        .max()
        .expect("a deploy before the burst");
    assert!(
        first_high - deploy <= 10_000,
        "deploy at {deploy}, errors at {first_high}"
    );
    assert!(
        deploys.iter().any(|&d| d >= burst.end_ms),
        "rollback deploy at the end"
    );
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0].1, "firing");
    assert_eq!(alerts[1].1, "resolved");
    assert!(
        error_logs_in_burst > 100,
        "{error_logs_in_burst} error logs in the burst"
    );
}

#[test]
fn leak_and_disk_fill_show_in_their_gauges() {
    let ticks = all_ticks(&cfg(Duration::from_secs(7200)));
    let sched = incidents::schedule(1, 0, START_MS, 6, 4);
    let gauge = |name: &str, host: usize, t: i64| -> f64 {
        let k = ((t - START_MS) / 10_000) as usize;
        let key_part = format!("host=host-{}", host + 1);
        samples(of_kind(&ticks[k], Kind::Metrics).unwrap())
            .into_iter()
            .find(|(key, _)| key.starts_with(&format!("{name}{{")) && key.contains(&key_part))
            .unwrap()
            .1
    };
    for inc in &sched[1..] {
        let (name, host) = match inc.kind {
            IncidentKind::MemoryLeak { host } => ("node_memory_MemAvailable_bytes", host),
            IncidentKind::DiskFill { host } => ("node_filesystem_avail_bytes", host),
            IncidentKind::ErrorBurst { .. } => unreachable!(),
        };
        let before = gauge(name, host, inc.start_ms - 60_000);
        let late = gauge(name, host, inc.end_ms - 20_000);
        let after = gauge(name, host, inc.end_ms + 20_000);
        assert!(late < before * 0.1, "{name} {before} -> {late}");
        assert!(after > before * 0.5, "{name} recovers: {after} vs {before}");
    }
}

#[tokio::test]
async fn speed_zero_makes_a_day_quickly() {
    let mut src = cfg(Duration::from_secs(86_400)).build().unwrap();
    let t0 = Instant::now();
    let (mut ticks, mut rows) = (0u64, 0usize);
    while let Some(batches) = src.next_batch().await.unwrap() {
        ticks += 1;
        rows += batches.iter().map(|b| b.batch.num_rows()).sum::<usize>();
    }
    let took = t0.elapsed();
    assert_eq!(ticks, 8640);
    assert!(rows > 8640 * 150, "{rows}");
    assert!(took < Duration::from_secs(60), "a day took {took:?}");
}

#[tokio::test]
async fn duration_ends_the_source() {
    let mut src = cfg(Duration::from_secs(35)).build().unwrap();
    for _ in 0..4 {
        assert!(src.next_batch().await.unwrap().is_some());
    }
    assert!(src.next_batch().await.unwrap().is_none());
    assert!(src.next_batch().await.unwrap().is_none(), "stays ended");
}

#[tokio::test]
async fn speed_paces_ticks_against_the_wall_clock() {
    // 1 s of event time per tick at 50× = 20 ms per tick: 5 ticks cannot take less than 80 ms.
    let mut c = cfg(Duration::from_secs(5));
    c.interval = Duration::from_secs(1);
    c.speed = 50.0;
    let mut src = c.build().unwrap();
    let t0 = Instant::now();
    let mut n = 0;
    while src.next_batch().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 5);
    assert!(
        t0.elapsed() >= Duration::from_millis(80),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn config_defaults_and_errors() {
    let d: DemoConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(d, DemoConfig::default());
    assert_eq!(
        (d.hosts, d.services, d.interval, d.speed),
        (6, 4, Duration::from_secs(10), 1.0)
    );
    let c: DemoConfig = serde_json::from_str(
        r#"{"interval": "1m", "start": "2024-05-01T00:00:00Z", "duration": "1h", "seed": 9}"#,
    )
    .unwrap();
    assert_eq!(c.interval, Duration::from_secs(60));
    assert_eq!(
        c.start,
        Some(UNIX_EPOCH + Duration::from_millis(START_MS as u64))
    );
    assert!(serde_json::from_str::<DemoConfig>(r#"{"hostz": 3}"#).is_err());
    let bad = DemoConfig {
        hosts: 0,
        speed: -1.0,
        interval: Duration::ZERO,
        ..DemoConfig::default()
    };
    let Err(err) = bad.build() else {
        panic!("an invalid config must be refused")
    };
    let err = err.to_string();
    for field in ["hosts", "speed", "interval"] {
        assert!(err.contains(field), "{err} should name {field}");
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // compares with the wall clock on purpose
fn start_defaults_to_now() {
    let c = DemoConfig {
        speed: 0.0,
        ..DemoConfig::default()
    };
    let mut src = DemoSource::new(&c).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let tick = src.next_tick().unwrap().unwrap();
    let (t, _) = tick[0].time_range.unwrap();
    assert!((t - now).abs() < 5_000, "{t} vs {now}");
}

/// The wall clock as Unix ms (the tests compare the generator's event times with it).
#[allow(clippy::disallowed_methods)] // compares with the wall clock on purpose
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The distinct event times of a batch list's metric rows, sorted.
fn metric_times(batches: &[SourceBatch]) -> Vec<i64> {
    let mut t: Vec<i64> = batches
        .iter()
        .filter(|b| b.kind == Kind::Metrics)
        .flat_map(|b| times(&b.batch))
        .collect();
    t.sort_unstable();
    t.dedup();
    t
}

#[tokio::test]
async fn backfill_covers_the_window_at_once_then_goes_on_in_real_time() {
    let c = DemoConfig {
        interval: Duration::from_secs(1),
        backfill: Some(Duration::from_secs(120)),
        ..DemoConfig::default()
    };
    let before = wall_ms();
    let mut src = DemoSource::new(&c).unwrap();
    let after = wall_ms();
    let start = src.next_time_ms();
    assert!(
        (before - 120_000..=after - 120_000).contains(&start),
        "event time begins 2 min before now: {start} vs [{before}, {after}] - 120000"
    );

    // The backfill: every tick from start up to now, several per call, without waiting.
    let t0 = Instant::now();
    let mut history = Vec::new();
    let mut calls = 0;
    while src.catching_up() {
        let b = src.next_batch().await.unwrap().unwrap();
        let ticks = metric_times(&b).len();
        assert!(
            (1..=CATCH_UP_TICKS as usize).contains(&ticks),
            "{ticks} ticks in a call"
        );
        // One tick per batch, in time order: the log's messages stay in event-time order
        // whatever partition each lands in.
        let mut prev = i64::MIN;
        for sb in &b {
            let t = times(&sb.batch);
            assert!(t.iter().all(|&x| x == t[0]), "one tick per batch");
            assert_eq!(sb.time_range, Some((t[0], t[0])));
            assert!(t[0] >= prev, "batches in time order");
            prev = t[0];
        }
        history.extend(b);
        calls += 1;
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "backfill took {:?}",
        t0.elapsed()
    );
    let covered = metric_times(&history);
    assert_eq!(covered.first(), Some(&start));
    assert!(
        covered.windows(2).all(|w| w[1] - w[0] == 1_000),
        "one tick per interval, none missing"
    );
    let last = *covered.last().unwrap();
    assert!(
        last < after && last >= before - 1_000,
        "backfill ends at now: {last}"
    );
    assert!(covered.len() >= 119, "{} ticks of 2 min", covered.len());
    assert!(
        calls * 10 < covered.len(),
        "{calls} calls for {} ticks: ticks share a call while catching up",
        covered.len()
    );

    // Then real time: one tick per batch, each handed out when the wall clock reaches it.
    let mut prev = last;
    for _ in 0..3 {
        let b = src.next_batch().await.unwrap().unwrap();
        let now = wall_ms();
        let t = metric_times(&b);
        assert_eq!(t, vec![prev + 1_000], "the next tick, alone");
        assert!(
            now >= t[0] - 50,
            "tick {} handed out before its time ({now})",
            t[0]
        );
        assert!(now - t[0] < 1_500, "tick {} late: now {now}", t[0]);
        prev = t[0];
    }

    // The same fleet as a generator that started then: the history is the generator's data.
    let mut same = DemoSource::new(&DemoConfig {
        interval: Duration::from_secs(1),
        speed: 0.0,
        start: Some(UNIX_EPOCH + Duration::from_millis(start as u64)),
        ..DemoConfig::default()
    })
    .unwrap();
    let mut expect = Vec::new();
    for _ in 0..covered.len() {
        expect.extend(same.next_tick().unwrap().unwrap());
    }
    let rows = |bs: &[SourceBatch], kind: Kind| -> Vec<(String, f64)> {
        bs.iter()
            .filter(|b| b.kind == kind)
            .flat_map(|b| samples(&b.batch))
            .collect()
    };
    assert_eq!(rows(&history, Kind::Metrics), rows(&expect, Kind::Metrics));
}

#[tokio::test]
async fn a_three_hour_backfill_has_incidents_deploys_and_alerts_at_once() {
    let c = DemoConfig {
        backfill: Some(Duration::from_secs(3 * 3600)),
        ..DemoConfig::default()
    };
    let mut src = DemoSource::new(&c).unwrap();
    let t0 = Instant::now();
    let (mut alerts, mut events, mut max_rows) = (Vec::new(), Vec::new(), 0);
    let (mut ticks, mut max_call_rows) = (0, 0usize);
    while src.catching_up() {
        let b = src.next_batch().await.unwrap().unwrap();
        ticks += metric_times(&b).len();
        max_call_rows = max_call_rows.max(b.iter().map(|sb| sb.batch.num_rows()).sum());
        for sb in b {
            max_rows = max_rows.max(sb.batch.num_rows());
            match sb.kind {
                Kind::Alerts => alerts.extend(maps(&sb.batch, "labels")),
                Kind::Events => events.extend(strings(&sb.batch, "type")),
                _ => {}
            }
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert!(
        (1079..=1081).contains(&ticks),
        "{ticks} ticks of 10 s in 3 h"
    );
    assert!(max_rows <= 1_000, "a batch holds one tick: {max_rows} rows");
    assert!(
        max_call_rows <= CATCH_UP_ROWS,
        "calls stay bounded: {max_call_rows}"
    );
    for name in ["HighErrorRate", "HostMemoryLow", "DiskAlmostFull"] {
        let n = alerts
            .iter()
            .filter(|l| l.contains(&format!("alertname={name}")))
            .count();
        assert!(
            n >= 2,
            "{name} fired and resolved in the history: {alerts:?}"
        );
    }
    assert!(events.iter().any(|t| t == "deploy"), "{events:?}");
    assert!(events.iter().any(|t| t == "restart"), "{events:?}");
}

#[test]
fn backfill_needs_start_unset_and_a_sane_length() {
    let c: DemoConfig = serde_json::from_str(r#"{"backfill": "3h"}"#).unwrap();
    assert_eq!(c.backfill, Some(Duration::from_secs(3 * 3600)));
    c.validate().unwrap();
    let both = DemoConfig {
        start: Some(UNIX_EPOCH + Duration::from_millis(START_MS as u64)),
        ..c.clone()
    };
    let err = both.validate().unwrap_err().to_string();
    assert!(err.contains("backfill") && err.contains("start"), "{err}");
    let long = DemoConfig {
        backfill: Some(Duration::from_secs(400 * 86_400)),
        ..c
    };
    assert!(long.validate().unwrap_err().to_string().contains("30 days"));
}
