//! Templates in Jinja syntax (minijinja), rendered in a sandbox: no file or network access, a fuel
//! budget (instructions) per render, a recursion limit and a cap on output size, so a workflow or
//! an alert label cannot make a render run long or produce megabytes.
//!
//! Rendering never re-reads its output: a label value containing `{{ … }}` or `{% … %}` is data,
//! not a template. A string that is exactly one expression (`"{{ steps.owner.results }}"`) keeps
//! the expression's type (list, object, number), so `foreach` and argument lists stay structured.
//! Secrets render as markers (`⟦secret:NAME⟧`) that only the executor replaces, right before the
//! call; events, approvals and API answers only ever see the markers.

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;
use std::borrow::Cow;
use std::io::Write;

/// Instructions one render may execute.
pub const DEFAULT_FUEL: u64 = 100_000;
/// Bytes one rendered string may have.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;
/// Marker prefix of a secret reference in rendered values.
pub const SECRET_OPEN: &str = "⟦secret:";
/// Marker suffix.
pub const SECRET_CLOSE: &str = "⟧";

/// Why a template could not be compiled or rendered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// Syntax error, unknown filter, undefined variable, type error.
    #[error("template {template:?}: {message}")]
    Render {
        /// The template source (shortened).
        template: String,
        /// What minijinja reported.
        message: String,
    },
    /// The output passed the size cap.
    #[error("template {template:?}: output larger than {limit} bytes (cut off)")]
    TooLarge {
        /// The template source (shortened).
        template: String,
        /// The cap.
        limit: usize,
    },
    /// The fuel ran out (too much work: a loop over a huge range, …).
    #[error("template {template:?}: took more than {fuel} instructions (stopped)")]
    OutOfFuel {
        /// The template source (shortened).
        template: String,
        /// The budget.
        fuel: u64,
    },
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The sandboxed renderer.
pub struct Renderer {
    env: Environment<'static>,
    fuel: u64,
    max_output: usize,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("fuel", &self.fuel)
            .field("max_output", &self.max_output)
            .finish()
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new(DEFAULT_FUEL, DEFAULT_MAX_OUTPUT)
    }
}

struct Limited {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Write for Limited {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// True when `s` contains template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is exactly `{{ expr }}`, if it is one.
pub fn sole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%"))
        .then_some(inner.trim())
}

impl Renderer {
    /// A renderer with the given budgets.
    pub fn new(fuel: u64, max_output: usize) -> Renderer {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(fuel));
        env.set_recursion_limit(64);
        // Values go into JSON, commands and chat messages, not HTML: no auto-escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        register_alertmanager(&mut env);
        env.add_filter("to_json_pretty", to_json_pretty);
        Renderer {
            env,
            fuel,
            max_output,
        }
    }

    fn err(&self, src: &str, e: &minijinja::Error) -> TemplateError {
        match e.kind() {
            ErrorKind::OutOfFuel => TemplateError::OutOfFuel {
                template: short(src),
                fuel: self.fuel,
            },
            _ => TemplateError::Render {
                template: short(src),
                message: e.to_string(),
            },
        }
    }

    /// Checks that `src` compiles (at load time).
    ///
    /// # Errors
    /// The syntax error.
    pub fn check(&self, src: &str) -> Result<(), TemplateError> {
        if let Some(expr) = sole_expression(src) {
            return self
                .env
                .compile_expression(&keep_paths_expr(expr))
                .map(|_| ())
                .map_err(|e| self.err(src, &e));
        }
        self.env
            .template_from_str(&keep_paths(src))
            .map(|_| ())
            .map_err(|e| self.err(src, &e))
    }

    /// Checks an `if:`/`foreach:` expression (bare, or wrapped in `{{ }}`).
    ///
    /// # Errors
    /// The syntax error.
    pub fn check_expression(&self, src: &str) -> Result<(), TemplateError> {
        let expr = sole_expression(src).unwrap_or(src);
        self.env
            .compile_expression(&keep_paths_expr(expr))
            .map(|_| ())
            .map_err(|e| self.err(src, &e))
    }

    /// Renders one string template to a string.
    ///
    /// # Errors
    /// [`TemplateError`].
    pub fn render_str(&self, src: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        let code = keep_paths(src);
        let tmpl = self
            .env
            .template_from_str(&code)
            .map_err(|e| self.err(src, &e))?;
        let mut out = Limited {
            buf: Vec::new(),
            limit: self.max_output,
            over: false,
        };
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
            Err(_) if out.over => Err(TemplateError::TooLarge {
                template: short(src),
                limit: self.max_output,
            }),
            Err(e) => Err(self.err(src, &e)),
        }
    }

    /// Evaluates an expression to a JSON value.
    ///
    /// # Errors
    /// [`TemplateError`].
    pub fn eval(&self, src: &str, ctx: &Value) -> Result<Value, TemplateError> {
        let expr_src = keep_paths_expr(sole_expression(src).unwrap_or(src));
        let expr = self
            .env
            .compile_expression(&expr_src)
            .map_err(|e| self.err(src, &e))?;
        let v = expr.eval(ctx).map_err(|e| self.err(src, &e))?;
        if v.is_undefined() {
            return Ok(Value::Null);
        }
        let json = serde_json::to_value(&v).map_err(|e| TemplateError::Render {
            template: short(src),
            message: e.to_string(),
        })?;
        let size = json.to_string().len();
        if size > self.max_output {
            return Err(TemplateError::TooLarge {
                template: short(src),
                limit: self.max_output,
            });
        }
        Ok(json)
    }

    /// Evaluates a condition: its truthiness as Jinja sees it.
    ///
    /// # Errors
    /// [`TemplateError`].
    pub fn truthy(&self, src: &str, ctx: &Value) -> Result<bool, TemplateError> {
        let expr_src = keep_paths_expr(sole_expression(src).unwrap_or(src));
        let expr = self
            .env
            .compile_expression(&expr_src)
            .map_err(|e| self.err(src, &e))?;
        expr.eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| self.err(src, &e))
    }

    /// Renders every string in a JSON tree. A string that is exactly one expression takes the
    /// expression's value; other strings render to strings; keys are not templated.
    ///
    /// # Errors
    /// The first [`TemplateError`], or [`TemplateError::TooLarge`] when the whole tree passes
    /// the output cap.
    pub fn render_value(&self, v: &Value, ctx: &Value) -> Result<Value, TemplateError> {
        let mut budget = self.max_output;
        self.render_inner(v, ctx, &mut budget)
    }

    fn render_inner(
        &self,
        v: &Value,
        ctx: &Value,
        budget: &mut usize,
    ) -> Result<Value, TemplateError> {
        let out = match v {
            Value::String(s) if sole_expression(s).is_some() => self.eval(s, ctx)?,
            Value::String(s) => Value::String(self.render_str(s, ctx)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.render_inner(x, ctx, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render_inner(x, ctx, budget)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        };
        if let Value::String(s) = &out {
            if s.len() > *budget {
                return Err(TemplateError::TooLarge {
                    template: short(&v.to_string()),
                    limit: self.max_output,
                });
            }
            *budget -= s.len();
        }
        Ok(out)
    }
}

/// `{{ value | to_json_pretty }}`: JSON with a 2-space indent, keys sorted, non-ASCII text kept
/// as is (a Chinese message stays readable in a ticket), as Keep's filter of that name.
fn to_json_pretty(v: minijinja::Value) -> Result<String, minijinja::Error> {
    let json = serde_json::to_value(&v).map_err(|e| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("to_json_pretty: value cannot be written as JSON: {e}"),
        )
    })?;
    serde_json::to_string_pretty(&json).map_err(|e| {
        minijinja::Error::new(ErrorKind::InvalidOperation, format!("to_json_pretty: {e}"))
    })
}

/// Roots whose next path segment is a name that may contain `-` (step names, provider names,
/// secret names), resolved as Keep resolves them.
const HYPHEN_ROOTS: &[&str] = &["steps", "providers", "secrets"];

fn ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The end of the string literal that opens at `i` (the index after its closing quote).
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != q {
        if b[j] == b'\\' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(b.len())
}

/// Rewrites Keep-style dotted paths with hyphenated names in one Jinja expression (or the code
/// of one `{% %}` tag) into subscripts minijinja understands: `steps.check-similar-incidents.results`
/// becomes `steps["check-similar-incidents"].results`. Only the segment right after a `steps.`,
/// `providers.` or `secrets.` root is joined, and only across a `-` with no spaces around it that
/// is followed by a word with a letter or `_` in it: `a - b`, `steps.x - 1` and `steps.x-1` stay
/// subtractions. String literals are left alone.
pub fn keep_paths_expr(e: &str) -> Cow<'_, str> {
    if !e.contains('-') {
        return Cow::Borrowed(e);
    }
    let b = e.as_bytes();
    let mut out = String::new();
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            i = skip_string(b, i);
            continue;
        }
        let starts_word = (c.is_ascii_alphabetic() || c == b'_')
            && (i == 0 || !(ident_byte(b[i - 1]) || b[i - 1] == b'.'));
        if !starts_word {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && ident_byte(b[i]) {
            i += 1;
        }
        if !HYPHEN_ROOTS.contains(&&e[s..i]) || b.get(i) != Some(&b'.') {
            continue;
        }
        let seg = i + 1;
        let mut j = seg;
        while j < b.len() && ident_byte(b[j]) {
            j += 1;
        }
        if j == seg {
            continue;
        }
        let mut joined = false;
        while j + 1 < b.len() && b[j] == b'-' && ident_byte(b[j + 1]) {
            let k0 = j + 1;
            let mut k = k0;
            while k < b.len() && ident_byte(b[k]) {
                k += 1;
            }
            if e[k0..k].bytes().all(|x| x.is_ascii_digit()) {
                break;
            }
            joined = true;
            j = k;
        }
        if joined {
            out.push_str(&e[last..i]);
            out.push_str("[\"");
            out.push_str(&e[seg..j]);
            out.push_str("\"]");
            last = j;
        }
        i = j;
    }
    if last == 0 {
        return Cow::Borrowed(e);
    }
    out.push_str(&e[last..]);
    Cow::Owned(out)
}

/// [`keep_paths_expr`] applied to the code inside every `{{ … }}` and `{% … %}` of a template;
/// text outside them and `{# … #}` comments stay as written.
pub fn keep_paths(src: &str) -> Cow<'_, str> {
    if !src.contains('-') || !HYPHEN_ROOTS.iter().any(|r| src.contains(r)) {
        return Cow::Borrowed(src);
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 16);
    let (mut i, mut last) = (0, 0);
    while i + 1 < b.len() {
        let close: &[u8] = match (b[i], b[i + 1]) {
            (b'{', b'{') => b"}}",
            (b'{', b'%') => b"%}",
            (b'{', b'#') => {
                i = src[i..].find("#}").map_or(b.len(), |k| i + k + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 2;
        let mut j = start;
        while j + 1 < b.len() && !(b[j] == close[0] && b[j + 1] == close[1]) {
            if b[j] == b'"' || b[j] == b'\'' {
                j = skip_string(b, j);
            } else {
                j += 1;
            }
        }
        // An action that is never closed runs to the end of the text (the template engine then
        // refuses it with its line): never cut inside a multi-byte character.
        let end = if j + 1 < b.len() { j } else { b.len() };
        if let Cow::Owned(code) = keep_paths_expr(&src[start..end]) {
            out.push_str(&src[last..start]);
            out.push_str(&code);
            last = end;
        }
        i = end + 2;
    }
    if last == 0 {
        return Cow::Borrowed(src);
    }
    out.push_str(&src[last..]);
    Cow::Owned(out)
}

/// The marker a secret renders as.
pub fn secret_marker(name: &str) -> String {
    format!("{SECRET_OPEN}{name}{SECRET_CLOSE}")
}

/// Replaces secret markers in every string of `v` with `lookup(name)`.
///
/// # Errors
/// The name of a secret `lookup` does not know.
pub fn substitute_secrets(
    v: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains(SECRET_OPEN) => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find(SECRET_OPEN) {
                out.push_str(&rest[..i]);
                let after = &rest[i + SECRET_OPEN.len()..];
                let Some(j) = after.find(SECRET_CLOSE) else {
                    out.push_str(&rest[i..]);
                    rest = "";
                    break;
                };
                let name = &after[..j];
                out.push_str(&lookup(name).ok_or_else(|| format!("unknown secret {name:?}"))?);
                rest = &after[j + SECRET_CLOSE.len()..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| substitute_secrets(x, lookup)),
        Value::Object(o) => o
            .values_mut()
            .try_for_each(|x| substitute_secrets(x, lookup)),
        _ => Ok(()),
    }
}

/// The notification of a template call as JSON (the payload builders work on JSON).
fn json_of(n: &minijinja::Value) -> Result<Value, minijinja::Error> {
    serde_json::to_value(n).map_err(|e| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("not a notification: {e}"),
        )
    })
}

/// Alertmanager's payloads for the generated receiver workflows
/// ([`crate::alertmanager`]): pure functions of the notification.
fn register_alertmanager(env: &mut Environment<'static>) {
    use crate::alertmanager as am;
    use minijinja::Value as V;
    env.add_function(
        "am_webhook",
        |n: V, max_alerts: u64, send_resolved: bool, ext: String, receiver: String| {
            let n = json_of(&n)?;
            let max = usize::try_from(max_alerts).unwrap_or(usize::MAX);
            Ok::<V, minijinja::Error>(V::from_serialize(am::webhook_body(
                &n,
                max,
                send_resolved,
                &ext,
                &receiver,
            )))
        },
    );
    // Six arguments are more than minijinja's functions take: the options come as one list.
    let opt_str = |o: &[V], i: usize| {
        o.get(i)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    env.add_function(
        "am_go",
        move |n: V, src: String, fallback: String, o: Vec<V>| {
            let sr = o.first().is_some_and(V::is_true);
            Ok::<String, minijinja::Error>(am::go_field(
                &json_of(&n)?,
                &src,
                &fallback,
                sr,
                &opt_str(&o, 1),
                &opt_str(&o, 2),
            ))
        },
    );
    env.add_function("am_subject", |n: V, send_resolved: bool| {
        Ok::<String, minijinja::Error>(am::subject(&json_of(&n)?, send_resolved))
    });
    env.add_function("am_color", |n: V, send_resolved: bool| {
        Ok::<String, minijinja::Error>(am::color(&json_of(&n)?, send_resolved).to_string())
    });
    env.add_function(
        "am_fallback",
        |n: V, send_resolved: bool, ext: String, receiver: String| {
            Ok::<String, minijinja::Error>(am::fallback(
                &json_of(&n)?,
                send_resolved,
                &ext,
                &receiver,
            ))
        },
    );
    env.add_function(
        "am_text",
        |n: V, send_resolved: bool, ext: String, receiver: String| {
            Ok::<String, minijinja::Error>(am::text(&json_of(&n)?, send_resolved, &ext, &receiver))
        },
    );
    env.add_function("am_pagerduty", move |n: V, o: Vec<V>| {
        let sr = o.first().is_some_and(V::is_true);
        Ok::<V, minijinja::Error>(V::from_serialize(am::pagerduty(
            &json_of(&n)?,
            sr,
            &opt_str(&o, 1),
            &opt_str(&o, 2),
            &opt_str(&o, 3),
            &opt_str(&o, 4),
        )))
    });
}
