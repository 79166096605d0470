//! Breached passwords through the Pwned Passwords k-anonymity range API
//! (`VIGIL_PWNED_PASSWORDS_URL`): only the first five hex digits of the password's SHA-1 leave
//! the server; the API answers every suffix it knows with that prefix (padded with fake ones),
//! and vigil looks for its own among them. Checked when a password is set (refused if
//! breached) and at each password sign-in (the account must choose a new password, after its
//! second factor when it has one: `flow::login`). When the API does not answer within
//! [`TIMEOUT`] the check fails open — a log line and `vigil_breached_password_checks_total
//! {result="unavailable"}` — so an outage elsewhere never locks people out.

use std::sync::LazyLock;
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::Services;
use crate::auth::AuthError;

/// How long a lookup may take before the check gives up (fails open).
pub const TIMEOUT: Duration = Duration::from_secs(3);

static HTTP: LazyLock<Option<reqwest::Client>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
});

/// What the range API said of a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// Seen this many times in known breaches.
    Breached(u64),
    Clean,
    /// Not checked: no API configured.
    Off,
    /// The API did not answer (failed open).
    Unavailable,
}

/// The SHA-1 of `password` in upper-case hex, split into the prefix sent and the suffix kept.
fn split(password: &str) -> (String, String) {
    let hex = hex::encode_upper(Sha1::digest(password.as_bytes()));
    let (p, s) = hex.split_at(5);
    (p.to_owned(), s.to_owned())
}

/// Find `suffix` in a range response (`SUFFIX:COUNT` per line; padding lines count 0).
fn count_in(body: &str, suffix: &str) -> u64 {
    body.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .find(|(s, _)| s.eq_ignore_ascii_case(suffix))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Look `password` up.
pub async fn check(svc: &Services, password: &str) -> Breach {
    let Some(base) = svc.settings.pwned_passwords_url.as_deref() else {
        return Breach::Off;
    };
    let (prefix, suffix) = split(password);
    let answer = match HTTP.as_ref() {
        Some(http) => {
            http.get(format!("{base}{prefix}"))
                .header("Add-Padding", "true")
                .send()
                .await
        }
        None => {
            return unavailable("no HTTP client");
        }
    };
    let body = match answer {
        Ok(r) if r.status().is_success() => match r.text().await {
            Ok(b) => b,
            Err(e) => return unavailable(&e.to_string()),
        },
        Ok(r) => return unavailable(&format!("status {}", r.status())),
        Err(e) => return unavailable(&e.to_string()),
    };
    let m = &crate::telemetry::METRICS.breached_checks;
    match count_in(&body, &suffix) {
        0 => {
            m.with_label_values(&["clean"]).inc();
            Breach::Clean
        }
        n => {
            m.with_label_values(&["breached"]).inc();
            Breach::Breached(n)
        }
    }
}

fn unavailable(why: &str) -> Breach {
    tracing::warn!(error = %why, "the breached-password check could not be made; allowing the password");
    crate::telemetry::METRICS
        .breached_checks
        .with_label_values(&["unavailable"])
        .inc();
    Breach::Unavailable
}

/// Refuse a new password that is known from breaches (after the local policy).
pub async fn refuse_breached(svc: &Services, password: &str) -> Result<(), AuthError> {
    match check(svc, password).await {
        Breach::Breached(n) => Err(AuthError::WeakPassword(format!(
            "this password appears in {n} known data breaches: attackers try such passwords first; choose another"
        ))),
        _ => Ok(()),
    }
}

/// A password sign-in with a breached password (already verified): the account must choose a
/// new password at once, and one with a second factor is at risk until then — the next step
/// asks for the factor, so the password alone (which attackers have) never suffices. Audited.
/// Returns the account as it is now.
pub async fn flag_signin(
    svc: &Services,
    now: crate::clock::Timestamp,
    user: &crate::store::users::User,
    count: u64,
) -> Result<crate::store::users::User, super::FlowError> {
    use crate::store::{self, factors, users, StoreError};
    let (uid, auditor) = (user.id.clone(), svc.auditor.clone());
    Ok(svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let actor = super::accounts::Actor::new("system");
                users::require_password_change(c, &uid, now.micros())?;
                let e = factors::enrolled(c, &uid)?;
                if e.webauthn || e.totp {
                    super::containment::set_risk(
                        c,
                        &auditor,
                        &actor,
                        now,
                        &uid,
                        super::enforce::AccountRisk::AtRisk,
                        "breached_password",
                    )?;
                }
                auditor.record(
                    c,
                    now,
                    actor
                        .event("user.password_breached")
                        .target(uid.clone())
                        .details(serde_json::json!({ "breaches": count })),
                )?;
                users::find(c, &uid)?.ok_or(StoreError::NotFound)
            })
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_prefix_leaves_and_the_suffix_is_found() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let (p, s) = split("password");
        assert_eq!(p, "5BAA6");
        assert_eq!(s, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n1e4c9b93f3f0682250b6cf8331b7ee68fd8:3861493\r\nFFFF:0\r\n";
        assert_eq!(count_in(body, &s), 3_861_493);
        assert_eq!(count_in(body, "0000"), 0);
        assert_eq!(count_in("garbage\nno colon", &s), 0);
    }
}
