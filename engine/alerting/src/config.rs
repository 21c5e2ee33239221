//! The alerting configuration: Alertmanager's YAML (`route`, `inhibit_rules`, `time_intervals`,
//! `receivers`) so users can bring theirs, plus an `aiops:` section for what Alertmanager does
//! not have (fingerprints per source, stale timeouts, flapping, storm budgets, incidents).
//!
//! Everything is checked at load: durations, matchers, regexes, time interval names, receiver
//! names, so a bad file is refused with the reason and the running configuration stays.

use crate::matcher::{Matcher, matchers_from_legacy};
use crate::timeinterval::NamedTimeInterval;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML does not parse or has an unknown or mistyped field.
    #[error("alerting config: {0}")]
    Yaml(String),
    /// A value is not valid where it is used.
    #[error("alerting config: {at}: {message}")]
    Invalid {
        /// Where: `route.routes[1].group_wait`, `inhibit_rules[0]`, ….
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

/// A duration in Alertmanager's and humantime's spelling (`30s`, `5m`, `4h`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dur(pub Duration);

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        humantime::parse_duration(s.trim())
            .map(Dur)
            .map_err(|e| format!("bad duration {s:?}: {e}"))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl Dur {
    /// Milliseconds, saturating.
    pub fn ms(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// One node of the routing tree, as in Alertmanager's `route:`; fields left out are inherited
/// from the parent (receiver, group_by and the three intervals), as Alertmanager does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver (a name from `receivers`) that notifications of this route go to.
    pub receiver: Option<String>,
    /// Labels that split alerts into groups; `['...']` groups by all labels.
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification (default 30s).
    pub group_wait: Option<Dur>,
    /// How long to wait before notifying about new alerts of a group already notified (5m).
    pub group_interval: Option<Dur>,
    /// How long to wait before repeating a notification that did not change (4h).
    pub repeat_interval: Option<Dur>,
    /// Matchers in Alertmanager's syntax, all of which an alert must match.
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Deprecated equality matchers (`match:`), still accepted.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Deprecated regex matchers (`match_re:`), still accepted.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    /// Whether matching continues with the next sibling after this route matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Names of time intervals during which this route's notifications are muted.
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which this route's notifications are muted.
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// aiops: at most `max` notifications per `per` of event time from this route; the rest are
    /// summarized into one notification at the end of the period. Inherited.
    pub notification_budget: Option<Budget>,
}

/// A notification budget (storm control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Notifications allowed per period.
    pub max: u32,
    /// The period (aligned to multiples of it in event time).
    pub per: Dur,
}

/// An inhibition rule: a firing alert matching the source matchers mutes alerts matching the
/// target matchers that have the same values of the `equal` labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Matchers for the inhibiting alert.
    #[serde(default)]
    pub source_matchers: Vec<Matcher>,
    /// Matchers for the inhibited alert.
    #[serde(default)]
    pub target_matchers: Vec<Matcher>,
    /// Deprecated `source_match`.
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated `source_match_re`.
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    /// Deprecated `target_match`.
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated `target_match_re`.
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    /// Labels that must be equal in source and target (missing in both counts as equal).
    #[serde(default)]
    pub equal: Vec<String>,
}

/// A receiver: a name notifications are addressed to. Its integrations (`slack_configs`, …) are
/// kept as given for the workflow engine, which performs the effects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiverConfig {
    /// The receiver's name.
    pub name: String,
    /// Everything else, as written.
    #[serde(flatten)]
    pub integrations: BTreeMap<String, serde_yaml_ng::Value>,
}

/// Per-source settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Labels that identify an alert of this source (the fingerprint); all labels when unset.
    pub fingerprint_labels: Option<Vec<String>>,
    /// A firing alert not seen again for this long resolves (as stale); `0s` never. Defaults:
    /// 5m, except `alertmanager`, `grafana`, `pipeline`, `datadog` and `cloudwatch`, which send
    /// their resolutions.
    pub resolve_timeout: Option<Dur>,
}

/// Flapping detection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlappingConfig {
    /// The window state changes are counted over.
    pub window: Dur,
    /// This many state changes within the window mark an alert flapping; its notifications are
    /// held until it calms down. 0 turns detection off.
    pub threshold: u32,
}

impl Default for FlappingConfig {
    fn default() -> Self {
        FlappingConfig {
            window: Dur(Duration::from_secs(600)),
            threshold: 6,
        }
    }
}

/// Incident correlation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// An alert joins an open incident that saw activity within this time.
    pub window: Dur,
    /// Labels whose equal values tie an alert to an incident's alerts.
    pub correlate_labels: Vec<String>,
    /// The service dependency map: service → the services it depends on (its upstreams).
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// Severities that open incidents (others only join open ones).
    pub open_on: Vec<String>,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            window: Dur(Duration::from_secs(600)),
            correlate_labels: vec!["service".into(), "cluster".into()],
            dependencies: BTreeMap::new(),
            open_on: vec!["critical".into(), "warning".into()],
        }
    }
}

/// What aiops adds to Alertmanager's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AiopsConfig {
    /// Settings per source name (`alertmanager`, `grafana`, `pipeline`, `api`, …).
    pub sources: BTreeMap<String, SourceConfig>,
    /// Flapping detection.
    pub flapping: FlappingConfig,
    /// Incident correlation.
    pub incidents: IncidentConfig,
    /// Resolved alerts stay listed this long before they are forgotten.
    pub resolved_retention: Dur,
    /// Expired silences stay listed this long.
    pub silence_retention: Dur,
    /// Statistics are emitted as a derived stream this often (event time).
    pub stats_interval: Dur,
    /// aiops' own integrations of a receiver, by receiver name: `feishu_configs` and
    /// `dingtalk_configs` (`webhook_url`/`webhook_url_file`, `secret`/`secret_file`,
    /// `send_resolved`), kept out of `receivers` so the file stays a valid Alertmanager file.
    pub receivers: BTreeMap<String, BTreeMap<String, serde_yaml_ng::Value>>,
}

impl Default for AiopsConfig {
    fn default() -> Self {
        AiopsConfig {
            sources: BTreeMap::new(),
            flapping: FlappingConfig::default(),
            incidents: IncidentConfig::default(),
            resolved_retention: Dur(Duration::from_secs(3600)),
            silence_retention: Dur(Duration::from_secs(5 * 24 * 3600)),
            stats_interval: Dur(Duration::from_secs(60)),
            receivers: BTreeMap::new(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Alertmanager's `global:` section; accepted and kept (`resolve_timeout` is used).
    #[serde(default)]
    pub global: BTreeMap<String, serde_yaml_ng::Value>,
    /// The routing tree.
    pub route: RouteConfig,
    /// Receivers.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Named time intervals.
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    /// Named time intervals (Alertmanager's older name).
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    /// Template files: accepted for compatibility, not used (workflows render messages).
    #[serde(default)]
    pub templates: Vec<String>,
    /// aiops' additions.
    #[serde(default)]
    pub aiops: AiopsConfig,
}

/// The configuration used when none is given: one route to the receiver `default`, grouped by
/// alert name and service, with Alertmanager's default timings.
pub const DEFAULT_CONFIG: &str = r#"
route:
  receiver: default
  group_by: [alertname, service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: default
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, service, instance]
"#;

impl Default for AlertingConfig {
    fn default() -> Self {
        // The constant is tested to parse; fall back to an empty tree rather than panic.
        AlertingConfig::parse(DEFAULT_CONFIG).unwrap_or_else(|_| AlertingConfig {
            global: BTreeMap::new(),
            route: RouteConfig {
                receiver: Some("default".into()),
                ..RouteConfig::default()
            },
            receivers: vec![ReceiverConfig {
                name: "default".into(),
                integrations: BTreeMap::new(),
            }],
            inhibit_rules: Vec::new(),
            time_intervals: Vec::new(),
            mute_time_intervals: Vec::new(),
            templates: Vec::new(),
            aiops: AiopsConfig::default(),
        })
    }
}

impl AlertingConfig {
    /// Parses and checks a YAML configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field and what is wrong.
    pub fn parse(yaml: &str) -> Result<AlertingConfig, ConfigError> {
        let mut c: AlertingConfig =
            crate::yaml::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        c.normalize()?;
        c.check()?;
        Ok(c)
    }

    /// Folds the deprecated `match`/`match_re` forms into matchers.
    fn normalize(&mut self) -> Result<(), ConfigError> {
        fn fold(r: &mut RouteConfig, at: &str) -> Result<(), ConfigError> {
            let legacy = matchers_from_legacy(&r.match_eq, &r.match_re)
                .map_err(|e| invalid(at, e.to_string()))?;
            r.matchers.extend(legacy);
            r.match_eq.clear();
            r.match_re.clear();
            for (i, c) in r.routes.iter_mut().enumerate() {
                fold(c, &format!("{at}.routes[{i}]"))?;
            }
            Ok(())
        }
        fold(&mut self.route, "route")?;
        for (i, r) in self.inhibit_rules.iter_mut().enumerate() {
            let at = format!("inhibit_rules[{i}]");
            let s = matchers_from_legacy(&r.source_match, &r.source_match_re)
                .map_err(|e| invalid(&at, e.to_string()))?;
            let t = matchers_from_legacy(&r.target_match, &r.target_match_re)
                .map_err(|e| invalid(&at, e.to_string()))?;
            r.source_matchers.extend(s);
            r.target_matchers.extend(t);
            r.source_match.clear();
            r.source_match_re.clear();
            r.target_match.clear();
            r.target_match_re.clear();
        }
        let legacy = std::mem::take(&mut self.mute_time_intervals);
        self.time_intervals.extend(legacy);
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let receivers: BTreeSet<&str> = self.receivers.iter().map(|r| r.name.as_str()).collect();
        if receivers.len() != self.receivers.len() {
            return Err(invalid("receivers", "receiver names must be unique"));
        }
        let mut intervals = BTreeSet::new();
        for t in &self.time_intervals {
            if !intervals.insert(t.name.as_str()) {
                return Err(invalid(
                    "time_intervals",
                    format!("time interval {:?} is defined twice", t.name),
                ));
            }
        }
        let root = &self.route;
        for (name, integrations) in &self.aiops.receivers {
            if !receivers.contains(name.as_str()) {
                return Err(invalid(
                    format!("aiops.receivers.{name}"),
                    format!("no receiver named {name:?} in `receivers`"),
                ));
            }
            if let Some(k) = integrations
                .keys()
                .find(|k| !matches!(k.as_str(), "feishu_configs" | "dingtalk_configs"))
            {
                return Err(invalid(
                    format!("aiops.receivers.{name}.{k}"),
                    "unknown integration (feishu_configs, dingtalk_configs)",
                ));
            }
        }
        if root.receiver.is_none() {
            return Err(invalid("route", "the root route needs a receiver"));
        }
        if !root.matchers.is_empty() {
            return Err(invalid("route", "the root route must not have matchers"));
        }
        if !root.mute_time_intervals.is_empty() || !root.active_time_intervals.is_empty() {
            return Err(invalid(
                "route",
                "the root route cannot have mute or active time intervals",
            ));
        }
        fn walk(
            r: &RouteConfig,
            at: &str,
            receivers: &BTreeSet<&str>,
            intervals: &BTreeSet<&str>,
        ) -> Result<(), ConfigError> {
            if let Some(name) = &r.receiver
                && !receivers.contains(name.as_str())
            {
                return Err(invalid(
                    format!("{at}.receiver"),
                    format!("no receiver named {name:?} in `receivers`"),
                ));
            }
            for name in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
                if !intervals.contains(name.as_str()) {
                    return Err(invalid(
                        at,
                        format!("no time interval named {name:?} in `time_intervals`"),
                    ));
                }
            }
            if let Some(g) = &r.group_by
                && g.iter().any(|l| l == "...")
                && g.len() > 1
            {
                return Err(invalid(
                    format!("{at}.group_by"),
                    "'...' groups by all labels and cannot be combined with others",
                ));
            }
            for (name, d) in [
                ("group_interval", r.group_interval),
                ("repeat_interval", r.repeat_interval),
            ] {
                if d.is_some_and(|d| d.0.is_zero()) {
                    return Err(invalid(format!("{at}.{name}"), "must be greater than 0"));
                }
            }
            if let Some(b) = r.notification_budget
                && (b.per.0.is_zero() || b.max == 0)
            {
                return Err(invalid(
                    format!("{at}.notification_budget"),
                    "max and per must be greater than 0",
                ));
            }
            for (i, c) in r.routes.iter().enumerate() {
                walk(c, &format!("{at}.routes[{i}]"), receivers, intervals)?;
            }
            Ok(())
        }
        walk(root, "route", &receivers, &intervals)?;
        if self.aiops.flapping.threshold == 1 {
            return Err(invalid(
                "aiops.flapping.threshold",
                "1 would mark every alert flapping on its first change; use 0 to turn it off or at least 2",
            ));
        }
        Ok(())
    }

    /// The stale timeout of a source, in ms (0 = never).
    pub fn resolve_timeout_ms(&self, source: &str) -> i64 {
        if let Some(d) = self
            .aiops
            .sources
            .get(source)
            .and_then(|s| s.resolve_timeout)
        {
            return d.ms();
        }
        match source {
            // These send their resolutions (and only notify on change): never stale. `aiops` is
            // the source of aiops' own SQL alert rules, which send state changes only.
            "alertmanager" | "grafana" | "aiops" | "pipeline" | "datadog" | "cloudwatch" => 0,
            _ => self
                .global
                .get("resolve_timeout")
                .and_then(|v| v.as_str())
                .and_then(|s| humantime::parse_duration(s).ok())
                .map_or(300_000, |d| {
                    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
                }),
        }
    }

    /// The identifying labels of a source, if configured.
    pub fn fingerprint_labels(&self, source: &str) -> Option<&[String]> {
        self.aiops
            .sources
            .get(source)
            .and_then(|s| s.fingerprint_labels.as_deref())
    }

    /// A time interval by name.
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses() {
        let c = AlertingConfig::parse(include_str!("../../../pipelines/alerting.yaml"))
            .unwrap_or_else(|e| panic!("pipelines/alerting.yaml: {e}"));
        assert_eq!(c.receivers.len(), 4);
        assert!(c.aiops.incidents.dependencies.contains_key("frontend"));
    }

    #[test]
    fn default_config_parses() {
        AlertingConfig::parse(DEFAULT_CONFIG).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn alertmanager_style_config_parses_with_legacy_matchers() {
        let c = AlertingConfig::parse(
            r#"
global:
  resolve_timeout: 2m
route:
  receiver: team-x
  group_by: ['alertname', 'cluster']
  routes:
    - match: {service: db}
      receiver: team-db
      continue: true
    - matchers: ['severity=~"crit.*"']
      receiver: pager
      mute_time_intervals: [offhours]
receivers:
  - name: team-x
    slack_configs: [{channel: '#x'}]
  - name: team-db
  - name: pager
time_intervals:
  - name: offhours
    time_intervals:
      - weekdays: ['saturday', 'sunday']
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.route.routes[0].matchers.len(), 1);
        assert!(c.route.routes[0].continue_);
        assert_eq!(c.resolve_timeout_ms("api"), 120_000);
        assert_eq!(c.resolve_timeout_ms("alertmanager"), 0);
        // aiops' own SQL alert rules send state changes only: a long-firing rule stays firing.
        assert_eq!(c.resolve_timeout_ms("aiops"), 0);
        assert!(c.receivers[0].integrations.contains_key("slack_configs"));
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases = [
            (
                "route: {receiver: nobody}\nreceivers: [{name: a}]",
                "route.receiver",
            ),
            (
                "route: {receiver: a, group_wait: soon}\nreceivers: [{name: a}]",
                "bad duration",
            ),
            (
                "route: {receiver: a, routes: [{matchers: ['x=~\"(\"']}]}\nreceivers: [{name: a}]",
                "route.routes[0]",
            ),
            (
                "route: {receiver: a, routes: [{mute_time_intervals: [night]}]}\nreceivers: [{name: a}]",
                "no time interval named \"night\"",
            ),
            (
                "route: {receiver: a, gruop_by: [x]}\nreceivers: [{name: a}]",
                "gruop_by",
            ),
        ];
        for (yaml, needle) in cases {
            let e = AlertingConfig::parse(yaml).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(needle)),
                "{yaml}: {e:?} should mention {needle}"
            );
        }
    }
}
