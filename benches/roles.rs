//! What the roles and groups claims cost at token issuance: `access::for_token` (one
//! `UNION ALL` query) for one user of 10,000, on a real SQLite database with 1,000 groups, 20
//! clients of 50 roles each, every user in 5 groups and holding 2 roles directly, every group
//! holding 3 roles. Besides the criterion figure it prints how many roles and groups one lookup
//! returned, so the work measured is visible.
//!
//! `cargo bench --bench roles -- --warm-up-time 1 --measurement-time 5`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection as _;
use vigil::config::Settings;
use vigil::flow::{access, Services};
use vigil::store::{DbConn, StoreError};

const USERS: u32 = 10_000;
const GROUPS: u32 = 1_000;
const CLIENTS: u32 = 20;
const ROLES_PER_CLIENT: u32 = 50;

/// The data set, in a few set-based statements (no argon2: the accounts never sign in).
fn fill(c: &mut DbConn) -> Result<(), StoreError> {
    let DbConn::Sqlite(s) = c else {
        return Err(StoreError::Pool("the bench fills SQLite".into()));
    };
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
         INSERT INTO users (id, username, email, name, password_hash, disabled, created_at,
                            updated_at, must_change_password, risk_state)
         SELECT 'u' || i, 'user-' || i, 'user-' || i || '@example.com', '', 'x', FALSE, 0, 0,
                FALSE, 'none' FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {GROUPS})
         INSERT INTO groups (id, name, description, created_at, updated_at)
         SELECT 'g' || i, 'group-' || i, '', 0, 0 FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CLIENTS})
         INSERT INTO clients (id, name, secret_hash, public, first_party, redirect_uris,
                              post_logout_redirect_uris, grant_types, require_pkce, created_at,
                              updated_at, id_token_alg, access_token_alg)
         SELECT 'client-' || i, 'Client ' || i, 'x', FALSE, TRUE, '[]', '[]',
                '[\"client_credentials\"]', TRUE, 0, 0, 'RS256', 'RS256' FROM n;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n
                                 WHERE i < {CLIENTS} * {ROLES_PER_CLIENT} - 1)
         INSERT INTO roles (id, client_id, name, description, privileged, created_at)
         SELECT 'r' || i, 'client-' || (i / {ROLES_PER_CLIENT} + 1),
                'role-' || (i % {ROLES_PER_CLIENT}), '', i % 10 = 0, 0 FROM n;
         -- every user in 5 groups (spread so that groups have about 50 members each)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS}),
                        k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 4)
         INSERT INTO group_members (group_id, user_id, added_at)
         SELECT 'g' || ((i * 7 + j * 211) % {GROUPS} + 1), 'u' || i, 0 FROM n, k;
         -- every group holds 3 roles, every user 2 directly, across all clients
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {GROUPS}),
                        k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 2)
         INSERT INTO role_grants (id, role_id, user_id, group_id, granted_at)
         SELECT 'gg' || i || '-' || j, 'r' || ((i * 13 + j * 337) % ({CLIENTS} * {ROLES_PER_CLIENT})),
                NULL, 'g' || i, 0 FROM n, k;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS}),
                        k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 1)
         INSERT INTO role_grants (id, role_id, user_id, group_id, granted_at)
         SELECT 'ug' || i || '-' || j, 'r' || ((i * 17 + j * 499) % ({CLIENTS} * {ROLES_PER_CLIENT})),
                'u' || i, NULL, 0 FROM n, k;"
    );
    s.batch_execute(&sql)?;
    Ok(())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("VIGIL_ISSUER", "http://localhost:8080".to_owned()),
        (
            "VIGIL_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("v.db").display()),
        ),
        ("VIGIL_GEOIP_CITY", String::new()),
        ("VIGIL_GEOIP_ASN", String::new()),
        (
            "VIGIL_MASTER_KEY",
            "dmlnaWwtdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=".into(),
        ),
    ] {
        env.insert(k.to_owned(), v);
    }
    let svc = Services::start(Settings::from_env_map(&env).unwrap(), None).unwrap();
    let t0 = Instant::now();
    rt.block_on(svc.db.run(fill)).unwrap();
    eprintln!("filled in {:.1} s", t0.elapsed().as_secs_f64());
    // What one lookup returns, for a few users of client-1.
    for u in [1, 5_000, 10_000] {
        let a = rt
            .block_on(
                svc.db
                    .run(move |c| access::for_token(c, &format!("u{u}"), "client-1")),
            )
            .unwrap();
        eprintln!(
            "u{u}: {} roles of client-1, {} groups",
            a.roles.len(),
            a.groups.len()
        );
    }
    let mut g = c.benchmark_group("roles");
    let mut i = 0u32;
    g.bench_function("for_token_10k_users_1k_groups_50_roles", |b| {
        b.iter(|| {
            i = i % USERS + 1;
            let (user, client) = (format!("u{i}"), format!("client-{}", i % CLIENTS + 1));
            black_box(
                rt.block_on(svc.db.run(move |c| access::for_token(c, &user, &client)))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
