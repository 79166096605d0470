//! The admin review queue. A row points at one sign-in (`signins.id`) and says why it waits
//! (`kind`) and what the explanation suggests (`recommended`); an admin's verdict closes it.

use diesel::prelude::*;

use super::schema::{reviews, signins};
use super::signins::SigninRow;
use super::{new_id, DbConn, StoreError, StoreResult};

/// Why a sign-in waits for review.
pub const KIND_BLOCKED: &str = "blocked";
pub const KIND_STEP_UP_FAILED: &str = "step_up_failed";
pub const KIND_HIGH_RISK: &str = "high_risk";
/// The user said "this wasn't me" on their account page.
pub const KIND_REPORTED: &str = "reported";

pub const LEGITIMATE: &str = "legitimate";
pub const ATTACK: &str = "attack";
pub const OPEN: &str = "open";

#[derive(Queryable, Selectable, Insertable, Clone, Debug, serde::Serialize)]
#[diesel(table_name = reviews)]
pub struct ReviewRow {
    pub id: String,
    pub signin_id: String,
    pub user_id: Option<String>,
    pub kind: String,
    pub recommended: String,
    pub status: String,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub note: Option<String>,
}

/// Put a sign-in in the queue. Enqueueing the same sign-in for the same reason twice is a no-op
/// (several wrong codes in one step-up make one review).
pub fn enqueue(
    conn: &mut DbConn,
    signin_id: &str,
    user_id: Option<&str>,
    kind: &str,
    recommended: &str,
    now: i64,
) -> StoreResult<()> {
    let exists: i64 = reviews::table
        .filter(reviews::signin_id.eq(signin_id))
        .filter(reviews::kind.eq(kind))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(());
    }
    diesel::insert_into(reviews::table)
        .values(ReviewRow {
            id: new_id(),
            signin_id: signin_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            kind: kind.to_owned(),
            recommended: recommended.to_owned(),
            status: OPEN.to_owned(),
            created_at: now,
            decided_by: None,
            decided_at: None,
            note: None,
        })
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConn, id: &str) -> StoreResult<Option<ReviewRow>> {
    Ok(reviews::table
        .find(id)
        .select(ReviewRow::as_select())
        .first(conn)
        .optional()?)
}

/// Where a page of open reviews starts: strictly older than this (created_at, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    pub created_at: i64,
    pub id: String,
}

/// Open reviews older than `before` (all when `None`), newest first, at most `limit`, each
/// with its sign-in (gone when its user was deleted): one query, however many items.
pub fn open_page(
    conn: &mut DbConn,
    before: Option<&Before>,
    limit: i64,
) -> StoreResult<Vec<(ReviewRow, Option<SigninRow>)>> {
    let mut q = reviews::table
        .left_join(signins::table.on(signins::id.eq(reviews::signin_id)))
        .filter(reviews::status.eq(OPEN))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(
            reviews::created_at.lt(b.created_at).or(reviews::created_at
                .eq(b.created_at)
                .and(reviews::id.lt(b.id.clone()))),
        );
    }
    Ok(q.order((reviews::created_at.desc(), reviews::id.desc()))
        .limit(limit)
        .select((ReviewRow::as_select(), Option::<SigninRow>::as_select()))
        .load(conn)?)
}

/// Decided reviews, newest decision first, at most `limit`, each with its sign-in.
pub fn decided_with_signins(
    conn: &mut DbConn,
    limit: i64,
) -> StoreResult<Vec<(ReviewRow, Option<SigninRow>)>> {
    Ok(reviews::table
        .left_join(signins::table.on(signins::id.eq(reviews::signin_id)))
        .filter(reviews::status.ne(OPEN))
        .order((reviews::decided_at.desc(), reviews::id.desc()))
        .limit(limit)
        .select((ReviewRow::as_select(), Option::<SigninRow>::as_select()))
        .load(conn)?)
}

pub fn count_open(conn: &mut DbConn) -> StoreResult<i64> {
    Ok(reviews::table
        .filter(reviews::status.eq(OPEN))
        .count()
        .get_result(conn)?)
}

/// Close an open review with `verdict`. `Conflict` if someone else decided it first, so two
/// admins cannot apply two verdicts to one sign-in.
pub fn decide(
    conn: &mut DbConn,
    id: &str,
    verdict: &str,
    by: &str,
    note: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(
        reviews::table
            .filter(reviews::id.eq(id))
            .filter(reviews::status.eq(OPEN)),
    )
    .set((
        reviews::status.eq(verdict),
        reviews::decided_by.eq(by),
        reviews::decided_at.eq(now),
        reviews::note.eq(note),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(
            "this review was already decided".into(),
        ))
    }
}

/// The reviews of one sign-in (a sign-in may be queued for more than one reason).
pub fn for_signin(conn: &mut DbConn, signin_id: &str) -> StoreResult<Vec<ReviewRow>> {
    Ok(reviews::table
        .filter(reviews::signin_id.eq(signin_id))
        .order(reviews::created_at.asc())
        .select(ReviewRow::as_select())
        .load(conn)?)
}

/// The user said "this wasn't me": record the sign-in as an attack decided by the user, and
/// close any review of it still open with the same verdict (the person who knows best has
/// spoken). Returns false when the user had already reported it.
pub fn report(conn: &mut DbConn, signin_id: &str, user_id: &str, now: i64) -> StoreResult<bool> {
    let exists: i64 = reviews::table
        .filter(reviews::signin_id.eq(signin_id))
        .filter(reviews::kind.eq(KIND_REPORTED))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    let note = "reported by the user (\"this wasn't me\")";
    diesel::update(
        reviews::table
            .filter(reviews::signin_id.eq(signin_id))
            .filter(reviews::status.eq(OPEN)),
    )
    .set((
        reviews::status.eq(ATTACK),
        reviews::decided_by.eq(user_id),
        reviews::decided_at.eq(now),
        reviews::note.eq(note),
    ))
    .execute(conn)?;
    diesel::insert_into(reviews::table)
        .values(ReviewRow {
            id: new_id(),
            signin_id: signin_id.to_owned(),
            user_id: Some(user_id.to_owned()),
            kind: KIND_REPORTED.to_owned(),
            recommended: ATTACK.to_owned(),
            status: ATTACK.to_owned(),
            created_at: now,
            decided_by: Some(user_id.to_owned()),
            decided_at: Some(now),
            note: Some(note.to_owned()),
        })
        .execute(conn)?;
    Ok(true)
}

/// Sign-ins their users reported ("this wasn't me") since `since`.
pub fn reported_since(conn: &mut DbConn, since: i64) -> StoreResult<i64> {
    Ok(reviews::table
        .filter(reviews::kind.eq(KIND_REPORTED))
        .filter(reviews::created_at.ge(since))
        .count()
        .get_result(conn)?)
}
