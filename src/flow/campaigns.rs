//! Access reviews: people decide, the miners recommend. A campaign takes a scope (a client's
//! roles, a group's members, every privileged role, dormant accounts, or one account's
//! privileged access), reviewers (the console's `admin`, or `helpdesk` as well), a deadline and
//! what closing does to undecided items. Each item — a (user, role), a (user, group) or an
//! account — carries a recommendation (keep or remove) and its evidence from `src/access/`.
//!
//! ```text
//!  create ──► items (snapshot + miners)      decide(items) ──► one transaction: decisions,
//!                                                               removals through the normal
//!  deadline or "close" ──► undecided items                     revocation, an audit entry each
//!                          get the campaign's default           (followed or overrode)
//!  account enters at_risk / compromised ──► a review of its privileged access, opened at once
//! ```
//!
//! A removal goes through the same store functions and audit events as an admin's (`role.revoked`,
//! `group.member_removed`, `user.disabled`): tokens issued after it no longer carry the role, and
//! the refresh path re-reads roles, so the next refresh drops it too.

use std::collections::HashMap;

use super::access::console_of;
use super::access::{change_grant, change_member, keeping_an_admin, Grantee};
use super::accounts::{set_disabled_in, Actor};
use super::containment::{notify, Contained};
use super::enforce::{may_act_on, AccountRisk, ConsoleRoles};
use super::{FlowError, Services};
use crate::access::{analyse, Action, Finding, Kind, Params};
use crate::audit::Auditor;
use crate::clock::Timestamp;
use crate::store::campaigns::{self, Campaign, Item};
use crate::store::{self, new_id, usage, users, DbConn, StoreError, StoreResult};

const DAY: i64 = 86_400;
pub const KEEP: &str = "keep";
pub const REMOVE: &str = "remove";
/// How long a risk-triggered review stays open.
pub const RISK_REVIEW_DAYS: i64 = 7;

/// What a campaign reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The direct holders of a client's roles.
    ClientRoles(String),
    /// A group's members.
    GroupMembers(String),
    /// Every direct grant of a privileged role.
    Privileged,
    /// Accounts the miners call dormant (remove = disable).
    Dormant,
    /// One account's privileged roles and the groups that give it one (by user id): opened when
    /// the account enters `at_risk` or `compromised`.
    AccountPrivileged(String),
}

impl Scope {
    pub fn parse(kind: &str, target: &str) -> Result<Scope, String> {
        let target = target.trim();
        let need = |what: &str| {
            if target.is_empty() {
                Err(format!("Name the {what} this review is for."))
            } else {
                Ok(target.to_owned())
            }
        };
        match kind {
            "client_roles" => need("client").map(Scope::ClientRoles),
            "group_members" => need("group").map(Scope::GroupMembers),
            "privileged" => Ok(Scope::Privileged),
            "dormant" => Ok(Scope::Dormant),
            _ => Err(
                "Choose what to review: a client's roles, a group's members, privileged roles or dormant accounts."
                    .into(),
            ),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Scope::ClientRoles(_) => "client_roles",
            Scope::GroupMembers(_) => "group_members",
            Scope::Privileged => "privileged",
            Scope::Dormant => "dormant",
            Scope::AccountPrivileged(_) => "account_privileged",
        }
    }
    fn target(&self) -> Option<String> {
        match self {
            Scope::ClientRoles(t) | Scope::GroupMembers(t) | Scope::AccountPrivileged(t) => {
                Some(t.clone())
            }
            Scope::Privileged | Scope::Dormant => None,
        }
    }
}

/// A campaign as an admin asks for it.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub scope: Scope,
    /// `helpdesk` may decide as well as `admin`.
    pub helpdesk_reviews: bool,
    pub deadline_days: i64,
    /// Closing removes what nobody decided (otherwise keeps it).
    pub remove_undecided: bool,
}

/// Whether the console's `helpdesk` may decide this campaign's items (admins always may): the
/// fact `flow::enforce` weighs for `Area::AccessReview`.
pub fn helpdesk_reviews(c: &Campaign) -> bool {
    c.reviewers == "helpdesk"
}

/// A store error as a person can act on it: not found, or a conflict with its message.
fn readable(what: &'static str) -> impl FnOnce(StoreError) -> FlowError {
    move |e| match e {
        StoreError::NotFound => FlowError::NotFound(what.into()),
        StoreError::Conflict(m) => FlowError::Conflict(m),
        other => other.into(),
    }
}

/// [`helpdesk_reviews`] of a campaign by id (false when there is none: admins only).
pub async fn helpdesk_may(svc: &Services, id: &str) -> Result<bool, FlowError> {
    let id = id.to_owned();
    Ok(svc
        .db
        .run(move |c| campaigns::find(c, &id))
        .await?
        .is_some_and(|c| helpdesk_reviews(&c)))
}

fn words_since(now: i64, t: Option<i64>, what: &str, never: &str) -> String {
    match t {
        Some(t) => format!("{what} {} days ago", (now - t).max(0) / DAY),
        None => never.to_owned(),
    }
}

/// The items of a campaign, with the miners' recommendation and evidence (inside the caller's
/// transaction: a snapshot, the findings, and the scope's rows).
fn items_for(
    c: &mut DbConn,
    campaign_id: &str,
    scope: &Scope,
    now: Timestamp,
    why: Option<&str>,
) -> StoreResult<Vec<Item>> {
    if let Scope::AccountPrivileged(user_id) = scope {
        return account_privileged_items(c, campaign_id, user_id, now, why);
    }
    let snap = usage::snapshot(c, now.micros())?;
    let findings = analyse(&snap, &Params::default());
    let ids: HashMap<String, String> = users::id_by_username(c)?;
    let now_s = snap.now;
    let by_grant: HashMap<(&str, &str, &str), &Finding> = findings
        .iter()
        .filter(|f| matches!(f.kind, Kind::UnusedGrant | Kind::PeerOutlier))
        .filter_map(|f| {
            Some((
                (
                    f.username.as_deref()?,
                    f.client_id.as_deref()?,
                    f.role.as_deref()?,
                ),
                f,
            ))
        })
        .collect();
    let dormant: HashMap<&str, &Finding> = findings
        .iter()
        .filter(|f| f.kind == Kind::DormantAccount)
        .filter_map(|f| Some((f.username.as_deref()?, f)))
        .collect();
    let used: HashMap<(&str, &str, &str), i64> = snap
        .uses
        .iter()
        .map(|u| {
            (
                (u.username.as_str(), u.client_id.as_str(), u.role.as_str()),
                u.last_used_at,
            )
        })
        .collect();
    let item = |username: &str| -> Option<Item> {
        Some(blank_item(campaign_id, ids.get(username)?, username))
    };
    let grant_item = |g: &crate::access::Grant| -> Option<Item> {
        let mut it = item(&g.holder)?;
        it.client_id = Some(g.client_id.clone());
        it.role = Some(g.role.clone());
        it.privileged = g.privileged;
        let key = (g.holder.as_str(), g.client_id.as_str(), g.role.as_str());
        if let Some(d) = dormant.get(g.holder.as_str()) {
            it.recommendation = REMOVE.into();
            it.evidence = format!("the account is dormant: {}", d.evidence);
        } else if let Some(f) = by_grant.get(&key) {
            it.recommendation = if f.action == Action::Remove {
                REMOVE
            } else {
                KEEP
            }
            .into();
            it.evidence = f.evidence.clone();
        } else {
            it.evidence = words_since(
                now_s,
                used.get(&key).copied(),
                "in a token",
                "not in a token yet (granted recently)",
            );
        }
        Some(it)
    };
    let mut out = Vec::new();
    match scope {
        Scope::ClientRoles(client) => {
            out.extend(
                snap.grants
                    .iter()
                    .filter(|g| !g.to_group && g.client_id == *client)
                    .filter_map(grant_item),
            );
        }
        Scope::Privileged => {
            out.extend(
                snap.grants
                    .iter()
                    .filter(|g| !g.to_group && g.privileged)
                    .filter_map(grant_item),
            );
        }
        // Read from the account's own rows, above.
        Scope::AccountPrivileged(_) => {}
        Scope::GroupMembers(group) => {
            for a in snap.accounts.iter().filter(|a| a.groups.contains(group)) {
                if let Some(mut it) = item(&a.username) {
                    it.group_name = Some(group.clone());
                    if let Some(d) = dormant.get(a.username.as_str()) {
                        it.recommendation = REMOVE.into();
                        it.evidence = format!("the account is dormant: {}", d.evidence);
                    } else {
                        it.evidence = words_since(
                            now_s,
                            a.last_signin_at,
                            "last verified sign-in",
                            "no verified sign-in yet",
                        );
                    }
                    out.push(it);
                }
            }
        }
        Scope::Dormant => {
            for (name, f) in &dormant {
                if let Some(mut it) = item(name) {
                    it.recommendation = REMOVE.into();
                    it.evidence = f.evidence.clone();
                    out.push(it);
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.username, &a.client_id, &a.role, &a.group_name).cmp(&(
            &b.username,
            &b.client_id,
            &b.role,
            &b.group_name,
        ))
    });
    Ok(out)
}

/// One account's privileged access — its privileged roles held directly, and each group that
/// gives it one — all recommended for removal. Read from that account's own rows: this runs
/// inside the transaction that moved the account's risk state, on the sign-in path, so it must
/// not read the directory.
fn account_privileged_items(
    c: &mut DbConn,
    campaign_id: &str,
    user_id: &str,
    now: Timestamp,
    why: Option<&str>,
) -> StoreResult<Vec<Item>> {
    let Some(user) = users::find(c, user_id)? else {
        return Ok(Vec::new());
    };
    let why = why.unwrap_or("the account is at risk");
    let used: HashMap<(String, String), i64> = usage::roles_used_by(c, user_id)?
        .into_iter()
        .map(|(client, role, at)| ((client, role), at))
        .collect();
    let mut out: Vec<Item> = Vec::new();
    let mut via: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (client, role, group) in store::access::effective_roles(c, user_id)? {
        if !role.privileged {
            continue;
        }
        match group {
            Some(g) => via
                .entry(g)
                .or_default()
                .push(format!("{client}/{}", role.name)),
            None => {
                let last = used.get(&(client.clone(), role.name.clone())).copied();
                out.push(Item {
                    client_id: Some(client),
                    role: Some(role.name),
                    evidence: format!(
                        "{why}; {}",
                        words_since(
                            now.secs(),
                            last.map(|t| t.div_euclid(1_000_000)),
                            "in a token",
                            "never in a token"
                        )
                    ),
                    ..blank_item(campaign_id, &user.id, &user.username)
                });
            }
        }
    }
    for (group, carries) in via {
        out.push(Item {
            group_name: Some(group.clone()),
            evidence: format!(
                "{why}; membership of {group} gives privileged {}",
                carries.join(", ")
            ),
            ..blank_item(campaign_id, &user.id, &user.username)
        });
    }
    for it in &mut out {
        it.privileged = true;
        it.recommendation = REMOVE.into();
    }
    Ok(out)
}

fn blank_item(campaign_id: &str, user_id: &str, username: &str) -> Item {
    Item {
        id: new_id(),
        campaign_id: campaign_id.to_owned(),
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        client_id: None,
        role: None,
        group_name: None,
        privileged: false,
        recommendation: KEEP.into(),
        evidence: String::new(),
        decision: None,
        decided_by: None,
        decided_at: None,
        followed: None,
        applied: false,
    }
}

fn insert_campaign(
    c: &mut DbConn,
    auditor: &Auditor,
    actor: &Actor,
    now: Timestamp,
    new: &NewCampaign,
    why: Option<&str>,
) -> StoreResult<(Campaign, usize)> {
    let campaign = Campaign {
        id: new_id(),
        name: new.name.clone(),
        scope: new.scope.kind().into(),
        scope_target: new.scope.target(),
        reviewers: if new.helpdesk_reviews {
            "helpdesk"
        } else {
            "admin"
        }
        .into(),
        deadline: now.plus_secs(new.deadline_days * DAY).micros(),
        undecided: if new.remove_undecided { REMOVE } else { KEEP }.into(),
        created_by: actor.id.clone(),
        created_at: now.micros(),
        closed_at: None,
    };
    let items = items_for(c, &campaign.id, &new.scope, now, why)?;
    campaigns::insert(c, &campaign, &items)?;
    auditor.record(
        c,
        now,
        actor
            .event("access_review.opened")
            .target(campaign.id.clone())
            .details(serde_json::json!({
                "name": campaign.name,
                "scope": campaign.scope,
                "target": campaign.scope_target,
                "items": items.len(),
                "recommended_removals": items.iter().filter(|i| i.recommendation == REMOVE).count(),
            })),
    )?;
    Ok((campaign, items.len()))
}

/// Open a campaign (an admin, from the console).
pub async fn create(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    new: NewCampaign,
) -> Result<Campaign, FlowError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(FlowError::Invalid(
            "Give the review a name of at most 120 characters.".into(),
        ));
    }
    if !(1..=365).contains(&new.deadline_days) {
        return Err(FlowError::Invalid(
            "The deadline is 1 to 365 days away.".into(),
        ));
    }
    let new = NewCampaign {
        name: name.to_owned(),
        ..new
    };
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                match &new.scope {
                    Scope::ClientRoles(id) if !store::access::client_exists(c, id)? => {
                        return Err(StoreError::NotFound);
                    }
                    Scope::GroupMembers(g) => {
                        store::access::find_group(c, g)?.ok_or(StoreError::NotFound)?;
                    }
                    _ => {}
                }
                Ok(insert_campaign(c, &auditor, &actor, now, &new, None)?.0)
            })
        })
        .await
        .map_err(readable("that client or group"))
}

/// An account just entered `at_risk` or `compromised` (inside that transaction): open a review
/// of its privileged access, unless one is open already or it holds none. Undecided items are
/// removed at the deadline: an account at risk should not keep privileged access by default.
pub fn open_for_risk(
    c: &mut DbConn,
    auditor: &Auditor,
    now: Timestamp,
    user_id: &str,
    to: AccountRisk,
    why: &str,
) -> StoreResult<Option<String>> {
    let scope = Scope::AccountPrivileged(user_id.to_owned());
    if campaigns::open_for(c, scope.kind(), user_id)?.is_some() {
        return Ok(None);
    }
    let Some(user) = users::find(c, user_id)? else {
        return Ok(None);
    };
    let new = NewCampaign {
        name: format!(
            "Privileged access of {} (account {})",
            user.username,
            to.as_str()
        ),
        scope,
        helpdesk_reviews: false,
        deadline_days: RISK_REVIEW_DAYS,
        remove_undecided: true,
    };
    let why = format!("the account entered {} ({why})", to.as_str());
    // Only worth a campaign when there is privileged access to review.
    let probe = items_for(c, "probe", &new.scope, now, Some(&why))?;
    if probe.is_empty() {
        return Ok(None);
    }
    let (campaign, _) = insert_campaign(c, auditor, &Actor::new("system"), now, &new, Some(&why))?;
    Ok(Some(campaign.id))
}

/// A campaign with its items, for the console and the CSV export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CampaignView {
    pub campaign: Campaign,
    pub items: Vec<Item>,
    pub decided: usize,
    pub open: bool,
    pub helpdesk_reviews: bool,
}

pub async fn list(svc: &Services) -> Result<Vec<(Campaign, i64, i64)>, FlowError> {
    Ok(svc.db.run(campaigns::list).await?)
}

pub async fn view(svc: &Services, id: &str) -> Result<CampaignView, FlowError> {
    let id = id.to_owned();
    let found = svc
        .db
        .run(move |c| {
            let Some(campaign) = campaigns::find(c, &id)? else {
                return Ok(None);
            };
            let items = campaigns::items(c, &id)?;
            Ok(Some((campaign, items)))
        })
        .await?;
    let (campaign, items) = found.ok_or_else(|| FlowError::NotFound("access review".into()))?;
    Ok(CampaignView {
        decided: items.iter().filter(|i| i.decision.is_some()).count(),
        open: campaign.closed_at.is_none(),
        helpdesk_reviews: helpdesk_reviews(&campaign),
        campaign,
        items,
    })
}

/// One reviewer's decisions: `(item id, keep|remove)`.
pub type Decisions = Vec<(String, String)>;

/// Carry out one decided item (removal through the normal revocation), audited with the
/// recommendation it followed or overrode.
#[allow(clippy::too_many_arguments)]
fn apply(
    c: &mut DbConn,
    auditor: &Auditor,
    actor: &Actor,
    now: Timestamp,
    campaign: &Campaign,
    item: &Item,
    decision: &str,
    contained: &mut Vec<Contained>,
) -> StoreResult<()> {
    let followed = decision == item.recommendation;
    if !campaigns::decide(c, &item.id, decision, &actor.id, now.micros(), followed)? {
        return Err(StoreError::Conflict(format!(
            "{} was decided meanwhile (by another reviewer or the deadline); reload the page.",
            item.username
        )));
    }
    if decision == REMOVE {
        match (&item.client_id, &item.role, &item.group_name) {
            (Some(client), Some(role), _) => {
                // Already gone (revoked by hand meanwhile) is done, not an error.
                match change_grant(
                    c,
                    auditor,
                    actor,
                    now,
                    client,
                    role,
                    &Grantee::UserId(item.user_id.clone()),
                    false,
                ) {
                    Ok(_) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            (_, _, Some(group)) => {
                if let Some(u) = users::find(c, &item.user_id)? {
                    match change_member(c, auditor, actor, now, group, &u, false) {
                        Ok(_) | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {
                if users::find(c, &item.user_id)?.is_some_and(|u| !u.disabled) {
                    let done = keeping_an_admin(c, |c| {
                        set_disabled_in(c, auditor, actor, now, &item.user_id, true)
                    })?;
                    contained.push(done);
                }
            }
        }
        campaigns::mark_applied(c, &item.id)?;
    }
    auditor.record(
        c,
        now,
        actor
            .event("access_review.decided")
            .target(item.user_id.clone())
            .details(serde_json::json!({
                "campaign": campaign.id,
                "item": item.id,
                "username": item.username,
                "client_id": item.client_id,
                "role": item.role,
                "group": item.group_name,
                "decision": decision,
                "recommendation": item.recommendation,
                "followed": followed,
                "evidence": item.evidence,
            })),
    )?;
    Ok(())
}

/// Record and carry out decisions, all in one transaction (none if any fails).
pub async fn decide(
    svc: &Services,
    actor: &Actor,
    reviewer: ConsoleRoles,
    now: Timestamp,
    campaign_id: &str,
    decisions: Decisions,
) -> Result<usize, FlowError> {
    if decisions.is_empty() {
        return Err(FlowError::Invalid("Choose at least one item.".into()));
    }
    if let Some((_, d)) = decisions.iter().find(|(_, d)| d != KEEP && d != REMOVE) {
        return Err(FlowError::Invalid(format!(
            "\"{}\" is not a decision: keep or remove.",
            d.chars().take(20).collect::<String>()
        )));
    }
    let count = decisions.len();
    let (auditor, actor, id) = (svc.auditor.clone(), actor.clone(), campaign_id.to_owned());
    let contained = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let campaign = campaigns::find(c, &id)?.ok_or(StoreError::NotFound)?;
                if campaign.closed_at.is_some() {
                    return Err(StoreError::Conflict(
                        "This review is closed; its decisions stand.".into(),
                    ));
                }
                let items: HashMap<String, Item> = campaigns::items(c, &id)?
                    .into_iter()
                    .map(|i| (i.id.clone(), i))
                    .collect();
                let mut contained = Vec::new();
                for (item_id, decision) in &decisions {
                    let item = items.get(item_id).ok_or(StoreError::NotFound)?;
                    // Taking access away from a member of staff is an admin's decision.
                    if decision == REMOVE
                        && !may_act_on(reviewer, console_of(c, &item.user_id)?.any())
                    {
                        return Err(StoreError::Conflict(format!(
                            "{} holds a console role: only an administrator removes their access.",
                            item.username
                        )));
                    }
                    apply(
                        c,
                        &auditor,
                        &actor,
                        now,
                        &campaign,
                        item,
                        decision,
                        &mut contained,
                    )?;
                }
                Ok(contained)
            })
        })
        .await
        .map_err(readable("access review or item"))?;
    for done in &contained {
        let _ = notify(svc, now, done).await;
    }
    Ok(count)
}

/// Close a campaign: undecided items get its default (keep, or remove — carried out), in one
/// transaction; the deadline does it too (`close_overdue`).
pub async fn close(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    campaign_id: &str,
) -> Result<usize, FlowError> {
    let (auditor, actor, id) = (svc.auditor.clone(), actor.clone(), campaign_id.to_owned());
    let (n, contained) = svc
        .db
        .run(move |c| store::transaction(c, |c| close_in(c, &auditor, &actor, now, &id)))
        .await
        .map_err(readable("access review"))?;
    for done in &contained {
        let _ = notify(svc, now, done).await;
    }
    Ok(n)
}

fn close_in(
    c: &mut DbConn,
    auditor: &Auditor,
    actor: &Actor,
    now: Timestamp,
    id: &str,
) -> StoreResult<(usize, Vec<Contained>)> {
    let campaign = campaigns::find(c, id)?.ok_or(StoreError::NotFound)?;
    if !campaigns::close(c, id, now.micros())? {
        return Err(StoreError::Conflict(
            "This review is closed already.".into(),
        ));
    }
    let undecided: Vec<Item> = campaigns::items(c, id)?
        .into_iter()
        .filter(|i| i.decision.is_none())
        .collect();
    let mut contained = Vec::new();
    for item in &undecided {
        apply(
            c,
            auditor,
            actor,
            now,
            &campaign,
            item,
            &campaign.undecided,
            &mut contained,
        )?;
    }
    auditor.record(
        c,
        now,
        actor
            .event("access_review.closed")
            .target(id.to_owned())
            .details(serde_json::json!({
                "undecided": undecided.len(),
                "undecided_became": campaign.undecided,
            })),
    )?;
    Ok((undecided.len(), contained))
}

/// Close every campaign past its deadline (the hourly housekeeping), as `system`.
pub async fn close_overdue(svc: &Services, now: Timestamp) -> Result<usize, FlowError> {
    let ids = svc
        .db
        .run(move |c| campaigns::overdue(c, now.micros()))
        .await?;
    let mut n = 0;
    for id in ids {
        match close(svc, &Actor::new("system"), now, &id).await {
            Ok(_) => n += 1,
            Err(FlowError::Conflict(_)) => {} // another node closed it
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The campaign's decisions as CSV for auditors (SOC 2 access reviews ask for exactly this).
pub fn csv(v: &CampaignView) -> Result<Vec<u8>, FlowError> {
    use super::signin_log::cell;
    let mut w = csv::Writer::from_writer(Vec::new());
    let ts = |t: Option<i64>| {
        t.and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let err = |e: csv::Error| FlowError::Invalid(e.to_string());
    w.write_record([
        "campaign",
        "campaign_name",
        "username",
        "client_id",
        "role",
        "group",
        "privileged",
        "recommendation",
        "evidence",
        "decision",
        "followed_recommendation",
        "decided_by",
        "decided_at",
        "applied",
    ])
    .map_err(err)?;
    for i in &v.items {
        w.write_record([
            v.campaign.id.clone(),
            cell(Some(&v.campaign.name)),
            cell(Some(&i.username)),
            cell(i.client_id.as_deref()),
            cell(i.role.as_deref()),
            cell(i.group_name.as_deref()),
            i.privileged.to_string(),
            i.recommendation.clone(),
            cell(Some(&i.evidence)),
            i.decision.clone().unwrap_or_default(),
            i.followed.map(|f| f.to_string()).unwrap_or_default(),
            cell(i.decided_by.as_deref()),
            ts(i.decided_at),
            i.applied.to_string(),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| FlowError::Invalid(e.to_string()))
}
