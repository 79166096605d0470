//! The cost of scoring: one `assess` + one `learn` on profiles trained with 10 … 10,000
//! verified sign-ins (flat, because profiles are bounded), and the JSON round-trip the server
//! pays to load and store a profile in the sign-in transaction.
//!
//! `cargo bench --bench risk -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vigil::clock::Timestamp;
use vigil::risk::{
    assess, DeviceType, Geo, GlobalStats, RiskConfig, SignInFeatures, UaInfo, UserProfile,
};

const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// A realistic mix: mostly home (Berlin, one laptop), sometimes a phone, another city, travel,
/// a new browser version; `i` spreads the values so bounded maps fill and evict.
fn features(i: u64) -> SignInFeatures {
    let mut f = SignInFeatures::at(T0.plus_secs(i as i64 * 7_919));
    let (cc, city, asn, lat, lon) = match i % 10 {
        0..=6 => ("DE", "Berlin", 3320, 52.52, 13.405),
        7 => ("DE", "Munich", 3209, 48.14, 11.58),
        8 => ("FR", "Paris", 3215, 48.86, 2.35),
        _ => ("US", "New York", 7922, 40.71, -74.01),
    };
    f.ip = Some(IpAddr::from([81, (i % 7) as u8, (i % 13) as u8, 10]));
    f.geo = Geo {
        country: Some(cc.to_owned()),
        city: Some(city.to_owned()),
        latitude: Some(lat),
        longitude: Some(lon),
        accuracy_radius_km: Some(20),
        asn: Some(asn),
        asn_org: None,
    };
    let phone = i % 4 == 0;
    f.ua = UaInfo {
        browser_family: if phone { "Mobile Safari" } else { "Chrome" }.to_owned(),
        browser_major: Some((120 + i % 9).to_string()),
        os_family: if phone { "iOS" } else { "Windows" }.to_owned(),
        device_type: if phone {
            DeviceType::Mobile
        } else {
            DeviceType::Desktop
        },
    };
    f.device.fingerprint = Some(format!("fp-{}", i % 40));
    f.device.cookie_id = Some(format!("cookie-{}", i % 50));
    f
}

fn trained(n: u64) -> (UserProfile, GlobalStats) {
    let mut p = UserProfile::default();
    let mut g = GlobalStats::default();
    for i in 0..n {
        p.learn(&features(i));
    }
    for i in 0..20_000 {
        g.learn(&features(i * 31 + 7));
    }
    (p, g)
}

fn bench(c: &mut Criterion) {
    let cfg = RiskConfig::default();
    let mut group = c.benchmark_group("assess+learn");
    for n in [10_u64, 100, 1_000, 10_000] {
        let (mut profile, global) = trained(n);
        let mut i = n;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                let f = features(i);
                let a = assess(black_box(&f), &profile, &global, &cfg);
                profile.learn(&f);
                black_box(a.score)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("profile json load+store");
    for n in [10_u64, 10_000] {
        let (profile, _) = trained(n);
        let json = serde_json::to_string(&profile).unwrap_or_default();
        group.bench_with_input(BenchmarkId::from_parameter(n), &json, |b, json| {
            b.iter(|| {
                let p: UserProfile = serde_json::from_str(black_box(json)).unwrap_or_default();
                black_box(serde_json::to_string(&p).unwrap_or_default().len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
