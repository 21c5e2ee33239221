//! Progress of the long CLI commands (`aiops rebuild`, `aiops replay`, `aiops knowledge import`):
//! one type, [`Progress`], a bar when the total is known (log positions, files) and a spinner
//! with a count when it is not. Drawn on stderr only when stderr is a terminal, so scripts, CI
//! logs and redirected output never see control sequences; standard output (the command's
//! result) is never touched.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// A progress bar or spinner on stderr, hidden when stderr is not a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar from 0 to `total` `unit`s (e.g. log positions), labelled `what`.
    pub fn bar(what: &str, total: u64, unit: &str) -> Progress {
        Progress::bar_on(what, total, unit, std::io::stderr().is_terminal())
    }

    /// A spinner counting `unit`s (when the total is not known), labelled `what`; with an empty
    /// `unit`, a spinner and the elapsed time only.
    pub fn spinner(what: &str, unit: &str) -> Progress {
        Progress::spinner_on(what, unit, std::io::stderr().is_terminal())
    }

    /// A spinner for a command whose result streams to stdout (`aiops replay`): drawn only when
    /// stdout is redirected — on a terminal the printed lines show the progress themselves, and a
    /// spinner redrawn between them would garble them.
    pub fn spinner_beside_output(what: &str, unit: &str) -> Progress {
        let visible = std::io::stderr().is_terminal() && !std::io::stdout().is_terminal();
        Progress::spinner_on(what, unit, visible)
    }

    /// [`Progress::bar`], drawn only when `visible`.
    fn bar_on(what: &str, total: u64, unit: &str, visible: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), target(visible));
        // The template is a constant; were it ever refused, the default style still shows counts.
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{prefix:>12}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{percent}}%, {{elapsed}}, ETA {{eta}})"
        )) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        Progress { bar }
    }

    /// [`Progress::spinner`], drawn only when `visible`.
    fn spinner_on(what: &str, unit: &str, visible: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(None, target(visible));
        // Without a unit there is nothing to count: the spinner and the time only.
        let template = if unit.is_empty() {
            "{prefix:>12} {spinner} {elapsed}".to_string()
        } else {
            format!("{{prefix:>12}} {{spinner}} {{human_pos}} {unit} ({{per_sec}}, {{elapsed}})")
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_string());
        // Ticks on its own so a long wait between counts still shows the command is alive.
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Sets what is done so far (e.g. the log position reached).
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Adds `n` to what is done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// What is done so far.
    #[cfg(test)]
    fn done(&self) -> u64 {
        self.bar.position()
    }

    /// Whether anything is drawn (false when stderr is not a terminal).
    pub fn visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Prints a line on stderr without garbling the bar (above it when it is drawn).
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// The `(position, log head)` callback the rebuild passes take. The bar is finished and
    /// cleared when the callback is dropped (when the pass returns, however it ends).
    pub fn positions(&self) -> impl FnMut(u64, u64) + use<> {
        let done = FinishOnDrop(self.clone());
        move |pos, end| {
            let bar = &done.0.bar;
            bar.set_length(end);
            bar.set_position(pos.min(end));
        }
    }

    /// Ends the bar at its total (when known) and takes it off the terminal.
    pub fn finish(&self) {
        if let Some(total) = self.bar.length() {
            self.bar.set_position(total);
        }
        self.bar.finish_and_clear();
    }
}

/// Finishes a [`Progress`] when dropped.
#[derive(Debug)]
struct FinishOnDrop(Progress);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// stderr, or nothing when not `visible` (indicatif would also hide a non-terminal stderr; the
/// explicit choice keeps it so whatever indicatif's heuristics).
fn target(visible: bool) -> ProgressDrawTarget {
    if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A writer that counts the lines written through it on a [`Progress`] (the events `aiops
/// replay` prints: one line each in NDJSON and table form).
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    progress: Progress,
}

impl<W: Write> CountingWriter<W> {
    /// Counts the lines written to `inner` on `progress`.
    pub fn new(inner: W, progress: Progress) -> CountingWriter<W> {
        CountingWriter { inner, progress }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let lines = buf
            .get(..n)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        if lines > 0 {
            self.progress.inc(lines as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn hidden_when_not_visible_and_still_counts() {
        let p = Progress::bar_on("rebuild", 100, "positions", false);
        assert!(!p.visible(), "nothing is drawn off a terminal");
        let mut cb = p.positions();
        cb(40, 120);
        assert_eq!(p.done(), 40);
        cb(130, 120);
        assert_eq!(p.done(), 120, "a position past the head is capped");
        drop(cb);
        assert!(p.bar.is_finished(), "dropping the callback ends the bar");
        let s = Progress::spinner_on("replay", "events", false);
        assert!(!s.visible());
        s.inc(3);
        assert_eq!(s.done(), 3);
        s.finish();
    }

    #[test]
    fn counting_writer_counts_lines_and_passes_bytes() {
        let p = Progress::spinner_on("replay", "events", false);
        let mut out = Vec::new();
        {
            let mut w = CountingWriter::new(&mut out, p.clone());
            w.write_all(b"{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
            w.write_all(b":3}\n").unwrap();
            w.flush().unwrap();
        }
        assert_eq!(p.done(), 3);
        assert_eq!(out, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    }
}
