//! The text-format parser on node_exporter-style input, and a scrape of a local HTTP server.

use super::*;
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
    let mut src = cfg.build().unwrap();
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
