//! The alert rule stage: turns the rows of an `INSERT INTO alerts` pipeline into alerts of the
//! `alerts` schema, with Prometheus-like `for` semantics.
//!
//! A row emitted for a window means the rule's condition (its HAVING) held for that group in
//! that window. The group's identity is the set of its string columns (they become the alert's
//! labels, with `alertname` and `severity`); its other columns become annotations so the alert
//! shows the value. A group fires once its condition held in N consecutive windows (`-- @for`),
//! with `starts_at` the start of the first of them, and resolves at the first window the
//! watermark closed without a row for it (`ends_at` = that window's start). Only state changes
//! leave the stage (one `firing`, one `resolved`), so the alerts it appends to the log are the
//! decisions, not a repetition of them.
//!
//! Decisions are final at window close: a late revision of a window (revision > 0) or a second
//! emission of a window already counted does not change a streak, so late data cannot make an
//! alert fire twice. The state (one streak per group) is small, serializable
//! ([`AlertRule::checkpoint`]) and deterministic: the same emissions in the same order give the
//! same bytes out.

use crate::runtime::ID_COLUMNS;
use crate::settings::PipelineSettings;
use aiops_schemas::builders::{AlertBatchBuilder, AlertRow};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema, UInt32Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `source` of the alerts this stage produces.
pub const SOURCE: &str = "aiops";

/// Version of the checkpoint format; a checkpoint of another version is refused.
const CHECKPOINT_VERSION: u32 = 1;

/// A result of the alert rule stage.
pub type Result<T, E = AlertRuleError> = std::result::Result<T, E>;

/// Why the stage failed on an emission or a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum AlertRuleError {
    /// The emission lacks a column of the SELECT the rule was built for.
    #[error("alert rule {rule}: the emitted rows lack column {column:?}")]
    MissingColumn {
        /// The rule (pipeline name).
        rule: String,
        /// The missing column.
        column: String,
    },
    /// The window size given is not positive.
    #[error("alert rule {rule}: window size {size_ms} ms is not positive")]
    WindowSize {
        /// The rule.
        rule: String,
        /// The size given.
        size_ms: i64,
    },
    /// Arrow failed to read the rows or build the alerts.
    #[error("alert rule {rule}: {source}")]
    Arrow {
        /// The rule.
        rule: String,
        /// The cause.
        source: ArrowError,
    },
    /// A checkpoint cannot be read back.
    #[error("alert rule {rule}: checkpoint: {detail}")]
    Checkpoint {
        /// The rule.
        rule: String,
        /// What is wrong.
        detail: String,
    },
}

/// What a SELECT column becomes in an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A string column: part of the group's identity.
    Label,
    /// A value (number, boolean, …): shown as text.
    Annotation,
    /// The window (a timestamp): only usable in `@summary`.
    Skip,
}

/// The streak of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Group {
    /// Labels, alertname and severity included.
    labels: BTreeMap<String, String>,
    /// Annotations of the latest window it held in.
    annotations: BTreeMap<String, String>,
    /// Start of the first window of the streak, Unix ms.
    streak_start_ms: i64,
    /// Start of the latest window it held in, Unix ms.
    last_window_ms: i64,
    /// Consecutive windows it held in (saturating).
    held: u32,
    /// Whether the firing alert was emitted (and not resolved yet).
    firing: bool,
}

/// The serializable state of the stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Format version.
    version: u32,
    /// The rule the state belongs to.
    rule: String,
    /// Window size seen in emissions, ms.
    window_size_ms: Option<i64>,
    /// Groups with a streak, by fingerprint (so outputs come sorted by fingerprint).
    groups: BTreeMap<String, Group>,
}

/// One state change to emit.
struct Change {
    fingerprint: String,
    resolved: bool,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at_ms: i64,
    ends_at_ms: Option<i64>,
}

/// The alert stage of one alert rule pipeline.
#[derive(Debug, Clone)]
pub struct AlertRule {
    name: String,
    settings: PipelineSettings,
    columns: Vec<(String, Role)>,
    generator_url: Option<String>,
    state: State,
}

/// The fingerprint of a label set: FNV-1a over the labels sorted by name, each name and value
/// followed by a 0xff byte, as 16 hex digits. It is the algorithm of Prometheus'
/// `LabelSet.Fingerprint`, so it is stable across restarts, versions and platforms.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for (k, v) in labels {
        h = aiops_schemas::partition::fnv1a(h, k.as_bytes());
        h = aiops_schemas::partition::fnv1a(h, &[0xff]);
        h = aiops_schemas::partition::fnv1a(h, v.as_bytes());
        h = aiops_schemas::partition::fnv1a(h, &[0xff]);
    }
    format!("{h:016x}")
}

fn role(t: &DataType) -> Role {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Role::Label,
        DataType::Dictionary(_, v) if role(v) == Role::Label => Role::Label,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => Role::Skip,
        _ => Role::Annotation,
    }
}

impl AlertRule {
    /// The stage of pipeline `name` with its header `settings`, for rows of `select` (the
    /// pipeline's SELECT schema; `event_id` and `revision` are ignored if present).
    pub fn new(name: &str, settings: PipelineSettings, select: &Schema) -> AlertRule {
        let columns = select
            .fields()
            .iter()
            .filter(|f| !ID_COLUMNS.contains(&f.name().as_str()))
            .map(|f| (f.name().clone(), role(f.data_type())))
            .collect();
        AlertRule {
            name: name.to_string(),
            settings,
            columns,
            generator_url: None,
            state: State {
                version: CHECKPOINT_VERSION,
                rule: name.to_string(),
                ..State::default()
            },
        }
    }

    /// Sets the `generator_url` of the alerts (a link to the rule in the operator's UI).
    pub fn with_generator_url(mut self, url: impl Into<String>) -> AlertRule {
        self.generator_url = Some(url.into());
        self
    }

    /// The rule's name (its pipeline's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Groups whose condition holds now (pending or firing).
    pub fn active_groups(&self) -> usize {
        self.state.groups.len()
    }

    /// Groups whose alert is firing.
    pub fn firing_groups(&self) -> usize {
        self.state.groups.values().filter(|g| g.firing).count()
    }

    fn arrow(&self) -> impl Fn(ArrowError) -> AlertRuleError + '_ {
        move |source| AlertRuleError::Arrow {
            rule: self.name.clone(),
            source,
        }
    }

    /// Takes the rows the pipeline emitted for the window starting at `window_start_ms`
    /// (`window_size_ms` long): each row is a group whose condition held in that window.
    /// Returns the alerts that changed state (newly firing, or resolved because a streak broke),
    /// sorted by fingerprint, or `None`.
    ///
    /// # Errors
    /// [`AlertRuleError`] when a column of the SELECT is missing or Arrow fails.
    pub fn on_emission(
        &mut self,
        window_start_ms: i64,
        window_size_ms: i64,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>> {
        if window_size_ms <= 0 {
            return Err(AlertRuleError::WindowSize {
                rule: self.name.clone(),
                size_ms: window_size_ms,
            });
        }
        self.state.window_size_ms = Some(window_size_ms);
        let need = self.settings.windows_for(window_size_ms);
        let opts = FormatOptions::default();
        let mut cols = Vec::with_capacity(self.columns.len());
        for (name, r) in &self.columns {
            let Some(c) = batch.column_by_name(name) else {
                return Err(AlertRuleError::MissingColumn {
                    rule: self.name.clone(),
                    column: name.clone(),
                });
            };
            let f = ArrayFormatter::try_new(c.as_ref(), &opts).map_err(self.arrow())?;
            cols.push((name.as_str(), *r, c, f));
        }
        let revisions = batch
            .column_by_name(ID_COLUMNS[1])
            .and_then(|c| c.as_primitive_opt::<UInt32Type>());
        let mut changes = Vec::new();
        let mut updates: Vec<(String, Group)> = Vec::new();
        for row in 0..batch.num_rows() {
            // A revision re-states a window that was already judged at its close.
            if revisions.is_some_and(|r| r.is_valid(row) && r.value(row) > 0) {
                continue;
            }
            let value = |name: &str| {
                cols.iter()
                    .find(|(n, ..)| *n == name)
                    .and_then(|(_, _, c, f)| c.is_valid(row).then(|| f.value(row).to_string()))
            };
            let mut labels = BTreeMap::new();
            let mut annotations = BTreeMap::new();
            for (name, r, c, f) in &cols {
                if !c.is_valid(row) {
                    continue;
                }
                let v = f.value(row).to_string();
                match r {
                    // An empty label is no label, as in Prometheus.
                    Role::Label if !v.is_empty() => {
                        labels.insert((*name).to_string(), v);
                    }
                    Role::Annotation => {
                        annotations.insert((*name).to_string(), v);
                    }
                    _ => {}
                }
            }
            labels
                .entry("alertname".to_string())
                .or_insert_with(|| self.name.clone());
            if let Some(sev) = &self.settings.severity {
                labels
                    .entry("severity".to_string())
                    .or_insert_with(|| sev.clone());
            }
            if let Some(s) = self.settings.render_summary(value) {
                annotations.insert("summary".to_string(), s);
            }
            let fp = fingerprint(&labels);
            let pending = updates.iter().position(|(f, _)| *f == fp);
            let current = match pending {
                Some(i) => Some(updates[i].1.clone()),
                None => self.state.groups.get(&fp).cloned(),
            };
            let g = match current {
                // Already counted (a repeated emission, or a second group with the same labels).
                Some(g) if window_start_ms <= g.last_window_ms => continue,
                Some(mut g) if window_start_ms == g.last_window_ms + window_size_ms => {
                    g.held = g.held.saturating_add(1);
                    g.last_window_ms = window_start_ms;
                    g.annotations = annotations;
                    g
                }
                previous => {
                    // A gap: windows in between closed without the condition holding.
                    if let Some(p) = previous
                        && p.firing
                    {
                        changes.push(resolve(&fp, &p, window_size_ms));
                    }
                    Group {
                        labels,
                        annotations,
                        streak_start_ms: window_start_ms,
                        last_window_ms: window_start_ms,
                        held: 1,
                        firing: false,
                    }
                }
            };
            let mut g = g;
            if !g.firing && g.held >= need {
                g.firing = true;
                changes.push(Change {
                    fingerprint: fp.clone(),
                    resolved: false,
                    labels: g.labels.clone(),
                    annotations: g.annotations.clone(),
                    starts_at_ms: g.streak_start_ms,
                    ends_at_ms: None,
                });
            }
            match pending {
                Some(i) => updates[i].1 = g,
                None => updates.push((fp, g)),
            }
        }
        for (fp, g) in updates {
            self.state.groups.insert(fp, g);
        }
        self.build(changes)
    }

    /// Takes the watermark after the emissions of a batch: every group with no row for a window
    /// the watermark closed (its end ≤ `watermark_ms`) loses its streak, and a firing one
    /// resolves with `ends_at` = that window's start. Returns the resolved alerts, sorted by
    /// fingerprint, or `None`.
    ///
    /// # Errors
    /// [`AlertRuleError`] when Arrow fails to build the batch.
    pub fn on_watermark(&mut self, watermark_ms: i64) -> Result<Option<RecordBatch>> {
        let Some(size) = self.state.window_size_ms else {
            return Ok(None);
        };
        let mut changes = Vec::new();
        self.state.groups.retain(|fp, g| {
            let missed = g.last_window_ms.saturating_add(size);
            if missed.saturating_add(size) > watermark_ms {
                return true;
            }
            if g.firing {
                changes.push(resolve(fp, g, size));
            }
            false
        });
        self.build(changes)
    }

    /// The stage's state as bytes, to be stored with the pipeline's checkpoint (both taken after
    /// the same emissions).
    pub fn checkpoint(&self) -> Vec<u8> {
        // Serializing maps with string keys and plain numbers cannot fail; an empty checkpoint
        // would be refused by `restore` rather than read as an empty state.
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    /// Replaces the state with one written by [`AlertRule::checkpoint`] of the same rule.
    ///
    /// # Errors
    /// [`AlertRuleError::Checkpoint`] when the bytes are not such a checkpoint; the state is
    /// then unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let bad = |detail: String| AlertRuleError::Checkpoint {
            rule: self.name.clone(),
            detail,
        };
        let state: State = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if state.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {CHECKPOINT_VERSION})",
                state.version
            )));
        }
        if state.rule != self.name {
            return Err(bad(format!("written by alert rule {}", state.rule)));
        }
        self.state = state;
        Ok(())
    }

    /// The alerts of `changes`, stably sorted by fingerprint (a resolution stays before a new
    /// firing of the same group).
    fn build(&self, mut changes: Vec<Change>) -> Result<Option<RecordBatch>> {
        if changes.is_empty() {
            return Ok(None);
        }
        changes.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        let mut b = AlertBatchBuilder::new();
        for c in &changes {
            b.push(AlertRow {
                fingerprint: &c.fingerprint,
                resolved: c.resolved,
                labels: &c.labels,
                annotations: &c.annotations,
                starts_at_ms: c.starts_at_ms,
                ends_at_ms: c.ends_at_ms,
                source: SOURCE,
                generator_url: self.generator_url.as_deref(),
            });
        }
        b.finish().map(Some).map_err(self.arrow())
    }
}

/// The resolution of firing group `g`: it ended at the first window after its last one.
fn resolve(fp: &str, g: &Group, size: i64) -> Change {
    Change {
        fingerprint: fp.to_string(),
        resolved: true,
        labels: g.labels.clone(),
        annotations: g.annotations.clone(),
        starts_at_ms: g.streak_start_ms,
        ends_at_ms: Some(g.last_window_ms.saturating_add(size)),
    }
}
