//! `argocd`: sync an Argo CD application through the API server
//! (`POST {server}/api/v1/applications/{application}/sync`, the call `argocd app sync` makes).
//!
//! Config: `server` (the API server URL, with its `--rootpath` if any), `token` (an Argo CD API
//! token of an account allowed `applications, sync` and `applications, get` (to recognize a
//! resent sync, below) on the applications; a secret, sent as
//! `Authorization: Bearer`), `app_namespace?` (the namespace of the Application resources when
//! apps live outside Argo CD's own namespace). Params: `application` (a Kubernetes name: a
//! lowercase RFC 1123 subdomain of at most 253 characters), `revision?` (the Git revision or
//! Helm chart version to sync to; default the application's target revision), `prune?` (default
//! false).
//!
//! Sent: an `ApplicationSyncRequest` with documented fields only: `name`, `revision?`, `prune`,
//! `dryRun: false`, `strategy: {"hook": {}}` (what `argocd app sync` sends by default),
//! `appNamespace?` (in the body: the API gateway reads the sync request from the body only), and
//! `infos: [{"name": "aiops-effect", "value": <idempotency key>}]`, which Argo CD shows with the
//! operation so a sync can be traced to the effect that started it. Argo CD answers 200 with the
//! Application; output status is `status.operationState.phase` when present, else
//! `sync started`, and the response `{application, revision?, phase?}` (bounded).
//!
//! The answer is read up to 16 MiB into a struct of the few fields used; a longer answer (an
//! application with very many resources) still means the sync was accepted: status
//! `sync started`.
//!
//! Idempotency: Argo CD has no idempotency key. A sync sent again after a crash while the first
//! is still running is refused with "another operation is already in progress"; the provider
//! then reads the application (`GET {server}/api/v1/applications/{application}`, with
//! `?appNamespace=` when configured) and, if the operation in progress — `operation.info` or
//! `status.operationState.operation.info` — carries this effect's `aiops-effect` info, answers
//! for it: status `<phase> (resent)` (`sync started (resent)` before the controller started it),
//! response `{application, revision?, phase?, resent: true}`. Another operation's refusal stands
//! (reported as such, not retried); a read that fails retryably is retried (the sync is sent
//! again); a read refused (no RBAC `applications, get`) or over 16 MiB leaves the refusal. After
//! the first sync finished, a resend syncs the application again to the same revision, which
//! converges to the same state (sync hooks run again).
//!
//! Errors: 401 → the token is invalid or expired; 403 → the account lacks RBAC
//! `applications, sync`, the application does not exist (Argo CD answers 403 rather than
//! revealing that), or a sync window blocks it; 404 → application not found; 400 "another
//! operation is already in progress" (not this effect's) → said so; 429 and 5xx → retryable.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::ArgoCdConfig;
pub use sink::ArgoCd;
