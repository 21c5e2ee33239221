//! The configured runbook folder (`[knowledge] dir`): imported at start, then re-read every
//! `watch_interval`; a changed file updates its entry, a removed file deletes it. Only entries
//! that came from this folder (source `dir:<path>`) are ever deleted by it.

use super::Knowledge;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// The source prefix of entries imported from the watched folder.
pub const SOURCE_PREFIX: &str = "dir:";
/// Files read from a folder at most (a runbook repository has hundreds).
pub const MAX_FILES: usize = 20_000;
/// A file larger than this is reported, not read (entries are limited to 1 MiB anyway).
const MAX_FILE_BYTES: u64 = 2 << 20;

/// (path, text) of files read, or (path, why) of files skipped.
pub type Files = Vec<(String, String)>;

/// Why a folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder or a file in it could not be read (the operator fixes the path or rights).
    #[error("{path}: {source}")]
    Io {
        /// What could not be read.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// More files than [`MAX_FILES`].
    #[error("{0}: more than {MAX_FILES} Markdown files; import a smaller folder")]
    TooMany(String),
}

/// A folder's Markdown files: (path relative to `dir` with `/` separators, text), sorted by
/// path, and the files skipped with why (too large, not UTF-8). Hidden files and folders
/// (`.git`) are skipped.
///
/// # Errors
/// [`FolderError`] when the folder cannot be listed.
pub fn read_folder(dir: &Path) -> Result<(Files, Files), FolderError> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    let io = |p: &Path, e| FolderError::Io {
        path: p.display().to_string(),
        source: e,
    };
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let e = e.map_err(|e| io(&d, e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type().map_err(|e| io(&p, e))?;
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            if !ft.is_file() || !name.ends_with(".md") {
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(&p)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/");
            let len = e.metadata().map_err(|e| io(&p, e))?.len();
            if len > MAX_FILE_BYTES {
                skipped.push((rel, format!("{len} bytes, more than {MAX_FILE_BYTES}")));
                continue;
            }
            match std::fs::read(&p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => files.push((rel, text)),
                    Err(_) => skipped.push((rel, "not UTF-8 text".into())),
                },
                Err(e) => skipped.push((rel, e.to_string())),
            }
            if files.len() > MAX_FILES {
                return Err(FolderError::TooMany(dir.display().to_string()));
            }
        }
    }
    files.sort();
    Ok((files, skipped))
}

/// Imports `dir` now and then every `interval` until `stop` flips; changes only when a file
/// changed. Errors are logged and retried at the next interval (the folder may be mid-checkout).
pub async fn run(kb: Knowledge, dir: PathBuf, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut last: Option<u64> = None;
    // Compare against the entries the log already holds: wait until the processor has read
    // the log as it is now (a restart would otherwise re-append every file once).
    if let Ok(st) = kb.log.stats().await
        && st.next_seq > 0
    {
        let caught_up = kb.handle.progress.wait_for(
            st.next_seq - 1,
            Duration::from_secs(600),
            "knowledge base",
        );
        tokio::select! {
            _ = caught_up => {}
            _ = stop.changed() => return,
        }
    }
    loop {
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || read_folder(&d)).await {
            Ok(Ok((files, skipped))) => {
                let fp = aiops_runtime::wire::hash(
                    serde_json::to_string(&files).unwrap_or_default().as_bytes(),
                );
                if last != Some(fp) {
                    for (path, why) in &skipped {
                        tracing::warn!(dir = %dir.display(), path, why, "knowledge folder: file skipped");
                    }
                    match kb
                        .import(&files, SOURCE_PREFIX, true, "knowledge.dir")
                        .await
                    {
                        Ok(r) => {
                            for f in &r.failed {
                                tracing::warn!(dir = %dir.display(), path = f.path, error = f.error, "knowledge folder: file not imported");
                            }
                            tracing::info!(dir = %dir.display(), imported = r.imported, unchanged = r.unchanged, deleted = r.deleted, failed = r.failed.len(), "knowledge folder imported");
                            last = Some(fp);
                        }
                        Err(e) => {
                            tracing::warn!(dir = %dir.display(), error = %e, "knowledge folder import failed; retrying");
                        }
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "knowledge folder cannot be read; retrying"),
            Err(e) => tracing::warn!(error = %e, "knowledge folder reader failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}
