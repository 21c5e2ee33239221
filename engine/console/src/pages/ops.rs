//! Pages of logs, deploys, knowledge, automation and administration.
//!
//! Optional filters: the server fills a fetch path's `{name}` with the query parameter or the
//! empty string, and the API routes read an empty value as a filter (`severity=` matches no
//! line, `service=` no deploy). So a filter that may be absent is never in a page's main fetch:
//! a second fetch with the filter runs only `when` it is given, and the template shows that
//! answer (applying any other given filter to its rows).

use super::{Fetch, MinRole, Page, get, get_when, post};

/// Lists that change by themselves reload this often.
const LIVE_MS: u32 = 5000;

/// Log search: the lines (one fetch per optional filter, see the module documentation) and the
/// range's analysis, to highlight lines of new and anomalous templates (search answers carry
/// no template id).
const LOGS_FETCH: &[Fetch] = &[
    get(
        "logs",
        "/api/logs/search?q={q}&from={from_ms}&to={to_ms}&limit={limit}",
    ),
    get_when(
        "logs_service",
        "/api/logs/search?q={q}&label.service={service}&from={from_ms}&to={to_ms}&limit={limit}",
        "service",
    ),
    get_when(
        "logs_severity",
        "/api/logs/search?q={q}&severity={severity}&from={from_ms}&to={to_ms}&limit={limit}",
        "severity",
    ),
    get_when(
        "logs_label",
        "/api/logs/search?q={q}&label.{label}={value}&from={from_ms}&to={to_ms}&limit={limit}",
        "value",
    ),
    // Only the templates' flags are needed here: no sample scan (it reads every line of the
    // range; bench console-render measured it as most of this page's time).
    get(
        "analysis",
        "/api/logs/analysis?service={service}&from={from_ms}&to={to_ms}&samples=false",
    ),
];

/// The template table per service and each template's trend: its counts over the range in 80
/// buckets (one array per template, so the page looks each up natively), from the miner's
/// derived stream. The SQL opens with a `/* } */` comment: the server
/// fills `{name}` after the body's first `}` only (its scan takes the JSON's own `{` up to the
/// first `}` as one unknown placeholder), so a `}` must come before the first placeholder.
const TEMPLATES_FETCH: &[Fetch] = &[
    get("templates", "/api/logs/templates?limit={limit}"),
    get_when(
        "templates_service",
        "/api/logs/templates?service={service}&limit={limit}",
        "service",
    ),
    post(
        "trend",
        "/api/sql",
        r#"{"sql": "/* } */ SELECT service, template_id, array_agg(b ORDER BY b) AS b, array_agg(n ORDER BY b) AS n, sum(n) AS total FROM (SELECT service, template_id, (CAST(to_unixtime(window_start) * 1000 AS BIGINT) - {from_ms}) * 80 / ({to_ms} - {from_ms} + 1) AS b, sum(count) AS n FROM log_templates_1m WHERE window_start >= to_timestamp_millis({from_ms}) AND window_start < to_timestamp_millis({to_ms}) GROUP BY 1, 2, 3) GROUP BY 1, 2 ORDER BY total DESC LIMIT 1000"}"#,
        None,
    ),
];

/// One deploy, and the verification metrics of every service and version in the page's range
/// (the default verification stream, `deploy_metrics_10s` of pipelines/deploy_metrics.sql), so
/// the page charts canary against baseline; the template keeps the deploy's service. Only the
/// numeric built-ins go into the SQL.
const DEPLOY_FETCH: &[Fetch] = &[
    get("deploy", "/api/deploy/status?id={id}"),
    post(
        "series",
        "/api/sql",
        r#"{"sql": "/* } */ SELECT CAST(to_unixtime(window_start) * 1000 AS BIGINT) AS t, * FROM deploy_metrics_10s WHERE window_start >= to_timestamp_millis({from_ms}) AND window_start < to_timestamp_millis({to_ms}) ORDER BY window_start LIMIT 50000"}"#,
        None,
    ),
];

/// Executions waiting for an approval, every workflow's (the API lists executions per
/// workflow only; the read side's state table has them all).
const APPROVALS_FETCH: &[Fetch] = &[post(
    "waiting",
    "/api/sql",
    r#"{"sql": "SELECT id, workflow, cause, incident, CAST(to_unixtime(started_at) * 1000 AS BIGINT) AS started_ms FROM workflow_executions WHERE status = 'waiting_approval' ORDER BY started_at DESC LIMIT 500"}"#,
    None,
)];

/// The pages of this file.
pub const PAGES: &[Page] = &[
    Page {
        path: "/logs",
        template: "logs.html",
        title_en: "Log search",
        title_zh: "日志搜索",
        section: "logs",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[("range", "1h"), ("limit", "200")],
        fetch: LOGS_FETCH,
    },
    Page {
        path: "/logs/templates",
        template: "templates.html",
        title_en: "Log templates",
        title_zh: "日志模板",
        section: "logs",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[("range", "6h"), ("limit", "30")],
        fetch: TEMPLATES_FETCH,
    },
    Page {
        path: "/logs/analysis",
        template: "log_analysis.html",
        title_en: "Log analysis",
        title_zh: "日志分析",
        section: "logs",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[("range", "1h")],
        fetch: &[get(
            "analysis",
            "/api/logs/analysis?service={service}&from={from_ms}&to={to_ms}",
        )],
    },
    Page {
        path: "/deploys",
        template: "deploys.html",
        title_en: "Deploys",
        title_zh: "部署",
        section: "deploys",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[("limit", "100")],
        fetch: &[
            get("deploys", "/api/deploys?limit={limit}"),
            get_when(
                "deploys_service",
                "/api/deploys?service={service}&limit={limit}",
                "service",
            ),
            get_when(
                "deploys_environment",
                "/api/deploys?environment={environment}&limit={limit}",
                "environment",
            ),
        ],
    },
    Page {
        path: "/deploys/{id}",
        template: "deploy.html",
        title_en: "Deploy",
        title_zh: "部署详情",
        section: "deploys",
        nav: false,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        // The list links here with `from_ms`/`to_ms` around the deploy; without them, the last
        // hour.
        defaults: &[("range", "1h")],
        fetch: DEPLOY_FETCH,
    },
    Page {
        path: "/knowledge",
        template: "knowledge.html",
        title_en: "Knowledge",
        title_zh: "知识库",
        section: "knowledge",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: &[
            get_when("search", "/api/knowledge/search?q={q}&limit=20", "q"),
            get_when(
                "search_tag",
                "/api/knowledge/search?q={q}&tag={tag}&limit=20",
                "tag",
            ),
            // `"context": {}` (no alert: the same answer as none) puts a `}` before the
            // placeholder, which the server's fill needs (see TEMPLATES_FETCH).
            post(
                "answer",
                "/api/knowledge/ask",
                r#"{"context": {}, "question": "{ask}"}"#,
                Some("ask"),
            ),
            // The alert pages link here with an alert's fingerprint: its runbooks.
            get_when(
                "linked",
                "/api/knowledge/link?fingerprint={fingerprint}",
                "fingerprint",
            ),
            get("entries", "/api/knowledge/entries"),
        ],
    },
    Page {
        path: "/knowledge/entry",
        template: "entry.html",
        title_en: "Knowledge entry",
        title_zh: "知识条目",
        section: "knowledge",
        nav: false,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: &[get_when("entry", "/api/knowledge/entries/{id}", "id")],
    },
    Page {
        path: "/knowledge/drafts",
        template: "drafts.html",
        title_en: "Drafts from incidents",
        title_zh: "事件草稿",
        section: "knowledge",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: &[get("drafts", "/api/knowledge/drafts")],
    },
    Page {
        path: "/workflows",
        template: "workflows.html",
        title_en: "Workflows",
        title_zh: "工作流",
        section: "automation",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: &[get("workflows", "/api/workflows")],
    },
    Page {
        path: "/workflows/{id}",
        template: "workflow.html",
        title_en: "Workflow",
        title_zh: "工作流详情",
        section: "automation",
        nav: false,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: &[
            get("workflow", "/api/workflows/{id}"),
            get("executions", "/api/workflows/{id}/executions"),
        ],
    },
    Page {
        path: "/executions/{*id}",
        template: "execution.html",
        title_en: "Execution",
        title_zh: "执行详情",
        section: "automation",
        nav: false,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: &[get("execution", "/api/workflows/executions/{id}")],
    },
    Page {
        path: "/approvals",
        template: "approvals.html",
        title_en: "Approvals",
        title_zh: "审批",
        section: "automation",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: APPROVALS_FETCH,
    },
    Page {
        path: "/autoheal",
        template: "autoheal.html",
        title_en: "Auto-heal",
        title_zh: "自愈",
        section: "automation",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: &[
            get("strategies", "/api/autoheal/strategies"),
            get("runs", "/api/workflows/autoheal/executions"),
        ],
    },
    Page {
        path: "/datasources",
        template: "datasources.html",
        title_en: "Data sources",
        title_zh: "数据源",
        section: "automation",
        nav: true,
        role: MinRole::Viewer,
        live_ms: 0,
        defaults: &[],
        fetch: &[get("datasources", "/api/datasources")],
    },
    Page {
        path: "/pipelines",
        template: "pipelines.html",
        title_en: "Pipelines",
        title_zh: "流水线",
        section: "automation",
        nav: true,
        role: MinRole::Viewer,
        live_ms: LIVE_MS,
        defaults: &[],
        fetch: &[
            get("pipelines", "/api/pipelines"),
            get("metrics", "/api/business-metrics"),
        ],
    },
    Page {
        path: "/admin",
        template: "admin.html",
        title_en: "Tokens and users",
        title_zh: "令牌与用户",
        section: "admin",
        nav: true,
        role: MinRole::Admin,
        live_ms: 0,
        defaults: &[],
        fetch: &[
            get("tokens", "/api/tokens"),
            get("users", "/api/console/users"),
        ],
    },
];

/// Their templates (`ops_*.html` are partials the pages include).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "ops_spark.html",
        include_str!("../../templates/ops_spark.html"),
    ),
    (
        "ops_bars.html",
        include_str!("../../templates/ops_bars.html"),
    ),
    (
        "ops_snippet.html",
        include_str!("../../templates/ops_snippet.html"),
    ),
    (
        "ops_exec_rows.html",
        include_str!("../../templates/ops_exec_rows.html"),
    ),
    ("logs.html", include_str!("../../templates/logs.html")),
    (
        "templates.html",
        include_str!("../../templates/templates.html"),
    ),
    (
        "log_analysis.html",
        include_str!("../../templates/log_analysis.html"),
    ),
    ("deploys.html", include_str!("../../templates/deploys.html")),
    ("deploy.html", include_str!("../../templates/deploy.html")),
    (
        "knowledge.html",
        include_str!("../../templates/knowledge.html"),
    ),
    ("entry.html", include_str!("../../templates/entry.html")),
    ("drafts.html", include_str!("../../templates/drafts.html")),
    (
        "workflows.html",
        include_str!("../../templates/workflows.html"),
    ),
    (
        "workflow.html",
        include_str!("../../templates/workflow.html"),
    ),
    (
        "execution.html",
        include_str!("../../templates/execution.html"),
    ),
    (
        "approvals.html",
        include_str!("../../templates/approvals.html"),
    ),
    (
        "autoheal.html",
        include_str!("../../templates/autoheal.html"),
    ),
    (
        "datasources.html",
        include_str!("../../templates/datasources.html"),
    ),
    (
        "pipelines.html",
        include_str!("../../templates/pipelines.html"),
    ),
    ("admin.html", include_str!("../../templates/admin.html")),
];
