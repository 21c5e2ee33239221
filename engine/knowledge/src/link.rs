//! Linking an alert to its runbooks: deterministic links first, then a search fallback.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::index::Filters;
use crate::{Entry, KnowledgeBase, KnowledgeError};

/// What is known about an alert (or an incident's main alert) when linking or asking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertContext {
    /// The alert name.
    pub alertname: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, `runbook_url`).
    pub annotations: BTreeMap<String, String>,
    /// Log template ids seen with the alert.
    pub template_ids: Vec<String>,
    /// Text of the top log templates.
    pub top_templates: Vec<String>,
}

/// An entry linked to an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedEntry {
    /// Entry id.
    pub entry_id: String,
    /// Entry title.
    pub title: String,
    /// How it was found: `runbook_url`, `alertname`, `matchers`, `service`, `template` or
    /// `search`.
    pub how: String,
    /// The search score (for `search` only).
    pub score: Option<f32>,
    /// The alert's runbook URL (for `runbook_url` only).
    pub url: Option<String>,
}

impl AlertContext {
    /// The text the search fallback (and `ask` with a context) uses: alert name, summary,
    /// description (Go-template placeholders removed) and the top log templates.
    pub fn search_text(&self) -> String {
        let mut parts = vec![self.alertname.clone()];
        for k in ["summary", "description", "message"] {
            if let Some(v) = self.annotations.get(k) {
                parts.push(strip_placeholders(v));
            }
        }
        parts.extend(self.top_templates.iter().cloned());
        let mut text = parts.join("\n");
        // Annotations come from alert senders and API bodies: the query stays as small as a
        // typed one.
        if text.len() > crate::search::MAX_QUERY_BYTES {
            let mut cut = crate::search::MAX_QUERY_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }
}

/// `s` without Go-template actions (`{{ $labels.pod }}`, `{{ $value | humanize }}`).
pub fn strip_placeholders(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i..].find("}}") {
            Some(j) => {
                out.push(' ');
                rest = &rest[i + j + 2..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether the alert's runbook URL names this entry: equal to one of its `runbook_urls`, or
/// the URL's path ends with the entry's source (or id) without `.md`, case-insensitively.
fn url_names(e: &Entry, url: &str) -> bool {
    if e.links.runbook_urls.iter().any(|u| u == url) {
        return true;
    }
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let path = path.strip_suffix(".md").unwrap_or(path).to_lowercase();
    let ends = |s: &str| {
        let s = s.trim_start_matches("./").trim_start_matches('/');
        let s = s.strip_suffix(".md").unwrap_or(s).to_lowercase();
        !s.is_empty() && (path == s || path.ends_with(&format!("/{s}")))
    };
    e.source.as_deref().is_some_and(ends) || ends(&e.id)
}

/// A deterministic link rule.
type Tier<'a> = dyn Fn(&Entry) -> bool + 'a;

impl KnowledgeBase {
    /// The runbooks of an alert, deterministic links first (each entry once, in this order:
    /// `runbook_url` annotation, alert name, all matchers, `service` label, template ids; id
    /// order within each), then — only when none linked — a search over
    /// [`AlertContext::search_text`] whose coverage of the text's known words (words some
    /// entry contains; the alert's own name usually is not) reaches the floor. Drafts never
    /// link.
    ///
    /// # Errors
    /// [`KnowledgeError::Index`] on an index failure (a bug).
    pub fn link(
        &self,
        alert: &AlertContext,
        limit: usize,
    ) -> Result<Vec<LinkedEntry>, KnowledgeError> {
        let limit = limit.clamp(1, crate::search::MAX_LIMIT);
        let mut out: Vec<LinkedEntry> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut labels = alert.labels.clone();
        labels
            .entry("alertname".to_string())
            .or_insert_with(|| alert.alertname.clone());
        let url = alert
            .annotations
            .get("runbook_url")
            .filter(|u| !u.trim().is_empty());
        let service = alert.labels.get("service");
        let tiers: [(&str, &Tier<'_>); 5] = [
            ("runbook_url", &|e| url.is_some_and(|u| url_names(e, u))),
            ("alertname", &|e| {
                !alert.alertname.is_empty() && e.links.alertnames.contains(&alert.alertname)
            }),
            ("matchers", &|e| {
                !e.links.matchers.is_empty()
                    && e.links.matchers.iter().all(|m| {
                        aiops_alerting::matcher::Matcher::parse(m).is_ok_and(|m| m.matches(&labels))
                    })
            }),
            ("service", &|e| {
                service.is_some_and(|s| e.links.services.contains(s))
            }),
            ("template", &|e| {
                e.links
                    .template_ids
                    .iter()
                    .any(|t| alert.template_ids.contains(t))
            }),
        ];
        for (how, pred) in tiers {
            for e in self.entries().filter(|e| !e.draft) {
                if out.len() >= limit {
                    return Ok(out);
                }
                if !seen.contains(e.id.as_str()) && pred(e) {
                    seen.insert(&e.id);
                    out.push(LinkedEntry {
                        entry_id: e.id.clone(),
                        title: e.title.clone(),
                        how: how.to_string(),
                        score: None,
                        url: (how == "runbook_url").then(|| url.cloned()).flatten(),
                    });
                }
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let text = alert.search_text();
        let floor = self.tuning().coverage_floor;
        for s in self.scored(&text, &Filters::default(), limit, true)? {
            if s.known_coverage >= floor {
                out.push(LinkedEntry {
                    entry_id: s.hit.entry_id,
                    title: s.hit.title,
                    how: "search".to_string(),
                    score: Some(s.hit.score),
                    url: None,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_removed() {
        assert_eq!(
            strip_placeholders(
                "Pod {{ $labels.namespace }}/{{ $labels.pod}} has {{ $value | humanize }} errors"
            ),
            "Pod  /  has   errors"
        );
        assert_eq!(strip_placeholders("broken {{ open"), "broken ");
    }
}
