//! `vigil risk synth`: a synthetic sign-in log in the RBA dataset's column format (see
//! `replay.rs`), deterministic for a seed (`StdRng::seed_from_u64`). Not real data: a
//! plausible shape for testing the replay and for comparing models when no log is at hand.
//!
//! Assumptions of the generator:
//! - Sign-ins per user are heavy-tailed: `floor(1.2 / u)` for `u` uniform in (0, 1], at least
//!   1 and capped at 400 (a Pareto tail with exponent 1: median 2, about 10 % of users with
//!   ≥ 12 sign-ins, 3 % with ≥ 40).
//! - Each user has a home country (skewed: a few countries dominate), an ISP (ASN) in it, a
//!   region/city, a home /24, and one to three devices (User-Agent strings from common
//!   browser/OS templates). Sign-ins fall uniformly over 90 days.
//! - Habits are sticky: per sign-in, 2 % change ISP (for good), 3 % travel (a foreign country
//!   and network for that sign-in), 2 % update the browser (major version + 1), 1 % add a new
//!   device (up to three), 20 % a new /24 inside the home ISP (DHCP churn). The first device is
//!   used most.
//! - Two thirds of legitimate attempts succeed (typos and retries fail), and attack-IP rows are
//!   a ninth of the legitimate ones, so about 60 % of all rows succeed and about 10 % come from
//!   attack IPs, as the public dataset's statistics say.
//! - Attack-IP rows are credential stuffing: a random existing user, a foreign country, a
//!   botnet address from a small pool, a random device template; they fail, except 1 % that
//!   succeed and are marked `Is Account Takeover`.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::replay::HEADER;

/// Countries with weights and ASNs.
const COUNTRIES: [(&str, u32, [u32; 3]); 10] = [
    ("US", 30, [7922, 7018, 701]),
    ("NO", 20, [29695, 2119, 15659]),
    ("DE", 10, [3320, 3209, 6805]),
    ("BR", 8, [28573, 18881, 26599]),
    ("GB", 7, [2856, 5089, 5607]),
    ("IN", 7, [9829, 45609, 55836]),
    ("FR", 6, [3215, 12322, 5410]),
    ("JP", 5, [2516, 4713, 17676]),
    ("ID", 4, [7713, 17974, 23693]),
    ("RU", 3, [12389, 8359, 31213]),
];

/// (template with `{v}` for the major version, browser, OS, device type)
const DEVICES: [(&str, &str, &str, &str); 6] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.4183.121 Safari/537.36", "Chrome", "Windows 10", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", "Firefox", "Linux", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Safari/605.1.15", "Safari", "Mac OS X 10.15.6", "desktop"),
    ("Mozilla/5.0 (Linux; Android 10; SM-G973F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.4183.127 Mobile Safari/537.36", "Chrome Mobile", "Android 10", "mobile"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS 13.4", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.4183.121 Safari/537.36 Edg/{v}.0.564.68", "Edge", "Windows 10", "desktop"),
];

const BASE_VERSION: [u32; 6] = [85, 80, 13, 85, 13, 85];
/// 2020-02-03 00:00:00 UTC, the real dataset's first day.
const START: i64 = 1_580_688_000;
const SPAN_SECS: i64 = 90 * 86_400;

#[derive(Clone, Copy)]
struct Dev {
    template: usize,
    version: u32,
}

struct User {
    id: i64,
    country: usize,
    asn: u32,
    region: u32,
    net: [u8; 3],
    devices: Vec<Dev>,
}

struct Event {
    at_ms: i64,
    fields: [String; 15],
}

fn pick_country(rng: &mut StdRng) -> usize {
    let total: u32 = COUNTRIES.iter().map(|c| c.1).sum();
    let mut x = rng.gen_range(0..total);
    for (i, c) in COUNTRIES.iter().enumerate() {
        if x < c.1 {
            return i;
        }
        x -= c.1;
    }
    0
}

fn new_device(rng: &mut StdRng) -> Dev {
    let template = rng.gen_range(0..DEVICES.len());
    Dev {
        template,
        version: BASE_VERSION[template] + rng.gen_range(0..3),
    }
}

fn net(rng: &mut StdRng) -> [u8; 3] {
    [rng.gen_range(11..=223), rng.gen(), rng.gen()]
}

fn quote(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[allow(clippy::too_many_arguments)]
fn event(
    at_ms: i64,
    user: i64,
    ip: [u8; 4],
    country: usize,
    region: Option<u32>,
    asn: u32,
    dev: Dev,
    success: bool,
    attack: bool,
    takeover: bool,
    rtt: Option<u32>,
) -> Event {
    let (tpl, browser, os, kind) = DEVICES[dev.template];
    let cc = COUNTRIES[country].0;
    let (reg, city) = match region {
        Some(r) => (format!("{cc} Region {r}"), format!("{cc} City {r}")),
        None => ("-".into(), "-".into()),
    };
    let b = |x: bool| if x { "True" } else { "False" }.to_owned();
    Event {
        at_ms,
        fields: [
            String::new(), // the time, filled in when written
            user.to_string(),
            rtt.map(|r| r.to_string()).unwrap_or_default(),
            format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
            cc.to_owned(),
            reg,
            city,
            asn.to_string(),
            quote(&tpl.replace("{v}", &dev.version.to_string())),
            format!("{browser} {}.0", dev.version),
            os.to_owned(),
            kind.to_owned(),
            b(success),
            b(attack),
            b(takeover),
        ],
    }
}

/// Write a log of `users` users to `out`.
pub fn synth(users: u32, seed: u64, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<Event> = Vec::new();
    let mut ids: Vec<i64> = Vec::with_capacity(users as usize);
    for _ in 0..users {
        let country = pick_country(&mut rng);
        let mut u = User {
            id: rng.gen(),
            country,
            asn: COUNTRIES[country].2[rng.gen_range(0..3)],
            region: rng.gen_range(1..=5),
            net: net(&mut rng),
            devices: vec![new_device(&mut rng)],
        };
        for _ in 0..rng.gen_range(0..=2) {
            u.devices.push(new_device(&mut rng));
        }
        ids.push(u.id);
        let uu: f64 = rng.gen_range(f64::EPSILON..=1.0);
        let logins = ((1.2 / uu).floor() as u32).clamp(1, 400);
        let mut times: Vec<i64> = (0..logins)
            .map(|_| START * 1000 + rng.gen_range(0..SPAN_SECS * 1000))
            .collect();
        times.sort_unstable();
        for at_ms in times {
            if rng.gen_bool(0.02) {
                let asns = COUNTRIES[u.country].2;
                u.asn = asns[rng.gen_range(0..3)];
                u.net = net(&mut rng);
            }
            if rng.gen_bool(0.2) {
                u.net[2] = rng.gen();
            }
            if rng.gen_bool(0.02) {
                if let Some(d) = u.devices.first_mut() {
                    d.version += 1;
                }
            }
            if rng.gen_bool(0.01) && u.devices.len() < 3 {
                u.devices.push(new_device(&mut rng));
            }
            let dev = if rng.gen_bool(0.7) {
                u.devices[0]
            } else {
                u.devices[rng.gen_range(0..u.devices.len())]
            };
            let (country, asn, region, nw) = if rng.gen_bool(0.03) {
                let c = pick_country(&mut rng);
                (c, COUNTRIES[c].2[rng.gen_range(0..3)], None, net(&mut rng))
            } else {
                (u.country, u.asn, Some(u.region), u.net)
            };
            let ip = [nw[0], nw[1], nw[2], rng.gen_range(1..255)];
            // Failed attempts come first, then (usually) the success.
            let success = rng.gen_bool(2.0 / 3.0);
            let rtt = rng.gen_bool(0.05).then(|| rng.gen_range(300..2000));
            events.push(event(
                at_ms, u.id, ip, country, region, asn, dev, success, false, false, rtt,
            ));
        }
    }
    // Credential stuffing from a botnet: a ninth of the legitimate rows.
    let bots: Vec<([u8; 3], usize, u32)> = (0..50)
        .map(|_| {
            let c = pick_country(&mut rng);
            (net(&mut rng), c, COUNTRIES[c].2[rng.gen_range(0..3)])
        })
        .collect();
    let attacks = events.len() / 9;
    for _ in 0..attacks {
        let (Some(id), Some(bot)) = (
            ids.get(rng.gen_range(0..ids.len().max(1))).copied(),
            bots.get(rng.gen_range(0..bots.len())).copied(),
        ) else {
            break;
        };
        let at_ms = START * 1000 + rng.gen_range(0..SPAN_SECS * 1000);
        let ip = [bot.0[0], bot.0[1], bot.0[2], rng.gen_range(1..255)];
        let takeover = rng.gen_bool(0.01);
        let dev = new_device(&mut rng);
        events.push(event(
            at_ms, id, ip, bot.1, None, bot.2, dev, takeover, true, takeover, None,
        ));
    }
    events.sort_by_key(|e| e.at_ms);
    writeln!(out, "{}", HEADER.join(","))?;
    for (i, e) in events.iter().enumerate() {
        let t = chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_default();
        writeln!(out, "{i},{t},{}", e.fields[1..].join(","))?;
    }
    Ok(())
}
