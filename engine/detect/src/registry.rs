//! The one list of anomaly detectors: a [`DetectorConfig`] (data, from SQL or config) builds an
//! [`AnyDetector`] (the running state, serializable for checkpoints).

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
    /// Placeholder until the detectors land: every point is ordinary.
    Null,
}

impl DetectorConfig {
    /// The names accepted by [`DetectorConfig::by_name`].
    pub const NAMES: &'static [&'static str] = &["null"];

    /// The detector of that name with its default parameters.
    ///
    /// # Errors
    /// [`DetectorError::Unknown`] for a name not in [`Self::NAMES`].
    pub fn by_name(name: &str) -> Result<Self, DetectorError> {
        match name {
            "null" => Ok(Self::Null),
            _ => Err(DetectorError::Unknown {
                name: name.to_string(),
                known: Self::NAMES.join(", "),
            }),
        }
    }

    /// Builds the running detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn build(&self) -> Result<AnyDetector, DetectorError> {
        match self {
            Self::Null => Ok(AnyDetector::Null),
        }
    }
}

/// A running detector of any kind; serializes for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case")]
pub enum AnyDetector {
    /// See [`DetectorConfig::Null`].
    Null,
}

impl Detector for AnyDetector {
    fn observe(&mut self, _time_ms: i64, _value: f64) -> Verdict {
        match self {
            Self::Null => Verdict::default(),
        }
    }
}
