//! Who the client is, as far as the network can tell: the address behind our trusted proxies,
//! and the key that groups addresses one client can rotate through. Pure functions on plain
//! values (no HTTP types), so the rules are tested here and every caller gets the same answer.
//!
//! ```text
//!  X-Forwarded-For: a, b, c  + peer p         (read right to left: p, c, b, a)
//!    p untrusted ────────────────────────────> p
//!    p trusted ─> c untrusted ───────────────> c
//!              └> c trusted ─> b junk ───────> c   (the nearest trusted hop: the walk stops)
//!                           └> b untrusted ──> b
//! ```
//!
//! Everything left of the first untrusted hop was written by the client and is never believed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// One `X-Forwarded-For` entry: `IP`, `IPv4:port` or `[IPv6]:port`. Anything else is `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The client's address. `peer` is the socket peer; `forwarded` the `X-Forwarded-For` header
/// values in the order received (several headers are one list). A peer that is not a trusted
/// proxy is the client. Otherwise hops are read from the right, skipping trusted proxies; the
/// first untrusted hop is the client. An unparsable or empty hop ends the walk at the nearest
/// trusted address seen: what lies left of it cannot be attributed to any proxy we trust.
pub fn client_ip(peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in forwarded.iter().flat_map(|v| v.split(',')).rev() {
        match parse_hop(hop) {
            None => return nearest,
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
        }
    }
    nearest
}

/// The key failures are counted under for an address: an IPv4 address itself, an IPv6
/// address's /64 (one subscriber usually holds a whole /64 and can rotate through it freely).
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let got = client_ip(ip("192.0.2.1"), &["198.51.100.7"], &trusted());
        assert_eq!(got, ip("192.0.2.1"));
    }

    #[test]
    fn junk_cannot_promote_a_spoofed_left_entry() {
        // The review's finding: `victim, junk` once made the victim the client.
        let got = client_ip(ip("10.0.0.1"), &["198.51.100.7, junk"], &trusted());
        assert_eq!(got, ip("10.0.0.1"));
        let got = client_ip(
            ip("10.0.0.1"),
            &["198.51.100.7, junk, 203.0.113.5"],
            &trusted(),
        );
        assert_eq!(got, ip("203.0.113.5"));
    }

    #[test]
    fn walks_right_to_left_across_headers_and_ports() {
        let got = client_ip(
            ip("10.0.0.1"),
            &["1.1.1.1, 192.0.2.9:4711", "10.2.3.4"],
            &trusted(),
        );
        assert_eq!(got, ip("192.0.2.9"));
        let got = client_ip(ip("10.0.0.1"), &["[2001:db8::1]:443"], &trusted());
        assert_eq!(got, ip("2001:db8::1"));
        let got = client_ip(ip("10.0.0.1"), &["10.9.9.9, , 10.1.1.1"], &trusted());
        assert_eq!(got, ip("10.1.1.1"));
        assert_eq!(client_ip(ip("10.0.0.1"), &[], &trusted()), ip("10.0.0.1"));
        // A v4-mapped peer is the v4 address it stands for.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &["192.0.2.3"], &trusted()),
            ip("192.0.2.3")
        );
    }

    #[test]
    fn ipv6_keys_by_slash_64() {
        assert_eq!(ip_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            ip_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_ne!(ip_key(ip("2001:db8:1:3::1")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }

    /// A hop as a proxy chain may carry it: trusted, untrusted (v4, v6, with port) or junk.
    fn hop() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u8..4).prop_map(|n| format!("10.0.0.{n}")),
            (0u8..4).prop_map(|n| format!("fd00::{n}")),
            (1u8..4).prop_map(|n| format!("192.0.2.{n}")),
            (1u8..4).prop_map(|n| format!("192.0.2.{n}:8080")),
            (1u16..4).prop_map(|n| format!("[2001:db8::{n}]:443")),
            Just(String::new()),
            Just("junk".to_owned()),
            Just("unknown".to_owned()),
            Just("999.1.1.1".to_owned()),
        ]
    }

    fn peer() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            Just(ip("10.0.0.9")),
            Just(ip("fd00::9")),
            Just(ip("192.0.2.200")),
        ]
    }

    fn is_trusted(a: &IpAddr) -> bool {
        trusted().iter().any(|n| n.contains(a))
    }

    proptest! {
        #[test]
        fn answer_is_the_peer_or_a_parsed_hop(p in peer(), hops in prop::collection::vec(hop(), 0..8)) {
            let header = hops.join(", ");
            let got = client_ip(p, &[&header], &trusted());
            let parsed: Vec<IpAddr> = hops.iter().filter_map(|h| parse_hop(h)).collect();
            prop_assert!(got == p || parsed.contains(&got));
        }

        #[test]
        fn trusted_answer_only_when_walk_found_no_client(p in peer(), hops in prop::collection::vec(hop(), 0..8)) {
            let header = hops.join(", ");
            let got = client_ip(p, &[&header], &trusted());
            if is_trusted(&got) {
                // Every hop from the right up to the first junk one (or all) was trusted.
                let examined = hops.iter().rev().take_while(|h| parse_hop(h).is_some());
                for h in examined {
                    prop_assert!(parse_hop(h).is_some_and(|a| is_trusted(&a)));
                }
            }
        }

        #[test]
        fn appended_trusted_hops_change_nothing(p in peer(), hops in prop::collection::vec(hop(), 0..8), extra in prop::collection::vec(0u8..4, 1..4)) {
            // A chain of trusted proxies in front of ours: the client found stays the client,
            // and a walk cut short still answers with a trusted address, never a client-made one.
            let header = hops.join(", ");
            let before = client_ip(p, &[&header], &trusted());
            let mut more = hops.clone();
            more.extend(extra.iter().map(|n| format!("10.0.0.{n}")));
            let after = client_ip(p, &[&more.join(", ")], &trusted());
            if !is_trusted(&p) || !is_trusted(&before) {
                prop_assert_eq!(before, after);
            } else {
                prop_assert!(is_trusted(&after));
            }
        }

        #[test]
        fn client_written_prefix_changes_nothing(p in peer(), prefix in prop::collection::vec(hop(), 0..6), client in (1u8..4), proxies in prop::collection::vec(0u8..4, 0..3)) {
            // The client is the right-most untrusted hop; everything left of it is theirs to write.
            let mut tail = vec![format!("192.0.2.{client}")];
            tail.extend(proxies.iter().map(|n| format!("10.0.0.{n}")));
            let header = tail.join(", ");
            let mut full = prefix.clone();
            full.extend(tail.iter().cloned());
            let spoofed = full.join(", ");
            prop_assert_eq!(
                client_ip(p, &[&header], &trusted()),
                client_ip(p, &[&spoofed], &trusted())
            );
            if is_trusted(&p) {
                prop_assert_eq!(client_ip(p, &[&spoofed], &trusted()), ip(&format!("192.0.2.{client}")));
            }
        }
    }
}
