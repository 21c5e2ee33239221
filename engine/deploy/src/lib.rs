//! Deployments as a pure state machine (no I/O, no clock, no randomness): the same log gives the
//! same records, risk scores and verdicts on every node, after a restart and in a forensic
//! re-verification.
//!
//! - [`record`]: the deploy record, its statuses and the commands that change it.
//! - [`book`]: every deploy by id: applies source reports and commands, decides what to run
//!   (deploy and rollback actions, exactly once), keeps DORA figures.
//! - [`risk`]: the risk score before a deploy, with its reasons, and the policy (approval,
//!   freeze windows).
//! - [`stats`]: Mann-Whitney U (asymptotic, continuity and tie corrections, as SciPy computes
//!   it), outlier removal, medians.
//! - [`judge`]: per-metric classification and the weighted score with pass / marginal
//!   thresholds (Kayenta's rules), giving promote / inconclusive / rollback.
//! - [`logs`]: log templates first seen during a verification window and error-line surges.
//! - [`verify`]: samples per metric, service and version over time, and the comparison of a
//!   deploy's verification window with its baseline.

pub mod book;
pub mod judge;
pub mod logs;
pub mod record;
pub mod risk;
pub mod stats;
pub mod verify;

pub use book::DeployBook;
pub use record::{Deploy, DeployCommand, DeployError, Status, Verdict};
