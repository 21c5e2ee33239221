//! The per-service template miner: window counts, new-template and surge anomalies after the
//! warm-up, late records, and checkpoints that resume bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_detect::templates::{AnomalyKind, MinerConfig, MinerOutput, TemplateMiner};

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_040_000; // a minute boundary

/// Ordinary traffic of a web service: a few access and cache lines per minute.
fn ordinary(minute: i64, i: u64) -> (i64, &'static str, String) {
    let t = T0 + minute * MIN + (i as i64 * 997) % MIN;
    match i % 3 {
        0 => (
            t,
            "info",
            format!("GET /api/orders/{} 200 in {} ms", 1000 + i, 3 + i % 40),
        ),
        1 => (
            t,
            "info",
            format!("cache hit for key user:{} from 10.0.0.{}:6379", i, i % 250),
        ),
        _ => (
            t,
            "debug",
            format!(
                "worker {} finished job {} after {} ms",
                i % 8,
                i * 7,
                i % 100
            ),
        ),
    }
}

/// `minutes` of ordinary traffic (`per_minute` lines each) plus `extra(minute)` lines.
fn stream(
    minutes: i64,
    per_minute: u64,
    extra: impl Fn(i64) -> Vec<(i64, &'static str, String)>,
) -> Vec<(i64, &'static str, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    for m in 0..minutes {
        for _ in 0..per_minute {
            out.push(ordinary(m, i));
            i += 1;
        }
        out.extend(extra(m));
    }
    out.sort_by_key(|r| r.0);
    out
}

fn run(miner: &mut TemplateMiner, records: &[(i64, &str, String)]) -> MinerOutput {
    let mut out = MinerOutput::default();
    for (t, sev, body) in records {
        miner.observe(*t, "checkout", sev, body, &mut out).unwrap();
        miner.advance(&mut out);
    }
    out
}

#[test]
fn ordinary_traffic_is_three_templates_counted_per_window_without_anomalies() {
    let mut m = TemplateMiner::new(MinerConfig::default()).unwrap();
    let recs = stream(90, 30, |_| Vec::new());
    let mut out = run(&mut m, &recs);
    m.finish(&mut out);
    assert_eq!(m.template_count(), 3, "{:?}", out.changes);
    assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
    let total: u64 = out.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, recs.len() as u64);
    let windows: std::collections::BTreeSet<i64> =
        out.counts.iter().map(|c| c.window_start_ms).collect();
    assert_eq!(windows.len(), 90);
    let drain = m.drain("checkout").unwrap();
    let texts: Vec<&str> = drain.templates().map(|t| t.template).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("GET <*>") && t.ends_with("in <*>")),
        "{texts:?}"
    );
}

#[test]
fn a_new_template_after_the_warm_up_is_an_anomaly_but_not_during_it() {
    let cfg = MinerConfig::default();
    let warm = i64::from(cfg.warmup_windows);
    let mut m = TemplateMiner::new(cfg).unwrap();
    let recs = stream(warm + 30, 30, |minute| {
        if minute == 5 || minute == warm + 10 {
            vec![(
                T0 + minute * MIN + 30_000,
                "error",
                format!("connection refused to db-{minute}.internal:5432 after 3 retries"),
            )]
        } else {
            Vec::new()
        }
    });
    let mut out = run(&mut m, &recs);
    m.finish(&mut out);
    let new: Vec<_> = out
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::NewTemplate)
        .collect();
    // Minute 5 is in the warm-up; the template of minute warm+10 is the same one (masked host
    // and port), so it is not new either: the only new template is none at all…
    assert!(new.is_empty(), "{new:?}");

    // …while a really new message after the warm-up is.
    let mut m = TemplateMiner::new(MinerConfig::default()).unwrap();
    let recs = stream(warm + 30, 30, |minute| {
        if minute == warm + 10 {
            vec![(
                T0 + minute * MIN + 30_000,
                "error",
                "OutOfMemoryError: Java heap space in thread pool-3".to_string(),
            )]
        } else {
            Vec::new()
        }
    });
    let mut out = run(&mut m, &recs);
    m.finish(&mut out);
    let new: Vec<_> = out
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::NewTemplate)
        .collect();
    assert_eq!(new.len(), 1, "{:?}", out.anomalies);
    assert_eq!(new[0].window_start_ms, T0 + (warm + 10) * MIN);
    assert!(new[0].template.contains("OutOfMemoryError"), "{new:?}");
}

#[test]
fn a_template_rate_surge_and_an_error_surge_are_anomalies() {
    let mut m = TemplateMiner::new(MinerConfig::default()).unwrap();
    let surge_minute = 40;
    let recs = stream(60, 30, |minute| {
        // One timeout a minute normally, 200 in the surge minute.
        let n = if minute == surge_minute { 200 } else { 1 };
        (0..n)
            .map(|k| {
                (
                    T0 + minute * MIN + (k * 250) % MIN,
                    "error",
                    format!("upstream timeout after {} ms calling payments", 1000 + k),
                )
            })
            .collect()
    });
    let mut out = run(&mut m, &recs);
    m.finish(&mut out);
    let at = T0 + surge_minute * MIN;
    let kinds: Vec<AnomalyKind> = out
        .anomalies
        .iter()
        .filter(|a| a.window_start_ms == at)
        .map(|a| a.kind)
        .collect();
    assert!(
        kinds.contains(&AnomalyKind::RateSurge),
        "{:?}",
        out.anomalies
    );
    assert!(
        kinds.contains(&AnomalyKind::ErrorSurge),
        "{:?}",
        out.anomalies
    );
    assert!(
        out.anomalies.iter().all(|a| a.window_start_ms == at),
        "anomalies outside the surge: {:?}",
        out.anomalies
    );
    let surge = out
        .anomalies
        .iter()
        .find(|a| a.kind == AnomalyKind::RateSurge)
        .unwrap();
    assert_eq!(surge.count, 200);
    assert!(surge.expected < 2.0 && surge.score > 0.5, "{surge:?}");
}

#[test]
fn late_records_are_parsed_and_counted_as_late_only() {
    let mut m = TemplateMiner::new(MinerConfig::default()).unwrap();
    let mut out = MinerOutput::default();
    m.observe(T0 + 10 * MIN, "svc", "info", "started in 5 ms", &mut out)
        .unwrap();
    m.advance(&mut out);
    // Minute 0 closed long ago (watermark is minute 10 - 10 s).
    let id = m
        .observe(T0, "svc", "info", "brand new late line 7", &mut out)
        .unwrap();
    m.advance(&mut out);
    assert_eq!(m.late_records(), 1);
    assert!(m.drain("svc").unwrap().template(id).is_some());
    m.finish(&mut out);
    let total: u64 = out.counts.iter().map(|c| c.count).sum();
    assert_eq!(
        total, 1,
        "the late record is in no window: {:?}",
        out.counts
    );
}

#[test]
fn a_restored_checkpoint_continues_bit_for_bit() {
    let recs = stream(80, 25, |minute| {
        if minute % 17 == 0 {
            vec![(
                T0 + minute * MIN + 1,
                "error",
                format!(
                    "disk /dev/sd{} almost full: {}%",
                    minute % 3,
                    90 + minute % 9
                ),
            )]
        } else {
            Vec::new()
        }
    });
    let mut whole = TemplateMiner::new(MinerConfig::default()).unwrap();
    let mut expected = run(&mut whole, &recs);
    whole.finish(&mut expected);
    for cut in [1, recs.len() / 3, recs.len() / 2, recs.len() - 1] {
        let mut a = TemplateMiner::new(MinerConfig::default()).unwrap();
        let mut got = run(&mut a, &recs[..cut]);
        let bytes = a.checkpoint().unwrap();
        let mut b = TemplateMiner::restore(&bytes).unwrap();
        let rest = run(&mut b, &recs[cut..]);
        got.changes.extend(rest.changes);
        got.counts.extend(rest.counts);
        got.anomalies.extend(rest.anomalies);
        b.finish(&mut got);
        assert_eq!(got, expected, "cut at {cut}");
        assert_eq!(b.checkpoint().unwrap(), whole.checkpoint().unwrap());
    }
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let cfg = MinerConfig {
        window_ms: 0,
        ..MinerConfig::default()
    };
    let e = TemplateMiner::new(cfg).unwrap_err().to_string();
    assert!(e.contains("window_ms"), "{e}");
    let e = TemplateMiner::restore(b"{}").unwrap_err().to_string();
    assert!(e.contains("checkpoint"), "{e}");
}
