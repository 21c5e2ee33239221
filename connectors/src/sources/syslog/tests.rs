//! Decoder and framing tests (no network): RFC 5424, RFC 3164, octet counting, limits, garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::sources::IngestLimits;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, MapArray, RecordBatch};
use std::collections::BTreeMap;

/// 2026-12-04T16:00:00Z
const NOW: i64 = 1_796_400_000_000;

fn meta(truncated: bool) -> LineMeta<'static> {
    LineMeta {
        transport: Transport::Tcp,
        peer: "192.0.2.7:40000",
        peer_ip: "192.0.2.7",
        truncated,
        received_ms: NOW,
    }
}

#[derive(Debug)]
struct Row {
    time: i64,
    severity: String,
    body: String,
    labels: BTreeMap<String, String>,
    attrs: BTreeMap<String, String>,
}

fn map_at(m: &MapArray, i: usize) -> BTreeMap<String, String> {
    let entries = m.value(i);
    let k = entries.column(0).as_string::<i32>();
    let v = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
        .collect()
}

fn rows(batch: &RecordBatch) -> Vec<Row> {
    let time = batch.column(0).as_primitive::<TimestampMillisecondType>();
    let sev = batch.column(1).as_string::<i32>();
    let body = batch.column(2).as_string::<i32>();
    let labels = batch.column(3).as_map();
    let attrs = batch.column(4).as_map();
    (0..batch.num_rows())
        .map(|i| Row {
            time: time.value(i),
            severity: sev.value(i).to_string(),
            body: body.value(i).to_string(),
            labels: map_at(labels, i),
            attrs: map_at(attrs, i),
        })
        .collect()
}

fn decode_with(
    settings: SyslogSettings,
    lines: &[&[u8]],
    truncated: bool,
) -> (Vec<Row>, LineCounts) {
    let mut b = SyslogBatchBuilder::new(settings);
    for l in lines {
        b.push(l, &meta(truncated));
    }
    assert_eq!(b.len(), lines.len());
    let (batch, counts) = b.finish().unwrap();
    assert!(b.is_empty() && b.bytes() == 0);
    let batch = batch.expect("a batch");
    assert_eq!(batch.source, SOURCE);
    assert_eq!(batch.kind, aiops_schemas::Kind::Logs);
    (rows(&batch.batch), counts)
}

fn decode(lines: &[&[u8]]) -> (Vec<Row>, LineCounts) {
    decode_with(SyslogSettings::default(), lines, false)
}

fn ms(rfc3339: &str) -> i64 {
    crate::sources::json::parse_rfc3339_ms(rfc3339).unwrap()
}

#[test]
fn rfc5424_with_structured_data() {
    let line = br#"<165>1 2026-12-04T15:14:15.003Z mymachine.example.com evntslog 4711 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" note="a \"quoted\" \]"] BOMAn application event"#;
    let (r, counts) = decode(&[line]);
    let r = &r[0];
    assert_eq!(r.time, ms("2026-12-04T15:14:15.003Z"));
    assert_eq!(r.severity, "info"); // 165 = local4.notice
    assert_eq!(r.body, "BOMAn application event");
    assert_eq!(r.labels["host"], "mymachine.example.com");
    assert_eq!(r.labels["service"], "evntslog");
    let a = &r.attrs;
    assert_eq!(a["syslog.facility"], "local4");
    assert_eq!(a["syslog.severity"], "5");
    assert_eq!(a["syslog.procid"], "4711");
    assert_eq!(a["syslog.msgid"], "ID47");
    assert_eq!(a["syslog.format"], "rfc5424");
    assert_eq!(a["syslog.transport"], "tcp");
    assert_eq!(a["syslog.peer"], "192.0.2.7:40000");
    assert_eq!(a["sd.exampleSDID@32473.iut"], "3");
    assert_eq!(a["sd.exampleSDID@32473.eventSource"], "Application");
    assert_eq!(a["sd.exampleSDID@32473.eventID"], "1011");
    assert_eq!(a["sd.examplePriority@32473.class"], "high");
    assert_eq!(a["sd.examplePriority@32473.note"], "a \"quoted\" ]");
    assert!(!a.contains_key("syslog.truncated") && !a.contains_key("syslog.timestamp"));
    assert_eq!(
        counts,
        LineCounts {
            lines: 1,
            ..LineCounts::default()
        }
    );
}

#[test]
fn rfc5424_nil_values_bom_and_offsets() {
    let (r, _) = decode(&[
        "<11>1 2026-12-04T17:00:00.5+01:00 - - - - - \u{feff}disk failed".as_bytes(),
        b"<15>1 - host1 app - - -",
    ]);
    assert_eq!(r[0].time, ms("2026-12-04T16:00:00.500Z"));
    assert_eq!(r[0].severity, "error");
    assert_eq!(r[0].body, "disk failed");
    assert_eq!(
        r[0].labels["host"], "192.0.2.7",
        "no HOSTNAME: the peer's IP"
    );
    assert!(!r[0].labels.contains_key("service"));
    assert!(!r[0].attrs.contains_key("syslog.procid") && !r[0].attrs.contains_key("syslog.msgid"));
    assert_eq!(r[0].attrs["syslog.facility"], "user");
    // No timestamp: the receive time; an empty message is an empty body.
    assert_eq!(r[1].time, NOW);
    assert_eq!(r[1].severity, "debug");
    assert_eq!(r[1].body, "");
    assert_eq!(r[1].labels["service"], "app");
}

#[test]
fn severities_map_to_the_engine_words() {
    let want = [
        "fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug",
    ];
    for (sev, w) in want.iter().enumerate() {
        let line = format!("<{}>1 2026-12-04T15:00:00Z h a - - - x", 8 * 3 + sev);
        let (r, _) = decode(&[line.as_bytes()]);
        assert_eq!(r[0].severity, *w, "severity {sev}");
        assert_eq!(r[0].attrs["syslog.severity"], sev.to_string());
        assert_eq!(r[0].attrs["syslog.facility"], "daemon");
    }
    let (r, _) = decode(&[b"<191>1 2026-12-04T15:00:00Z h a - - - x"]);
    assert_eq!(r[0].attrs["syslog.facility"], "local7");
}

#[test]
fn rfc3164_with_tag_pid_and_the_year_rule() {
    let (r, counts) = decode(&[
        b"<34>Dec  4 15:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
        b"<13>Dec  4 15:14:16 host2 cron: job done",
    ]);
    assert_eq!(counts.unparsed, 0);
    assert_eq!(r[0].time, ms("2026-12-04T15:14:15Z"));
    assert_eq!(r[0].severity, "fatal"); // auth.crit
    assert_eq!(r[0].labels["host"], "mymachine");
    assert_eq!(r[0].labels["service"], "su");
    assert_eq!(r[0].attrs["syslog.procid"], "230");
    assert_eq!(r[0].attrs["syslog.facility"], "auth");
    assert_eq!(r[0].attrs["syslog.format"], "rfc3164");
    assert_eq!(r[0].body, "'su root' failed for lonvick on /dev/pts/8");
    assert_eq!(r[1].labels["service"], "cron");
    assert_eq!(r[1].body, "job done");

    // Received at New Year: a December stamp is last year's, a stamp a few minutes into next
    // year (a clock slightly ahead) is next year's.
    let new_year = ms("2027-01-01T00:00:30Z");
    let at = |line: &[u8], received_ms: i64| {
        let mut b = SyslogBatchBuilder::new(SyslogSettings::default());
        b.push(
            line,
            &LineMeta {
                received_ms,
                ..meta(false)
            },
        );
        rows(&b.finish().unwrap().0.unwrap().batch)[0].time
    };
    assert_eq!(
        at(b"<13>Dec 31 23:59:50 h a: x", new_year),
        ms("2026-12-31T23:59:50Z")
    );
    assert_eq!(
        at(b"<13>Jan  1 00:00:10 h a: x", new_year),
        ms("2027-01-01T00:00:10Z")
    );
    let eve = ms("2026-12-31T23:58:00Z");
    assert_eq!(
        at(b"<13>Jan  1 00:01:00 h a: x", eve),
        ms("2027-01-01T00:01:00Z")
    );
    // Two days ahead is not a clock skew: last year.
    assert_eq!(
        at(b"<13>Dec  6 16:00:00 h a: x", NOW),
        ms("2025-12-06T16:00:00Z")
    );
}

#[test]
fn rfc3164_timezone_setting() {
    let settings = SyslogSettings {
        rfc3164_offset_secs: 8 * 3600,
        ..SyslogSettings::default()
    };
    let (r, _) = decode_with(settings, &[b"<13>Dec  4 23:30:00 h a: x"], false);
    assert_eq!(r[0].time, ms("2026-12-04T15:30:00Z"));
    // RFC 5424 carries its own offset: the setting does not apply.
    let (r, _) = decode_with(
        settings,
        &[b"<13>1 2026-12-04T15:30:00Z h a - - - x"],
        false,
    );
    assert_eq!(r[0].time, ms("2026-12-04T15:30:00Z"));
}

#[test]
fn unparsable_lines_are_kept_whole() {
    let (r, counts) = decode(&[
        b"just some text",
        b"<11>no header at all",
        b"<999>bad pri",
        b"",
    ]);
    assert_eq!(counts.unparsed, 4);
    assert_eq!(counts.lines, 4);
    assert_eq!(r[0].body, "just some text");
    assert_eq!(r[0].severity, "info");
    assert_eq!(r[0].attrs["syslog.facility"], "user");
    assert_eq!(r[0].attrs["syslog.severity"], "5");
    assert_eq!(r[0].attrs["syslog.format"], "unparsed");
    assert_eq!(r[0].labels["host"], "192.0.2.7");
    assert_eq!(r[0].time, NOW);
    assert_eq!(r[1].body, "no header at all");
    assert_eq!(r[1].severity, "error");
    assert_eq!(r[2].body, "<999>bad pri");
    assert_eq!(r[3].body, "");
}

#[test]
fn garbage_bytes_never_fail_and_are_escaped() {
    let line: &[u8] = b"<13>1 2026-12-04T15:00:00Z h\x00st ap\x07p - - - bad \xff\xfe utf8 and a \x00 NUL\x1b[31m";
    let (r, _) = decode(&[line, b"\x00\x00\x00", b"\xff\xff\xff\n"]);
    assert_eq!(r[0].labels["host"], "h#000st");
    assert_eq!(r[0].labels["service"], "ap#007p");
    assert_eq!(
        r[0].body,
        "bad \u{fffd}\u{fffd} utf8 and a #000 NUL#033[31m"
    );
    assert_eq!(r[1].body, "");
    assert_eq!(r[2].body, "\u{fffd}\u{fffd}\u{fffd}");
    for row in &r {
        assert!(!row.body.contains('\0'));
        assert!(
            row.labels
                .values()
                .chain(row.attrs.values())
                .all(|v| !v.contains('\0'))
        );
    }
    // Arbitrary bytes: every one becomes a row.
    let mut seed: u64 = 7;
    let mut lines = Vec::new();
    for n in 0..500 {
        let len = n % 300;
        let line: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let b = (seed >> 33) as u8;
                // Bias towards syslog-looking bytes so headers get half parsed.
                match b % 8 {
                    0 => b'<',
                    1 => b'>',
                    2 => b' ',
                    3 => b'0' + b % 10,
                    _ => b,
                }
            })
            .collect();
        lines.push(line);
    }
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let (r, counts) = decode(&refs);
    assert_eq!(r.len(), 500);
    assert_eq!(counts.lines, 500);
}

#[test]
fn times_outside_the_window_become_the_receive_time() {
    let (r, counts) = decode(&[
        b"<13>1 1970-01-01T00:00:00Z router a - - - clock never set",
        b"<13>1 2099-01-01T00:00:00Z router a - - - clock far ahead",
    ]);
    assert_eq!(counts.time_replaced, 2);
    assert_eq!(r[0].time, NOW);
    assert_eq!(r[0].attrs["syslog.timestamp"], "1970-01-01T00:00:00+00:00");
    assert_eq!(r[1].time, NOW);
    assert!(r[1].attrs["syslog.timestamp"].starts_with("2099-01-01"));
}

#[test]
fn oversized_names_and_many_structured_data_params_are_bounded() {
    let long_host = "h".repeat(20_000);
    let line = format!("<13>1 2026-12-04T15:00:00Z {long_host} app - - - msg");
    let (r, counts) = decode(&[line.as_bytes()]);
    assert_eq!(counts.unparsed, 1, "a host no query can use: kept whole");
    assert_eq!(r[0].labels["host"], "192.0.2.7");
    assert!(r[0].body.contains("msg"));

    let params: String = (0..500).map(|i| format!(" p{i}=\"{i}\"")).collect();
    let line = format!("<13>1 2026-12-04T15:00:00Z h app - - [big@1{params}][big@1 p0=\"dup\"] x");
    let (r, _) = decode(&[line.as_bytes()]);
    let sd = r[0].attrs.keys().filter(|k| k.starts_with("sd.")).count();
    assert_eq!(sd, IngestLimits::default().max_labels);
    assert_eq!(
        r[0].attrs["sd.big@1.p0"], "0",
        "the first of a repeated name is kept"
    );
}

#[test]
fn truncated_frames_are_marked_and_counted() {
    let (r, counts) = decode_with(
        SyslogSettings::default(),
        &[b"<13>1 2026-12-04T15:00:00Z h a - - - xxxxx", b"not syslog"],
        true,
    );
    assert_eq!(counts.truncated, 2);
    assert_eq!(r[0].attrs["syslog.truncated"], "true");
    assert_eq!(r[1].attrs["syslog.truncated"], "true");
}

#[test]
fn empty_builder_finishes_to_nothing() {
    let mut b = SyslogBatchBuilder::new(SyslogSettings::default());
    let (batch, counts) = b.finish().unwrap();
    assert!(batch.is_none());
    assert_eq!(counts, LineCounts::default());
}

// ---- framing ----

/// Frames of `input` fed in chunks of `chunk` bytes, as (text, truncated), like a connection:
/// the consumed prefix is dropped after every pass.
fn frames(max: usize, input: &[u8], chunk: usize) -> (Vec<(String, bool)>, usize) {
    let mut f = Framer::new(max);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut peak = 0;
    let chunks: Vec<&[u8]> = input.chunks(chunk.max(1)).collect();
    for (i, c) in chunks.iter().enumerate() {
        buf.extend_from_slice(c);
        peak = peak.max(buf.len());
        let eof = i + 1 == chunks.len();
        let mut pos = 0;
        while let Some(fr) = f.next_frame(&buf, &mut pos, eof) {
            out.push((
                String::from_utf8_lossy(&buf[fr.range.clone()]).into_owned(),
                fr.truncated,
            ));
        }
        buf.drain(..pos);
    }
    (out, peak)
}

#[test]
fn lf_and_octet_counted_frames_mix_on_one_connection() {
    let input = b"<13>one\n10 <13>two\nxx\r\n<13>three\r\n\n5 <13>4\n2026-12-04 not counted\n";
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let (f, _) = frames(1024, input, chunk);
        let texts: Vec<&str> = f.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "<13>one",
                "<13>two\nxx",
                "<13>three",
                "<13>4",
                "2026-12-04 not counted"
            ],
            "chunk {chunk}"
        );
        assert!(f.iter().all(|(_, t)| !t));
    }
}

#[test]
fn the_last_unterminated_line_is_a_frame_at_eof() {
    let (f, _) = frames(100, b"<13>a\n<13>b", 4);
    assert_eq!(f, [("<13>a".into(), false), ("<13>b".into(), false)]);
    // An octet-counted frame cut short by the close is kept as far as it came, marked.
    let (f, _) = frames(100, b"20 <13>short", 3);
    assert_eq!(f, [("<13>short".into(), true)]);
}

#[test]
fn long_lf_lines_are_cut_and_the_rest_skipped_without_buffering() {
    let mut input = vec![b'a'; 1_000_000];
    input.push(b'\n');
    input.extend_from_slice(b"<13>next\n");
    for chunk in [4096, 65_536] {
        let (f, peak) = frames(1000, &input, chunk);
        assert_eq!(f.len(), 2, "chunk {chunk}");
        assert_eq!(f[0], ("a".repeat(1000), true));
        assert_eq!(f[1], ("<13>next".into(), false));
        assert!(peak <= 1000 + chunk, "buffered {peak} bytes");
    }
    // A line of exactly the limit is whole.
    let (f, _) = frames(5, b"abcde\nabcdef\n", 2);
    assert_eq!(f, [("abcde".into(), false), ("abcde".into(), true)]);
}

#[test]
fn long_octet_counted_frames_are_cut_and_the_rest_skipped() {
    let body = vec![b'b'; 1_000_000];
    let mut input = format!("{} ", body.len()).into_bytes();
    input.extend_from_slice(&body);
    input.extend_from_slice(b"9 <13>after");
    for chunk in [4096, 65_536] {
        let (f, peak) = frames(1000, &input, chunk);
        assert_eq!(f.len(), 2, "chunk {chunk}");
        assert_eq!(f[0], ("b".repeat(1000), true));
        assert_eq!(f[1], ("<13>after".into(), false));
        assert!(peak <= 1000 + 16 + chunk, "buffered {peak} bytes");
    }
}

#[test]
fn digit_runs_that_are_not_lengths_are_lines() {
    // More than 10 digits, or digits not followed by a space: an LF line.
    let (f, _) = frames(100, b"12345678901 x\n0 zero\n42abc\n", 5);
    let texts: Vec<&str> = f.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["12345678901 x", "0 zero", "42abc"]);
}
