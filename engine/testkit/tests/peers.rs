//! Each peer starts on a free port and answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_testkit::*;
use std::net::SocketAddr;

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_start_matches("nats://")
        .parse()
        .unwrap()
}

#[test]
fn nats_with_and_without_jetstream() {
    let n = NatsServer::start().unwrap();
    let (code, body) = http_get(addr(&n.monitor_url()), "/jsz").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("\"config\""), "{body}");
    let plain = NatsServer::start_without_jetstream().unwrap();
    let (_, body) = http_get(addr(&plain.monitor_url()), "/jsz").unwrap();
    assert!(!body.contains("\"store_dir\""), "{body}");
}

#[test]
fn prometheus_node_exporter_alertmanager() {
    let ne = NodeExporter::start().unwrap();
    let (code, body) = http_get(ne.addr().parse().unwrap(), "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("node_cpu_seconds_total"));
    let mut p = Prometheus::start("global:\n  scrape_interval: 1s\n", &[]).unwrap();
    assert_eq!(http_get(addr(&p.url()), "/-/ready").unwrap().0, 200);
    p.stop();
    let am = Alertmanager::start("route:\n  receiver: r\nreceivers:\n  - name: r\n").unwrap();
    assert_eq!(http_get(addr(&am.url()), "/-/ready").unwrap().0, 200);
}

#[test]
fn missing_binary_names_the_package() {
    let e = require_binary("definitely-not-installed-xyz").unwrap_err();
    assert!(e.contains("Debian package"), "{e}");
}

#[test]
fn nats_version_and_restart_keeps_port_and_store() {
    let (major, minor, _) = nats_server_version().unwrap();
    assert!(major >= 2, "{major}.{minor}");
    let mut n = NatsServer::start().unwrap();
    let url = n.url();
    let store = n.store_dir();
    n.kill9();
    assert!(std::net::TcpStream::connect(addr(&url)).is_err(), "killed");
    n.restart().unwrap();
    assert_eq!(n.url(), url);
    assert_eq!(n.store_dir(), store);
    assert!(std::net::TcpStream::connect(addr(&url)).is_ok());
    // sync_interval: always exists from 2.10 on; older servers get a clear error, not a hang.
    match NatsServer::start_sync_always() {
        Ok(s) => assert!((major, minor) >= (2, 10), "{}", s.url()),
        Err(e) => {
            assert!((major, minor) < (2, 10));
            assert!(e.to_string().contains("sync_interval"), "{e}");
        }
    }
}
