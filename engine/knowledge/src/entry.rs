//! Entries, the commands that change them, and input validation.

use serde::{Deserialize, Serialize};

use crate::KnowledgeError;

/// The largest accepted entry (title + body + tags + links), in bytes: 1 MiB. A runbook is a few
/// kilobytes; a larger "entry" is a pasted log or a binary and belongs elsewhere.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// The most tags one entry may carry.
pub const MAX_TAGS: usize = 64;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// The longest entry id, in bytes.
pub const MAX_ID_BYTES: usize = 200;

/// Links that attach an entry to alerts deterministically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Links {
    /// Alert names this entry is the runbook of.
    pub alertnames: Vec<String>,
    /// Label matchers in Alertmanager syntax (`severity=~"crit.*"`); all must match an alert's
    /// labels for the entry to link (an empty list never links).
    pub matchers: Vec<String>,
    /// Services (the alert label `service`) this entry is about.
    pub services: Vec<String>,
    /// Log template ids (from the template miner) this entry explains.
    pub template_ids: Vec<String>,
    /// Runbook URLs (an alert's `runbook_url` annotation) that resolve to this entry.
    pub runbook_urls: Vec<String>,
}

/// What a client or the importer submits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Stable id, `[A-Za-z0-9._/-]{1,200}` without `..` (an imported file's path without `.md`).
    pub id: String,
    /// Title, 1 to 300 characters.
    pub title: String,
    /// Body in Markdown.
    pub body: String,
    /// Free tags (filters in search).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owning team or person.
    #[serde(default)]
    pub owner: Option<String>,
    /// Deterministic links to alerts.
    #[serde(default)]
    pub links: Links,
    /// A draft (e.g. proposed from a resolved incident) is hidden from search unless asked for.
    #[serde(default)]
    pub draft: bool,
    /// Where it came from, e.g. the import path.
    #[serde(default)]
    pub source: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// See [`EntryInput::id`].
    pub id: String,
    /// See [`EntryInput::title`].
    pub title: String,
    /// See [`EntryInput::body`].
    pub body: String,
    /// See [`EntryInput::tags`].
    pub tags: Vec<String>,
    /// See [`EntryInput::owner`].
    pub owner: Option<String>,
    /// See [`EntryInput::links`].
    pub links: Links,
    /// See [`EntryInput::draft`].
    pub draft: bool,
    /// See [`EntryInput::source`].
    pub source: Option<String>,
    /// 1 on create, +1 per applied content change (a `Put` that changes something). Feedback
    /// and verification do not bump it, so a reader's click never makes an editor's save
    /// conflict.
    pub revision: u64,
    /// Event time of the create.
    pub created_at_ms: i64,
    /// Event time of the last content change.
    pub updated_at_ms: i64,
    /// Who made the last content change.
    pub updated_by: String,
    /// Event time of the last `Verify`.
    pub last_verified_ms: Option<i64>,
    /// "Helpful" votes.
    pub helpful: u64,
    /// "Not helpful" votes.
    pub not_helpful: u64,
}

impl Entry {
    /// The submitted part of the entry.
    pub fn input(&self) -> EntryInput {
        EntryInput {
            id: self.id.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            tags: self.tags.clone(),
            owner: self.owner.clone(),
            links: self.links.clone(),
            draft: self.draft,
            source: self.source.clone(),
        }
    }

    /// Whether the submitted fields equal `input` (a `Put` of it would change nothing).
    pub fn same_content(&self, input: &EntryInput) -> bool {
        self.id == input.id
            && self.title == input.title
            && self.body == input.body
            && self.tags == input.tags
            && self.owner == input.owner
            && self.links == input.links
            && self.draft == input.draft
            && self.source == input.source
    }

    /// The score multiplier from feedback: `1 + 0.1·(h−n)/(h+n+5)`, clamped to [0.8, 1.2]. A
    /// few votes move an entry a little; no number of votes buries or crowns it.
    pub fn feedback_factor(&self) -> f32 {
        let h = self.helpful as f64;
        let n = self.not_helpful as f64;
        let f = 1.0 + 0.1 * (h - n) / (h + n + 5.0);
        f.clamp(0.8, 1.2) as f32
    }
}

/// A change, as recorded in the log (serde: internally tagged `"op"`, snake_case).
// A `Put` carries its entry inline: commands are decoded one at a time from the log, and the
// variant layout is the recorded wire format the server builds against.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Create or replace. `base_revision: Some(r)` = optimistic concurrency: applies only when
    /// the stored revision is `r` (0 = must not exist); otherwise refused naming the revision
    /// that won and who wrote it. `None` = create or replace unconditionally. A `Put` whose
    /// content equals the stored entry is a no-op (no revision bump), so re-importing the same
    /// folder changes nothing.
    Put {
        /// The new content.
        entry: EntryInput,
        /// The revision the writer read, if it wants the check.
        base_revision: Option<u64>,
        /// Who writes (user, token id or `import`).
        by: String,
        /// Event time.
        at_ms: i64,
    },
    /// Remove an entry.
    Delete {
        /// Entry id.
        id: String,
        /// The revision the writer read, if it wants the check.
        base_revision: Option<u64>,
        /// Who deletes.
        by: String,
        /// Event time.
        at_ms: i64,
    },
    /// A helpful / not-helpful vote (re-ranks the entry, boundedly).
    Feedback {
        /// Entry id.
        id: String,
        /// The vote.
        helpful: bool,
        /// Who voted.
        by: String,
        /// Event time.
        at_ms: i64,
    },
    /// Someone checked the entry is still right: sets `last_verified_ms`.
    Verify {
        /// Entry id.
        id: String,
        /// Who verified.
        by: String,
        /// Event time.
        at_ms: i64,
    },
}

/// Whether `id` is an acceptable entry id; the reason when not.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("entry id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "entry id is {} bytes long; the limit is {MAX_ID_BYTES}",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!(
            "entry id {id:?} contains {c:?}; allowed are A-Z a-z 0-9 . _ / -"
        ));
    }
    if id.contains("..") {
        return Err(format!("entry id {id:?} contains \"..\""));
    }
    Ok(())
}

/// Checks an entry before it is applied: id `[A-Za-z0-9._/-]{1,200}` without `..`, title 1 to
/// 300 characters, the whole entry at most [`MAX_ENTRY_BYTES`], at most [`MAX_TAGS`] tags, and
/// every matcher parses.
///
/// # Errors
/// [`KnowledgeError::Invalid`] with a message for the user naming the field and the reason.
pub fn validate(input: &EntryInput) -> Result<(), KnowledgeError> {
    let bad = |m: String| Err(KnowledgeError::Invalid(m));
    if let Err(m) = check_id(&input.id) {
        return bad(m);
    }
    let title_chars = input.title.trim().chars().count();
    if title_chars == 0 {
        return bad(format!("entry {:?}: the title is empty", input.id));
    }
    if input.title.chars().count() > MAX_TITLE_CHARS {
        return bad(format!(
            "entry {:?}: the title is {} characters long; the limit is {MAX_TITLE_CHARS}",
            input.id,
            input.title.chars().count()
        ));
    }
    let size = entry_size(input);
    if size > MAX_ENTRY_BYTES {
        return bad(format!(
            "entry {:?} is {size} bytes; the limit is {MAX_ENTRY_BYTES} bytes (1 MiB)",
            input.id
        ));
    }
    if input.tags.len() > MAX_TAGS {
        return bad(format!(
            "entry {:?} has {} tags; the limit is {MAX_TAGS}",
            input.id,
            input.tags.len()
        ));
    }
    if let Some(t) = input.tags.iter().find(|t| t.trim().is_empty()) {
        return bad(format!("entry {:?} has an empty tag ({t:?})", input.id));
    }
    for m in &input.links.matchers {
        if let Err(e) = aiops_alerting::matcher::Matcher::parse(m) {
            return bad(format!(
                "entry {:?}: matcher {m:?} does not parse: {e}",
                input.id
            ));
        }
    }
    Ok(())
}

/// Bytes of everything the entry stores.
fn entry_size(input: &EntryInput) -> usize {
    let l = &input.links;
    let lists = [
        &input.tags,
        &l.alertnames,
        &l.matchers,
        &l.services,
        &l.template_ids,
        &l.runbook_urls,
    ];
    input.id.len()
        + input.title.len()
        + input.body.len()
        + input.owner.as_ref().map_or(0, String::len)
        + input.source.as_ref().map_or(0, String::len)
        + lists
            .iter()
            .map(|v| v.iter().map(String::len).sum::<usize>())
            .sum::<usize>()
}
