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
    // sync_interval: always exists from 2.10 on: the newer binary runs it (the install script
    // provides one), and the server reports the setting.
    let s = NatsServer::start_sync_always().unwrap();
    let (_, varz) = http_get(addr(&s.monitor_url()), "/varz").unwrap();
    assert!(varz.contains("\"sync_always\": true"), "{varz}");
}

#[test]
fn newer_nats_server_is_installed() {
    let bin = newer_nats_server().unwrap_or_else(|e| panic!("{e}"));
    let (major, minor, _) = nats_server_version_of(&bin).unwrap();
    assert!(
        (major, minor) >= (2, 11),
        "{}: {major}.{minor}",
        bin.display()
    );
    let n = NatsServer::start_new().unwrap();
    assert_eq!(n.program(), bin);
}

#[test]
fn nats_cluster_elects_survives_kill_restart_and_pause() {
    let mut c = NatsCluster::start(3).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.urls().split(',').count(), 3);
    assert_eq!(c.urls().split(',').nth(1), Some(c.url(1).as_str()));
    let leader = c.meta_leader().unwrap();
    let li = c.index_of(&leader).unwrap();
    let (_, jsz) = http_get(addr(&c.monitor_url(li)), "/jsz").unwrap();
    assert!(jsz.contains("\"cluster_size\": 3"), "{jsz}");
    // The meta leader dies: the other two elect another.
    c.kill9(li);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.meta_leader().is_none_or(|l| l == leader) {
        assert!(std::time::Instant::now() < deadline, "no new meta leader");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let store = c.store_dir(li);
    c.restart(li).unwrap();
    c.wait_current(li).unwrap();
    assert_eq!(c.store_dir(li), store);
    // A paused server holds its port but answers nothing; resumed, it answers again.
    let other = (li + 1) % 3;
    c.stop_signal(other).unwrap();
    assert!(http_get(addr(&c.monitor_url(other)), "/healthz").is_err());
    c.cont_signal(other).unwrap();
    c.wait_current(other).unwrap();
}
