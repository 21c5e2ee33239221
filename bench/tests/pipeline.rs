//! The pipeline benchmark in a tiny configuration: streaming and batch agree and both count every
//! input row, windows reach the log, and the state-memory run holds every group.

#![allow(clippy::unwrap_used)]

use aiops_bench::pipeline::{self, ThroughputPlan};

fn plan() -> ThroughputPlan {
    ThroughputPlan {
        series: 300,
        names: 3,
        minutes: 4,
        interval_ms: 15_000,
        batch_rows: 500,
        rounds: 1,
        tmp_dir: None,
        fsync: "100ms".into(),
    }
}

#[tokio::test]
async fn streaming_and_batch_agree_on_every_row() {
    let plan = plan();
    let t = pipeline::run_throughput(&plan).await.unwrap();
    let rows = (plan.series * plan.minutes * 4) as u64;
    assert_eq!(t.rows, rows);
    assert!(t.results_agree);
    let s = &t.streaming;
    let b = &t.batch;
    // One result row per series per minute, and every input row counted once, on both sides.
    assert_eq!(s.totals.rows, (plan.series * plan.minutes) as u64);
    assert_eq!(s.totals.sum_n, rows as i64);
    assert_eq!(b.totals, s.totals);
    assert!(s.totals.sum_s > 0.0);
    assert_eq!(s.rows_in, rows);
    // Every window was emitted once and appended to the log, with a latency recorded.
    assert_eq!(s.windows, plan.minutes as u64);
    assert_eq!(s.log_messages, plan.minutes as u64);
    assert_eq!(s.late_emissions, 0);
    assert_eq!(s.window_latency_us.count, plan.minutes as u64);
    assert!(s.window_latency_us.max >= s.window_latency_us.p50);
    assert!(s.rows_per_s > 0.0 && b.rows_per_s > 0.0 && t.streaming_overhead > 0.0);
    // Fired windows stay open for the allowed lateness (1 min), so up to three windows are held.
    assert!(s.max_groups >= plan.series as u64 && s.max_groups <= 3 * plan.series as u64);
    let figures = pipeline::figures(&pipeline::PipelineDetails {
        throughput: Some(t),
        rss: None,
    });
    assert!(
        figures
            .iter()
            .any(|f| f.name == "pipeline.streaming.rows_per_s" && f.value > 0.0)
    );
}

#[tokio::test]
async fn state_memory_run_holds_every_group() {
    let run = pipeline::rss_one(2_000, 2, 10, 700).await.unwrap();
    assert_eq!(run.rows, 4_000);
    assert_eq!(run.status_groups, 2_000);
    assert_eq!(run.rows_out, 2_000);
    assert!(run.state_bytes > 0);
    assert!(run.peak_rss_bytes >= run.peak_rss_aggregating_bytes);
    assert!(
        run.peak_rss_aggregating_bytes > 0,
        "Linux has /proc/self/status"
    );
}
