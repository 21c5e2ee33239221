//! One syslog message (a frame or a datagram) → one row of the log kind; see the
//! [module documentation](super) for the mapping.

use crate::error::DecodeError;
use crate::sources::validate::LabelRules;
use crate::sources::{IngestLimits, SourceBatch};
use aiops_schemas::{Kind, LogBatchBuilder};
use std::borrow::Cow;
use syslog_loose::{IncompleteDate, Message, ProcId, Protocol, Variant};

/// The connector name: the batches' source and the `source` label of the ingest metrics.
pub const SOURCE: &str = "syslog";

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram (RFC 5426).
    Udp,
    /// A TCP stream with LF or octet-counted framing (RFC 6587).
    Tcp,
}

impl Transport {
    /// `udp` / `tcp`, the value of the `syslog.transport` attribute and of metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What the decoder needs besides the message bytes: the sender and the time it arrived.
#[derive(Debug, Clone, Copy)]
pub struct LineMeta<'a> {
    /// How the message arrived.
    pub transport: Transport,
    /// The peer's `ip:port` (the `syslog.peer` attribute).
    pub peer: &'a str,
    /// The peer's IP: the `host` label of a message that names no host.
    pub peer_ip: &'a str,
    /// Whether the frame was cut at the line limit.
    pub truncated: bool,
    /// Receive time, Unix ms: the event time of a message without a usable timestamp, and the
    /// reference for RFC 3164's missing year and for the accepted time window.
    pub received_ms: i64,
}

/// Decoder settings, from the engine's `[syslog]` and `[ingest]` sections. The default: UTC and
/// the default ingest limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyslogSettings {
    /// The UTC offset, in seconds, of RFC 3164 timestamps (they carry none). Default 0 (UTC).
    pub rfc3164_offset_secs: i32,
    /// The shared ingest limits (time window, label sizes, most attributes from structured data).
    pub limits: IngestLimits,
}

/// What happened to the messages of one batch, for the `aiops_syslog_*` counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Messages turned into rows (every message becomes a row).
    pub lines: u64,
    /// Messages without a syslog header, stored whole as the body (`syslog.format=unparsed`).
    pub unparsed: u64,
    /// Messages cut at the line limit (`syslog.truncated=true`).
    pub truncated: u64,
    /// Messages whose own timestamp was outside the accepted window and that got the receive
    /// time instead (the original is kept in `syslog.timestamp`).
    pub time_replaced: u64,
}

impl LineCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: LineCounts) {
        self.lines += other.lines;
        self.unparsed += other.unparsed;
        self.truncated += other.truncated;
        self.time_replaced += other.time_replaced;
    }
}

/// Collects syslog messages into one log batch. Every message becomes exactly one row: a
/// message that does not parse is kept whole (see the [module documentation](super)).
#[derive(Debug)]
pub struct SyslogBatchBuilder {
    settings: SyslogSettings,
    rows: LogBatchBuilder,
    counts: LineCounts,
    bytes: usize,
}

/// Severity number → the engine's severity text (`severity` column).
const SEVERITY_TEXT: [&str; 8] = [
    "fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug",
];
/// Severity number as text, for the `syslog.severity` attribute (no formatting per row).
const SEVERITY_NUM: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];
/// Facility numbers 0..=23 by name (RFC 5424 table 1, the names of syslog.h).
const FACILITY: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clockd", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
/// RFC 3164 §4.3.3: a message without a usable PRI is `user.notice` (13).
const DEFAULT_PRI: u8 = 13;

impl SyslogBatchBuilder {
    /// An empty batch.
    pub fn new(settings: SyslogSettings) -> SyslogBatchBuilder {
        SyslogBatchBuilder {
            settings,
            rows: LogBatchBuilder::new(),
            counts: LineCounts::default(),
            bytes: 0,
        }
    }

    /// Messages collected so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no message was collected.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Message bytes collected so far (before decoding): what bounds a batch's memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Decodes one message (a frame without its framing, or a datagram) into a row. Never
    /// fails: whatever the bytes are, they become a row (invalid UTF-8 replaced by U+FFFD,
    /// control characters escaped as rsyslog does, `#000` for NUL).
    pub fn push(&mut self, message: &[u8], meta: &LineMeta<'_>) {
        self.bytes += message.len();
        self.counts.lines += 1;
        if meta.truncated {
            self.counts.truncated += 1;
        }
        let text = String::from_utf8_lossy(trim_end(message));
        let offset_secs = self.settings.rfc3164_offset_secs;
        let parsed = chrono::FixedOffset::east_opt(offset_secs).and_then(|tz| {
            syslog_loose::parse_message_with_year_exact_tz(
                &text,
                year_rule(meta.received_ms, offset_secs),
                Some(tz),
                Variant::Either,
            )
            .ok()
        });
        match parsed {
            Some(m) => self.push_parsed(&m, &text, meta),
            None => self.push_unparsed(&text, meta),
        }
    }

    fn push_parsed(&mut self, m: &Message<&str>, text: &str, meta: &LineMeta<'_>) {
        let limits = &self.settings.limits;
        let severity = m.severity.map_or(DEFAULT_PRI & 7, |s| s as u8) as usize;
        let facility = m.facility.map_or(DEFAULT_PRI >> 3, |f| f as u8) as usize;
        let host = m.hostname.map_or(Cow::Borrowed(meta.peer_ip), escape_field);
        let service = m.appname.map(escape_field);
        let labels = [Some(("host", host)), service.map(|s| ("service", s))];
        if limits
            .check_labels(
                "syslog message",
                "labels",
                LabelRules::Relaxed,
                labels.iter().flatten().map(|(k, v)| (*k, v.as_ref())),
            )
            .is_err()
        {
            // A host or app name no query can use (longer than ingest.max_label_value_bytes):
            // keep the message, as it came, rather than lose it.
            return self.push_unparsed(text, meta);
        }
        let stamped = m.timestamp.map(|t| t.timestamp_millis());
        let (time, original) = match stamped {
            Some(t)
                if limits
                    .check_time("syslog message", "timestamp", t, meta.received_ms)
                    .is_ok() =>
            {
                (t, None)
            }
            Some(_) => {
                self.counts.time_replaced += 1;
                (meta.received_ms, m.timestamp.map(|t| t.to_rfc3339()))
            }
            None => (meta.received_ms, None),
        };
        let mut pid_buf = [0u8; 12];
        let procid = m.procid.as_ref().map(|p| match p {
            ProcId::PID(n) => Cow::Borrowed(fmt_i32(*n, &mut pid_buf)),
            ProcId::Name(s) => escape_field(s),
        });
        let msgid = m.msgid.map(escape_field);
        let format = match m.protocol {
            Protocol::RFC5424(_) => "rfc5424",
            Protocol::RFC3164 => "rfc3164",
        };
        let fixed = [
            Some(("syslog.facility", Cow::Borrowed(FACILITY[facility]))),
            Some(("syslog.severity", Cow::Borrowed(SEVERITY_NUM[severity]))),
            procid.map(|p| ("syslog.procid", p)),
            msgid.map(|p| ("syslog.msgid", p)),
            Some(("syslog.format", Cow::Borrowed(format))),
            Some(("syslog.transport", Cow::Borrowed(meta.transport.as_str()))),
            Some(("syslog.peer", Cow::Borrowed(meta.peer))),
            meta.truncated
                .then_some(("syslog.truncated", Cow::Borrowed("true"))),
            original.map(|t| ("syslog.timestamp", Cow::Owned(t))),
        ];
        let sd = structured_data(m, limits.max_labels);
        let body = escape_body(m.msg.strip_prefix('\u{feff}').unwrap_or(m.msg));
        self.rows.push(
            time,
            SEVERITY_TEXT[severity],
            &body,
            labels.into_iter().flatten(),
            fixed
                .into_iter()
                .flatten()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .chain(sd.into_iter().map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))),
        );
    }

    /// A message without a syslog header: the whole text is the body; a leading `<PRI>` (if
    /// any) is still read, as rsyslog does; otherwise `user.notice`.
    fn push_unparsed(&mut self, text: &str, meta: &LineMeta<'_>) {
        self.counts.unparsed += 1;
        let (pri, rest) = leading_pri(text).unwrap_or((DEFAULT_PRI, text));
        let (facility, severity) = ((pri >> 3) as usize, (pri & 7) as usize);
        let body = escape_body(rest);
        self.rows.push(
            meta.received_ms,
            SEVERITY_TEXT[severity],
            &body,
            [("host", meta.peer_ip)],
            [
                Some(("syslog.facility", FACILITY[facility])),
                Some(("syslog.severity", SEVERITY_NUM[severity])),
                Some(("syslog.format", "unparsed")),
                Some(("syslog.transport", meta.transport.as_str())),
                Some(("syslog.peer", meta.peer)),
                meta.truncated.then_some(("syslog.truncated", "true")),
            ]
            .into_iter()
            .flatten(),
        );
    }

    /// The batch of every message pushed, and what happened to them; the builder is empty
    /// afterwards. `None` when nothing was pushed.
    ///
    /// # Errors
    /// [`DecodeError::Internal`] if the batch could not be built (a bug, not bad input).
    pub fn finish(&mut self) -> Result<(Option<SourceBatch>, LineCounts), DecodeError> {
        let counts = std::mem::take(&mut self.counts);
        self.bytes = 0;
        let range = self.rows.time_range();
        let batches = SourceBatch::single(Kind::Logs, SOURCE, range, self.rows.finish())?;
        Ok((batches.into_iter().next(), counts))
    }
}

/// The year of an RFC 3164 timestamp (which has none): the latest of the years after, of and
/// before the receive time that puts the time at most one day after the receive time. So a
/// message stamped `Dec 31 23:59` received on Jan 1 is last year's, one stamped `Jan 1 00:00:01`
/// by a clock running slightly ahead on Dec 31 is next year's.
fn year_rule(received_ms: i64, offset_secs: i32) -> impl Fn(IncompleteDate) -> i32 + Copy {
    move |(month, day, hour, minute, second): IncompleteDate| {
        let year = year_of(received_ms);
        let latest = received_ms.saturating_add(86_400_000);
        for y in [year + 1, year, year - 1] {
            let days = days_from_civil(y, i64::from(month), i64::from(day));
            let secs =
                days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
                    - i64::from(offset_secs);
            if secs.saturating_mul(1000) <= latest {
                return i32::try_from(y).unwrap_or(1970);
            }
        }
        i32::try_from(year - 1).unwrap_or(1970)
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC year of a Unix-ms time.
fn year_of(ms: i64) -> i64 {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

/// Structured data as `sd.<SD-ID>.<param>` attributes (escapes `\"`, `\\`, `\]` undone), the
/// first of a repeated name kept, at most `max` of them.
fn structured_data(m: &Message<&str>, max: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for element in &m.structured_data {
        for (name, value) in element.params() {
            if out.len() >= max {
                return out;
            }
            let key = format!("sd.{}.{}", escape_field(element.id), escape_field(name));
            if out.iter().any(|(k, _)| *k == key) {
                continue;
            }
            out.push((key, escape_field(&value).into_owned()));
        }
    }
    out
}

/// A leading `<PRI>` with PRI in 0..=191, and the text after it.
fn leading_pri(text: &str) -> Option<(u8, &str)> {
    let rest = text.strip_prefix('<')?;
    let close = rest.bytes().take(4).position(|b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u16 = digits.parse().ok()?;
    (pri <= 191).then(|| (pri as u8, rest[close + 1..].trim_start()))
}

/// Drops trailing NULs, CR, LF and spaces (senders terminate datagrams with any of them).
fn trim_end(b: &[u8]) -> &[u8] {
    let keep = b
        .iter()
        .rposition(|c| !matches!(c, b'\0' | b'\r' | b'\n' | b' '))
        .map_or(0, |i| i + 1);
    &b[..keep]
}

/// A control character as rsyslog writes it: `#` and three octal digits (`#000` for NUL).
fn push_escaped(out: &mut String, c: char) {
    let b = c as u32;
    out.push('#');
    out.push(char::from(b'0' + ((b >> 6) & 7) as u8));
    out.push(char::from(b'0' + ((b >> 3) & 7) as u8));
    out.push(char::from(b'0' + (b & 7) as u8));
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_ascii_control() && !keep(c);
    // Control characters are ASCII: a byte scan finds them without decoding UTF-8.
    if !s
        .bytes()
        .any(|b| (b < 0x20 || b == 0x7f) && bad(char::from(b)))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The body keeps tabs and newlines (a multi-line message in an octet-counted frame); other
/// ASCII control characters are escaped.
fn escape_body(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\t' || c == '\n')
}

/// Header fields, labels and attributes hold no control character at all.
fn escape_field(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// Formats an i32 into `buf` without allocating.
fn fmt_i32(n: i32, buf: &mut [u8; 12]) -> &str {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = i64::from(n).unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn helpers() {
        let mut b = [0u8; 12];
        assert_eq!(fmt_i32(0, &mut b), "0");
        assert_eq!(fmt_i32(4711, &mut b), "4711");
        assert_eq!(fmt_i32(i32::MIN, &mut b), "-2147483648");
        assert_eq!(leading_pri("<13>hello"), Some((13, "hello")));
        assert_eq!(leading_pri("<191> x"), Some((191, "x")));
        assert_eq!(leading_pri("<192>x"), None);
        assert_eq!(leading_pri("<1a>x"), None);
        assert_eq!(leading_pri("<>x"), None);
        assert_eq!(leading_pri("hello"), None);
        assert_eq!(trim_end(b"a b \0\r\n"), b"a b");
        assert_eq!(trim_end(b"\0\0"), b"");
        assert_eq!(escape_body("a\tb\nc\0d\x1b"), "a\tb\nc#000d#033");
        assert_eq!(escape_field("a\tb"), "a#011b");
        assert!(matches!(escape_body("plain"), Cow::Borrowed(_)));
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(1_796_000_000_000), 2026);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
