//! The routing tree, compiled from the configuration with inheritance resolved, and matching as
//! Alertmanager does it: depth first, the first matching child wins unless it says `continue`,
//! and a node none of whose children match is itself the match.

use crate::config::{AlertingConfig, Budget, RouteConfig};
use crate::matcher::{Matcher, all_match};
use crate::model::Labels;

/// Alertmanager's default timings.
const GROUP_WAIT_MS: i64 = 30_000;
const GROUP_INTERVAL_MS: i64 = 300_000;
const REPEAT_INTERVAL_MS: i64 = 4 * 3_600_000;

/// How alerts are grouped by a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By these labels (alerts without one of them group under its absence).
    Labels(Vec<String>),
    /// By all labels (`'...'`): one group per alert.
    All,
}

/// One node of the compiled tree.
#[derive(Debug, Clone)]
pub struct Route {
    /// A stable id: the path of child indexes from the root (`0`, `0.2`, `0.2.1`).
    pub id: String,
    /// Receiver name.
    pub receiver: String,
    /// Grouping.
    pub group_by: GroupBy,
    /// Group wait, ms.
    pub group_wait_ms: i64,
    /// Group interval, ms.
    pub group_interval_ms: i64,
    /// Repeat interval, ms.
    pub repeat_interval_ms: i64,
    /// This node's own matchers.
    pub matchers: Vec<Matcher>,
    /// Continue to siblings after a match.
    pub continue_: bool,
    /// Muted during these intervals.
    pub mute_time_intervals: Vec<String>,
    /// Muted outside these intervals (when non-empty).
    pub active_time_intervals: Vec<String>,
    /// Storm control.
    pub budget: Option<Budget>,
    /// Children, in order.
    pub children: Vec<Route>,
}

impl Route {
    /// Compiles the configured tree, resolving what children inherit.
    pub fn compile(cfg: &AlertingConfig) -> Route {
        let root = &cfg.route;
        let base = Route {
            id: "0".into(),
            receiver: root.receiver.clone().unwrap_or_default(),
            group_by: GroupBy::Labels(Vec::new()),
            group_wait_ms: GROUP_WAIT_MS,
            group_interval_ms: GROUP_INTERVAL_MS,
            repeat_interval_ms: REPEAT_INTERVAL_MS,
            matchers: Vec::new(),
            continue_: false,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            budget: None,
            children: Vec::new(),
        };
        build(root, &base, "0".into())
    }

    /// The routes an alert with `labels` goes to, in tree order.
    pub fn matching<'a>(&'a self, labels: &Labels) -> Vec<&'a Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !all_match(&self.matchers, labels) {
            return false;
        }
        let before = out.len();
        for c in &self.children {
            if c.collect(labels, out) && !c.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// Every route of the tree, depth first.
    pub fn all(&self) -> Vec<&Route> {
        let mut v = vec![self];
        for c in &self.children {
            v.extend(c.all());
        }
        v
    }

    /// The group labels of an alert on this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

fn build(c: &RouteConfig, parent: &Route, id: String) -> Route {
    let group_by = match &c.group_by {
        Some(g) if g.iter().any(|l| l == "...") => GroupBy::All,
        Some(g) => {
            let mut g = g.clone();
            g.sort();
            g.dedup();
            GroupBy::Labels(g)
        }
        None => parent.group_by.clone(),
    };
    let mut r = Route {
        id: id.clone(),
        receiver: c
            .receiver
            .clone()
            .unwrap_or_else(|| parent.receiver.clone()),
        group_by,
        group_wait_ms: c.group_wait.map_or(parent.group_wait_ms, |d| d.ms()),
        group_interval_ms: c
            .group_interval
            .map_or(parent.group_interval_ms, |d| d.ms()),
        repeat_interval_ms: c
            .repeat_interval
            .map_or(parent.repeat_interval_ms, |d| d.ms()),
        matchers: c.matchers.clone(),
        continue_: c.continue_,
        mute_time_intervals: c.mute_time_intervals.clone(),
        active_time_intervals: c.active_time_intervals.clone(),
        budget: c.notification_budget.or(parent.budget),
        children: Vec::new(),
    };
    r.children = c
        .routes
        .iter()
        .enumerate()
        .map(|(i, child)| build(child, &r, format!("{id}.{i}")))
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The example tree of Alertmanager's configuration docs, cut down.
    const TREE: &str = r#"
route:
  receiver: default-receiver
  group_by: ['cluster', 'alertname']
  group_wait: 30s
  routes:
    - receiver: database-pager
      group_wait: 10s
      matchers: ['service=~"mysql|cassandra"']
    - receiver: frontend-pager
      group_by: [product, environment]
      matchers: ['team="frontend"']
    - receiver: audit
      continue: true
      matchers: ['audit="true"']
    - receiver: dev-null
      matchers: ['audit="true"']
receivers:
  - name: default-receiver
  - name: database-pager
  - name: frontend-pager
  - name: audit
  - name: dev-null
"#;

    fn tree() -> Route {
        let c = AlertingConfig::parse(TREE).unwrap_or_else(|e| panic!("{e}"));
        Route::compile(&c)
    }

    #[test]
    fn first_match_wins_and_children_inherit() {
        let t = tree();
        let m = t.matching(&labels(&[("service", "mysql"), ("team", "frontend")]));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].receiver, "database-pager");
        assert_eq!(m[0].group_wait_ms, 10_000);
        assert_eq!(
            m[0].group_by,
            GroupBy::Labels(vec!["alertname".into(), "cluster".into()])
        );
        assert_eq!(m[0].group_interval_ms, GROUP_INTERVAL_MS);
        let f = t.matching(&labels(&[("team", "frontend")]));
        assert_eq!(f[0].receiver, "frontend-pager");
        assert_eq!(f[0].group_wait_ms, 30_000);
    }

    #[test]
    fn continue_reaches_later_siblings_and_no_match_falls_back_to_parent() {
        let t = tree();
        let m = t.matching(&labels(&[("audit", "true")]));
        let r: Vec<&str> = m.iter().map(|r| r.receiver.as_str()).collect();
        assert_eq!(r, ["audit", "dev-null"]);
        let none = t.matching(&labels(&[("service", "redis")]));
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].id, "0");
    }
}
