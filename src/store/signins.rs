//! The sign-in log: one row per outcome (success, failure, step-up passed or failed…).

use diesel::prelude::*;

use super::schema::signins;
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug, serde::Serialize)]
#[diesel(table_name = signins)]
pub struct SigninRow {
    pub id: String,
    pub at: i64,
    pub user_id: Option<String>,
    /// password, totp, webauthn, passkey, recovery_code, sso
    pub method: String,
    /// success, failure, step_up_required, step_up_passed, step_up_failed, blocked
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub device_id: Option<String>,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub acr: Option<String>,
    pub amr: Option<String>,
    /// The observed `SignInFeatures` (JSON).
    pub features: Option<String>,
    pub score: Option<i64>,
    pub level: Option<String>,
    pub decision: Option<String>,
    pub reasons: Option<String>,
    /// The full `Assessment` with per-signal contributions (JSON).
    pub assessment: Option<String>,
    pub model: Option<String>,
    pub geoip_build: Option<i64>,
    /// What a report-only candidate policy would have decided.
    pub candidate_decision: Option<String>,
    /// What the shadow model would have said (JSON `flow::risk::ShadowVerdict`), if one was set.
    pub shadow: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &SigninRow) -> StoreResult<()> {
    diesel::insert_into(signins::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn recent_for_user(
    conn: &mut DbConn,
    user_id: &str,
    limit: i64,
) -> StoreResult<Vec<SigninRow>> {
    Ok(signins::table
        .filter(signins::user_id.eq(user_id))
        .order(signins::at.desc())
        .limit(limit)
        .select(SigninRow::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConn, id: &str) -> StoreResult<Option<SigninRow>> {
    Ok(signins::table
        .find(id)
        .select(SigninRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user's most recent sign-in that was sent to a second factor: a failed step-up is
/// reviewed on that row, which holds the features and the assessment.
pub fn latest_step_up_required(conn: &mut DbConn, user_id: &str) -> StoreResult<Option<SigninRow>> {
    Ok(signins::table
        .filter(signins::user_id.eq(user_id))
        .filter(signins::outcome.eq("step_up_required"))
        .order(signins::at.desc())
        .select(SigninRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether this browser (its device cookie) has completed a verified sign-in as this user: the
/// test for "the real user's own device", which strangers cannot lock out.
pub fn verified_on_device(conn: &mut DbConn, user_id: &str, device_id: &str) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        signins::table
            .filter(signins::user_id.eq(user_id))
            .filter(signins::device_id.eq(device_id))
            .filter(signins::outcome.eq_any(["success", "step_up_passed"])),
    ))
    .get_result(conn)?)
}

/// The user's most recent successful sign-in.
pub fn latest_success(conn: &mut DbConn, user_id: &str) -> StoreResult<Option<SigninRow>> {
    Ok(signins::table
        .filter(signins::user_id.eq(user_id))
        .filter(signins::outcome.eq_any(["success", "step_up_passed"]))
        .order(signins::at.desc())
        .select(SigninRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether the user has a successful sign-in before `before` (a notice of a "new" device is
/// not sent for the very first sign-in).
pub fn has_success_before(conn: &mut DbConn, user_id: &str, before: i64) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        signins::table
            .filter(signins::user_id.eq(user_id))
            .filter(signins::at.lt(before))
            .filter(signins::outcome.eq_any(["success", "step_up_passed"])),
    ))
    .get_result(conn)?)
}

/// How many sign-ins ended with `outcome` since `since`, and the latest `limit` of them.
pub fn outcome_since(
    conn: &mut DbConn,
    outcome: &str,
    since: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<SigninRow>)> {
    let n = signins::table
        .filter(signins::outcome.eq(outcome))
        .filter(signins::at.ge(since))
        .count()
        .get_result(conn)?;
    let rows = signins::table
        .filter(signins::outcome.eq(outcome))
        .filter(signins::at.ge(since))
        .order(signins::at.desc())
        .limit(limit)
        .select(SigninRow::as_select())
        .load(conn)?;
    Ok((n, rows))
}
