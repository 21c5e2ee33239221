//! Outbound safety: the one way aiops reaches the network over HTTP — workflow providers, scrape
//! and every other pull source, data source tests and the Grafana client, all with the same
//! allow list (`[outbound] allow`, merged with `[workflows] outbound_allow`).
//!
//! By default a target is refused when it is loopback, private (10/8, 172.16/12, 192.168/16,
//! fc00::/7), link-local (169.254/16, fe80::/10), cloud metadata (169.254.169.254,
//! fd00:ec2::254, `metadata.google.internal`), unspecified, carrier-grade NAT (100.64/10),
//! multicast or reserved, including IPv6 forms embedding such an IPv4 address
//! (`::ffff:127.0.0.1`). [`OutboundPolicy::allow`] lists the exceptions (see [`allow`] for the
//! entry forms). The check holds at three points, so neither a clever literal nor DNS rebinding
//! nor a redirect gets around it:
//! 1. the URL ([`OutboundPolicy::check_url`]), after the `url` crate's WHATWG parsing, which turns
//!    `http://2130706433/`, `http://0x7f.1/` and `http://[::ffff:127.0.0.1]/` into the addresses
//!    they denote;
//! 2. the addresses a name resolves to ([`resolve`]): the client's resolver drops refused
//!    addresses, so the address checked is the address connected to;
//! 3. every redirect hop (at most 5), with the same URL check.
//!
//! The client also ignores proxy environment variables: a proxy would resolve names itself and
//! bypass point 2.

pub mod allow;

mod addr;
mod resolve;
mod tls;

#[cfg(test)]
mod tests;

use crate::sinks::SinkError;
use allow::{AllowList, NameVerdict, normalize_name};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Names refused by default before any DNS lookup (they resolve to local or metadata addresses).
const DENIED_NAMES: &[&str] = &["localhost", "metadata.google.internal", "metadata"];

/// At most this many redirects are followed.
pub const MAX_REDIRECTS: usize = 5;

/// Where providers may send requests.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundPolicy {
    /// Explicit exceptions to the default refusal of non-public targets: host names (`*.suffix`
    /// for subdomains), `host:port`, IPs, `ip:port`, `[ipv6]:port` or CIDRs.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Why the guard refused a target. Carried inside reqwest errors (resolver, redirect policy) and
/// found again by [`crate::sinks::transport`] to produce [`SinkError::Refused`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

/// The compiled policy shared by the URL check, the resolver and the redirect policy.
#[derive(Debug)]
pub(crate) struct Guard {
    allow: AllowList,
}

impl Guard {
    fn new(policy: &OutboundPolicy) -> Result<Self, SinkError> {
        let allow = AllowList::parse(&policy.allow).map_err(SinkError::Config)?;
        Ok(Guard { allow })
    }

    /// Checks a parsed URL: scheme, host and port. Names not refused by name are checked again
    /// when resolved.
    pub(crate) fn check(&self, url: &url::Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal(format!(
                "scheme {:?} is not allowed (http or https only)",
                url.scheme()
            )));
        }
        let port = url.port_or_known_default();
        match url.host() {
            None => Err(Refusal("URL has no host".into())),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), port),
            Some(url::Host::Domain(name)) => {
                let name = normalize_name(name);
                match self.allow.name_verdict(&name, port) {
                    NameVerdict::Allowed => Ok(()),
                    NameVerdict::OtherPortsOnly => Err(Refusal(format!(
                        "host {name} is allowed only on other ports"
                    ))),
                    NameVerdict::NotListed => {
                        let denied =
                            DENIED_NAMES.contains(&name.as_str()) || name.ends_with(".localhost");
                        if denied {
                            Err(Refusal(format!(
                                "host {name} is local or cloud metadata and not in outbound.allow"
                            )))
                        } else {
                            Ok(())
                        }
                    }
                }
            }
        }
    }

    /// Checks one address; `port` is `None` after DNS resolution.
    pub(crate) fn check_ip(&self, ip: IpAddr, port: Option<u16>) -> Result<(), Refusal> {
        match addr::non_public_class(ip) {
            None => Ok(()),
            Some(_) if self.allow.allows_ip(ip, port) => Ok(()),
            Some(class) => Err(Refusal(format!(
                "{ip} is a {class} address and not in outbound.allow"
            ))),
        }
    }

    /// Whether a resolved name is allowed as a whole (then all its addresses are).
    pub(crate) fn name_allowed(&self, name: &str) -> bool {
        self.allow.name_verdict(&normalize_name(name), None) == NameVerdict::Allowed
    }
}

impl OutboundPolicy {
    /// A policy allowing exactly these entries besides public addresses.
    pub fn allowing<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OutboundPolicy {
            allow: entries.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses `url` and checks it against the policy (scheme, literal addresses in every form the
    /// URL parser accepts, local names).
    ///
    /// # Errors
    /// [`SinkError::Params`] (field `url`) when it does not parse; [`SinkError::Refused`] when the
    /// policy refuses it; [`SinkError::Config`] when the allow list is malformed. Messages name
    /// at most the host.
    pub fn check_url(&self, url: &str) -> Result<url::Url, SinkError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| SinkError::params("url", format!("not a valid absolute URL: {e}")))?;
        Guard::new(self)?
            .check(&parsed)
            .map_err(|r| SinkError::refused(r.0))?;
        Ok(parsed)
    }

    /// Save-time check of a URL someone configured (a scrape target, a data source, a workflow
    /// step): parses it and applies the same rules as [`OutboundPolicy::check_url`], with an
    /// error that does not depend on the sinks.
    ///
    /// # Errors
    /// [`OutboundError`] naming the host and the address class (e.g. "169.254.169.254 is a
    /// cloud metadata address and not in outbound.allow").
    pub fn check(&self, url: &str) -> Result<url::Url, OutboundError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| OutboundError::InvalidUrl(format!("not a valid absolute URL: {e}")))?;
        let guard = Guard::new(self).map_err(|e| OutboundError::AllowList(e.to_string()))?;
        guard
            .check(&parsed)
            .map_err(|r| OutboundError::Refused(r.0))?;
        Ok(parsed)
    }

    /// An HTTP client that enforces this policy on resolution and on every redirect, with a
    /// whole-request `timeout`, HTTP/1.1, rustls (ring) and the system's CA store, no proxy.
    ///
    /// Callers still check each request's URL with [`OutboundPolicy::check_url`] first (the
    /// resolver is not consulted for IP literals).
    ///
    /// # Errors
    /// [`SinkError::Config`] when the allow list is malformed or the client cannot be built.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, SinkError> {
        self.client_with_tls(timeout, tls::client_config()?)
    }

    /// Like [`OutboundPolicy::client`], trusting also the CA certificates in `ca_pem` (PEM): a
    /// private CA such as a Kubernetes cluster's `ca.crt`.
    ///
    /// # Errors
    /// [`SinkError::Config`] when `ca_pem` holds no usable certificate, the allow list is
    /// malformed or the client cannot be built.
    pub fn client_with_ca(
        &self,
        timeout: Duration,
        ca_pem: &[u8],
    ) -> Result<reqwest::Client, SinkError> {
        self.client_with_tls(timeout, tls::client_config_with_ca(ca_pem)?)
    }

    fn client_with_tls(
        &self,
        timeout: Duration,
        tls_config: rustls::ClientConfig,
    ) -> Result<reqwest::Client, SinkError> {
        let guard = Arc::new(Guard::new(self)?);
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(resolve::redirect_policy(guard.clone()))
            .dns_resolver(Arc::new(resolve::GuardedResolver::new(guard)))
            .no_proxy()
            .tls_backend_preconfigured(tls_config)
            .user_agent(concat!("aiops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::Config(format!("cannot build the HTTP client: {e}")))
    }
}

impl OutboundPolicy {
    /// The addresses of a non-HTTP target (`host`, `port`: a database) the policy allows, for
    /// a connection to one of them: the same rules as a URL `http://host:port/` (the name or
    /// literal first), then every resolved address checked like the HTTP client's resolver
    /// does (a name listed in the allow list allows all its addresses), so the address
    /// connected to is an address that was checked.
    ///
    /// # Errors
    /// [`OutboundError::Refused`] naming the host and the address class, or when the name does
    /// not resolve; [`OutboundError::InvalidUrl`] for a host that is not a host name or address;
    /// [`OutboundError::AllowList`] for a malformed allow list.
    pub async fn resolve_target(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<std::net::SocketAddr>, OutboundError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let url = match literal.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("http://[{ip}]:{port}/"),
            Ok(IpAddr::V4(ip)) => format!("http://{ip}:{port}/"),
            Err(_) => format!("http://{host}:{port}/"),
        };
        let parsed = self.check(&url)?;
        let guard = Guard::new(self).map_err(|e| OutboundError::AllowList(e.to_string()))?;
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![std::net::SocketAddr::new(ip, port)]);
        }
        let name = parsed.host_str().unwrap_or(host).to_owned();
        let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| OutboundError::Refused(format!("host {name} does not resolve: {e}")))?
            .collect();
        let whole_name = guard.name_allowed(&name);
        let mut first_refusal = None;
        let kept: Vec<std::net::SocketAddr> = found
            .into_iter()
            .filter(|a| {
                whole_name
                    || guard
                        .check_ip(a.ip(), None)
                        .map_err(|r| first_refusal.get_or_insert(r.0))
                        .is_ok()
            })
            .collect();
        if kept.is_empty() {
            return Err(OutboundError::Refused(match first_refusal {
                Some(r) => format!("host {name} resolves to {r}"),
                None => format!("host {name} has no addresses"),
            }));
        }
        Ok(kept)
    }
}

/// Why [`OutboundPolicy::check`] refused a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL does not parse; whoever configured it must fix it.
    #[error("{0}")]
    InvalidUrl(String),
    /// The target is not public and not in the allow list; the operator must list it in
    /// `[outbound] allow` if it is meant to be reached.
    #[error("{0}")]
    Refused(String),
    /// The allow list itself is malformed; the operator must fix `[outbound] allow`.
    #[error("{0}")]
    AllowList(String),
}

/// The guard's reason when `err` (e.g. a `reqwest::Error` from a guarded client) failed because
/// the guard refused the target after DNS resolution or on a redirect.
pub fn refusal_reason(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}
