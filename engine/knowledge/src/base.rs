//! [`KnowledgeBase`]: the entries, the commands that change them, and the derived index.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::index::{self, Built, Tuning};
use crate::{Command, Entry, EntryInput, KnowledgeError, validate};

/// The knowledge base: entries by id, and a search index derived from them.
///
/// `search`, `ask` and `link` take `&self` and may run concurrently; the index sits behind a
/// mutex and is rebuilt whole at the first query after a change (see the `index` module for
/// why whole rebuilds).
pub struct KnowledgeBase {
    entries: BTreeMap<String, Entry>,
    tuning: Tuning,
    index: Mutex<Option<Arc<Built>>>,
}

impl Default for KnowledgeBase {
    fn default() -> KnowledgeBase {
        KnowledgeBase::new()
    }
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("entries", &self.entries.len())
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// An empty knowledge base with the default tuning.
    pub fn new() -> KnowledgeBase {
        KnowledgeBase::with_tuning(Tuning::default())
    }

    /// An empty knowledge base with other field weights and floors (measurements).
    pub fn with_tuning(tuning: Tuning) -> KnowledgeBase {
        KnowledgeBase {
            entries: BTreeMap::new(),
            tuning,
            index: Mutex::new(None),
        }
    }

    /// The tuning in force.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Applies one command. `Ok(Some(revision))`: applied (for a delete, the revision the
    /// deletion would have had; for feedback and verify, the unchanged revision); `Ok(None)`:
    /// a no-op (a `Put` of the stored content). Deterministic: the same command sequence gives
    /// the same state.
    ///
    /// # Errors
    /// [`KnowledgeError::Invalid`] for a bad entry, [`KnowledgeError::Conflict`] when
    /// `base_revision` is not the stored revision (the message names the revision that won and
    /// who wrote it), [`KnowledgeError::NotFound`] for a missing entry. A refused command
    /// changes nothing.
    pub fn apply(&mut self, cmd: &Command) -> Result<Option<u64>, KnowledgeError> {
        match cmd {
            Command::Put {
                entry,
                base_revision,
                by,
                at_ms,
            } => self.put(entry, *base_revision, by, *at_ms),
            Command::Delete {
                id,
                base_revision,
                by: _,
                at_ms: _,
            } => {
                let stored = self.entries.get(id);
                check_base(id, stored, *base_revision)?;
                let Some(stored) = stored else {
                    return Err(KnowledgeError::NotFound(format!("no entry {id:?}")));
                };
                let rev = stored.revision + 1;
                self.entries.remove(id);
                *self.index.get_mut() = None;
                Ok(Some(rev))
            }
            Command::Feedback { id, helpful, .. } => {
                let e = self.entry_mut(id)?;
                if *helpful {
                    e.helpful += 1;
                } else {
                    e.not_helpful += 1;
                }
                Ok(Some(e.revision))
            }
            Command::Verify { id, at_ms, .. } => {
                let e = self.entry_mut(id)?;
                e.last_verified_ms = Some(e.last_verified_ms.map_or(*at_ms, |v| v.max(*at_ms)));
                Ok(Some(e.revision))
            }
        }
    }

    fn entry_mut(&mut self, id: &str) -> Result<&mut Entry, KnowledgeError> {
        self.entries
            .get_mut(id)
            .ok_or_else(|| KnowledgeError::NotFound(format!("no entry {id:?}")))
    }

    fn put(
        &mut self,
        input: &EntryInput,
        base: Option<u64>,
        by: &str,
        at_ms: i64,
    ) -> Result<Option<u64>, KnowledgeError> {
        validate(input)?;
        let stored = self.entries.get(&input.id);
        check_base(&input.id, stored, base)?;
        let next = match stored {
            Some(s) if s.same_content(input) => return Ok(None),
            Some(s) => Entry {
                revision: s.revision + 1,
                updated_at_ms: at_ms,
                updated_by: by.to_string(),
                ..with_input(s.clone(), input)
            },
            None => with_input(
                Entry {
                    id: String::new(),
                    title: String::new(),
                    body: String::new(),
                    tags: Vec::new(),
                    owner: None,
                    links: crate::Links::default(),
                    draft: false,
                    source: None,
                    revision: 1,
                    created_at_ms: at_ms,
                    updated_at_ms: at_ms,
                    updated_by: by.to_string(),
                    last_verified_ms: None,
                    helpful: 0,
                    not_helpful: 0,
                },
                input,
            ),
        };
        let rev = next.revision;
        self.entries.insert(next.id.clone(), next);
        *self.index.get_mut() = None;
        Ok(Some(rev))
    }

    /// One entry.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// All entries in id order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index, built now if the entries changed since the last build.
    pub(crate) fn built(&self) -> Result<Arc<Built>, KnowledgeError> {
        let mut slot = self.index.lock();
        if let Some(b) = slot.as_ref() {
            return Ok(Arc::clone(b));
        }
        let b = Arc::new(index::build(self.entries.values())?);
        *slot = Some(Arc::clone(&b));
        Ok(b)
    }

    /// Builds the index now (e.g. after a restore, so the first query does not pay for it).
    ///
    /// # Errors
    /// [`KnowledgeError::Index`] when tantivy fails (a bug).
    pub fn warm(&self) -> Result<usize, KnowledgeError> {
        Ok(self.built()?.num_chunks())
    }

    /// The entries only, as JSON (the index is derived and rebuilt on restore).
    ///
    /// # Errors
    /// [`KnowledgeError::Index`] if serialization fails (a bug).
    pub fn snapshot(&self) -> Result<Vec<u8>, KnowledgeError> {
        let v: Vec<&Entry> = self.entries.values().collect();
        serde_json::to_vec(&v).map_err(|e| KnowledgeError::Index(format!("snapshot: {e}")))
    }

    /// A knowledge base from a [`KnowledgeBase::snapshot`].
    ///
    /// # Errors
    /// [`KnowledgeError::Invalid`] when the bytes are not a snapshot, hold an invalid entry or
    /// an id twice.
    pub fn restore(bytes: &[u8]) -> Result<KnowledgeBase, KnowledgeError> {
        let v: Vec<Entry> = serde_json::from_slice(bytes)
            .map_err(|e| KnowledgeError::Invalid(format!("not a knowledge snapshot: {e}")))?;
        let mut kb = KnowledgeBase::new();
        for e in v {
            validate(&e.input())?;
            if kb.entries.contains_key(&e.id) {
                return Err(KnowledgeError::Invalid(format!(
                    "knowledge snapshot holds entry {:?} twice",
                    e.id
                )));
            }
            kb.entries.insert(e.id.clone(), e);
        }
        Ok(kb)
    }

    /// A hash of all entries (64-bit FNV-1a over their JSON), for "identical after rebuild"
    /// checks. Stable across runs and builds.
    pub fn state_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in self.entries.values() {
            let bytes = serde_json::to_vec(e).unwrap_or_default();
            for b in bytes.iter().chain(b"\n") {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

/// The optimistic-concurrency check.
fn check_base(id: &str, stored: Option<&Entry>, base: Option<u64>) -> Result<(), KnowledgeError> {
    let Some(base) = base else { return Ok(()) };
    match stored {
        None if base == 0 => Ok(()),
        None => Err(KnowledgeError::Conflict(format!(
            "entry {id:?} was based on revision {base}, but it no longer exists (deleted)"
        ))),
        Some(s) if s.revision == base => Ok(()),
        Some(s) => Err(KnowledgeError::Conflict(format!(
            "entry {id:?} is at revision {}, written by {:?} at {} ms; your change was based on revision {base}: re-read it and apply your change again",
            s.revision, s.updated_by, s.updated_at_ms
        ))),
    }
}

/// `e` with the submitted fields of `input`.
fn with_input(mut e: Entry, input: &EntryInput) -> Entry {
    e.id = input.id.clone();
    e.title = input.title.clone();
    e.body = input.body.clone();
    e.tags = input.tags.clone();
    e.owner = input.owner.clone();
    e.links = input.links.clone();
    e.draft = input.draft;
    e.source = input.source.clone();
    e
}
