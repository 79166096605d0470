//! What ends a self-contained access token before it expires: a revoked token id (`jti`,
//! RFC 7009) or a revoked grant (every token of an authorization code and of the refresh family
//! it started). Nothing is written per issued token; these rows are written only when something
//! is revoked, and every node keeps them in memory (`flow::revocations`).
//!
//! Inserting a row marks the calling thread; [`super::Db::run`] turns the mark into a bump of
//! its [`super::Db::revocation_epoch`] once its closure (and so its transaction) is done, which
//! makes the next check on this node re-read the table: a revocation is honoured on the node
//! that made it at once.

use std::cell::Cell;

use diesel::prelude::*;

use super::schema::revocations;
use super::{DbConn, StoreResult};

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One access token, by its `jti`.
    Jti,
    /// Every access token carrying this `grant_id` (a code's id, or a refresh family's).
    Grant,
    /// Not a revocation: the client with this id changed, so every node drops its cached copy.
    Client,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Grant => "grant",
            Kind::Client => "client",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "jti" => Some(Kind::Jti),
            "grant" => Some(Kind::Grant),
            "client" => Some(Kind::Client),
            _ => None,
        }
    }
}

/// One revocation as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    pub kind: Kind,
    pub value: String,
    /// When nothing it names can be alive any more (unix µs): the row can go then.
    pub expires_at: i64,
}

thread_local! {
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread wrote a revocation since the last call (`Db::run` asks when its closure
/// returns).
pub(crate) fn take_written() -> bool {
    WROTE.with(|w| w.replace(false))
}

/// Record a revocation (idempotent: naming the same token or grant again changes nothing).
pub fn insert(
    conn: &mut DbConn,
    kind: Kind,
    value: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    let row = (
        revocations::kind.eq(kind.as_str()),
        revocations::value.eq(value),
        revocations::revoked_at.eq(now),
        revocations::expires_at.eq(expires_at),
    );
    // ON CONFLICT DO NOTHING per backend (the multi-backend connection has no upsert): a
    // unique violation would abort a PostgreSQL transaction, and two revocations of one grant
    // may race.
    let insert = diesel::insert_into(revocations::table).values(row);
    match conn {
        DbConn::Postgres(c) => insert
            .on_conflict((revocations::kind, revocations::value))
            .do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => insert
            .on_conflict((revocations::kind, revocations::value))
            .do_nothing()
            .execute(c)?,
    };
    WROTE.with(|w| w.set(true));
    Ok(())
}

/// How long a client change is kept for other nodes to see (they read it within a second;
/// a node that starts later reads the client itself).
const CLIENT_CHANGE_KEPT_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Tell every node that client `id` changed (created, edited, new secret, removed). A new row
/// each time, so a second change is a second event.
pub fn note_client_change(conn: &mut DbConn, id: &str, now: i64) -> StoreResult<()> {
    diesel::delete(
        revocations::table
            .filter(revocations::kind.eq(Kind::Client.as_str()))
            .filter(revocations::value.eq(id)),
    )
    .execute(conn)?;
    insert(
        conn,
        Kind::Client,
        id,
        now,
        now.saturating_add(CLIENT_CHANGE_KEPT_MICROS),
    )
}

fn rows(r: Vec<(i64, String, String, i64)>) -> impl Iterator<Item = Revocation> + Send + 'static {
    r.into_iter().filter_map(|(seq, kind, value, expires_at)| {
        Some(Revocation {
            seq,
            kind: Kind::parse(&kind)?,
            value,
            expires_at,
        })
    })
}

/// What the cache reads of a row.
const COLUMNS: (
    revocations::seq,
    revocations::kind,
    revocations::value,
    revocations::expires_at,
) = (
    revocations::seq,
    revocations::kind,
    revocations::value,
    revocations::expires_at,
);

/// Rows above `after` (by seq), oldest first, at most `limit`.
pub fn since(conn: &mut DbConn, after: i64, limit: i64) -> StoreResult<Vec<Revocation>> {
    let r = revocations::table
        .filter(revocations::seq.gt(after))
        .order(revocations::seq.asc())
        .limit(limit)
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows(r).collect())
}

/// Every revocation still in force at `now`.
pub fn live(conn: &mut DbConn, now: i64) -> StoreResult<Vec<Revocation>> {
    let r = revocations::table
        .filter(revocations::expires_at.gt(now))
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows(r).collect())
}

/// Delete revocations whose tokens have all expired (housekeeping), in batches.
pub fn purge(conn: &mut DbConn, now: i64, batch: i64) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let seqs = revocations::table
            .filter(revocations::expires_at.le(now))
            .select(revocations::seq)
            .limit(batch)
            .load::<i64>(conn)?;
        let n = diesel::delete(revocations::table.filter(revocations::seq.eq_any(seqs)))
            .execute(conn)?;
        total += n;
        if n < batch as usize {
            return Ok(total);
        }
    }
}
