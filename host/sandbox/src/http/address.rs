//! Which addresses a plugin may never reach, and a DNS resolver that refuses them after resolution.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A host resolved only to addresses a plugin may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {addr}, an internal address")]
pub(crate) struct ForbiddenAddress {
    pub(crate) host: String,
    pub(crate) addr: IpAddr,
}

/// True for loopback, private, link-local, CGNAT, unspecified, broadcast, multicast and reserved addresses,
/// and for IPv6 addresses that embed such an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
pub fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()                         // 127/8
        || ip.is_private()                   // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                // 169.254/16 (cloud metadata)
        || ip.is_unspecified()               // 0.0.0.0
        || ip.is_broadcast()                 // 255.255.255.255
        || ip.is_multicast()                 // 224/4
        || a == 0                            // 0/8 "this network"
        || (a == 100 && (b & 0xc0) == 64)    // 100.64/10 CGNAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0/24 protocol assignments
        || (a == 198 && (b & 0xfe) == 18)    // 198.18/15 benchmarking
        || a >= 240 // 240/4 reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let v4_at =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-compatible (::a.b.c.d, deprecated), NAT64 well-known (64:ff9b::/96) and local-use
    // (64:ff9b:1::/48) prefixes carry an IPv4 address in their last 32 bits.
    if segments[..6] == [0; 6]
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..3] == [0x64, 0xff9b, 1]
    {
        return ip.is_loopback()
            || ip.is_unspecified()
            || is_internal_v4(v4_at(segments[6], segments[7]));
    }
    // 6to4 (2002::/16) carries the IPv4 address right after the prefix.
    if segments[0] == 0x2002 && is_internal_v4(v4_at(segments[1], segments[2])) {
        return true;
    }
    // Teredo (2001::/32) carries the client's IPv4 address inverted in its last 32 bits.
    if segments[..2] == [0x2001, 0] && is_internal_v4(v4_at(!segments[6], !segments[7])) {
        return true;
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (segments[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (segments[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || segments[..2] == [0x2001, 0xdb8] // 2001:db8::/32 documentation
        || segments[..3] == [0x100, 0, 0] // 100::/64 discard-only
}

/// Resolves with the system resolver, then drops internal addresses; fails when none is left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut forbidden = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| {
                    let internal = !allow_private && is_internal_address(addr.ip());
                    if internal {
                        forbidden = Some(addr.ip());
                    }
                    !internal
                })
                .collect();
            match (allowed.is_empty(), forbidden) {
                (true, Some(addr)) => Err(Box::new(ForbiddenAddress { host, addr }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_internal_address;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::7f00:1",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(
                is_internal_address(ip.parse().expect("valid ip")),
                "{ip} should be internal"
            );
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "64:ff9b:1::808:808",
        ] {
            assert!(
                !is_internal_address(ip.parse().expect("valid ip")),
                "{ip} should be public"
            );
        }
    }
}
