//! The IP deny list (`VIGIL_IP_DENYLIST`): anonymisers, Tor exits, known-bad networks.
//! Owns parsing (IPs and CIDRs, one per line, `#` comments, IPv4 and IPv6) and lookup over
//! sorted, merged ranges in O(log n). It does not watch files: to reload, the caller builds a
//! new `DenyList` and swaps an `Arc`.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

/// Why a deny list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DenyListError {
    #[error("deny list line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("deny list {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A set of addresses as sorted, non-overlapping, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl DenyList {
    /// Parse a list: one IP or CIDR per line; `#` starts a comment; blank lines are ignored.
    /// Host bits in a CIDR are ignored (`10.1.2.3/8` means `10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<Self, DenyListError> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, raw) in text.lines().enumerate() {
            let entry = raw.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let net = if entry.contains('/') {
                entry.parse::<IpNet>().map_err(|e| e.to_string())
            } else {
                entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|e| e.to_string())
            }
            .map_err(|e| DenyListError::Malformed {
                line: i + 1,
                message: format!("{entry:?}: {e}"),
            })?;
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => {
                    let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                    // Lookups answer an IPv4-mapped address (`::ffff:a.b.c.d`) from the IPv4
                    // ranges, so the mapped part of a network is stored as IPv4: all of
                    // `::ffff:a.b.c.d/1xx`, and the mapped block inside a wider one such as
                    // `::/0` (which once matched no IPv4-mapped address at all).
                    let (mlo, mhi) = (lo.max(MAPPED.0), hi.min(MAPPED.1));
                    if mlo <= mhi {
                        v4.push((mapped_v4(mlo), mapped_v4(mhi)));
                    }
                    if lo < MAPPED.0 || hi > MAPPED.1 {
                        v6.push((lo, hi));
                    }
                }
            }
        }
        Ok(DenyList {
            v4: merge(v4),
            v6: merge(v6),
        })
    }

    /// Read and parse a file.
    pub fn from_file(path: &Path) -> Result<Self, DenyListError> {
        let text = std::fs::read_to_string(path).map_err(|source| DenyListError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Is `ip` on the list? IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 entries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => hit(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => hit(&self.v4, u32::from(v4)),
                None => hit(&self.v6, u128::from(a)),
            },
        }
    }

    /// Number of merged ranges (for logs: "deny list loaded, 1234 ranges").
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `::ffff:0.0.0.0` to `::ffff:255.255.255.255`, the IPv4-mapped block (RFC 4291 §2.5.5.2).
const MAPPED: (u128, u128) = (0xffff_0000_0000, 0xffff_ffff_ffff);

/// The IPv4 address an address of the mapped block stands for (its low 32 bits).
fn mapped_v4(x: u128) -> u32 {
    (x & 0xffff_ffff) as u32
}

fn merge<T: Copy + Ord + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            // Overlapping or adjacent (prev.end + 1 == start) ranges merge.
            Some(last) if last.1.succ().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out
}

fn hit<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    // The last range starting at or before x is the only candidate.
    let idx = ranges.partition_point(|&(start, _)| start <= x);
    idx > 0 && ranges[idx - 1].1 >= x
}

mod num_like {
    /// `x + 1` without overflow, for merging adjacent ranges.
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for u32 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const LIST: &str = "\
# FireHOL-style list
192.0.2.0/24
198.51.100.7        # a single Tor exit

10.0.0.0/8
10.20.0.0/16        # inside the /8: merged away
203.0.113.0/25
203.0.113.128/25    # adjacent: merged with the line above
2001:db8::/32
2001:db8:1::/48
::ffff:100.64.0.1
";

    #[test]
    fn matches_v4_v6_and_single_addresses() {
        let d = DenyList::parse(LIST).unwrap();
        for yes in [
            "192.0.2.0",
            "192.0.2.255",
            "198.51.100.7",
            "10.255.255.255",
            "203.0.113.200",
            "2001:db8:ffff::1",
            "::ffff:192.0.2.9",
            "100.64.0.1",
        ] {
            assert!(d.contains(ip(yes)), "{yes}");
        }
        for no in [
            "192.0.3.0",
            "198.51.100.8",
            "11.0.0.0",
            "9.255.255.255",
            "2001:db9::1",
            "::1",
            "127.0.0.1",
        ] {
            assert!(!d.contains(ip(no)), "{no}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let d = DenyList::parse(LIST).unwrap();
        // 192.0.2/24, .7, 10/8, 203.0.113/24, 100.64.0.1 = 5 v4; 2001:db8::/32 = 1 v6.
        assert_eq!(d.len(), 6);
        let d = DenyList::parse("0.0.0.0/1\n128.0.0.0/1\n255.255.255.255\n").unwrap();
        assert_eq!(d.len(), 1);
        assert!(d.contains(ip("255.255.255.255")) && d.contains(ip("0.0.0.0")));
    }

    #[test]
    fn host_bits_are_ignored_and_errors_name_the_line() {
        let d = DenyList::parse("10.1.2.3/8").unwrap();
        assert!(d.contains(ip("10.200.0.1")));
        let err = DenyList::parse("# ok\n1.2.3.4\nnot-an-ip\n").unwrap_err();
        assert!(
            matches!(err, DenyListError::Malformed { line: 3, .. }),
            "{err}"
        );
        let err = DenyList::parse("1.2.3.4/33").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(DenyList::parse("").unwrap().is_empty());
    }

    #[test]
    fn wide_ipv6_networks_cover_their_ipv4_mapped_addresses() {
        // Found writing the deny-list fuzz target's oracle (fuzz/src/lib.rs): `::/0` contains
        // `::ffff:192.0.2.1`, yet lookups of mapped addresses consulted only the IPv4 ranges.
        let d = DenyList::parse("::/0").unwrap();
        assert!(d.contains(ip("::ffff:192.0.2.1")));
        assert!(d.contains(ip("192.0.2.1")), "the same client, unmapped");
        assert!(d.contains(ip("2001:db8::1")));
        let d = DenyList::parse("::ffff:0:0/95").unwrap();
        assert!(d.contains(ip("10.0.0.1")) && d.contains(ip("::fffe:0:1")));
        assert!(!d.contains(ip("2001:db8::1")));
        let d = DenyList::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(d, DenyList::parse("10.0.0.0/8").unwrap());
    }

    #[test]
    fn reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.txt");
        std::fs::write(&path, LIST).unwrap();
        assert!(DenyList::from_file(&path).unwrap().contains(ip("10.1.1.1")));
        assert!(DenyList::from_file(&dir.path().join("missing")).is_err());
    }
}
