//! Pipelines at the edge: the pipeline files the HTTP API manages ([`PipelineFiles`]) and the
//! pipelines' self-metrics. Loading, running, rebuilding and
//! replaying pipelines live in [`aiops_runtime::pipelines`].

pub use aiops_runtime::pipelines::*;

/// The pipeline directory as business metrics and SQL alert rules are managed through the API.
#[derive(Debug)]
pub struct PipelineFiles {
    /// `[pipelines]`: the directory and the runtime settings changes are compiled with.
    pub cfg: PipelinesConfig,
    /// One change at a time.
    pub lock: tokio::sync::Mutex<()>,
}

impl PipelineFiles {
    /// The files of `cfg.dir`, changed one at a time.
    pub fn new(cfg: PipelinesConfig) -> PipelineFiles {
        PipelineFiles {
            cfg,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// A metric family of the pipelines: name, type, help, and the value of one pipeline.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&runner::PipelineInfo) -> f64,
);

/// The pipelines' gauges and counters in the Prometheus text format.
pub fn metrics_text(board: &runner::Board) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let families: [Family; 8] = [
        (
            "aiops_pipeline_rows_in_total",
            "counter",
            "Input rows a pipeline has read.",
            |p| p.status.counters.rows_in as f64,
        ),
        (
            "aiops_pipeline_rows_out_total",
            "counter",
            "Derived events a pipeline has emitted (all revisions).",
            |p| p.status.counters.rows_out as f64,
        ),
        (
            "aiops_pipeline_late_rows_total",
            "counter",
            "Rows beyond the allowed lateness, sent to aiops.late.<pipeline>.",
            |p| p.status.counters.late_rows as f64,
        ),
        (
            "aiops_pipeline_revisions_total",
            "counter",
            "Window results emitted again after late rows changed them.",
            |p| p.status.counters.revisions as f64,
        ),
        (
            "aiops_pipeline_watermark_seconds",
            "gauge",
            "Event-time watermark of a pipeline, Unix seconds.",
            |p| {
                p.status
                    .watermark_ms
                    .map_or(f64::NAN, |w| w as f64 / 1000.0)
            },
        ),
        (
            "aiops_pipeline_lag_messages",
            "gauge",
            "Log messages appended after a pipeline's position.",
            |p| p.lag as f64,
        ),
        (
            "aiops_pipeline_groups",
            "gauge",
            "Groups held across a pipeline's open windows.",
            |p| p.status.groups as f64,
        ),
        (
            "aiops_pipeline_state_bytes",
            "gauge",
            "Bytes of aggregation state a pipeline holds.",
            |p| p.status.state_bytes as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in &board.pipelines {
            let _ = writeln!(out, "{name}{{pipeline=\"{}\"}} {}", p.name, value(p));
        }
    }
    let _ = writeln!(
        out,
        "# HELP aiops_pipeline_refused_files Problems of the last refused change of the pipeline directory.\n# TYPE aiops_pipeline_refused_files gauge\naiops_pipeline_refused_files {}",
        board.refused.len()
    );
    out
}
