//! `aiops-bench deploy-verify`: how fast the verification judge turns samples into verdicts
//! (issue 20's figure "verification of 1,000 deploys × 5 metrics × 2 windows of 600 points:
//! verdicts/s").
//!
//! Generated, deterministic data (a fixed SplitMix64 seed): `--deploys` deploys, each with five
//! metrics (error ratio, p99 latency, saturation, throughput, queue depth) of `--points` canary
//! and `--points` baseline samples. Most deploys are A/A (the same distribution on both sides);
//! every tenth has a bad canary (error ratio ×5, p99 ×3), every tenth+5 a borderline one (p99
//! +15%), so the judge takes every path (not significant, within tolerance, High, Low). All
//! samples exist before the clock starts; one verdict is `judge_metric` × 5 + `score` for one
//! deploy, in one thread. Reports verdicts/s (median of `--rounds` rounds), metric judgements/s
//! and the per-verdict time p50/p99/max over every round, and writes `--out` JSON.

use aiops_deploy::judge::{self, Direction, MetricRule, Outcome, Thresholds};
use std::path::PathBuf;
use std::time::Instant;

/// `aiops-bench deploy-verify` arguments.
#[derive(Debug, clap::Args)]
pub struct DeployVerifyArgs {
    /// Deploys to verify per round.
    #[arg(long, default_value_t = 1000)]
    pub deploys: usize,
    /// Samples per window (canary and baseline each).
    #[arg(long, default_value_t = 600)]
    pub points: usize,
    /// Timed rounds over every deploy (the median round gives verdicts/s).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seed of the generated samples.
    #[arg(long, default_value_t = 20)]
    pub seed: u64,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results/deploy-verify.json")]
    pub out: PathBuf,
}

/// Why `aiops-bench deploy-verify` failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployVerifyError {
    /// The result could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Nothing to measure.
    #[error("--deploys, --points and --rounds must be at least 1")]
    Empty,
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployVerifyResult {
    /// Deploys per round.
    pub deploys: usize,
    /// Metrics per deploy.
    pub metrics: usize,
    /// Samples per window.
    pub points: usize,
    /// Timed rounds.
    pub rounds: usize,
    /// Verdicts per second, median round.
    pub verdicts_per_s: f64,
    /// Metric judgements per second, median round.
    pub judgements_per_s: f64,
    /// Per-verdict time, median (µs).
    pub verdict_p50_us: f64,
    /// Per-verdict time, 99th percentile (µs).
    pub verdict_p99_us: f64,
    /// Slowest verdict (µs).
    pub verdict_max_us: f64,
    /// Outcomes of one round: pass, marginal, fail, no data.
    pub outcomes: [usize; 4],
}

/// SplitMix64: the same samples on every run and machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The five metric rules of every deploy (the verifier's defaults plus two custom outputs).
pub(crate) fn rules() -> Vec<MetricRule> {
    let rule = |name: &str, direction, critical, tolerance, min_change| MetricRule {
        name: name.to_string(),
        direction,
        critical,
        tolerance,
        min_change,
        ..MetricRule::default()
    };
    vec![
        rule("error_ratio", Direction::Increase, true, 0.1, 0.001),
        rule("p99_latency_ms", Direction::Increase, false, 0.1, 0.0),
        rule("saturation", Direction::Increase, false, 0.1, 0.0),
        rule("throughput", Direction::Decrease, false, 0.1, 0.0),
        rule("queue_depth", Direction::Either, false, 0.2, 0.0),
    ]
}

/// One metric's window of `n` samples: its base level times `factor`, with realistic shape
/// (error ratio mostly small with bursts, log-normal latency, bounded saturation, noisy
/// throughput, small integer queue depths with heavy ties).
fn window(rng: &mut Rng, metric: usize, n: usize, factor: f64) -> Vec<f64> {
    (0..n)
        .map(|_| match metric {
            0 => (0.01 + 0.004 * rng.normal()).max(0.0) * factor,
            1 => (rng.normal() * 0.25 + 120f64.ln()).exp() * factor,
            2 => (0.55 + 0.08 * rng.normal()).clamp(0.0, 1.0) * factor,
            3 => (1000.0 + 60.0 * rng.normal()) * factor,
            _ => ((rng.uniform() * 6.0).floor() * factor).round(),
        })
        .collect()
}

/// Canary and baseline windows of every metric of one deploy.
pub(crate) type Deploy = Vec<(Vec<f64>, Vec<f64>)>;

/// `deploys` deploys of `points` canary and baseline samples per metric: every tenth bad, every
/// tenth+5 borderline, the rest A/A.
pub(crate) fn generate(deploys: usize, points: usize, seed: u64) -> Vec<Deploy> {
    let mut rng = Rng(seed);
    (0..deploys)
        .map(|d| {
            (0..5)
                .map(|m| {
                    let factor = match (d % 10, m) {
                        (0, 0) => 5.0,  // bad canary: error ratio ×5
                        (0, 1) => 3.0,  // and p99 ×3
                        (5, 1) => 1.15, // borderline: p99 +15%
                        _ => 1.0,
                    };
                    let canary = window(&mut rng, m, points, factor);
                    let baseline = window(&mut rng, m, points, 1.0);
                    (canary, baseline)
                })
                .collect()
        })
        .collect()
}

/// The `p` quantile of `sorted` (nearest rank; 0 when empty).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Runs the benchmark, prints one line and writes the JSON result to `args.out`.
///
/// # Errors
/// [`DeployVerifyError`] when there is nothing to measure or the result cannot be written.
pub fn run(args: &DeployVerifyArgs) -> Result<DeployVerifyResult, DeployVerifyError> {
    if args.deploys == 0 || args.points == 0 || args.rounds == 0 {
        return Err(DeployVerifyError::Empty);
    }
    let rules = rules();
    let thresholds = Thresholds::default();
    let data = generate(args.deploys, args.points, args.seed);

    let mut round_secs = Vec::with_capacity(args.rounds);
    let mut verdict_us = Vec::with_capacity(args.rounds * args.deploys);
    let mut outcomes = [0usize; 4];
    for round in 0..args.rounds {
        let start = Instant::now();
        for deploy in &data {
            let t = Instant::now();
            let metrics = rules
                .iter()
                .zip(deploy)
                .map(|(rule, (canary, baseline))| judge::judge_metric(rule, canary, baseline))
                .collect();
            let verdict = judge::score(metrics, &thresholds);
            verdict_us.push(t.elapsed().as_secs_f64() * 1e6);
            if round == 0 {
                let i = match verdict.outcome {
                    Outcome::Pass => 0,
                    Outcome::Marginal => 1,
                    Outcome::Fail => 2,
                    Outcome::NoData => 3,
                };
                outcomes[i] += 1;
            }
            std::hint::black_box(verdict);
        }
        round_secs.push(start.elapsed().as_secs_f64());
    }
    round_secs.sort_by(f64::total_cmp);
    verdict_us.sort_by(f64::total_cmp);
    let median_secs = round_secs[round_secs.len() / 2];
    let verdicts_per_s = args.deploys as f64 / median_secs;
    let result = DeployVerifyResult {
        deploys: args.deploys,
        metrics: rules.len(),
        points: args.points,
        rounds: args.rounds,
        verdicts_per_s,
        judgements_per_s: verdicts_per_s * rules.len() as f64,
        verdict_p50_us: percentile(&verdict_us, 0.5),
        verdict_p99_us: percentile(&verdict_us, 0.99),
        verdict_max_us: verdict_us.last().copied().unwrap_or(0.0),
        outcomes,
    };
    println!(
        "deploy-verify deploys={} metrics={} points={}x2 verdicts_per_s={:.0} judgements_per_s={:.0} verdict_p50_us={:.1} verdict_p99_us={:.1} verdict_max_us={:.1} pass={} marginal={} fail={} no_data={}",
        result.deploys,
        result.metrics,
        result.points,
        result.verdicts_per_s,
        result.judgements_per_s,
        result.verdict_p50_us,
        result.verdict_p99_us,
        result.verdict_max_us,
        outcomes[0],
        outcomes[1],
        outcomes[2],
        outcomes[3]
    );

    let figures = vec![
        crate::report::Figure::new(
            "deploy_verify.verdicts_per_s",
            result.verdicts_per_s,
            "verdicts/s",
            crate::report::FigureKind::Rate,
        ),
        crate::report::Figure::new(
            "deploy_verify.verdict_p50_us",
            result.verdict_p50_us,
            "µs",
            crate::report::FigureKind::Latency,
        ),
        crate::report::Figure::new(
            "deploy_verify.verdict_p99_us",
            result.verdict_p99_us,
            "µs",
            crate::report::FigureKind::Latency,
        ),
    ];
    let report = crate::report::Report {
        benchmark: "deploy-verify".to_string(),
        machine: crate::machine::Machine::describe(),
        provenance: crate::machine::Provenance::current(),
        details: result.clone(),
        figures,
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DeployVerifyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
    std::fs::write(&args.out, json).map_err(|source| DeployVerifyError::Io {
        path: args.out.clone(),
        source,
    })?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// The generated deploys exercise what the figure claims: bad canaries fail (critical error
    /// ratio), borderline ones are marginal (p99 +15% over a 10% tolerance: 4 of 5 weight
    /// passes = 80), A/A ones pass.
    #[test]
    fn generated_deploys_get_the_intended_verdicts() {
        let data = generate(30, 600, 20);
        let rules = rules();
        for (d, deploy) in data.iter().enumerate() {
            let metrics = rules
                .iter()
                .zip(deploy)
                .map(|(r, (c, b))| judge::judge_metric(r, c, b))
                .collect();
            let v = judge::score(metrics, &Thresholds::default());
            let want = match d % 10 {
                0 => Outcome::Fail,
                5 => Outcome::Marginal,
                _ => Outcome::Pass,
            };
            assert_eq!(v.outcome, want, "deploy {d}: {:?}", v.reasons);
        }
    }
}
