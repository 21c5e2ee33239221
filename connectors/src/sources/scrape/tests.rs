//! The text-format parser on node_exporter-style input, and a scrape of a local HTTP server.

use super::*;
use crate::outbound::OutboundPolicy;
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BODY: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
node_cpu_seconds_total{cpu="0",mode="user"} 89.5
node_filesystem_avail_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 5.4e+10
weird_label{path="C:\\dir",quote="say \"hi\"",nl="a\nb",} 1 1700000000000
http_request_duration_seconds_bucket{le="+Inf"} 10
node_load1 NaN
go_goroutines +Inf
"#;

#[test]
fn parses_exposition_with_escapes() {
    let s = parse_text(BODY).unwrap();
    assert_eq!(s.len(), 7);
    assert_eq!(s[0].name, "node_cpu_seconds_total");
    assert_eq!(
        s[0].labels,
        vec![("cpu".into(), "0".into()), ("mode".into(), "idle".into())]
    );
    assert_eq!(s[2].value, 5.4e10);
    assert_eq!(s[3].labels[0].1, "C:\\dir");
    assert_eq!(s[3].labels[1].1, "say \"hi\"");
    assert_eq!(s[3].labels[2].1, "a\nb");
    assert_eq!(s[3].timestamp_ms, Some(1_700_000_000_000));
    assert!(s[5].value.is_nan());
    assert_eq!(s[6].value, f64::INFINITY);
}

#[test]
fn reports_bad_lines() {
    for (body, line) in [
        ("ok 1\nbad{ 1", 2),
        ("x{a=\"1\"} notanumber", 1),
        ("x{a=1} 1", 1),
        ("{a=\"b\"} 1", 1),
        ("x 1 2 3", 1),
    ] {
        assert_eq!(parse_text(body).unwrap_err().line, line, "{body}");
    }
}

#[tokio::test]
async fn scrapes_a_target_and_marks_down_ones() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = ScrapeConfig {
        job: "node".into(),
        targets: vec![addr.to_string(), dead.to_string()],
        interval: std::time::Duration::from_millis(200),
        timeout: std::time::Duration::from_secs(2),
        metrics_path: "/metrics".into(),
        labels: [("env".to_string(), "test".to_string())].into(),
    };
    // Loopback targets are reached only when the allow list names them.
    let mut src = cfg
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap();
    let out = src.next_batch().await.unwrap().unwrap();
    let b = &out[0].batch;
    assert_eq!(b.num_rows(), 7 + 2, "seven samples and one `up` per target");
    let names = b.column(1).as_string::<i32>();
    let values = b
        .column(3)
        .as_primitive::<aiops_schemas::arrow_array::types::Float64Type>();
    let ups: Vec<f64> = (0..b.num_rows())
        .filter(|&i| names.value(i) == "up")
        .map(|i| values.value(i))
        .collect();
    assert_eq!(ups, vec![1.0, 0.0]);
    let labels = b.column(2).as_map();
    let first = labels.value(0);
    let keys = first.column(0).as_string::<i32>();
    let got: Vec<&str> = (0..keys.len()).map(|i| keys.value(i)).collect();
    assert_eq!(got, vec!["cpu", "mode", "job", "instance", "env"]);
}

#[test]
fn config_errors_are_listed() {
    let cfg = ScrapeConfig {
        job: String::new(),
        targets: vec![],
        interval: std::time::Duration::from_millis(1),
        timeout: std::time::Duration::from_secs(1),
        metrics_path: "/metrics".into(),
        labels: Default::default(),
    };
    let e = cfg.build().err().unwrap().to_string();
    assert!(
        e.contains("job") && e.contains("targets") && e.contains("interval"),
        "{e}"
    );
}

fn scrape_of(targets: &[&str]) -> ScrapeConfig {
    ScrapeConfig {
        job: "probe".into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        interval: std::time::Duration::from_millis(200),
        timeout: std::time::Duration::from_secs(2),
        metrics_path: "/metrics".into(),
        labels: Default::default(),
    }
}

#[test]
fn metadata_and_private_targets_are_refused_when_built_and_allowed_when_listed() {
    let cases = [
        ("169.254.169.254", "cloud metadata"),
        ("0xa9fea9fe", "cloud metadata"),
        ("2852039166", "cloud metadata"),
        ("[::ffff:169.254.169.254]", "cloud metadata"),
        ("metadata.google.internal", "cloud metadata"),
        ("[fd00:ec2::254]", "cloud metadata"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("10.0.0.5:9100", "private"),
        ("127.0.0.1:9100", "loopback"),
        ("[fe80::1]:9100", "link-local"),
    ];
    for (target, class) in cases {
        let e = scrape_of(&[target])
            .build()
            .err()
            .unwrap_or_else(|| panic!("{target} must be refused"))
            .to_string();
        assert!(
            e.contains(class) && e.contains("outbound.allow"),
            "{target}: {e}"
        );
    }
    // Listed in the allow list: accepted.
    let allow = OutboundPolicy::allowing([
        "169.254.169.254",
        "fd00:ec2::254",
        "metadata.google.internal",
    ]);
    for target in [
        "169.254.169.254",
        "0xa9fea9fe",
        "2852039166",
        "[::ffff:169.254.169.254]",
        "metadata.google.internal",
        "[fd00:ec2::254]",
    ] {
        assert!(scrape_of(&[target]).build_with(&allow).is_ok(), "{target}");
    }
    // Public targets need no entry.
    assert!(scrape_of(&["192.0.43.10:9100"]).build().is_ok());
}

/// A name (from /etc/hosts) that resolves to loopback, for the after-DNS check; `None` when the
/// machine has none besides `localhost` (which the guard refuses by name already).
fn name_resolving_to_loopback() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let ip: std::net::IpAddr = f.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        f.find(|n| !n.starts_with('#') && !n.contains("localhost"))
            .map(str::to_string)
    })
}

#[tokio::test]
async fn a_name_resolving_to_a_refused_address_is_refused_when_scraped() {
    let Some(name) = name_resolving_to_loopback() else {
        eprintln!("no /etc/hosts name for 127.0.0.1 besides localhost; skipped");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nx 1\n",
                )
                .await;
        }
    });
    let target = format!("{name}:{port}");
    // Not a literal address: saving it is fine, the check happens after resolution.
    let mut src = scrape_of(&[&target]).build().unwrap();
    let out = src.next_batch().await.unwrap().unwrap();
    assert_eq!(out[0].batch.num_rows(), 1, "only `up`");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was sent"
    );
    // Listed: scraped.
    let mut src = scrape_of(&[&target])
        .build_with(&OutboundPolicy::allowing([name.as_str()]))
        .unwrap();
    let out = src.next_batch().await.unwrap().unwrap();
    assert_eq!(out[0].batch.num_rows(), 2, "the sample and `up`");
}
