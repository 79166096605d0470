//! The review queue: sign-ins a person should look at (blocked, failed step-ups, high risk,
//! reported by their user) and the verdicts given on them. A verdict is one transaction: the
//! review closes (once: a second verdict is refused), the risk engine learns from it through
//! `risk::apply_verdict`, the account is locked if asked, and the audit log records it.
//!
//! Enqueueing happens in the sign-in's own transaction (`login::log_signin`, one insert); no
//! sign-in ever waits for an admin.

use serde::Serialize;

use super::accounts::Actor;
use super::containment::{contain, notify, set_risk, Cause, Contained};
use super::enforce::AccountRisk;
use super::signin_log::{when, Entry};
use super::{FlowError, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::risk::{Assessment, SignInFeatures};
use crate::store::reviews::{self, ReviewRow, ATTACK, LEGITIMATE, OPEN};
use crate::store::{self, signin_log, signins, users, StoreError};

/// Open items per page (newest first; older pages follow a cursor), and decided items below
/// the first page.
pub const OPEN_PAGE: i64 = 50;
pub const DECIDED_SHOWN: i64 = 50;
/// Contributions shown per item: the strongest reasons are what an admin needs first.
const TOP_CONTRIBUTIONS: usize = 3;

/// One review with the sign-in it is about, made readable.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub kind: String,
    pub recommended: String,
    pub status: String,
    pub created: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
    /// None when the sign-in row is gone (its user was deleted).
    pub signin: Option<Entry>,
    /// The strongest contributions, as `explain` words them.
    pub explanation: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub open: Vec<Item>,
    pub decided: Vec<Item>,
    pub open_total: i64,
    /// The cursor of the next (older) page of open items, when there is one.
    pub next: Option<String>,
    /// This page follows a cursor (the page links back to the newest items).
    pub older_page: bool,
}

/// Where a page of the open queue starts, as it travels in a link: `created_at.review_id`.
/// Only a value of that shape is a cursor; anything else is the first page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(reviews::Before);

impl PageCursor {
    pub fn parse(s: &str) -> Option<Self> {
        let (at, id) = s.split_once('.')?;
        let created_at = at.parse::<i64>().ok()?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        id_ok.then(|| {
            PageCursor(reviews::Before {
                created_at,
                id: id.to_owned(),
            })
        })
    }

    fn after(r: &ReviewRow) -> String {
        format!("{}.{}", r.created_at, r.id)
    }
}

fn explanation(row: &signins::SigninRow) -> Vec<String> {
    let Some(a) = row
        .assessment
        .as_deref()
        .and_then(|j| serde_json::from_str::<Assessment>(j).ok())
    else {
        return Vec::new();
    };
    // `explain` sorts by contribution, strongest first, and signs each line.
    crate::risk::explain(&a)
        .into_iter()
        .filter(|line| line.starts_with('+') && !line.starts_with("+0.00"))
        .take(TOP_CONTRIBUTIONS)
        .collect()
}

/// One page of the open queue (from `page`, or the newest) and, with the first page, the latest
/// verdicts. Reviews and their sign-ins come in one query per list, names in one more.
pub async fn queue(svc: &Services, page: Option<PageCursor>) -> Result<Queue, FlowError> {
    let older_page = page.is_some();
    let (mut open, decided, open_total, names) = svc
        .db
        .run(move |c| {
            // One more than a page: whether an older page exists, without counting.
            let open = reviews::open_page(c, page.as_ref().map(|p| &p.0), OPEN_PAGE + 1)?;
            let decided = if older_page {
                Vec::new()
            } else {
                reviews::decided_with_signins(c, DECIDED_SHOWN)?
            };
            let open_total = reviews::count_open(c)?;
            let mut ids = Vec::new();
            for (r, _) in open.iter().chain(decided.iter()) {
                ids.extend(r.user_id.clone());
                ids.extend(r.decided_by.clone());
            }
            let names = signin_log::usernames(c, &ids)?;
            Ok((open, decided, open_total, names))
        })
        .await?;
    let next = (open.len() as i64 > OPEN_PAGE)
        .then(|| {
            open.truncate(usize::try_from(OPEN_PAGE).unwrap_or(usize::MAX));
            open.last().map(|(r, _)| PageCursor::after(r))
        })
        .flatten();
    let item = |(r, row): &(ReviewRow, Option<signins::SigninRow>)| {
        let row = row.as_ref();
        Item {
            id: r.id.clone(),
            kind: r.kind.clone(),
            recommended: r.recommended.clone(),
            status: r.status.clone(),
            created: when(r.created_at),
            decided_by: r
                .decided_by
                .as_ref()
                .map(|u| names.get(u).cloned().unwrap_or_else(|| u.clone())),
            decided_at: r.decided_at.map(when),
            note: r.note.clone(),
            signin: row.map(|s| Entry::from_row(s, &names)),
            explanation: row.map(explanation).unwrap_or_default(),
        }
    };
    Ok(Queue {
        open: open.iter().map(item).collect(),
        decided: decided.iter().map(item).collect(),
        open_total,
        next,
        older_page,
    })
}

/// What the admin decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Legitimate,
    /// `lock`: also disable the account.
    Attack {
        lock: bool,
    },
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Legitimate => LEGITIMATE,
            Verdict::Attack { .. } => ATTACK,
        }
    }
}

/// Give a verdict on an open review. `Conflict` (with a message for people) if it was decided
/// already, by this admin or another.
pub async fn decide(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    review_id: &str,
    verdict: Verdict,
    note: Option<String>,
) -> Result<(), FlowError> {
    let (auditor, actor, id) = (svc.auditor.clone(), actor.clone(), review_id.to_owned());
    let note = note
        .map(|n| n.trim().chars().take(500).collect::<String>())
        .filter(|n| !n.is_empty());
    let result = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(review) = reviews::find(c, &id)? else {
                    return Ok(Err(FlowError::NotFound("review".into())));
                };
                if review.status != OPEN {
                    return Ok(Err(already_decided(c, &review)?));
                }
                let lock = matches!(verdict, Verdict::Attack { lock: true });
                if lock {
                    if let Some(uid) = &review.user_id {
                        if let Some(u) = users::find(c, uid)? {
                            users::lock_admins(c)?;
                            let admin = super::access::console_of(c, &u.id)?.admin;
                            if admin && !u.disabled && users::count_active_admins(c)? <= 1 {
                                return Ok(Err(FlowError::Invalid(
                                    "This is the last active administrator; locking the account would leave nobody to run vigil. Give the verdict without locking.".into(),
                                )));
                            }
                        }
                    }
                }
                match reviews::decide(c, &id, verdict.name(), &actor.id, note.as_deref(), now.micros()) {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        let review = reviews::find(c, &id)?.ok_or(StoreError::NotFound)?;
                        return Ok(Err(already_decided(c, &review)?));
                    }
                    Err(e) => return Err(e),
                }
                let signin = signins::find(c, &review.signin_id)?;
                let signin_at = signin.as_ref().map(|s| s.at).unwrap_or(review.created_at);
                let features = signin.and_then(|s| {
                    s.features
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<SignInFeatures>(j).ok())
                });
                let mut contained = Contained::default();
                if let Some(uid) = &review.user_id {
                    if let Some(f) = &features {
                        super::risk::apply_verdict(c, uid, f, verdict == Verdict::Legitimate, now)?;
                    }
                    if verdict != Verdict::Legitimate {
                        // An attack: the account is compromised and everything it holds ends.
                        if lock {
                            store::users::set_disabled(c, uid, true, now.micros())?;
                        }
                        contained = contain(
                            c,
                            &auditor,
                            &actor,
                            now,
                            uid,
                            Cause::AttackVerdict { signin_at },
                            None,
                        )?;
                        set_risk(c, &auditor, &actor, now, uid, AccountRisk::Compromised, "attack_verdict")?;
                    }
                }
                auditor.record(
                    c,
                    now,
                    actor
                        .event("review.verdict")
                        .target(review.signin_id.clone())
                        .details(serde_json::json!({
                            "verdict": verdict.name(),
                            "kind": review.kind,
                            "user": review.user_id,
                            "lock": lock,
                            "review": review.id,
                        })),
                )?;
                Ok(Ok(contained))
            })
        })
        .await?;
    // A verdict may have changed the population statistics: score with the new ones.
    svc.risk.global.invalidate();
    let contained = result?;
    let _ = notify(svc, now, &contained).await;
    Ok(())
}

/// The message for a second verdict: who gave the first one, and when.
fn already_decided(c: &mut store::DbConn, r: &ReviewRow) -> Result<FlowError, StoreError> {
    let by = match &r.decided_by {
        Some(id) => users::find(c, id)?
            .map(|u| u.username)
            .unwrap_or_else(|| id.clone()),
        None => "someone".into(),
    };
    let at = r.decided_at.map(when).unwrap_or_else(|| "—".into());
    Ok(FlowError::Conflict(format!(
        "This sign-in was already judged {} by {by} at {at} UTC; a review takes one verdict.",
        r.status
    )))
}

/// What a "this wasn't me" report did.
#[derive(Debug, Clone, Copy)]
pub struct Reported {
    pub sessions_ended: usize,
    /// False when the user had reported this sign-in before (nothing was learned twice).
    pub first_report: bool,
}

/// The user says one of their sign-ins was not them: every session of the account ends
/// (including the one reporting), the sign-in goes into the review queue already judged an
/// attack by the user, the risk engine counts its network and device against, and the next
/// sign-in must choose a new password. Another user's sign-in is `NotFound`.
pub async fn report(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    signin_id: &str,
    ip: std::net::IpAddr,
) -> Result<Reported, FlowError> {
    // Two clicks at once race on the unique (sign-in, kind) index; the loser's second try
    // sees the first report and only ends sessions again.
    match report_once(svc, now, user_id, signin_id, ip).await {
        Err(FlowError::Store(StoreError::Conflict(_))) => {
            report_once(svc, now, user_id, signin_id, ip).await
        }
        other => other,
    }
}

async fn report_once(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    signin_id: &str,
    ip: std::net::IpAddr,
) -> Result<Reported, FlowError> {
    let (auditor, uid, sid) = (
        svc.auditor.clone(),
        user_id.to_owned(),
        signin_id.to_owned(),
    );
    let done = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let Some(row) = signins::find(c, &sid)? else {
                    return Ok(None);
                };
                if row.user_id.as_deref() != Some(uid.as_str()) {
                    return Ok(None);
                }
                // The user's word moves this account only: the network's global reputation
                // changes on an admin's verdict, never on a report anyone can file.
                let first_report = reviews::report(c, &row.id, &uid, now.micros())?;
                let actor = Actor::admin(uid.clone(), ip);
                let contained = contain(
                    c,
                    &auditor,
                    &actor,
                    now,
                    &uid,
                    Cause::Reported { signin_at: row.at },
                    None,
                )?;
                set_risk(
                    c,
                    &auditor,
                    &actor,
                    now,
                    &uid,
                    AccountRisk::Compromised,
                    "reported",
                )?;
                let sessions_ended = contained.sessions.len();
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("signin.reported")
                        .actor(uid.clone())
                        .target(row.id.clone())
                        .ip(ip)
                        .details(serde_json::json!({
                            "sessions_ended": sessions_ended,
                            "first_report": first_report,
                        })),
                )?;
                Ok(Some((
                    Reported {
                        sessions_ended,
                        first_report,
                    },
                    contained,
                )))
            })
        })
        .await?;
    let (reported, contained) = done.ok_or_else(|| FlowError::NotFound("sign-in".into()))?;
    let _ = notify(svc, now, &contained).await;
    Ok(reported)
}
