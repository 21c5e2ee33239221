/*
 * aiops console script. Written here, no framework, no third-party code. Served as
 * /console/app.js under a CSP without 'unsafe-inline': every behaviour is bound here from
 * classes and data-* attributes, never from inline handlers.
 *
 * Contract (see the top of console.css for the classes):
 * - form.api-form[data-method][data-url][data-kind][data-then]: submitted with fetch, header
 *   X-CSRF-Token from <meta name="csrf-token">. data-kind: "json" (fields → object, name="a.b"
 *   nests; input data-type: number | bool | json | lines | matchers | datetime), "text" (the field
 *   named "body" as text/plain, or data-content-type), "none" (no body). Empty fields are left out
 *   unless the input has data-keep-empty. Fields with data-url-only fill {field} placeholders of
 *   data-url but are not sent in the body. data-then: "reload" (re-fetch <main>),
 *   "redirect:<url>" ({field} and {answer.x} placeholders), "show" (answer JSON into .result),
 *   "none". The answer (error or success) goes to the form's <output class="result">.
 *   An error answer with a "line" (and optional "column") selects that line of the form's
 *   textarea.code and marks it; so does a "file:line:col: reason" problem (the pipeline API's
 *   `problems`/`error`) whose file ends with the form's data-error-file (placeholders filled,
 *   e.g. data-error-file="{name}.sql"; that API trims the text, so leading blank lines are
 *   added back).
 * - button.api-action[data-method][data-url][data-body][data-confirm][data-then]: the same for a
 *   single click; data-body is JSON text. The result goes to the nearest output.result, if any,
 *   else to an alert.
 * - main[data-live-ms] > 0: re-fetch location.href with X-Console-Fragment: main and
 *   If-None-Match; 200 → replace main's content (not while a form inside main has focus or unsaved
 *   input), 304 → nothing, paused while hidden.
 * - button.set-pref[data-cookie][data-value]: sets aiops_lang / aiops_theme and reloads.
 * - svg.chart-svg[data-x0 data-x1 data-y0 data-y1 data-t0 data-t1 data-v0 data-v1]: hover read-out.
 * - textarea.code[data-error-line]: that line is selected when the page loads.
 * - datetime inputs accept "+2h", "+30m", "+1d" (from now) besides datetime-local (read as UTC).
 */
(function () {
  "use strict";

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") || "" : "";
  }

  function lang() {
    return document.documentElement.getAttribute("lang") === "zh-CN" ? "zh" : "en";
  }

  function tr(en, zh) {
    return lang() === "zh" ? zh : en;
  }

  /* ---------- field conversions ---------- */

  function parseMatchers(text) {
    // Alertmanager matcher text: a="b", c=~"d.*", e!="f", g!~"h" (also without quotes).
    var out = [];
    var re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^,"\s}]*))\s*(?:,|$)/y;
    var s = String(text || "").trim().replace(/^\{/, "").replace(/\}$/, "");
    var pos = 0;
    while (pos < s.length) {
      re.lastIndex = pos;
      var m = re.exec(s);
      if (!m || re.lastIndex === pos) {
        throw new Error(tr("cannot read matchers at: ", "无法解析匹配器：") + s.slice(pos));
      }
      var value = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[4];
      out.push({
        name: m[1],
        value: value,
        isRegex: m[2] === "=~" || m[2] === "!~",
        isEqual: m[2] === "=" || m[2] === "=~"
      });
      pos = re.lastIndex;
    }
    return out;
  }

  function parseDatetime(text) {
    var s = String(text).trim();
    var rel = /^\+\s*(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(s);
    if (rel) {
      var mult = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[rel[2]];
      return new Date(Date.now() + parseFloat(rel[1]) * mult).toISOString();
    }
    // datetime-local has no zone; the console shows UTC, so read it as UTC.
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) {
      s += "Z";
    }
    var d = new Date(s);
    if (isNaN(d.getTime())) {
      throw new Error(tr("not a date: ", "不是日期：") + text);
    }
    return d.toISOString();
  }

  function convert(el, raw) {
    var type = el.getAttribute("data-type") || "";
    if (el.type === "checkbox") {
      return type === "bool" || !el.hasAttribute("value") ? el.checked : (el.checked ? raw : undefined);
    }
    switch (type) {
      case "number": {
        var n = Number(raw);
        if (raw.trim() === "" || isNaN(n)) {
          throw new Error(tr("not a number: ", "不是数字：") + (el.name || ""));
        }
        return n;
      }
      case "bool":
        return raw === "true" || raw === "on" || raw === "1" || raw === "yes";
      case "json":
        try {
          return JSON.parse(raw);
        } catch (e) {
          throw new Error(tr("not valid JSON in ", "JSON 无效：") + (el.name || "") + ": " + e.message);
        }
      case "lines":
        return raw.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(function (l) { return l !== ""; });
      case "matchers":
        return parseMatchers(raw);
      case "datetime":
        return parseDatetime(raw);
      default:
        return raw;
    }
  }

  function setPath(obj, path, value) {
    var parts = path.split(".");
    var cur = obj;
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof cur[parts[i]] !== "object" || cur[parts[i]] === null) {
        cur[parts[i]] = {};
      }
      cur = cur[parts[i]];
    }
    var last = parts[parts.length - 1];
    if (last.slice(-2) === "[]") {
      last = last.slice(0, -2);
      if (!Array.isArray(cur[last])) {
        cur[last] = [];
      }
      cur[last].push(value);
    } else {
      cur[last] = value;
    }
  }

  function fieldValues(form) {
    // name → raw string (first value) for placeholders; the typed object for json bodies.
    var flat = {};
    var obj = {};
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.name || el.disabled || el.tagName === "BUTTON" || el.type === "submit") {
        continue;
      }
      if (el.type === "radio" && !el.checked) {
        continue;
      }
      var raw = el.value == null ? "" : String(el.value);
      if (!(el.name in flat)) {
        flat[el.name] = el.type === "checkbox" ? (el.checked ? raw : "") : raw;
      }
      if (el.hasAttribute("data-url-only") || el.name === "csrf") {
        continue;
      }
      if (el.type !== "checkbox" && raw.trim() === "" && !el.hasAttribute("data-keep-empty")) {
        continue;
      }
      var v = convert(el, raw);
      if (v !== undefined) {
        setPath(obj, el.name, v);
      }
    }
    return { flat: flat, obj: obj };
  }

  function fill(template, flat, answer) {
    return template.replace(/\{([A-Za-z0-9_.]+)\}/g, function (all, key) {
      if (key.indexOf("answer.") === 0) {
        var cur = answer;
        key.slice(7).split(".").forEach(function (k) {
          cur = cur != null ? cur[k] : undefined;
        });
        return cur == null ? "" : encodeURIComponent(String(cur));
      }
      return flat[key] == null ? "" : encodeURIComponent(flat[key]);
    });
  }

  /* ---------- requests ---------- */

  function send(method, url, body, contentType) {
    var headers = { "X-CSRF-Token": csrfToken(), Accept: "application/json" };
    if (body != null) {
      headers["Content-Type"] = contentType;
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body,
      credentials: "same-origin",
      redirect: "follow"
    }).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        return { ok: res.ok, status: res.status, text: text, json: json };
      });
    });
  }

  function errorText(ans) {
    var j = ans.json;
    var msg = "";
    if (j && typeof j === "object") {
      msg = j.error || j.message || j.detail || "";
      if (typeof msg === "object") {
        msg = msg.message || JSON.stringify(msg);
      }
      if (Array.isArray(j.problems) && j.problems.length && String(msg).indexOf(j.problems[0]) < 0) {
        msg = (msg ? msg + "\n" : "") + j.problems.join("\n");
      }
      if (j.line != null) {
        msg = tr("line ", "第 ") + j.line + (j.column != null ? ":" + j.column : "") + tr(": ", " 行：") + msg;
      }
    } else if (typeof j === "string") {
      msg = j;
    }
    if (!msg) {
      msg = (ans.text || "").slice(0, 2000);
    }
    return "HTTP " + ans.status + (msg ? " — " + msg : "");
  }

  // Where an error answer points in the submitted text: a "line" field, or the first
  // "file:line:col: reason" problem (the pipeline API's form) whose file ends with the form's
  // data-error-file (placeholders filled).
  function errorLine(ans, form, flat) {
    var j = ans.json;
    if (!j || typeof j !== "object") {
      return null;
    }
    if (j.line != null && !isNaN(Number(j.line))) {
      return { line: Number(j.line), trimmed: false };
    }
    var want = form ? form.getAttribute("data-error-file") : null;
    if (want) {
      want = decodeURIComponent(fill(want, flat || {}, null));
    }
    var texts = Array.isArray(j.problems) ? j.problems.slice() : [];
    if (typeof j.error === "string") {
      texts = texts.concat(j.error.split("\n"));
    }
    for (var i = 0; i < texts.length; i++) {
      var m = /^(.*?):(\d+):(\d+):/.exec(String(texts[i]));
      if (m && (!want || m[1] === want || m[1].slice(-want.length - 1) === "/" + want)) {
        return { line: Number(m[2]), trimmed: !!want };
      }
    }
    return null;
  }

  // The pipeline API trims the text it checks: its line 1 is the textarea's first non-blank line.
  function leadingBlankLines(text) {
    var lines = text.split("\n");
    var n = 0;
    while (n < lines.length - 1 && lines[n].trim() === "") {
      n++;
    }
    return n;
  }

  function selectLine(ta, line) {
    var lines = ta.value.split("\n");
    if (line < 1 || line > lines.length) {
      return;
    }
    var start = 0;
    for (var i = 0; i < line - 1; i++) {
      start += lines[i].length + 1;
    }
    var end = start + lines[line - 1].length;
    ta.focus();
    ta.setSelectionRange(start, end);
    var lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (line - 3) * lh);
    ta.setAttribute("data-error-line", String(line));
    ta.setAttribute("aria-invalid", "true");
  }

  // Where an answer is shown: the form's own output.result, else the nearest one among the
  // element's ancestors (a button in a table cell reports in its card's output).
  function resultOf(el) {
    var node = el;
    while (node && node.nodeType === 1) {
      var out = node.querySelector("output.result");
      if (out) {
        return out;
      }
      if (node.id === "main") {
        break;
      }
      node = node.parentElement;
    }
    if (el.tagName === "FORM") {
      out = document.createElement("output");
      out.className = "result";
      out.setAttribute("role", "status");
      out.setAttribute("aria-live", "polite");
      el.appendChild(out);
      return out;
    }
    return null;
  }

  function report(el, ans, then, flat) {
    var out = resultOf(el);
    if (!ans.ok) {
      var text = errorText(ans);
      if (out) {
        out.className = "result err";
        out.textContent = text;
      } else {
        window.alert(text);
      }
      var ta = el.tagName === "FORM" ? el.querySelector("textarea.code") : null;
      var pos = ta ? errorLine(ans, el, flat) : null;
      if (pos && ta) {
        selectLine(ta, pos.line + (pos.trimmed ? leadingBlankLines(ta.value) : 0));
      } else if (out && out.scrollIntoView) {
        out.scrollIntoView({ block: "nearest" });
      }
      return;
    }
    if (out) {
      if (then === "show") {
        out.className = "result show";
        out.textContent = ans.json != null ? JSON.stringify(ans.json, null, 2) : ans.text;
      } else {
        out.className = "result ok";
        out.textContent = tr("Done", "完成") + " (HTTP " + ans.status + ")";
      }
    }
  }

  function after(then, flat, ans) {
    if (!ans.ok || !then) {
      return;
    }
    if (then === "reload") {
      dirty = false;
      refresh(true);
    } else if (then.indexOf("redirect:") === 0) {
      window.location.assign(fill(then.slice(9), flat, ans.json || {}));
    }
  }

  function submitForm(form) {
    var method = (form.getAttribute("data-method") || "POST").toUpperCase();
    var kind = form.getAttribute("data-kind") || "json";
    var then = form.getAttribute("data-then") || "";
    var vals;
    var body = null;
    var ctype = form.getAttribute("data-content-type");
    try {
      vals = fieldValues(form);
      if (kind === "json") {
        body = JSON.stringify(vals.obj);
        ctype = ctype || "application/json";
      } else if (kind === "text") {
        var b = form.elements.namedItem("body");
        body = b ? b.value : "";
        ctype = ctype || "text/plain; charset=utf-8";
      }
    } catch (e) {
      var out = resultOf(form);
      if (out) {
        out.className = "result err";
        out.textContent = e.message;
      }
      return;
    }
    var url = fill(form.getAttribute("data-url") || "", vals.flat, null);
    var confirmText = form.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) {
      return;
    }
    var buttons = form.querySelectorAll("button, input[type=submit]");
    buttons.forEach(function (b) { b.disabled = true; });
    send(method, url, body, ctype)
      .then(function (ans) {
        report(form, ans, then, vals.flat);
        if (ans.ok) {
          var ta = form.querySelector("textarea.code[aria-invalid]");
          if (ta) {
            ta.removeAttribute("aria-invalid");
            ta.removeAttribute("data-error-line");
          }
        }
        after(then, vals.flat, ans);
      })
      .catch(function (e) {
        report(form, { ok: false, status: 0, text: String(e), json: null }, then);
      })
      .then(function () {
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }

  function clickAction(btn) {
    var confirmText = btn.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) {
      return;
    }
    var method = (btn.getAttribute("data-method") || "POST").toUpperCase();
    var then = btn.getAttribute("data-then") || "";
    var body = btn.getAttribute("data-body");
    var ctype = btn.getAttribute("data-content-type") || "application/json";
    btn.disabled = true;
    send(method, btn.getAttribute("data-url") || "", body != null && body !== "" ? body : null, ctype)
      .then(function (ans) {
        report(btn, ans, then);
        after(then, {}, ans);
      })
      .catch(function (e) {
        report(btn, { ok: false, status: 0, text: String(e), json: null }, then);
      })
      .then(function () {
        btn.disabled = false;
      });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form && form.classList && form.classList.contains("api-form")) {
      ev.preventDefault();
      submitForm(form);
    }
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target && ev.target.closest ? ev.target.closest("button.api-action, button.set-pref") : null;
    if (!t) {
      return;
    }
    ev.preventDefault();
    if (t.classList.contains("set-pref")) {
      var name = t.getAttribute("data-cookie");
      if (name === "aiops_lang" || name === "aiops_theme") {
        document.cookie = name + "=" + encodeURIComponent(t.getAttribute("data-value") || "") +
          "; SameSite=Strict; Path=/; Max-Age=31536000";
        window.location.reload();
      }
      return;
    }
    clickAction(t);
  });

  /* ---------- live refresh ---------- */

  var main = null;
  var etag = null;
  var dirty = false;
  var timer = null;
  var inflight = false;

  function busy() {
    if (!main) {
      return true;
    }
    var a = document.activeElement;
    if (a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) {
      return true;
    }
    return dirty;
  }

  function refresh(force) {
    if (!main || inflight || (!force && (document.hidden || busy()))) {
      return;
    }
    inflight = true;
    var headers = { "X-Console-Fragment": "main" };
    if (etag && !force) {
      headers["If-None-Match"] = etag;
    }
    fetch(window.location.href, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (res.status === 401) {
          window.location.reload();
          return null;
        }
        if (res.status === 304 || !res.ok) {
          return null;
        }
        etag = res.headers.get("ETag") || etag;
        return res.text();
      })
      .then(function (html) {
        if (html == null || (!force && busy())) {
          return;
        }
        var open = [];
        main.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
        main.innerHTML = html;
        open.forEach(function (id) {
          var d = document.getElementById(id);
          if (d) {
            d.open = true;
          }
        });
        initCharts(main);
      })
      .catch(function () { /* the next tick retries */ })
      .then(function () {
        inflight = false;
      });
  }

  function startLive() {
    main = document.getElementById("main");
    if (!main) {
      return;
    }
    main.addEventListener("input", function () { dirty = true; });
    main.addEventListener("change", function (ev) {
      // A GET filter form's select changes are not "unsaved work" once submitted; api forms are.
      if (ev.target && ev.target.form && ev.target.form.classList.contains("api-form")) {
        dirty = true;
      }
    });
    var ms = parseInt(main.getAttribute("data-live-ms") || "0", 10);
    if (!(ms > 0)) {
      return;
    }
    ms = Math.max(ms, 1000);
    timer = window.setInterval(function () { refresh(false); }, ms);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        refresh(false);
      }
    });
  }

  /* ---------- chart hover read-out ---------- */

  function fmtNum(v) {
    if (!isFinite(v)) {
      return String(v);
    }
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) {
      return v.toExponential(3);
    }
    return String(Math.round(v * 1000) / 1000);
  }

  function fmtTime(ms) {
    var d = new Date(ms);
    return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function initCharts(root) {
    (root || document).querySelectorAll("svg.chart-svg[data-x0]").forEach(function (svg) {
      if (svg.getAttribute("data-bound")) {
        return;
      }
      svg.setAttribute("data-bound", "1");
      var fig = svg.parentNode;
      var tip = document.createElement("div");
      tip.className = "chart-tip";
      tip.hidden = true;
      fig.appendChild(tip);
      var num = function (n) { return parseFloat(svg.getAttribute(n)); };
      var x0 = num("data-x0"), x1 = num("data-x1"), y0 = num("data-y0"), y1 = num("data-y1");
      var t0 = num("data-t0"), t1 = num("data-t1"), v0 = num("data-v0"), v1 = num("data-v1");
      var timeAxis = svg.getAttribute("data-time") === "1";
      var cursor = svg.querySelector("line.cursor");
      // A series broken by gaps is several polylines with one data-name: merge them.
      var byName = {};
      var lines = [];
      svg.querySelectorAll("polyline.line").forEach(function (pl) {
        var name = pl.getAttribute("data-name") || "";
        var cls = (pl.getAttribute("class") || "").replace("line", "").trim();
        var key = name + "\u0000" + cls;
        if (!byName[key]) {
          byName[key] = { pts: [], name: name, cls: cls };
          lines.push(byName[key]);
        }
        (pl.getAttribute("points") || "").trim().split(/\s+/).forEach(function (p) {
          var xy = p.split(",");
          var pt = [parseFloat(xy[0]), parseFloat(xy[1])];
          if (isFinite(pt[0]) && isFinite(pt[1])) {
            byName[key].pts.push(pt);
          }
        });
      });
      if (!lines.length) {
        return;
      }
      svg.addEventListener("mousemove", function (ev) {
        var rect = svg.getBoundingClientRect();
        var vb = svg.viewBox.baseVal;
        var sx = vb && vb.width ? vb.width / rect.width : 1;
        var x = (ev.clientX - rect.left) * sx;
        if (x < x0 || x > x1) {
          tip.hidden = true;
          return;
        }
        var t = t0 + (x - x0) / (x1 - x0) * (t1 - t0);
        tip.textContent = "";
        var head = document.createElement("div");
        head.textContent = timeAxis ? fmtTime(t) : fmtNum(t);
        tip.appendChild(head);
        lines.slice(0, 8).forEach(function (l) {
          var best = null;
          l.pts.forEach(function (p) {
            if (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) {
              best = p;
            }
          });
          if (!best || Math.abs(best[0] - x) > (x1 - x0) / 20) {
            return;
          }
          var v = v0 + (y1 - best[1]) / (y1 - y0) * (v1 - v0);
          var row = document.createElement("div");
          var sw = document.createElement("span");
          sw.className = "sw " + l.cls;
          row.appendChild(sw);
          row.appendChild(document.createTextNode((l.name ? l.name + ": " : "") + fmtNum(v)));
          tip.appendChild(row);
        });
        if (cursor) {
          cursor.setAttribute("x1", String(x));
          cursor.setAttribute("x2", String(x));
          cursor.removeAttribute("visibility");
        }
        tip.hidden = false;
        var fr = fig.getBoundingClientRect();
        var left = ev.clientX - fr.left + 12;
        if (left + tip.offsetWidth > fr.width) {
          left = ev.clientX - fr.left - tip.offsetWidth - 12;
        }
        tip.style.left = Math.max(0, left) + "px";
        tip.style.top = Math.max(0, ev.clientY - fr.top - 10) + "px";
      });
      svg.addEventListener("mouseleave", function () {
        tip.hidden = true;
        if (cursor) {
          cursor.setAttribute("visibility", "hidden");
        }
      });
    });
  }

  function init() {
    document.querySelectorAll("textarea.code[data-error-line]").forEach(function (ta) {
      var n = parseInt(ta.getAttribute("data-error-line"), 10);
      if (n > 0) {
        selectLine(ta, n);
      }
    });
    startLive();
    initCharts(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
