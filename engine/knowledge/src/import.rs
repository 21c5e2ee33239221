//! Markdown files to entries (the importer's pure half; the caller reads the directory).
//!
//! A file may open with front matter between `---` lines. Known keys: `id`, `title`, `tags`,
//! `owner`, `alertname`/`alertnames`, `matchers`, `service`/`services`, `template_ids`,
//! `runbook_url`/`runbook_urls`, `draft`; each a string or a list of strings. Other keys (a
//! static site's `weight`, `bookHidden`, …) are ignored. Without an `id`, the id is the path
//! without `.md`; without a `title`, the first `# ` heading, else the file stem. A file whose
//! stem looks like an alert name (`[A-Za-z0-9_:]+`) and whose `# ` heading is that stem links
//! that alert name.

use serde_yaml_ng::Value;

use crate::{EntryInput, KnowledgeError, Links, validate};

/// One Markdown file as an entry.
///
/// # Errors
/// [`KnowledgeError::Invalid`] naming the file (and line) for malformed front matter, a key
/// of the wrong type, an empty index page, or an entry [`validate`] refuses.
pub fn entry_from_markdown(rel_path: &str, text: &str) -> Result<EntryInput, KnowledgeError> {
    let path = normalize(rel_path);
    let bad = |m: String| KnowledgeError::Invalid(format!("{path}: {m}"));
    let (front, body) = split_front_matter(text).map_err(&bad)?;
    let mut fm = FrontMatter::default();
    if let Some((yaml, first_line)) = front {
        fm = parse_front_matter(yaml, first_line).map_err(&bad)?;
    }
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(&path)
        .trim_end_matches(".md")
        .to_string();
    if stem == "_index" && body.trim().is_empty() {
        return Err(bad("an empty index page (nothing to import)".into()));
    }
    let h1 = first_h1(body);
    let id = fm
        .id
        .clone()
        .unwrap_or_else(|| id_from_path(path.strip_suffix(".md").unwrap_or(&path)));
    let title = fm
        .title
        .clone()
        .or_else(|| h1.clone())
        .unwrap_or_else(|| stem.clone());
    let mut links = Links {
        alertnames: fm.alertnames,
        matchers: fm.matchers,
        services: fm.services,
        template_ids: fm.template_ids,
        runbook_urls: fm.runbook_urls,
    };
    let looks_like_alert = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && stem.chars().any(|c| c.is_ascii_alphabetic());
    if looks_like_alert && h1.as_deref() == Some(stem.as_str()) && !links.alertnames.contains(&stem)
    {
        links.alertnames.push(stem.clone());
    }
    let input = EntryInput {
        id,
        title,
        body: body.to_string(),
        tags: fm.tags,
        owner: fm.owner,
        links,
        draft: fm.draft,
        source: Some(path.clone()),
    };
    validate(&input).map_err(|e| bad(e.to_string()))?;
    Ok(input)
}

/// The Markdown files of a directory listing as entries, in path order: the entries, and the
/// files refused with why. Files not ending in `.md` and empty `_index.md` pages are skipped;
/// a second file with an id already taken is refused naming the first.
pub fn entries_from_dir_listing(
    files: &[(String, String)],
) -> (Vec<EntryInput>, Vec<(String, KnowledgeError)>) {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by_key(|f| normalize(&f.0));
    let mut ok: Vec<EntryInput> = Vec::new();
    let mut refused = Vec::new();
    let mut ids = std::collections::BTreeMap::<String, String>::new();
    for (path, text) in sorted {
        let norm = normalize(path);
        if !norm.to_ascii_lowercase().ends_with(".md") {
            continue;
        }
        let stem = norm.rsplit('/').next().unwrap_or("");
        if stem == "_index.md" && split_front_matter(text).is_ok_and(|(_, b)| b.trim().is_empty()) {
            continue;
        }
        match entry_from_markdown(path, text) {
            Ok(e) => {
                if let Some(first) = ids.get(&e.id) {
                    refused.push((
                        path.clone(),
                        KnowledgeError::Invalid(format!(
                            "{norm}: entry id {:?} is already used by {first}",
                            e.id
                        )),
                    ));
                } else {
                    ids.insert(e.id.clone(), norm);
                    ok.push(e);
                }
            }
            Err(e) => refused.push((path.clone(), e)),
        }
    }
    (ok, refused)
}

/// An entry id from a path: ASCII characters ids do not allow become `-`, other characters
/// `u` and their hex code (`磁盘` → `u78c1u76d8`), so distinct names stay distinct.
fn id_from_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-') {
            out.push(c);
        } else if c.is_ascii() {
            out.push('-');
        } else {
            out.push_str(&format!("u{:x}", c as u32));
        }
    }
    out.replace("..", "-.")
}

/// Forward slashes, no leading `./` or `/`.
fn normalize(p: &str) -> String {
    let p = p.replace('\\', "/");
    let mut s = p.as_str();
    loop {
        if let Some(r) = s.strip_prefix("./") {
            s = r;
        } else if let Some(r) = s.strip_prefix('/') {
            s = r;
        } else {
            break;
        }
    }
    s.to_string()
}

/// `(Some((front matter, its first line number)), body)` or `(None, text)`.
#[allow(clippy::type_complexity)]
fn split_front_matter(text: &str) -> Result<(Option<(&str, usize)>, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or("");
    if first.trim_end() != "---" {
        return Ok((None, text));
    }
    let start = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut off = start;
    for line in text[start..].split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t == "..." {
            return Ok((Some((&text[start..off], 2)), &text[off + line.len()..]));
        }
        off += line.len();
    }
    Err("front matter opened on line 1 is not closed by a `---` line".into())
}

/// The recognised front-matter keys.
#[derive(Debug, Default)]
struct FrontMatter {
    id: Option<String>,
    title: Option<String>,
    tags: Vec<String>,
    owner: Option<String>,
    alertnames: Vec<String>,
    matchers: Vec<String>,
    services: Vec<String>,
    template_ids: Vec<String>,
    runbook_urls: Vec<String>,
    draft: bool,
}

fn parse_front_matter(yaml: &str, first_line: usize) -> Result<FrontMatter, String> {
    let v: Value = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let line = e
            .location()
            .map_or(first_line, |l| l.line() + first_line - 1);
        format!(
            "malformed front matter at line {line}: {}",
            shift_lines(&e.to_string(), first_line - 1)
        )
    })?;
    let map = match v {
        Value::Mapping(m) => m,
        Value::Null => return Ok(FrontMatter::default()),
        _ => {
            return Err(format!(
                "front matter (line {first_line}) is not a key: value mapping"
            ));
        }
    };
    let line_of = |key: &str| {
        yaml.lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map_or(first_line, |i| i + first_line)
    };
    let mut fm = FrontMatter::default();
    for (k, v) in &map {
        let Some(key) = k.as_str() else { continue };
        let list = |v: &Value| -> Result<Vec<String>, String> {
            match v {
                Value::Null => Ok(Vec::new()),
                Value::Sequence(s) => s
                    .iter()
                    .map(|x| {
                        scalar(x).ok_or_else(|| {
                            format!(
                                "line {}: {key} must be a string or a list of strings",
                                line_of(key)
                            )
                        })
                    })
                    .collect(),
                other => scalar(other).map(|s| vec![s]).ok_or_else(|| {
                    format!(
                        "line {}: {key} must be a string or a list of strings",
                        line_of(key)
                    )
                }),
            }
        };
        let one = |v: &Value| -> Result<Option<String>, String> {
            match v {
                Value::Null => Ok(None),
                other => scalar(other)
                    .map(Some)
                    .ok_or_else(|| format!("line {}: {key} must be a string", line_of(key))),
            }
        };
        match key {
            "id" => fm.id = one(v)?,
            "title" => fm.title = one(v)?,
            "owner" => fm.owner = one(v)?,
            "tags" => fm.tags = list(v)?,
            "alertname" | "alertnames" => fm.alertnames.extend(list(v)?),
            "matchers" => fm.matchers = list(v)?,
            "service" | "services" => fm.services.extend(list(v)?),
            "template_ids" => fm.template_ids = list(v)?,
            "runbook_url" | "runbook_urls" => fm.runbook_urls.extend(list(v)?),
            "draft" => {
                fm.draft = v
                    .as_bool()
                    .ok_or_else(|| format!("line {}: draft must be true or false", line_of(key)))?;
            }
            _ => {}
        }
    }
    Ok(fm)
}

/// `msg` with every `line N` made a line of the file (the YAML parser counts from the front
/// matter's first line).
fn shift_lines(msg: &str, by: usize) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A YAML scalar as text.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The text of the first `# ` heading outside code fences.
fn first_h1(body: &str) -> Option<String> {
    let mut fence = false;
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if !fence && let Some(h) = t.strip_prefix("# ") {
            let h = h.trim().trim_end_matches('#').trim();
            if !h.is_empty() {
                return Some(h.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_alert_name_from_the_stem() {
        let e = entry_from_markdown(
            "node/NodeRAIDDegraded.md",
            "---\ntitle: Node RAID Degraded\nweight: 20\ntags: [disk, raid]\n---\n\n# NodeRAIDDegraded\n\n## Meaning\n\nA disk failed.\n",
        )
        .unwrap();
        assert_eq!(e.id, "node/NodeRAIDDegraded");
        assert_eq!(e.title, "Node RAID Degraded");
        assert_eq!(e.tags, ["disk", "raid"]);
        assert_eq!(e.links.alertnames, ["NodeRAIDDegraded"]);
        assert_eq!(e.source.as_deref(), Some("node/NodeRAIDDegraded.md"));
        assert!(e.body.starts_with("\n# NodeRAIDDegraded"));
    }

    #[test]
    fn without_front_matter_the_heading_is_the_title() {
        let e =
            entry_from_markdown("./ops\\disk full.md", "# 磁盘空间不足\n\n清理日志。\n").unwrap();
        assert_eq!(e.id, "ops/disk-full");
        assert_eq!(e.title, "磁盘空间不足");
        assert!(e.links.alertnames.is_empty());
        let e = entry_from_markdown("运维/磁盘.md", "# 磁盘\n").unwrap();
        assert_eq!(e.id, "u8fd0u7ef4/u78c1u76d8");
    }

    #[test]
    fn malformed_front_matter_names_file_and_line() {
        let err = entry_from_markdown("a/b.md", "---\ntitle: ok\ntags: [unclosed\n---\nbody\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a/b.md: malformed front matter at line"),
            "{err}"
        );
        let err = entry_from_markdown("a/b.md", "---\ntitle: x\nbody\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not closed"), "{err}");
        let err = entry_from_markdown("a/b.md", "---\ntitle: x\nowner: [a, b]\n---\nbody\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "a/b.md: line 3: owner must be a string");
    }

    #[test]
    fn listing_skips_other_files_and_empty_index_pages() {
        let files = vec![
            (
                "b/_index.md".to_string(),
                "---\ntitle: b\n---\n".to_string(),
            ),
            ("LICENSE".to_string(), "Apache".to_string()),
            ("b/X.md".to_string(), "# X\n\ntext\n".to_string()),
            ("a/Y.md".to_string(), "---\nid: b/X\n---\n# Y\n".to_string()),
            (
                "c/bad.md".to_string(),
                "---\nmatchers: ['sev=~\"(\"']\n---\n# bad\n".to_string(),
            ),
        ];
        let (ok, refused) = entries_from_dir_listing(&files);
        let ids: Vec<&str> = ok.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["b/X"]);
        assert_eq!(refused.len(), 2);
        assert_eq!(refused[0].0, "b/X.md");
        assert!(
            refused[0].1.to_string().contains("already used by a/Y.md"),
            "{refused:?}"
        );
        assert!(refused[1].1.to_string().contains("matcher"), "{refused:?}");
    }
}
