//! GeoIP: the City and (optional) ASN databases in MaxMind DB format, decoded into vigil's own
//! tolerant records so MaxMind GeoLite2/GeoIP2 and DB-IP Lite layouts both work (every field
//! optional, unknown fields ignored). Owns the readers and the "no location" rule for
//! private, loopback and other unroutable addresses; it never decides anything about risk.
//!
//! The files are read into memory with `Reader::open_readfile`, not memory-mapped: maxminddb's
//! `open_mmap` needs the crate's `mmap` feature (not enabled here) and is an `unsafe fn`, which
//! this crate forbids (`unsafe_code = "forbid"`). A GeoLite2 City file is ~60 MB, read once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

use super::Geo;

/// A database that could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("GeoIP database {path}: {source}")]
    Open {
        path: String,
        source: MaxMindDbError,
    },
    #[error("GeoIP lookup: {0}")]
    Lookup(#[from] MaxMindDbError),
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    /// Where the network is registered; used when `country` is absent (anycast, satellites).
    #[serde(borrow, default)]
    registered_country: Option<Country<'a>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

/// The City database and, optionally, the ASN database.
#[derive(Debug)]
pub struct GeoDb {
    city: Reader<Vec<u8>>,
    asn: Option<Reader<Vec<u8>>>,
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::open_readfile(path).map_err(|source| GeoError::Open {
        path: path.display().to_string(),
        source,
    })
}

fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::from_source(bytes).map_err(|source| GeoError::Open {
        path: what.to_owned(),
        source,
    })
}

impl GeoDb {
    /// Open `VIGIL_GEOIP_CITY` and, if configured, `VIGIL_GEOIP_ASN`.
    pub fn open(city: &Path, asn: Option<&Path>) -> Result<Self, GeoError> {
        Ok(GeoDb {
            city: open(city)?,
            asn: asn.map(open).transpose()?,
        })
    }

    /// From database bytes already in memory (tests, embedded data).
    pub fn from_bytes(city: Vec<u8>, asn: Option<Vec<u8>>) -> Result<Self, GeoError> {
        Ok(GeoDb {
            city: from_bytes(city, "<city bytes>")?,
            asn: asn.map(|b| from_bytes(b, "<asn bytes>")).transpose()?,
        })
    }

    /// `metadata.build_epoch` of the City database (record it with each decision).
    pub fn city_build_epoch(&self) -> u64 {
        self.city.metadata().build_epoch
    }

    /// `metadata.build_epoch` of the ASN database, if one is open.
    pub fn asn_build_epoch(&self) -> Option<u64> {
        self.asn.as_ref().map(|r| r.metadata().build_epoch)
    }

    /// What the databases know about `ip`. Unroutable addresses (private, loopback, link-local,
    /// unspecified, CGNAT, multicast) and addresses absent from the database give
    /// `Geo::default()`; only a corrupt database is an error.
    pub fn lookup(&self, ip: IpAddr) -> Result<Geo, GeoError> {
        let ip = canonical(ip);
        if unroutable(ip) {
            return Ok(Geo::default());
        }
        let mut geo = Geo::default();
        if let Some(rec) = decode::<CityRecord<'_>>(&self.city, ip)? {
            geo.country = rec
                .country
                .and_then(|c| c.iso_code)
                .or(rec.registered_country.and_then(|c| c.iso_code))
                .map(str::to_owned);
            geo.city = rec
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.en)
                .map(str::to_owned);
            if let Some(loc) = rec.location {
                if let (Some(lat), Some(lon)) = (loc.latitude, loc.longitude) {
                    geo.latitude = Some(lat);
                    geo.longitude = Some(lon);
                    geo.accuracy_radius_km = loc.accuracy_radius;
                }
            }
        }
        if let Some(asn) = &self.asn {
            if let Some(rec) = decode::<AsnRecord<'_>>(asn, ip)? {
                geo.asn = rec.autonomous_system_number;
                geo.asn_org = rec.autonomous_system_organization.map(str::to_owned);
            }
        }
        Ok(geo)
    }
}

fn decode<'de, T: Deserialize<'de>>(
    reader: &'de Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<T>, GeoError> {
    if ip.is_ipv6() && reader.metadata().ip_version == 4 {
        return Ok(None);
    }
    Ok(reader.lookup(ip)?.decode::<T>()?)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn unroutable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || (o1 == 100 && (o2 & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || a == Ipv4Addr::new(0, 0, 0, 0)
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00 // unique local
                || (s0 & 0xffc0) == 0xfe80 // link-local
                || a == Ipv6Addr::UNSPECIFIED
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use ipnet::IpNet;
    use mmdb_writer::Writer;
    use serde::Serialize;

    use super::*;

    /// Build time of the test databases: fixed, so the files are reproducible.
    pub const TEST_BUILD_EPOCH: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    /// (network, country, city, lat, lon, accuracy radius km, ASN, organisation).
    /// Keep geoip/README.md in step with this table.
    #[allow(clippy::type_complexity)]
    pub const RANGES: &[(&str, &str, &str, f64, f64, u16, u32, &str)] = &[
        (
            "81.2.69.0/24",
            "GB",
            "London",
            51.5142,
            -0.0931,
            10,
            64510,
            "Vigil Test London",
        ),
        (
            "89.160.20.0/24",
            "SE",
            "Linköping",
            58.4167,
            15.6167,
            76,
            64511,
            "Vigil Test Linkoping",
        ),
        (
            "2.125.160.0/24",
            "GB",
            "Boxford",
            51.75,
            -1.25,
            100,
            64509,
            "Vigil Test Boxford",
        ),
        (
            "192.0.2.0/24",
            "DE",
            "Berlin",
            52.52,
            13.405,
            20,
            64496,
            "Vigil Test Berlin",
        ),
        (
            "198.51.100.0/24",
            "AU",
            "Sydney",
            -33.8688,
            151.2093,
            20,
            64497,
            "Vigil Test Sydney",
        ),
        (
            "203.0.113.0/24",
            "US",
            "New York",
            40.7128,
            -74.006,
            20,
            64498,
            "Vigil Test New York",
        ),
        (
            "2001:db8:de::/48",
            "DE",
            "Berlin",
            52.52,
            13.405,
            20,
            64496,
            "Vigil Test Berlin",
        ),
    ];

    #[derive(Serialize)]
    struct WName {
        names: BTreeMap<&'static str, &'static str>,
    }
    #[derive(Serialize)]
    struct WCountry {
        iso_code: &'static str,
        names: BTreeMap<&'static str, &'static str>,
    }
    #[derive(Serialize)]
    struct WLocation {
        latitude: f64,
        longitude: f64,
        accuracy_radius: u16,
    }
    #[derive(Serialize)]
    struct WCity {
        city: WName,
        country: WCountry,
        location: WLocation,
    }
    #[derive(Serialize)]
    struct WAsn {
        autonomous_system_number: u32,
        autonomous_system_organization: &'static str,
    }

    fn writer(kind: &str, what: &str) -> Writer {
        Writer::builder(kind)
            .description(&[("en", what)])
            .build_epoch(UNIX_EPOCH + Duration::from_secs(TEST_BUILD_EPOCH))
            .build()
    }

    /// The City and ASN test databases (GeoIP2/GeoLite2 layout), as bytes.
    pub fn test_databases() -> (Vec<u8>, Vec<u8>) {
        let mut city = writer("GeoIP2-City", "vigil test City database (made-up data)");
        let mut asn = writer("GeoLite2-ASN", "vigil test ASN database (made-up data)");
        for &(net, cc, name, lat, lon, radius, number, org) in RANGES {
            let net: IpNet = net.parse().unwrap();
            let record = WCity {
                city: WName {
                    names: [("en", name)].into(),
                },
                country: WCountry {
                    iso_code: cc,
                    names: [("en", cc)].into(),
                },
                location: WLocation {
                    latitude: lat,
                    longitude: lon,
                    accuracy_radius: radius,
                },
            };
            city.insert(net, &record).unwrap();
            let a = WAsn {
                autonomous_system_number: number,
                autonomous_system_organization: org,
            };
            asn.insert(net, &a).unwrap();
        }
        (city.to_bytes().unwrap(), asn.to_bytes().unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn check_ranges(db: &GeoDb) {
        for &(net, cc, name, lat, lon, radius, number, org) in RANGES {
            let first = net.parse::<IpNet>().unwrap().network();
            let g = db.lookup(first).unwrap();
            assert_eq!(g.country.as_deref(), Some(cc), "{net}");
            assert_eq!(g.city.as_deref(), Some(name), "{net}");
            assert_eq!((g.latitude, g.longitude), (Some(lat), Some(lon)), "{net}");
            assert_eq!(g.accuracy_radius_km, Some(radius), "{net}");
            assert_eq!(
                (g.asn, g.asn_org.as_deref()),
                (Some(number), Some(org)),
                "{net}"
            );
        }
    }

    #[test]
    fn lookups_from_a_built_database() {
        let (city, asn) = test_databases();
        let dir = tempfile::tempdir().unwrap();
        let (cp, ap) = (dir.path().join("city.mmdb"), dir.path().join("asn.mmdb"));
        std::fs::write(&cp, city).unwrap();
        std::fs::write(&ap, asn).unwrap();
        let db = GeoDb::open(&cp, Some(&ap)).unwrap();
        check_ranges(&db);
        assert_eq!(db.city_build_epoch(), TEST_BUILD_EPOCH);
        assert_eq!(db.asn_build_epoch(), Some(TEST_BUILD_EPOCH));
        let g = db.lookup(ip("192.0.2.77")).unwrap();
        assert_eq!(g.city.as_deref(), Some("Berlin"));
        let mapped = db.lookup(ip("::ffff:198.51.100.9")).unwrap();
        assert_eq!(mapped.country.as_deref(), Some("AU"));
        for none in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "8.8.8.8",
            "2001:db9::1",
        ] {
            assert_eq!(db.lookup(ip(none)).unwrap(), Geo::default(), "{none}");
        }
        // Without an ASN database the ASN fields stay empty.
        let city_only = GeoDb::open(&cp, None).unwrap();
        assert_eq!(city_only.lookup(ip("192.0.2.1")).unwrap().asn, None);
        assert_eq!(city_only.asn_build_epoch(), None);
        assert!(GeoDb::open(&dir.path().join("missing.mmdb"), None).is_err());
        assert!(GeoDb::from_bytes(b"not a database".to_vec(), None).is_err());
    }

    #[test]
    fn dbip_lite_layout_decodes() {
        // DB-IP Lite City: no geoname_id, no accuracy_radius, extra fields.
        let mut w = writer("DBIP-City-Lite", "db-ip style");
        let rec = serde_json::json!({
            "city": {"names": {"en": "Sydney"}},
            "continent": {"code": "OC", "names": {"en": "Oceania"}},
            "country": {"iso_code": "AU", "is_in_european_union": false, "names": {"en": "Australia"}},
            "location": {"latitude": -33.8688, "longitude": 151.2093},
            "subdivisions": [{"names": {"en": "New South Wales"}}]
        });
        let net: IpNet = "198.51.100.0/24".parse().unwrap();
        w.insert(net, &rec).unwrap();
        let db = GeoDb::from_bytes(w.to_bytes().unwrap(), None).unwrap();
        let g = db.lookup(ip("198.51.100.1")).unwrap();
        assert_eq!(
            (g.country.as_deref(), g.city.as_deref()),
            (Some("AU"), Some("Sydney"))
        );
        assert_eq!((g.latitude, g.accuracy_radius_km), (Some(-33.8688), None));
    }

    #[test]
    fn committed_test_databases_match_the_table() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip");
        let db = GeoDb::open(
            &dir.join("vigil-test-city.mmdb"),
            Some(&dir.join("vigil-test-asn.mmdb")),
        )
        .unwrap();
        check_ranges(&db);
    }

    /// Regenerate geoip/vigil-test-{city,asn}.mmdb:
    /// `cargo test --lib risk::geo -- --ignored write_test_databases`
    #[test]
    #[ignore]
    fn write_test_databases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip");
        let (city, asn) = test_databases();
        std::fs::write(dir.join("vigil-test-city.mmdb"), city).unwrap();
        std::fs::write(dir.join("vigil-test-asn.mmdb"), asn).unwrap();
    }
}
