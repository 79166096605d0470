//! Seeding vigil's sign-in history from a log in the replay format (`vigil risk import`): a
//! previous identity provider's log when moving to vigil, so that users' profiles start warm
//! instead of every first sign-in looking novel, or a synthetic log (`vigil risk synth`) for a
//! demonstration or a test of retraining.
//!
//! Each row is scored by the live model against what the rows before it taught, as the server
//! would have, and logged as a sign-in with method `import`: successful rows become `success`
//! (and teach the user's profile), failed ones `failure`. Rows the log marks as account
//! takeovers are left out: vigil labels attacks only from its own evidence (an admin's verdict,
//! a user's report). Rows of users vigil does not know are left out too, unless
//! `create_users`, which creates them without a password (as SCIM provisioning does).

use std::collections::HashMap;
use std::io::BufRead;

use serde::Serialize;

use super::accounts::Actor;
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::domain::Username;
use crate::risk::replay::{row_features, Row, Rows};
use crate::risk::{self, assess, decide, AvailableFactors, GlobalStats, RiskConfig, UserProfile};
use crate::store::signins::SigninRow;
use crate::store::{self, new_id, users, DbConn, StoreResult};

/// Rows per transaction.
const CHUNK: usize = 1000;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub signins: u64,
    pub failures: u64,
    pub users_created: u64,
    pub takeovers_left_out: u64,
    pub unknown_users_left_out: u64,
    pub malformed: u64,
}

/// The import's memory between chunks.
#[derive(Default)]
struct State {
    /// The log's user → vigil's user id (None: unknown and not created).
    users: HashMap<String, Option<String>>,
    profiles: HashMap<String, UserProfile>,
    global: GlobalStats,
    ua: HashMap<String, (risk::UaInfo, risk::Device)>,
    n: Imported,
}

/// Import `input` (the replay format, sorted by time), every time moved by `shift_micros`.
/// Audited with the counts.
pub async fn import_log<R: BufRead>(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
    input: R,
    create_users: bool,
    shift_micros: i64,
) -> Result<Imported, FlowError> {
    let policy = super::policy::current(svc).await?;
    let models = super::models::current(svc).await?;
    let cfg = policy.config(&models.live_config(&svc.risk), None);
    let actions = policy.actions;
    let mut state = State {
        global: svc
            .db
            .run(|c| store::risk::state(c, "global"))
            .await?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        ..State::default()
    };
    let mut rows = Rows::new(input);
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for r in rows.by_ref() {
            match r {
                Ok(mut row) => {
                    row.at = Timestamp(row.at.micros().saturating_add(shift_micros));
                    chunk.push(row)
                }
                Err((0, e)) => return Err(FlowError::Invalid(format!("reading the log: {e}"))),
                Err(_) => state.n.malformed += 1,
            }
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        state = svc
            .db
            .run(move |c| {
                store::transaction(c, |c| {
                    let mut st = std::mem::take(&mut state);
                    for row in &chunk {
                        one(c, &mut st, row, &cfg, &actions, create_users, now)?;
                    }
                    Ok(st)
                })
            })
            .await?;
    }
    let (n, global, profiles) = (state.n, state.global, state.profiles);
    let (auditor, actor) = (svc.auditor.clone(), actor.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                for (uid, p) in &profiles {
                    store::risk::put_profile(
                        c,
                        uid,
                        &serde_json::to_string(p).unwrap_or_default(),
                        now.micros(),
                    )?;
                }
                store::risk::put_state(
                    c,
                    "global",
                    &serde_json::to_string(&global).unwrap_or_default(),
                    now.micros(),
                )?;
                auditor.record(
                    c,
                    now,
                    actor
                        .event("history.imported")
                        .details(serde_json::to_value(n).unwrap_or_default()),
                )
            })
        })
        .await?;
    // Every node re-reads the population statistics with its next sync.
    svc.risk.global.invalidate();
    Ok(n)
}

fn user_id(
    c: &mut DbConn,
    st: &mut State,
    who: &str,
    create: bool,
    now: Timestamp,
) -> StoreResult<Option<String>> {
    if let Some(id) = st.users.get(who) {
        return Ok(id.clone());
    }
    let id = match Username::parse(who) {
        Err(_) => None,
        Ok(name) => match users::find_by_username(c, name.as_str())? {
            Some(u) => Some(u.id),
            None if create => {
                let id = new_id();
                let email = format!("{}@imported.invalid", name.as_str());
                users::insert(
                    c,
                    &users::NewUser {
                        id: &id,
                        username: name.as_str(),
                        email: &email,
                        name: "",
                        password_hash: super::provision::NO_PASSWORD,
                        disabled: false,
                        created_at: now.micros(),
                        updated_at: now.micros(),
                        must_change_password: false,
                    },
                )?;
                st.n.users_created += 1;
                Some(id)
            }
            None => None,
        },
    };
    if let Some(uid) = &id {
        let p = store::risk::profile(c, uid)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        st.profiles.insert(uid.clone(), p);
    }
    st.users.insert(who.to_owned(), id.clone());
    Ok(id)
}

fn one(
    c: &mut DbConn,
    st: &mut State,
    r: &Row,
    cfg: &RiskConfig,
    actions: &risk::Policy,
    create: bool,
    now: Timestamp,
) -> StoreResult<()> {
    if r.takeover {
        st.n.takeovers_left_out += 1;
        return Ok(());
    }
    let Some(uid) = user_id(c, st, &r.user, create, now)? else {
        st.n.unknown_users_left_out += 1;
        return Ok(());
    };
    if st.ua.len() > 10_000 {
        st.ua.clear();
    }
    let (ua, device) = st
        .ua
        .entry(r.user_agent.clone())
        .or_insert_with(|| risk::device::observe(&r.user_agent, None, None, None))
        .clone();
    let f = row_features(r, ua, device);
    let profile = st.profiles.entry(uid.clone()).or_default();
    let a = assess(&f, profile, &st.global, cfg);
    let d = decide(&a, actions, AvailableFactors::default(), None);
    let json = |v: &dyn super::login::erased::Json| v.json();
    store::signins::insert(
        c,
        &SigninRow {
            id: new_id(),
            at: r.at.micros(),
            user_id: Some(uid),
            method: "import".into(),
            outcome: if r.success { "success" } else { "failure" }.into(),
            ip: r.ip.map(|i| i.to_string()),
            user_agent: Some(r.user_agent.chars().take(512).collect()),
            device_id: None,
            client_id: None,
            session_id: None,
            acr: None,
            amr: None,
            features: Some(json(&f)),
            score: Some(i64::from(a.score)),
            level: Some(super::risk::level_name(a.level).to_owned()),
            decision: Some(d.as_str().to_owned()),
            reasons: Some(json(&a.reasons)),
            assessment: Some(json(&a)),
            model: Some(a.model.clone()),
            geoip_build: None,
            candidate_decision: None,
            shadow: None,
        },
    )?;
    st.global.learn(&f);
    if r.success {
        profile.learn(&f);
        st.n.signins += 1;
    } else {
        st.n.failures += 1;
    }
    Ok(())
}

/// The time of the last row of a log (the replay format), for moving a log to the present.
pub fn last_time<R: BufRead>(input: R) -> Option<Timestamp> {
    Rows::new(input).filter_map(Result::ok).map(|r| r.at).max()
}
