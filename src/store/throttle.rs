//! Failed-attempt counters for throttling guessing. Kept in the database so that several vigil
//! nodes enforce one limit; counted over a sliding window of recent failures.

use diesel::prelude::*;

use super::schema::login_failures;
use super::{new_id, DbConn, StoreResult};

/// Failures recorded for an account and for an IP since `since`.
pub fn counts(conn: &mut DbConn, account: &str, ip: &str, since: i64) -> StoreResult<(i64, i64)> {
    let by_account: i64 = login_failures::table
        .filter(login_failures::account.eq(account))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)?;
    let by_ip: i64 = login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)?;
    Ok((by_account, by_ip))
}

/// The oldest failure inside the window for the account or IP, to say when the throttle lifts.
pub fn oldest_in_window(
    conn: &mut DbConn,
    account: &str,
    ip: &str,
    since: i64,
) -> StoreResult<Option<i64>> {
    Ok(login_failures::table
        .filter(login_failures::at.gt(since))
        .filter(
            login_failures::account
                .eq(account)
                .or(login_failures::ip.eq(ip)),
        )
        .select(diesel::dsl::min(login_failures::at))
        .first::<Option<i64>>(conn)?)
}

pub fn record(conn: &mut DbConn, account: &str, ip: &str, at: i64) -> StoreResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::id.eq(new_id()),
            login_failures::at.eq(at),
            login_failures::account.eq(account),
            login_failures::ip.eq(ip),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forget an account's failures (after a successful sign-in, or an admin's unlock).
pub fn clear_account(conn: &mut DbConn, account: &str) -> StoreResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::account.eq(account)))
        .execute(conn)?;
    Ok(())
}

/// Drop rows older than the window so the table stays small.
pub fn prune(conn: &mut DbConn, before: i64) -> StoreResult<usize> {
    Ok(
        diesel::delete(login_failures::table.filter(login_failures::at.lt(before)))
            .execute(conn)?,
    )
}

/// How many different accounts failed from this IP since `since` (password spraying).
pub fn distinct_accounts(conn: &mut DbConn, ip: &str, since: i64) -> StoreResult<i64> {
    Ok(login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::at.gt(since))
        .select(diesel::dsl::count(login_failures::account).aggregate_distinct())
        .first(conn)?)
}

/// Failures recorded for an account since `since` (shown to admins beside "unlock").
pub fn account_failures(conn: &mut DbConn, account: &str, since: i64) -> StoreResult<i64> {
    Ok(login_failures::table
        .filter(login_failures::account.eq(account))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)?)
}
