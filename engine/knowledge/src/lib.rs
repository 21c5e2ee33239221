//! The operations knowledge base, as a pure state machine: no I/O, no clock, no randomness.
//!
//! Runbook entries are changed by [`Command`]s recorded in the event log; the search index is
//! derived state, rebuilt whole from the entries, so the same entry set gives the same results
//! and scores whatever the history.
//!
//! Modules:
//! - [`entry`] — [`Entry`], [`EntryInput`], [`Links`], [`Command`], [`validate`];
//! - [`base`] — [`KnowledgeBase`] — apply, snapshot/restore, state hash;
//! - [`index`] — the derived tantivy index (field weights in [`Tuning`]);
//! - [`tokenizer`] — English stemming, camelCase alert names, Chinese bigrams (or jieba);
//! - [`markdown`] — heading-aware chunks and verbatim sentences;
//! - [`search`] — [`SearchQuery`] → [`SearchHit`]s with snippets and feedback re-ranking;
//! - [`link`] — an [`AlertContext`] → its runbooks ([`LinkedEntry`]);
//! - [`ask`] — [`AskRequest`] → [`Answer`] of cited sentences, or "no answer";
//! - [`import`] — Markdown files (with front matter) → entries;
//! - [`similar`] — similar resolved incidents and draft entries from incidents;
//! - [`eval`] — scoring against labelled alert queries (bench and example);
//! - [`error`] — [`KnowledgeError`].

pub mod ask;
pub mod base;
pub mod entry;
pub mod error;
pub mod eval;
pub mod import;
pub mod index;
pub mod link;
pub mod markdown;
pub mod search;
pub mod similar;
pub mod tokenizer;

pub use ask::{Answer, AskRequest, CitedSentence};
pub use base::KnowledgeBase;
pub use entry::{Command, Entry, EntryInput, Links, MAX_ENTRY_BYTES, validate};
pub use error::KnowledgeError;
pub use import::{entries_from_dir_listing, entry_from_markdown};
pub use index::Tuning;
pub use link::{AlertContext, LinkedEntry};
pub use search::{SearchHit, SearchQuery};
pub use similar::{IncidentDoc, SimilarIncident, draft_from_incident, similar_incidents};
