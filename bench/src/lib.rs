//! The `aiops-bench` harness: scenario benchmarks of the whole engine, written as JSON with the
//! machine described, and a compare step.
//!
//! - [`ingest`]: remote_write ingest into each log backend, bytes per sample, replay rate.
//!   - [`engine`]: the engine under test as a child process (and `nats-server` for JetStream).
//!   - [`bodies`]: the pool of pre-encoded remote_write bodies; [`rw`] adapts it to the
//!     connectors' encoder.
//!   - [`load`]: the keep-alive HTTP load generator with an hdrhistogram of latencies.
//!   - [`replay`]: reads and decodes the whole log.
//! - [`demo_rate`]: how fast the demo generator produces events.
//! - [`pipeline`]: the streaming SQL runtime against DataFusion in batch: rows/s, window
//!   latency to the log, state memory.
//! - [`alerting`]: alert management: alerts/s through the engine, latency to the notification
//!   intent in the log, and side by side with a real Alertmanager.
//! - [`runtime`]: the runtime through the real binary: workflow executions/s and trigger →
//!   webhook latency per alert rate, alert → notification intent, idle reaction.
//! - [`failover`]: cluster mode: kill → takeover and kill → outputs resume of the alerting
//!   unit when its owner is killed.
//! - [`cluster_ingest`]: cluster mode: remote_write ingest through 1–3 nodes on a JetStream
//!   cluster against the embedded log, R1 vs R3, `sync_interval: always`, CPU per million samples.
//! - [`otlp`]: OTLP/HTTP and OTLP/gRPC ingest (samples/s, log records/s) beside remote_write.
//! - [`syslog`]: syslog lines/s over TCP (LF and octet-counted) beside JSON logs ingest.
//! - [`knowledge`]: the knowledge-base scorer (links, search, abstention) and its speed.
//! - [`deploy_verify`]: the deployment verification judge: verdicts/s and time per verdict.
//! - [`deploy_log`]: deploy verification through the runtime's driver and a real log: verdicts/s
//!   and the latency from a window's closing tick to the verdict applied.
//! - [`console`]: the console's render time per page (in process and through the binary).
//! - [`nab`]: the NAB anomaly-detection scorer (NAB's scoring, profiles and threshold sweep).
//! - [`loghub`]: the Loghub log-parsing scorer (grouping and parsing accuracy), beside drain3.
//! - [`masking`]: sensitive-data masking cost per log line (Loghub mix, all-secret lines, the
//!   no-trigger fast path).
//! - [`report`]: results files, human tables and the `compare` verdicts.
//! - [`machine`]: the machine and commit a result belongs to.
//! - [`error`]: what can fail, per step.

pub mod alerting;
pub mod bodies;
pub mod cluster_ingest;
pub mod console;
pub mod demo_rate;
pub mod deploy_log;
pub mod deploy_verify;
pub mod engine;
pub mod error;
pub mod failover;
pub mod ingest;
pub mod knowledge;
pub mod load;
pub mod loghub;
pub mod machine;
pub mod masking;
pub mod nab;
pub mod otlp;
pub mod partitioned;
pub mod pipeline;
pub mod readside;
pub mod replay;
pub mod report;
pub mod runtime;
pub mod rw;
pub mod syslog;
pub mod workflows;

pub use error::BenchError;
