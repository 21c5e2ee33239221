//! Syslog ingest through the real binary with a real peer: util-linux `logger` sends RFC 5424
//! and RFC 3164 over UDP, TCP (LF) and octet-counted TCP; the rows are read back through
//! `POST /api/sql`. Then the limits: a 1 MB line, a connection flood beyond
//! `syslog.max_connections`, an idle connection, garbage bytes — with bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, wait_until};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_port_both() -> u16 {
    loop {
        let p = aiops_testkit::free_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn start(dir: &std::path::Path, port: u16, extra: &[(&str, &str)]) -> Aiops {
    let addr = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("AIOPS__SYSLOG__UDP_LISTEN", addr.as_str()),
        ("AIOPS__SYSLOG__TCP_LISTEN", addr.as_str()),
        ("AIOPS__SYSLOG__BATCH_TIMEOUT", "50ms"),
    ];
    env.extend_from_slice(extra);
    Aiops::start_env(dir, "embedded", aiops_testkit::free_port(), &[], &env)
}

/// `POST /api/sql` with curl; the answer's rows.
fn sql(a: &Aiops, query: &str) -> Vec<Value> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(a.url("/api/sql"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(json!({ "sql": query }).to_string().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {v}"))
        .clone()
}

/// Rows whose body contains `marker`, with time as Unix ms.
fn rows_with(a: &Aiops, marker: &str) -> Vec<Value> {
    sql(
        a,
        &format!(
            "SELECT CAST(time AS BIGINT) AS t, severity, body, labels, attributes FROM logs \
             WHERE body LIKE '%{marker}%' ORDER BY time"
        ),
    )
}

// The test compares the engine's receive times with the wall clock.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn logger(port: u16, args: &[&str], message: &str) {
    let bin = aiops_testkit::require_binary("logger").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(bin)
        .args(["-n", "127.0.0.1", "-P", &port.to_string()])
        .args(args)
        .arg(message)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn attr<'a>(row: &'a Value, key: &str) -> &'a Value {
    &row["attributes"][key]
}

#[test]
fn logger_rfc5424_and_rfc3164_over_udp_tcp_and_octet_counting() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_both();
    let a = start(dir.path(), port, &[]);
    let run = format!("r{}", now_ms());
    let cases: [(&str, &[&str]); 6] = [
        ("u5424", &["-d", "--rfc5424"]),
        ("t5424", &["-T", "--rfc5424"]),
        ("o5424", &["-T", "--octet-count", "--rfc5424"]),
        ("u3164", &["-d", "--rfc3164"]),
        ("t3164", &["-T", "--rfc3164"]),
        ("o3164", &["-T", "--octet-count", "--rfc3164"]),
    ];
    let sent_at = now_ms();
    for (name, transport) in cases {
        let tag = format!("app-{name}");
        let mut args: Vec<&str> = transport.to_vec();
        args.extend_from_slice(&["-t", &tag, "-p", "local3.warning", "--id=4711"]);
        if name.ends_with("5424") {
            args.extend_from_slice(&[
                "--msgid",
                "ID47",
                "--sd-id",
                "origin@32473",
                "--sd-param",
                "team=\"payments\"",
            ]);
        }
        logger(port, &args, &format!("{run} {name} disk is almost full"));
    }
    let mut rows = Vec::new();
    wait_until(Duration::from_secs(30), "six syslog rows", || {
        rows = rows_with(&a, &run);
        rows.len() >= 6
    });
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let host = hostname();
    for (name, _) in cases {
        let row = rows
            .iter()
            .find(|r| r["body"].as_str().unwrap().contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {rows:#?}"));
        let is5424 = name.ends_with("5424");
        assert_eq!(
            row["body"],
            format!("{run} {name} disk is almost full"),
            "{row}"
        );
        assert_eq!(row["severity"], "warn", "{row}");
        assert_eq!(attr(row, "syslog.severity"), "4");
        assert_eq!(attr(row, "syslog.facility"), "local3");
        assert_eq!(row["labels"]["service"], format!("app-{name}"));
        let h = row["labels"]["host"].as_str().unwrap();
        assert!(
            h == host || host.starts_with(&format!("{h}.")),
            "host {h} vs {host}"
        );
        assert_eq!(attr(row, "syslog.procid"), "4711");
        assert_eq!(
            attr(row, "syslog.transport"),
            if name.starts_with('u') { "udp" } else { "tcp" }
        );
        assert!(
            attr(row, "syslog.peer")
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );
        assert_eq!(
            attr(row, "syslog.format"),
            if is5424 { "rfc5424" } else { "rfc3164" }
        );
        // The message's own time: within the test's run (3164 has whole seconds).
        let t = row["t"].as_i64().unwrap();
        assert!(
            t >= sent_at - 1000 && t <= now_ms(),
            "{name}: time {t} not in [{sent_at}, now]"
        );
        if is5424 {
            assert_eq!(attr(row, "syslog.msgid"), "ID47");
            assert_eq!(attr(row, "sd.origin@32473.team"), "payments");
            // logger's own structured data element.
            assert!(attr(row, "sd.timeQuality.tzKnown").is_string(), "{row}");
        } else {
            assert_eq!(t % 1000, 0, "RFC 3164 times are whole seconds");
            assert!(attr(row, "syslog.msgid").is_null());
        }
        assert!(attr(row, "syslog.truncated").is_null());
    }
    assert_eq!(
        a.metric("aiops_syslog_lines_received_total{transport=\"udp\"}"),
        2.0
    );
    assert_eq!(
        a.metric("aiops_syslog_lines_received_total{transport=\"tcp\"}"),
        4.0
    );
    assert!(a.metric("aiops_ingest_events_total{kind=\"logs\",source=\"syslog\"}") >= 6.0);
    assert_eq!(a.metric("aiops_syslog_unparsed_lines_total"), 0.0);
}

/// Resident memory of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn long_lines_floods_idle_connections_and_garbage_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_both();
    let a = start(
        dir.path(),
        port,
        &[
            ("AIOPS__SYSLOG__MAX_CONNECTIONS", "8"),
            ("AIOPS__SYSLOG__IDLE_TIMEOUT", "2s"),
        ],
    );
    let addr = format!("127.0.0.1:{port}");
    let run = format!("r{}", now_ms());

    // 1 MB lines, LF-framed and octet-counted, each followed by a normal message on the same
    // connection: the long ones are cut to max_line_bytes (64 KiB) and marked; the next message
    // is intact; memory stays bounded while 40 MB pass.
    let before = rss(a.pid());
    let mut c = TcpStream::connect(&addr).unwrap();
    let big = vec![b'x'; 1 << 20];
    for i in 0..20 {
        c.write_all(format!("<11>1 2026-12-04T10:00:00Z h app - - - {run} lf{i} ").as_bytes())
            .unwrap();
        c.write_all(&big).unwrap();
        c.write_all(format!("\n<14>1 - h app - - - {run} after-lf{i}\n").as_bytes())
            .unwrap();
        let body = [format!("<11>1 - h app - - - {run} oc{i} ").as_bytes(), &big].concat();
        c.write_all(format!("{} ", body.len()).as_bytes()).unwrap();
        c.write_all(&body).unwrap();
        let next = format!("<14>1 - h app - - - {run} after-oc{i}");
        c.write_all(format!("{} {next}", next.len()).as_bytes())
            .unwrap();
    }
    drop(c);
    let mut rows = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "80 rows of the long-line run",
        || {
            rows = rows_with(&a, &run);
            rows.len() >= 80
        },
    );
    assert_eq!(rows.len(), 80);
    let long: Vec<&Value> = rows
        .iter()
        .filter(|r| !r["body"].as_str().unwrap().contains("after-"))
        .collect();
    assert_eq!(long.len(), 40);
    for r in &long {
        assert_eq!(attr(r, "syslog.truncated"), "true", "{}", r["attributes"]);
        let len = r["body"].as_str().unwrap().len();
        assert!(len < 64 * 1024 && len > 60_000, "cut body of {len} bytes");
    }
    for r in rows
        .iter()
        .filter(|r| r["body"].as_str().unwrap().contains("after-"))
    {
        assert!(attr(r, "syslog.truncated").is_null());
        assert_eq!(r["severity"], "info");
    }
    assert_eq!(
        a.metric("aiops_syslog_truncated_lines_total{transport=\"tcp\"}"),
        40.0
    );
    let grown = rss(a.pid()).saturating_sub(before);
    assert!(
        grown < 100 << 20,
        "resident memory grew by {} MB for 40 MB of long lines",
        grown >> 20
    );

    // A flood of connections: 8 are served, the rest are closed at once and counted.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(format!("<13>1 - h app - - - {run} held\n").as_bytes())
            .unwrap();
        held.push(s);
    }
    let held_at = Instant::now();
    wait_until(Duration::from_secs(10), "8 connections open", || {
        a.metric("aiops_syslog_connections_open") == 8.0
    });
    let mut refused = 0;
    for _ in 0..40 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 16];
        // Closed by aiops at once: EOF (or a reset) instead of the 5 s read timeout.
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            refused += 1;
        }
    }
    assert_eq!(refused, 40);
    assert!(
        held_at.elapsed() < Duration::from_secs(2),
        "refusals must not wait for the idle timeout"
    );
    wait_until(
        Duration::from_secs(10),
        "40 refused connections counted",
        || a.metric("aiops_syslog_connections_refused_total") == 40.0,
    );
    assert!(common::http_get(&a.url("/api/health")).is_ok());

    // The 8 held connections send nothing more: each is closed after idle_timeout (2 s).
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        assert!(
            matches!(s.read(&mut b), Ok(0)),
            "an idle connection stays open"
        );
    }
    assert!(held_at.elapsed() >= Duration::from_millis(1900));
    wait_until(Duration::from_secs(10), "idle closes counted", || {
        a.metric("aiops_syslog_connections_closed_total{reason=\"idle\"}") >= 8.0
    });
    drop(held);

    // A slow sender that trickles bytes but never completes a message is closed too.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let trickle = Instant::now();
    let mut b = [0u8; 1];
    let mut closed = false;
    for byte in b"<13>1 - h app - - - never ends".iter().cycle().take(60) {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        slow.set_nonblocking(true).unwrap();
        let r = slow.read(&mut b);
        slow.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a trickling connection without a complete message stays open"
    );
    let after = trickle.elapsed();
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );

    // Garbage: NULs, invalid UTF-8, control bytes, a bad PRI — over TCP and UDP. Every message
    // becomes a row; the server stays up.
    let mut g = TcpStream::connect(&addr).unwrap();
    g.write_all(format!("{run} g1 \x00\x00 nul\n").as_bytes())
        .unwrap();
    g.write_all(
        &[
            &format!("<13>{run} g2 ").into_bytes()[..],
            b"\xff\xfe\xc3\x28 bad utf8\n",
        ]
        .concat(),
    )
    .unwrap();
    g.write_all(format!("<999>{run} g3 bad pri\n").as_bytes())
        .unwrap();
    g.write_all(format!("<13>1 2026-13-45T99:99:99Z h app - - - {run} g4 bad time\n").as_bytes())
        .unwrap();
    drop(g);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(format!("\x00\x1b[31m{run} g5\x00").as_bytes(), &addr)
        .unwrap();
    let mut rows = Vec::new();
    wait_until(Duration::from_secs(20), "five garbage rows", || {
        rows = rows_with(&a, &format!("{run} g"));
        rows.len() >= 5
    });
    let body = |tag: &str| -> String {
        rows.iter()
            .map(|r| r["body"].as_str().unwrap().to_string())
            .find(|b| b.contains(tag))
            .unwrap_or_else(|| panic!("no {tag}: {rows:#?}"))
    };
    assert_eq!(body("g1"), format!("{run} g1 #000#000 nul"));
    assert_eq!(
        body("g2"),
        format!("{run} g2 \u{fffd}\u{fffd}\u{fffd}( bad utf8")
    );
    assert_eq!(body("g3"), format!("<999>{run} g3 bad pri"));
    assert!(body("g4").contains("g4 bad time"));
    assert_eq!(body("g5"), format!("#000#033[31m{run} g5"));
    assert!(rows.iter().all(|r| attr(r, "syslog.format") == "unparsed"));
    assert!(common::http_get(&a.url("/api/health")).is_ok());
    let mut a = a;
    a.stop();
}
