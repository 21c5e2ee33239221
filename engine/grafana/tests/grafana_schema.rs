//! Every dashboard aiops generates — the overview and one per shipped pipeline — type-checks
//! against Grafana's published dashboard types (npm `@grafana/schema`, `Dashboard`) with the
//! TypeScript compiler, strict and with excess-property checks, so a misspelt or mistyped field
//! fails. Panel targets are checked as Grafana's SQL data source query model (`DataQuery` plus
//! `rawSql`, `format`, `rawQuery`, `editorMode`, as in `@grafana/sql`'s `SQLQuery`). A deliberately
//! broken dashboard must fail the same check, so the check itself is known to bite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_grafana::dashboard::{self, AlertDesc, ColumnKind, DataSourceRef, PipelineDesc};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned, so CI checks against the same published types every time.
const SCHEMA: &str = "@grafana/schema@13.2.3";
const TYPESCRIPT: &str = "typescript@5.9.3";

/// Installs the types and the compiler once per target directory (npm registry).
fn toolchain() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grafana-schema");
    let tsc = dir.join("node_modules/.bin/tsc");
    if !tsc.exists()
        || !dir
            .join("node_modules/@grafana/schema/package.json")
            .exists()
    {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), "{\"private\": true}").unwrap();
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                SCHEMA,
                TYPESCRIPT,
            ])
            .current_dir(&dir)
            .output()
            .expect("npm is needed for this test (scripts/install-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "npm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// The shipped pipelines as the dashboards see them (columns from compiling each file).
async fn shipped() -> Vec<PipelineDesc> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let mut out = Vec::new();
    for f in aiops_sql::pipeline::pipeline_files(&dir).unwrap() {
        let c = aiops_sql::check_file(&f)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let schema = aiops_sql::pipeline::derived_schema(&c.output_schema);
        let columns = schema
            .fields()
            .iter()
            .map(|fl| {
                (
                    fl.name().clone(),
                    ColumnKind::of_sql_type(fl.name(), &fl.data_type().to_string()),
                )
            })
            .collect();
        let alert = (c.output == "alerts").then(|| AlertDesc {
            alertname: c.name.clone(),
            severity: c.settings.severity.clone(),
            summary: c.settings.summary.clone(),
        });
        out.push(PipelineDesc {
            name: c.name,
            output: c.output,
            description: "shipped pipeline".into(),
            columns,
            alert,
        });
    }
    out
}

const PRELUDE: &str = r#"import type { Dashboard, Panel, RowPanel, DataQuery, AnnotationQuery } from '@grafana/schema';
import { ThresholdsMode } from '@grafana/schema';

// Grafana's SQL data sources (PostgreSQL among them) store this query model (@grafana/sql SQLQuery).
interface SQLQuery extends DataQuery {
  rawSql?: string;
  format?: 'time_series' | 'table';
  rawQuery?: boolean;
  editorMode?: 'code' | 'builder';
}
// The built-in "-- Grafana --" data source's annotation query (Grafana's GrafanaQuery): by tags.
interface GrafanaAnnotationTarget extends DataQuery {
  type?: 'tags' | 'dashboard';
  tags?: string[];
  limit?: number;
  matchAny?: boolean;
}
type SQLPanel = Omit<Panel, 'targets'> & { targets?: SQLQuery[] };
type AiopsDashboard = Omit<Dashboard, 'panels' | 'annotations'> & {
  panels?: Array<SQLPanel | RowPanel>;
  annotations?: { list?: Array<AnnotationQuery<GrafanaAnnotationTarget>> };
};
// Still a Dashboard where only the query models were made specific.
type Assignable = AiopsDashboard extends Omit<Dashboard, 'panels' | 'annotations'> ? true : never;
const assignable: Assignable = true;
void assignable;
"#;

fn check(tool: &Path, name: &str, dashboards: &[Value]) -> std::process::Output {
    let mut ts = PRELUDE.to_string();
    for (i, d) in dashboards.iter().enumerate() {
        ts.push_str(&format!(
            "export const d{i}: AiopsDashboard = {};\n",
            // String enums of the schema take their members, not the strings they stand for.
            serde_json::to_string_pretty(d).unwrap().replace(
                "\"mode\": \"absolute\"",
                "\"mode\": ThresholdsMode.Absolute"
            )
        ));
    }
    let file = tool.join(format!("{name}.ts"));
    std::fs::write(&file, ts).unwrap();
    Command::new(tool.join("node_modules/.bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--target",
            "es2020",
            "--moduleResolution",
            "node",
        ])
        .arg(&file)
        .current_dir(tool)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_dashboards_type_check_against_grafana_schema() {
    let tool = toolchain();
    let ds = DataSourceRef {
        uid: "aiops".into(),
        kind: "grafana-postgresql-datasource".into(),
    };
    let pipelines = shipped().await;
    assert!(
        pipelines.len() >= 10,
        "{} shipped pipelines",
        pipelines.len()
    );
    let mut all = vec![dashboard::overview_dashboard(&pipelines, &ds)];
    all.extend(pipelines.iter().map(|p| {
        dashboard::pipeline_dashboard(p, &ds)
            .unwrap_or_else(|| panic!("{} has no dashboard", p.name))
    }));
    let out = check(&tool, "aiops_dashboards", &all);
    assert!(
        out.status.success(),
        "generated dashboards do not type-check against {SCHEMA}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The check bites: a mistyped gridPos, an unknown field, a target field SQL queries lack.
    let mut cases = Vec::new();
    let mut bad = all[0].clone();
    bad["panels"][0]["gridPos"]["h"] = json!("eight");
    cases.push(("mistyped", bad, "not assignable to type 'number'"));
    let mut bad = all[0].clone();
    bad["refreshEvery"] = json!("1m");
    cases.push(("unknown_field", bad, "refreshEvery"));
    let mut bad = all[0].clone();
    bad["panels"][0]["targets"][0]["sqlText"] = json!("SELECT 1");
    cases.push(("unknown_target_field", bad, "sqlText"));
    for (name, d, want) in cases {
        let out = check(&tool, name, &[d]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.contains(want),
            "{name}: {text}"
        );
    }
}
