//! Failed-attempt counters for throttling guessing. Kept in the database so that several vigil
//! nodes enforce one limit; counted over a sliding window of recent failures.
//!
//! A row is written *before* a secret is checked (a reservation, [`reserve`]) and removed when
//! the secret was right ([`release`]); a wrong secret leaves it as the failure. Counting and
//! inserting happen in one transaction serialised per key — SQLite's `BEGIN IMMEDIATE` (one
//! writer at a time), PostgreSQL advisory locks on the keys — so N parallel guesses count N.
//!
//! Rows of a known device's own budget carry `ip = "dev:<device id>"`: they are not part of the
//! account's or any IP's shared count, so strangers cannot spend the owner's budget.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::login_failures;
use super::{new_id, DbConn, StoreResult};

/// The `ip` column's prefix for rows of a known device's own budget.
pub const DEVICE_PREFIX: &str = "dev:";

/// Which counter a reservation draws on.
#[derive(Debug, Clone)]
pub enum Budget {
    /// The shared budgets of the account and of the client's IP key.
    Shared {
        account: String,
        ip: String,
        account_limit: i64,
        ip_limit: i64,
    },
    /// A browser that has signed in to this account before: its own budget.
    Device {
        account: String,
        device: String,
        limit: i64,
    },
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Go ahead and check the secret; the row `id` counts as a failure until released.
    Granted { id: String },
    /// Over the limit: nothing was written. `oldest` is the oldest failure in the window that
    /// holds the limit, to say when it lifts.
    Refused { oldest: Option<i64> },
}

/// A stable 64-bit lock id for a key, the same on every node.
fn lock_id(key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("vigil.throttle:{key}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// Count and, if under the limit, insert: the same statements on both backends (each arm of the
/// dialect match expands this once, with its own connection type).
macro_rules! count_then_insert {
    ($c:expr, $budget:expr, $now:expr, $since:expr) => {{
        let c = $c;
        let since: i64 = $since;
        let (account, ip, over, oldest) = match $budget {
            Budget::Shared {
                account,
                ip,
                account_limit,
                ip_limit,
            } => {
                let by_account: i64 = login_failures::table
                    .filter(login_failures::account.eq(account))
                    .filter(login_failures::ip.not_like(format!("{DEVICE_PREFIX}%")))
                    .filter(login_failures::at.gt(since))
                    .count()
                    .get_result(c)?;
                let by_ip: i64 = login_failures::table
                    .filter(login_failures::ip.eq(ip))
                    .filter(login_failures::at.gt(since))
                    .count()
                    .get_result(c)?;
                let (acct_over, ip_over) = (by_account >= *account_limit, by_ip >= *ip_limit);
                let oldest_acct: Option<i64> = if acct_over {
                    login_failures::table
                        .filter(login_failures::account.eq(account))
                        .filter(login_failures::ip.not_like(format!("{DEVICE_PREFIX}%")))
                        .filter(login_failures::at.gt(since))
                        .select(diesel::dsl::min(login_failures::at))
                        .first(c)?
                } else {
                    None
                };
                let oldest_ip: Option<i64> = if ip_over {
                    login_failures::table
                        .filter(login_failures::ip.eq(ip))
                        .filter(login_failures::at.gt(since))
                        .select(diesel::dsl::min(login_failures::at))
                        .first(c)?
                } else {
                    None
                };
                // The later of the two: both limits must lift before a retry can pass.
                let oldest = oldest_acct.max(oldest_ip);
                (account.clone(), ip.clone(), acct_over || ip_over, oldest)
            }
            Budget::Device {
                account,
                device,
                limit,
            } => {
                let key = format!("{DEVICE_PREFIX}{device}");
                let n: i64 = login_failures::table
                    .filter(login_failures::account.eq(account))
                    .filter(login_failures::ip.eq(&key))
                    .filter(login_failures::at.gt(since))
                    .count()
                    .get_result(c)?;
                let oldest: Option<i64> = if n >= *limit {
                    login_failures::table
                        .filter(login_failures::account.eq(account))
                        .filter(login_failures::ip.eq(&key))
                        .filter(login_failures::at.gt(since))
                        .select(diesel::dsl::min(login_failures::at))
                        .first(c)?
                } else {
                    None
                };
                (account.clone(), key, n >= *limit, oldest)
            }
        };
        if over {
            Ok(Reserved::Refused { oldest })
        } else {
            let id = new_id();
            diesel::insert_into(login_failures::table)
                .values((
                    login_failures::id.eq(&id),
                    login_failures::at.eq($now),
                    login_failures::account.eq(&account),
                    login_failures::ip.eq(&ip),
                ))
                .execute(c)?;
            Ok(Reserved::Granted { id })
        }
    }};
}

/// Reserve one attempt from `budget`, atomically: count the failures since `since` and, under
/// the limit, insert a row at `now` that counts as a failure until [`release`]d.
pub fn reserve(conn: &mut DbConn, budget: &Budget, now: i64, since: i64) -> StoreResult<Reserved> {
    match conn {
        // IMMEDIATE takes the write lock before the first read: no two counts interleave.
        DbConn::Sqlite(c) => c.immediate_transaction(|c| -> StoreResult<Reserved> {
            count_then_insert!(c, budget, now, since)
        }),
        DbConn::Postgres(c) => c.transaction(|c| -> StoreResult<Reserved> {
            let mut keys: Vec<i64> = match budget {
                Budget::Shared { account, ip, .. } => {
                    vec![
                        lock_id(&format!("a:{account}")),
                        lock_id(&format!("i:{ip}")),
                    ]
                }
                Budget::Device {
                    account, device, ..
                } => vec![lock_id(&format!("d:{account}\u{0}{device}"))],
            };
            // One global order, so two reservations sharing a key cannot deadlock.
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(k)
                    .execute(c)?;
            }
            count_then_insert!(c, budget, now, since)
        }),
    }
}

/// The secret was right: the reservation does not count.
pub fn release(conn: &mut DbConn, id: &str) -> StoreResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::id.eq(id))).execute(conn)?;
    Ok(())
}

/// Failures recorded for an account (its shared budget) and for an IP key since `since`, not
/// counting the row `own` — the reservation of the attempt being scored, which is not a failure
/// (yet): without this every new-device sign-in was scored as following a failed attempt.
pub fn counts(
    conn: &mut DbConn,
    account: &str,
    ip: &str,
    since: i64,
    own: Option<&str>,
) -> StoreResult<(i64, i64)> {
    let own = own.unwrap_or("");
    let by_account: i64 = login_failures::table
        .filter(login_failures::id.ne(own))
        .filter(login_failures::account.eq(account))
        .filter(login_failures::ip.not_like(format!("{DEVICE_PREFIX}%")))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)?;
    let by_ip: i64 = login_failures::table
        .filter(login_failures::id.ne(own))
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)?;
    Ok((by_account, by_ip))
}

/// A failure counted outside a reservation (a passkey assertion that did not verify).
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

/// Forget an account's failures, its known devices' too (after a successful sign-in, or an
/// admin's unlock).
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
pub fn distinct_accounts(
    conn: &mut DbConn,
    ip: &str,
    since: i64,
    own: Option<&str>,
) -> StoreResult<i64> {
    Ok(login_failures::table
        .filter(login_failures::id.ne(own.unwrap_or("")))
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
