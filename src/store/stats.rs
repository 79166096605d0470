//! Read-only queries over the sign-in log for the admin dashboard, the fairness report and the
//! policy backtest. They read a bounded window (newest rows first, at most `limit`), so a page
//! view costs the same however long the log grows.

use diesel::prelude::*;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Text};

use super::schema::{reviews, signins};
use super::{numbered, DbConn, StoreResult};

/// Sign-ins counted by how long ago they happened (whole hours) and how they ended.
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct HourlyOutcome {
    #[diesel(sql_type = BigInt)]
    pub age_hours: i64,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Scored attempts per score bucket (0 = 0–9 … 9 = 90–100).
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct ScoreBucket {
    #[diesel(sql_type = BigInt)]
    pub bucket: i64,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// How often a risk reason was given.
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct ReasonCount {
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// The dashboard's week, aggregated by the database: a few hundred rows back, whatever the
/// number of sign-ins (it used to load up to 100,000 of them).
#[derive(Clone, Debug, Default)]
pub struct Week {
    pub hourly: Vec<HourlyOutcome>,
    pub scores: Vec<ScoreBucket>,
    pub reasons: Vec<ReasonCount>,
}

/// Sign-ins in `(now - hours h, now]`: counts per hour of age and outcome; score buckets and
/// the `top` reasons of evaluated attempts (a step-up's ending is not evaluated again).
pub fn week(conn: &mut DbConn, now: i64, hours: i64, top: i64) -> StoreResult<Week> {
    const HOUR: i64 = 3_600_000_000;
    let since = now - hours * HOUR;
    // The same SQL on both backends but for the placeholders and JSON's table function.
    let hourly = "SELECT (? - at) / ? AS age_hours, outcome, COUNT(*) AS n FROM signins \
                  WHERE at > ? AND at <= ? GROUP BY 1, outcome";
    let scores = "SELECT CASE WHEN score >= 90 THEN 9 WHEN score < 0 THEN 0 ELSE score / 10 END \
                  AS bucket, COUNT(*) AS n FROM signins WHERE at > ? AND at <= ? \
                  AND score IS NOT NULL AND outcome NOT IN ('step_up_passed', 'step_up_failed') \
                  GROUP BY 1";
    let reasons_from = |each: &str| {
        format!(
            "SELECT r.value AS reason, COUNT(*) AS n FROM signins, {each} \
             WHERE at > ? AND at <= ? AND reasons IS NOT NULL \
             AND outcome NOT IN ('step_up_passed', 'step_up_failed') \
             GROUP BY r.value ORDER BY n DESC, reason LIMIT ?"
        )
    };
    Ok(match conn {
        DbConn::Sqlite(c) => Week {
            hourly: sql_query(hourly)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(HOUR)
                .bind::<BigInt, _>(since)
                .bind::<BigInt, _>(now)
                .load(c)?,
            scores: sql_query(scores)
                .bind::<BigInt, _>(since)
                .bind::<BigInt, _>(now)
                .load(c)?,
            reasons: sql_query(reasons_from("json_each(signins.reasons) AS r"))
                .bind::<BigInt, _>(since)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(top)
                .load(c)?,
        },
        DbConn::Postgres(c) => Week {
            hourly: sql_query(numbered(hourly))
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(HOUR)
                .bind::<BigInt, _>(since)
                .bind::<BigInt, _>(now)
                .load(c)?,
            scores: sql_query(numbered(scores))
                .bind::<BigInt, _>(since)
                .bind::<BigInt, _>(now)
                .load(c)?,
            reasons: sql_query(numbered(&reasons_from(
                "json_array_elements_text(signins.reasons::json) AS r(value)",
            )))
            .bind::<BigInt, _>(since)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(top)
            .load(c)?,
        },
    })
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
    /// The raw User-Agent (the labelled export replays it).
    pub user_agent: Option<String>,
    /// The shadow model's opinion (JSON), if one was set.
    pub shadow: Option<String>,
}

/// Scored sign-ins with one of `outcomes` at or after `since`, oldest first, at most `limit`,
/// starting after the sign-in `after` (`(at, id)`, the last one of the previous page): reports
/// read the log a page at a time and keep only their counts, so memory does not grow with it.
pub fn scored_page(
    conn: &mut DbConn,
    since: i64,
    outcomes: &[&str],
    after: Option<&(i64, String)>,
    limit: i64,
) -> StoreResult<Vec<Scored>> {
    // `outcome || ''` keeps the (outcome, at) index out of this query: without statistics
    // (SQLite has none until ANALYZE) the planner preferred it, fetched every remaining row of
    // the window for each page and sorted them (O(pages × rows): 7 s for 150,000 rows where
    // walking the `at` index takes 1 s). The outcomes asked for are most of the log anyway.
    let mut q = signins::table
        .filter(signins::at.ge(since))
        .filter(signins::outcome.concat("").eq_any(outcomes))
        .filter(signins::assessment.is_not_null())
        .into_boxed();
    if let Some((at, id)) = after {
        // `at >= …` on its own is what lets the index on `at` start the page where the last
        // one ended; without it both backends scanned and sorted the whole window for every
        // page (a 200,000-row fairness report took 95 s instead of seconds).
        q = q.filter(signins::at.ge(*at)).filter(
            signins::at
                .gt(*at)
                .or(signins::at.eq(*at).and(signins::id.gt(id.clone()))),
        );
    }
    Ok(q.order((signins::at.asc(), signins::id.asc()))
        .limit(limit)
        .select((
            signins::id,
            signins::at,
            signins::user_id,
            signins::outcome,
            signins::decision,
            signins::features,
            signins::assessment,
            signins::user_agent,
            signins::shadow,
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

/// Every verdict given to a sign-in of the window: (sign-in id, `legitimate` | `attack`),
/// reviews a user's report closed included.
pub fn verdicts(conn: &mut DbConn, since: i64) -> StoreResult<Vec<(String, String)>> {
    Ok(reviews::table
        .filter(reviews::status.eq_any(["legitimate", "attack"]))
        .filter(reviews::created_at.ge(since))
        .select((reviews::signin_id, reviews::status))
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
