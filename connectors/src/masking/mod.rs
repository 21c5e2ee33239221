//! Sensitive-data masking at the door (日志数据脱敏): passwords, tokens, keys, card numbers and,
//! when enabled, personal data in log bodies, labels and attributes of every kind are replaced,
//! hashed or dropped *before* a batch is appended to the log — so the log, the archive, search,
//! SQL and Grafana only ever see the masked form (and replay can only show that).
//!
//! Pure: no I/O, no clock. The engine's ingest path (`engine/server/src/ingest.rs`) calls
//! [`Masker::mask_batch`] on every batch of every source.
//!
//! - [`settings`]: `[masking]` ([`MaskingSettings`], [`Action`], [`RuleSettings`]) and the list
//!   of built-in detectors ([`BUILTINS`]).
//! - `detect`: trigger words, patterns, the digit-run scanner, Luhn and ID checksums.
//! - `masker`: [`Masker`], one text or label value at a time, with the no-match fast path.
//! - `batch`: [`Masker::mask_batch`], column-wise over Arrow batches.

mod batch;
mod detect;
mod masker;
pub mod settings;

#[cfg(test)]
mod tests;

pub use masker::{MaskStats, Masked, Masker, MaskingError, Rule};
pub use settings::{Action, BUILTINS, Builtin, Group, MaskingSettings, RuleSettings};
