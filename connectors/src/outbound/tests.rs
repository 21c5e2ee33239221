//! The outbound guard: literals in every form, names, DNS results and redirect hops, each refused
//! by default and allowed only when listed.

use super::OutboundPolicy;
use crate::sinks::SinkError;
use crate::sinks::testing::{MockServer, reply};
use std::time::Duration;

fn refused(policy: &OutboundPolicy, url: &str) -> bool {
    matches!(policy.check_url(url), Err(SinkError::Refused { .. }))
}

#[test]
fn literals_and_local_names_are_refused_by_default() {
    let p = OutboundPolicy::default();
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/x",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.0.1/",
        "http://100.64.1.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://app.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        assert!(refused(&p, url), "{url} should be refused");
    }
    for url in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
    ] {
        assert!(refused(&p, url), "{url}");
    }
    assert!(p.check_url("https://hooks.slack.com/services/x").is_ok());
    assert!(p.check_url("https://8.8.8.8/").is_ok());
    let e = p.check_url("not a url").unwrap_err();
    assert!(matches!(e, SinkError::Params { .. }), "{e}");
}

#[test]
fn listed_entries_allow_exactly_what_they_name() {
    let p = OutboundPolicy::allowing(["127.0.0.1:8080", "10.0.0.0/8", "localhost", "[::1]:9000"]);
    assert!(p.check_url("http://127.0.0.1:8080/").is_ok());
    assert!(
        p.check_url("http://2130706433:8080/").is_ok(),
        "same address in another form"
    );
    assert!(refused(&p, "http://127.0.0.1:8081/"));
    assert!(p.check_url("http://10.200.0.1/").is_ok());
    assert!(!refused(&p, "http://11.0.0.1.internal/"));
    assert!(p.check_url("http://localhost:1234/").is_ok());
    assert!(p.check_url("http://[::1]:9000/").is_ok());
    assert!(refused(&p, "http://[::1]:9001/"));
    assert!(refused(&p, "http://169.254.169.254/"));
    let named_port = OutboundPolicy::allowing(["db.internal:5432"]);
    assert!(named_port.check_url("http://db.internal:5432/").is_ok());
    assert!(refused(&named_port, "http://db.internal:22/"));
    let bad = OutboundPolicy::allowing(["not a host"]);
    assert!(matches!(
        bad.check_url("https://example.com/"),
        Err(SinkError::Config(_))
    ));
}

async fn get(policy: &OutboundPolicy, url: &str) -> Result<u16, SinkError> {
    let sink = crate::sinks::transport::HttpSink::new(
        "test",
        &crate::sinks::ProviderContext {
            outbound: policy.clone(),
            timeout: Duration::from_secs(5),
        },
        vec![],
    )?;
    let u = sink.check_url("url", url)?;
    let host = crate::sinks::transport::host_of(&u);
    let req = sink.client().get(u);
    sink.send(req, &host, 1024).await.map(|r| r.status)
}

#[tokio::test]
async fn names_resolving_to_local_addresses_are_refused_after_dns() {
    let server = MockServer::start(|_| reply(200, "text/plain", "hi")).await;
    let port = server.addr.port();
    // `localhost` resolves to 127.0.0.1 (and ::1): refused by name, and by DNS result when the
    // name is not refused up front (trailing-dot and case forms are normalized too).
    let default = OutboundPolicy::default();
    let e = get(&default, &format!("http://localhost:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(e, SinkError::Refused { .. }), "{e}");
    // A name that is not on the deny list but resolves to loopback: refused by the resolver.
    // `localtest.me`-style names need the internet; `127.0.0.1.nip.io` likewise, so use the
    // resolver directly with a name the system resolves locally.
    let guard = std::sync::Arc::new(super::Guard::new(&default).unwrap());
    let resolver = super::resolve::GuardedResolver::new(guard);
    let name: reqwest::dns::Name = "localhost".parse().unwrap();
    let result = reqwest::dns::Resolve::resolve(&resolver, name).await;
    let err = result
        .err()
        .expect("localhost must be refused by the resolver");
    assert!(err.to_string().contains("loopback"), "{err}");
    // Allowed when listed: by address (any port) or by name.
    assert_eq!(
        get(
            &OutboundPolicy::allowing(["127.0.0.1"]),
            &format!("http://127.0.0.1:{port}/")
        )
        .await
        .unwrap(),
        200
    );
    assert_eq!(
        get(
            &OutboundPolicy::allowing(["localhost"]),
            &format!("http://localhost:{port}/")
        )
        .await
        .unwrap(),
        200
    );
    // Listing 127.0.0.0/8 allows the address a name resolves to, too.
    let cidr = OutboundPolicy::allowing(["127.0.0.0/8", "::1"]);
    let guard = std::sync::Arc::new(super::Guard::new(&cidr).unwrap());
    let resolver = super::resolve::GuardedResolver::new(guard);
    let addrs: Vec<_> = reqwest::dns::Resolve::resolve(&resolver, "localhost".parse().unwrap())
        .await
        .ok()
        .unwrap()
        .collect();
    assert!(!addrs.is_empty());
    // Without the listing the literal is refused before any connection.
    let e = get(&default, &format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(e, SinkError::Refused { .. }), "{e}");
    assert_eq!(
        server.requests().len(),
        2,
        "refused calls never reached the server"
    );
}

#[tokio::test]
async fn redirects_are_checked_on_every_hop() {
    let target = MockServer::start(|_| reply(200, "text/plain", "secret internal data")).await;
    let target_url = target.url("/internal");
    let meta = "http://169.254.169.254/latest/meta-data/".to_owned();
    let t2 = target_url.clone();
    let redirector = MockServer::start(move |r| {
        let to = match r.path.as_str() {
            "/to-other-port" => t2.clone(),
            "/to-metadata" => meta.clone(),
            "/to-localhost" => t2.replace("127.0.0.1", "localhost"),
            "/loop" => "/loop".to_owned(),
            _ => return reply(404, "text/plain", ""),
        };
        axum::response::Response::builder()
            .status(302)
            .header("location", to)
            .body(axum::body::Body::empty())
            .unwrap()
    })
    .await;
    // Only the redirector's own address:port is allowed.
    let only_redirector = OutboundPolicy::allowing([redirector.addr.to_string()]);
    for path in ["/to-other-port", "/to-metadata", "/to-localhost"] {
        let e = get(&only_redirector, &redirector.url(path))
            .await
            .unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{path}: {e}");
        assert!(e.to_string().contains("redirect"), "{path}: {e}");
    }
    assert!(
        target.requests().is_empty(),
        "the disallowed hop was never requested"
    );
    let e = get(&only_redirector, &redirector.url("/loop"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redirects"), "{e}");
    // Allowing 127.0.0.1 on every port lets the first hop through.
    let both = OutboundPolicy::allowing(["127.0.0.1"]);
    assert_eq!(
        get(&both, &redirector.url("/to-other-port")).await.unwrap(),
        200
    );
    assert_eq!(target.requests().len(), 1);
}

#[test]
fn the_tls_client_builds() {
    // rustls with the ring provider is wired (a missing provider would panic or fail here).
    let client = OutboundPolicy::default().client(Duration::from_secs(1));
    assert!(client.is_ok());
}
