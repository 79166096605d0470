//! Read-only queries over the sign-in log for the admin dashboard, the fairness report and the
//! policy backtest. They read a bounded window (newest rows first, at most `limit`), so a page
//! view costs the same however long the log grows.

use diesel::prelude::*;

use super::schema::{reviews, signins};
use super::{DbConn, StoreResult};

/// The columns the reports need from one sign-in.
#[derive(Queryable, Clone, Debug)]
pub struct SigninFacts {
    pub id: String,
    pub at: i64,
    pub user_id: Option<String>,
    pub outcome: String,
    pub score: Option<i64>,
    pub decision: Option<String>,
    pub reasons: Option<String>,
}

/// Sign-ins at or after `since`, newest first, at most `limit`.
pub fn facts_since(conn: &mut DbConn, since: i64, limit: i64) -> StoreResult<Vec<SigninFacts>> {
    Ok(signins::table
        .filter(signins::at.ge(since))
        .order(signins::at.desc())
        .limit(limit)
        .select((
            signins::id,
            signins::at,
            signins::user_id,
            signins::outcome,
            signins::score,
            signins::decision,
            signins::reasons,
        ))
        .load(conn)?)
}

/// A scored sign-in with its features and assessment (JSON), for fairness and backtests.
#[derive(Queryable, Clone, Debug)]
pub struct Scored {
    pub id: String,
    pub at: i64,
    pub user_id: Option<String>,
    pub outcome: String,
    pub decision: Option<String>,
    pub features: Option<String>,
    pub assessment: Option<String>,
}

/// Scored sign-ins with one of `outcomes` at or after `since`, newest first, at most `limit`.
pub fn scored_since(
    conn: &mut DbConn,
    since: i64,
    outcomes: &[&str],
    limit: i64,
) -> StoreResult<Vec<Scored>> {
    Ok(signins::table
        .filter(signins::at.ge(since))
        .filter(signins::outcome.eq_any(outcomes))
        .filter(signins::assessment.is_not_null())
        .order(signins::at.desc())
        .limit(limit)
        .select((
            signins::id,
            signins::at,
            signins::user_id,
            signins::outcome,
            signins::decision,
            signins::features,
            signins::assessment,
        ))
        .load(conn)?)
}

/// Ids of sign-ins an admin judged legitimate (a blocked sign-in that was the real user).
pub fn judged_legitimate(conn: &mut DbConn, since: i64) -> StoreResult<Vec<String>> {
    Ok(reviews::table
        .filter(reviews::status.eq("legitimate"))
        .filter(reviews::created_at.ge(since))
        .select(reviews::signin_id)
        .load(conn)?)
}

/// Verified sign-ins per user before `before` (the history length a user had at the start of
/// the window).
pub fn verified_counts_before(conn: &mut DbConn, before: i64) -> StoreResult<Vec<(String, i64)>> {
    let rows: Vec<(Option<String>, i64)> = signins::table
        .filter(signins::at.lt(before))
        .filter(signins::outcome.eq_any(["success", "step_up_passed"]))
        .group_by(signins::user_id)
        .select((signins::user_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(u, n)| u.map(|u| (u, n)))
        .collect())
}
