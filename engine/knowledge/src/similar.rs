//! Similar past incidents, and a draft runbook from a resolved incident.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{EntryInput, Links, tokenizer};

/// What similarity looks at in an incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentDoc {
    /// Incident id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Whether it is resolved (only resolved ones are offered as similar).
    pub resolved: bool,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// Alert names of its alerts.
    pub alertnames: Vec<String>,
    /// Services of its alerts.
    pub services: Vec<String>,
    /// Label values of its alerts (`instance`, `namespace`, …).
    pub label_values: Vec<String>,
    /// Log template ids seen with it.
    pub template_ids: Vec<String>,
    /// Free text: summaries, descriptions, notes.
    pub text: String,
    /// Root cause, from the timeline.
    pub root_cause: Option<String>,
    /// Resolution, from the timeline.
    pub resolution: Option<String>,
}

/// A similar past incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarIncident {
    /// Incident id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Similarity in [0, 1].
    pub score: f64,
    /// What matched: `alertname:X`, `service:Y`, `template:Z`, `label:V`.
    pub shared: Vec<String>,
    /// Its root cause.
    pub root_cause: Option<String>,
    /// Its resolution.
    pub resolution: Option<String>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
}

/// The most similar incidents listed.
pub const MAX_SIMILAR: usize = 5;
/// Below this similarity an incident is not listed.
pub const SIMILARITY_FLOOR: f64 = 0.2;

/// Weights of the similarity dimensions: alert names count most.
const W_ALERTNAME: f64 = 4.0;
const W_SERVICE: f64 = 2.0;
const W_TEMPLATE: f64 = 2.0;
const W_LABEL: f64 = 1.0;
const W_TEXT: f64 = 1.0;

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect()
}

fn jaccard<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

fn text_terms(d: &IncidentDoc) -> BTreeSet<String> {
    let mut an = tokenizer::analyzer();
    tokenizer::distinct_terms(&mut an, &format!("{}\n{}", d.title, d.text))
        .into_iter()
        .collect()
}

/// The resolved incidents most like `target` (never itself), at most `limit` (≤ 5), best
/// first, ties by id. Similarity: weighted Jaccard over alert names (weight 4), services (2),
/// template ids (2), label values (1) and text words (1), averaged over the dimensions either
/// side has; an incident sharing no alert name, service, template or label value is not
/// listed, nor one under [`SIMILARITY_FLOOR`].
pub fn similar_incidents(
    target: &IncidentDoc,
    past: &[IncidentDoc],
    limit: usize,
) -> Vec<SimilarIncident> {
    let limit = limit.min(MAX_SIMILAR);
    let t_terms = text_terms(target);
    let mut out: Vec<SimilarIncident> = Vec::new();
    for p in past {
        if !p.resolved || p.id == target.id {
            continue;
        }
        let mut shared = Vec::new();
        let mut num = 0.0;
        let mut den = 0.0;
        let dims: [(&str, f64, &[String], &[String]); 4] = [
            ("alertname", W_ALERTNAME, &target.alertnames, &p.alertnames),
            ("service", W_SERVICE, &target.services, &p.services),
            (
                "template",
                W_TEMPLATE,
                &target.template_ids,
                &p.template_ids,
            ),
            ("label", W_LABEL, &target.label_values, &p.label_values),
        ];
        for (name, w, a, b) in dims {
            let (a, b) = (set(a), set(b));
            if a.is_empty() && b.is_empty() {
                continue;
            }
            den += w;
            num += w * jaccard(&a, &b);
            shared.extend(a.intersection(&b).map(|v| format!("{name}:{v}")));
        }
        if shared.is_empty() {
            continue;
        }
        let p_terms = text_terms(p);
        if !(t_terms.is_empty() && p_terms.is_empty()) {
            den += W_TEXT;
            num += W_TEXT * jaccard(&t_terms, &p_terms);
        }
        let score = if den > 0.0 { num / den } else { 0.0 };
        if score < SIMILARITY_FLOOR {
            continue;
        }
        out.push(SimilarIncident {
            id: p.id.clone(),
            title: p.title.clone(),
            score,
            shared,
            root_cause: p.root_cause.clone(),
            resolution: p.resolution.clone(),
            resolved_at_ms: p.resolved_at_ms,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    out.truncate(limit);
    out
}

/// A draft runbook proposed from a resolved incident: id `drafts/<incident id>`, `draft: true`,
/// sections Timeline, Root cause candidates, Remedy and What fixed it, linked to the incident's
/// alert names and services. Timeline kinds containing `remed`, `action`, `effect` or `heal`
/// are listed under Remedy too.
pub fn draft_from_incident(doc: &IncidentDoc, timeline: &[(i64, String, String)]) -> EntryInput {
    let safe_id: String = doc
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .replace("..", "_");
    let title = if doc.title.trim().is_empty() {
        format!("Incident {}", doc.id)
    } else {
        doc.title
            .chars()
            .take(crate::entry::MAX_TITLE_CHARS)
            .collect()
    };
    let mut body = format!(
        "# {title}\n\nDrafted from incident {} when it resolved; review and edit before publishing.\n",
        doc.id
    );
    if !doc.text.trim().is_empty() {
        body.push_str(&format!("\n{}\n", doc.text.trim()));
    }
    body.push_str("\n## Timeline\n\n");
    let mut sorted: Vec<&(i64, String, String)> = timeline.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    if sorted.is_empty() {
        body.push_str("- (no timeline recorded)\n");
    }
    for (at, kind, text) in &sorted {
        body.push_str(&format!("- {} [{kind}] {}\n", rfc3339(*at), one_line(text)));
    }
    body.push_str("\n## Root cause candidates\n\n");
    match &doc.root_cause {
        Some(r) if !r.trim().is_empty() => body.push_str(&format!("- {}\n", one_line(r))),
        _ => body.push_str("- (none recorded yet)\n"),
    }
    body.push_str("\n## Remedy\n\n");
    let remedies: Vec<&&(i64, String, String)> = sorted
        .iter()
        .filter(|(_, k, _)| {
            let k = k.to_lowercase();
            ["remed", "action", "effect", "heal"]
                .iter()
                .any(|c| k.contains(c))
        })
        .collect();
    if remedies.is_empty() {
        body.push_str("- (no remedy ran)\n");
    }
    for (at, kind, text) in remedies {
        body.push_str(&format!("- {} [{kind}] {}\n", rfc3339(*at), one_line(text)));
    }
    body.push_str("\n## What fixed it\n\n");
    match &doc.resolution {
        Some(r) if !r.trim().is_empty() => body.push_str(&format!("{}\n", r.trim())),
        _ => body.push_str("(not recorded yet)\n"),
    }
    EntryInput {
        id: format!("drafts/{safe_id}")
            .chars()
            .take(crate::entry::MAX_ID_BYTES)
            .collect(),
        title,
        body,
        tags: vec!["incident".to_string()],
        owner: None,
        links: Links {
            alertnames: doc.alertnames.clone(),
            services: doc.services.clone(),
            template_ids: doc.template_ids.clone(),
            ..Links::default()
        },
        draft: true,
        source: Some(format!("incident:{}", doc.id)),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `at_ms` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a clock or a date crate.
fn rfc3339(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_342_400_000), "2026-12-04T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 3_661_000), "2000-02-29T01:01:01Z");
    }
}
