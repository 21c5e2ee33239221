//! The subset of Go's `text/template` that Alertmanager configurations use in receiver fields
//! (`title: '{{ .CommonLabels.alertname }}'`, `text: '{{ range .Alerts }}…{{ end }}'`,
//! `{{ template "slack.default.title" . }}`), evaluated over Alertmanager's template data.
//!
//! Supported: text and actions with `{{-`/`-}}` trimming and comments; fields (`.A.b`), `$`,
//! variables (`$x := …`, `range $i, $a := …`), pipelines with `|`, parentheses, string/raw
//! string/number/bool literals; `if`/`else if`/`else`/`end`, `range` (with `else`), `with`
//! (with `else`), `template "name" .` for Alertmanager's default templates; Alertmanager's
//! methods (`.Alerts.Firing`, `.Alerts.Resolved`, `.Labels.SortedPairs`, `.Names`, `.Values`,
//! `.Remove <names>`) and functions (`eq ne lt le gt ge and or not len index print printf
//! println urlquery html js toUpper toLower title join safeHtml reReplaceAll match trimSpace
//! stringSlice`). Anything else is refused when the configuration is loaded, with the reason, so
//! a receiver never sends half a template.
//!
//! Evaluation is pure and bounded (steps and output size), like the Jinja sandbox.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Steps one evaluation may take.
const MAX_STEPS: u64 = 200_000;
/// Bytes one evaluation may produce.
const MAX_OUTPUT: usize = 64 * 1024;

/// Why a template was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Go template: {0}")]
pub struct GoTemplateError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, GoTemplateError> {
    Err(GoTemplateError(m.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.b` (empty path: `.`).
    Field(Vec<String>),
    /// `$x.A` (`$` alone: name empty).
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    /// `( pipeline )` followed by fields.
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Out(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipeline>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct GoTemplate {
    nodes: Vec<Node>,
}

// ---------------------------------------------------------------------------------------------
// Lexing: text and actions.

enum Seg {
    Text(String),
    Action(String),
}

fn segments(src: &str) -> Result<Vec<Seg>, GoTemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[i + 2..];
        let (trim_left, after) = match after.strip_prefix("- ") {
            Some(a) => (true, a),
            None => (false, after),
        };
        if trim_left {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            out.push(Seg::Text(text));
        }
        let end = find_close(after).ok_or_else(|| GoTemplateError("unclosed action".into()))?;
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(x) = inner.strip_suffix(" -") {
            inner = x;
            trim_next = true;
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            out.push(Seg::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        out.push(Seg::Text(text));
    }
    Ok(out)
}

/// The `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Pipe,
    Decl,
    Assign,
    Comma,
}

fn tokens(s: &str) -> Result<Vec<Tok>, GoTemplateError> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                // Fields right after a parenthesis belong to it: `(…).A`.
                if i < c.len() && c[i] == '.' {
                    let start = i;
                    while i < c.len() && !matches!(c[i], ' ' | '\t' | '\n' | '(' | ')' | '|') {
                        i += 1;
                    }
                    out.push(Tok::Word(c[start..i].iter().collect()));
                }
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if c.get(i + 1) == Some(&'=') => {
                out.push(Tok::Decl);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    let Some(&x) = c.get(i) else {
                        return err("unterminated string");
                    };
                    i += 1;
                    match x {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = c.get(i) else {
                                return err("unterminated string");
                            };
                            i += 1;
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        x => v.push(x),
                    }
                }
                out.push(Tok::Str(v));
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while i < c.len() && c[i] != '`' {
                    i += 1;
                }
                if i >= c.len() {
                    return err("unterminated raw string");
                }
                out.push(Tok::Str(c[start..i].iter().collect()));
                i += 1;
            }
            _ => {
                let start = i;
                while i < c.len()
                    && !matches!(c[i], ' ' | '\t' | '\n' | '\r' | '(' | ')' | '|' | ',')
                {
                    if c[i] == ':' && c.get(i + 1) == Some(&'=') {
                        break;
                    }
                    i += 1;
                }
                let w: String = c[start..i].iter().collect();
                if w.is_empty() {
                    return err(format!("unexpected {ch:?}"));
                }
                if let Ok(n) = w.parse::<f64>()
                    && (w.starts_with(|x: char| x.is_ascii_digit()) || w.starts_with('-'))
                {
                    out.push(Tok::Num(n));
                } else {
                    out.push(Tok::Word(w));
                }
            }
        }
    }
    Ok(out)
}

fn path_of(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_pipeline(toks: &[Tok]) -> Result<Pipeline, GoTemplateError> {
    let mut pos = 0;
    let p = pipeline_at(toks, &mut pos)?;
    if pos != toks.len() {
        return err("unexpected ')'");
    }
    Ok(p)
}

fn pipeline_at(toks: &[Tok], pos: &mut usize) -> Result<Pipeline, GoTemplateError> {
    let mut decl = Vec::new();
    // `$x :=` / `$i, $x :=`.
    let mut look = *pos;
    let mut vars = Vec::new();
    while let Some(Tok::Word(w)) = toks.get(look) {
        if !w.starts_with('$') {
            break;
        }
        vars.push(w[1..].to_string());
        look += 1;
        match toks.get(look) {
            Some(Tok::Comma) => look += 1,
            Some(Tok::Decl) | Some(Tok::Assign) => {
                decl = vars.clone();
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    while let Some(t) = toks.get(*pos) {
        match t {
            Tok::RParen => break,
            Tok::Pipe => {
                if cur.is_empty() {
                    return err("empty command in pipeline");
                }
                cmds.push(std::mem::take(&mut cur));
                *pos += 1;
            }
            Tok::LParen => {
                *pos += 1;
                let sub = pipeline_at(toks, pos)?;
                if toks.get(*pos) != Some(&Tok::RParen) {
                    return err("unclosed '('");
                }
                *pos += 1;
                let mut fields = Vec::new();
                if let Some(Tok::Word(w)) = toks.get(*pos)
                    && w.starts_with('.')
                {
                    fields = path_of(w);
                    *pos += 1;
                }
                cur.push(Arg::Sub(Box::new(sub), fields));
            }
            Tok::Str(s) => {
                cur.push(Arg::Lit(Value::String(s.clone())));
                *pos += 1
            }
            Tok::Num(n) => {
                cur.push(Arg::Lit(
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
                ));
                *pos += 1
            }
            Tok::Word(w) => {
                *pos += 1;
                cur.push(match w.as_str() {
                    "true" => Arg::Lit(Value::Bool(true)),
                    "false" => Arg::Lit(Value::Bool(false)),
                    "nil" => Arg::Lit(Value::Null),
                    w if w.starts_with('.') => Arg::Field(path_of(w)),
                    w if w.starts_with('$') => {
                        let mut parts = w[1..].splitn(2, '.');
                        let name = parts.next().unwrap_or("").to_string();
                        Arg::Var(name, parts.next().map(path_of).unwrap_or_default())
                    }
                    w if w.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                        Arg::Func(w.to_string())
                    }
                    w => return err(format!("unexpected {w:?}")),
                });
            }
            Tok::Comma | Tok::Decl | Tok::Assign => return err("unexpected ',' or ':='"),
        }
    }
    if !cur.is_empty() {
        cmds.push(cur);
    }
    if cmds.is_empty() {
        return err("missing value");
    }
    for c in &cmds {
        if let Some(Arg::Func(f)) = c.first()
            && !FUNCS.contains(&f.as_str())
        {
            return err(format!("function {f:?} is not supported"));
        }
    }
    Ok(Pipeline { decl, cmds })
}

const FUNCS: &[&str] = &[
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "urlquery",
    "html",
    "js",
    "toUpper",
    "toLower",
    "title",
    "join",
    "safeHtml",
    "reReplaceAll",
    "match",
    "trimSpace",
    "stringSlice",
];

/// Alertmanager's default templates that receiver fields may call.
pub const KNOWN_TEMPLATES: &[&str] = &[
    "__subject",
    "__alertmanagerURL",
    "__text_alert_list",
    "slack.default.title",
    "slack.default.username",
    "slack.default.fallback",
    "slack.default.titlelink",
    "slack.default.text",
    "slack.default.pretext",
    "slack.default.footer",
    "email.default.subject",
    "email.default.html",
    "pagerduty.default.description",
    "msteams.default.title",
    "msteams.default.text",
    "msteamsv2.default.title",
    "msteamsv2.default.text",
    "webex.default.message",
];

impl GoTemplate {
    /// Parses `src`.
    ///
    /// # Errors
    /// The first construct that is malformed or not supported.
    pub fn parse(src: &str) -> Result<GoTemplate, GoTemplateError> {
        let segs = segments(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&segs, &mut pos)?;
        if let Some(e) = end {
            return err(format!("unexpected {{{{ {e} }}}}"));
        }
        Ok(GoTemplate { nodes })
    }

    /// Renders over `data` (Alertmanager's template data, see
    /// [`crate::alertmanager::template_data`]); `named` renders a default template by name.
    ///
    /// # Errors
    /// A runtime error (index out of range, a field of a non-map, too much work or output).
    pub fn render(
        &self,
        data: &Value,
        named: &dyn Fn(&str, &Value) -> Option<String>,
    ) -> Result<String, GoTemplateError> {
        let mut ev = Eval {
            root: data,
            vars: vec![("".into(), data.clone())],
            out: String::new(),
            steps: 0,
            named,
        };
        ev.nodes(&self.nodes, data)?;
        Ok(ev.out)
    }
}

/// Parses nodes until an `end`/`else` keyword, which is returned.
fn parse_nodes(
    segs: &[Seg],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<String>), GoTemplateError> {
    let mut out = Vec::new();
    while let Some(s) = segs.get(*pos) {
        *pos += 1;
        let a = match s {
            Seg::Text(t) => {
                out.push(Node::Text(t.clone()));
                continue;
            }
            Seg::Action(a) => a.as_str(),
        };
        let (kw, rest) = match a.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (a, ""),
        };
        match kw {
            "end" => return Ok((out, Some("end".into()))),
            "else" => return Ok((out, Some(format!("else {rest}").trim().to_string()))),
            "if" | "range" | "with" => {
                let p = parse_pipeline(&tokens(rest)?)?;
                let (body, end) = parse_nodes(segs, pos)?;
                let els = match end.as_deref() {
                    Some("end") => Vec::new(),
                    Some("else") => {
                        let (e, end2) = parse_nodes(segs, pos)?;
                        if end2.as_deref() != Some("end") {
                            return err(format!("{kw} without end"));
                        }
                        e
                    }
                    Some(x) if kw == "if" && x.starts_with("else if ") => {
                        // `else if c` is an `if` nested in the else branch, sharing the `end`.
                        let cond = parse_pipeline(&tokens(&x["else if ".len()..])?)?;
                        let nested = parse_else_if(cond, segs, pos)?;
                        vec![nested]
                    }
                    _ => return err(format!("{kw} without end")),
                };
                out.push(match kw {
                    "if" => Node::If(p, body, els),
                    "range" => Node::Range(p, body, els),
                    _ => Node::With(p, body, els),
                });
            }
            "template" => {
                let toks = tokens(rest)?;
                let Some(Tok::Str(name)) = toks.first() else {
                    return err("template needs a quoted name");
                };
                if !KNOWN_TEMPLATES.contains(&name.as_str()) {
                    return err(format!(
                        "template {name:?} is not one of Alertmanager's defaults (`templates:` files are not read)"
                    ));
                }
                let arg = if toks.len() > 1 {
                    Some(parse_pipeline(&toks[1..])?)
                } else {
                    None
                };
                out.push(Node::Template(name.clone(), arg));
            }
            "define" | "block" | "break" | "continue" => {
                return err(format!("{kw} is not supported in a receiver field"));
            }
            _ => out.push(Node::Out(parse_pipeline(&tokens(a)?)?)),
        }
    }
    Ok((out, None))
}

fn parse_else_if(cond: Pipeline, segs: &[Seg], pos: &mut usize) -> Result<Node, GoTemplateError> {
    let (body, end) = parse_nodes(segs, pos)?;
    let els = match end.as_deref() {
        Some("end") => Vec::new(),
        Some("else") => {
            let (e, end2) = parse_nodes(segs, pos)?;
            if end2.as_deref() != Some("end") {
                return err("if without end");
            }
            e
        }
        Some(x) if x.starts_with("else if ") => {
            let c = parse_pipeline(&tokens(&x["else if ".len()..])?)?;
            vec![parse_else_if(c, segs, pos)?]
        }
        _ => return err("if without end"),
    };
    Ok(Node::If(cond, body, els))
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

struct Eval<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    out: String,
    steps: u64,
    named: &'a dyn Fn(&str, &Value) -> Option<String>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(o) if is_pair(o) => format!(
            "{}={}",
            o.get("Name").map(show).unwrap_or_default(),
            o.get("Value").map(show).unwrap_or_default()
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", show(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn is_pair(o: &Map<String, Value>) -> bool {
    o.len() == 2 && o.contains_key("Name") && o.contains_key("Value")
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("__aiops"))
                .map(|(k, v)| (k.clone(), show(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(v: &Value) -> Value {
    Value::Array(
        string_map(v)
            .into_iter()
            .map(|(k, v)| serde_json::json!({"Name": k, "Value": v}))
            .collect(),
    )
}

impl Eval<'_> {
    fn step(&mut self) -> Result<(), GoTemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err(format!("took more than {MAX_STEPS} steps (stopped)"));
        }
        if self.out.len() > MAX_OUTPUT {
            return err(format!("output larger than {MAX_OUTPUT} bytes (cut off)"));
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), GoTemplateError> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Out(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&show(&v));
                    }
                }
                Node::If(p, a, b) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.nodes(a, dot)?
                    } else {
                        self.nodes(b, dot)?
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, a, b) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.nodes(a, &v)?
                    } else {
                        self.nodes(b, dot)?
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let list = self.value_of_pipe(p, dot)?;
                    let items: Vec<(Value, Value)> = match &list {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(o) => o
                            .iter()
                            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                            .collect(),
                        Value::Null => Vec::new(),
                        other => return err(format!("range can't iterate over {}", show(other))),
                    };
                    if items.is_empty() {
                        self.nodes(els, dot)?;
                    }
                    for (k, x) in items {
                        let m = self.vars.len();
                        match p.decl.as_slice() {
                            [v] => self.vars.push((v.clone(), x.clone())),
                            [i, v] => {
                                self.vars.push((i.clone(), k));
                                self.vars.push((v.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.nodes(body, &x)?;
                        self.vars.truncate(m);
                    }
                    self.vars.truncate(mark);
                }
                Node::Template(name, arg) => {
                    let d = match arg {
                        Some(p) => self.pipeline(p, dot)?,
                        None => Value::Null,
                    };
                    match (self.named)(name, &d) {
                        Some(s) => self.out.push_str(&s),
                        None => {
                            return err(format!("template {name:?} needs the whole data (`.`)"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A pipeline's value without declaring its variables (range declares per item).
    fn value_of_pipe(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, GoTemplateError> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.command(c, dot, prev)?);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, GoTemplateError> {
        let v = self.value_of_pipe(p, dot)?;
        if let Some(name) = p.decl.first() {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                // `$x = v` assigns; `$x := v` declares (shadowing is the same for printing).
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Result<Value, GoTemplateError> {
        if name.is_empty() {
            return Ok(self.root.clone());
        }
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| GoTemplateError(format!("undefined variable ${name}")))
    }

    /// Follows `path` from `v`; the last element may be a method taking `args`.
    fn fields(
        &mut self,
        mut v: Value,
        path: &[String],
        args: &[Value],
    ) -> Result<Value, GoTemplateError> {
        for (i, f) in path.iter().enumerate() {
            self.step()?;
            let last = i + 1 == path.len();
            v = match (f.as_str(), &v) {
                ("Firing" | "Resolved", Value::Array(a)) => {
                    let want = if f == "Firing" { "firing" } else { "resolved" };
                    Value::Array(
                        a.iter()
                            .filter(|x| x.get("Status").and_then(Value::as_str) == Some(want))
                            .cloned()
                            .collect(),
                    )
                }
                ("SortedPairs", Value::Object(_)) => pairs(&v),
                ("Names", Value::Object(_)) => {
                    Value::Array(string_map(&v).into_keys().map(Value::String).collect())
                }
                ("Values", Value::Object(_)) => {
                    Value::Array(string_map(&v).into_values().map(Value::String).collect())
                }
                ("Names", Value::Array(a)) => {
                    Value::Array(a.iter().filter_map(|p| p.get("Name").cloned()).collect())
                }
                ("Values", Value::Array(a)) => {
                    Value::Array(a.iter().filter_map(|p| p.get("Value").cloned()).collect())
                }
                ("Remove", Value::Object(o)) if last => {
                    let drop: Vec<String> = match args.first() {
                        Some(Value::Array(a)) => a.iter().map(show).collect(),
                        _ => return err(".Remove needs a list of names"),
                    };
                    let mut o = o.clone();
                    o.retain(|k, _| !drop.contains(k));
                    return Ok(Value::Object(o));
                }
                (_, Value::Object(o)) => o.get(f).cloned().unwrap_or(Value::Null),
                (_, Value::Null) => Value::Null,
                (_, other) => {
                    return err(format!("can't evaluate field {f} in {}", show(other)));
                }
            };
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, GoTemplateError> {
        match a {
            Arg::Field(p) => self.fields(dot.clone(), p, &[]),
            Arg::Var(n, p) => {
                let v = self.var(n)?;
                self.fields(v, p, &[])
            }
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, f) => {
                let v = self.value_of_pipe(p, dot)?;
                self.fields(v, f, &[])
            }
            Arg::Func(f) => self.call(f, Vec::new()),
        }
    }

    fn command(
        &mut self,
        c: &[Arg],
        dot: &Value,
        prev: Option<Value>,
    ) -> Result<Value, GoTemplateError> {
        self.step()?;
        let Some(first) = c.first() else {
            return err("empty command");
        };
        let mut args = Vec::new();
        for a in &c[1..] {
            args.push(self.arg(a, dot)?);
        }
        if let Some(p) = prev {
            args.push(p);
        }
        match first {
            Arg::Func(f) => self.call(f, args),
            // A method with arguments: `.CommonLabels.Remove .GroupLabels.Names`.
            Arg::Field(p) if !args.is_empty() => {
                let base = self.fields(dot.clone(), &p[..p.len().saturating_sub(1)], &[])?;
                self.fields(base, &p[p.len().saturating_sub(1)..], &args)
            }
            Arg::Var(n, p) if !args.is_empty() && !p.is_empty() => {
                let v = self.var(n)?;
                let base = self.fields(v, &p[..p.len() - 1], &[])?;
                self.fields(base, &p[p.len() - 1..], &args)
            }
            other if args.is_empty() => self.arg(other, dot),
            _ => err("a value can't take arguments"),
        }
    }

    fn call(&mut self, f: &str, a: Vec<Value>) -> Result<Value, GoTemplateError> {
        let need = |n: usize| -> Result<(), GoTemplateError> {
            if a.len() < n {
                return err(format!("{f} needs {n} arguments"));
            }
            Ok(())
        };
        let s = |i: usize| a.get(i).map(show).unwrap_or_default();
        let cmp = |x: &Value, y: &Value| -> Option<std::cmp::Ordering> {
            match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) => p.partial_cmp(&q),
                _ => Some(show(x).cmp(&show(y))),
            }
        };
        Ok(match f {
            "eq" => {
                need(2)?;
                Value::Bool(
                    a[1..]
                        .iter()
                        .any(|y| cmp(&a[0], y) == Some(std::cmp::Ordering::Equal)),
                )
            }
            "ne" => {
                need(2)?;
                Value::Bool(cmp(&a[0], &a[1]) != Some(std::cmp::Ordering::Equal))
            }
            "lt" | "le" | "gt" | "ge" => {
                need(2)?;
                let o = cmp(&a[0], &a[1]);
                use std::cmp::Ordering::*;
                Value::Bool(match f {
                    "lt" => o == Some(Less),
                    "le" => matches!(o, Some(Less | Equal)),
                    "gt" => o == Some(Greater),
                    _ => matches!(o, Some(Greater | Equal)),
                })
            }
            "and" => {
                need(1)?;
                a.iter()
                    .find(|x| !truthy(x))
                    .unwrap_or(&a[a.len() - 1])
                    .clone()
            }
            "or" => {
                need(1)?;
                a.iter()
                    .find(|x| truthy(x))
                    .unwrap_or(&a[a.len() - 1])
                    .clone()
            }
            "not" => {
                need(1)?;
                Value::Bool(!truthy(&a[0]))
            }
            "len" => {
                need(1)?;
                Value::from(match &a[0] {
                    Value::Array(x) => x.len(),
                    Value::Object(x) => x.len(),
                    Value::String(x) => x.len(),
                    Value::Null => 0,
                    other => return err(format!("len of {}", show(other))),
                })
            }
            "index" => {
                need(2)?;
                let mut v = a[0].clone();
                for k in &a[1..] {
                    v = match (&v, k) {
                        (Value::Array(x), k) => {
                            let i = k
                                .as_u64()
                                .ok_or_else(|| GoTemplateError("index: not a number".into()))?;
                            x.get(usize::try_from(i).unwrap_or(usize::MAX))
                                .cloned()
                                .ok_or_else(|| GoTemplateError(format!("index {i} out of range")))?
                        }
                        (Value::Object(o), k) => o.get(&show(k)).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                v
            }
            "print" => Value::String(a.iter().map(show).collect::<Vec<_>>().join("")),
            "println" => Value::String(a.iter().map(show).collect::<Vec<_>>().join(" ") + "\n"),
            "printf" => {
                need(1)?;
                Value::String(printf(&s(0), &a[1..]))
            }
            "urlquery" => Value::String(
                a.iter()
                    .map(show)
                    .collect::<String>()
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                            (b as char).to_string()
                        } else if b == b' ' {
                            "+".into()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect(),
            ),
            "html" => Value::String(
                a.iter()
                    .map(show)
                    .collect::<String>()
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&#34;")
                    .replace('\'', "&#39;"),
            ),
            "js" => Value::String(
                a.iter()
                    .map(show)
                    .collect::<String>()
                    .replace('\\', "\\\\")
                    .replace('\'', "\\'")
                    .replace('"', "\\\"")
                    .replace('<', "\\u003C")
                    .replace('>', "\\u003E"),
            ),
            "toUpper" => Value::String(s(0).to_uppercase()),
            "toLower" => Value::String(s(0).to_lowercase()),
            "title" => Value::String(
                s(0).split(' ')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "trimSpace" => Value::String(s(0).trim().to_string()),
            "safeHtml" => Value::String(s(0)),
            "join" => {
                need(2)?;
                let list = match &a[1] {
                    Value::Array(x) => x.iter().map(show).collect::<Vec<_>>(),
                    other => vec![show(other)],
                };
                Value::String(list.join(&s(0)))
            }
            "stringSlice" => Value::Array(a.iter().map(|x| Value::String(show(x))).collect()),
            "reReplaceAll" | "match" => {
                let re = regex::RegexBuilder::new(&s(0))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| GoTemplateError(format!("{f}: bad regex: {e}")))?;
                if f == "match" {
                    need(2)?;
                    Value::Bool(re.is_match(&s(1)))
                } else {
                    need(3)?;
                    // Go's `$1` expansion matches the regex crate's.
                    Value::String(re.replace_all(&s(2), s(1).as_str()).into_owned())
                }
            }
            other => return err(format!("function {other:?} is not supported")),
        })
    }
}

/// Go's `printf` for `%s %v %d %q %f %%` (others print as `%v`).
fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Skip flags/width/precision.
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || matches!(d, '.' | '-' | '+' | ' ' | '#') {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&format!("{:?}", it.next().map(show).unwrap_or_default())),
            Some('d') => out.push_str(
                &it.next()
                    .and_then(Value::as_f64)
                    .map_or_else(|| "%!d(MISSING)".to_string(), |f| format!("{}", f as i64)),
            ),
            Some('f') => {
                let prec = spec
                    .split('.')
                    .nth(1)
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(6);
                out.push_str(
                    &it.next()
                        .and_then(Value::as_f64)
                        .map_or_else(|| "%!f(MISSING)".to_string(), |f| format!("{f:.prec$}")),
                )
            }
            Some(_) => out.push_str(&it.next().map(show).unwrap_or_else(|| "%!v(MISSING)".into())),
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "Receiver": "team-x", "Status": "firing", "ExternalURL": "http://am",
            "GroupLabels": {"alertname": "HighLatency"},
            "CommonLabels": {"alertname": "HighLatency", "env": "prod"},
            "CommonAnnotations": {"summary": "p99 high"},
            "Alerts": [
                {"Status": "firing", "Labels": {"alertname": "HighLatency", "env": "prod", "instance": "a"},
                 "Annotations": {"summary": "p99 high", "description": "a is slow"}, "StartsAt": "2023-11-14 22:13:20 +0000 UTC",
                 "EndsAt": "0001-01-01 00:00:00 +0000 UTC", "GeneratorURL": "http://p", "Fingerprint": "f1"},
                {"Status": "resolved", "Labels": {"alertname": "HighLatency", "env": "prod", "instance": "b"},
                 "Annotations": {"summary": "p99 high", "description": "b is slow"}, "StartsAt": "", "EndsAt": "", "GeneratorURL": "", "Fingerprint": "f2"}
            ]
        })
    }

    fn render(src: &str) -> String {
        let t = GoTemplate::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        t.render(&data(), &|n, _| Some(format!("<{n}>")))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn common_alertmanager_templates_render() {
        assert_eq!(
            render(
                r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}"#
            ),
            "[FIRING:1] HighLatency"
        );
        assert_eq!(
            render("{{ range .Alerts }}* {{ .Annotations.description }}\n{{ end }}"),
            "* a is slow\n* b is slow\n"
        );
        assert_eq!(
            render(
                "{{ range .Alerts.Firing -}} {{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}{{- end }}"
            ),
            "alertname=HighLatency env=prod instance=a "
        );
        assert_eq!(
            render(
                "{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join \" \" }}{{ end }}"
            ),
            "prod"
        );
        assert_eq!(
            render(r#"{{ template "slack.default.title" . }}"#),
            "<slack.default.title>"
        );
        assert_eq!(
            render(
                r#"{{ if gt (len .Alerts.Resolved) 0 }}R{{ else if .Status }}F{{ else }}N{{ end }}"#
            ),
            "R"
        );
        assert_eq!(
            render(r#"{{ $n := .Receiver }}{{ $n }}/{{ printf "%s:%d" "x" 3 }}"#),
            "team-x/x:3"
        );
        assert_eq!(
            render(r#"{{ range $i, $a := .Alerts }}{{ $i }}{{ $a.Fingerprint }}{{ end }}"#),
            "0f11f2"
        );
        assert_eq!(
            render(r#"{{ reReplaceAll "(a)b" "$1" "xab" }}|{{ .Missing }}|{{ urlquery "a b" }}"#),
            "xa|<no value>|a+b"
        );
        assert_eq!(render("{{/* comment */}}x"), "x");
    }

    #[test]
    fn unsupported_constructs_are_refused_at_parse() {
        for bad in [
            "{{ .A",
            "{{ if .A }}x",
            r#"{{ template "mine" . }}"#,
            "{{ define \"x\" }}y{{ end }}",
            "{{ humanize .A }}",
            "{{ end }}",
        ] {
            assert!(GoTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluation_is_bounded() {
        let t = GoTemplate::parse("{{ range .Alerts }}{{ range $.Alerts }}{{ range $.Alerts }}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{{ end }}{{ end }}{{ end }}")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut d = data();
        let many: Vec<Value> = (0..200).map(|_| d["Alerts"][0].clone()).collect();
        d["Alerts"] = Value::Array(many);
        assert!(t.render(&d, &|_, _| None).is_err());
    }
}
