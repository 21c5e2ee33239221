//! The alerting engine against Alertmanager's documented behaviour: grouping timings, inhibition,
//! silences, storm budgets, flapping, stale alerts, incidents, and determinism across
//! checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_alerting::decision::{Change, Decision, Notification};
use aiops_alerting::matcher::Matcher;
use aiops_alerting::model::{Alert, Labels, Status};
use aiops_alerting::silence::Silence;
use aiops_alerting::{AlertEngine, AlertingConfig, Control};

const S: i64 = 1000;
/// A base time (2026-11-24T00:00:00Z) so wall-clock-like values are used.
const T0: i64 = 1_795_478_400_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(pairs: &[(&str, &str)], status: Status, starts_at_ms: i64, source: &str) -> Alert {
    let l = labels(pairs);
    Alert {
        fingerprint: String::new(),
        name: l.get("alertname").cloned().unwrap_or_default(),
        status,
        severity: l.get("severity").cloned().unwrap_or_default(),
        service: l.get("service").cloned().unwrap_or_default(),
        labels: l,
        annotations: Labels::new(),
        starts_at_ms,
        ends_at_ms: None,
        source: source.into(),
        generator_url: None,
    }
}

fn notifications(ds: &[Decision]) -> Vec<&Notification> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Notification(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Firing instances of a notification, sorted (alerts are ordered by fingerprint).
fn names(n: &Notification) -> Vec<String> {
    let mut v: Vec<String> = n
        .firing
        .iter()
        .map(|a| a.labels.get("instance").cloned().unwrap_or_default())
        .collect();
    v.sort();
    v
}

const TIMINGS: &str = r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers: [{name: r}]
"#;

/// A scripted run: events at offsets (seconds from T0), then notification times and contents.
enum Ev {
    Fire(i64, &'static str),
    /// Fire with a start time this many seconds before the observation.
    FireOld(i64, &'static str, i64),
    Resolve(i64, &'static str),
    /// Re-send every `every` seconds from `from` to `to` (Alertmanager webhooks, Prometheus).
    Keep(i64, i64, i64, &'static str),
}

/// Runs `evs` to `end` seconds and returns (seconds, reason, firing instances, resolved count).
/// A notification as the cases write it: (seconds, reason, firing instances, resolved count).
type Sent = (i64, String, Vec<String>, usize);

fn run(cfg: &str, evs: &[Ev], end: i64) -> Vec<Sent> {
    let mut e = AlertEngine::new(AlertingConfig::parse(cfg).unwrap());
    let mut timeline: Vec<(i64, Alert)> = Vec::new();
    let mk = |inst: &str, st: Status, start: i64| {
        alert(
            &[("alertname", "HighLatency"), ("instance", inst)],
            st,
            start,
            "alertmanager",
        )
    };
    for ev in evs {
        match ev {
            Ev::Fire(t, i) => timeline.push((*t, mk(i, Status::Firing, T0 + t * S))),
            Ev::FireOld(t, i, age) => {
                timeline.push((*t, mk(i, Status::Firing, T0 + (t - age) * S)))
            }
            Ev::Resolve(t, i) => timeline.push((*t, mk(i, Status::Resolved, T0))),
            Ev::Keep(from, to, every, i) => {
                let mut t = *from;
                while t <= *to {
                    timeline.push((t, mk(i, Status::Firing, T0 + from * S)));
                    t += every;
                }
            }
        }
    }
    timeline.sort_by_key(|(t, _)| *t);
    let mut out = Vec::new();
    for (t, a) in timeline {
        out.extend(e.observe(T0 + t * S, vec![a]));
    }
    out.extend(e.advance(T0 + end * S));
    notifications(&out)
        .into_iter()
        .map(|n| {
            (
                (n.at_ms - T0) / S,
                n.reason.clone(),
                names(n),
                n.resolved.len(),
            )
        })
        .collect()
}

fn f(t: i64, reason: &str, firing: &[&str], resolved: usize) -> Sent {
    (
        t,
        reason.to_string(),
        firing.iter().map(|s| s.to_string()).collect(),
        resolved,
    )
}

/// Cases written from Alertmanager's documentation of `group_wait` ("how long to initially wait
/// to send a notification for a group"), `group_interval` ("how long to wait before sending a
/// notification about new alerts that are added to a group … for which an initial notification
/// has already been sent") and `repeat_interval` ("how long to wait before sending a notification
/// again if it has already been sent successfully").
#[test]
fn group_timings_follow_alertmanager() {
    use Ev::*;
    let cases: Vec<(&str, Vec<Ev>, i64, Vec<Sent>)> = vec![
        (
            "first notification waits group_wait, not less",
            vec![Fire(0, "a")],
            29,
            vec![],
        ),
        (
            "first notification at group_wait",
            vec![Fire(0, "a")],
            30,
            vec![f(30, "new", &["a"], 0)],
        ),
        (
            "alerts arriving during group_wait go out together",
            vec![Fire(0, "a"), Fire(10, "b"), Fire(29, "c")],
            100,
            vec![f(30, "new", &["a", "b", "c"], 0)],
        ),
        (
            "a new alert after the first notification waits for group_interval",
            vec![Keep(0, 400, 60, "a"), Fire(60, "b")],
            400,
            vec![f(30, "new", &["a"], 0), f(330, "new", &["a", "b"], 0)],
        ),
        (
            "nothing new: no notification at group_interval",
            vec![Keep(0, 700, 60, "a")],
            700,
            vec![f(30, "new", &["a"], 0)],
        ),
        (
            "a resolved alert is notified at the next group_interval flush",
            vec![Fire(0, "a"), Fire(0, "b"), Resolve(100, "a")],
            400,
            vec![f(30, "new", &["a", "b"], 0), f(330, "resolved", &["b"], 1)],
        ),
        (
            "all resolved: one resolved notification, then the group is gone",
            vec![Fire(0, "a"), Resolve(100, "a")],
            1000,
            vec![f(30, "new", &["a"], 0), f(330, "resolved", &[], 1)],
        ),
        (
            "firing again after the group was removed starts a new group_wait",
            vec![Fire(0, "a"), Resolve(100, "a"), Fire(400, "a")],
            1000,
            vec![
                f(30, "new", &["a"], 0),
                f(330, "resolved", &[], 1),
                f(430, "new", &["a"], 0),
            ],
        ),
        (
            "fired and resolved within group_wait: nothing to tell",
            vec![Fire(0, "a"), Resolve(10, "a")],
            1000,
            vec![],
        ),
        (
            "an alert whose own group_wait is already over is sent at once",
            vec![FireOld(0, "a", 120)],
            10,
            vec![f(0, "new", &["a"], 0)],
        ),
        (
            "repeat_interval: unchanged group repeated at the first flush 4h after the last send",
            // Flushes at 30 + k·300 s; the first with last send (30 s) older than 4 h is k = 49.
            vec![Keep(0, 15_000, 60, "a")],
            15_000,
            vec![f(30, "new", &["a"], 0), f(14_730, "repeat", &["a"], 0)],
        ),
    ];
    for (what, evs, end, want) in cases {
        assert_eq!(run(TIMINGS, &evs, end), want, "{what}");
    }
}

#[test]
fn group_by_splits_groups_and_continue_routes_to_both() {
    let cfg = r#"
route:
  receiver: all
  group_by: [service]
  group_wait: 10s
  routes:
    - receiver: audit
      continue: true
      matchers: ['severity="critical"']
    - receiver: db
      matchers: ['service="db"']
receivers: [{name: all}, {name: audit}, {name: db}]
"#;
    let mut e = AlertEngine::new(AlertingConfig::parse(cfg).unwrap());
    let mut out = e.observe(
        T0,
        vec![
            alert(
                &[
                    ("alertname", "X"),
                    ("service", "db"),
                    ("severity", "critical"),
                ],
                Status::Firing,
                T0,
                "api",
            ),
            alert(
                &[
                    ("alertname", "X"),
                    ("service", "web"),
                    ("severity", "warning"),
                ],
                Status::Firing,
                T0,
                "api",
            ),
        ],
    );
    out.extend(e.advance(T0 + 10 * S));
    let mut got: Vec<(String, String)> = notifications(&out)
        .iter()
        .map(|n| (n.receiver.clone(), n.group_labels["service"].clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("all".into(), "web".into()),
            ("audit".into(), "db".into()),
            ("db".into(), "db".into())
        ]
    );
}

#[test]
fn a_firing_critical_inhibits_the_matching_warning_with_equal_labels() {
    // The default configuration inhibits warnings by criticals with equal alertname, service and
    // instance.
    let cfg = AlertingConfig::default();
    let mut e = AlertEngine::new(cfg);
    let crit = |st| {
        alert(
            &[
                ("alertname", "Disk"),
                ("service", "db"),
                ("instance", "h1"),
                ("severity", "critical"),
            ],
            st,
            T0,
            "alertmanager",
        )
    };
    let warn = |inst: &str| {
        alert(
            &[
                ("alertname", "Disk"),
                ("service", "db"),
                ("instance", inst),
                ("severity", "warning"),
            ],
            Status::Firing,
            T0,
            "alertmanager",
        )
    };
    let mut out = e.observe(T0, vec![crit(Status::Firing), warn("h1"), warn("h2")]);
    out.extend(e.advance(T0 + 30 * S));
    let n = notifications(&out);
    assert_eq!(n.len(), 1);
    let mut sev: Vec<(String, String)> = n[0]
        .firing
        .iter()
        .map(|a| (a.labels["instance"].clone(), a.labels["severity"].clone()))
        .collect();
    sev.sort();
    // h1's warning is inhibited; h2's has no critical with equal instance.
    assert_eq!(
        sev,
        [
            ("h1".into(), "critical".into()),
            ("h2".into(), "warning".into())
        ]
    );
    let views = e.alerts();
    let inhibited: Vec<&str> = views
        .iter()
        .filter(|v| !v.inhibited_by.is_empty())
        .map(|v| v.entry.alert.labels["instance"].as_str())
        .collect();
    assert_eq!(inhibited, ["h1"]);
    // Once the critical resolves, the warning is notified at the next flush.
    let mut out = e.observe(T0 + 60 * S, vec![crit(Status::Resolved)]);
    out.extend(e.advance(T0 + 330 * S));
    let n = notifications(&out);
    assert_eq!(n.len(), 1);
    let mut firing: Vec<(&str, &str)> = n[0]
        .firing
        .iter()
        .map(|a| (a.labels["instance"].as_str(), a.labels["severity"].as_str()))
        .collect();
    firing.sort();
    assert_eq!(firing, [("h1", "warning"), ("h2", "warning")]);
    assert_eq!(n[0].resolved.len(), 1);
}

fn silence(id: &str, matcher: &str, start: i64, end: i64) -> Silence {
    Silence {
        id: id.into(),
        matchers: vec![Matcher::parse(matcher).unwrap()],
        starts_at_ms: start,
        ends_at_ms: end,
        created_by: "test".into(),
        comment: "maintenance".into(),
        updated_at_ms: start,
    }
}

#[test]
fn silenced_alerts_produce_no_notification_until_the_silence_expires() {
    let mut e = AlertEngine::new(AlertingConfig::parse(TIMINGS).unwrap());
    e.control(
        T0,
        Control::SilenceSet {
            silence: silence("s1", "instance=~\"a|b\"", T0, T0 + 3600 * S),
        },
    )
    .unwrap();
    let mk = |i: &str| {
        alert(
            &[("alertname", "HighLatency"), ("instance", i)],
            Status::Firing,
            T0,
            "alertmanager",
        )
    };
    let mut out = e.observe(T0 + S, vec![mk("a"), mk("b")]);
    out.extend(e.advance(T0 + 600 * S));
    assert!(notifications(&out).is_empty(), "{out:?}");
    assert!(
        e.alerts()
            .iter()
            .all(|v| v.silenced_by == ["s1"] && v.state() == "suppressed")
    );
    // Expiring the silence: the next flush notifies both.
    e.control(T0 + 700 * S, Control::SilenceExpire { id: "s1".into() })
        .unwrap();
    let out = e.advance(T0 + 1000 * S);
    let n = notifications(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(names(n[0]), ["a", "b"]);
    // Expiring it again is refused and changes nothing.
    assert!(
        e.control(T0 + 1000 * S, Control::SilenceExpire { id: "s1".into() })
            .is_err()
    );
}

#[test]
fn storm_of_100k_alerts_gives_the_budgeted_notifications_and_keeps_every_alert() {
    let cfg = r#"
route:
  receiver: oncall
  group_by: [instance]
  group_wait: 30s
  group_interval: 5m
  notification_budget: {max: 20, per: 1m}
receivers: [{name: oncall}]
"#;
    let mut e = AlertEngine::new(AlertingConfig::parse(cfg).unwrap());
    let mut out = Vec::new();
    // 100,000 alerts over 60 s of event time from 1,000 fingerprints, in batches of 100.
    let total = 100_000i64;
    let mut i = 0;
    while i < total {
        let at = T0 + i * 60_000 / total;
        let batch: Vec<Alert> = (i..i + 100)
            .map(|k| {
                let inst = format!("host-{:04}", k % 1000);
                alert(
                    &[("alertname", "NodeDown"), ("instance", &inst)],
                    Status::Firing,
                    at,
                    "alertmanager",
                )
            })
            .collect();
        out.extend(e.observe(at, batch));
        i += 100;
    }
    out.extend(e.advance(T0 + 600 * S));
    let n = notifications(&out);
    let individual = n.iter().filter(|n| n.summary.is_none()).count();
    let summaries: Vec<_> = n.iter().filter_map(|n| n.summary.as_ref()).collect();
    assert_eq!(individual, 20, "the budget of the first minute");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].alerts, 980);
    assert_eq!(summaries[0].by_name["NodeDown"], 980);
    assert!(
        n.iter()
            .any(|n| n.text().starts_with("980 more alerts like this"))
    );
    // Nothing lost from the alert state: every fingerprint, every observation counted.
    let views = e.alerts();
    assert_eq!(views.len(), 1000);
    assert_eq!(views.iter().map(|v| v.entry.count).sum::<u64>(), 100_000);
    let s = e.stats();
    assert_eq!((s.total.raw, s.total.deduplicated), (100_000, 1000));
    assert_eq!(s.total.notifications, 21);
}

#[test]
fn flapping_alerts_are_held_and_released_when_calm() {
    let cfg = format!("{TIMINGS}aiops:\n  flapping: {{window: 10m, threshold: 4}}\n");
    let mut e = AlertEngine::new(AlertingConfig::parse(&cfg).unwrap());
    let mk = |st| {
        alert(
            &[("alertname", "HighLatency"), ("instance", "a")],
            st,
            T0,
            "alertmanager",
        )
    };
    let mut out = Vec::new();
    for (k, st) in [
        Status::Firing,
        Status::Resolved,
        Status::Firing,
        Status::Resolved,
        Status::Firing,
    ]
    .into_iter()
    .enumerate()
    {
        out.extend(e.observe(T0 + k as i64 * 5 * S, vec![mk(st)]));
    }
    let changes: Vec<Change> = out
        .iter()
        .filter_map(|d| match d {
            Decision::AlertState(c) => Some(c.change),
            _ => None,
        })
        .collect();
    assert!(changes.contains(&Change::Flapping), "{changes:?}");
    out.extend(e.advance(T0 + 500 * S));
    assert!(notifications(&out).is_empty(), "held while flapping");
    // Still firing, no more changes: after the window it calms down and is notified.
    for k in 0..12 {
        out.extend(e.observe(T0 + (600 + k * 60) * S, vec![mk(Status::Firing)]));
    }
    out.extend(e.advance(T0 + 1400 * S));
    assert!(
        out.iter()
            .any(|d| matches!(d, Decision::AlertState(c) if c.change == Change::FlappingEnded))
    );
    assert_eq!(notifications(&out).len(), 1);
}

#[test]
fn alerts_not_seen_for_their_resolve_timeout_resolve_as_stale() {
    let mut e = AlertEngine::new(AlertingConfig::parse(TIMINGS).unwrap());
    // `api` alerts have the default 5m resolve timeout.
    let a = alert(&[("alertname", "X")], Status::Firing, T0, "api");
    let mut out = e.observe(T0, vec![a.clone()]);
    out.extend(e.observe(T0 + 200 * S, vec![a]));
    out.extend(e.advance(T0 + 499 * S));
    assert!(
        !out.iter()
            .any(|d| matches!(d, Decision::AlertState(c) if c.change == Change::StaleResolved))
    );
    out.extend(e.advance(T0 + 500 * S));
    let stale: Vec<i64> = out
        .iter()
        .filter_map(|d| match d {
            Decision::AlertState(c) if c.change == Change::StaleResolved => Some(c.at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(stale, [T0 + 500 * S], "5 minutes after it was last seen");
    // An Alertmanager API v2 sender's endsAt in the future is its expiry.
    let mut b = alert(
        &[("alertname", "Y")],
        Status::Firing,
        T0,
        "alertmanager_api",
    );
    b.ends_at_ms = Some(T0 + 1000 * S);
    e.observe(T0 + 600 * S, vec![b]);
    let out = e.advance(T0 + 1000 * S);
    assert!(out.iter().any(|d| matches!(d, Decision::AlertState(c) if c.change == Change::StaleResolved && c.at_ms == T0 + 1000 * S)));
}

#[test]
fn incidents_correlate_alerts_and_follow_ack_and_resolve() {
    let cfg = format!(
        "{TIMINGS}aiops:\n  incidents:\n    window: 10m\n    correlate_labels: [cluster]\n    dependencies: {{web: [api], api: [db]}}\n"
    );
    let mut e = AlertEngine::new(AlertingConfig::parse(&cfg).unwrap());
    let mk = |name: &str, svc: &str, sev: &str, st| {
        alert(
            &[("alertname", name), ("service", svc), ("severity", sev)],
            st,
            T0,
            "alertmanager",
        )
    };
    e.observe(T0, vec![mk("Errors", "web", "warning", Status::Firing)]);
    e.observe(
        T0 + 30 * S,
        vec![mk("Slow", "db", "critical", Status::Firing)],
    );
    e.observe(
        T0 + 40 * S,
        vec![mk("Down", "mail", "critical", Status::Firing)],
    );
    let open: Vec<(String, usize)> = e
        .incidents()
        .open()
        .map(|i| (i.id.clone(), i.alerts.len()))
        .collect();
    assert_eq!(open, [("INC-1".to_string(), 2), ("INC-2".to_string(), 1)]);
    let inc = e.incidents().get("INC-1").unwrap();
    assert_eq!(inc.root_causes[0].service, "db", "{:?}", inc.root_causes);
    e.control(
        T0 + 120 * S,
        Control::IncidentAck {
            id: "INC-1".into(),
            by: "ann".into(),
        },
    )
    .unwrap();
    e.observe(
        T0 + 200 * S,
        vec![mk("Errors", "web", "warning", Status::Resolved)],
    );
    let out = e.observe(
        T0 + 300 * S,
        vec![mk("Slow", "db", "critical", Status::Resolved)],
    );
    assert!(out.iter().any(
        |d| matches!(d, Decision::Incident(c) if c.change == "resolved" && c.incident.id == "INC-1")
    ));
    let s = e.stats();
    assert_eq!(s.mtta_ms, Some(120 * S));
    assert_eq!(s.mttr_ms, Some(300 * S));
}

/// A run cut anywhere, checkpointed and restored, decides exactly what an uninterrupted run does.
#[test]
fn checkpoint_and_restore_anywhere_equals_an_uninterrupted_run() {
    let cfg = AlertingConfig::parse(&format!(
        "{TIMINGS}inhibit_rules:\n  - source_matchers: ['severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [instance]\n"
    ))
    .unwrap();
    let mut inputs: Vec<(i64, Alert)> = Vec::new();
    for k in 0..300i64 {
        let inst = format!("h{}", (k * 7) % 13);
        let sev = if k % 5 == 0 { "critical" } else { "warning" };
        let st = if k % 3 == 0 {
            Status::Resolved
        } else {
            Status::Firing
        };
        inputs.push((
            T0 + k * 17 * S,
            alert(
                &[("alertname", "A"), ("instance", &inst), ("severity", sev)],
                st,
                T0 + k * 17 * S,
                "api",
            ),
        ));
    }
    let whole = {
        let mut e = AlertEngine::new(cfg.clone());
        let mut out = Vec::new();
        for (t, a) in &inputs {
            out.extend(e.observe(*t, vec![a.clone()]));
        }
        out.extend(e.advance(T0 + 10_000 * S));
        out
    };
    assert!(notifications(&whole).len() > 5);
    for cut in [0usize, 1, 50, 151, 299] {
        let mut e = AlertEngine::new(cfg.clone());
        let mut out = Vec::new();
        for (t, a) in &inputs[..cut] {
            out.extend(e.observe(*t, vec![a.clone()]));
        }
        let snap = e.snapshot().unwrap();
        let mut e = AlertEngine::new(cfg.clone());
        e.restore(&snap).unwrap();
        for (t, a) in &inputs[cut..] {
            out.extend(e.observe(*t, vec![a.clone()]));
        }
        out.extend(e.advance(T0 + 10_000 * S));
        assert_eq!(out, whole, "cut at {cut}");
    }
}

#[test]
fn inhibition_rules_created_by_command_apply_and_can_be_deleted() {
    let mut e = AlertEngine::new(AlertingConfig::parse(TIMINGS).unwrap());
    let rule: aiops_alerting::config::InhibitRuleConfig = serde_json::from_str(
        r#"{"source_matchers": ["alertname=\"NodeDown\""], "target_matchers": ["alertname=\"HighLatency\""], "equal": ["instance"]}"#,
    )
    .unwrap();
    e.control(
        T0,
        Control::InhibitRuleSet {
            id: "r1".into(),
            rule,
        },
    )
    .unwrap();
    let mk = |name: &str| {
        alert(
            &[("alertname", name), ("instance", "a")],
            Status::Firing,
            T0,
            "alertmanager",
        )
    };
    e.observe(T0, vec![mk("NodeDown"), mk("HighLatency")]);
    let inhibited: Vec<String> = e
        .alerts()
        .iter()
        .filter(|v| !v.inhibited_by.is_empty())
        .map(|v| v.entry.alert.name.clone())
        .collect();
    assert_eq!(inhibited, ["HighLatency"]);
    e.control(T0 + S, Control::InhibitRuleDelete { id: "r1".into() })
        .unwrap();
    assert!(e.alerts().iter().all(|v| v.inhibited_by.is_empty()));
    assert!(
        e.control(T0 + S, Control::InhibitRuleDelete { id: "r1".into() })
            .is_err()
    );
}

/// Anomaly evidence interleaved with alerts: the incident explains its root cause with it, and a
/// run checkpointed and restored anywhere ends in the same state, byte for byte, as an
/// uninterrupted one (a rebuild from the log is such a run).
#[test]
fn anomaly_evidence_explains_root_causes_and_survives_checkpoints() {
    use aiops_alerting::incident::AnomalyEvidence;
    let cfg = AlertingConfig::parse(&format!(
        "{TIMINGS}aiops:\n  incidents:\n    window: 10m\n    dependencies: {{web: [db]}}\n"
    ))
    .unwrap();
    enum In {
        Alert(i64, &'static str, &'static str),
        Anomaly(i64, &'static str, f64),
    }
    let mut inputs = Vec::new();
    for k in 0..40i64 {
        let t = T0 + k * 20 * S;
        if k % 4 == 0 {
            inputs.push(In::Anomaly(t, "db", 800.0 + k as f64));
        }
        if k % 7 == 3 {
            inputs.push(In::Anomaly(t, "web", 3.0));
        }
        if k % 5 == 1 {
            inputs.push(In::Alert(t, "Slow", "db"));
            inputs.push(In::Alert(t + S, "Errors", "web"));
        }
    }
    let feed = |e: &mut AlertEngine, i: &In| match i {
        In::Alert(t, name, svc) => {
            e.observe(
                *t,
                vec![alert(
                    &[
                        ("alertname", name),
                        ("service", svc),
                        ("severity", "critical"),
                    ],
                    Status::Firing,
                    *t,
                    "api",
                )],
            );
        }
        In::Anomaly(t, svc, v) => {
            let ev = AnomalyEvidence {
                at_ms: *t,
                pipeline: "http_1m".into(),
                series: "latency_p99".into(),
                signal: "value".into(),
                value: Some(*v),
                expected: Some(240.0),
                lower: Some(180.0),
                upper: Some(300.0),
                direction: "up".into(),
                context: "the value is far outside the expected band".into(),
                ..AnomalyEvidence::default()
            };
            e.control(
                *t,
                Control::Anomaly {
                    service: svc.to_string(),
                    evidence: Some(Box::new(ev)),
                },
            )
            .unwrap();
        }
    };
    let mut whole = AlertEngine::new(cfg.clone());
    for i in &inputs {
        feed(&mut whole, i);
    }
    let inc = whole.incidents().get("INC-1").unwrap();
    let db = inc.root_causes.iter().find(|r| r.service == "db").unwrap();
    assert_eq!(db.evidence.len(), 3, "{:?}", db.evidence);
    assert!(db.evidence.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    assert!(
        db.reasons.iter().any(|r| r.starts_with("anomaly: latency_p99 = 836, above the expected 240 [180, 300]")),
        "{:?}",
        db.reasons
    );
    assert!(inc.timeline.iter().any(|t| t.kind == "anomaly"));
    let want = whole.snapshot().unwrap();
    for cut in [0, 1, inputs.len() / 2, inputs.len() - 1] {
        let mut e = AlertEngine::new(cfg.clone());
        for i in &inputs[..cut] {
            feed(&mut e, i);
        }
        let snap = e.snapshot().unwrap();
        let mut e = AlertEngine::new(cfg.clone());
        e.restore(&snap).unwrap();
        for i in &inputs[cut..] {
            feed(&mut e, i);
        }
        assert!(e.snapshot().unwrap() == want, "cut at {cut}");
    }
}
