//! Syslog ingest, the pure part: byte streams → frames → log batches. The listeners (UDP, TCP,
//! limits, batching, backpressure) are the engine's (`engine/server/src/syslog.rs`).
//!
//! - [`framing`]: RFC 6587 on TCP — octet counting (`<len> <msg>`) or LF, detected per frame,
//!   frames cut at a limit without buffering the excess.
//! - [`decode`]: one message → one row of the `logs` kind, parsed by `syslog_loose` (RFC 5424,
//!   then RFC 3164).
//!
//! ## Mapping (docs/ingest.md has the same table for users)
//! | row | from |
//! |---|---|
//! | `time` | the message's timestamp; RFC 3164's has no year and no zone: the zone is `[syslog] rfc3164_timezone` (UTC by default), the year the latest that puts the time at most one day after the receive time. No timestamp → receive time; a timestamp outside `ingest.max_age`/`max_future` → receive time, the original in `syslog.timestamp` |
//! | `severity` | 0 emerg, 1 alert, 2 crit → `fatal`; 3 err → `error`; 4 warning → `warn`; 5 notice, 6 info → `info`; 7 debug → `debug` |
//! | `body` | the MSG part (a leading UTF-8 BOM dropped) |
//! | `labels.host` | HOSTNAME, else the peer's IP |
//! | `labels.service` | APP-NAME (RFC 3164: the TAG before `[pid]`), absent when the message has none |
//! | `attributes` | `syslog.facility` (name), `syslog.severity` (0-7), `syslog.procid`, `syslog.msgid`, `syslog.format` (`rfc5424`, `rfc3164`, `unparsed`), `syslog.transport`, `syslog.peer` (`ip:port`), `syslog.truncated`, `syslog.timestamp`, and `sd.<SD-ID>.<name>` per structured-data parameter (at most `ingest.max_labels`) |
//!
//! **Nothing is refused.** A message that is not syslog (no header) is kept whole as the body
//! with `syslog.format=unparsed`, its leading `<PRI>` read if it has one, else `user.notice`
//! (RFC 3164 §4.3.3, what rsyslog does). Invalid UTF-8 becomes U+FFFD; ASCII control
//! characters are escaped as rsyslog does (`#000` for NUL; the body keeps tabs and newlines).
//! A host or app name longer than `ingest.max_label_value_bytes` makes the message `unparsed`.

pub mod decode;
pub mod framing;
#[cfg(test)]
mod tests;

pub use decode::{LineCounts, LineMeta, SOURCE, SyslogBatchBuilder, SyslogSettings, Transport};
pub use framing::{Frame, Framer};
