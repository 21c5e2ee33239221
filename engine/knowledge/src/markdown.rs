//! Markdown to chunks: heading-aware sections, prose without marks, code apart, sentences as
//! byte ranges of the original body.
//!
//! A chunk is the text under one `#`, `##` or `###` heading (deeper headings stay inside their
//! section). It carries its heading path ("Diagnosis › Slow disk"); a leading `#` heading is the
//! document's own heading (usually the title or alert name) and is not part of the path. Fenced
//! code goes to the chunk's `code` (indexed at a low weight, never quoted in answers); HTML tags
//! (`<details>`, `<summary>`) are dropped and their text kept; links keep their text. A section
//! longer than [`MAX_CHUNK_BYTES`] is cut at paragraph ends into several chunks.

use std::ops::Range;

/// A section is cut into chunks of about this size (bytes) at paragraph ends.
pub const MAX_CHUNK_BYTES: usize = 4000;

/// The separator of heading paths.
pub const SECTION_SEP: &str = " › ";

/// One chunk of an entry's body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// Heading path, e.g. `Diagnosis › Slow disk`; empty before the first section heading.
    pub section: String,
    /// The text of the headings of the path (and the document heading), for the headings field.
    pub headings: String,
    /// Prose with Markdown marks and HTML tags removed.
    pub text: String,
    /// Fenced and indented code.
    pub code: String,
    /// Sentences (byte ranges of the original body) fit to quote in an answer.
    pub sentences: Vec<Range<usize>>,
}

/// The chunks of `body`; at least one (possibly empty) so every entry is findable by title.
pub fn chunks(body: &str) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut doc_heading = String::new();
    let mut seen_heading = false;
    let mut cur = Chunk::default();
    let mut fence: Option<(char, usize)> = None;
    let mut para: Option<Range<usize>> = None;

    let mut offset = 0;
    for raw_line in body.split_inclusive('\n') {
        let start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        let trimmed = line.trim_start();

        if let Some((fc, flen)) = fence {
            let t = trimmed.trim_end();
            if t.len() >= flen && t.chars().all(|c| c == fc) {
                fence = None;
            } else {
                cur.code.push_str(line);
                cur.code.push('\n');
            }
            continue;
        }
        if let Some(f) = fence_open(trimmed) {
            flush_para(body, &mut para, &mut cur);
            fence = Some(f);
            continue;
        }
        if let Some((level, text)) = heading(trimmed) {
            flush_para(body, &mut para, &mut cur);
            let text = strip_inline(&strip_html(text));
            if level == 1 && !seen_heading {
                doc_heading = text;
                cur.headings = doc_heading.clone();
                seen_heading = true;
                continue;
            }
            seen_heading = true;
            if level <= 3 {
                push_chunk(&mut out, std::mem::take(&mut cur));
                path.retain(|(l, _)| *l < level);
                path.push((level, text));
                cur.section = path
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(SECTION_SEP);
                cur.headings = path
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
            } else {
                cur.headings.push(' ');
                cur.headings.push_str(&text);
            }
            continue;
        }
        if trimmed.is_empty() {
            flush_para(body, &mut para, &mut cur);
            if cur.text.len() >= MAX_CHUNK_BYTES {
                let section = cur.section.clone();
                let headings = cur.headings.clone();
                push_chunk(&mut out, std::mem::take(&mut cur));
                cur.section = section;
                cur.headings = headings;
            }
            continue;
        }
        // Indented code (4 spaces or a tab) outside a list paragraph.
        if para.is_none() && (line.starts_with("    ") || line.starts_with('\t')) {
            cur.code.push_str(trimmed);
            cur.code.push('\n');
            continue;
        }
        let plain = strip_inline(&strip_html(line));
        if !plain.trim().is_empty() {
            cur.text.push_str(plain.trim());
            cur.text.push('\n');
        }
        // Sentences: a list item or table row starts a new block; an HTML-only line is none.
        if is_html_line(trimmed) || trimmed.starts_with('|') {
            flush_para(body, &mut para, &mut cur);
            continue;
        }
        if list_marker_len(trimmed) > 0 || trimmed.starts_with('>') {
            flush_para(body, &mut para, &mut cur);
        }
        para = Some(match para {
            Some(p) => p.start..end,
            None => start + (line.len() - trimmed.len())..end,
        });
    }
    flush_para(body, &mut para, &mut cur);
    push_chunk(&mut out, cur);
    if out.is_empty() {
        out.push(Chunk {
            headings: doc_heading,
            ..Chunk::default()
        });
    }
    out
}

/// Keeps a chunk that has anything to search.
fn push_chunk(out: &mut Vec<Chunk>, c: Chunk) {
    if !c.text.trim().is_empty() || !c.code.trim().is_empty() {
        out.push(c);
    }
}

/// Cuts the finished paragraph into sentences.
fn flush_para(body: &str, para: &mut Option<Range<usize>>, cur: &mut Chunk) {
    if let Some(p) = para.take() {
        for s in split_sentences(body, p) {
            if quotable(&body[s.clone()]) {
                cur.sentences.push(s);
            }
        }
    }
}

/// `(fence char, fence length)` when `t` opens a fenced code block.
fn fence_open(t: &str) -> Option<(char, usize)> {
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// `(level, text)` when `t` is an ATX heading.
fn heading(t: &str) -> Option<(usize, &str)> {
    let level = t.chars().take_while(|&c| c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim();
    Some((level, text))
}

/// Length of a list marker (`- `, `* `, `+ `, `1. `, `1) `) at the start of `t`, or 0.
fn list_marker_len(t: &str) -> usize {
    let b = t.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && b[1] == b' ' {
        return 2;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0
        && digits <= 9
        && b.len() > digits + 1
        && matches!(b[digits], b'.' | b')')
        && b[digits + 1] == b' '
    {
        return digits + 2;
    }
    0
}

/// HTML elements whose tags are dropped (their text stays).
const HTML_TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
];

/// The longest HTML tag (bytes) recognised.
const MAX_TAG_BYTES: usize = 512;

/// The length of an HTML tag (`<details>`, `</summary>`, `<br/>`, `<a href="…">`) at the start
/// of `s`, or `None` (so `<instance label>` placeholders in prose are kept).
fn html_tag_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('<')?;
    let rest_n = rest.strip_prefix('/').unwrap_or(rest);
    let name_len = rest_n
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest_n.len());
    let name = rest_n[..name_len].to_ascii_lowercase();
    if !HTML_TAGS.contains(&name.as_str()) {
        return None;
    }
    let after = &rest_n[name_len..];
    if !(after.starts_with('>') || after.starts_with(' ') || after.starts_with('/')) {
        return None;
    }
    // Bounded: a tag is short, and a line of a million `<a ` must stay linear.
    let window = &s.as_bytes()[..s.len().min(MAX_TAG_BYTES)];
    let close = window.iter().position(|&b| b == b'>')?;
    if window[..close].contains(&b'\n') {
        return None;
    }
    Some(close + 1)
}

/// `s` without HTML tags.
pub fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('<')
            && let Some(n) = html_tag_len(rest)
        {
            out.push(' ');
            i += n;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Whether the line is only HTML tags (and the text of a `<summary>`).
fn is_html_line(t: &str) -> bool {
    html_tag_len(t).is_some() && {
        let low = t.to_ascii_lowercase();
        strip_html(t).trim().is_empty() || low.starts_with("<summary")
    }
}

/// Removes inline Markdown: emphasis marks, backticks, link targets (`[text](url)` → `text`,
/// `[text][1]` → `text`), image marks, Hugo shortcodes, and a leading list or quote marker.
pub fn strip_inline(line: &str) -> String {
    let t = line.trim_start();
    let t = t.strip_prefix('>').map_or(t, str::trim_start);
    let t = &t[list_marker_len(t)..];
    let cs: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len());
    let mut k = 0;
    while k < cs.len() {
        let c = cs[k];
        match c {
            '`' => {}
            '*' => {}
            '_' => {
                // `_` inside a word (snake_case) stays; around a word it is emphasis.
                let inner = k > 0
                    && k + 1 < cs.len()
                    && cs[k - 1].is_alphanumeric()
                    && cs[k + 1].is_alphanumeric();
                if inner {
                    out.push('_');
                }
            }
            // Hugo shortcodes (`{{< ref "x.md" >}}`, `{{% note %}}`) are markup, not text.
            '{' if cs.get(k + 1) == Some(&'{') && matches!(cs.get(k + 2), Some('<' | '%')) => {
                let close = if cs[k + 2] == '<' { '>' } else { '%' };
                let end = (k + 3..cs.len().min(k + 3 + MAX_LINK_CHARS)).find(|&j| {
                    cs[j] == close && cs.get(j + 1) == Some(&'}') && cs.get(j + 2) == Some(&'}')
                });
                if let Some(j) = end {
                    k = j + 3;
                    continue;
                }
                out.push(c);
            }
            '!' if cs.get(k + 1) == Some(&'[') => {}
            '[' => {
                if let Some(close) = find_near(&cs[k + 1..], ']') {
                    let close = k + 1 + close;
                    let text: String = cs[k + 1..close].iter().collect();
                    out.push_str(&text);
                    let mut j = close + 1;
                    if let Some(&open @ ('(' | '[')) = cs.get(j) {
                        let want = if open == '(' { ')' } else { ']' };
                        if let Some(e) = find_near(&cs[j + 1..], want) {
                            j = j + 1 + e + 1;
                        }
                    }
                    k = j;
                    continue;
                }
                out.push(c);
            }
            c => out.push(c),
        }
        k += 1;
    }
    out
}

/// The longest link text or target (characters) `strip_inline` looks through: bounded, so a
/// line of a million `[` stays linear.
const MAX_LINK_CHARS: usize = 1000;

/// Position of `c` within the first [`MAX_LINK_CHARS`] of `cs`.
fn find_near(cs: &[char], c: char) -> Option<usize> {
    cs.iter().take(MAX_LINK_CHARS).position(|&x| x == c)
}

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &["e.g", "i.e", "ex", "etc", "vs", "cf", "approx", "no", "fig"];

/// Splits the paragraph `p` of `body` into sentences: after `.`, `!`, `?` followed by a space
/// and not by a lower-case letter, not after an abbreviation or inside a number; after `。`,
/// `！`, `？`, `；` always. Ranges are trimmed and skip a leading list or quote marker.
pub fn split_sentences(body: &str, p: Range<usize>) -> Vec<Range<usize>> {
    let text = &body[p.clone()];
    let mut out = Vec::new();
    let mut start = 0;
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    for k in 0..cs.len() {
        let (i, c) = cs[k];
        let end_here = match c {
            '。' | '！' | '？' | '；' => true,
            '.' | '!' | '?' => {
                let next = cs.get(k + 1).map(|&(_, n)| n);
                let after = cs[k + 1..]
                    .iter()
                    .map(|&(_, n)| n)
                    .find(|n| !n.is_whitespace());
                // The word before the dot only matters for abbreviations (a few letters): look
                // back a bounded distance, so a megabyte of `a.a.a.` stays linear.
                let word_before = || {
                    let mut b = i.saturating_sub(16).max(start);
                    while !text.is_char_boundary(b) {
                        b += 1;
                    }
                    text[b..i]
                        .rsplit(|ch: char| ch.is_whitespace() || ch == '(')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase()
                };
                next.is_none_or(char::is_whitespace)
                    && !after.is_some_and(char::is_lowercase)
                    && !ABBREVIATIONS.contains(&word_before().as_str())
            }
            _ => false,
        };
        if end_here {
            let e = i + c.len_utf8();
            push_trimmed(text, start..e, p.start, &mut out);
            start = e;
        }
    }
    push_trimmed(text, start..text.len(), p.start, &mut out);
    out
}

/// Pushes `r` (relative to `text`, shifted by `base`) without surrounding space or markers.
fn push_trimmed(text: &str, r: Range<usize>, base: usize, out: &mut Vec<Range<usize>>) {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let mut from = r.start + lead;
    let t = &text[from..r.end];
    let t2 = t.strip_prefix('>').map_or(t, str::trim_start);
    from += t.len() - t2.len();
    from += list_marker_len(t2);
    let to = from + text[from..r.end].trim_end().len();
    if from < to {
        out.push(base + from..base + to);
    }
}

/// Whether a sentence is worth quoting: at least three words (or four CJK characters).
fn quotable(s: &str) -> bool {
    let cjk = s.chars().filter(|&c| crate::tokenizer::is_cjk(c)).count();
    let words = s
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 2)
        .count();
    cjk >= 4 || words >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# NodeDiskFull\n\n## Meaning\n\nThe disk is **full**. It fires at 95%, e.g. on `/var`.\n\n<details>\n<summary>Full context</summary>\n\nMore [context][1] here, see [docs](http://x).\n\n</details>\n\n## Mitigation\n\n### Slow disk\n\n- Remove old logs from the node.\n- Restart it.\n\n```shell\nrm -rf /var/log/old\n```\n";

    #[test]
    fn sections_carry_heading_paths_and_code_is_apart() {
        let cs = chunks(DOC);
        let sections: Vec<&str> = cs.iter().map(|c| c.section.as_str()).collect();
        assert_eq!(sections, ["Meaning", "Mitigation › Slow disk"]);
        assert!(cs[0].text.contains("The disk is full."), "{:?}", cs[0].text);
        assert!(
            cs[0].text.contains("More context here, see docs."),
            "{:?}",
            cs[0].text
        );
        assert!(!cs[0].text.contains("details"));
        assert_eq!(cs[1].code, "rm -rf /var/log/old\n");
        assert!(!cs[1].text.contains("rm -rf"));
    }

    #[test]
    fn sentences_are_verbatim_ranges() {
        let cs = chunks(DOC);
        let s: Vec<&str> = cs[0].sentences.iter().map(|r| &DOC[r.clone()]).collect();
        assert_eq!(
            s,
            [
                "The disk is **full**.",
                "It fires at 95%, e.g. on `/var`.",
                "More [context][1] here, see [docs](http://x)."
            ]
        );
        let s: Vec<&str> = cs[1].sentences.iter().map(|r| &DOC[r.clone()]).collect();
        assert_eq!(s, ["Remove old logs from the node."]);
    }

    #[test]
    fn chinese_sentences_split_on_full_stops() {
        let doc = "## 处理\n\n清理磁盘上的旧日志文件。然后重启服务进程！\n";
        let cs = chunks(doc);
        let s: Vec<&str> = cs[0].sentences.iter().map(|r| &doc[r.clone()]).collect();
        assert_eq!(s, ["清理磁盘上的旧日志文件。", "然后重启服务进程！"]);
    }

    #[test]
    fn an_unclosed_fence_swallows_the_rest_as_code() {
        let cs = chunks("intro text here and more\n```\ncode\n## not a heading\n");
        assert_eq!(cs.len(), 1);
        assert!(cs[0].code.contains("## not a heading"));
    }

    #[test]
    fn shortcodes_and_link_targets_are_not_text() {
        assert_eq!(
            strip_inline(
                "See [Node RAID Degraded]({{< ref \"./NodeRAIDDegraded.md\" >}}) and {{% note %}}x"
            ),
            "See Node RAID Degraded and x"
        );
    }

    #[test]
    fn pathological_lines_stay_linear() {
        // Quadratic scanning would take minutes on these; linear takes milliseconds.
        for line in [
            "[".repeat(400_000),
            "[a](".repeat(100_000),
            "<a ".repeat(130_000),
        ] {
            let cs = chunks(&line);
            assert_eq!(cs.len(), 1);
            assert!(!cs[0].text.is_empty());
        }
    }

    #[test]
    fn empty_body_still_has_one_chunk() {
        assert_eq!(chunks("").len(), 1);
    }
}
