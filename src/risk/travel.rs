//! Impossible travel: great-circle distance between two GeoIP locations, minus both accuracy
//! radii, over the elapsed time. Pure arithmetic: no GeoIP lookups, no clock, no profile.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A located sign-in: latitude, longitude (degrees), accuracy radius (km) and time.
pub type Fix = (f64, f64, f64, Timestamp);

/// When to call a move impossible.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TravelConfig {
    /// Faster than this (km/h, after subtracting both radii) fires. Default 900 (airliner).
    pub max_speed_kmh: f64,
    /// Moves shorter than this (km, after subtracting both radii) never fire. Default 300.
    pub min_distance_km: f64,
}

impl Default for TravelConfig {
    fn default() -> Self {
        TravelConfig {
            max_speed_kmh: 900.0,
            min_distance_km: 300.0,
        }
    }
}

/// What an impossible-travel finding is based on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TravelEvidence {
    /// Distance after subtracting both accuracy radii.
    pub km: f64,
    /// Elapsed time; at least one second (the resolution we trust).
    pub hours: f64,
    pub speed_kmh: f64,
}

/// Haversine great-circle distance in km. Longitudes wrap, so the antimeridian needs no care.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

fn valid(lat: f64, lon: f64, radius: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && radius.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
        && radius >= 0.0
}

/// `Some(evidence)` when going from `prev` to `now` needs more than `cfg.max_speed_kmh` over
/// more than `cfg.min_distance_km` (both after subtracting the two accuracy radii). Invalid
/// coordinates never fire. Elapsed time is taken as its absolute value (clock skew between
/// nodes) and at least one second, so zero elapsed time gives a large, finite speed.
pub fn impossible_travel(prev: Fix, now: Fix, cfg: &TravelConfig) -> Option<TravelEvidence> {
    let (lat1, lon1, r1, t1) = prev;
    let (lat2, lon2, r2, t2) = now;
    if !valid(lat1, lon1, r1) || !valid(lat2, lon2, r2) {
        return None;
    }
    let km = (haversine_km(lat1, lon1, lat2, lon2) - r1 - r2).max(0.0);
    let secs = (t2.micros() - t1.micros()).unsigned_abs() as f64 / 1e6;
    let hours = secs.max(1.0) / 3600.0;
    let speed_kmh = km / hours;
    (km > cfg.min_distance_km && speed_kmh > cfg.max_speed_kmh).then_some(TravelEvidence {
        km,
        hours,
        speed_kmh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_secs(1_700_000_000);
    const BERLIN: (f64, f64) = (52.52, 13.405);
    const SYDNEY: (f64, f64) = (-33.8688, 151.2093);
    const FIJI: (f64, f64) = (-18.1416, 178.4419); // Suva, east of 180° is west of Samoa
    const SAMOA: (f64, f64) = (-13.8333, -171.7500); // Apia

    fn fix(p: (f64, f64), r: f64, t: Timestamp) -> Fix {
        (p.0, p.1, r, t)
    }

    #[test]
    fn distances() {
        let d = haversine_km(BERLIN.0, BERLIN.1, SYDNEY.0, SYDNEY.1);
        assert!((d - 16_090.0).abs() < 50.0, "{d}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
        // Across the antimeridian Suva–Apia is ~1,150 km, not ~39,000.
        let d = haversine_km(FIJI.0, FIJI.1, SAMOA.0, SAMOA.1);
        assert!((1_100.0..1_200.0).contains(&d), "{d}");
    }

    #[test]
    fn berlin_to_sydney_in_an_hour_fires_in_a_day_does_not() {
        let cfg = TravelConfig::default();
        let ev = impossible_travel(
            fix(BERLIN, 20.0, T0),
            fix(SYDNEY, 20.0, T0.plus_secs(3600)),
            &cfg,
        )
        .unwrap();
        assert!(ev.speed_kmh > 15_000.0 && (ev.hours - 1.0).abs() < 1e-9);
        let day = T0.plus_secs(24 * 3600);
        assert!(impossible_travel(fix(BERLIN, 20.0, T0), fix(SYDNEY, 20.0, day), &cfg).is_none());
    }

    #[test]
    fn antimeridian_neighbours_are_not_impossible() {
        let cfg = TravelConfig::default();
        // 1,150 km in 2 h = 575 km/h: fine across 180°.
        let later = T0.plus_secs(2 * 3600);
        assert!(impossible_travel(fix(FIJI, 10.0, T0), fix(SAMOA, 10.0, later), &cfg).is_none());
        // …but in 30 minutes it is not.
        let soon = T0.plus_secs(1800);
        assert!(impossible_travel(fix(FIJI, 10.0, T0), fix(SAMOA, 10.0, soon), &cfg).is_some());
    }

    #[test]
    fn accuracy_radii_defuse_a_near_threshold_case() {
        let cfg = TravelConfig::default();
        // Suva–Apia ≈ 1,150 km in 1 h 15 min ≈ 920 km/h: just above 900…
        let t = T0.plus_secs(75 * 60);
        assert!(impossible_travel(fix(FIJI, 0.0, T0), fix(SAMOA, 0.0, t), &cfg).is_some());
        // …but with 50 km of uncertainty at each end the move is ~1,050 km: 840 km/h.
        assert!(impossible_travel(fix(FIJI, 50.0, T0), fix(SAMOA, 50.0, t), &cfg).is_none());
        // Radii bigger than the distance floor it at 0.
        let near = impossible_travel(fix(BERLIN, 500.0, T0), fix((48.1, 11.6), 500.0, T0), &cfg);
        assert!(near.is_none());
    }

    #[test]
    fn zero_elapsed_time_and_short_hops() {
        let cfg = TravelConfig::default();
        let ev = impossible_travel(fix(BERLIN, 10.0, T0), fix(SYDNEY, 10.0, T0), &cfg).unwrap();
        assert!(ev.speed_kmh.is_finite() && ev.hours > 0.0);
        // Same place, same instant: nothing. Berlin–Potsdam (~27 km) instantly: below min distance.
        assert!(impossible_travel(fix(BERLIN, 1.0, T0), fix(BERLIN, 1.0, T0), &cfg).is_none());
        let potsdam = (52.39, 13.06);
        assert!(impossible_travel(fix(BERLIN, 1.0, T0), fix(potsdam, 1.0, T0), &cfg).is_none());
        // Out-of-order events (clock skew) use the absolute elapsed time.
        let back = T0.minus_secs(3600);
        assert!(impossible_travel(fix(BERLIN, 1.0, T0), fix(SYDNEY, 1.0, back), &cfg).is_some());
    }

    #[test]
    fn invalid_locations_never_fire() {
        let cfg = TravelConfig::default();
        for bad in [
            (f64::NAN, 0.0),
            (91.0, 0.0),
            (0.0, 181.0),
            (0.0, f64::INFINITY),
        ] {
            assert!(impossible_travel(fix(bad, 0.0, T0), fix(SYDNEY, 0.0, T0), &cfg).is_none());
            assert!(impossible_travel(fix(SYDNEY, 0.0, T0), fix(bad, 0.0, T0), &cfg).is_none());
        }
        assert!(impossible_travel(fix(BERLIN, -1.0, T0), fix(SYDNEY, 0.0, T0), &cfg).is_none());
    }
}
