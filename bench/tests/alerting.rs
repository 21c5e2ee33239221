//! The alerting benchmark in a tiny configuration: every observation reaches the engine, the
//! decisions follow the stream's schedule, runs agree, and the log tailer reads what the real
//! embedded log writer writes.

#![allow(clippy::unwrap_used)]

use aiops_bench::alerting::{self, AlertingDetails, StreamPlan, Tailer};
use aiops_log::AppendMessage;
use bytes::Bytes;
use std::time::{Duration, Instant};

#[test]
fn engine_runs_count_every_alert_and_follow_the_schedule() {
    let plan = StreamPlan {
        fingerprints: 1000,
        observations: 20_000,
        names: 50,
        services: 20,
        span_ms: 600_000,
        batch_rows: 500,
    };
    let r = alerting::run_engine_rounds(&plan, 2).unwrap();
    assert_eq!(r.rows, 20_000);
    assert_eq!(r.batches, 40);
    assert!(r.runs_agree);
    let m = &r.median;
    assert_eq!((m.alerts, m.raw_counted), (20_000, 20_000));
    // 1000 alerts fire; the 100 with i % 10 == 3 resolve (round 6), fire again (round 10) and
    // resolve again (round 16) — re-sent every 30 s with endsAt 4 min ahead, none goes stale.
    assert_eq!(m.firings, 1100);
    assert_eq!(m.resolves, 200);
    assert_eq!((m.stale_resolves, m.flapping), (0, 0));
    assert_eq!(m.deduplicated, 1100);
    // Groups by alertname and service notify; one incident per service at most (dependencies
    // merge some).
    assert!(m.notifications > 0 && m.notified_firing > 0);
    assert!(
        (1..=20).contains(&m.incidents_opened),
        "{}",
        m.incidents_opened
    );
    assert!(m.alerts_per_s > 0.0 && r.end_to_end_alerts_per_s > 0.0);
    // Only the first run encodes its decisions.
    assert!(r.decision_bytes > 0 && r.runs[0].decision_bytes == r.decision_bytes);
    assert_eq!(r.runs[1].decision_bytes, 0);
    let figures = alerting::figures(&AlertingDetails {
        engine: Some(r),
        latency: None,
        compare: None,
    });
    assert!(
        figures
            .iter()
            .any(|f| f.name == "alerting.engine.alerts_per_s" && f.value > 0.0)
    );
}

#[tokio::test]
async fn tailer_reads_the_real_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = aiops_log::embedded::EmbeddedConfig::new(dir.path().join("log"));
    cfg.fsync = aiops_log::embedded::FsyncPolicy::Interval(Duration::from_millis(10));
    let log = aiops_log::open(&aiops_log::LogSpec::Embedded(cfg))
        .await
        .unwrap();
    let tailer = Tailer::start(dir.path().join("log"), Duration::from_millis(1)).unwrap();
    let msg = |subject: &str, id: &str, payload: &str| AppendMessage {
        subject: subject.into(),
        msg_id: id.into(),
        time_min_ms: 1,
        time_max_ms: 2,
        payload: Bytes::from(payload.to_string()),
    };
    let decisions = concat!(
        r#"{"type":"alert_state","at_ms":2}"#,
        "\n",
        r#"{"type":"notification","reason":"new","firing":[{"labels":{"alertname":"a"}},{"labels":{"alertname":"b"}}],"resolved":[]}"#,
        "\n"
    );
    log.append(vec![msg("aiops.alerts.0", "x1", "not json")])
        .await
        .unwrap();
    log.append(vec![msg("aiops.alerting", "x2", decisions)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tailer.found() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (found, st) = tailer.finish().unwrap();
    log.close().await.unwrap();
    let names: Vec<&str> = found.iter().map(|n| n.alertname.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        found
            .iter()
            .all(|n| n.reason == "new" && n.append_ts_ms > 0)
    );
    assert_eq!(
        (st.records, st.alerting_records, st.notifications),
        (2, 1, 2)
    );
}
