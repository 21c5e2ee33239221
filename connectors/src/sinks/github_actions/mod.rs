//! `github_actions`: run a GitHub Actions workflow through the REST API's "Create a workflow
//! dispatch event" (`POST {api_url}/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`).
//!
//! Config: `token` (a fine-grained token with **Actions: write** on the repository, a classic
//! token with `repo`, or a GitHub App installation token with `actions: write`; a secret),
//! `owner`, `repo`, `api_url?` (default `https://api.github.com`; GitHub Enterprise Server:
//! `https://HOST/api/v3`), `workflow?` (the default workflow), `key_input?` (an input that
//! receives the idempotency key), `return_run_details?` (default false). Params: `ref` (the
//! branch or tag the workflow runs on), `workflow?` (file name such as `deploy.yml` or numeric
//! id; required unless configured), `inputs?` (an object of at most 25 inputs, GitHub's limit,
//! whose values are strings, numbers or booleans — numbers and booleans are sent as strings,
//! `3` as `"3"` and `true` as `"true"`, since GitHub Enterprise Server versions and clients
//! answer 422 for other values and GitHub types each input from the workflow's declared type
//! anyway; at most 65,535 characters in all, counted as sent). Owner and
//! repo come from the config only, so a rendered template can choose a workflow of that one
//! repository but never another repository the token may reach.
//!
//! Sent: `Authorization: Bearer`, `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28`, the client's `User-Agent` (GitHub refuses requests
//! without one) and `{"ref", "inputs"}` (plus `"return_run_details": true` when configured).
//! GitHub answers `204 No Content`, or `200 {workflow_run_id, run_url, html_url}` when run details
//! are asked for; output status `dispatched`, response `{workflow, ref, workflow_run_id?,
//! html_url?}`.
//!
//! **Not idempotent.** GitHub has no idempotency key for dispatches: if aiops crashes after
//! GitHub accepted a dispatch but before the result was logged, the engine sends the effect
//! again and the workflow runs twice. Name an input in `key_input` (declared in the workflow's
//! `workflow_dispatch.inputs`) to receive the effect's idempotency key, so the workflow can
//! deduplicate (e.g. a `concurrency` group on it, or a check of an earlier run).
//!
//! Errors: 401 → the token is invalid or expired; 403 → the token lacks permission (or a
//! secondary rate limit, which is retryable); 404 → repository, workflow or ref not found (or not
//! visible to the token); 422 → GitHub's message (unknown ref, an input the workflow does not
//! declare, no `workflow_dispatch` trigger); 429 and 5xx → retryable.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::{DEFAULT_API_URL, GithubActionsConfig};
pub use sink::{API_VERSION, GithubActions, MAX_INPUTS, MAX_INPUTS_CHARS};
