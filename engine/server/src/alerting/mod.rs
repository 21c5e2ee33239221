//! Alerting at the edge: the engine's self-metrics. The engine, its processor and codecs live in
//! [`aiops_runtime::alerting`]; its HTTP API is the server's `http::alerting`.

pub use aiops_runtime::alerting::*;

/// The alerting engine's self-metrics in the Prometheus text format.
pub fn metrics_text(h: &processor::AlertingHandle) -> String {
    use std::fmt::Write as _;
    let (g, s) = {
        let e = h.engine.read();
        (e.gauges(), e.stats())
    };
    let run = *h.summary.lock();
    let mut out = String::new();
    let rows: [(&str, &str, &str, f64); 11] = [
        (
            "aiops_alerting_alerts_received_total",
            "counter",
            "Alert observations received (every repeat).",
            s.total.raw as f64,
        ),
        (
            "aiops_alerting_alerts_deduplicated_total",
            "counter",
            "Distinct alert firings after dedup.",
            s.total.deduplicated as f64,
        ),
        (
            "aiops_alerting_notifications_total",
            "counter",
            "Notification intents emitted (storm summaries included).",
            s.total.notifications as f64,
        ),
        (
            "aiops_alerting_commands_refused_total",
            "counter",
            "Silence, incident and rule commands the engine refused.",
            run.refused_commands as f64,
        ),
        (
            "aiops_alerting_position",
            "gauge",
            "Next log sequence the alerting engine has not consumed.",
            h.progress.position() as f64,
        ),
        (
            "aiops_alerting_alerts_firing",
            "gauge",
            "Alerts firing now.",
            g.firing as f64,
        ),
        (
            "aiops_alerting_alerts",
            "gauge",
            "Alerts held (firing and recently resolved).",
            g.alerts as f64,
        ),
        (
            "aiops_alerting_groups",
            "gauge",
            "Aggregation groups.",
            g.groups as f64,
        ),
        (
            "aiops_alerting_silences_active",
            "gauge",
            "Silences active now.",
            g.silences_active as f64,
        ),
        (
            "aiops_alerting_incidents_open",
            "gauge",
            "Open and acknowledged incidents.",
            g.incidents_open as f64,
        ),
        (
            "aiops_alerting_inhibit_rules",
            "gauge",
            "Inhibition rules (configured and created through the API).",
            g.inhibit_rules as f64,
        ),
    ];
    for (name, kind, help, v) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    out
}
