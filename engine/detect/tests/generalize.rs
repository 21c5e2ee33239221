//! Generalization of the Drain miner to log formats it was never tuned on.
//!
//! The Loghub sets kept aside for scoring must not be read, so the evidence here is synthetic but
//! adversarial: each *format* is a random template grammar — random constant words, parameters of
//! many kinds (integers, floats, hex, ids, UUIDs, IPs with and without ports, paths of varying
//! depth, user and host names drawn from a vocabulary without digits, durations, sizes,
//! variable-length lists, `key=value` pairs, JSON bodies), optional variable headers before the
//! message (thread names, request ids, levels), and *sibling* templates that differ from another
//! template in one constant word only (`Starting x` / `Stopping x`), which a miner that merges
//! too eagerly gets wrong. Lines follow a Zipf-like template frequency, as real logs do. Nothing
//! here is drawn from a Loghub set, and the default [`DrainConfig`] is used unchanged.
//!
//! The ground truth is the generating template, so grouping accuracy is computed exactly as the
//! Loghub benchmark does (logpai's `get_accuracy`, after the final template ids).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::HashMap;

use aiops_detect::drain::{Drain, DrainConfig, ParsedBatch, TemplateId};

/// SplitMix64: a fixed, seedable generator (the test must not depend on a crate's algorithm
/// changing between versions).
pub struct Rng(u64);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A uniformly chosen element of `v` (not empty).
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// A pronounceable random word of 3–9 letters: the constants of a format (no dictionary, so the
/// words cannot coincide with anything a rule was written for).
fn word(r: &mut Rng) -> String {
    const C: &[u8] = b"bcdfghklmnprstvwz";
    const V: &[u8] = b"aeiou";
    let syl = 1 + r.below(3);
    let mut w = String::new();
    for _ in 0..syl {
        w.push(*r.pick(C) as char);
        w.push(*r.pick(V) as char);
        if r.chance(0.4) {
            w.push(*r.pick(C) as char);
        }
    }
    if r.chance(0.2) {
        let mut c = w.chars();
        let f = c.next().unwrap().to_ascii_uppercase();
        w = std::iter::once(f).chain(c).collect();
    }
    w
}

/// The kinds of parameters.
#[derive(Debug, Clone)]
enum Param {
    Int,
    Float,
    Hex,
    HexId,
    Uuid,
    Ip,
    IpPort,
    /// An absolute path of 2–5 segments.
    Path,
    /// A name from the format's vocabulary (no digit).
    Name(usize),
    /// `123ms`, `4.5s`.
    Duration,
    /// `12 KB`: a number and the template's unit word.
    Size(&'static str),
    /// A variable-length list (1–4 values) of vocabulary `.0`, written in style `.1`:
    /// 0 `a,b,c`; 1 `[a, b, c]`; 2 space-separated numbers `12 7 99`; 3 space-separated words
    /// `a b c` (only with [`Format::new`]'s `bare_lists`: see [`bare_word_lists_are_the_known_gap`]).
    List(usize, u8),
    /// `key=value` with a constant key and a name or number value.
    Kv(String, bool),
    /// A JSON object with constant keys, `json.dumps` spacing (`{"a": 1, "b": "x"}`).
    Json(Vec<(String, bool)>),
    /// An id with letters and digits (`job_3f2a9`, `task-0042`).
    MixedId(String),
}

#[derive(Debug, Clone)]
enum Elem {
    Const(String),
    Param(Param),
}

/// One synthetic log format: its vocabularies, header and templates.
pub struct Format {
    /// Vocabularies of name-like parameters (each 20–80 values: an enumeration of a few values
    /// is indistinguishable from constants, and Loghub's ground truth keeps those as constants).
    vocabs: Vec<Vec<String>>,
    /// Header elements printed before every message (may be empty).
    header: Vec<Elem>,
    templates: Vec<Vec<Elem>>,
    /// Cumulative template weights (Zipf-like).
    cumulative: Vec<f64>,
}

/// Whether two templates print the same constants at the same places (a sibling that drew the
/// word it replaced is no new template).
fn same(a: &[Elem], b: &[Elem]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Elem::Const(p), Elem::Const(q)) => p == q,
            (Elem::Param(p), Elem::Param(q)) => format!("{p:?}") == format!("{q:?}"),
            _ => false,
        })
}

fn param(r: &mut Rng, nvocab: usize, bare_lists: bool) -> Param {
    match r.below(15) {
        0 => Param::Int,
        1 => Param::Float,
        2 => Param::Hex,
        3 => Param::HexId,
        4 => Param::Uuid,
        5 => Param::Ip,
        6 => Param::IpPort,
        7 => Param::Path,
        8 | 9 => Param::Name(r.below(nvocab)),
        10 => Param::Duration,
        11 => Param::Size(["KB", "MB", "B"][r.below(3)]),
        12 => Param::List(
            r.below(nvocab),
            r.below(if bare_lists { 4 } else { 3 }) as u8,
        ),
        13 => Param::Kv(word(r).to_lowercase(), r.chance(0.5)),
        _ => Param::MixedId(word(r).to_lowercase()),
    }
}

impl Format {
    /// A random format of 8–40 templates; `bare_lists` allows lists of space-separated words.
    pub fn new(r: &mut Rng, bare_lists: bool) -> Self {
        let nvocab = 1 + r.below(3);
        let vocabs = (0..nvocab)
            .map(|_| {
                let n = 20 + r.below(61);
                (0..n).map(|_| word(r).to_lowercase()).collect()
            })
            .collect();
        let header = match r.below(4) {
            0 => vec![],
            1 => vec![Elem::Param(Param::MixedId("thread".into()))],
            2 => vec![
                Elem::Param(Param::Uuid),
                Elem::Param(Param::Name(r.below(nvocab))),
            ],
            _ => vec![
                Elem::Param(Param::Int),
                Elem::Const(format!("{}:", word(r))),
            ],
        };
        let n = 8 + r.below(33);
        let mut templates: Vec<Vec<Elem>> = Vec::new();
        while templates.len() < n {
            if !templates.is_empty() && r.chance(0.2) {
                // A sibling: another template with one constant word replaced.
                let mut t = r.pick(&templates).clone();
                let consts: Vec<usize> = (0..t.len())
                    .filter(|&i| matches!(t[i], Elem::Const(_)))
                    .collect();
                if let Some(&i) = consts.get(r.below(consts.len().max(1))) {
                    t[i] = Elem::Const(word(r));
                    if !templates.iter().any(|o| same(o, &t)) {
                        templates.push(t);
                    }
                }
                continue;
            }
            let len = 2 + r.below(12);
            let mut t = Vec::new();
            // At least two constants; parameters at most every other token.
            for i in 0..len {
                let is_param = i > 0 && r.chance(0.35);
                if is_param {
                    t.push(Elem::Param(param(r, nvocab, bare_lists)));
                } else {
                    let mut w = word(r);
                    if r.chance(0.15) {
                        w.push(*r.pick(&[':', ',', '.']));
                    }
                    t.push(Elem::Const(w));
                }
            }
            if r.chance(0.1) {
                let keys = (0..1 + r.below(4))
                    .map(|_| (word(r).to_lowercase(), r.chance(0.5)))
                    .collect();
                t.push(Elem::Param(Param::Json(keys)));
            }
            templates.push(t);
        }
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for i in 0..templates.len() {
            acc += 1.0 / (1.0 + i as f64).powf(0.9);
            cumulative.push(acc);
        }
        // Shuffle which template is frequent.
        for i in (1..templates.len()).rev() {
            let j = r.below(i + 1);
            templates.swap(i, j);
        }
        Self {
            vocabs,
            header,
            templates,
            cumulative,
        }
    }

    fn render_param(&self, p: &Param, r: &mut Rng, out: &mut String) {
        use std::fmt::Write as _;
        match p {
            Param::Int => write!(out, "{}", r.below(100_000)).unwrap(),
            Param::Float => write!(out, "{}.{}", r.below(1000), r.below(100)).unwrap(),
            Param::Hex => write!(out, "0x{:x}", r.next_u64() >> 40).unwrap(),
            Param::HexId => write!(out, "{:012x}", r.next_u64() >> 16).unwrap(),
            Param::Uuid => {
                let (a, b) = (r.next_u64(), r.next_u64());
                write!(
                    out,
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xffff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                )
                .unwrap();
            }
            Param::Ip => write!(
                out,
                "{}.{}.{}.{}",
                r.below(256),
                r.below(256),
                r.below(256),
                r.below(256)
            )
            .unwrap(),
            Param::IpPort => write!(
                out,
                "{}.{}.{}.{}:{}",
                r.below(256),
                r.below(256),
                r.below(256),
                r.below(256),
                1024 + r.below(60000)
            )
            .unwrap(),
            Param::Path => {
                for _ in 0..2 + r.below(4) {
                    out.push('/');
                    out.push_str(r.pick(&self.vocabs[0]).as_str());
                }
                if r.chance(0.5) {
                    write!(out, ".{}", r.pick(&["log", "conf", "dat"])).unwrap();
                }
            }
            Param::Name(v) => out.push_str(r.pick(&self.vocabs[*v]).as_str()),
            Param::Duration => {
                write!(out, "{}{}", r.below(5000), r.pick(&["ms", "s", "us"])).unwrap();
            }
            Param::Size(unit) => write!(out, "{} {unit}", r.below(9000)).unwrap(),
            Param::List(v, style) => {
                let (open, sep, close) = match style {
                    0 => ("", ",", ""),
                    1 => ("[", ", ", "]"),
                    _ => ("", " ", ""),
                };
                out.push_str(open);
                for i in 0..1 + r.below(4) {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    if *style == 2 {
                        write!(out, "{}", r.below(1000)).unwrap();
                    } else {
                        out.push_str(r.pick(&self.vocabs[*v]).as_str());
                    }
                }
                out.push_str(close);
            }
            Param::Kv(k, numeric) => {
                write!(out, "{k}=").unwrap();
                if *numeric {
                    write!(out, "{}", r.below(10_000)).unwrap();
                } else {
                    out.push_str(r.pick(&self.vocabs[0]).as_str());
                }
            }
            Param::Json(keys) => {
                out.push('{');
                for (i, (k, numeric)) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write!(out, "\"{k}\": ").unwrap();
                    if *numeric {
                        write!(out, "{}", r.below(10_000)).unwrap();
                    } else {
                        write!(out, "\"{}\"", r.pick(&self.vocabs[0]).as_str()).unwrap();
                    }
                }
                out.push('}');
            }
            Param::MixedId(prefix) => {
                write!(out, "{prefix}-{}", r.below(1000)).unwrap();
            }
        }
    }

    fn render_elems(&self, elems: &[Elem], r: &mut Rng, out: &mut String) {
        for e in elems {
            if !out.is_empty() {
                out.push(' ');
            }
            match e {
                Elem::Const(w) => out.push_str(w),
                Elem::Param(p) => self.render_param(p, r, out),
            }
        }
    }

    /// `n` lines with their template index.
    pub fn lines(&self, r: &mut Rng, n: usize) -> (Vec<String>, Vec<usize>) {
        let total = *self.cumulative.last().unwrap();
        let mut lines = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for _ in 0..n {
            let x = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let t = self.cumulative.iter().position(|&c| x < c).unwrap_or(0);
            let mut s = String::new();
            self.render_elems(&self.header, r, &mut s);
            self.render_elems(&self.templates[t], r, &mut s);
            lines.push(s);
            truth.push(t);
        }
        (lines, truth)
    }

    /// The template indexes as text (for showing failures).
    pub fn describe(&self, t: usize) -> String {
        self.templates[t]
            .iter()
            .map(|e| match e {
                Elem::Const(w) => w.clone(),
                Elem::Param(p) => format!("{p:?}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Grouping accuracy as logparser's `get_accuracy`: lines of predicted groups whose line set
/// equals one true group's line set, over all lines.
pub fn grouping_accuracy(truth: &[usize], predicted: &[TemplateId]) -> f64 {
    let mut truth_size: HashMap<usize, usize> = HashMap::new();
    for &t in truth {
        *truth_size.entry(t).or_default() += 1;
    }
    let mut groups: HashMap<TemplateId, (usize, usize, bool)> = HashMap::new();
    for (&t, &p) in truth.iter().zip(predicted) {
        let g = groups.entry(p).or_insert((0, t, true));
        g.0 += 1;
        if g.1 != t {
            g.2 = false;
        }
    }
    let correct: usize = groups
        .values()
        .filter(|(size, t, pure)| *pure && truth_size.get(t) == Some(size))
        .map(|(size, _, _)| size)
        .sum();
    correct as f64 / truth.len().max(1) as f64
}

/// Lines per format.
pub const LINES: usize = 2000;
/// Seeds of the formats looked at while designing the miner.
pub const SEEDS: std::ops::Range<u64> = 1..61;
/// Seeds first scored after the design was frozen: the held-out check of the same claim.
/// (Seeds 1001–1060 and 5001–5060 were consulted to choose the similarity threshold, and
/// 9001–9060 revealed the shared-word guard of `search_leaf`, so none of them is held out.)
pub const HELD_OUT: std::ops::Range<u64> = 13001..13061;

/// Mines format `seed` with the default configuration: (grouping accuracy, templates found,
/// true templates).
pub fn score_format(seed: u64, bare_lists: bool, verbose: bool) -> (f64, usize, usize) {
    score_format_with(seed, bare_lists, verbose, &DrainConfig::default())
}

/// [`score_format`] with another configuration (for sensitivity runs).
pub fn score_format_with(
    seed: u64,
    bare_lists: bool,
    verbose: bool,
    config: &DrainConfig,
) -> (f64, usize, usize) {
    let mut r = Rng::new(seed);
    let f = Format::new(&mut r, bare_lists);
    let (lines, truth) = f.lines(&mut r, LINES);
    let mut d = Drain::new(config.clone()).unwrap();
    let mut out = ParsedBatch::default();
    d.parse_batch(lines.iter().map(String::as_str), &mut out);
    let ids: Vec<TemplateId> = out.lines.iter().map(|l| d.resolve(l.template_id)).collect();
    let ga = grouping_accuracy(&truth, &ids);
    if verbose {
        let mut by_truth: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        let mut by_pred: HashMap<TemplateId, Vec<usize>> = HashMap::new();
        for (i, &t) in truth.iter().enumerate() {
            by_truth.entry(t).or_default().push(i);
            by_pred.entry(ids[i]).or_default().push(i);
        }
        for (t, ls) in &by_truth {
            let preds: std::collections::BTreeSet<TemplateId> =
                ls.iter().map(|&i| ids[i]).collect();
            let exact = preds.len() == 1
                && preds
                    .iter()
                    .next()
                    .is_some_and(|p| by_pred[p].len() == ls.len());
            if exact {
                continue;
            }
            println!(
                "  T{t} ({} lines, {} groups): {}",
                ls.len(),
                preds.len(),
                f.describe(*t)
            );
            for p in preds.iter().take(3) {
                let v = &by_pred[p];
                println!(
                    "      ({} lines) {:?} e.g. {:?}",
                    v.len(),
                    d.template(*p).map_or("", |t| t.template),
                    lines[v[0]]
                );
            }
        }
    }
    let distinct: std::collections::BTreeSet<usize> = truth.iter().copied().collect();
    let found: std::collections::BTreeSet<TemplateId> = ids.iter().copied().collect();
    (ga, found.len(), distinct.len())
}

/// Mean and worst (accuracy, seed) over `seeds`.
fn score_seeds(seeds: std::ops::Range<u64>, bare_lists: bool) -> (f64, (f64, u64)) {
    let n = seeds.clone().count() as f64;
    let mut sum = 0.0;
    let mut worst = (f64::MAX, 0);
    for seed in seeds {
        let (ga, _, _) = score_format(seed, bare_lists, false);
        sum += ga;
        if ga < worst.0 {
            worst = (ga, seed);
        }
    }
    (sum / n, worst)
}

// Floors. The miner before issue 22 (fixed masks, Drain's threshold merge) scored a mean of
// 0.53 on these formats (0.69 with today's masks and merging off). What stays below 0.9 (see
// docs/benchmarks.md): a short constant that is also a value of the format's vocabulary (then
// two sibling templates join), two parameters in one template that are both words (no two
// lines share all other words, so no sibling evidence), early bursts of sibling constants
// that pass the new-value test. Grouping accuracy counts every line of a merged or split
// template as wrong, so one such template can cost a format 0.3; the worst of the held-out
// formats scored 0.68 when first run.
const MEAN_FLOOR: f64 = 0.95;
const FORMAT_FLOOR: f64 = 0.65;

#[test]
fn synthetic_formats_are_grouped() {
    let (mean, worst) = score_seeds(SEEDS, false);
    println!("mean {mean:.4}, worst {:.4} (seed {})", worst.0, worst.1);
    assert!(mean >= MEAN_FLOOR, "mean grouping accuracy {mean:.4}");
    assert!(
        worst.0 >= FORMAT_FLOOR,
        "seed {} at {:.4}",
        worst.1,
        worst.0
    );
}

#[test]
fn held_out_formats_are_grouped() {
    let (mean, worst) = score_seeds(HELD_OUT, false);
    println!("mean {mean:.4}, worst {:.4} (seed {})", worst.0, worst.1);
    assert!(mean >= MEAN_FLOOR, "mean grouping accuracy {mean:.4}");
    assert!(
        worst.0 >= FORMAT_FLOOR,
        "seed {} at {:.4}",
        worst.1,
        worst.0
    );
}

/// Lists of space-separated words (`a b c`, 1–4 of them) change the token count with the
/// value, and nothing marks where the list ends: the known gap, measured so a change shows.
#[test]
fn bare_word_lists_are_the_known_gap() {
    let (mean, worst) = score_seeds(SEEDS, true);
    println!("mean {mean:.4}, worst {:.4} (seed {})", worst.0, worst.1);
    assert!(mean >= 0.93, "mean grouping accuracy {mean:.4}");
    assert!(worst.0 >= 0.6, "seed {} at {:.4}", worst.1, worst.0);
}

#[test]
fn the_generator_is_deterministic_and_the_score_can_fail() {
    let mut a = Rng::new(7);
    let mut b = Rng::new(7);
    let (la, ta) = Format::new(&mut a, false).lines(&mut a, 50);
    let (lb, tb) = Format::new(&mut b, false).lines(&mut b, 50);
    assert_eq!((la, ta), (lb, tb));
    // One group for everything, or one per line, scores below the floor.
    let truth: Vec<usize> = (0..100).map(|i| i % 7).collect();
    let one = vec![TemplateId(1); 100];
    let each: Vec<TemplateId> = (0..100).map(TemplateId).collect();
    assert_eq!(grouping_accuracy(&truth, &one), 0.0);
    assert_eq!(grouping_accuracy(&truth, &each), 0.0);
    let exact: Vec<TemplateId> = truth.iter().map(|&t| TemplateId(t as u64)).collect();
    assert_eq!(grouping_accuracy(&truth, &exact), 1.0);
}
