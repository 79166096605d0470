//! E-mail: the outbox the background sender drains, and the single-use links mailed to people
//! (by SHA-256 digest).

use diesel::prelude::*;

use super::schema::{email_links, email_requests, mail_outbox};
use super::{DbConn, StoreResult};

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub to_addr: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: i64,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

pub fn enqueue(conn: &mut DbConn, row: &OutboxRow) -> StoreResult<()> {
    diesel::insert_into(mail_outbox::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Messages due at `now`, oldest first.
pub fn due(conn: &mut DbConn, now: i64, limit: i64) -> StoreResult<Vec<OutboxRow>> {
    Ok(mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::failed_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(now))
        .order(mail_outbox::next_attempt_at.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Take a message for sending until `lease_until`, if nobody took it since it was read as due
/// at `seen` (its `next_attempt_at` is the version): of several nodes, one sends it.
pub fn claim(conn: &mut DbConn, id: &str, seen: i64, lease_until: i64) -> StoreResult<bool> {
    let n = diesel::update(
        mail_outbox::table
            .find(id)
            .filter(mail_outbox::next_attempt_at.eq(seen))
            .filter(mail_outbox::sent_at.is_null()),
    )
    .set(mail_outbox::next_attempt_at.eq(lease_until))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn sent(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::sent_at.eq(now),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed attempt: try again at `retry_at`, or give up (`retry_at` None).
pub fn attempt_failed(
    conn: &mut DbConn,
    id: &str,
    now: i64,
    retry_at: Option<i64>,
    error: &str,
) -> StoreResult<()> {
    let error: String = error.chars().take(500).collect();
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::next_attempt_at.eq(retry_at.unwrap_or(now)),
            mail_outbox::failed_at.eq(retry_at.is_none().then_some(now)),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sent or abandoned messages older than `before`: they hold personal data.
pub fn purge(conn: &mut DbConn, before: i64) -> StoreResult<usize> {
    Ok(diesel::delete(
        mail_outbox::table
            .filter(mail_outbox::created_at.lt(before))
            .filter(
                mail_outbox::sent_at
                    .is_not_null()
                    .or(mail_outbox::failed_at.is_not_null()),
            ),
    )
    .execute(conn)?)
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = email_links)]
pub struct LinkRow {
    pub digest: String,
    pub user_id: String,
    pub purpose: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// A reset link works only in the browser (device cookie) that asked for it.
    pub device_id: Option<String>,
    /// What the link acts on: the sign-in a "this wasn't me" link reports.
    pub subject: Option<String>,
}

pub fn insert_link(conn: &mut DbConn, row: &LinkRow) -> StoreResult<()> {
    diesel::insert_into(email_links::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_link(conn: &mut DbConn, digest: &str) -> StoreResult<Option<LinkRow>> {
    Ok(email_links::table
        .find(digest)
        .select(LinkRow::as_select())
        .first(conn)
        .optional()?)
}

/// Use a link once: true for the one caller that marked it used.
pub fn use_link(conn: &mut DbConn, digest: &str, now: i64) -> StoreResult<bool> {
    let n = diesel::update(
        email_links::table
            .find(digest)
            .filter(email_links::used_at.is_null())
            .filter(email_links::expires_at.gt(now)),
    )
    .set(email_links::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Links of one purpose a user was sent since `since` (to throttle requests).
pub fn links_since(
    conn: &mut DbConn,
    user_id: &str,
    purpose: &str,
    since: i64,
) -> StoreResult<i64> {
    Ok(email_links::table
        .filter(email_links::user_id.eq(user_id))
        .filter(email_links::purpose.eq(purpose))
        .filter(email_links::created_at.ge(since))
        .count()
        .get_result(conn)?)
}

/// Expired links: nothing can use them.
pub fn purge_links(conn: &mut DbConn, now: i64) -> StoreResult<usize> {
    Ok(diesel::delete(email_links::table.filter(email_links::expires_at.lt(now))).execute(conn)?)
}

/// Other unused links of one purpose for a user end (a newer reset link replaces older ones).
pub fn expire_links(
    conn: &mut DbConn,
    user_id: &str,
    purpose: &str,
    except: &str,
    now: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(
        email_links::table
            .filter(email_links::user_id.eq(user_id))
            .filter(email_links::purpose.eq(purpose))
            .filter(email_links::digest.ne(except))
            .filter(email_links::used_at.is_null()),
    )
    .set(email_links::expires_at.eq(now))
    .execute(conn)?)
}

#[derive(Insertable)]
#[diesel(table_name = email_requests)]
pub struct RequestRow<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub address_key: &'a str,
    pub ip_key: &'a str,
    pub created_at: i64,
}

/// Count a request, then say how many there were since `since` for its address and its network
/// (this one included). Written first: on SQLite that takes the write lock, so parallel requests
/// count one another.
pub fn count_request(
    conn: &mut DbConn,
    row: &RequestRow<'_>,
    since: i64,
) -> StoreResult<(i64, i64)> {
    diesel::insert_into(email_requests::table)
        .values(row)
        .execute(conn)?;
    let by_address = email_requests::table
        .filter(email_requests::kind.eq(row.kind))
        .filter(email_requests::address_key.eq(row.address_key))
        .filter(email_requests::created_at.ge(since))
        .count()
        .get_result(conn)?;
    let by_ip = email_requests::table
        .filter(email_requests::kind.eq(row.kind))
        .filter(email_requests::ip_key.eq(row.ip_key))
        .filter(email_requests::created_at.ge(since))
        .count()
        .get_result(conn)?;
    Ok((by_address, by_ip))
}

/// Requests older than `before` count for nothing.
pub fn purge_requests(conn: &mut DbConn, before: i64) -> StoreResult<usize> {
    Ok(
        diesel::delete(email_requests::table.filter(email_requests::created_at.lt(before)))
            .execute(conn)?,
    )
}
