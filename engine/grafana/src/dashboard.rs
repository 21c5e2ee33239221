//! The dashboards aiops generates: one per pipeline and an overview (system health, key
//! indicators, recent alerts, incidents and workflow executions). Pure functions of the pipeline
//! descriptions, so the same pipelines always give byte-identical JSON and a sync writes only what
//! changed.
//!
//! Panel queries read a derived stream's *latest* revision of each window and group (a window
//! revised by late data is emitted again with a higher `revision`), and use Grafana's macros so
//! the time picker and `$__interval` apply.

use serde_json::{Value, json};

/// Grafana dashboard schema version the JSON is written for (Grafana 10/11).
pub const SCHEMA_VERSION: i64 = 39;

/// Uid of the overview dashboard.
pub const OVERVIEW_UID: &str = "aiops-overview";

/// The role of a column of a pipeline's output stream in a dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A timestamp: the first one is the panels' time axis.
    Time,
    /// A string: part of the series name.
    Label,
    /// A number: one panel each.
    Value,
    /// Anything else (maps, lists, ids): not shown.
    Other,
}

impl ColumnKind {
    /// The kind of a column from its `information_schema` data type.
    pub fn of_sql_type(name: &str, data_type: &str) -> ColumnKind {
        if matches!(name, "event_id" | "revision") {
            return ColumnKind::Other;
        }
        let t = data_type.to_ascii_lowercase();
        if [
            "map",
            "list",
            "struct",
            "largelist",
            "fixedsizelist",
            "array",
            "json",
        ]
        .iter()
        .any(|n| t.starts_with(n))
            || t.ends_with("[]")
        {
            ColumnKind::Other
        } else if t.starts_with("timestamp") || t == "date" {
            ColumnKind::Time
        } else if t.contains("char") || t == "text" || t.contains("utf8") {
            ColumnKind::Label
        } else if [
            "int", "bigint", "smallint", "double", "real", "float", "numeric", "decimal",
        ]
        .iter()
        .any(|n| t.starts_with(n))
            || t.contains("int") && !t.contains("interval")
        {
            ColumnKind::Value
        } else {
            ColumnKind::Other
        }
    }
}

/// An SQL alert rule's settings, as its Grafana rule and dashboard show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDesc {
    /// The `alertname` label its alerts carry.
    pub alertname: String,
    /// `@severity`.
    pub severity: Option<String>,
    /// `@summary`.
    pub summary: Option<String>,
}

/// A pipeline as the dashboards see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineDesc {
    /// Its name (file stem).
    pub name: String,
    /// Its output stream (`alerts` for an alert rule).
    pub output: String,
    /// The leading comment of its file.
    pub description: String,
    /// Output columns in order (empty while the stream has no data yet).
    pub columns: Vec<(String, ColumnKind)>,
    /// Set for an alert rule (`INSERT INTO alerts`).
    pub alert: Option<AlertDesc>,
}

/// The data source every panel uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSourceRef {
    /// Its uid.
    pub uid: String,
    /// Its plugin type.
    pub kind: String,
}

impl DataSourceRef {
    fn json(&self) -> Value {
        json!({"type": self.kind, "uid": self.uid})
    }
}

/// A Grafana uid (at most 40 of `[A-Za-z0-9_-]`) for `prefix` + `name`, stable for a name: the
/// sanitized name when it fits, else its start and a hash.
pub fn uid(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let full = format!("{prefix}{clean}");
    if full.len() <= 40 && clean == name {
        return full;
    }
    let h = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, name.as_bytes());
    let keep = 40 - prefix.len() - 9;
    let start: String = clean.chars().take(keep).collect();
    format!("{prefix}{start}-{:08x}", h as u32)
}

/// Uid of pipeline `name`'s dashboard.
pub fn pipeline_uid(name: &str) -> String {
    uid("aiops-p-", name)
}

/// Quotes an identifier for Postgres.
pub fn ident(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Quotes a string literal for Postgres.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Shape<'a> {
    time: &'a str,
    labels: Vec<&'a str>,
    values: Vec<&'a str>,
}

fn shape(p: &PipelineDesc) -> Option<Shape<'_>> {
    let of = |k: ColumnKind| {
        p.columns
            .iter()
            .filter(move |(_, c)| *c == k)
            .map(|(n, _)| n.as_str())
    };
    let time = of(ColumnKind::Time).next()?;
    let values: Vec<&str> = of(ColumnKind::Value).collect();
    if values.is_empty() {
        return None;
    }
    Some(Shape {
        time,
        labels: of(ColumnKind::Label).collect(),
        values,
    })
}

/// The latest revision of every window and group of `p`'s stream within the time filter.
fn latest(p: &PipelineDesc, s: &Shape<'_>) -> String {
    let keys: Vec<String> = std::iter::once(s.time)
        .chain(s.labels.iter().copied())
        .map(ident)
        .collect();
    let has_revision = p.columns.iter().any(|(n, _)| n == "revision");
    let vals: Vec<String> = s
        .values
        .iter()
        .map(|v| {
            if has_revision {
                format!("last_value({c} ORDER BY revision) AS {c}", c = ident(v))
            } else {
                format!("max({c}) AS {c}", c = ident(v))
            }
        })
        .collect();
    format!(
        "SELECT {keys}, {vals} FROM {table} WHERE $__timeFilter({time}) GROUP BY {keys}",
        keys = keys.join(", "),
        vals = vals.join(", "),
        table = ident(&p.output),
        time = ident(s.time),
    )
}

/// The newest `limit` windows of `p`'s stream in the time filter (latest revision of each window
/// and group), oldest first; `None` while the stream has no columns.
pub fn latest_sql(p: &PipelineDesc, limit: usize) -> Option<String> {
    let s = shape(p)?;
    Some(format!(
        "SELECT * FROM (SELECT * FROM ({}) latest ORDER BY {t} DESC LIMIT {limit}) newest ORDER BY {t}",
        latest(p, &s),
        t = ident(s.time)
    ))
}

/// The time series query of value column `value` of `p`: one series per label combination.
fn series_sql(p: &PipelineDesc, s: &Shape<'_>, value: &str) -> String {
    let inner = latest(p, s);
    if s.labels.is_empty() {
        format!(
            "SELECT $__timeGroupAlias({t}, $__interval), avg({v}) AS {v} FROM ({inner}) latest GROUP BY 1 ORDER BY 1",
            t = ident(s.time),
            v = ident(value),
        )
    } else {
        let metric = if s.labels.len() == 1 {
            ident(s.labels[0])
        } else {
            format!(
                "concat_ws('/', {})",
                s.labels
                    .iter()
                    .map(|l| ident(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "SELECT $__timeGroupAlias({t}, $__interval), {metric} AS metric, avg({v}) AS {v} FROM ({inner}) latest GROUP BY 1, 2 ORDER BY 1, 2",
            t = ident(s.time),
            v = ident(value),
        )
    }
}

fn target(ds: &DataSourceRef, ref_id: &str, format: &str, sql: String) -> Value {
    json!({
        "refId": ref_id,
        "datasource": ds.json(),
        "editorMode": "code",
        "format": format,
        "rawQuery": true,
        "rawSql": sql,
    })
}

struct Layout {
    next_id: i64,
    x: i64,
    y: i64,
    row_h: i64,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            next_id: 1,
            x: 0,
            y: 0,
            row_h: 0,
        }
    }

    /// Places a panel `w` wide and `h` high (a row is 24 wide) and gives it an id.
    fn panel(&mut self, ds: &DataSourceRef, mut p: Value, w: i64, h: i64) -> Value {
        if self.x + w > 24 {
            self.x = 0;
            self.y += self.row_h;
            self.row_h = 0;
        }
        p["id"] = json!(self.next_id);
        p["gridPos"] = json!({"h": h, "w": w, "x": self.x, "y": self.y});
        p["datasource"] = ds.json();
        self.next_id += 1;
        self.x += w;
        self.row_h = self.row_h.max(h);
        p
    }
}

fn timeseries(title: &str, description: &str, targets: Vec<Value>) -> Value {
    json!({
        "type": "timeseries",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {"defaults": {"custom": {"drawStyle": "line", "lineWidth": 1, "spanNulls": false}}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": {"mode": "multi", "sort": "none"}},
    })
}

fn table(title: &str, description: &str, targets: Vec<Value>) -> Value {
    json!({
        "type": "table",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": true, "cellHeight": "sm"},
    })
}

fn stat(title: &str, description: &str, targets: Vec<Value>) -> Value {
    json!({
        "type": "stat",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {"defaults": {"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "red", "value": 1}]}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "auto"},
    })
}

/// Dashboard annotations: Grafana's built-in one plus aiops' incidents and deploys (written by
/// the sync as tagged annotations).
fn annotations() -> Value {
    let grafana = json!({"type": "grafana", "uid": "-- Grafana --"});
    json!({"list": [
        {"builtIn": 1, "datasource": grafana, "enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
        {"datasource": grafana, "enable": true, "iconColor": "red", "name": "aiops incidents", "target": {"refId": "Anno", "type": "tags", "tags": ["aiops", "incident"], "matchAny": false, "limit": 100}},
        {"datasource": grafana, "enable": true, "iconColor": "blue", "name": "deploys", "target": {"refId": "Anno", "type": "tags", "tags": ["aiops", "deploy"], "matchAny": false, "limit": 100}},
    ]})
}

fn dashboard(
    uid: &str,
    title: &str,
    description: &str,
    tags: &[&str],
    panels: Vec<Value>,
) -> Value {
    json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "annotations": annotations(),
        "links": [{"type": "dashboards", "tags": ["aiops"], "asDropdown": true, "title": "aiops", "includeVars": false, "keepTime": true, "icon": "external link", "targetBlank": false, "tooltip": "Every aiops dashboard", "url": ""}],
        "templating": {"list": []},
        "panels": panels,
    })
}

/// The panels of an alert rule pipeline: its alerts over time and the ones it knows now.
fn alert_panels(ds: &DataSourceRef, a: &AlertDesc, l: &mut Layout) -> Vec<Value> {
    let name = literal(&a.alertname);
    vec![
        l.panel(
            ds,
            timeseries(
                "Alert state changes",
                "Firing and resolved alerts this rule appended to the log.",
                vec![target(
                    ds,
                    "A",
                    "time_series",
                    format!(
                        "SELECT $__timeGroupAlias(time, $__interval), CASE WHEN ends_at IS NULL THEN 'firing' ELSE 'resolved' END AS metric, count(*) AS alerts FROM alerts WHERE $__timeFilter(time) AND source = 'aiops' AND labels['alertname'] = {name} GROUP BY 1, 2 ORDER BY 1, 2"
                    ),
                )],
            ),
            24,
            8,
        ),
        l.panel(
            ds,
            table(
                "Alerts of this rule",
                "Every alert of this rule the alerting engine holds, firing first.",
                vec![target(
                    ds,
                    "A",
                    "table",
                    format!(
                        "SELECT starts_at AS \"time\", status, severity, service, summary, count, labels FROM alert_states WHERE alertname = {name} ORDER BY status, starts_at DESC LIMIT 200"
                    ),
                )],
            ),
            24,
            10,
        ),
    ]
}

/// Pipeline `p`'s dashboard, or `None` when its stream has no columns yet (no data written).
pub fn pipeline_dashboard(p: &PipelineDesc, ds: &DataSourceRef) -> Option<Value> {
    let mut l = Layout::new();
    let mut panels = Vec::new();
    if let Some(a) = &p.alert {
        panels = alert_panels(ds, a, &mut l);
    } else {
        let s = shape(p)?;
        let w = if s.values.len() == 1 { 24 } else { 12 };
        for v in &s.values {
            panels.push(l.panel(
                ds,
                timeseries(
                    v,
                    &format!(
                        "`{v}` of `{}` per {}; latest revision of each window.",
                        p.output,
                        if s.labels.is_empty() {
                            "window".to_string()
                        } else {
                            s.labels.join(", ")
                        }
                    ),
                    vec![target(ds, "A", "time_series", series_sql(p, &s, v))],
                ),
                w,
                8,
            ));
        }
        panels.push(l.panel(
            ds,
            table(
                "Latest windows",
                "The newest rows of the stream (latest revision).",
                vec![target(
                    ds,
                    "A",
                    "table",
                    format!(
                        "SELECT * FROM ({}) latest ORDER BY {} DESC LIMIT 100",
                        latest(p, &s),
                        ident(s.time)
                    ),
                )],
            ),
            24,
            10,
        ));
    }
    let kind = if p.alert.is_some() {
        "alert-rule"
    } else {
        "pipeline"
    };
    Some(dashboard(
        &pipeline_uid(&p.name),
        &format!("aiops / {}", p.name),
        &p.description,
        &["aiops", kind],
        panels,
    ))
}

/// Key indicators on the overview: the first value column of each pipeline, at most this many.
const KEY_INDICATORS: usize = 8;

/// The overview dashboard.
pub fn overview_dashboard(pipelines: &[PipelineDesc], ds: &DataSourceRef) -> Value {
    let mut l = Layout::new();
    let mut panels = vec![
        l.panel(
            ds,
            stat(
                "Firing alerts",
                "Alerts the alerting engine holds as firing.",
                vec![target(
                    ds,
                    "A",
                    "table",
                    "SELECT count(*) AS firing FROM alert_states WHERE status = 'firing'".into(),
                )],
            ),
            6,
            4,
        ),
        l.panel(
            ds,
            stat(
                "Open incidents",
                "Incidents not resolved.",
                vec![target(
                    ds,
                    "A",
                    "table",
                    "SELECT count(*) AS open FROM incidents WHERE status <> 'resolved'".into(),
                )],
            ),
            6,
            4,
        ),
        l.panel(
            ds,
            stat(
                "Running workflows",
                "Workflow executions not finished.",
                vec![target(
                    ds,
                    "A",
                    "table",
                    "SELECT count(*) AS running FROM workflow_executions WHERE finished_at IS NULL"
                        .into(),
                )],
            ),
            6,
            4,
        ),
        l.panel(
            ds,
            stat(
                "Pipelines",
                "Pipelines whose output stream has data.",
                vec![target(
                    ds,
                    "A",
                    "table",
                    "SELECT count(*) AS pipelines FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT IN ('metrics', 'logs', 'alerts', 'events', 'alert_states', 'silences', 'incidents', 'workflow_executions')".into(),
                )],
            ),
            6,
            4,
        ),
    ];
    let ingest = |ref_id: &str, table: &str, what: &str| {
        target(
            ds,
            ref_id,
            "time_series",
            format!(
                "SELECT $__timeGroupAlias(time, $__interval), count(*) AS {} FROM {table} WHERE $__timeFilter(time) GROUP BY 1 ORDER BY 1",
                ident(what)
            ),
        )
    };
    panels.push(l.panel(
        ds,
        timeseries(
            "Ingested per interval",
            "Metric samples, log lines, alerts and events the log accepted.",
            vec![
                ingest("A", "metrics", "metric samples"),
                ingest("B", "logs", "log lines"),
                ingest("C", "alerts", "alerts"),
                ingest("D", "events", "events"),
            ],
        ),
        12,
        8,
    ));
    panels.push(l.panel(
        ds,
        timeseries(
            "Log lines by severity",
            "Log lines per interval by severity.",
            vec![target(
                ds,
                "A",
                "time_series",
                "SELECT $__timeGroupAlias(time, $__interval), severity AS metric, count(*) AS lines FROM logs WHERE $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1, 2".into(),
            )],
        ),
        12,
        8,
    ));
    for p in pipelines
        .iter()
        .filter(|p| p.alert.is_none())
        .filter_map(|p| shape(p).map(|s| (p, s)))
        .take(KEY_INDICATORS)
    {
        let (p, s) = p;
        let v = s.values[0];
        let mut panel = timeseries(
            &format!("{}: {v}", p.name),
            &p.description,
            vec![target(ds, "A", "time_series", series_sql(p, &s, v))],
        );
        panel["links"] = json!([{
            "title": format!("aiops / {}", p.name),
            "type": "link",
            "url": format!("/d/{}", pipeline_uid(&p.name)),
            "asDropdown": false,
            "icon": "dashboard",
            "includeVars": false,
            "keepTime": true,
            "tags": [],
            "targetBlank": false,
            "tooltip": "The pipeline's dashboard",
        }]);
        panels.push(l.panel(ds, panel, 8, 7));
    }
    panels.push(l.panel(
        ds,
        table(
            "Recent alerts",
            "The alerts the alerting engine holds, most recently changed first.",
            vec![target(
                ds,
                "A",
                "table",
                "SELECT updated_at AS \"time\", alertname, status, severity, service, source, summary FROM alert_states ORDER BY updated_at DESC LIMIT 50".into(),
            )],
        ),
        24,
        9,
    ));
    panels.push(l.panel(
        ds,
        table(
            "Recent incidents",
            "Incidents, newest first.",
            vec![target(
                ds,
                "A",
                "table",
                "SELECT opened_at AS \"time\", title, status, severity, alerts, firing, acknowledged_at, resolved_at FROM incidents ORDER BY opened_at DESC LIMIT 50".into(),
            )],
        ),
        12,
        9,
    ));
    panels.push(l.panel(
        ds,
        table(
            "Workflow executions",
            "Running and recent workflow executions, newest first.",
            vec![target(
                ds,
                "A",
                "table",
                "SELECT started_at AS \"time\", workflow, status, cause, incident, reason, finished_at FROM workflow_executions ORDER BY started_at DESC LIMIT 50".into(),
            )],
        ),
        12,
        9,
    ));
    dashboard(
        OVERVIEW_UID,
        "aiops / overview",
        "System health, key indicators, recent alerts, incidents and workflow executions.",
        &["aiops", "overview"],
        panels,
    )
}

/// Every panel query of a dashboard with where it is, for checks: `(panel title, refId, rawSql)`.
pub fn queries(d: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = t["rawSql"].as_str() {
                out.push((
                    p["title"].as_str().unwrap_or("").to_string(),
                    t["refId"].as_str().unwrap_or("").to_string(),
                    sql.to_string(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ds() -> DataSourceRef {
        DataSourceRef {
            uid: "aiops".into(),
            kind: "grafana-postgresql-datasource".into(),
        }
    }

    fn cpu() -> PipelineDesc {
        PipelineDesc {
            name: "node_cpu_per_host".into(),
            output: "node_cpu_1m".into(),
            description: "CPU per host".into(),
            columns: vec![
                ("event_id".into(), ColumnKind::Other),
                ("revision".into(), ColumnKind::Other),
                ("window_start".into(), ColumnKind::Time),
                ("host".into(), ColumnKind::Label),
                ("mode".into(), ColumnKind::Label),
                ("seconds".into(), ColumnKind::Value),
                ("utilization".into(), ColumnKind::Value),
            ],
            alert: None,
        }
    }

    #[test]
    fn uids_are_stable_valid_and_distinct() {
        assert_eq!(
            pipeline_uid("node_cpu_per_host"),
            "aiops-p-node_cpu_per_host"
        );
        let long = "a".repeat(60);
        let u = pipeline_uid(&long);
        assert!(u.len() <= 40, "{u}");
        assert_eq!(u, pipeline_uid(&long));
        assert_ne!(pipeline_uid("a.b"), pipeline_uid("a-b"));
        assert!(
            pipeline_uid("x y/ü")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn pipeline_dashboard_has_a_panel_per_value_over_the_latest_revision() {
        let d = pipeline_dashboard(&cpu(), &ds()).unwrap();
        assert_eq!(d["uid"], "aiops-p-node_cpu_per_host");
        let q = queries(&d);
        assert_eq!(q.len(), 3, "{q:?}");
        assert_eq!(q[0].0, "seconds");
        assert!(
            q[0].2.contains("last_value(seconds ORDER BY revision)"),
            "{}",
            q[0].2
        );
        assert!(q[0].2.contains("concat_ws('/', host, mode) AS metric"));
        assert!(q[0].2.contains("$__timeFilter(window_start)"));
        // Panels do not overlap and stay within 24 columns.
        let mut cells = std::collections::HashSet::new();
        for p in d["panels"].as_array().unwrap() {
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(x + w <= 24);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "panels overlap at {cx},{cy}");
                }
            }
        }
        // Same input, same bytes.
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            serde_json::to_string(&pipeline_dashboard(&cpu(), &ds()).unwrap()).unwrap()
        );
    }

    #[test]
    fn streams_without_data_get_no_dashboard_and_odd_names_are_quoted() {
        let mut p = cpu();
        p.columns.clear();
        assert!(pipeline_dashboard(&p, &ds()).is_none());
        assert_eq!(ident("Weird Name"), "\"Weird Name\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(
            ColumnKind::of_sql_type("x", "Timestamp(Millisecond, Some(\"UTC\"))"),
            ColumnKind::Time
        );
        assert_eq!(ColumnKind::of_sql_type("x", "Float64"), ColumnKind::Value);
        assert_eq!(ColumnKind::of_sql_type("x", "Int64"), ColumnKind::Value);
        assert_eq!(ColumnKind::of_sql_type("x", "Utf8"), ColumnKind::Label);
        assert_eq!(
            ColumnKind::of_sql_type("revision", "UInt32"),
            ColumnKind::Other
        );
        assert_eq!(
            ColumnKind::of_sql_type("labels", "Map(..)"),
            ColumnKind::Other
        );
    }
}
