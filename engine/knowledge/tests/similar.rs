//! Similar past incidents and drafts from incidents.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_knowledge::{
    Command, IncidentDoc, KnowledgeBase, draft_from_incident, similar_incidents, validate,
};

fn inc(id: &str, resolved: bool, alerts: &[&str], services: &[&str], text: &str) -> IncidentDoc {
    IncidentDoc {
        id: id.into(),
        title: format!("incident {id}"),
        resolved,
        resolved_at_ms: resolved.then_some(1_000),
        alertnames: alerts.iter().map(|s| s.to_string()).collect(),
        services: services.iter().map(|s| s.to_string()).collect(),
        label_values: vec!["prod".into()],
        template_ids: Vec::new(),
        text: text.into(),
        root_cause: resolved.then(|| format!("root cause of {id}")),
        resolution: resolved.then(|| format!("fix of {id}")),
    }
}

#[test]
fn resolved_similar_incidents_rank_by_shared_alerts_and_services() {
    let target = inc(
        "now",
        false,
        &["DiskFull"],
        &["db"],
        "disk full on db-1 磁盘空间不足",
    );
    let past = vec![
        inc("now", true, &["DiskFull"], &["db"], "itself"),
        inc(
            "p1",
            true,
            &["DiskFull"],
            &["db"],
            "disk full on db-2 磁盘空间不足",
        ),
        inc("p2", true, &["DiskFull"], &["web"], "disk full on web-1"),
        inc("p3", false, &["DiskFull"], &["db"], "unresolved one"),
        inc("p4", true, &["HighLatency"], &["checkout"], "slow checkout"),
        inc("p5", true, &["CPUHigh"], &["db"], "cpu"),
    ];
    let got = similar_incidents(&target, &past, 5);
    let ids: Vec<&str> = got.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids[..2], ["p1", "p2"], "{got:?}");
    assert!(
        !ids.contains(&"now") && !ids.contains(&"p3") && !ids.contains(&"p4"),
        "{ids:?}"
    );
    assert!(got[0].shared.contains(&"alertname:DiskFull".to_string()));
    assert!(got[0].shared.contains(&"service:db".to_string()));
    assert_eq!(got[0].root_cause.as_deref(), Some("root cause of p1"));
    assert_eq!(got[0].resolution.as_deref(), Some("fix of p1"));
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
    // Never more than 5; deterministic.
    let many: Vec<IncidentDoc> = (0..9)
        .map(|i| inc(&format!("m{i}"), true, &["DiskFull"], &["db"], "disk"))
        .collect();
    let a = similar_incidents(&target, &many, 10);
    assert_eq!(a.len(), 5);
    assert_eq!(a, similar_incidents(&target, &many, 10));
    assert_eq!(a[0].id, "m0");
}

#[test]
fn a_draft_from_an_incident_is_a_valid_draft_entry_with_the_sections() {
    let mut doc = inc(
        "inc-42/x",
        true,
        &["DiskFull"],
        &["db"],
        "Disk full on db-1.",
    );
    doc.title = "Disk full on db-1".into();
    let timeline = vec![
        (
            1_796_342_460_000,
            "effect".to_string(),
            "ran cleanup-logs workflow".to_string(),
        ),
        (
            1_796_342_400_000,
            "alert".to_string(),
            "DiskFull firing".to_string(),
        ),
    ];
    let d = draft_from_incident(&doc, &timeline);
    validate(&d).unwrap();
    assert!(d.draft);
    assert_eq!(d.id, "drafts/inc-42_x");
    assert_eq!(d.links.alertnames, ["DiskFull"]);
    assert_eq!(d.links.services, ["db"]);
    for h in [
        "## Timeline",
        "## Root cause candidates",
        "## Remedy",
        "## What fixed it",
    ] {
        assert!(d.body.contains(h), "{h} missing:\n{}", d.body);
    }
    let t = d.body.find("2026-12-04T00:00:00Z [alert]").unwrap();
    let e = d.body.find("2026-12-04T00:01:00Z [effect]").unwrap();
    assert!(t < e, "timeline in time order");
    assert!(d.body.contains("fix of inc-42/x"));
    // A draft is hidden from search until published, and links nothing.
    let mut kb = KnowledgeBase::new();
    kb.apply(&Command::Put {
        entry: d,
        base_revision: Some(0),
        by: "incident".into(),
        at_ms: 1,
    })
    .unwrap();
    let q = aiops_knowledge::SearchQuery {
        text: "disk full".into(),
        limit: 5,
        ..Default::default()
    };
    assert!(kb.search(&q).unwrap().is_empty());
    let q = aiops_knowledge::SearchQuery {
        include_drafts: true,
        ..q
    };
    assert_eq!(kb.search(&q).unwrap()[0].entry_id, "drafts/inc-42_x");
}
