//! The deploy book: records from reports, verification windows and verdicts from samples,
//! rollbacks asked for once per attempt, approvals, incident notes, DORA figures, checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_deploy::book::{BookEvent, BookSettings, DeployBook, execution_id};
use aiops_deploy::judge::{Direction, MetricRule};
use aiops_deploy::logs::TemplateCount;
use aiops_deploy::risk::{FiringAlert, OpenIncident};
use aiops_deploy::verify::MetricSource;
use aiops_deploy::{DeployCommand, DeployError, Status, Verdict};
use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};

const T0: i64 = 1_790_000_000_000;
const WINDOW: i64 = 60_000;
const GRACE: i64 = 10_000;

fn metric(name: &str, critical: bool, weight: f64) -> MetricSource {
    MetricSource {
        output: "deploy_metrics_10s".into(),
        column: name.into(),
        service_column: "service".into(),
        version_column: "version".into(),
        rule: MetricRule {
            name: name.into(),
            direction: Direction::Increase,
            critical,
            weight,
            tolerance: 0.25,
            min_change: 0.001,
            ..MetricRule::default()
        },
    }
}

fn settings() -> BookSettings {
    let mut s = BookSettings::default();
    s.verify.window_ms = WINDOW;
    s.verify.grace_ms = GRACE;
    s.verify.metrics = vec![
        metric("error_ratio", true, 2.0),
        metric("latency", false, 1.0),
        metric("saturation", false, 1.0),
    ];
    s.rollback_workflow = Some("deploy-rollback".into());
    s
}

fn report(service: &str, version: &str, at: i64) -> DeployReport {
    DeployReport {
        source: "api".into(),
        service: service.into(),
        environment: "production".into(),
        version: version.into(),
        previous_version: Some("1.0".into()),
        strategy: DeployStrategy::Canary,
        status: SourceStatus::InProgress,
        at_ms: at,
        ..DeployReport::default()
    }
}

fn record(book: &mut DeployBook, id: &str, service: &str, at: i64, seq: u64) -> Vec<BookEvent> {
    book.apply(
        &DeployCommand::Report {
            report: report(service, "1.1", at),
            id: Some(id.into()),
            rollback_of: None,
            run_action: false,
        },
        at,
        seq,
    )
    .unwrap()
}

/// Feeds one sample per 5 s per metric for both versions over the window: `canary(m, i)` and
/// `stable(m, i)` give the values.
fn feed(
    book: &mut DeployBook,
    service: &str,
    from: i64,
    canary: impl Fn(usize, i64) -> f64,
    stable: impl Fn(usize, i64) -> f64,
) {
    for i in 0..(WINDOW / 5_000) {
        let t = from + i * 5_000;
        for m in 0..3 {
            book.on_sample(m, service, "1.1", t, canary(m, i));
            book.on_sample(m, service, "1.0", t, stable(m, i));
        }
    }
}

/// A small deterministic wobble so samples are not all tied.
fn wobble(i: i64, m: usize) -> f64 {
    (((i * 7919 + m as i64 * 104_729) % 97) as f64) / 97.0
}

fn base(m: usize) -> f64 {
    [0.01, 100.0, 0.4][m]
}

/// Log time reaches `t`, and the verdicts it derives are read back from the log (as the
/// processor does: it writes them, then applies them when it reads them).
fn tick(book: &mut DeployBook, t: i64) -> Vec<BookEvent> {
    let mut out = Vec::new();
    for e in book.on_time(t) {
        if let BookEvent::Verdict(v) = &e {
            out.extend(book.apply_verdict(v));
        }
        out.push(e);
    }
    out
}

fn runs(events: &[BookEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            BookEvent::RunWorkflow {
                workflow,
                request_id,
                ..
            } => Some((workflow.clone(), request_id.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_canary_is_verified_at_the_end_of_its_window_and_a_bad_one_is_rolled_back_once() {
    let mut book = DeployBook::new(settings());
    let ev = record(&mut book, "d1", "checkout", T0, 1);
    let d = book.get("d1").unwrap();
    assert_eq!(d.status, Status::Verifying);
    let v = d.verification.as_ref().unwrap();
    assert_eq!((v.window_start_ms, v.window_end_ms), (T0, T0 + WINDOW));
    assert!(matches!(&ev[..], [BookEvent::Changed { change, .. }] if change == "recorded"));
    // Bad canary: 5× the errors, 3× the latency.
    feed(
        &mut book,
        "checkout",
        T0,
        |m, i| base(m) * [5.0, 3.0, 1.0][m] * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 3, m)),
    );
    assert_eq!(book.next_deadline_ms(), Some(T0 + WINDOW + GRACE));
    // Not before the grace is over.
    assert!(tick(&mut book, T0 + WINDOW + GRACE - 1).is_empty());
    let ev = tick(&mut book, T0 + WINDOW + GRACE);
    let d = book.get("d1").unwrap();
    let decision = d.decision.as_ref().unwrap();
    assert_eq!(
        decision.verdict,
        Verdict::Rollback,
        "{:?}",
        decision.reasons
    );
    assert!(
        decision.reasons[0].contains("error_ratio"),
        "{:?}",
        decision.reasons
    );
    assert_eq!(d.status, Status::RollingBack);
    assert_eq!(d.verification.as_ref().unwrap().baseline, "canary");
    assert_eq!(
        runs(&ev),
        vec![("deploy-rollback".to_string(), "rollback/d1/1".to_string())]
    );
    // Time goes on: nothing is asked again; a person cannot start a second rollback.
    assert!(runs(&tick(&mut book, T0 + 10 * WINDOW)).is_empty());
    let again = book.apply(
        &DeployCommand::Rollback {
            id: "d1".into(),
            by: "alice".into(),
            reason: String::new(),
        },
        T0 + 11 * WINDOW,
        9,
    );
    assert!(matches!(again, Err(DeployError::Conflict(_))), "{again:?}");
    // The workflow finished: rolled back, final.
    let exec = execution_id("deploy-rollback", "rollback/d1/1");
    book.on_execution_finished(&exec, "succeeded", "ok", T0 + 12 * WINDOW);
    let d = book.get("d1").unwrap();
    assert_eq!(d.status, Status::RolledBack);
    assert_eq!(d.rollback.as_ref().unwrap().status, "succeeded");
    assert_eq!(d.finished_at_ms, Some(T0 + 12 * WINDOW));
    // An unrelated execution changes nothing.
    assert!(
        book.on_execution_finished("other/manual/x", "failed", "", T0)
            .is_empty()
    );
}

#[test]
fn a_good_canary_is_promoted_and_a_borderline_one_pauses_for_approval() {
    let mut book = DeployBook::new(settings());
    record(&mut book, "good", "a", T0, 1);
    record(&mut book, "border", "b", T0, 2);
    feed(
        &mut book,
        "a",
        T0,
        |m, i| base(m) * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    // Only the latency (not critical, weight 1 of 4) is worse: score 75, marginal.
    feed(
        &mut book,
        "b",
        T0,
        |m, i| base(m) * [1.0, 2.0, 1.0][m] * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    let ev = tick(&mut book, T0 + WINDOW + GRACE);
    let good = book.get("good").unwrap();
    assert_eq!(good.decision.as_ref().unwrap().verdict, Verdict::Promote);
    assert_eq!(good.status, Status::Promoted);
    let border = book.get("border").unwrap();
    let j = border
        .verification
        .as_ref()
        .unwrap()
        .judgement
        .as_ref()
        .unwrap();
    assert_eq!(
        border.decision.as_ref().unwrap().verdict,
        Verdict::Inconclusive
    );
    assert!((j.score - 75.0).abs() < 1e-9, "{j:?}");
    assert_eq!(border.status, Status::Paused);
    let rb = border.rollback.as_ref().unwrap();
    assert!(rb.approval_required);
    assert_eq!(rb.status, "awaiting_approval");
    // The rollback workflow is asked to run, with approval required, for the borderline only.
    assert_eq!(
        runs(&ev),
        vec![(
            "deploy-rollback".to_string(),
            "rollback/border/2".to_string()
        )]
    );
    // A person rejects the rollback: the version stays.
    let exec = execution_id("deploy-rollback", "rollback/border/2");
    book.on_execution_finished(&exec, "rejected", "keep it", T0 + 2 * WINDOW);
    let border = book.get("border").unwrap();
    assert_eq!(border.status, Status::Promoted);
    assert_eq!(border.rollback.as_ref().unwrap().status, "rejected");
}

#[test]
fn without_version_labels_the_baseline_is_the_window_before_the_deploy() {
    let mut s = settings();
    s.verify.metrics.truncate(1);
    let mut book = DeployBook::new(s);
    for i in 0..12 {
        book.on_sample(
            0,
            "api",
            "",
            T0 - WINDOW + i * 5_000,
            0.01 + 0.0001 * i as f64,
        );
    }
    let mut r = report("api", "2.0", T0);
    r.strategy = DeployStrategy::AllAtOnce;
    r.status = SourceStatus::Succeeded;
    book.apply(
        &DeployCommand::Report {
            report: r,
            id: None,
            rollback_of: None,
            run_action: false,
        },
        T0,
        42,
    )
    .unwrap();
    let id = book.by_seq(42).unwrap().id.clone();
    assert_eq!(id, "api-42");
    for i in 0..12 {
        book.on_sample(0, "api", "", T0 + i * 5_000, 0.2 + 0.001 * i as f64);
    }
    tick(&mut book, T0 + WINDOW + GRACE);
    let d = book.get(&id).unwrap();
    let v = d.verification.as_ref().unwrap();
    assert_eq!(v.baseline, "before");
    assert_eq!((v.baseline_start_ms, v.baseline_end_ms), (T0 - WINDOW, T0));
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Rollback);
}

#[test]
fn no_samples_means_not_verified_and_no_rollback() {
    let mut book = DeployBook::new(settings());
    record(&mut book, "quiet", "nobody", T0, 1);
    let ev = tick(&mut book, T0 + WINDOW + GRACE);
    let d = book.get("quiet").unwrap();
    assert_eq!(d.status, Status::Succeeded);
    assert!(d.decision.is_none());
    assert!(runs(&ev).is_empty());
}

#[test]
fn a_new_critical_alert_during_the_window_calls_for_a_rollback() {
    let mut book = DeployBook::new(settings());
    record(&mut book, "d", "pay", T0, 1);
    feed(
        &mut book,
        "pay",
        T0,
        |m, i| base(m) * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    // Seen before the deploy: not new.
    book.on_alert(alert("old", "pay", "critical"), true, T0 - 1);
    book.on_alert(alert("new", "pay", "critical"), true, T0 + 1_000);
    tick(&mut book, T0 + WINDOW + GRACE);
    let d = book.get("d").unwrap();
    let decision = d.decision.as_ref().unwrap();
    assert_eq!(decision.verdict, Verdict::Rollback);
    let signals = &d.verification.as_ref().unwrap().signals;
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert!(signals[0].detail.contains("HighErrors"));
    assert!(signals[0].detail.contains("(new)"));
}

fn alert(fp: &str, service: &str, severity: &str) -> FiringAlert {
    FiringAlert {
        fingerprint: fp.into(),
        alertname: "HighErrors".into(),
        severity: severity.into(),
        service: service.into(),
    }
}

#[test]
fn a_person_can_roll_back_and_a_failed_rollback_can_be_retried_with_a_new_request() {
    let mut s = settings();
    s.verify.metrics.clear();
    s.rollback_approval_environments = vec!["production".into()];
    let mut book = DeployBook::new(s);
    let mut r = report("web", "3", T0);
    r.status = SourceStatus::Succeeded;
    book.apply(
        &DeployCommand::Report {
            report: r,
            id: Some("w".into()),
            rollback_of: None,
            run_action: false,
        },
        T0,
        1,
    )
    .unwrap();
    assert_eq!(book.get("w").unwrap().status, Status::Succeeded);
    let rb = |book: &mut DeployBook, at| {
        book.apply(
            &DeployCommand::Rollback {
                id: "w".into(),
                by: "alice".into(),
                reason: "errors".into(),
            },
            at,
            2,
        )
    };
    let ev = rb(&mut book, T0 + 1).unwrap();
    assert_eq!(
        runs(&ev),
        vec![("deploy-rollback".into(), "rollback/w/1".into())]
    );
    // Production: the rollback waits for an approval; asking again while it waits is refused.
    assert_eq!(book.get("w").unwrap().status, Status::Paused);
    assert!(
        matches!(rb(&mut book, T0 + 2), Err(DeployError::Conflict(m)) if m.contains("approve"))
    );
    book.on_execution_finished(
        &execution_id("deploy-rollback", "rollback/w/1"),
        "failed",
        "webhook 500",
        T0 + 3,
    );
    assert_eq!(book.get("w").unwrap().status, Status::Failed);
    let ev = rb(&mut book, T0 + 4).unwrap();
    assert_eq!(
        runs(&ev),
        vec![("deploy-rollback".into(), "rollback/w/1/1".into())]
    );
    assert!(matches!(
        book.apply(
            &DeployCommand::Rollback {
                id: "nope".into(),
                by: "a".into(),
                reason: String::new()
            },
            T0,
            3
        ),
        Err(DeployError::NotFound(_))
    ));
}

#[test]
fn hostile_reports_are_refused_and_change_nothing() {
    let mut book = DeployBook::new(settings());
    let bad = |f: &dyn Fn(&mut DeployReport)| {
        let mut r = report("svc", "1", T0);
        f(&mut r);
        r
    };
    let cases: Vec<(DeployReport, Option<&str>)> = vec![
        (bad(&|r| r.service = String::new()), None),
        (bad(&|r| r.service = "x".repeat(300)), None),
        (bad(&|r| r.version = "1\n2".into()), None),
        (bad(&|r| r.environment = " ".into()), None),
        (report("svc", "1", T0), Some("a/b")),
        (report("svc", "1", T0), Some("")),
    ];
    for (i, (r, id)) in cases.into_iter().enumerate() {
        let res = book.apply(
            &DeployCommand::Report {
                report: r,
                id: id.map(str::to_string),
                rollback_of: None,
                run_action: false,
            },
            T0,
            i as u64,
        );
        assert!(matches!(res, Err(DeployError::Invalid(_))), "{i}: {res:?}");
    }
    assert!(book.is_empty());
    // A report for an existing id with another service is a conflict, not an overwrite.
    record(&mut book, "d", "svc", T0, 10);
    let res = book.apply(
        &DeployCommand::Report {
            report: report("other", "1", T0),
            id: Some("d".into()),
            rollback_of: None,
            run_action: false,
        },
        T0,
        11,
    );
    assert!(matches!(res, Err(DeployError::Conflict(_))), "{res:?}");
    assert_eq!(book.get("d").unwrap().service, "svc");
}

#[test]
fn the_same_source_deploy_is_one_record_and_its_status_updates_it() {
    let mut s = settings();
    s.verify.metrics.clear();
    let mut book = DeployBook::new(s);
    let mut r = report("svc", "9", T0);
    r.source = "github".into();
    r.external_id = Some("123".into());
    r.strategy = DeployStrategy::AllAtOnce;
    r.status = SourceStatus::Pending;
    let cmd = |r: DeployReport| DeployCommand::Report {
        report: r,
        id: None,
        rollback_of: None,
        run_action: false,
    };
    book.apply(&cmd(r.clone()), T0, 1).unwrap();
    assert_eq!(book.len(), 1);
    let id = book.by_seq(1).unwrap().id.clone();
    assert_eq!(id, "github-123");
    assert_eq!(book.get(&id).unwrap().status, Status::InProgress);
    r.status = SourceStatus::Failed;
    book.apply(&cmd(r), T0 + 5, 2).unwrap();
    assert_eq!(book.len(), 1);
    let d = book.get(&id).unwrap();
    assert_eq!(d.status, Status::Failed);
    assert_eq!(d.source_status, SourceStatus::Failed);
}

#[test]
fn incidents_get_notes_of_recent_deploys_and_of_verdicts() {
    let mut book = DeployBook::new(settings());
    record(&mut book, "d", "pay", T0, 1);
    let inc = OpenIncident {
        id: "INC-1".into(),
        title: "errors".into(),
        severity: "critical".into(),
        services: vec!["pay".into()],
    };
    let notes = book.on_incident(inc, true, true, T0 + 5_000);
    assert!(
        matches!(&notes[..], [BookEvent::Note { incident, text }] if incident == "INC-1" && text.contains("deploy d of pay 1.0 → 1.1")),
        "{notes:?}"
    );
    feed(
        &mut book,
        "pay",
        T0,
        |m, i| base(m) * [5.0, 1.0, 1.0][m] * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    let ev = tick(&mut book, T0 + WINDOW + GRACE);
    let texts: Vec<&str> = ev
        .iter()
        .filter_map(|e| match e {
            BookEvent::Note { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("verdict rollback")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("rollback asked for")),
        "{texts:?}"
    );
}

#[test]
fn a_checkpoint_continues_exactly_like_the_book_it_was_taken_from() {
    let mut a = DeployBook::new(settings());
    record(&mut a, "x", "s", T0, 1);
    feed(
        &mut a,
        "s",
        T0,
        |m, i| base(m) * [5.0, 1.0, 1.0][m] * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    let mut b = DeployBook::restore(settings(), &a.snapshot().unwrap()).unwrap();
    let ea = a.on_time(T0 + WINDOW + GRACE);
    let eb = b.on_time(T0 + WINDOW + GRACE);
    assert_eq!(ea, eb);
    assert_eq!(a.snapshot().unwrap(), b.snapshot().unwrap());
}

#[test]
fn dora_counts_frequency_failures_and_time_to_restore() {
    let mut s = settings();
    s.verify.metrics.clear();
    s.lookback_ms = 86_400_000;
    let mut book = DeployBook::new(s);
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let mut r = report("svc", &format!("{i}"), T0 + i as i64 * 1_000);
        r.status = SourceStatus::Succeeded;
        book.apply(
            &DeployCommand::Report {
                report: r,
                id: Some((*id).into()),
                rollback_of: None,
                run_action: false,
            },
            T0 + i as i64 * 1_000,
            i as u64,
        )
        .unwrap();
    }
    book.apply(
        &DeployCommand::Rollback {
            id: "b".into(),
            by: "ops".into(),
            reason: String::new(),
        },
        T0 + 10_000,
        10,
    )
    .unwrap();
    book.on_execution_finished(
        &execution_id("deploy-rollback", "rollback/b/1"),
        "succeeded",
        "",
        T0 + 70_000,
    );
    let dora = book.dora();
    let f = &dora["svc"];
    assert_eq!(f.deploys, 4);
    assert_eq!(f.failed, 1);
    assert_eq!(f.change_failure_rate, Some(0.25));
    assert!((f.deployment_frequency_per_day - 4.0).abs() < 1e-9);
    // From the rollback asked for (the failure was known) to the rollback finished.
    assert_eq!(f.time_to_restore_ms, Some(60_000));
}

#[test]
fn metric_settings_read_from_toml_like_json_and_refuse_unknown_fields() {
    let ok: MetricSource = serde_json::from_value(serde_json::json!({
        "output": "o", "column": "c", "name": "n", "critical": true, "weight": 2.0
    }))
    .unwrap();
    assert!(ok.rule.critical);
    assert_eq!(ok.service_column, "service");
    let bad = serde_json::from_value::<MetricSource>(serde_json::json!({
        "output": "o", "column": "c", "name": "n", "wieght": 2.0
    }));
    assert!(bad.is_err());
}

#[test]
fn a_verdict_read_back_after_a_person_rolled_back_changes_nothing() {
    let mut book = DeployBook::new(settings());
    record(&mut book, "d", "s", T0, 1);
    feed(
        &mut book,
        "s",
        T0,
        |m, i| base(m) * [5.0, 1.0, 1.0][m] * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    // The verdict is derived (written to the log) …
    let proposed = book.on_time(T0 + WINDOW + GRACE);
    let [BookEvent::Verdict(v)] = &proposed[..] else {
        panic!("{proposed:?}")
    };
    // … not derived twice while it waits to be read back …
    assert!(book.on_time(T0 + WINDOW + GRACE + 1).is_empty());
    assert_eq!(book.next_deadline_ms(), None);
    // … and a person's rollback lands in the log before it.
    let ev = book
        .apply(
            &DeployCommand::Rollback {
                id: "d".into(),
                by: "alice".into(),
                reason: "now".into(),
            },
            T0 + WINDOW + GRACE + 2,
            5,
        )
        .unwrap();
    assert_eq!(runs(&ev).len(), 1);
    assert!(book.apply_verdict(v).is_empty());
    assert_eq!(book.get("d").unwrap().status, Status::RollingBack);
}

#[test]
fn the_deploy_action_ending_after_a_rollback_does_not_restart_verification() {
    let mut s = settings();
    s.deploy_workflow = Some("deploy-run".into());
    let mut book = DeployBook::new(s);
    let mut r = report("s", "2", T0);
    r.status = SourceStatus::Pending;
    let ev = book
        .apply(
            &DeployCommand::Report {
                report: r,
                id: Some("d".into()),
                rollback_of: None,
                run_action: true,
            },
            T0,
            3,
        )
        .unwrap();
    assert_eq!(runs(&ev), vec![("deploy-run".into(), "deploy/d/3".into())]);
    book.apply(
        &DeployCommand::Rollback {
            id: "d".into(),
            by: "bob".into(),
            reason: String::new(),
        },
        T0 + 1,
        4,
    )
    .unwrap();
    book.on_execution_finished(
        &execution_id("deploy-run", "deploy/d/3"),
        "succeeded",
        "",
        T0 + 2,
    );
    let d = book.get("d").unwrap();
    assert_eq!(d.status, Status::RollingBack);
    assert!(d.verification.is_none());
    // A source saying the old deployment is now inactive does not cancel the rollback either.
    let mut r = report("s", "2", T0);
    r.status = SourceStatus::Cancelled;
    book.apply(
        &DeployCommand::Report {
            report: r,
            id: Some("d".into()),
            rollback_of: None,
            run_action: false,
        },
        T0 + 3,
        5,
    )
    .unwrap();
    assert_eq!(book.get("d").unwrap().status, Status::RollingBack);
}

#[test]
fn hostile_times_neither_panic_nor_open_windows_in_the_past() {
    for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        let mut book = DeployBook::new(settings());
        book.apply(
            &DeployCommand::Report {
                report: report("s", "1.1", t),
                id: Some("d".into()),
                rollback_of: None,
                run_action: false,
            },
            T0,
            1,
        )
        .unwrap();
        let d = book.get("d").unwrap();
        // Never after the log's time, never more than a week before it.
        assert!(
            d.started_at_ms <= T0 && d.started_at_ms >= T0 - 7 * 86_400_000,
            "{t}"
        );
        tick(&mut book, T0 + WINDOW + GRACE);
        // The log's own time being absurd does not panic either.
        record(&mut book, "e", "s", t, 2);
        tick(&mut book, i64::MAX);
        let _ = book.dora();
    }
}

#[test]
fn a_freeze_refuses_what_aiops_is_asked_to_do_and_flags_what_a_source_reports_done() {
    let mut s = settings();
    s.risk.freezes = vec![aiops_deploy::risk::Freeze {
        name: "year-end".into(),
        from: "2020-01-01T00:00:00Z".into(),
        until: "2099-01-01T00:00:00Z".into(),
        environments: vec!["production".into()],
        services: vec![],
    }];
    let mut book = DeployBook::new(s);
    let cmd = |r: DeployReport| DeployCommand::Report {
        report: r,
        id: None,
        rollback_of: None,
        run_action: false,
    };
    let refused = book.apply(&cmd(report("s", "2", T0)), T0, 1);
    assert!(
        matches!(&refused, Err(DeployError::Refused(m)) if m.contains("year-end")),
        "{refused:?}"
    );
    // Dating the deploy before the freeze does not get around it: the policy is judged at log
    // time.
    let mut early = report("s", "2", 1_000);
    early.at_ms = 1_500_000_000_000;
    assert!(book.apply(&cmd(early), T0, 2).is_err());
    assert!(book.is_empty());
    let mut gh = report("s", "2", T0);
    gh.source = "github".into();
    gh.external_id = Some("7".into());
    book.apply(&cmd(gh), T0, 3).unwrap();
    let d = book.get("github-7").unwrap();
    assert!(d.history[0].reason.contains("year-end"), "{:?}", d.history);
}

/// The template miner's bucket holding `T0` (its buckets start on whole minutes; `T0` does not).
const M0: i64 = T0 - T0.rem_euclid(60_000);

/// One template count row of the one-minute bucket starting at `at`.
fn logs(
    book: &mut DeployBook,
    service: &str,
    id: &str,
    text: &str,
    at: i64,
    lines: u64,
    errors: u64,
) {
    book.on_log_count(&TemplateCount {
        window_start_ms: at,
        window_ms: 60_000,
        service,
        template_id: id,
        template: text,
        lines,
        errors,
    });
}

/// The service's usual log lines in the three buckets before the deploy's.
fn usual_logs(book: &mut DeployBook, service: &str) {
    for k in 1..=3 {
        let at = M0 - k * 60_000;
        logs(book, service, "1", "GET <*> 200", at, 500, 0);
        logs(book, service, "2", "db timeout after <*> ms", at, 3, 3);
    }
}

/// A good canary (every metric passes) deployed at `T0` (20 s into a miner bucket) with the
/// usual log lines before; `extra` adds log counts after the deploy.
fn good_canary_with_logs(
    settings: BookSettings,
    extra: impl Fn(&mut DeployBook),
) -> aiops_deploy::Deploy {
    let mut book = DeployBook::new(settings);
    usual_logs(&mut book, "web");
    record(&mut book, "d", "web", T0, 1);
    feed(
        &mut book,
        "web",
        T0,
        |m, i| base(m) * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    extra(&mut book);
    tick(&mut book, T0 + WINDOW + GRACE);
    book.get("d").unwrap().clone()
}

#[test]
fn logs_as_usual_leave_a_good_canary_promoted() {
    let d = good_canary_with_logs(settings(), |b| {
        for at in [M0, M0 + 60_000] {
            logs(b, "web", "1", "GET <*> 200", at, 510, 0);
            logs(b, "web", "2", "db timeout after <*> ms", at, 4, 4);
        }
    });
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Promote);
    assert!(d.verification.as_ref().unwrap().signals.is_empty());
}

#[test]
fn a_new_log_template_without_errors_is_shown_and_changes_nothing() {
    let d = good_canary_with_logs(settings(), |b| {
        logs(b, "web", "3", "feature flag <*> enabled", M0 + 60_000, 7, 0);
        // Another service's new template is not this deploy's.
        logs(b, "api", "9", "panic: <*>", M0 + 60_000, 50, 50);
    });
    let decision = d.decision.as_ref().unwrap();
    assert_eq!(decision.verdict, Verdict::Promote, "{:?}", decision.reasons);
    let signals = &d.verification.as_ref().unwrap().signals;
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0].kind, "new_log_template");
    assert!(signals[0].informational);
    assert!(signals[0].detail.contains("feature flag <*> enabled"));
    assert!(!decision.reasons.iter().any(|r| r.contains("feature flag")));
}

#[test]
fn a_new_error_template_in_the_deploys_own_bucket_makes_a_promote_inconclusive() {
    // The new version fails at start: its lines fall in the miner bucket that began 20 s
    // before the deploy (and before the verification window).
    let d = good_canary_with_logs(settings(), |b| {
        logs(b, "web", "3", "NullPointerException in <*>", M0, 4, 4);
    });
    let decision = d.decision.as_ref().unwrap();
    assert_eq!(decision.verdict, Verdict::Inconclusive);
    assert_eq!(d.status, Status::Paused);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.contains("NullPointerException") && r.contains("4 of them errors")),
        "{:?}",
        decision.reasons
    );
    // With a warm-up before the window the same line still counts: it came after the deploy.
    let mut s = settings();
    s.verify.delay_ms = 30_000;
    let d = good_canary_with_logs(s, |b| {
        logs(b, "web", "3", "NullPointerException in <*>", M0, 4, 4);
    });
    let mut book_settings = settings();
    book_settings.verify.delay_ms = 30_000;
    assert_eq!(
        d.status,
        Status::Verifying,
        "the window closes later with a delay"
    );
    let mut book = DeployBook::new(book_settings);
    usual_logs(&mut book, "web");
    record(&mut book, "d", "web", T0, 1);
    feed(
        &mut book,
        "web",
        T0 + 30_000,
        |m, i| base(m) * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    logs(
        &mut book,
        "web",
        "3",
        "NullPointerException in <*>",
        M0,
        4,
        4,
    );
    tick(&mut book, T0 + 30_000 + WINDOW + GRACE);
    let d = book.get("d").unwrap();
    assert_eq!(
        d.decision.as_ref().unwrap().verdict,
        Verdict::Inconclusive,
        "{:?}",
        d.decision
    );
}

#[test]
fn an_error_surge_makes_a_promote_inconclusive_or_rolls_back_when_critical() {
    // 3 error lines a minute before the deploy; 40 in its bucket (2 buckets to the window's
    // end: 20 a minute).
    let surge =
        |n: u64| move |b: &mut DeployBook| logs(b, "web", "2", "db timeout after <*> ms", M0, n, n);
    let d = good_canary_with_logs(settings(), surge(40));
    let decision = d.decision.as_ref().unwrap();
    assert_eq!(
        decision.verdict,
        Verdict::Inconclusive,
        "{:?}",
        decision.reasons
    );
    assert!(
        decision.reasons.iter().any(|r| r.contains(
            "error log lines surged: 40 in 2 min since the deploy, 3 in 1 min before it"
        )),
        "{:?}",
        decision.reasons
    );
    // Below the minimum: no surge.
    let d = good_canary_with_logs(settings(), surge(8));
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Promote);
    // Critical ratio set: 80 lines (40 a minute, 13× the baseline) roll back, 40 do not.
    let mut s = settings();
    s.logs.error_surge_critical_ratio = 10.0;
    let d = good_canary_with_logs(s.clone(), surge(80));
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Rollback);
    assert!(d.verification.as_ref().unwrap().signals[0].critical);
    let d = good_canary_with_logs(s, surge(40));
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Inconclusive);
    // The same bucket counted twice (a miner that rebuilt re-appends it) is one bucket.
    let d = good_canary_with_logs(settings(), |b| {
        surge(6)(b);
        surge(6)(b);
        logs(b, "web", "2", "db timeout after <*> ms", M0 + 60_000, 6, 6);
    });
    assert_eq!(
        d.decision.as_ref().unwrap().verdict,
        Verdict::Promote,
        "12 errors in 2 min is 6 a minute: under 3× the baseline of 3"
    );
}

#[test]
fn without_log_history_before_the_baseline_nothing_is_new() {
    // The service's first log lines arrive after the deploy: everything would look new.
    let mut book = DeployBook::new(settings());
    record(&mut book, "d", "fresh", T0, 1);
    feed(
        &mut book,
        "fresh",
        T0,
        |m, i| base(m) * (1.0 + 0.1 * wobble(i, m)),
        |m, i| base(m) * (1.0 + 0.1 * wobble(i + 5, m)),
    );
    logs(&mut book, "fresh", "1", "ERROR boot <*>", M0, 100, 100);
    tick(&mut book, T0 + WINDOW + GRACE);
    let d = book.get("d").unwrap();
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Promote);
    assert!(d.verification.as_ref().unwrap().signals.is_empty());
}

#[test]
fn services_are_told_apart_even_when_one_name_starts_like_another() {
    let d = good_canary_with_logs(settings(), |b| {
        usual_logs(b, "web\0x");
        logs(b, "web\0x", "7", "segfault at <*>", M0, 9, 9);
        logs(b, "web-x", "8", "segfault at <*>", M0, 9, 9);
    });
    assert_eq!(d.decision.as_ref().unwrap().verdict, Verdict::Promote);
    assert!(d.verification.as_ref().unwrap().signals.is_empty());
}

#[test]
fn log_history_is_bounded_by_time_and_survives_a_checkpoint() {
    let mut book = DeployBook::new(settings());
    logs(&mut book, "web", "1", "GET <*> 200", T0 - 2 * WINDOW, 5, 0);
    let snap = book.snapshot().unwrap();
    let restored = DeployBook::restore(settings(), &snap).unwrap();
    assert_eq!(restored.snapshot().unwrap(), snap);
    // A checkpoint written before log signals existed has no `logs` field.
    let mut v: serde_json::Value = serde_json::from_slice(&snap).unwrap();
    v.as_object_mut().unwrap().remove("logs").unwrap();
    let old = serde_json::to_vec(&v).unwrap();
    assert!(DeployBook::restore(settings(), &old).is_ok());
    // A week and an hour later the template is forgotten (the snapshot shrinks back).
    let empty = DeployBook::new(settings()).snapshot().unwrap().len();
    tick(&mut book, T0 + aiops_deploy::logs::HISTORY_MS + 3_600_000);
    let later = book.snapshot().unwrap();
    assert!(
        !String::from_utf8_lossy(&later).contains("GET <*> 200"),
        "forgotten after the history horizon"
    );
    assert!(later.len() < empty + 100, "{} vs {empty}", later.len());
    // Default log settings are not in the serialized settings (the checkpoint hash of a
    // default configuration is the previous release's).
    let text = serde_json::to_string(&settings()).unwrap();
    assert!(!text.contains("error_surge"), "{text}");
    let mut s = settings();
    s.logs.error_surge_min = 20;
    assert!(
        serde_json::to_string(&s)
            .unwrap()
            .contains("error_surge_min")
    );
    s.logs.error_surge_min = 0;
    assert!(s.logs.validate().unwrap_err().contains("error_surge_min"));
}

#[test]
fn a_verdict_written_before_informational_signals_existed_reads() {
    let text = r#"{"kind":"new_alert","detail":"alert X fired","critical":true}"#;
    let s: aiops_deploy::record::Signal = serde_json::from_str(text).unwrap();
    assert!(s.critical && !s.informational);
}
