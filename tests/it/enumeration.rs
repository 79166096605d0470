//! Username enumeration: a wrong password for an existing account and any password for an
//! unknown name must answer the same bytes (modulo the form's fresh CSRF token) in the same
//! time.
//!
//! The fast check runs in CI. The timing test is ignored (statistics need thousands of samples
//! and a quiet machine):
//! `cargo test --release --test it enumeration -- --ignored --nocapture`
//! — 2,000 interleaved POST /login of each kind with production argon2id cost, throttling out of
//! the way; mean, median, p95 and Welch's t on the difference of means, asserted under 2 ms.

use std::time::Instant;

use reqwest::StatusCode;

use crate::helpers::{client, csrf_in, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

/// Limits no test here reaches: every attempt is checked, none is throttled.
const NO_THROTTLE: &[(&str, &str)] = &[
    ("VIGIL_THROTTLE_ACCOUNT_FAILURES", "10000"),
    ("VIGIL_THROTTLE_IP_FAILURES", "1000000"),
];

/// One browser posting wrong passwords for `username` with the form it loaded once.
struct Prober {
    http: reqwest::Client,
    csrf: String,
    username: &'static str,
}

/// What a user (or an attacker) can see of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: StatusCode,
    /// Header names and values, with the cookie values and the date left out.
    headers: Vec<(String, String)>,
    /// The body with the CSRF token and the typed username replaced.
    body: String,
}

impl Prober {
    async fn new(app: &TestApp, username: &'static str) -> Prober {
        let http = client(app.port);
        let page = http
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Prober {
            http,
            csrf: csrf_in(&page),
            username,
        }
    }

    async fn post(&self, app: &TestApp) -> (Seen, f64) {
        let t = Instant::now();
        let r = self
            .http
            .post(app.url("/login"))
            .form(&[
                ("username", self.username),
                ("password", "not the password at all"),
                ("csrf_token", &self.csrf),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| {
                let v = v.to_str().unwrap_or("").to_owned();
                let v = if k == "set-cookie" {
                    // name and attributes; the value is random per answer
                    let (name, rest) = v.split_once('=').unwrap_or((&v, ""));
                    let attrs = rest.split_once(';').map(|x| x.1).unwrap_or("");
                    format!("{name}=…;{attrs}")
                } else if k == "content-length" {
                    // compared through the normalised body instead
                    String::from("…")
                } else {
                    v
                };
                (k.as_str().to_owned(), v)
            })
            .collect();
        headers.sort();
        let body = r.text().await.unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let token = csrf_in(&body);
        let body = body
            .replace(&token, "CSRF")
            .replace(self.username, "USERNAME");
        (
            Seen {
                status,
                headers,
                body,
            },
            ms,
        )
    }
}

const EXISTING: &str = "alice";
const UNKNOWN: &str = "nobody-by-this-name";

async fn existing_and_unknown_answer_alike(b: Backend) {
    let app = spawn_app_with(b, NO_THROTTLE).await.unwrap();
    app.add_user(EXISTING, false).await;
    let known = Prober::new(&app, EXISTING).await;
    let unknown = Prober::new(&app, UNKNOWN).await;
    for _ in 0..5 {
        let (k, _) = known.post(&app).await;
        let (u, _) = unknown.post(&app).await;
        assert_eq!(k.status, StatusCode::UNAUTHORIZED);
        assert_eq!(k, u, "an existing and an unknown username answer alike");
    }
}
on_both_backends!(
    existing_and_unknown_answer_alike,
    super::existing_and_unknown_answer_alike
);

struct Stats {
    n: usize,
    mean: f64,
    var: f64,
    median: f64,
    p95: f64,
}

fn stats(xs: &[f64]) -> Stats {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        n,
        mean,
        var,
        median: s[n / 2],
        p95: s[(n * 95) / 100],
    }
}

/// 2,000 samples of each kind, interleaved (which kind goes first alternates), production
/// argon2id cost. Asserts identical answers and |difference of means| < 2 ms.
async fn timing(b: Backend) {
    let samples: usize = std::env::var("VIGIL_ENUM_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut env = NO_THROTTLE.to_vec();
    // What production runs (OWASP's argon2id): the timing that matters is the real one.
    env.push(("VIGIL_ARGON2_MEMORY_KIB", "19456"));
    env.push(("VIGIL_ARGON2_ITERATIONS", "2"));
    let app = spawn_app_with(b, &env).await.unwrap();
    app.add_user(EXISTING, false).await;
    let known = Prober::new(&app, EXISTING).await;
    let unknown = Prober::new(&app, UNKNOWN).await;
    // Warm up both paths (connections, caches, the hasher's memory).
    for _ in 0..20 {
        known.post(&app).await;
        unknown.post(&app).await;
    }
    let (reference, _) = known.post(&app).await;
    let (mut tk, mut tu) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let t0 = Instant::now();
    for i in 0..samples {
        let order: [(&Prober, bool); 2] = if i % 2 == 0 {
            [(&known, true), (&unknown, false)]
        } else {
            [(&unknown, false), (&known, true)]
        };
        for (p, is_known) in order {
            let (seen, ms) = p.post(&app).await;
            assert_eq!(seen, reference, "sample {i}: answers differ");
            if is_known {
                tk.push(ms);
            } else {
                tu.push(ms);
            }
        }
    }
    let (k, u) = (stats(&tk), stats(&tu));
    let diff = k.mean - u.mean;
    let se = (k.var / k.n as f64 + u.var / u.n as f64).sqrt();
    let t = diff / se;
    let dof = (k.var / k.n as f64 + u.var / u.n as f64).powi(2)
        / ((k.var / k.n as f64).powi(2) / (k.n as f64 - 1.0)
            + (u.var / u.n as f64).powi(2) / (u.n as f64 - 1.0));
    // n in the thousands: the t quantile is the normal one to three decimals.
    let (lo, hi) = (diff - 1.96 * se, diff + 1.96 * se);
    eprintln!(
        "{b:?}: {samples} + {samples} POST /login in {:?}\n  existing: mean {:.3} ms, median \
         {:.3} ms, p95 {:.3} ms, sd {:.3} ms\n  unknown:  mean {:.3} ms, median {:.3} ms, p95 \
         {:.3} ms, sd {:.3} ms\n  difference of means {:+.3} ms, 95% CI [{:+.3}, {:+.3}] ms, \
         Welch t = {:.2} (dof {:.0})",
        t0.elapsed(),
        k.mean,
        k.median,
        k.p95,
        k.var.sqrt(),
        u.mean,
        u.median,
        u.p95,
        u.var.sqrt(),
        diff,
        lo,
        hi,
        t,
        dof
    );
    assert!(
        diff.abs() < 2.0,
        "mean time differs by {diff:.3} ms between an existing and an unknown username"
    );
}

#[actix_web::test]
#[ignore = "statistical timing test: run with --release -- --ignored --nocapture"]
async fn enumeration_timing_sqlite() {
    timing(Backend::Sqlite).await;
}

#[actix_web::test]
#[ignore = "statistical timing test: run with --release -- --ignored --nocapture"]
async fn enumeration_timing_postgres() {
    if crate::helpers::pg_admin_url().is_none() {
        eprintln!("VIGIL_TEST_DATABASE_URL not set: PostgreSQL variant skipped");
        return;
    }
    timing(Backend::Postgres).await;
}
