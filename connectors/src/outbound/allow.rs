//! The parsed `allow` list of an [`super::OutboundPolicy`] and how an entry matches.
//!
//! Entry forms:
//! - `name` (e.g. `grafana.internal`, `localhost`) or `*.suffix`: the name on any port, and every
//!   address it resolves to;
//! - `name:port`: the name on that port only (other ports of that name are refused);
//! - an IP (`10.1.2.3`, `::1`) or a CIDR (`10.0.0.0/8`, `fd00::/8`): those addresses on any port,
//!   as a URL literal or as the result of resolving any name;
//! - `ip:port` or `[ipv6]:port`: that literal address on that port only. It cannot match an
//!   address a name resolved to, because the resolver does not learn the port.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// One parsed entry.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// A host name (lowercase, no trailing dot); `wildcard` means `*.name` (subdomains only).
    Name {
        name: String,
        wildcard: bool,
        port: Option<u16>,
    },
    /// Addresses, optionally one port.
    Net { net: IpNet, port: Option<u16> },
}

/// The parsed allow list.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AllowList {
    entries: Vec<Entry>,
}

/// Lowercases and drops a trailing dot, so `LocalHost.` and `localhost` are one name.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl AllowList {
    /// Parses every entry; the error names the first bad one.
    pub(crate) fn parse(items: &[String]) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            entries.push(parse_entry(item.trim()).ok_or_else(|| {
                format!(
                    "outbound.allow entry {item:?} is not a host, host:port, IP, IP:port or CIDR"
                )
            })?);
        }
        Ok(AllowList { entries })
    }

    /// Whether `ip` is allowed; `port` is `None` when unknown (after DNS resolution), and then
    /// only port-less entries match.
    pub(crate) fn allows_ip(&self, ip: IpAddr, port: Option<u16>) -> bool {
        let ip = canonical(ip);
        self.entries.iter().any(|e| match e {
            Entry::Net { net, port: p } => {
                net.contains(&ip) && (p.is_none() || (port.is_some() && *p == port))
            }
            Entry::Name { .. } => false,
        })
    }

    /// How the list treats host `name` (normalized) on `port` (`None`: any port it allows).
    pub(crate) fn name_verdict(&self, name: &str, port: Option<u16>) -> NameVerdict {
        let mut listed_on_other_port = false;
        for e in &self.entries {
            if let Entry::Name {
                name: n,
                wildcard,
                port: p,
            } = e
            {
                let hit = if *wildcard {
                    name.len() > n.len() + 1
                        && name.ends_with(n.as_str())
                        && name.as_bytes()[name.len() - n.len() - 1] == b'.'
                } else {
                    name == n
                };
                if !hit {
                    continue;
                }
                match (p, port) {
                    (None, _) | (Some(_), None) => return NameVerdict::Allowed,
                    (Some(p), Some(port)) if *p == port => return NameVerdict::Allowed,
                    _ => listed_on_other_port = true,
                }
            }
        }
        if listed_on_other_port {
            NameVerdict::OtherPortsOnly
        } else {
            NameVerdict::NotListed
        }
    }
}

/// What the allow list says about a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameVerdict {
    /// Listed (for this port): the name and everything it resolves to are allowed.
    Allowed,
    /// Listed, but only with other ports: refused on this one.
    OtherPortsOnly,
    /// Not listed: the default rules apply.
    NotListed,
}

/// IPv4-mapped IPv6 addresses are compared as IPv4, so `127.0.0.1` in `allow` matches both forms.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn parse_entry(item: &str) -> Option<Entry> {
    if item.is_empty() {
        return None;
    }
    if let Ok(net) = item.parse::<IpNet>() {
        return Some(Entry::Net {
            net: net.trunc(),
            port: None,
        });
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(Entry::Net {
            net: IpNet::from(canonical(ip)),
            port: None,
        });
    }
    if let Ok(sa) = item.parse::<SocketAddr>() {
        return Some(Entry::Net {
            net: IpNet::from(canonical(sa.ip())),
            port: Some(sa.port()),
        });
    }
    let (host, port) = match item.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
        None => (item, None),
    };
    let (host, wildcard) = match host.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (host, false),
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then(|| Entry::Name {
        name: normalize_name(host),
        wildcard,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::{AllowList, NameVerdict};

    fn list(items: &[&str]) -> AllowList {
        AllowList::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_match() {
        let l = list(&[
            "127.0.0.1:8080",
            "10.0.0.0/8",
            "grafana.internal",
            "*.corp",
            "db:5432",
        ]);
        assert!(l.allows_ip("127.0.0.1".parse().unwrap(), Some(8080)));
        assert!(l.allows_ip("::ffff:127.0.0.1".parse().unwrap(), Some(8080)));
        assert!(!l.allows_ip("127.0.0.1".parse().unwrap(), Some(8081)));
        assert!(!l.allows_ip("127.0.0.1".parse().unwrap(), None));
        assert!(l.allows_ip("10.9.8.7".parse().unwrap(), None));
        assert_eq!(
            l.name_verdict("grafana.internal", Some(3000)),
            NameVerdict::Allowed
        );
        assert_eq!(l.name_verdict("a.b.corp", Some(1)), NameVerdict::Allowed);
        assert_eq!(l.name_verdict("corp", Some(1)), NameVerdict::NotListed);
        assert_eq!(l.name_verdict("xcorp", Some(1)), NameVerdict::NotListed);
        assert_eq!(l.name_verdict("db", Some(5432)), NameVerdict::Allowed);
        assert_eq!(l.name_verdict("db", Some(22)), NameVerdict::OtherPortsOnly);
        assert_eq!(l.name_verdict("other", None), NameVerdict::NotListed);
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in ["", "host:notaport", "a b", "http://x/"] {
            assert!(AllowList::parse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }
}
