//! Workflows and auto-healing for aiops, as a deterministic state machine over the event log.
//!
//! - [`spec`]: the YAML format (close to Keep's) as written.
//! - [`alertmanager`]: the alerting YAML's receivers compiled into providers and workflows.
//! - [`compile`]: checks a file (file:line errors) and compiles triggers, steps, actions.
//! - [`gotmpl`]: the Go template subset Alertmanager receiver fields use.
//! - [`filter`]: trigger filters (equality, anchored regex, any-of across lists).
//! - [`template`]: Jinja templates in a sandbox (fuel, output cap, secrets as markers).
//! - [`builtin`]: the built-in providers `context-provider` and `incident-db` (checks, query
//!   language).
//! - [`autoheal`]: strategies (match → ordered remedies with SQL verifies → escalate).
//! - [`event`]: inputs and the events appended to `aiops.effects` (intents, approvals, …).
//! - [`engine`]: the state machine itself.
//!
//! The engine never performs an effect: it emits an intent with an idempotency key, and the
//! executor at the edge (engine/server) runs it and logs the result, so replaying the log
//! re-derives the same intents and runs nothing.

pub mod alertmanager;
pub mod autoheal;
pub mod builtin;
pub mod compile;
pub mod engine;
pub mod event;
pub mod filter;
pub mod gotmpl;
pub mod spec;
pub mod template;

pub use compile::{Catalog, CompileError, StaticCatalog, Workflow, compile_text};
pub use engine::{EngineConfig, Limits, Rate, WorkflowEngine};
pub use event::{EffectResult, Intent, WorkflowControl, WorkflowEvent};
pub use template::Renderer;
