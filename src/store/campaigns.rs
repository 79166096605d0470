//! Access-review campaigns and their items (the model of `flow::campaigns`).

use diesel::prelude::*;

use super::schema::{access_campaigns, access_review_items};
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[diesel(table_name = access_campaigns)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub scope_target: Option<String>,
    pub reviewers: String,
    pub deadline: i64,
    pub undecided: String,
    pub created_by: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[diesel(table_name = access_review_items)]
pub struct Item {
    pub id: String,
    pub campaign_id: String,
    pub user_id: String,
    pub username: String,
    pub client_id: Option<String>,
    pub role: Option<String>,
    pub group_name: Option<String>,
    pub privileged: bool,
    pub recommendation: String,
    pub evidence: String,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub followed: Option<bool>,
    pub applied: bool,
}

pub fn insert(conn: &mut DbConn, c: &Campaign, items: &[Item]) -> StoreResult<()> {
    diesel::insert_into(access_campaigns::table)
        .values(c)
        .execute(conn)?;
    // One statement per item: diesel's multi-backend connection has no batch insert, and a
    // campaign is made once, by a person.
    for i in items {
        diesel::insert_into(access_review_items::table)
            .values(i)
            .execute(conn)?;
    }
    Ok(())
}

/// Every campaign, newest first, with (items, decided) counts.
pub fn list(conn: &mut DbConn) -> StoreResult<Vec<(Campaign, i64, i64)>> {
    let cs: Vec<Campaign> = access_campaigns::table
        .select(Campaign::as_select())
        .order(access_campaigns::created_at.desc())
        .load(conn)?;
    // (campaign, items, decided): COUNT(decision) counts the decided ones.
    let counts: Vec<(String, i64, i64)> = access_review_items::table
        .group_by(access_review_items::campaign_id)
        .select((
            access_review_items::campaign_id,
            diesel::dsl::count_star(),
            diesel::dsl::count(access_review_items::decision),
        ))
        .load(conn)?;
    Ok(cs
        .into_iter()
        .map(|c| {
            let (n, d) = counts
                .iter()
                .find(|(id, ..)| *id == c.id)
                .map_or((0, 0), |(_, n, d)| (*n, *d));
            (c, n, d)
        })
        .collect())
}

pub fn find(conn: &mut DbConn, id: &str) -> StoreResult<Option<Campaign>> {
    Ok(access_campaigns::table
        .find(id)
        .select(Campaign::as_select())
        .first(conn)
        .optional()?)
}

pub fn items(conn: &mut DbConn, campaign_id: &str) -> StoreResult<Vec<Item>> {
    Ok(access_review_items::table
        .filter(access_review_items::campaign_id.eq(campaign_id))
        .select(Item::as_select())
        .order((
            access_review_items::username,
            access_review_items::client_id,
            access_review_items::role,
            access_review_items::group_name,
        ))
        .load(conn)?)
}

/// Record a decision on an undecided item; false when it was decided meanwhile (another
/// reviewer, or the deadline).
pub fn decide(
    conn: &mut DbConn,
    item_id: &str,
    decision: &str,
    by: &str,
    at: i64,
    followed: bool,
) -> StoreResult<bool> {
    let n = diesel::update(
        access_review_items::table
            .find(item_id)
            .filter(access_review_items::decision.is_null()),
    )
    .set((
        access_review_items::decision.eq(decision),
        access_review_items::decided_by.eq(by),
        access_review_items::decided_at.eq(at),
        access_review_items::followed.eq(followed),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn mark_applied(conn: &mut DbConn, item_id: &str) -> StoreResult<()> {
    diesel::update(access_review_items::table.find(item_id))
        .set(access_review_items::applied.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Close an open campaign; false when it was closed already.
pub fn close(conn: &mut DbConn, id: &str, at: i64) -> StoreResult<bool> {
    let n = diesel::update(
        access_campaigns::table
            .find(id)
            .filter(access_campaigns::closed_at.is_null()),
    )
    .set(access_campaigns::closed_at.eq(at))
    .execute(conn)?;
    Ok(n == 1)
}

/// Open campaigns whose deadline has passed.
pub fn overdue(conn: &mut DbConn, now: i64) -> StoreResult<Vec<String>> {
    Ok(access_campaigns::table
        .filter(access_campaigns::closed_at.is_null())
        .filter(access_campaigns::deadline.le(now))
        .select(access_campaigns::id)
        .load(conn)?)
}

/// An open campaign of this scope and target (a risk-triggered review is opened once).
pub fn open_for(conn: &mut DbConn, scope: &str, target: &str) -> StoreResult<Option<String>> {
    Ok(access_campaigns::table
        .filter(access_campaigns::closed_at.is_null())
        .filter(access_campaigns::scope.eq(scope))
        .filter(access_campaigns::scope_target.eq(target))
        .select(access_campaigns::id)
        .first(conn)
        .optional()?)
}
