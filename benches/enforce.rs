//! The cost of enforcement: the pure decision (`flow::enforce::require`), the decision with the
//! account's factors loaded from the database (`check`), and a whole `refresh_token` grant with
//! its revocation checks (user, session, consent, family) — each on a real SQLite database.
//!
//! `cargo bench --bench enforce -- --warm-up-time 1 --measurement-time 3`
//! Criterion prints the mean; `ENFORCE_PERCENTILES=1` also prints p50/p99 of 2,000 refreshes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use secrecy::SecretString;
use vigil::config::Settings;
use vigil::flow::accounts::{self, Actor, NewAccount};
use vigil::flow::enforce::{self, AccountView, Action, Facts, Method};
use vigil::flow::Services;
use vigil::oidc::token::{token, TokenParams};
use vigil::risk::{AvailableFactors, Decision, Level};
use vigil::store::tokens::RefreshTokenRow;

const SECRET: &str = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz";

struct World {
    svc: Services,
    user: vigil::store::users::User,
    session: vigil::store::sessions::Session,
    _dir: tempfile::TempDir,
}

fn world(rt: &tokio::runtime::Runtime) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("VIGIL_ISSUER", "http://localhost:8080".to_owned()),
        (
            "VIGIL_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("v.db").display()),
        ),
        ("VIGIL_ARGON2_MEMORY_KIB", "1024".into()),
        ("VIGIL_ARGON2_ITERATIONS", "1".into()),
        ("VIGIL_GEOIP_CITY", String::new()),
        ("VIGIL_GEOIP_ASN", String::new()),
        (
            "VIGIL_MASTER_KEY",
            "dmlnaWwtdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=".into(),
        ),
    ] {
        env.insert(k.to_owned(), v);
    }
    let settings = Settings::from_env_map(&env).unwrap();
    rt.block_on(async {
        let svc = Services::start(settings, None).unwrap();
        let now = svc.clock.now();
        let user = accounts::create(
            &svc,
            &Actor::new("bench"),
            now,
            NewAccount {
                username: "bench".into(),
                email: "bench@example.com".into(),
                name: String::new(),
                is_admin: false,
                password: SecretString::from("correct horse battery staple".to_owned()),
            },
        )
        .await
        .unwrap();
        vigil::flow::clients::register(
            &svc,
            &Actor::new("bench"),
            now,
            vigil::flow::clients::NewClient {
                id: "rp".into(),
                name: None,
                redirect_uris: vec!["https://rp.example.com/cb".into()],
                post_logout_redirect_uris: vec![],
                public: false,
                first_party: true,
                grants: vec![],
                secret: Some(SecretString::from(SECRET.to_owned())),
                backchannel_logout_uri: None,
                id_token_alg: None,
                access_token_alg: None,
                pkce_optional: false,
                min_acr: None,
                require_role: false,
                privileged_max_age_secs: None,
                provisioning: false,
            },
        )
        .await
        .unwrap();
        let ctx = vigil::flow::RequestContext {
            ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
            device_id: Some("dev".into()),
            accept_language: None,
            hints: None,
        };
        let cfg = svc.settings.session;
        let (uid, c2) = (user.id.clone(), ctx.clone());
        let session = svc
            .db
            .run(move |c| {
                vigil::flow::session::create(c, &cfg, &uid, now, "urn:vigil:acr:pwd", &["pwd"], &c2)
            })
            .await
            .unwrap()
            .session;
        World {
            svc,
            user,
            session,
            _dir: dir,
        }
    })
}

/// A refresh token of the bench user, stored, and its plain value.
fn refresh_token(rt: &tokio::runtime::Runtime, w: &World) -> String {
    let plain = vigil::flow::random_token();
    let now = w.svc.clock.now();
    let row = RefreshTokenRow {
        id: vigil::store::new_id(),
        token_hash: vigil::store::token_digest(&plain),
        family_id: vigil::store::new_id(),
        client_id: "rp".into(),
        user_id: w.user.id.clone(),
        session_id: Some(w.session.id.clone()),
        code_id: None,
        scope: "openid offline_access".into(),
        auth_time: now.micros(),
        acr: "urn:vigil:acr:pwd".into(),
        amr: "[\"pwd\"]".into(),
        risk: "{}".into(),
        created_at: now.micros(),
        expires_at: now.plus_secs(86_400).micros(),
        family_expires_at: now.plus_secs(86_400 * 30).micros(),
        used_at: None,
        revoked_at: None,
    };
    rt.block_on(
        w.svc
            .db
            .run(move |c| vigil::store::tokens::insert_refresh(c, &row)),
    )
    .unwrap();
    plain
}

async fn refresh_once(w: &World, current: &str) -> String {
    let r = token(
        &w.svc,
        w.svc.clock.now(),
        None,
        TokenParams {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(current.to_owned()),
            client_id: Some("rp".into()),
            client_secret: Some(SECRET.into()),
            ..TokenParams::default()
        },
    )
    .await
    .unwrap();
    r.refresh_token.unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = world(&rt);
    let facts = Facts {
        now: w.svc.clock.now().micros(),
        device_id: Some("dev"),
        decision: Some((Decision::Allow, Level::Low)),
        ..Facts::default()
    };
    let view = AccountView {
        user: &w.user,
        factors: AvailableFactors::default(),
    };
    c.bench_function("enforce/require (pure)", |b| {
        b.iter(|| {
            black_box(enforce::require(
                black_box(&view),
                Some(&w.session),
                &facts,
                Action::SignIn(Method::Password),
            ))
        })
    });
    c.bench_function("enforce/check (factors from SQLite)", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(
                    rt.block_on(enforce::check(
                        &w.svc,
                        &w.user,
                        Some(&w.session),
                        &facts,
                        Action::UseSession,
                    ))
                    .unwrap(),
                );
            }
            start.elapsed()
        })
    });
    let mut current = refresh_token(&rt, &w);
    c.bench_function("token/refresh_token grant (SQLite)", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for _ in 0..n {
                current = rt.block_on(refresh_once(&w, &current));
            }
            start.elapsed()
        })
    });
    if std::env::var_os("ENFORCE_PERCENTILES").is_some() {
        let mut check = Vec::new();
        let mut refresh = Vec::new();
        for _ in 0..2_000 {
            let t = Instant::now();
            rt.block_on(enforce::check(
                &w.svc,
                &w.user,
                Some(&w.session),
                &facts,
                Action::UseSession,
            ))
            .unwrap();
            check.push(t.elapsed());
            let t = Instant::now();
            current = rt.block_on(refresh_once(&w, &current));
            refresh.push(t.elapsed());
        }
        for (name, v) in [
            ("enforce::check", &mut check),
            ("refresh grant", &mut refresh),
        ] {
            v.sort();
            let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{name}: p50 {:.3} ms, p99 {:.3} ms (n = {})",
                ms(p(0.5)),
                ms(p(0.99)),
                v.len()
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
