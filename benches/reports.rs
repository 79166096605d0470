//! The admin reports over a large sign-in log: the fairness report (28 days) and the policy
//! backtest (7 days), on a real SQLite database filled with `REPORT_ROWS` sign-ins (default
//! 200,000: one real password sign-in, copied with other users, outcomes and times). Besides
//! the time, it prints how much the process's peak memory grew while each report ran, and what
//! reading the same rows in one query (as the reports did before they read pages) costs.
//!
//! `cargo bench --bench reports -- --warm-up-time 1 --measurement-time 5`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::RunQueryDsl as _;
use secrecy::SecretString;
use vigil::config::Settings;
use vigil::flow::accounts::{self, Actor, NewAccount};
use vigil::flow::login::{self, PasswordAttempt};
use vigil::flow::{reports, Services};
use vigil::store::{stats, DbConn, StoreError};

/// The process's peak resident memory so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Copy the one sign-in in the log `n` times over the last 7 days: 5,000 users, one in ten
/// blocked, one in ten stepped up (asked), one in ten stepped up (passed), the rest allowed.
fn fill(c: &mut DbConn, n: u64, now_us: i64) -> Result<usize, StoreError> {
    let step = 7 * 86_400_000_000 / n as i64;
    let sql = format!(
        "INSERT INTO signins (id, at, user_id, method, outcome, ip, user_agent, device_id, \
         client_id, session_id, acr, amr, features, score, level, decision, reasons, assessment, \
         model, geoip_build, candidate_decision) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         SELECT 'bench-' || i, {now_us} - i * {step}, 'user-' || (i % 5000), t.method, \
         CASE i % 10 WHEN 0 THEN 'blocked' WHEN 1 THEN 'step_up_required' \
         WHEN 2 THEN 'step_up_passed' ELSE 'success' END, \
         t.ip, t.user_agent, t.device_id, t.client_id, t.session_id, t.acr, t.amr, t.features, \
         t.score, t.level, \
         CASE i % 10 WHEN 0 THEN 'block' WHEN 1 THEN 'step_up' WHEN 2 THEN 'step_up' \
         ELSE 'allow' END, \
         t.reasons, t.assessment, t.model, t.geoip_build, t.candidate_decision \
         FROM n, (SELECT * FROM signins LIMIT 1) t"
    );
    let DbConn::Sqlite(s) = c else {
        return Err(StoreError::Pool("the bench fills SQLite".into()));
    };
    // The copies name 5,000 users that have no row: the reports never join users.
    diesel::sql_query("PRAGMA foreign_keys = OFF").execute(s)?;
    let n = diesel::sql_query(sql).execute(s);
    diesel::sql_query("PRAGMA foreign_keys = ON").execute(s)?;
    Ok(n?)
}

fn bench(c: &mut Criterion) {
    let rows: u64 = std::env::var("REPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
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
    let svc = Services::start(Settings::from_env_map(&env).unwrap(), None).unwrap();
    let now = svc.clock.now();
    let policy = rt.block_on(async {
        let password = SecretString::from("correct horse battery staple".to_owned());
        accounts::create(
            &svc,
            &Actor::new("bench"),
            now,
            NewAccount {
                username: "bench".into(),
                email: "bench@example.com".into(),
                name: String::new(),
                is_admin: false,
                password: password.clone(),
            },
        )
        .await
        .unwrap();
        login::password(
            &svc,
            now,
            PasswordAttempt {
                username: "bench".into(),
                password,
                ctx: vigil::flow::RequestContext {
                    ip: "192.0.2.1".parse().unwrap(),
                    user_agent: Some(
                        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                         Chrome/120.0 Safari/537.36"
                            .into(),
                    ),
                    device_id: Some("dev".into()),
                    accept_language: None,
                    hints: None,
                },
                previous_session: None,
                tx: None,
                want_mfa: false,
            },
        )
        .await
        .unwrap();
        let t0 = Instant::now();
        let n = svc
            .db
            .run(move |c| fill(c, rows, now.micros()))
            .await
            .unwrap();
        eprintln!("filled {n} sign-ins in {:.1} s", t0.elapsed().as_secs_f64());
        vigil::flow::policy::current(&svc).await.unwrap()
    });

    // Peak memory: each report once, before anything else grows the process.
    let before = peak_mib();
    let f = rt
        .block_on(reports::fairness(&svc, now, 28))
        .expect("fairness");
    let after_fairness = peak_mib();
    let b = rt
        .block_on(reports::backtest(&svc, now, 7, &policy))
        .expect("backtest");
    let after_backtest = peak_mib();
    let all = rt
        .block_on(svc.db.run(move |c| {
            stats::scored_page(
                c,
                0,
                &["success", "step_up_passed", "blocked"],
                None,
                i64::MAX,
            )
        }))
        .unwrap();
    let after_all = peak_mib();
    eprintln!(
        "peak memory: {before:.0} MiB before; fairness ({} legitimate sign-ins) +{:.1} MiB; \
         backtest ({} evaluated) +{:.1} MiB; the same rows in one query ({}) +{:.1} MiB",
        f.legit,
        after_fairness - before,
        b.evaluated,
        after_backtest - after_fairness,
        all.len(),
        after_all - after_backtest,
    );
    drop(all);

    let mut g = c.benchmark_group("reports");
    g.sample_size(10);
    g.bench_function(format!("fairness_28d_{rows}"), |bch| {
        bch.iter(|| black_box(rt.block_on(reports::fairness(&svc, now, 28)).unwrap()))
    });
    g.bench_function(format!("backtest_7d_{rows}"), |bch| {
        bch.iter(|| {
            black_box(
                rt.block_on(reports::backtest(&svc, now, 7, &policy))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
