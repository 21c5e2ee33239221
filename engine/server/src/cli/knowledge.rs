//! `aiops knowledge`: import a folder of Markdown runbooks into the running engine, search,
//! and ask — through the engine's API (the engine owns the log; entries are commands in it).

use super::progress::Progress;
use aiops_server::config::Config;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Bytes of Markdown per import request (the API takes 4 MiB bodies; escaping may double it).
const REQUEST_BYTES: usize = 1 << 20;

/// The subcommands of `aiops knowledge`.
#[derive(Debug, Subcommand)]
pub enum KnowledgeCmd {
    /// Import every `*.md` file under DIR (e.g. a team's runbook repository) as entries: the
    /// id is the path without `.md`, the title the first `# ` heading; optional front matter
    /// (between `---` lines) sets id, title, tags, owner, alertnames, matchers, services,
    /// template_ids, runbook_urls. Unchanged files change nothing, so importing again is safe
    /// (also after an interrupted import). Needs an operator token.
    Import {
        /// The folder.
        dir: PathBuf,
        /// Names the folder in each entry's source (`import:<NAME>/<path>`). Default: the
        /// folder's name.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Full-text search (BM25; English stemming, Chinese bigrams); prints the hits as JSON.
    Search {
        /// The query text.
        query: String,
        /// Hits at most (1–100).
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Ask a question; prints the answer's sentences, each with its entry and section (and
    /// the LLM's answer when one is configured), or "no answer" with the nearest entries.
    Ask {
        /// The question.
        question: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the engine is and who asks.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The engine's HTTP API. Default: http:// + `http.listen` of the config.
    #[arg(long, value_name = "URL")]
    pub(super) api: Option<String>,
    /// An API token (viewer to read, operator to change).
    #[arg(long, env = "AIOPS_TOKEN", hide_env_values = true)]
    pub(super) token: Option<String>,
}

/// `aiops knowledge …`.
///
/// # Errors
/// The folder cannot be read, the engine is unreachable or refuses (its message is shown).
pub async fn knowledge(cmd: KnowledgeCmd, cfg: Config) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let base = |a: &ApiArgs| {
        a.api
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.http.listen))
    };
    match cmd {
        KnowledgeCmd::Import { dir, source, api } => {
            let (files, skipped) = aiops_server::knowledge::watch::read_folder(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            for (p, why) in &skipped {
                eprintln!("skipped {p}: {why}");
            }
            if files.is_empty() {
                bail!("{}: no Markdown (*.md) files", dir.display());
            }
            let source = source.unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().replace([':', '/'], "_"))
                    .unwrap_or_else(|| "dir".into())
            });
            let total = files.len();
            let (mut done, mut imported, mut unchanged, mut skipped, mut failed) =
                (0usize, 0u64, 0u64, 0u64, 0usize);
            // Requests of about REQUEST_BYTES of Markdown (JSON escaping can double it; the API
            // takes 4 MiB), cut before a file that would overflow; a file larger than an entry
            // may be is reported here and not sent.
            let mut batches: Vec<Vec<Value>> = vec![Vec::new()];
            let mut bytes = 0usize;
            for (path, text) in &files {
                if text.len() > aiops_knowledge::MAX_ENTRY_BYTES {
                    failed += 1;
                    eprintln!(
                        "not imported {path}: {} bytes, more than an entry may hold ({})",
                        text.len(),
                        aiops_knowledge::MAX_ENTRY_BYTES
                    );
                    continue;
                }
                let len = text.len() + path.len();
                if bytes + len > REQUEST_BYTES && batches.last().is_some_and(|b| !b.is_empty()) {
                    batches.push(Vec::new());
                    bytes = 0;
                }
                bytes += len;
                if let Some(b) = batches.last_mut() {
                    b.push(json!({"path": path, "text": text}));
                }
            }
            let url = base(&api);
            let bar = Progress::bar("import", total as u64, "files");
            for batch in batches.into_iter().filter(|b| !b.is_empty()) {
                done += batch.len();
                let body = json!({"files": batch, "source": source});
                let r = match call(&http, &url, &api, "/api/knowledge/import", Some(&body)).await {
                    Ok(r) => r,
                    Err(e) => {
                        bar.finish();
                        return Err(e);
                    }
                };
                imported += r["imported"].as_u64().unwrap_or(0);
                unchanged += r["unchanged"].as_u64().unwrap_or(0);
                skipped += r["skipped"].as_u64().unwrap_or(0);
                for f in r["failed"].as_array().into_iter().flatten() {
                    failed += 1;
                    bar.note(&format!(
                        "not imported {}: {}",
                        f["path"].as_str().unwrap_or("?"),
                        f["error"].as_str().unwrap_or("?")
                    ));
                }
                bar.set(done as u64);
                if !bar.visible() {
                    eprintln!("{done}/{total} files sent");
                }
            }
            bar.finish();
            println!(
                "{}",
                json!({"files": done, "imported": imported, "unchanged": unchanged, "skipped": skipped, "failed": failed})
            );
            if failed > 0 {
                bail!("{failed} file(s) not imported (listed above)");
            }
            Ok(())
        }
        KnowledgeCmd::Search { query, limit, api } => {
            let path = format!(
                "/api/knowledge/search?q={}&limit={limit}",
                urlencode(&query)
            );
            let r = call(&http, &base(&api), &api, &path, None).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        KnowledgeCmd::Ask { question, api } => {
            let body = json!({ "question": question });
            let r = call(&http, &base(&api), &api, "/api/knowledge/ask", Some(&body)).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
    }
}

pub(super) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One call to the engine's API; a refusal becomes an error with the engine's message.
pub(super) async fn call(
    http: &reqwest::Client,
    base: &str,
    api: &ApiArgs,
    path: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut r = match body {
        Some(b) => http.post(&url).json(b),
        None => http.get(&url),
    };
    if let Some(t) = &api.token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.with_context(|| {
        format!("cannot reach the engine at {url} (is `aiops run` running? --api)")
    })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"].as_str().unwrap_or("");
        if status.as_u16() == 401 || status.as_u16() == 403 {
            bail!("{path}: HTTP {status}: {msg} (pass a token with --token or AIOPS_TOKEN)");
        }
        bail!("{path}: HTTP {status}: {msg}");
    }
    Ok(v)
}
