//! Datadog metrics query (`type = "datadog"`): `GET /api/v1/query?from=&to=&query=` with the
//! `DD-API-KEY` / `DD-APPLICATION-KEY` headers on the configured site; each series' `pointlist`
//! becomes metric rows, its `tag_set` (or `scope`) the labels.

pub mod config;
pub mod source;

#[cfg(test)]
mod tests;

pub use config::DatadogQueryConfig;
pub use source::DatadogQuerySource;

/// A Prometheus label or metric name made from a Datadog or AWS name: every character outside
/// `[a-zA-Z0-9_]` becomes `_`, and a leading digit gets a `_` before it (`system.cpu.idle` →
/// `system_cpu_idle`, `kube-namespace` → `kube_namespace`); never starting with the reserved `__`.
pub fn prometheus_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    // `__` starts the names reserved for aiops and Prometheus.
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}
