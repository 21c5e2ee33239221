//! The one list of anomaly detectors: a [`DetectorConfig`] (data, from SQL or config) builds an
//! [`AnyDetector`] (the running state, serializable for checkpoints).
//!
//! A configuration is JSON like `{"detector": "ewma", "alpha": 0.1}`: the name, then any
//! parameters of that detector (the others take their defaults; unknown ones are refused).

use crate::changepoint::{Cusum, CusumConfig};
use crate::context::{Context, ContextConfig};
use crate::ensemble::{Ensemble, EnsembleConfig};
use crate::ewma::{Ewma, EwmaConfig};
use crate::robust_z::{RobustZ, RobustZConfig};
use crate::seasonal::{Seasonal, SeasonalConfig};
use crate::series::{Detector, Verdict};
use serde::{Deserialize, Serialize};

/// Why a detector could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorError {
    /// The name is not one of [`DetectorConfig::NAMES`].
    #[error("unknown detector {name:?}; known: {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A parameter is out of its range.
    #[error("detector {detector}: {reason}")]
    Parameter {
        /// The detector.
        detector: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// What to build: a detector by name with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorConfig {
    /// Placeholder: every point is ordinary.
    Null,
    /// Robust z-score on a rolling median/MAD ([`crate::robust_z`]).
    RobustZ(RobustZConfig),
    /// Exponentially weighted mean and variance ([`crate::ewma`]).
    Ewma(EwmaConfig),
    /// Seasonal baseline with automatic period ([`crate::seasonal`]).
    Seasonal(SeasonalConfig),
    /// CUSUM change points on the seasonal residuals ([`crate::changepoint`]).
    Cusum(CusumConfig),
    /// All of the above, one calibrated score ([`crate::ensemble`]); the default.
    Ensemble(EnsembleConfig),
    /// Unseen sequences of value levels and new extremes ([`crate::context`]).
    Context(ContextConfig),
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self::Ensemble(EnsembleConfig::default())
    }
}

impl DetectorConfig {
    /// The names accepted by [`DetectorConfig::by_name`].
    pub const NAMES: &'static [&'static str] = &[
        "null", "robust_z", "ewma", "seasonal", "cusum", "ensemble", "context",
    ];

    /// The name of the default detector.
    pub const DEFAULT: &'static str = "ensemble";

    /// The detector of that name with its default parameters.
    ///
    /// # Errors
    /// [`DetectorError::Unknown`] for a name not in [`Self::NAMES`].
    pub fn by_name(name: &str) -> Result<Self, DetectorError> {
        match name {
            "null" => Ok(Self::Null),
            "robust_z" => Ok(Self::RobustZ(RobustZConfig::default())),
            "ewma" => Ok(Self::Ewma(EwmaConfig::default())),
            "seasonal" => Ok(Self::Seasonal(SeasonalConfig::default())),
            "cusum" => Ok(Self::Cusum(CusumConfig::default())),
            "ensemble" => Ok(Self::Ensemble(EnsembleConfig::default())),
            "context" => Ok(Self::Context(ContextConfig::default())),
            _ => Err(DetectorError::Unknown {
                name: name.to_string(),
                known: Self::NAMES.join(", "),
            }),
        }
    }

    /// The detector's name (as in [`Self::NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::RobustZ(_) => "robust_z",
            Self::Ewma(_) => "ewma",
            Self::Seasonal(_) => "seasonal",
            Self::Cusum(_) => "cusum",
            Self::Ensemble(_) => "ensemble",
            Self::Context(_) => "context",
        }
    }

    /// Builds the running detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn build(&self) -> Result<AnyDetector, DetectorError> {
        Ok(match self {
            Self::Null => AnyDetector::Null,
            Self::RobustZ(c) => AnyDetector::RobustZ(RobustZ::new(c.clone())?),
            Self::Ewma(c) => AnyDetector::Ewma(Ewma::new(c.clone())?),
            Self::Seasonal(c) => AnyDetector::Seasonal(Box::new(Seasonal::new(c.clone())?)),
            Self::Cusum(c) => AnyDetector::Cusum(Box::new(Cusum::new(c.clone())?)),
            Self::Ensemble(c) => AnyDetector::Ensemble(Box::new(Ensemble::new(c.clone())?)),
            Self::Context(c) => AnyDetector::Context(Box::new(Context::new(c.clone())?)),
        })
    }
}

/// A running detector of any kind; serializes for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case")]
pub enum AnyDetector {
    /// See [`DetectorConfig::Null`].
    Null,
    /// See [`DetectorConfig::RobustZ`].
    RobustZ(RobustZ),
    /// See [`DetectorConfig::Ewma`].
    Ewma(Ewma),
    /// See [`DetectorConfig::Seasonal`].
    Seasonal(Box<Seasonal>),
    /// See [`DetectorConfig::Cusum`].
    Cusum(Box<Cusum>),
    /// See [`DetectorConfig::Ensemble`].
    Ensemble(Box<Ensemble>),
    /// See [`DetectorConfig::Context`].
    Context(Box<Context>),
}

impl Detector for AnyDetector {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        match self {
            Self::Null => Verdict::default(),
            Self::RobustZ(d) => d.observe(time_ms, value),
            Self::Ewma(d) => d.observe(time_ms, value),
            Self::Seasonal(d) => d.observe(time_ms, value),
            Self::Cusum(d) => d.observe(time_ms, value),
            Self::Ensemble(d) => d.observe(time_ms, value),
            Self::Context(d) => d.observe(time_ms, value),
        }
    }

    fn observe_batch(&mut self, times_ms: &[i64], values: &[f64], out: &mut Vec<Verdict>) {
        // One dispatch per batch, not per point.
        out.reserve(times_ms.len());
        macro_rules! run {
            ($d:expr) => {
                for (&t, &v) in times_ms.iter().zip(values) {
                    out.push($d.observe(t, v));
                }
            };
        }
        match self {
            Self::Null => out.extend(times_ms.iter().zip(values).map(|_| Verdict::default())),
            Self::RobustZ(d) => run!(d),
            Self::Ewma(d) => run!(d),
            Self::Seasonal(d) => run!(d),
            Self::Cusum(d) => run!(d),
            Self::Ensemble(d) => run!(d),
            Self::Context(d) => run!(d),
        }
    }
}
