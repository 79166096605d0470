//! The administrators' digest of high-risk events, by e-mail: every `VIGIL_ADMIN_DIGEST_HOURS`
//! (default 24), when anything happened — sign-ins blocked, sign-ins their users reported,
//! accounts put at risk or compromised — each enabled administrator with a confirmed address
//! gets the counts, the latest of each, and the review queue's length, with links to the
//! console. The hourly housekeeping of every node asks; a compare-and-set on one `risk_state`
//! row lets one node send each digest.

use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::store::{self, reviews, signins, users};

const STATE: &str = "admin_digest";
/// Items listed per kind (the console has the rest).
const LATEST: i64 = 10;

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    NotDue,
    /// Due, but nothing happened (nothing is sent).
    Quiet,
    /// Queued for this many administrators.
    Sent(usize),
}

/// Send the digest if one is due.
pub async fn send_if_due(svc: &Services, now: Timestamp) -> Result<Digest, FlowError> {
    let hours = i64::from(svc.settings.admin_digest_hours);
    if hours == 0 || !svc.mailer.enabled() {
        return Ok(Digest::NotDue);
    }
    let period = hours * 3600;
    // Claim this period: of several nodes (and of a node's retries) one moves the mark.
    let claim = svc
        .db
        .run(move |c| {
            let mut since = None;
            store::risk::update_state(c, STATE, now.micros(), &mut |current| {
                let last = current
                    .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                    .and_then(|v| v["last"].as_i64());
                match last {
                    Some(l) if now.micros() - l < period * 1_000_000 => {
                        since = None;
                        current.unwrap_or_default().to_owned()
                    }
                    other => {
                        // The first digest looks back one period.
                        since = Some(other.unwrap_or(now.minus_secs(period).micros()));
                        serde_json::json!({ "last": now.micros() }).to_string()
                    }
                }
            })?;
            Ok::<_, store::StoreError>(since)
        })
        .await?;
    let Some(since) = claim else {
        return Ok(Digest::NotDue);
    };
    let (mailer, issuer) = (svc.mailer.clone(), svc.settings.issuer.as_str().to_owned());
    let sent = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let (blocked, latest_blocked) =
                    signins::outcome_since(c, "blocked", since, LATEST)?;
                let reported = reviews::reported_since(c, since)?;
                let at_risk = users::entered_risk_since(c, since, LATEST)?;
                if blocked == 0 && reported == 0 && at_risk.is_empty() {
                    return Ok(None);
                }
                let open = reviews::count_open(c)?;
                let blocked_rows: Vec<serde_json::Value> = latest_blocked
                    .iter()
                    .map(|r| {
                        let who = r
                            .user_id
                            .as_deref()
                            .and_then(|u| users::find(c, u).ok().flatten())
                            .map(|u| u.username)
                            .unwrap_or_else(|| "(unknown account)".into());
                        serde_json::json!({
                            "when": super::signin_log::when(r.at),
                            "who": who,
                            "ip": r.ip.clone().unwrap_or_default(),
                            "link": format!("{issuer}/admin/signins/{}", r.id),
                        })
                    })
                    .collect();
                let risky: Vec<serde_json::Value> = at_risk
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "who": u.username,
                            "state": u.risk_state.replace('_', " "),
                            "link": format!("{issuer}/admin/users/{}", u.id),
                        })
                    })
                    .collect();
                let admins = users::admins_to_mail(c)?;
                for admin in &admins {
                    super::mail::queue(
                        c,
                        &mailer,
                        now,
                        &admin.email,
                        "admin_digest",
                        "High-risk activity: digest",
                        &serde_json::json!({
                            "since": super::signin_log::when(since),
                            "blocked": blocked,
                            "reported": reported,
                            "entered_risk": risky.len(),
                            "open_reviews": open,
                            "latest_blocked": blocked_rows,
                            "accounts": risky,
                            "review": format!("{issuer}/admin/review"),
                        }),
                    )?;
                }
                Ok(Some(admins.len()))
            })
        })
        .await?;
    Ok(match sent {
        None => Digest::Quiet,
        Some(n) => Digest::Sent(n),
    })
}
