//! The knowledge processor: knowledge commands and recorded LLM calls in log order in; nothing
//! out. Its state is the entries (with their derived search index) and the recorded calls.

use super::{CONTROL_TYPE, ControlEvent, LLM_CALL_TYPE, LlmCall};
use crate::processor::{Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::CommandProgress;
use crate::wire::{self, ids};
use aiops_knowledge::KnowledgeBase;
use aiops_log::Record;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Counts of one run (field names are read by tests and `aiops rebuild`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KnowledgeRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Commands applied (including no-op re-imports).
    pub applied: u64,
    /// Commands refused (a concurrent update lost, an unknown entry, invalid input).
    pub refused: u64,
    /// Knowledge messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
    /// LLM calls recorded in the log so far.
    pub llm_calls: u64,
    /// Entries now.
    pub entries: u64,
}

/// What the HTTP API shares with the processor.
pub struct KnowledgeHandle {
    /// The entries and their index (the processor writes, the API reads).
    pub kb: RwLock<KnowledgeBase>,
    /// Recorded LLM calls by key (request and response as JSON).
    pub llm_calls: RwLock<BTreeMap<String, LlmCall>>,
    /// How far the processor has read, and what became of recent commands.
    pub progress: Arc<CommandProgress>,
    /// Counts so far.
    pub summary: Mutex<KnowledgeRunSummary>,
}

impl std::fmt::Debug for KnowledgeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

impl KnowledgeHandle {
    /// An empty handle.
    pub fn new() -> Arc<KnowledgeHandle> {
        Arc::new(KnowledgeHandle {
            kb: RwLock::new(KnowledgeBase::new()),
            llm_calls: RwLock::new(BTreeMap::new()),
            progress: Arc::new(CommandProgress::default()),
            summary: Mutex::new(KnowledgeRunSummary::default()),
        })
    }
}

/// The knowledge processor.
pub struct KnowledgeProcessor {
    handle: Arc<KnowledgeHandle>,
    summary: KnowledgeRunSummary,
}

impl KnowledgeProcessor {
    /// A processor over `handle`, whose state starts empty: the driver then restores the
    /// checkpoint into it or rebuilds it from the log.
    pub fn new(handle: Arc<KnowledgeHandle>) -> KnowledgeProcessor {
        *handle.kb.write() = KnowledgeBase::new();
        handle.llm_calls.write().clear();
        KnowledgeProcessor {
            handle,
            summary: KnowledgeRunSummary::default(),
        }
    }

    /// The handle the API reads.
    pub fn handle(&self) -> Arc<KnowledgeHandle> {
        self.handle.clone()
    }

    /// Counts so far.
    pub fn summary(&self) -> KnowledgeRunSummary {
        self.summary
    }
}

fn err(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::new(KnowledgeProcessor::NAME, e)
}

/// Snapshot layout version; a checkpoint of another layout is not restored (the driver
/// rebuilds from the log instead, through the config hash).
const SNAPSHOT_VERSION: &str = "knowledge-v1";

#[derive(Serialize, serde::Deserialize)]
struct Snapshot {
    kb: String,
    llm_calls: Vec<LlmCall>,
}

impl Processor for KnowledgeProcessor {
    const NAME: &'static str = "knowledge";
    const WHAT: &'static str = "knowledge base";

    fn config_hash(&self) -> u64 {
        // Entries do not depend on configuration; only the snapshot layout matters.
        wire::hash(SNAPSHOT_VERSION.as_bytes())
    }

    fn is_output(&self, _subject: &str, _msg_id: &str) -> bool {
        false
    }

    fn on_record(&mut self, r: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        if r.subject == wire::CONTROL_SUBJECT && r.msg_id.starts_with(ids::KNOWLEDGE) {
            match wire::parse_control::<ControlEvent>(&r.payload, CONTROL_TYPE) {
                None => {}
                Some(Err(e)) => {
                    self.summary.undecodable += 1;
                    tracing::warn!(seq = r.seq, error = %e, "knowledge base skips an undecodable command");
                    out.refused(format!("the command does not decode: {e}"));
                }
                Some(Ok(ev)) => match self.handle.kb.write().apply(&ev.command) {
                    Ok(_) => {
                        self.summary.applied += 1;
                        out.applied();
                    }
                    Err(e) => {
                        self.summary.refused += 1;
                        out.refused(super::refusal(&e));
                    }
                },
            }
        } else if r.subject == wire::EFFECTS_SUBJECT && r.msg_id.starts_with(ids::LLM_CALLS) {
            match serde_json::from_slice::<LlmCall>(&r.payload) {
                Ok(call) if call.kind == LLM_CALL_TYPE => {
                    let mut calls = self.handle.llm_calls.write();
                    // The first record of a key is the one whose answer was used.
                    calls.entry(call.key.clone()).or_insert(call);
                    self.summary.llm_calls = calls.len() as u64;
                }
                Ok(_) => {}
                Err(e) => {
                    self.summary.undecodable += 1;
                    tracing::warn!(seq = r.seq, error = %e, "knowledge base skips an undecodable LLM call record");
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        let kb = self.handle.kb.read().snapshot().map_err(err)?;
        let snap = Snapshot {
            kb: String::from_utf8(kb).map_err(err)?,
            llm_calls: self.handle.llm_calls.read().values().cloned().collect(),
        };
        serde_json::to_vec(&snap).map_err(err)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        let snap: Snapshot = serde_json::from_slice(state).map_err(err)?;
        *self.handle.kb.write() = KnowledgeBase::restore(snap.kb.as_bytes()).map_err(err)?;
        let mut calls = self.handle.llm_calls.write();
        calls.clear();
        for c in snap.llm_calls {
            calls.insert(c.key.clone(), c);
        }
        self.summary.llm_calls = calls.len() as u64;
        Ok(())
    }

    fn stepped(&mut self, info: &StepInfo) {
        self.summary.messages_read = info.counts.messages_read;
        self.summary.entries = self.handle.kb.read().len() as u64;
        *self.handle.summary.lock() = self.summary;
    }
}
