//! The machine's ceilings the server is measured against (README "Performance"): how many
//! RS256 / ES256 / EdDSA signatures and argon2id verifications per second this machine reaches
//! on one core and on all cores, with nothing else in the way. The server's figures are then
//! printed as a share of these.
//!
//! `cargo bench --bench ceilings` (add `-- --secs 5` for longer runs). Not criterion: a rate
//! over all cores is the figure wanted, and each thread loops for a fixed time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use vigil::clock::Timestamp;
use vigil::oidc::keys::KeySet;

/// Operations per second of `op` on `threads` threads for `secs` seconds.
fn rate(threads: usize, secs: f64, op: Arc<dyn Fn() + Send + Sync>) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    op();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("ceilings on {cores} cores, {secs} s per figure");
    println!(
        "{:<34} {:>12} {:>12}",
        "operation", "1 core /s", "all cores /s"
    );

    let keys = Arc::new(KeySet::ephemeral(Timestamp::from_secs(0)).unwrap());
    let claims = serde_json::json!({
        "iss": "http://localhost:8080", "sub": "client-1", "aud": "client-1",
        "exp": 4_000_000_000i64, "iat": 1_700_000_000, "jti": "0190a0a0-0000-7000-8000-000000000000",
        "client_id": "client-1", "scope": "api",
    });
    for alg in ["RS256", "ES256", "EdDSA"] {
        let (k, c) = (keys.clone(), claims.clone());
        let op: Arc<dyn Fn() + Send + Sync> =
            Arc::new(move || drop(black_box(k.sign(alg, "at+jwt", &c).unwrap())));
        let one = rate(1, secs, op.clone());
        let all = rate(cores, secs, op);
        println!(
            "{:<34} {:>12.0} {:>12.0}",
            format!("{alg} signature (JWT)"),
            one,
            all
        );
    }

    // The default cost (OWASP: 19 MiB, t=2, p=1), as vigil stores it.
    let params = Params::new(19_456, 2, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::encode_b64(b"vigil-ceilings-salt").unwrap();
    let stored = argon
        .hash_password(b"user-1-password", &salt)
        .unwrap()
        .to_string();
    let verify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let parsed = PasswordHash::new(&stored).unwrap();
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        assert!(a.verify_password(b"user-1-password", &parsed).is_ok());
    });
    let one = rate(1, secs, verify.clone());
    let all = rate(cores, secs, verify);
    println!(
        "{:<34} {:>12.1} {:>12.1}",
        "argon2id verify (19 MiB, t=2)", one, all
    );

    // The same hash as the server computes it: working memory reused between verifications
    // (no 19 MiB allocation and its page faults per hash). The higher of the two rates is the
    // ceiling `auth_code` is measured against.
    let hasher = vigil::auth::password::Hasher::new(Default::default(), cores, 0).unwrap();
    let stored = Arc::new(hasher.hash_blocking("user-1-password").unwrap());
    let pooled: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        assert!(hasher.verify_blocking(&stored, "user-1-password").ok);
    });
    let one = rate(1, secs, pooled.clone());
    let all = rate(cores, secs, pooled);
    println!(
        "{:<34} {:>12.1} {:>12.1}",
        "argon2id verify, memory reused", one, all
    );
}
