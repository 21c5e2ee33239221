#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! Differential test of the verification statistics against SciPy and NumPy themselves: many
//! generated sample pairs (deterministic seeds; normal, shifted, heavy ties, mostly zeros,
//! heavy tails, n = 1..5, unequal sizes, n up to 2000) go to `python3` in one JSON file, SciPy's
//! `mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)` and
//! NumPy's default quantiles come back, and ours must agree: U relative 1e-9, p absolute 1e-9
//! (and relative 1e-8 in the tail, where 1e-9 absolute says nothing), quantiles and Tukey
//! outlier removal exactly.
//!
//! SciPy is a test peer: `scripts/install-test-deps.sh` (scripts/test-deps/scipy.sh) installs
//! it. Without it this test fails and says so; it never skips.

use std::io::Write;
use std::process::Command;

use aiops_deploy::stats::{mann_whitney_u, quantile, remove_outliers};

/// SplitMix64: a tiny deterministic generator, so the same cases run everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One generated case: a name (for failure messages) and the two samples.
struct Case {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
}

fn sample(rng: &mut Rng, n: usize, shape: &str, shift: f64) -> Vec<f64> {
    (0..n)
        .map(|_| match shape {
            "normal" => rng.normal() + shift,
            // Heavy ties: a normal rounded to halves gives ~15 distinct values.
            "halves" => ((rng.normal() + shift) * 2.0).round() / 2.0,
            // Small integer counts: ties everywhere.
            "counts" => rng.below(4) as f64 + shift.round(),
            // Mostly zeros with a few errors, like an error ratio per scrape.
            "zeros" => {
                if rng.uniform() < 0.9 {
                    0.0
                } else {
                    (rng.uniform() * 0.1 + shift * 0.01).max(0.0)
                }
            }
            // Latency-like heavy tail.
            "lognormal" => (rng.normal() * 0.8 + 4.0 + shift).exp(),
            // Signed zeros and negatives: -0.0 and 0.0 must tie.
            "signed_zero" => match rng.below(3) {
                0 => 0.0,
                1 => -0.0,
                _ => -(rng.below(3) as f64) + shift.round(),
            },
            _ => unreachable!("unknown shape {shape}"),
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut seed = 1u64;
    let shapes = [
        "normal",
        "halves",
        "counts",
        "zeros",
        "lognormal",
        "signed_zero",
    ];
    let sizes: [(usize, usize); 11] = [
        (10, 10),
        (30, 30),
        (20, 45),
        (100, 100),
        (3, 200),
        (1, 2000),
        (50, 700),
        (600, 600),
        (2000, 2000),
        (2000, 37),
        (8, 8),
    ];
    for shape in shapes {
        for (n1, n2) in sizes {
            for shift in [0.0, 0.2, 1.0] {
                let mut rng = Rng(seed);
                seed += 1;
                out.push(Case {
                    name: format!("{shape} n1={n1} n2={n2} shift={shift} seed={}", seed - 1),
                    x: sample(&mut rng, n1, shape, shift),
                    y: sample(&mut rng, n2, shape, 0.0),
                });
            }
        }
    }
    // Every small size pair, continuous and with ties.
    for n1 in 1..=5 {
        for n2 in 1..=5 {
            for shape in ["normal", "counts"] {
                let mut rng = Rng(seed);
                seed += 1;
                out.push(Case {
                    name: format!("small {shape} n1={n1} n2={n2} seed={}", seed - 1),
                    x: sample(&mut rng, n1, shape, 0.5),
                    y: sample(&mut rng, n2, shape, 0.0),
                });
            }
        }
    }
    // Completely separated samples (the smallest p-values) and one all-tied case.
    out.push(Case {
        name: "separated 300/300".into(),
        x: (0..300).map(|i| 1000.0 + f64::from(i)).collect(),
        y: (0..300).map(f64::from).collect(),
    });
    out.push(Case {
        name: "all tied".into(),
        x: vec![2.5; 40],
        y: vec![2.5; 25],
    });
    out
}

/// The reference: SciPy's test and NumPy's quantiles and Tukey fences for every case.
const PYTHON: &str = r#"
import json, sys
try:
    import numpy as np
    from scipy.stats import mannwhitneyu
except ImportError as e:
    print("IMPORT_ERROR " + str(e))
    sys.exit(3)
cases = json.load(open(sys.argv[1]))
qs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
out = []
for x, y in cases:
    r = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    xa = np.asarray(x, dtype=float)
    kept = {}
    for k in (1.5, 3.0):
        q1, q3 = np.quantile(xa, [0.25, 0.75])
        iqr = q3 - q1
        kept[str(k)] = [float(v) for v in xa if q1 - k * iqr <= v <= q3 + k * iqr]
    out.append({
        "u": float(r.statistic),
        "p": float(r.pvalue),
        "quantiles": [float(v) for v in np.quantile(xa, qs)],
        "kept": kept,
    })
print(json.dumps(out))
"#;

#[derive(serde::Deserialize)]
struct Reference {
    u: f64,
    p: f64,
    quantiles: Vec<f64>,
    kept: std::collections::BTreeMap<String, Vec<f64>>,
}

#[test]
fn mann_whitney_quantiles_and_outliers_equal_scipy_and_numpy() {
    let cases = cases();
    let path = std::env::temp_dir().join(format!("aiops-deploy-scipy-{}.json", std::process::id()));
    {
        let pairs: Vec<(&[f64], &[f64])> = cases.iter().map(|c| (&c.x[..], &c.y[..])).collect();
        let mut f = std::fs::File::create(&path).unwrap();
        // Signed zeros survive JSON as -0.0 and 0.0; no NaN or infinity is generated.
        f.write_all(serde_json::to_string(&pairs).unwrap().as_bytes())
            .unwrap();
    }
    let run = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let run = run.unwrap_or_else(|e| {
        panic!("python3 could not be started ({e}): run scripts/install-test-deps.sh to install the test peers (python3 with SciPy)")
    });
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        !stdout.starts_with("IMPORT_ERROR"),
        "SciPy/NumPy are not importable by python3 ({}): run scripts/install-test-deps.sh (it runs scripts/test-deps/scipy.sh)",
        stdout.trim()
    );
    assert!(
        run.status.success(),
        "the SciPy reference script failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reference: Vec<Reference> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reference.len(), cases.len());

    let (mut significant, mut not_significant, mut tiny) = (0, 0, 0);
    for (case, want) in cases.iter().zip(&reference) {
        let got = mann_whitney_u(&case.x, &case.y).unwrap();
        let name = &case.name;
        assert!(
            (got.u - want.u).abs() <= 1e-9 * want.u.abs().max(1.0),
            "{name}: U {} vs SciPy {}",
            got.u,
            want.u
        );
        assert!(
            (got.p_value - want.p).abs() <= 1e-9,
            "{name}: p {:e} vs SciPy {:e}",
            got.p_value,
            want.p
        );
        if want.p > 1e-280 && want.p < 1e-6 {
            assert!(
                ((got.p_value - want.p) / want.p).abs() <= 1e-8,
                "{name}: tail p {:e} vs SciPy {:e}",
                got.p_value,
                want.p
            );
        }
        if want.p < 0.05 {
            significant += 1;
        } else {
            not_significant += 1;
        }
        if want.p < 1e-12 {
            tiny += 1;
        }

        for (q, want_q) in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
            .into_iter()
            .zip(&want.quantiles)
        {
            let got_q = quantile(&case.x, q).unwrap();
            // NumPy's linear quantile is reproduced operation for operation; -0.0 == 0.0.
            assert!(
                got_q == *want_q,
                "{name}: quantile {q} = {got_q:e}, NumPy {want_q:e}"
            );
        }
        for (k, want_kept) in &want.kept {
            let got_kept = remove_outliers(&case.x, k.parse().unwrap());
            assert_eq!(&got_kept, want_kept, "{name}: remove_outliers(k={k})");
        }
    }
    // The generated cases cover both sides of the usual alpha and the far tail.
    assert!(significant >= 50, "only {significant} significant cases");
    assert!(
        not_significant >= 50,
        "only {not_significant} non-significant cases"
    );
    assert!(tiny >= 5, "only {tiny} cases with p < 1e-12");
}
