//! The SSRF guard: which addresses URL images may come from.
//!
//! The decision is made on the *resolved* address, by a DNS resolver plugged
//! into the HTTP client (so a name that resolves to a private address is
//! refused before any connection, and DNS rebinding cannot change the answer
//! between check and connect), and on IP-literal hosts directly (the client
//! does not resolve those). Every redirect target passes the same checks.
//!
//! Public means: not loopback, unspecified, private, shared (CGNAT),
//! link-local (incl. cloud metadata), multicast, broadcast, documentation,
//! benchmarking or reserved — in IPv4, in IPv6, and in every IPv6 form that
//! embeds an IPv4 address (mapped, compatible, NAT64, 6to4).

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use zipfleet_shared::config::SourcePolicy;

/// Decides whether an address may be fetched from.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    allow_private: bool,
    allowed_nets: Vec<IpNet>,
}

impl AddressPolicy {
    pub(crate) fn new(config: &SourcePolicy) -> Self {
        Self {
            allow_private: config.allow_private_sources,
            allowed_nets: config.allowed_source_nets.clone(),
        }
    }

    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        if self.allow_private || is_public(ip) {
            return true;
        }
        let plain = embedded_ipv4(ip).map_or(ip, IpAddr::V4);
        self.allowed_nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&plain))
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let octets = v6.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; ::, ::1 excluded)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        // ::ffff:0:a.b.c.d (SIIT translated)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(tail),
        // 64:ff9b::/96 (NAT64 well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        // 2002:AABB:CCDD::/48 (6to4)
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// Whether `ip` is an ordinary public internet address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_v4(v4);
    }
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let denied = a == 0                                   // 0.0.0.0/8 "this network", incl. 0.0.0.0
        || a == 10                                        // private
        || a == 127                                       // loopback
        || (a == 100 && (64..=127).contains(&b))          // 100.64/10 shared (CGNAT)
        || (a == 169 && b == 254)                         // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b))           // private
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // private
        || (a == 198 && (b == 18 || b == 19))             // benchmarking
        || (a == 198 && b == 51 && c == 100)              // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)               // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !denied
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Only global unicast (2000::/3) is public at all; that excludes ::, ::1,
    // fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10, ff00::/8 (multicast),
    // 64:ff9b:1::/48 (local NAT64) and 100::/64 (discard).
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // One range a line, as the registry lists them (clippy's "simpler" form mixes them).
    #[allow(clippy::nonminimal_bool)]
    let denied = (s[0] == 0x2001 && s[1] < 0x0200)       // 2001::/23 IETF protocol assignments (Teredo, ORCHID...)
        || (s[0] == 0x2001 && s[1] == 0x0db8)            // documentation
        || (s[0] == 0x3fff && s[1] < 0x1000); // 3fff::/20 documentation
    !denied
}

/// Why a host could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{host} points to an address zipfleet may not use ({address})")]
    Blocked { host: String, address: IpAddr },
    #[error("could not find the website {host}")]
    NotFound { host: String },
}

/// A DNS resolver for reqwest that only hands out permitted addresses.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let lookup = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            let Ok(resolved) = lookup else {
                return Err(Box::new(ResolveError::NotFound { host }) as _);
            };
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            match (permitted.is_empty(), resolved.first()) {
                (false, _) => Ok(Box::new(permitted.into_iter()) as Addrs),
                (true, Some(first)) => Err(Box::new(ResolveError::Blocked {
                    host,
                    address: first.ip(),
                }) as _),
                (true, None) => Err(Box::new(ResolveError::NotFound { host }) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn non_public_ranges_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "64:ff9b:1::1",
            "fd00:ec2::254",
        ] {
            assert!(!policy.permits(ip(denied)), "{denied} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_permitted() {
        let policy = AddressPolicy::default();
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2a00:1450::1",
        ] {
            assert!(policy.permits(ip(allowed)), "{allowed} must be permitted");
        }
    }

    #[test]
    fn allowances_open_exactly_what_they_say() {
        let everything = AddressPolicy::new(&SourcePolicy {
            allow_private_sources: true,
            allowed_source_nets: vec![],
        });
        assert!(
            everything.permits(ip("127.0.0.1"))
                && everything.permits(ip("10.1.2.3"))
                && everything.permits(ip("::1"))
        );

        let nets = AddressPolicy::new(&SourcePolicy {
            allow_private_sources: false,
            allowed_source_nets: vec![
                "127.0.0.1/32".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ],
        });
        assert!(nets.permits(ip("127.0.0.1")));
        assert!(
            nets.permits(ip("::ffff:127.0.0.1")),
            "the mapped form of an allowed address is the same address"
        );
        assert!(!nets.permits(ip("127.0.0.2")));
        assert!(nets.permits(ip("10.1.200.3")));
        assert!(!nets.permits(ip("10.2.0.1")));
        assert!(!nets.permits(ip("169.254.169.254")));
    }

    #[test]
    fn odd_spellings_parse_to_the_addresses_they_hide() {
        // The URL parser normalises these before the guard sees them.
        for (spelling, expected) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
        ] {
            let url = url::Url::parse(spelling).unwrap();
            assert_eq!(url.host_str(), Some(expected), "{spelling}");
        }
        let url = url::Url::parse("http://[::ffff:127.0.0.1]/").unwrap();
        assert!(matches!(url.host(), Some(url::Host::Ipv6(v6)) if !is_public(IpAddr::V6(v6))));
    }
}
