//! SVG charts rendered on the server: time-series lines (several series, a UTC time axis, nice y
//! ticks, a legend) and bars. No script is needed to see them; `console.js` adds a hover
//! read-out from the `data-*` attributes of the `<svg>`. Colours come from CSS classes
//! `series-0` … `series-7` so the theme applies.
//!
//! Long series are decimated to the plot's pixel width (the minimum and maximum of each pixel
//! column are kept, in time order), so a chart of 100,000 points stays a few kilobytes and still
//! shows every spike.
//!
//! Template functions (registered by [`crate::Console`]):
//! - `chart(data, x=…, y=…, series=…, title=…, unit=…, height=180, width=600, label=…)`
//! - `bars(data, x=…, y=…, title=…, unit=…, height=180, width=600)`
//!
//! `data` may be: an `/api/metrics` answer (`{"series": [{"labels", "points": [[t, v]…]}]}`;
//! `series="host"` names each line by that label, otherwise by all labels), an `/api/sql` answer
//! (`{"columns", "rows": [{…}]}`), an array of objects (like SQL rows), or an array of `[t, v]`
//! pairs. For rows, `x` is the time column (default: the first of `time`, `t`, `ts`, `timestamp`,
//! `bucket`, `window_start`, `minute`, `start`, `time_ms` present), `y` a column or a list of
//! columns (default: `value`, `v`, or the first other numeric column), `series` a column whose
//! values split the rows into lines (a list of columns joins their values), `agg` (`sum`, `avg`,
//! `max`, `min`) merges rows of one line at the same time. Times may be Unix ms or RFC 3339 text. Every text embedded in
//! the SVG (title, series names, labels) is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, State};
use serde_json::Value as Json;

use crate::render::{format_num, format_utc};

/// How many colour classes the stylesheet defines (`series-0` … `series-7`).
const COLOURS: usize = 8;
/// Series drawn at most (the rest are counted in the legend).
const MAX_SERIES: usize = 40;
/// Legend entries shown at most.
const MAX_LEGEND: usize = 12;
/// Bars drawn at most.
const MAX_BARS: usize = 60;

/// One line of a chart: a name and its points `(x, y)`; `y` may be NaN (a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend and the hover read-out.
    pub name: String,
    /// Points, in any order (sorted by x when drawn).
    pub points: Vec<(f64, f64)>,
}

/// Size and labels of a chart.
#[derive(Debug, Clone)]
pub struct Options {
    /// Title (caption and accessible name).
    pub title: String,
    /// Unit appended to the y axis' read-out (e.g. `ms`, `%`).
    pub unit: String,
    /// Width of the view box (the SVG scales to its container).
    pub width: u32,
    /// Height of the view box.
    pub height: u32,
    /// The x values are Unix ms (a UTC time axis) rather than plain numbers.
    pub time_axis: bool,
    /// Chinese texts (`No data` → `无数据`).
    pub zh: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            title: String::new(),
            unit: String::new(),
            width: 600,
            height: 180,
            time_axis: true,
            zh: false,
        }
    }
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Cuts a label to `max` characters (with an ellipsis).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Keeps the minimum and the maximum of each of `buckets` equal x-ranges of `[x0, x1]`, in x
/// order (one point when they are the same). `points` must be sorted by x; NaN y values are
/// kept (they break the line) but at most one per bucket. Series with at most `2 * buckets`
/// points are returned as they are.
pub fn decimate(points: &[(f64, f64)], x0: f64, x1: f64, buckets: usize) -> Vec<(f64, f64)> {
    if buckets == 0
        || points.len() <= 2 * buckets
        || x1.partial_cmp(&x0) != Some(std::cmp::Ordering::Greater)
    {
        return points.to_vec();
    }
    let width = (x1 - x0) / buckets as f64;
    let mut out = Vec::with_capacity(2 * buckets + 2);
    let mut i = 0;
    while i < points.len() {
        let b = (((points[i].0 - x0) / width).floor().max(0.0) as usize).min(buckets - 1);
        let mut min: Option<usize> = None;
        let mut max: Option<usize> = None;
        let mut gap: Option<usize> = None;
        while i < points.len() {
            let bi = (((points[i].0 - x0) / width).floor().max(0.0) as usize).min(buckets - 1);
            if bi != b {
                break;
            }
            let y = points[i].1;
            if y.is_nan() {
                gap.get_or_insert(i);
            } else {
                if min.is_none_or(|m| y < points[m].1) {
                    min = Some(i);
                }
                if max.is_none_or(|m| y > points[m].1) {
                    max = Some(i);
                }
            }
            i += 1;
        }
        let mut keep: Vec<usize> = [min, max, gap].into_iter().flatten().collect();
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|k| points[k]));
    }
    out
}

/// "Nice" ticks covering `[lo, hi]`: about `count` round values (1, 2, 2.5, 5 × 10ⁿ).
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> (f64, f64, Vec<f64>) {
    let (mut lo, mut hi) = (lo, hi);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0, vec![0.0, 1.0]);
    }
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi == lo {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut v = start;
    let mut guard = 0;
    while v <= end + step * 1e-9 && guard < 100 {
        // Round away float noise (0.30000000000000004).
        ticks.push((v / step).round() * step);
        v += step;
        guard += 1;
    }
    (start, end, ticks)
}

/// Time ticks (Unix ms) for `[t0, t1]`: a round step (1 s … 30 d) giving at most `max` ticks.
pub fn time_ticks(t0: f64, t1: f64, max: usize) -> (f64, Vec<f64>) {
    const STEPS: [f64; 22] = [
        1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5,
        432e5, 864e5, 1728e5, 6048e5, 12096e5, 2592e6,
    ];
    let span = (t1 - t0).max(1.0);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= max.saturating_sub(1).max(1) as f64)
        .unwrap_or(
            STEPS[STEPS.len() - 1] * (span / STEPS[STEPS.len() - 1] / max.max(1) as f64).ceil(),
        );
    let mut ticks = Vec::new();
    let mut t = (t0 / step).ceil() * step;
    while t <= t1 && ticks.len() < 100 {
        ticks.push(t);
        t += step;
    }
    (step, ticks)
}

fn time_label(t: f64, step: f64, span: f64) -> String {
    let ms = t as i64;
    if step >= 864e5 {
        format_utc(ms, "md")
    } else if step < 6e4 {
        format_utc(ms, "time")
    } else if span > 864e5 && format_utc(ms, "hm") == "00:00" {
        format_utc(ms, "md")
    } else {
        format_utc(ms, "hm")
    }
}

/// Formats a number for an axis or a read-out.
fn fmt_val(v: f64) -> String {
    format_num(v)
}

/// The opening of every chart: the figure, caption and `<svg>` with its accessible name.
fn open(out: &mut String, opts: &Options, aria: &str, extra_attrs: &str) {
    let _ = write!(out, "<figure class=\"chart\">");
    if !opts.title.is_empty() {
        let _ = write!(out, "<figcaption>{}</figcaption>", esc(&opts.title));
    }
    let _ = write!(
        out,
        "<svg class=\"chart-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{a}\"{extra_attrs}><title>{a}</title>",
        w = opts.width,
        h = opts.height,
        a = esc(aria),
    );
}

fn no_data(opts: &Options) -> String {
    let mut out = String::new();
    let text = if opts.zh { "无数据" } else { "No data" };
    let aria = if opts.title.is_empty() {
        text.to_string()
    } else {
        format!("{}: {text}", opts.title)
    };
    open(&mut out, opts, &aria, "");
    let _ = write!(
        out,
        "<text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{text}</text></svg></figure>",
        opts.width / 2,
        opts.height / 2
    );
    out
}

/// A line chart of `series` as an SVG `<figure>`.
pub fn line_svg(series: &[Series], opts: &Options) -> String {
    let mut all: Vec<Series> = series
        .iter()
        .map(|s| {
            let mut pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, _)| x.is_finite())
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: s.name.clone(),
                points: pts,
            }
        })
        .filter(|s| s.points.iter().any(|(_, y)| y.is_finite()))
        .collect();
    if all.is_empty() {
        return no_data(opts);
    }
    let hidden = all.len().saturating_sub(MAX_SERIES);
    all.truncate(MAX_SERIES);

    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for s in &all {
        for &(x, y) in &s.points {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            if y.is_finite() {
                ymin = ymin.min(y);
                ymax = ymax.max(y);
            }
        }
    }
    if xmax <= xmin {
        // One instant: give it a width so the point sits in the middle.
        let pad = if opts.time_axis { 30_000.0 } else { 1.0 };
        xmin -= pad;
        xmax += pad;
    }
    // Non-negative data starts at zero unless the values are far from it (e.g. a gauge near 1e6).
    if ymin >= 0.0 && ymin <= (ymax - ymin) * 2.0 {
        ymin = 0.0;
    }
    let (v0, v1, yticks) = nice_ticks(ymin, ymax, 4);

    // Legend: one row per up to ~4 entries, under the plot.
    let legend: Vec<(usize, String)> = if all.len() > 1 || hidden > 0 {
        all.iter()
            .enumerate()
            .take(MAX_LEGEND)
            .map(|(i, s)| (i, cut(&s.name, 40)))
            .collect()
    } else {
        Vec::new()
    };
    let w = f64::from(opts.width);
    let more = if legend.is_empty() {
        0
    } else {
        all.len() + hidden - legend.len()
    };
    let legend_rows = legend_layout(&legend, w - 56.0, more, opts.zh);
    let legend_h = legend_rows.len() as f64 * 14.0;
    let h = f64::from(opts.height) + legend_h;
    let ylabel_w = yticks
        .iter()
        .map(|v| fmt_val(*v).chars().count())
        .max()
        .unwrap_or(1) as f64
        * 6.5
        + 8.0;
    let (px0, px1) = (ylabel_w.clamp(24.0, 80.0), w - 8.0);
    let (py0, py1) = (8.0, f64::from(opts.height) - 20.0);
    let sx = |x: f64| px0 + (x - xmin) / (xmax - xmin) * (px1 - px0);
    let sy = |y: f64| py1 - (y - v0) / (v1 - v0) * (py1 - py0);

    let first = format_x(xmin, opts.time_axis);
    let last = format_x(xmax, opts.time_axis);
    let aria = format!(
        "{}{} {}, {} – {}{}, min {}, max {}{}",
        if opts.title.is_empty() {
            String::new()
        } else {
            format!("{}: ", opts.title)
        },
        all.len() + hidden,
        if opts.zh { "条序列" } else { "series" },
        first,
        last,
        if opts.time_axis { " UTC" } else { "" },
        fmt_val(ymin.min(ymax)),
        fmt_val(ymax),
        if opts.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", opts.unit)
        },
    );
    let mut out = String::with_capacity(4096);
    let opts_h = Options {
        height: h.round() as u32,
        ..opts.clone()
    };
    let extra = format!(
        " data-x0=\"{px0:.1}\" data-x1=\"{px1:.1}\" data-y0=\"{py0:.1}\" data-y1=\"{py1:.1}\" data-t0=\"{xmin}\" data-t1=\"{xmax}\" data-v0=\"{v0}\" data-v1=\"{v1}\" data-time=\"{}\" data-unit=\"{}\"",
        if opts.time_axis { 1 } else { 0 },
        esc(&opts.unit)
    );
    open(&mut out, &opts_h, &aria, &extra);
    let _ = write!(
        out,
        "<rect class=\"plot-bg\" x=\"{px0:.1}\" y=\"{py0:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
        px1 - px0,
        py1 - py0
    );
    // Y axis: grid lines and labels.
    out.push_str("<g class=\"yaxis\" aria-hidden=\"true\">");
    for v in &yticks {
        let y = sy(*v);
        let _ = write!(
            out,
            "<line class=\"gridline\" x1=\"{px0:.1}\" x2=\"{px1:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px0 - 4.0,
            y + 3.5,
            esc(&fmt_val(*v))
        );
    }
    out.push_str("</g>");
    // X axis.
    out.push_str("<g class=\"xaxis\" aria-hidden=\"true\">");
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{px0:.1}\" x2=\"{px1:.1}\" y1=\"{py1:.1}\" y2=\"{py1:.1}\"/>"
    );
    let max_ticks = ((px1 - px0) / 70.0).floor().max(2.0) as usize;
    let xt: Vec<(f64, String)> = if opts.time_axis {
        let (step, ticks) = time_ticks(xmin, xmax, max_ticks);
        ticks
            .into_iter()
            .map(|t| (t, time_label(t, step, xmax - xmin)))
            .collect()
    } else {
        let (_, _, ticks) = nice_ticks(xmin, xmax, max_ticks);
        ticks
            .into_iter()
            .filter(|t| *t >= xmin && *t <= xmax)
            .map(|t| (t, fmt_val(t)))
            .collect()
    };
    for (t, label) in xt {
        let x = sx(t);
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{py1:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            py1 + 4.0,
            py1 + 15.0,
            esc(&label)
        );
    }
    out.push_str("</g>");
    // Lines, decimated to the pixel width.
    let buckets = (px1 - px0).round().max(1.0) as usize;
    for (i, s) in all.iter().enumerate() {
        let class = format!("series-{}", i % COLOURS);
        let pts = decimate(&s.points, xmin, xmax, buckets);
        let _ = write!(
            out,
            "<g class=\"{class}\" data-name=\"{}\"><title>{}</title>",
            esc(&s.name),
            esc(&s.name)
        );
        for seg in pts.split(|(_, y)| !y.is_finite()) {
            if seg.is_empty() {
                continue;
            }
            if seg.len() == 1 {
                let (x, y) = seg[0];
                let _ = write!(
                    out,
                    "<circle class=\"dot {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
                    sx(x),
                    sy(y)
                );
            }
            let _ = write!(
                out,
                "<polyline class=\"line {class}\" data-name=\"{}\" points=\"",
                esc(&s.name)
            );
            for (k, (x, y)) in seg.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{:.1},{:.1}", sx(*x), sy(*y));
            }
            out.push_str("\"/>");
        }
        out.push_str("</g>");
    }
    let _ = write!(
        out,
        "<line class=\"cursor\" x1=\"0\" x2=\"0\" y1=\"{py0:.1}\" y2=\"{py1:.1}\" visibility=\"hidden\"/>"
    );
    write_legend(&mut out, &legend_rows, px0, f64::from(opts.height) + 2.0);
    out.push_str("</svg></figure>");
    out
}

fn format_x(x: f64, time: bool) -> String {
    if time {
        format_utc(x as i64, "full")
    } else {
        fmt_val(x)
    }
}

/// Lays legend entries out in rows of the available width (estimated text widths).
fn legend_layout(
    entries: &[(usize, String)],
    width: f64,
    more: usize,
    zh: bool,
) -> Vec<Vec<(usize, String, f64)>> {
    let mut rows: Vec<Vec<(usize, String, f64)>> = Vec::new();
    let mut x = 0.0;
    let mut row = Vec::new();
    let mut items: Vec<(usize, String)> = entries.to_vec();
    if more > 0 {
        items.push((
            usize::MAX,
            if zh {
                format!("另有 {more} 条")
            } else {
                format!("+{more} more")
            },
        ));
    }
    for (i, name) in items {
        let wid = 16.0
            + name
                .chars()
                .map(|c| if c.is_ascii() { 6.2 } else { 11.0 })
                .sum::<f64>()
            + 12.0;
        if x + wid > width && !row.is_empty() {
            rows.push(std::mem::take(&mut row));
            x = 0.0;
        }
        row.push((i, name, x));
        x += wid;
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

fn write_legend(out: &mut String, rows: &[Vec<(usize, String, f64)>], x0: f64, y0: f64) {
    if rows.is_empty() {
        return;
    }
    out.push_str("<g class=\"legend\">");
    for (r, row) in rows.iter().enumerate() {
        let y = y0 + r as f64 * 14.0;
        for (i, name, x) in row {
            let x = x0 + x;
            if *i != usize::MAX {
                let _ = write!(
                    out,
                    "<rect class=\"series-{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\"/>",
                    i % COLOURS,
                    y + 1.0
                );
            }
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 14.0,
                y + 10.0,
                esc(name)
            );
        }
    }
    out.push_str("</g>");
}

/// A bar chart of `(category, value)` per series (grouped bars when there are several).
pub fn bar_svg(categories: &[String], series: &[(String, Vec<f64>)], opts: &Options) -> String {
    let n = categories.len().min(MAX_BARS);
    let series: Vec<&(String, Vec<f64>)> = series.iter().take(COLOURS).collect();
    let values = series
        .iter()
        .flat_map(|(_, v)| v.iter().take(n).copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = (0.0f64, f64::MIN);
    let mut any = false;
    for v in values {
        any = true;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if n == 0 || !any {
        return no_data(opts);
    }
    let (v0, v1, yticks) = nice_ticks(lo, hi.max(lo), 4);
    let w = f64::from(opts.width);
    let legend: Vec<(usize, String)> = if series.len() > 1 {
        series
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (i, cut(name, 40)))
            .collect()
    } else {
        Vec::new()
    };
    let rows = legend_layout(&legend, w - 56.0, 0, opts.zh);
    let h = f64::from(opts.height) + rows.len() as f64 * 14.0;
    let ylabel_w = yticks
        .iter()
        .map(|v| fmt_val(*v).chars().count())
        .max()
        .unwrap_or(1) as f64
        * 6.5
        + 8.0;
    let (px0, px1) = (ylabel_w.clamp(24.0, 80.0), w - 8.0);
    let (py0, py1) = (8.0, f64::from(opts.height) - 20.0);
    let sy = |y: f64| py1 - (y - v0) / (v1 - v0) * (py1 - py0);
    let aria = format!(
        "{}{} {}",
        if opts.title.is_empty() {
            String::new()
        } else {
            format!("{}: ", opts.title)
        },
        n,
        if opts.zh { "个类别" } else { "categories" }
    );
    let mut out = String::with_capacity(2048);
    let opts_h = Options {
        height: h.round() as u32,
        ..opts.clone()
    };
    open(&mut out, &opts_h, &aria, "");
    out.push_str("<g class=\"yaxis\" aria-hidden=\"true\">");
    for v in &yticks {
        let y = sy(*v);
        let _ = write!(
            out,
            "<line class=\"gridline\" x1=\"{px0:.1}\" x2=\"{px1:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px0 - 4.0,
            y + 3.5,
            esc(&fmt_val(*v))
        );
    }
    out.push_str("</g>");
    let slot = (px1 - px0) / n as f64;
    let bw = (slot * 0.8 / series.len().max(1) as f64).max(1.0);
    let max_chars = ((slot / 6.2).floor() as usize).max(1);
    for (c, cat) in categories.iter().take(n).enumerate() {
        let cx = px0 + slot * c as f64;
        for (si, (name, vals)) in series.iter().enumerate() {
            let Some(v) = vals.get(c).copied().filter(|v| v.is_finite()) else {
                continue;
            };
            let (ya, yb) = (sy(v.max(0.0).max(v0)), sy(v.min(0.0).max(v0)));
            let _ = write!(
                out,
                "<rect class=\"bar series-{}\" x=\"{:.1}\" y=\"{ya:.1}\" width=\"{bw:.1}\" height=\"{:.1}\"><title>{}: {}{}</title></rect>",
                si % COLOURS,
                cx + slot * 0.1 + bw * si as f64,
                (yb - ya).max(0.5),
                esc(&if series.len() > 1 {
                    format!("{cat} · {name}")
                } else {
                    cat.clone()
                }),
                esc(&fmt_val(v)),
                esc(&opts.unit),
            );
        }
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" aria-hidden=\"true\">{}</text>",
            cx + slot / 2.0,
            py1 + 14.0,
            esc(&cut(cat, max_chars))
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{px0:.1}\" x2=\"{px1:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        sy(0.0f64.max(v0)),
        sy(0.0f64.max(v0))
    );
    write_legend(&mut out, &rows, px0, f64::from(opts.height) + 2.0);
    out.push_str("</svg></figure>");
    out
}

// ---------- reading the API's shapes ----------

/// Days from 1970-01-01 to a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 / ISO 8601 text (`2026-12-05T03:12:09.123Z`, `… +08:00`, `2026-12-05 03:12:09`,
/// no zone = UTC) → Unix ms.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32) as f64 * 86_400_000.0;
    if b.len() == 10 {
        return Some(ms);
    }
    if (b[10] != b'T' && b[10] != b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    ms += (h * 3_600_000 + mi * 60_000) as f64;
    let mut i = 16;
    if b.get(16) == Some(&b':') {
        let sec = num(17..19)?;
        ms += (sec * 1000) as f64;
        i = 19;
        if b.get(19) == Some(&b'.') {
            let end = s[20..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(s.len(), |e| 20 + e);
            let frac = &s[20..end];
            if !frac.is_empty() {
                ms += format!("0.{frac}").parse::<f64>().ok()? * 1000.0;
            }
            i = end;
        }
    }
    let zone = s.get(i..)?.trim();
    if zone.is_empty() || zone == "Z" || zone == "z" || zone == "UTC" {
        return Some(ms);
    }
    let zb = zone.as_bytes();
    if zb.len() >= 5 && (zb[0] == b'+' || zb[0] == b'-') {
        let zh: i64 = zone.get(1..3)?.parse().ok()?;
        let zm: i64 = zone.get(zone.len() - 2..)?.parse().ok()?;
        let off = (zh * 60 + zm) * 60_000;
        return Some(if zb[0] == b'+' {
            ms - off as f64
        } else {
            ms + off as f64
        });
    }
    None
}

/// A JSON value as a number (numbers, numeric text, booleans as 0/1); null → NaN.
fn json_num(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        Json::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Json::Null => Some(f64::NAN),
        _ => None,
    }
}

/// A JSON value as a time (Unix ms numbers or RFC 3339 text).
fn json_time(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => parse_time(s).or_else(|| s.trim().parse::<f64>().ok()),
        _ => None,
    }
}

/// Text of a JSON value for a series name or category.
fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Object(m) => labels_text(m),
        other => other.to_string(),
    }
}

/// `{a="1", b="2"}` (sorted by key as the map is).
fn labels_text(m: &serde_json::Map<String, Json>) -> String {
    let inner: Vec<String> = m
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", json_text(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Which columns to chart, from keyword arguments.
#[derive(Debug, Default, Clone)]
pub struct Pick {
    /// The x (time or category) column.
    pub x: Option<String>,
    /// The value columns.
    pub y: Vec<String>,
    /// The columns (or labels) splitting rows into series (their values joined by a space).
    pub series: Vec<String>,
    /// Name of a single series (default: the y column or the metric's name).
    pub label: Option<String>,
    /// How points of one series at the same x are merged: `sum`, `max`, `min`, `avg` (default:
    /// kept as they are; several rows per window then zigzag).
    pub agg: Option<String>,
}

/// Merges the points of one series that share an x, as `agg` says.
fn aggregate(points: &mut Vec<(f64, f64)>, agg: &str) {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    let mut count = 0usize;
    for &(x, y) in points.iter() {
        match out.last_mut() {
            Some(last) if last.0 == x => {
                if y.is_finite() {
                    if !last.1.is_finite() {
                        last.1 = y;
                        count = 1;
                        continue;
                    }
                    last.1 = match agg {
                        "max" => last.1.max(y),
                        "min" => last.1.min(y),
                        _ => last.1 + y,
                    };
                    count += 1;
                }
            }
            _ => {
                if agg == "avg"
                    && let Some(last) = out.last_mut()
                {
                    last.1 /= count.max(1) as f64;
                }
                out.push((x, y));
                count = usize::from(y.is_finite());
            }
        }
    }
    if agg == "avg"
        && let Some(last) = out.last_mut()
    {
        last.1 /= count.max(1) as f64;
    }
    *points = out;
}

const X_NAMES: [&str; 10] = [
    "time",
    "t",
    "ts",
    "timestamp",
    "bucket",
    "window_start",
    "minute",
    "start",
    "time_ms",
    "hour",
];

/// The rows of an API answer: SQL `{rows}` or a bare array.
fn rows_of(data: &Json) -> Option<&Vec<Json>> {
    match data {
        Json::Array(a) => Some(a),
        Json::Object(m) => m
            .get("rows")
            .or_else(|| m.get("data"))
            .or_else(|| m.get("points"))
            .and_then(Json::as_array),
        _ => None,
    }
}

/// Series of an API answer (see the module documentation for the shapes understood).
pub fn series_from_json(data: &Json, pick: &Pick) -> Vec<Series> {
    // /api/metrics: {"series": [{"name", "labels", "points": [[t, v]]}]}
    if let Some(list) = data.get("series").and_then(Json::as_array) {
        // Lines are told apart by the labels whose values differ between them; a label every
        // line shares (`job="node"`) only lengthens the legend.
        let varying = varying_labels(list);
        return list
            .iter()
            .map(|s| {
                let labels = s.get("labels");
                let name = match (pick.series.is_empty(), labels) {
                    (false, Some(Json::Object(m))) => pick
                        .series
                        .iter()
                        .map(|k| m.get(k).map(json_text).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(" "),
                    (true, Some(Json::Object(m))) if !varying.is_empty() => {
                        let shown: serde_json::Map<String, Json> = m
                            .iter()
                            .filter(|(k, _)| varying.contains(*k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        labels_text(&shown)
                    }
                    _ => pick
                        .label
                        .clone()
                        .or_else(|| s.get("name").map(json_text))
                        .unwrap_or_default(),
                };
                let points = s
                    .get("points")
                    .or_else(|| s.get("values"))
                    .and_then(Json::as_array)
                    .map(|ps| pairs(ps))
                    .unwrap_or_default();
                Series { name, points }
            })
            .collect();
    }
    let Some(rows) = rows_of(data) else {
        return Vec::new();
    };
    // An array of [t, v] pairs.
    if rows.first().is_some_and(Json::is_array) {
        return vec![Series {
            name: pick.label.clone().unwrap_or_default(),
            points: pairs(rows),
        }];
    }
    let Some(first) = rows.iter().find_map(Json::as_object) else {
        return Vec::new();
    };
    let x = pick.x.clone().or_else(|| {
        X_NAMES
            .iter()
            .find(|n| first.contains_key(**n))
            .map(|n| (*n).to_string())
    });
    let Some(x) = x else {
        return Vec::new();
    };
    let ys: Vec<String> = if pick.y.is_empty() {
        ["value", "v"]
            .iter()
            .find(|n| first.contains_key(**n))
            .map(|n| vec![(*n).to_string()])
            .unwrap_or_else(|| {
                first
                    .iter()
                    .filter(|(k, v)| {
                        **k != x && !pick.series.contains(k) && matches!(v, Json::Number(_))
                    })
                    .map(|(k, _)| k.clone())
                    .take(1)
                    .collect()
            })
    } else {
        pick.y.clone()
    };
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in rows {
        let Some(t) = r.get(&x).and_then(json_time) else {
            continue;
        };
        for y in &ys {
            let Some(v) = r.get(y).and_then(json_num) else {
                continue;
            };
            let name = match pick.series.is_empty() {
                false => {
                    let s = pick
                        .series
                        .iter()
                        .map(|c| r.get(c).map(json_text).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if ys.len() > 1 { format!("{s} {y}") } else { s }
                }
                true if ys.len() == 1 => pick.label.clone().unwrap_or_else(|| y.clone()),
                true => y.clone(),
            };
            let e = by.entry(name.clone()).or_default();
            if e.is_empty() {
                order.push(name);
            }
            e.push((t, v));
        }
    }
    order
        .into_iter()
        .filter_map(|n| {
            by.remove(&n).map(|mut points| {
                if let Some(agg) = &pick.agg {
                    aggregate(&mut points, agg);
                }
                Series { name: n, points }
            })
        })
        .collect()
}

/// The label names whose values are not the same on every series (a label missing on some
/// series varies).
fn varying_labels(list: &[Json]) -> Vec<String> {
    let maps: Vec<&serde_json::Map<String, Json>> = list
        .iter()
        .filter_map(|s| s.get("labels").and_then(Json::as_object))
        .collect();
    let mut keys: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let first = maps.first().and_then(|m| m.get(*k));
            maps.iter().any(|m| m.get(*k) != first)
        })
        .cloned()
        .collect()
}

fn pairs(ps: &[Json]) -> Vec<(f64, f64)> {
    ps.iter()
        .filter_map(|p| {
            let a = p.as_array()?;
            Some((json_time(a.first()?)?, json_num(a.get(1)?)?))
        })
        .collect()
}

/// Categories and value series of rows for a bar chart.
pub fn bars_from_json(data: &Json, pick: &Pick) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
    let Some(rows) = rows_of(data) else {
        return (Vec::new(), Vec::new());
    };
    let Some(first) = rows.iter().find_map(Json::as_object) else {
        // [[category, value], …]
        let mut cats = Vec::new();
        let mut vals = Vec::new();
        for p in rows.iter().filter_map(Json::as_array) {
            if let (Some(c), Some(v)) = (p.first(), p.get(1).and_then(json_num)) {
                cats.push(json_text(c));
                vals.push(v);
            }
        }
        return (cats, vec![(pick.label.clone().unwrap_or_default(), vals)]);
    };
    let x = pick.x.clone().or_else(|| {
        first
            .iter()
            .find(|(_, v)| v.is_string())
            .map(|(k, _)| k.clone())
    });
    let Some(x) = x else {
        return (Vec::new(), Vec::new());
    };
    let ys: Vec<String> = if pick.y.is_empty() {
        first
            .iter()
            .filter(|(k, v)| **k != x && matches!(v, Json::Number(_)))
            .map(|(k, _)| k.clone())
            .take(1)
            .collect()
    } else {
        pick.y.clone()
    };
    let cats: Vec<String> = rows
        .iter()
        .map(|r| r.get(&x).map(json_text).unwrap_or_default())
        .collect();
    let series = ys
        .iter()
        .map(|y| {
            (
                y.clone(),
                rows.iter()
                    .map(|r| r.get(y).and_then(json_num).unwrap_or(f64::NAN))
                    .collect(),
            )
        })
        .collect();
    (cats, series)
}

// ---------- template functions ----------

fn opts_from(state: &State, kwargs: &Kwargs) -> Result<(Options, Pick), Error> {
    let zh = state
        .lookup("lang")
        .is_some_and(|v| v.as_str().is_some_and(|s| s.starts_with("zh")));
    let text = |name: &str| -> Result<Option<String>, Error> {
        let v: Option<Value> = kwargs.get(name)?;
        Ok(v.filter(|v| !v.is_undefined() && !v.is_none()).map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        }))
    };
    let list = |name: &str| -> Result<Vec<String>, Error> {
        let v: Option<Value> = kwargs.get(name)?;
        Ok(match v {
            Some(v) if v.as_str().is_some() => {
                vec![v.as_str().unwrap_or_default().to_string()]
            }
            Some(v) if !v.is_undefined() && !v.is_none() => match v.try_iter() {
                Ok(it) => it
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect(),
                Err(_) => vec![v.to_string()],
            },
            _ => Vec::new(),
        })
    };
    let ys = list("y")?;
    let series = list("series")?;
    let width: Option<u32> = kwargs.get("width")?;
    let height: Option<u32> = kwargs.get("height")?;
    let time: Option<bool> = kwargs.get("time")?;
    let opts = Options {
        title: text("title")?.unwrap_or_default(),
        unit: text("unit")?.unwrap_or_default(),
        width: width.unwrap_or(600).clamp(120, 2000),
        height: height.unwrap_or(180).clamp(60, 1200),
        time_axis: time.unwrap_or(true),
        zh,
    };
    let pick = Pick {
        x: text("x")?,
        y: ys,
        series,
        label: text("label")?,
        agg: text("agg")?,
    };
    kwargs.assert_all_used()?;
    Ok((opts, pick))
}

/// `chart(data, …)`: a line chart (safe SVG).
pub(crate) fn template_chart(state: &State, data: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (opts, pick) = opts_from(state, &kwargs)?;
    let json = serde_json::to_value(&data).unwrap_or(Json::Null);
    let series = series_from_json(&json, &pick);
    Ok(Value::from_safe_string(line_svg(&series, &opts)))
}

/// `bars(data, …)`: a bar chart (safe SVG).
pub(crate) fn template_bars(state: &State, data: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (opts, pick) = opts_from(state, &kwargs)?;
    let json = serde_json::to_value(&data).unwrap_or(Json::Null);
    let (cats, series) = bars_from_json(&json, &pick);
    Ok(Value::from_safe_string(bar_svg(&cats, &series, &opts)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn decimation_keeps_min_and_max_of_each_bucket() {
        // 10,000 points, a sawtooth with one spike and one dip.
        let mut pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        pts[5_003].1 = 1_000.0;
        pts[7_777].1 = -500.0;
        let out = decimate(&pts, 0.0, 9_999.0, 100);
        assert!(
            out.len() <= 200,
            "at most min and max per bucket: {}",
            out.len()
        );
        assert!(out.len() >= 100);
        assert!(out.contains(&(5_003.0, 1_000.0)), "spike kept");
        assert!(out.contains(&(7_777.0, -500.0)), "dip kept");
        // x order is preserved.
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        // Each bucket's min and max are present.
        let width = 9_999.0 / 100.0;
        for b in 0..100 {
            let inb: Vec<&(f64, f64)> = pts
                .iter()
                .filter(|p| (((p.0 / width).floor()) as usize).min(99) == b)
                .collect();
            let min = inb.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            let max = inb.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            let outb: Vec<&(f64, f64)> = out
                .iter()
                .filter(|p| (((p.0 / width).floor()) as usize).min(99) == b)
                .collect();
            assert!(outb.iter().any(|p| p.1 == min), "bucket {b} min");
            assert!(outb.iter().any(|p| p.1 == max), "bucket {b} max");
            assert!(outb.len() <= 2);
        }
    }

    #[test]
    fn small_series_are_not_decimated() {
        let pts = vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)];
        assert_eq!(decimate(&pts, 0.0, 2.0, 100), pts);
    }

    #[test]
    fn ten_thousand_points_make_a_small_svg() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| {
                (
                    1_764_900_000_000.0 + i as f64 * 1000.0,
                    (i as f64 / 50.0).sin(),
                )
            })
            .collect();
        let svg = line_svg(
            &[Series {
                name: "cpu".into(),
                points: pts,
            }],
            &Options::default(),
        );
        assert!(svg.len() < 20_000, "{} bytes", svg.len());
        assert!(svg.contains("role=\"img\""));
    }

    #[test]
    fn empty_nan_and_one_point() {
        let empty = line_svg(&[], &Options::default());
        assert!(empty.contains("No data"));
        let nan = line_svg(
            &[Series {
                name: "x".into(),
                points: vec![(1.0, f64::NAN), (2.0, f64::NAN)],
            }],
            &Options::default(),
        );
        assert!(nan.contains("No data"));
        let one = line_svg(
            &[Series {
                name: "x".into(),
                points: vec![(1_764_900_000_000.0, 5.0)],
            }],
            &Options::default(),
        );
        assert!(one.contains("<circle"), "a lone point is visible");
        assert!(!one.contains("NaN"));
        // A gap splits the line in two.
        let gap = line_svg(
            &[Series {
                name: "x".into(),
                points: vec![
                    (1.0, 1.0),
                    (2.0, 2.0),
                    (3.0, f64::NAN),
                    (4.0, 1.0),
                    (5.0, 3.0),
                ],
            }],
            &Options {
                time_axis: false,
                ..Options::default()
            },
        );
        assert_eq!(gap.matches("<polyline").count(), 2);
        assert!(!gap.contains("NaN"));
        let bars = bar_svg(&[], &[], &Options::default());
        assert!(bars.contains("No data"));
    }

    #[test]
    fn names_and_titles_are_escaped() {
        let evil = "<script>alert(1)</script>\"onerror=\"alert(1)";
        let svg = line_svg(
            &[
                Series {
                    name: evil.into(),
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                },
                Series {
                    name: "b".into(),
                    points: vec![(0.0, 2.0), (1.0, 1.0)],
                },
            ],
            &Options {
                title: evil.into(),
                ..Options::default()
            },
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("\"onerror"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        let bars = bar_svg(
            &[evil.into()],
            &[(evil.into(), vec![1.0])],
            &Options {
                title: evil.into(),
                ..Options::default()
            },
        );
        assert!(!bars.contains("<script>"));
        assert!(!bars.contains("\"onerror"));
    }

    #[test]
    fn aggregation_merges_same_x() {
        let mut p = vec![(2.0, 1.0), (1.0, 3.0), (2.0, 5.0), (1.0, f64::NAN)];
        aggregate(&mut p, "sum");
        assert_eq!(p, vec![(1.0, 3.0), (2.0, 6.0)]);
        let mut p = vec![(1.0, 1.0), (1.0, 3.0), (2.0, 4.0)];
        aggregate(&mut p, "avg");
        assert_eq!(p, vec![(1.0, 2.0), (2.0, 4.0)]);
        let mut p = vec![(1.0, 1.0), (1.0, 3.0)];
        aggregate(&mut p, "max");
        assert_eq!(p, vec![(1.0, 3.0)]);
    }

    #[test]
    fn ticks_are_round() {
        let (lo, hi, t) = nice_ticks(0.0, 97.0, 4);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(t, vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        let (step, ticks) = time_ticks(0.0, 3_600_000.0, 6);
        assert_eq!(step, 900_000.0);
        assert_eq!(ticks.len(), 5);
        let (_, _, same) = nice_ticks(5.0, 5.0, 4);
        assert!(same.len() >= 2);
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000.0));
        assert_eq!(parse_time("1970-01-01T00:00:01.5"), Some(1500.0));
        assert_eq!(parse_time("1970-01-01 01:00:00+01:00"), Some(0.0));
        assert_eq!(parse_time("2000-03-01"), Some(951_868_800_000.0));
        assert_eq!(parse_time("nope"), None);
    }

    #[test]
    fn shapes_of_the_api() {
        let metrics = json!({"from": 0, "to": 10, "step_ms": 0, "series": [
            {"name": "cpu", "labels": {"host": "a"}, "points": [[1, 0.5], [2, 0.7]]},
            {"name": "cpu", "labels": {"host": "b"}, "points": [[1, 0.1], [2, null]]}]});
        let s = series_from_json(
            &metrics,
            &Pick {
                series: vec!["host".into()],
                ..Pick::default()
            },
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "a");
        assert!(s[1].points[1].1.is_nan());
        let s = series_from_json(&metrics, &Pick::default());
        assert_eq!(s[0].name, "{host=\"a\"}");
        // Labels every series shares are left out of the names.
        let shared = json!({"series": [
            {"name": "load", "labels": {"host": "a", "job": "node"}, "points": [[1, 1]]},
            {"name": "load", "labels": {"host": "b", "job": "node"}, "points": [[1, 2]]}]});
        let s = series_from_json(&shared, &Pick::default());
        assert_eq!(s[1].name, "{host=\"b\"}");
        // One series: named by the metric.
        let one =
            json!({"series": [{"name": "load", "labels": {"job": "node"}, "points": [[1, 1]]}]});
        assert_eq!(series_from_json(&one, &Pick::default())[0].name, "load");

        let sql = json!({"columns": [{"name": "time", "type": "Timestamp"}, {"name": "service", "type": "Utf8"}, {"name": "p99", "type": "Float64"}],
            "rows": [{"time": "1970-01-01T00:00:01Z", "service": "api", "p99": 3.0},
                     {"time": "1970-01-01T00:00:02Z", "service": "api", "p99": 4.0},
                     {"time": "1970-01-01T00:00:01Z", "service": "db", "p99": 1.0}]});
        let s = series_from_json(
            &sql,
            &Pick {
                series: vec!["service".into()],
                ..Pick::default()
            },
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "api");
        assert_eq!(s[0].points, vec![(1000.0, 3.0), (2000.0, 4.0)]);
        // Default y: the first numeric column.
        let s = series_from_json(&sql, &Pick::default());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "p99");

        let (cats, vals) = bars_from_json(
            &sql,
            &Pick {
                x: Some("service".into()),
                y: vec!["p99".into()],
                ..Pick::default()
            },
        );
        assert_eq!(cats, vec!["api", "api", "db"]);
        assert_eq!(vals[0].1, vec![3.0, 4.0, 1.0]);
    }
}
