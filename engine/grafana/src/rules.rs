//! Grafana alert rules for aiops' SQL alert rules, in the shape of Grafana's provisioning API
//! (`/api/v1/provisioning/alert-rules`).
//!
//! A Grafana rule does not evaluate the pipeline's SQL a second time: it reads what aiops decided
//! (`alert_states`, one row per firing alert of the rule, its labels as columns), so Grafana and
//! aiops can never disagree about whether an alert fires, and replaying the log explains both.

use super::dashboard::{AlertDesc, literal, uid};
use serde_json::{Value, json};

/// Uid of the Grafana rule for pipeline `name`.
pub fn rule_uid(name: &str) -> String {
    uid("aiops-r-", name)
}

/// Where the rules go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTarget {
    /// Folder uid.
    pub folder_uid: String,
    /// Rule group.
    pub group: String,
    /// Data source uid.
    pub datasource_uid: String,
    /// Organisation id.
    pub org_id: i64,
}

/// The Grafana alert rule mirroring SQL alert rule `pipeline`.
pub fn grafana_rule(pipeline: &str, a: &AlertDesc, t: &RuleTarget) -> Value {
    let sql = format!(
        "SELECT fingerprint, coalesce(service, '') AS service, coalesce(severity, '') AS severity, 1.0 AS firing FROM alert_states WHERE source = 'aiops' AND alertname = {} AND status = 'firing'",
        literal(&a.alertname)
    );
    let mut labels = serde_json::Map::new();
    labels.insert("source".into(), json!("aiops"));
    labels.insert("aiops_rule".into(), json!(pipeline));
    if let Some(s) = &a.severity {
        labels.insert("severity".into(), json!(s));
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "description".into(),
        json!(format!(
            "Mirrors the aiops SQL alert rule `{pipeline}` (alertname {}); aiops evaluates it, Grafana shows it.",
            a.alertname
        )),
    );
    if let Some(s) = &a.summary {
        annotations.insert("summary".into(), json!(s));
    }
    json!({
        "uid": rule_uid(pipeline),
        "orgID": t.org_id,
        "folderUID": t.folder_uid,
        "ruleGroup": t.group,
        "title": a.alertname,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "queryType": "",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": t.datasource_uid,
                "model": {"refId": "A", "editorMode": "code", "format": "table", "rawQuery": true, "rawSql": sql, "intervalMs": 1000, "maxDataPoints": 43200},
            },
            {
                "refId": "B",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last", "datasource": {"type": "__expr__", "uid": "__expr__"}, "intervalMs": 1000, "maxDataPoints": 43200},
            },
            {
                "refId": "C",
                "queryType": "",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "C", "type": "threshold", "expression": "B", "conditions": [{"evaluator": {"type": "gt", "params": [0]}}], "datasource": {"type": "__expr__", "uid": "__expr__"}, "intervalMs": 1000, "maxDataPoints": 43200},
            },
        ],
        // aiops already applied `@for`; Grafana fires on the first evaluation that sees it.
        "for": "0s",
        "noDataState": "OK",
        "execErrState": "Error",
        "isPaused": false,
        "labels": labels,
        "annotations": annotations,
    })
}

/// The query of a rule (its `A` step), for checks.
pub fn rule_sql(rule: &Value) -> Option<&str> {
    rule["data"][0]["model"]["rawSql"].as_str()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rule_has_the_provisioning_api_shape() {
        let t = RuleTarget {
            folder_uid: "aiops".into(),
            group: "aiops".into(),
            datasource_uid: "aiops".into(),
            org_id: 1,
        };
        let a = AlertDesc {
            alertname: "Disk'Full".into(),
            severity: Some("warning".into()),
            summary: Some("{{host}} full".into()),
        };
        let r = grafana_rule("disk_full_predicted", &a, &t);
        for k in [
            "uid",
            "title",
            "ruleGroup",
            "folderUID",
            "condition",
            "data",
            "for",
            "noDataState",
            "execErrState",
        ] {
            assert!(!r[k].is_null(), "missing {k}");
        }
        assert_eq!(r["uid"], "aiops-r-disk_full_predicted");
        assert_eq!(r["labels"]["severity"], "warning");
        assert!(rule_sql(&r).unwrap().contains("alertname = 'Disk''Full'"));
        let refs: Vec<_> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["refId"].clone())
            .collect();
        assert_eq!(refs, vec![json!("A"), json!("B"), json!("C")]);
    }
}
