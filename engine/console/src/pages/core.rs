//! Pages of the overview, alerts and incidents, monitoring, and the sign-in pages' templates.
//!
//! Optional filters are named in every fetch path (`filter={filter}`); the server drops a query
//! pair whose value is empty after substitution, so an unset filter is no filter.

use super::{Fetch, MinRole, Page, get, get_when, post};

/// Pages that change by themselves reload this often.
const LIVE_MS: u32 = 5000;

/// The overview: health (with ingest rates: rows of the last minute by event time, per kind),
/// key indicators (the shipped pipelines' outputs; a missing pipeline is
/// a 404 the page skips), and what needs attention.
const OVERVIEW_FETCH: &[Fetch] = &[
    get("health", "/api/health"),
    get("log", "/api/log/stats"),
    get("pipelines", "/api/pipelines"),
    get("cluster", "/api/cluster"),
    get("alerting", "/api/alerting/stats"),
    // The ten newest (the count comes from `firing`): 10,000 firing alerts are not sent whole.
    get(
        "alerts",
        "/api/v2/alerts?silenced=false&inhibited=false&limit=10",
    ),
    post(
        "firing",
        "/api/sql",
        r#"{"sql": "SELECT count(*) AS n FROM alert_states WHERE status = 'firing' AND state = 'active'"}"#,
        None,
    ),
    get("incidents", "/api/incidents?status=open"),
    get("deploys", "/api/deploys?limit=8"),
    get("workflows", "/api/workflows"),
    post(
        "runs",
        "/api/sql",
        r#"{"sql": "SELECT id, workflow, status, cause, incident, started_at, finished_at FROM workflow_executions ORDER BY started_at DESC LIMIT 8"}"#,
        None,
    ),
    post(
        "rates",
        "/api/sql",
        r#"{"sql": "SELECT 'metrics' AS kind, count(*) AS n FROM metrics WHERE time >= now() - INTERVAL '1 minute' UNION ALL SELECT 'logs' AS kind, count(*) AS n FROM logs WHERE time >= now() - INTERVAL '1 minute' UNION ALL SELECT 'events' AS kind, count(*) AS n FROM events WHERE time >= now() - INTERVAL '1 minute'"}"#,
        None,
    ),
    get(
        "orders",
        "/api/business-metrics/orders_per_minute/data?from={from_ms}&to={to_ms}&limit=2000",
    ),
    get(
        "http",
        "/api/business-metrics/http_errors_per_service/data?from={from_ms}&to={to_ms}&limit=5000",
    ),
    get(
        "cpu",
        "/api/business-metrics/node_cpu_busy_per_host/data?from={from_ms}&to={to_ms}&limit=5000",
    ),
    get(
        "loglines",
        "/api/business-metrics/log_lines_by_severity/data?from={from_ms}&to={to_ms}&limit=5000",
    ),
];

/// Alertmanager-like groups (filtered by one matcher, as `amtool alert query` takes them) and the
/// silences.
const ALERTS_FETCH: &[Fetch] = &[
    get(
        "groups",
        "/api/v2/alerts/groups?filter={filter}&silenced={silenced}&inhibited={inhibited}&limit=20",
    ),
    get("silences", "/api/v2/silences"),
];

/// Incidents by status.
const INCIDENTS_FETCH: &[Fetch] = &[get("incidents", "/api/incidents?status={status}")];

/// One incident with its timeline, root causes, runbooks and similar incidents (the API adds the
/// knowledge links).
const INCIDENT_FETCH: &[Fetch] = &[get("incident", "/api/incidents/{id}")];

/// The metric explorer (a metric's range, only once a metric is chosen), the metric names seen
/// in the last hour, and the pipelines' outputs (one chosen pipeline charted).
const MONITORING_FETCH: &[Fetch] = &[
    get_when(
        "metric",
        "/api/metrics?name={metric}&from={from_ms}&to={to_ms}&step={step}&label.{l1}={v1}&label.{l2}={v2}",
        "metric",
    ),
    post(
        "names",
        "/api/sql",
        r#"{"sql": "SELECT DISTINCT name FROM metrics WHERE time >= now() - INTERVAL '1 hour' ORDER BY name LIMIT 2000"}"#,
        None,
    ),
    get("pipelines", "/api/business-metrics"),
    get_when(
        "output",
        "/api/business-metrics/{pipeline}/data?from={from_ms}&to={to_ms}&limit=20000",
        "pipeline",
    ),
];

/// SQL alert rules, and the one being edited.
const RULES_FETCH: &[Fetch] = &[
    get("rules", "/api/alerts/rules"),
    get_when("rule", "/api/alerts/rules/{edit}", "edit"),
];

/// The SQL console: tables for the side list, the query's answer when one was given (the
/// query as typed, so the parser's line and column are the editor's).
const SQL_FETCH: &[Fetch] = &[
    get("tables", "/api/sql/tables"),
    post("result", "/api/sql", r#"{"sql": "{q}"}"#, Some("q")),
];

/// The pages of this file.
pub const PAGES: &[Page] = &[
    Page {
        path: "/",
        template: "overview.html",
        title_en: "Overview",
        title_zh: "概览",
        section: "overview",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[("range", "1h")],
        fetch: OVERVIEW_FETCH,
    },
    Page {
        path: "/alerts",
        template: "alerts.html",
        title_en: "Alerts",
        title_zh: "告警",
        section: "alerts",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[("filter", ""), ("silenced", "true"), ("inhibited", "true")],
        fetch: ALERTS_FETCH,
    },
    Page {
        path: "/incidents",
        template: "incidents.html",
        title_en: "Incidents",
        title_zh: "事件",
        section: "alerts",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[("status", "open")],
        fetch: INCIDENTS_FETCH,
    },
    Page {
        path: "/incidents/{id}",
        template: "incident.html",
        title_en: "Incident",
        title_zh: "事件详情",
        section: "alerts",
        nav: false,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: INCIDENT_FETCH,
    },
    Page {
        path: "/monitoring",
        template: "monitoring.html",
        title_en: "Monitoring",
        title_zh: "监控",
        section: "monitoring",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 30_000,
        defaults: &[
            ("range", "1h"),
            ("metric", "node_load1"),
            ("step", "30s"),
            ("pipeline", "http_errors_per_service"),
        ],
        fetch: MONITORING_FETCH,
    },
    Page {
        path: "/rules",
        template: "rules.html",
        title_en: "Alert rules",
        title_zh: "告警规则",
        section: "monitoring",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: RULES_FETCH,
    },
    Page {
        path: "/sql",
        template: "sql.html",
        title_en: "SQL console",
        title_zh: "SQL 控制台",
        section: "monitoring",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[("view", "table")],
        fetch: SQL_FETCH,
    },
];

/// Their templates (including `layout.html`, `login.html`, `totp.html`, `enrol.html`,
/// `error.html`).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("totp.html", include_str!("../../templates/totp.html")),
    ("enrol.html", include_str!("../../templates/enrol.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "overview.html",
        include_str!("../../templates/overview.html"),
    ),
    ("alerts.html", include_str!("../../templates/alerts.html")),
    (
        "incidents.html",
        include_str!("../../templates/incidents.html"),
    ),
    (
        "incident.html",
        include_str!("../../templates/incident.html"),
    ),
    (
        "monitoring.html",
        include_str!("../../templates/monitoring.html"),
    ),
    ("rules.html", include_str!("../../templates/rules.html")),
    ("sql.html", include_str!("../../templates/sql.html")),
];
