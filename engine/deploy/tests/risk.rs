#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
//! Risk before a deploy: factors, caps, ordering, policy (freeze, approval), change windows and
//! the calendar arithmetic under them.

use aiops_deploy::risk::{
    ChangeWindow, FiringAlert, Freeze, OpenIncident, Policy, RiskInput, RiskLevel, RiskSettings,
    assess, days_from_civil, in_change_window, parse_rfc3339_ms, policy, weekday_minute,
};
use aiops_schemas::deploy::ChangeSize;
use proptest::prelude::*;

const CHECKOUT: &str = "checkout";

fn deps() -> Vec<String> {
    vec!["payments".into(), "inventory".into()]
}

fn base<'a>(dependencies: &'a [String]) -> RiskInput<'a> {
    RiskInput {
        service: CHECKOUT,
        environment: "production",
        // Tue 2026-12-01 10:00 UTC.
        at_ms: parse_rfc3339_ms("2026-12-01T10:00:00Z").unwrap(),
        change: None,
        dependencies,
        open_incidents: &[],
        firing_alerts: &[],
        recent_deploys: 0,
        recent_failures: 0,
        error_budget_burn: None,
    }
}

fn incident(id: &str, title: &str, severity: &str, services: &[&str]) -> OpenIncident {
    OpenIncident {
        id: id.into(),
        title: title.into(),
        severity: severity.into(),
        services: services.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn alert(fp: &str, name: &str, severity: &str, service: &str) -> FiringAlert {
    FiringAlert {
        fingerprint: fp.into(),
        alertname: name.into(),
        severity: severity.into(),
        service: service.into(),
    }
}

#[test]
fn nothing_known_is_no_risk() {
    let d = deps();
    let r = assess(&base(&d), &RiskSettings::default());
    assert_eq!(r.score, 0.0);
    assert_eq!(r.level, RiskLevel::Low);
    assert!(r.reasons.is_empty());
    assert_eq!(
        policy(&base(&d), &r, &RiskSettings::default()),
        Policy::Allow
    );
}

#[test]
fn critical_incident_on_a_dependency_raises_the_score_and_is_named() {
    let d = deps();
    let quiet = assess(&base(&d), &RiskSettings::default());
    let incs = [incident(
        "inc-7",
        "Payments DB down",
        "critical",
        &["payments"],
    )];
    let input = RiskInput {
        open_incidents: &incs,
        ..base(&d)
    };
    let r = assess(&input, &RiskSettings::default());
    assert!(r.score > quiet.score, "{r:?}");
    let reason = r
        .reasons
        .iter()
        .find(|x| x.factor == "open_incident")
        .expect("an incident reason");
    assert_eq!(
        reason.detail,
        "critical incident inc-7 \"Payments DB down\" is open on dependency payments"
    );
    assert!(reason.points > 0.0);
    // The reasons add up to the score.
    let sum: f64 = r.reasons.iter().map(|x| x.points).sum();
    assert_eq!(sum, r.score);
}

#[test]
fn an_incident_on_the_service_scores_higher_than_on_a_dependency() {
    let d = deps();
    let on_dep = [incident("inc-1", "slow", "critical", &["payments"])];
    let on_self = [incident("inc-1", "slow", "critical", &[CHECKOUT])];
    let dep = assess(
        &RiskInput {
            open_incidents: &on_dep,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    let own = assess(
        &RiskInput {
            open_incidents: &on_self,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert!(own.score > dep.score, "own {own:?} dep {dep:?}");
    assert!(own.reasons[0].detail.contains("on the service checkout"));
    // A warning counts less than a critical one; an incident on an unrelated service not at all.
    let warn = [incident("inc-1", "slow", "warning", &[CHECKOUT])];
    let w = assess(
        &RiskInput {
            open_incidents: &warn,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert!(w.score > 0.0 && w.score < own.score);
    let other = [incident("inc-9", "x", "critical", &["search"])];
    let o = assess(
        &RiskInput {
            open_incidents: &other,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert_eq!(o.score, 0.0);
}

#[test]
fn incidents_are_capped_and_the_extra_ones_are_mentioned() {
    let d = deps();
    let incs: Vec<OpenIncident> = (0..5)
        .map(|i| incident(&format!("inc-{i}"), "down", "critical", &[CHECKOUT]))
        .collect();
    let one = assess(
        &RiskInput {
            open_incidents: &incs[..1],
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    let five = assess(
        &RiskInput {
            open_incidents: &incs,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert!(five.score > one.score);
    assert!(five.score < 5.0 * one.score, "capped: {five:?}");
    let details: Vec<&str> = five.reasons.iter().map(|r| r.detail.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("more incidents on the service not counted")),
        "{details:?}"
    );
}

#[test]
fn firing_alerts_are_grouped_by_alertname() {
    let d = deps();
    let many: Vec<FiringAlert> = (0..100)
        .map(|i| alert(&format!("fp{i}"), "PodCrashLooping", "critical", CHECKOUT))
        .collect();
    let r = assess(
        &RiskInput {
            firing_alerts: &many,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    let one = assess(
        &RiskInput {
            firing_alerts: &many[..1],
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert_eq!(r.reasons.len(), 1, "{r:?}");
    assert_eq!(r.score, one.score, "100 pods of one alert are one reason");
    assert!(r.reasons[0].detail.contains("PodCrashLooping"));
    assert!(r.reasons[0].detail.contains("(100 series)"));

    // Two names are two reasons; a dependency's alert counts less than the service's own.
    let mixed = [
        alert("a", "HighErrorRate", "critical", CHECKOUT),
        alert("b", "HighLatency", "warning", CHECKOUT),
        alert("c", "HighErrorRate", "critical", "payments"),
        alert("d", "Unrelated", "critical", "search"),
    ];
    let m = assess(
        &RiskInput {
            firing_alerts: &mixed,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert_eq!(m.reasons.len(), 3, "{m:?}");
    let own = m
        .reasons
        .iter()
        .find(|x| x.detail.contains("HighErrorRate") && x.detail.contains("service checkout"))
        .unwrap();
    let dep = m
        .reasons
        .iter()
        .find(|x| x.detail.contains("dependency payments"))
        .unwrap();
    assert!(own.points > dep.points);
    assert!(!m.reasons.iter().any(|x| x.detail.contains("Unrelated")));
}

#[test]
fn change_size_saturates() {
    let d = deps();
    let at = |c: ChangeSize| {
        assess(
            &RiskInput {
                change: Some(c),
                ..base(&d)
            },
            &RiskSettings::default(),
        )
        .score
    };
    let tiny = at(ChangeSize {
        commits: 1,
        files: 1,
        lines: 3,
    });
    let mid = at(ChangeSize {
        commits: 5,
        files: 20,
        lines: 400,
    });
    let huge = at(ChangeSize {
        commits: u32::MAX,
        files: u32::MAX,
        lines: u32::MAX,
    });
    assert!(
        0.0 < tiny && tiny < mid && mid < huge,
        "{tiny} {mid} {huge}"
    );
    assert!(huge <= 20.0);
    assert_eq!(at(ChangeSize::default()), 0.0);
}

#[test]
fn failure_rate_has_a_prior() {
    let d = deps();
    let at = |deploys, failures| {
        assess(
            &RiskInput {
                recent_deploys: deploys,
                recent_failures: failures,
                ..base(&d)
            },
            &RiskSettings::default(),
        )
    };
    let one_of_one = at(1, 1);
    let all_of_many = at(40, 40);
    let one_of_ten = at(10, 1);
    assert!(
        one_of_one.score < all_of_many.score,
        "one failure is not 100 %"
    );
    assert!(one_of_ten.score < one_of_one.score);
    assert!(all_of_many.score <= 20.0);
    assert_eq!(at(10, 0).score, 0.0);
    // More failures than deploys (bad input) counts as all deploys failing, no more.
    assert_eq!(at(3, 9).score, at(3, 3).score);
    assert!(
        one_of_one.reasons[0]
            .detail
            .starts_with("1 of the last 1 deploy of checkout")
    );
}

#[test]
fn error_budget_burn() {
    let d = deps();
    let at = |burn| {
        assess(
            &RiskInput {
                error_budget_burn: burn,
                ..base(&d)
            },
            &RiskSettings::default(),
        )
        .score
    };
    assert_eq!(at(None), 0.0);
    assert_eq!(at(Some(1.0)), 0.0);
    assert_eq!(at(Some(f64::NAN)), 0.0);
    assert!(at(Some(2.0)) > 0.0);
    assert!(at(Some(2.0)) < at(Some(5.0)));
    assert_eq!(at(Some(10.0)), 20.0);
    assert_eq!(at(Some(1000.0)), 20.0);
    assert_eq!(at(Some(f64::INFINITY)), 20.0);
}

#[test]
fn everything_at_once_is_capped_at_100_and_high() {
    let d = deps();
    let incs: Vec<OpenIncident> = (0..4)
        .flat_map(|i| {
            [
                incident(&format!("s{i}"), "x", "critical", &[CHECKOUT]),
                incident(&format!("d{i}"), "y", "critical", &["inventory"]),
            ]
        })
        .collect();
    let alerts = [
        alert("1", "A", "critical", CHECKOUT),
        alert("2", "B", "critical", CHECKOUT),
        alert("3", "C", "critical", "payments"),
        alert("4", "D", "critical", "payments"),
    ];
    let settings = RiskSettings {
        change_windows: vec![ChangeWindow {
            days: vec!["sun".into()],
            start: "01:00".into(),
            end: "02:00".into(),
        }],
        ..RiskSettings::default()
    };
    let input = RiskInput {
        change: Some(ChangeSize {
            commits: 100,
            files: 300,
            lines: 20_000,
        }),
        open_incidents: &incs,
        firing_alerts: &alerts,
        recent_deploys: 4,
        recent_failures: 4,
        error_budget_burn: Some(50.0),
        ..base(&d)
    };
    let r = assess(&input, &settings);
    assert_eq!(r.score, 100.0);
    assert_eq!(r.level, RiskLevel::High);
    // Largest first, then factor, then detail.
    for w in r.reasons.windows(2) {
        let ord = w[1]
            .points
            .total_cmp(&w[0].points)
            .then_with(|| w[0].factor.cmp(&w[1].factor))
            .then_with(|| w[0].detail.cmp(&w[1].detail));
        assert_eq!(
            ord,
            std::cmp::Ordering::Less,
            "{:?} before {:?}",
            w[0],
            w[1]
        );
    }
    let factors: std::collections::BTreeSet<&str> =
        r.reasons.iter().map(|x| x.factor.as_str()).collect();
    for f in [
        "change_size",
        "change_window",
        "open_incident",
        "firing_alert",
        "failure_rate",
        "error_budget",
    ] {
        assert!(factors.contains(f), "missing {f}: {factors:?}");
    }
}

#[test]
fn levels() {
    let d = deps();
    // One critical incident on the service (30) is medium; with a critical alert (45) still
    // medium; add a burn of 10× (65): high.
    let incs = [incident("i", "t", "critical", &[CHECKOUT])];
    let alerts = [alert("f", "A", "critical", CHECKOUT)];
    let r = assess(
        &RiskInput {
            open_incidents: &incs,
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert_eq!((r.score, r.level), (30.0, RiskLevel::Medium));
    let r = assess(
        &RiskInput {
            open_incidents: &incs,
            firing_alerts: &alerts,
            error_budget_burn: Some(10.0),
            ..base(&d)
        },
        &RiskSettings::default(),
    );
    assert_eq!((r.score, r.level), (65.0, RiskLevel::High));
}

fn year_end() -> Freeze {
    Freeze {
        name: "year-end".into(),
        from: "2026-12-20T00:00:00Z".into(),
        until: "2027-01-04T00:00:00Z".into(),
        environments: vec!["production".into()],
        services: Vec::new(),
    }
}

#[test]
fn a_freeze_refuses_with_its_name_and_end() {
    let d = deps();
    let settings = RiskSettings {
        freezes: vec![year_end()],
        ..RiskSettings::default()
    };
    settings.validate().unwrap();
    let inside = RiskInput {
        at_ms: parse_rfc3339_ms("2026-12-24T15:00:00+08:00").unwrap(),
        ..base(&d)
    };
    let r = assess(&inside, &settings);
    assert_eq!(
        policy(&inside, &r, &settings),
        Policy::Refused {
            reason: "deploys to production are frozen by \"year-end\" until 2027-01-04T00:00:00Z"
                .into()
        }
    );
    // The end is exclusive, the start inclusive.
    let at_end = RiskInput {
        at_ms: parse_rfc3339_ms("2027-01-04T00:00:00Z").unwrap(),
        ..base(&d)
    };
    assert_eq!(policy(&at_end, &r, &settings), Policy::Allow);
    let at_start = RiskInput {
        at_ms: parse_rfc3339_ms("2026-12-20T00:00:00Z").unwrap(),
        ..base(&d)
    };
    assert!(matches!(
        policy(&at_start, &r, &settings),
        Policy::Refused { .. }
    ));
    // Other environments are not frozen; a service filter excludes other services.
    let staging = RiskInput {
        environment: "staging",
        ..inside
    };
    assert_eq!(policy(&staging, &r, &settings), Policy::Allow);
    let only_payments = RiskSettings {
        freezes: vec![Freeze {
            services: vec!["payments".into()],
            ..year_end()
        }],
        ..RiskSettings::default()
    };
    assert_eq!(policy(&inside, &r, &only_payments), Policy::Allow);
}

#[test]
fn a_freeze_wins_over_a_low_score_and_over_approval() {
    let d = deps();
    let settings = RiskSettings {
        approval_threshold: 0.0,
        freezes: vec![year_end()],
        ..RiskSettings::default()
    };
    let inside = RiskInput {
        at_ms: parse_rfc3339_ms("2026-12-25T00:00:00Z").unwrap(),
        ..base(&d)
    };
    let r = assess(&inside, &settings);
    assert!(matches!(
        policy(&inside, &r, &settings),
        Policy::Refused { .. }
    ));
}

#[test]
fn approval_threshold_and_environments() {
    let d = deps();
    let incs = [
        incident("inc-1", "Checkout 500s", "critical", &[CHECKOUT]),
        incident("inc-2", "DB down", "critical", &["payments"]),
    ];
    let alerts = [alert("fp", "HighErrorRate", "critical", CHECKOUT)];
    // 30 + 25 + 15 = 70.
    let input = RiskInput {
        open_incidents: &incs,
        firing_alerts: &alerts,
        ..base(&d)
    };
    let settings = RiskSettings::default();
    let r = assess(&input, &settings);
    assert_eq!(r.score, 70.0, "{r:?}");
    match policy(&input, &r, &settings) {
        Policy::NeedsApproval { reason } => {
            assert!(
                reason.starts_with(&format!("risk {} ≥ 60 in production: ", r.score)),
                "{reason}"
            );
            assert!(
                reason.contains("inc-1") && reason.contains("inc-2"),
                "{reason}"
            );
        }
        other => panic!("expected an approval, got {other:?}"),
    }
    // Staging is not an approval environment by default.
    let staging = RiskInput {
        environment: "staging",
        ..input
    };
    assert_eq!(policy(&staging, &r, &settings), Policy::Allow);
    // An empty list means every environment; just below the threshold is allowed.
    let all = RiskSettings {
        approval_environments: Vec::new(),
        ..RiskSettings::default()
    };
    assert!(matches!(
        policy(&staging, &r, &all),
        Policy::NeedsApproval { .. }
    ));
    let higher = RiskSettings {
        approval_threshold: r.score + 0.1,
        ..RiskSettings::default()
    };
    assert_eq!(policy(&input, &r, &higher), Policy::Allow);
}

fn window(days: &[&str], start: &str, end: &str) -> ChangeWindow {
    ChangeWindow {
        days: days.iter().map(|d| (*d).to_owned()).collect(),
        start: start.into(),
        end: end.into(),
    }
}

#[test]
fn change_windows_with_offsets() {
    // Working hours in Beijing: Mon–Fri 10:00–17:00 at UTC+8.
    let settings = RiskSettings {
        change_windows: vec![window(
            &["mon", "tue", "wed", "thu", "fri"],
            "10:00",
            "17:00",
        )],
        utc_offset_minutes: 480,
        ..RiskSettings::default()
    };
    settings.validate().unwrap();
    let at = |s: &str| in_change_window(parse_rfc3339_ms(s).unwrap(), &settings);
    // Tue 2026-12-01 03:00 UTC = 11:00 in Beijing: inside.
    assert!(at("2026-12-01T03:00:00Z"));
    // Tue 10:00 UTC = 18:00 Beijing: outside (in UTC it would be inside).
    assert!(!at("2026-12-01T10:00:00Z"));
    // Start inclusive, end exclusive.
    assert!(at("2026-12-01T10:00:00+08:00"));
    assert!(!at("2026-12-01T17:00:00+08:00"));
    assert!(at("2026-12-01T16:59:59+08:00"));
    // Fri 2026-12-04 23:00 UTC is Sat 07:00 in Beijing: outside, although Friday in UTC.
    assert!(!at("2026-12-04T23:00:00Z"));
    // Sun 2026-12-06 21:00 in New York is Mon 02:00 UTC, Mon 10:00 in Beijing: inside.
    assert!(at("2026-12-06T21:00:00-05:00"));

    let d = deps();
    let outside = RiskInput {
        at_ms: parse_rfc3339_ms("2026-12-05T12:00:00+08:00").unwrap(),
        ..base(&d)
    };
    let r = assess(&outside, &settings);
    assert_eq!(r.reasons.len(), 1);
    assert_eq!(r.reasons[0].factor, "change_window");
    assert_eq!(
        r.reasons[0].detail,
        "starts sat 12:00 (UTC+08:00), outside every change window"
    );
    // Without windows, no time is outside (documented: night and weekend add nothing then).
    let r = assess(&outside, &RiskSettings::default());
    assert!(r.reasons.is_empty());
}

#[test]
fn a_window_ending_before_it_starts_wraps_past_midnight() {
    // Fri and Sat nights 22:00–02:00 UTC.
    let settings = RiskSettings {
        change_windows: vec![window(&["fri", "sat"], "22:00", "02:00")],
        ..RiskSettings::default()
    };
    settings.validate().unwrap();
    let at = |s: &str| in_change_window(parse_rfc3339_ms(s).unwrap(), &settings);
    assert!(at("2026-12-04T22:00:00Z")); // Fri 22:00
    assert!(at("2026-12-05T01:59:00Z")); // Sat 01:59, Friday's window
    assert!(!at("2026-12-05T02:00:00Z")); // Sat 02:00
    assert!(at("2026-12-05T23:30:00Z")); // Sat 23:30
    assert!(at("2026-12-06T01:00:00Z")); // Sun 01:00, Saturday's window
    assert!(!at("2026-12-06T22:30:00Z")); // Sun 22:30
    assert!(!at("2026-12-04T01:00:00Z")); // Fri 01:00 (Thursday has no window)
    assert!(!at("2026-12-04T21:59:00Z")); // Fri 21:59

    // Start equal to end: 24 hours from the start.
    let whole = RiskSettings {
        change_windows: vec![window(&["wed"], "09:00", "09:00")],
        ..RiskSettings::default()
    };
    let at = |s: &str| in_change_window(parse_rfc3339_ms(s).unwrap(), &whole);
    assert!(at("2026-12-02T09:00:00Z"));
    assert!(at("2026-12-03T08:59:00Z"));
    assert!(!at("2026-12-03T09:00:00Z"));
    assert!(!at("2026-12-02T08:59:00Z"));
    // 24:00 as an end is the end of the day.
    let day = RiskSettings {
        change_windows: vec![window(&["Wed"], "12:00", "24:00")],
        ..RiskSettings::default()
    };
    day.validate().unwrap();
    assert!(in_change_window(
        parse_rfc3339_ms("2026-12-02T23:59:59Z").unwrap(),
        &day
    ));
    assert!(!in_change_window(
        parse_rfc3339_ms("2026-12-03T00:00:00Z").unwrap(),
        &day
    ));
}

/// Independent reference values (Python's `datetime`): epoch ms and weekday.
const KNOWN: &[(&str, i64, u8)] = &[
    ("1970-01-01T00:00:00Z", 0, 3),
    ("2026-12-04T23:52:05Z", 1_796_428_325_000, 4),
    ("2000-01-01T00:00:00Z", 946_684_800_000, 5),
    ("2024-02-29T12:30:00.123+08:00", 1_709_181_000_123, 3),
    ("1969-12-31T23:59:59.999Z", -1, 2),
    ("2038-01-19T03:14:08Z", 2_147_483_648_000, 1),
    ("1900-03-01T00:00:00Z", -2_203_891_200_000, 3),
    ("2026-12-20T00:00:00-05:30", 1_797_744_600_000, 6),
];

#[test]
fn rfc3339_and_weekdays_match_known_dates() {
    for &(s, ms, _) in KNOWN {
        assert_eq!(parse_rfc3339_ms(s).unwrap(), ms, "{s}");
    }
    for &(s, ms, day) in KNOWN {
        // The weekday of the local date written in the string.
        let offset = match s.as_bytes()[s.len() - 6] {
            b'+' | b'-' => {
                let sign = if s.as_bytes()[s.len() - 6] == b'-' {
                    -1
                } else {
                    1
                };
                let h: i32 = s[s.len() - 5..s.len() - 3].parse().unwrap();
                let m: i32 = s[s.len() - 2..].parse().unwrap();
                sign * (h * 60 + m)
            }
            _ => 0,
        };
        assert_eq!(weekday_minute(ms, offset).0, day, "{s}");
    }
    // Minute of the day, with an offset crossing midnight backwards.
    let ms = parse_rfc3339_ms("2026-12-07T02:30:00Z").unwrap(); // Mon
    assert_eq!(weekday_minute(ms, 0), (0, 150));
    assert_eq!(weekday_minute(ms, -300), (6, 21 * 60 + 30)); // Sun 21:30 in New York
    assert_eq!(weekday_minute(ms, 480), (0, 10 * 60 + 30)); // Mon 10:30 in Beijing
}

#[test]
fn rfc3339_forms() {
    let z = parse_rfc3339_ms("2026-06-01T08:00:00Z").unwrap();
    assert_eq!(parse_rfc3339_ms("2026-06-01t08:00:00z").unwrap(), z);
    assert_eq!(parse_rfc3339_ms("2026-06-01T16:00:00+08:00").unwrap(), z);
    assert_eq!(parse_rfc3339_ms("2026-06-01T03:00:00-05:00").unwrap(), z);
    assert_eq!(parse_rfc3339_ms("2026-06-01T08:00:00+00:00").unwrap(), z);
    assert_eq!(parse_rfc3339_ms("2026-06-01T08:00:00.5Z").unwrap(), z + 500);
    assert_eq!(parse_rfc3339_ms("2026-06-01T08:00:00.05Z").unwrap(), z + 50);
    assert_eq!(
        parse_rfc3339_ms("2026-06-01T08:00:00.123456789Z").unwrap(),
        z + 123
    );
    // Leap years: 2024 and 2000 have a 29 February, 2023 and 1900 do not.
    assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_ok());
    assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_ok());
    assert!(parse_rfc3339_ms("2023-02-29T00:00:00Z").is_err());
    assert!(parse_rfc3339_ms("1900-02-29T00:00:00Z").is_err());
    assert_eq!(
        parse_rfc3339_ms("2024-03-01T00:00:00Z").unwrap()
            - parse_rfc3339_ms("2024-02-28T00:00:00Z").unwrap(),
        2 * 86_400_000
    );
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
}

#[test]
fn rfc3339_rejects() {
    for bad in [
        "",
        "2026-12-20",
        "2026-12-20T00:00:00",
        "2026-12-20 00:00:00Z",
        "2026-12-20T00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-12-00T00:00:00Z",
        "2026-12-20T24:00:00Z",
        "2026-12-20T23:60:00Z",
        "2026-12-20T23:59:60Z",
        "2026-12-20T00:00:00.Z",
        "2026-12-20T00:00:00.1234567890Z",
        "2026-12-20T00:00:00+0800",
        "2026-12-20T00:00:00+08",
        "2026-12-20T00:00:00+24:00",
        "2026-12-20T00:00:00+08:60",
        "2026-12-20T00:00:00Zjunk",
        "+2026-12-20T00:00:00Z",
        "2026-1x-20T00:00:00Z",
        "２０２６-12-20T00:00:00Z",
        "2026-12-20T00:00:00.１Z",
    ] {
        let e = parse_rfc3339_ms(bad);
        assert!(e.is_err(), "{bad:?} parsed as {e:?}");
    }
    let msg = parse_rfc3339_ms("2023-02-29T00:00:00Z")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2023-02-29T00:00:00Z") && msg.contains("day"),
        "{msg}"
    );
}

#[test]
fn validate_names_the_first_bad_field() {
    let ok = RiskSettings {
        change_windows: vec![window(&["mon"], "09:00", "17:00")],
        freezes: vec![year_end()],
        ..RiskSettings::default()
    };
    ok.validate().unwrap();
    let check = |s: RiskSettings, path: &str| {
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("deploys.risk: {path}: ")),
            "{e} (expected {path})"
        );
    };
    check(
        RiskSettings {
            change_windows: vec![
                window(&["mon"], "09:00", "17:00"),
                window(&["mon", "funday"], "09:00", "17:00"),
            ],
            ..RiskSettings::default()
        },
        "change_windows[1].days[1]",
    );
    check(
        RiskSettings {
            change_windows: vec![window(&[], "09:00", "17:00")],
            ..RiskSettings::default()
        },
        "change_windows[0].days",
    );
    check(
        RiskSettings {
            change_windows: vec![window(&["mon"], "9:00", "17:00")],
            ..RiskSettings::default()
        },
        "change_windows[0].start",
    );
    check(
        RiskSettings {
            change_windows: vec![window(&["mon"], "24:00", "17:00")],
            ..RiskSettings::default()
        },
        "change_windows[0].start",
    );
    check(
        RiskSettings {
            change_windows: vec![window(&["mon"], "09:00", "17:61")],
            ..RiskSettings::default()
        },
        "change_windows[0].end",
    );
    check(
        RiskSettings {
            freezes: vec![
                year_end(),
                Freeze {
                    until: "2027-01-04".into(),
                    ..year_end()
                },
            ],
            ..RiskSettings::default()
        },
        "freezes[1].until",
    );
    check(
        RiskSettings {
            freezes: vec![Freeze {
                from: "yesterday".into(),
                ..year_end()
            }],
            ..RiskSettings::default()
        },
        "freezes[0].from",
    );
    check(
        RiskSettings {
            freezes: vec![Freeze {
                from: "2027-01-04T00:00:00Z".into(),
                until: "2027-01-04T00:00:00Z".into(),
                ..year_end()
            }],
            ..RiskSettings::default()
        },
        "freezes[0].until",
    );
    check(
        RiskSettings {
            freezes: vec![Freeze {
                name: " ".into(),
                ..year_end()
            }],
            ..RiskSettings::default()
        },
        "freezes[0].name",
    );
    check(
        RiskSettings {
            approval_threshold: f64::NAN,
            ..RiskSettings::default()
        },
        "approval_threshold",
    );
    check(
        RiskSettings {
            utc_offset_minutes: 20 * 60,
            ..RiskSettings::default()
        },
        "utc_offset_minutes",
    );
}

#[test]
fn settings_parse_from_config_with_defaults() {
    let s: RiskSettings = serde_json::from_value(serde_json::json!({
        "approval_threshold": 50,
        "change_windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}],
        "utc_offset_minutes": 480,
        "freezes": [{"name": "year-end", "from": "2026-12-20T00:00:00Z", "until": "2027-01-04T00:00:00Z"}]
    }))
    .unwrap();
    assert_eq!(s.approval_environments, vec!["production".to_owned()]);
    assert!(s.freezes[0].environments.is_empty());
    s.validate().unwrap();
    let unknown = serde_json::from_value::<RiskSettings>(serde_json::json!({"threshold": 5}));
    assert!(unknown.is_err());
}

fn arb_incident() -> impl Strategy<Value = OpenIncident> {
    (
        "inc-[0-9]{1,3}",
        "[a-zA-Z \"é]{0,20}",
        prop::sample::select(vec!["critical", "warning", "info", "CRITICAL", ""]),
        prop::collection::vec(
            prop::sample::select(vec!["checkout", "payments", "inventory", "search"]),
            0..3,
        ),
    )
        .prop_map(|(id, title, sev, services)| OpenIncident {
            id,
            title,
            severity: sev.to_owned(),
            services: services.into_iter().map(str::to_owned).collect(),
        })
}

fn arb_alert() -> impl Strategy<Value = FiringAlert> {
    (
        "[a-f0-9]{1,4}",
        prop::sample::select(vec!["HighErrorRate", "HighLatency", "PodCrashLooping"]),
        prop::sample::select(vec!["critical", "warning", "none"]),
        prop::sample::select(vec!["checkout", "payments", "inventory", "search", ""]),
    )
        .prop_map(|(fp, name, sev, svc)| FiringAlert {
            fingerprint: fp,
            alertname: name.to_owned(),
            severity: sev.to_owned(),
            service: svc.to_owned(),
        })
}

proptest! {
    #[test]
    fn the_same_input_gives_the_same_risk(
        at_ms in -4_000_000_000_000i64..8_000_000_000_000,
        change in prop::option::of((any::<u32>(), any::<u32>(), any::<u32>())),
        incs in prop::collection::vec(arb_incident(), 0..12),
        alerts in prop::collection::vec(arb_alert(), 0..40),
        deploys in 0u32..1000,
        failures in 0u32..1000,
        burn in prop::option::of(prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -5.0f64..100.0]),
        offset in -1080i32..=1080,
    ) {
        let d = deps();
        let settings = RiskSettings {
            change_windows: vec![window(&["mon", "wed"], "22:00", "03:00")],
            utc_offset_minutes: offset,
            ..RiskSettings::default()
        };
        let input = RiskInput {
            at_ms,
            change: change.map(|(commits, files, lines)| ChangeSize { commits, files, lines }),
            open_incidents: &incs,
            firing_alerts: &alerts,
            recent_deploys: deploys,
            recent_failures: failures,
            error_budget_burn: burn,
            ..base(&d)
        };
        let a = assess(&input, &settings);
        let b = assess(&input, &settings);
        prop_assert_eq!(&a, &b);
        prop_assert!((0.0..=100.0).contains(&a.score), "score {}", a.score);
        prop_assert!(a.reasons.iter().all(|r| r.points > 0.0));
        // Shuffled input order gives the same risk: only the set of facts counts.
        let mut incs_rev = incs.clone();
        incs_rev.reverse();
        let mut alerts_rev = alerts.clone();
        alerts_rev.reverse();
        let reversed = RiskInput { open_incidents: &incs_rev, firing_alerts: &alerts_rev, ..input };
        prop_assert_eq!(&assess(&reversed, &settings), &a);
        // The JSON form round-trips (the record carries it).
        let json = serde_json::to_string(&a).unwrap();
        let back: aiops_deploy::risk::Risk = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn weekday_minute_agrees_with_civil_days(days in -200_000i64..200_000, minute in 0i64..1440, offset in -1080i32..=1080) {
        // Local midnight of day `days` plus `minute`, expressed in UTC.
        let at_ms = (days * 1440 + minute - i64::from(offset)) * 60_000;
        let (wd, m) = weekday_minute(at_ms, offset);
        prop_assert_eq!(i64::from(m), minute);
        prop_assert_eq!(i64::from(wd), (days + 3).rem_euclid(7));
    }
}
