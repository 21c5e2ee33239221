//! Which IP addresses are not public: the classes an outbound call refuses unless allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a non-public address (`"loopback"`, `"private"`, …), or `None` when the address
/// is public. IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged
/// by the embedded address, so `::ffff:127.0.0.1` is loopback.
pub(crate) fn non_public_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "reserved",
        (198, 18..=19, _) => "reserved",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some("cloud metadata");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address inside: judge the IPv4 address, or a mapped 127.0.0.1
    // would pass as "some IPv6 address".
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let embedded_low = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated) ::a.b.c.d.
        return v4_class(embedded_low).or(Some("reserved"));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..3] == [0x64, 0xff9b, 1] {
        // NAT64 well-known and local-use prefixes.
        return v4_class(embedded_low);
    }
    if seg[0] == 0x2002 {
        // 6to4: the IPv4 address is in bits 16..48.
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return v4_class(v4);
    }
    let class = match seg[0] {
        0xfc00..=0xfdff => "private",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if seg[1] == 0x0db8 => "reserved",
        _ => return None,
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::non_public_class;

    #[test]
    fn classes() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
        ];
        for ip in refused {
            assert!(
                non_public_class(ip.parse().unwrap()).is_some(),
                "{ip} should be non-public"
            );
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public_class(ip.parse().unwrap()), None, "{ip}");
        }
        assert_eq!(
            non_public_class("169.254.169.254".parse().unwrap()),
            Some("cloud metadata")
        );
    }
}
