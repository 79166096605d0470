//! Deleting rows nobody can use any more. Anonymous requests write some of them (every
//! GET /authorize an authorization request, every passkey begin a ceremony row), so without a
//! purge anyone could grow these tables forever.
//!
//! Deletes run in batches of at most [`BATCH`] rows (select up to `BATCH` ids, delete those: the
//! same SQL on both backends, which share no `DELETE … LIMIT`), so a large backlog never becomes
//! one long lock.

use diesel::prelude::*;

use super::schema::{
    access_tokens, auth_codes, authz_requests, login_failures, mfa_flows, refresh_tokens, sessions,
};
use super::{DbConn, StoreResult};

/// Rows per DELETE statement.
pub const BATCH: i64 = 5_000;

/// What one sweep deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub authz_requests: usize,
    pub mfa_flows: usize,
    pub auth_codes: usize,
    pub login_failures: usize,
    pub revocations: usize,
    pub refresh_tokens: usize,
    /// Lines of the access-token issuance log past their retention.
    pub token_log: usize,
    /// Ended sessions nothing names any more.
    pub sessions: usize,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.authz_requests
            + self.mfa_flows
            + self.auth_codes
            + self.login_failures
            + self.revocations
            + self.refresh_tokens
            + self.token_log
            + self.sessions
    }
}

/// The moments that decide what is dead (all unix µs).
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Authorization requests and ceremony rows that expired before this are unusable.
    pub now: i64,
    /// Unused codes that expired before this go (they never produced a token).
    pub unused_codes_expired_before: i64,
    /// Used codes created before this go: nothing they issued can still be alive, and no
    /// session that received them can still be ended.
    pub used_codes_created_before: i64,
    /// Throttling failures older than this count for nothing.
    pub failures_before: i64,
    /// Issuance-log lines of tokens that expired before this go; `None`: kept forever.
    pub token_log_expired_before: Option<i64>,
}

/// Delete in batches until a batch comes back short.
fn batched(mut one: impl FnMut() -> StoreResult<usize>) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let n = one()?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Delete everything dead at `c`. Each batch is its own statement (and, outside a transaction,
/// its own commit), so live traffic interleaves with a long purge.
pub fn sweep(conn: &mut DbConn, c: Cutoffs) -> StoreResult<Swept> {
    let authz_requests = batched(|| {
        let ids = authz_requests::table
            .filter(authz_requests::expires_at.le(c.now))
            .select(authz_requests::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(
            diesel::delete(authz_requests::table.filter(authz_requests::id.eq_any(ids)))
                .execute(conn)?,
        )
    })?;
    let mfa_flows = batched(|| {
        let ids = mfa_flows::table
            .filter(mfa_flows::expires_at.le(c.now))
            .select(mfa_flows::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(diesel::delete(mfa_flows::table.filter(mfa_flows::id.eq_any(ids))).execute(conn)?)
    })?;
    let auth_codes = batched(|| {
        let ids = auth_codes::table
            .filter(
                auth_codes::used_at
                    .is_null()
                    .and(auth_codes::expires_at.lt(c.unused_codes_expired_before))
                    .or(auth_codes::used_at
                        .is_not_null()
                        .and(auth_codes::created_at.lt(c.used_codes_created_before))),
            )
            .select(auth_codes::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(diesel::delete(auth_codes::table.filter(auth_codes::id.eq_any(ids))).execute(conn)?)
    })?;
    let login_failures = batched(|| {
        let ids = login_failures::table
            .filter(login_failures::at.lt(c.failures_before))
            .select(login_failures::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(
            diesel::delete(login_failures::table.filter(login_failures::id.eq_any(ids)))
                .execute(conn)?,
        )
    })?;
    // A refresh token goes with its family's absolute lifetime: then no token of the family
    // can be redeemed, so a replay has nothing left to revoke (and gets `invalid_grant`).
    let refresh_tokens = batched(|| {
        let ids = refresh_tokens::table
            .filter(refresh_tokens::family_expires_at.lt(c.now))
            .select(refresh_tokens::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::id.eq_any(ids)))
                .execute(conn)?,
        )
    })?;
    let token_log = match c.token_log_expired_before {
        None => 0,
        Some(before) => batched(|| {
            let ids = access_tokens::table
                .filter(access_tokens::expires_at.lt(before))
                .select(access_tokens::jti)
                .limit(BATCH)
                .load::<String>(conn)?;
            Ok(
                diesel::delete(access_tokens::table.filter(access_tokens::jti.eq_any(ids)))
                    .execute(conn)?,
            )
        })?,
    };
    // A session goes once it has ended (signed out, revoked, or past its idle or absolute
    // expiry) and no code or refresh token names it any more — after both were purged above.
    // Until then its row is what says "revoked" to a refresh of its tokens or a redemption of
    // its code (a session that no longer exists counts as revoked too, but the row is kept so
    // the admin console can still show it).
    let sessions = batched(|| {
        let ids = sessions::table
            .filter(
                sessions::revoked_at
                    .is_not_null()
                    .or(sessions::expires_at.le(c.now))
                    .or(sessions::idle_expires_at.le(c.now)),
            )
            .filter(diesel::dsl::not(diesel::dsl::exists(
                auth_codes::table.filter(auth_codes::session_id.eq(sessions::id)),
            )))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                refresh_tokens::table
                    .filter(refresh_tokens::session_id.eq(sessions::id.nullable())),
            )))
            .select(sessions::id)
            .limit(BATCH)
            .load::<String>(conn)?;
        Ok(diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)?)
    })?;
    // A revocation is kept until nothing it names can be alive.
    let revocations = super::revocations::purge(conn, c.now, BATCH)?;
    Ok(Swept {
        authz_requests,
        mfa_flows,
        auth_codes,
        login_failures,
        revocations,
        refresh_tokens,
        token_log,
        sessions,
    })
}
