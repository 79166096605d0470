//! Filtered reads of the sign-in log for the admin console and its exports. Pages use a keyset
//! cursor on (at, id), newest first, so the thousandth page costs what the first one does and
//! an export can walk the log in batches without holding it in memory.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{signins, users};
use super::signins::SigninRow;
use super::{DbConn, StoreResult};

/// What the admin narrowed the log to. Every field is already validated by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub user_id: Option<String>,
    pub decision: Option<String>,
    pub level: Option<String>,
    pub outcome: Option<String>,
    /// A contract signal name, matched as a quoted element of the JSON `reasons` array.
    pub reason: Option<String>,
    /// Inclusive lower bound (µs).
    pub from: Option<i64>,
    /// Exclusive upper bound (µs).
    pub until: Option<i64>,
    /// Only sign-ins of accounts now in this risk state (`none`, `at_risk`, `compromised`).
    pub account_risk: Option<String>,
}

/// Where the next page starts: after the row with this time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

/// Escape LIKE's wildcards so that `new_asn` matches only itself.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rows matching `f`, newest first, starting after `after`, at most `limit`.
pub fn page(
    conn: &mut DbConn,
    f: &LogFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> StoreResult<Vec<SigninRow>> {
    let mut q = signins::table.select(SigninRow::as_select()).into_boxed();
    if let Some(u) = &f.user_id {
        q = q.filter(signins::user_id.eq(u.clone()));
    }
    if let Some(d) = &f.decision {
        q = q.filter(signins::decision.eq(d.clone()));
    }
    if let Some(l) = &f.level {
        q = q.filter(signins::level.eq(l.clone()));
    }
    if let Some(o) = &f.outcome {
        q = q.filter(signins::outcome.eq(o.clone()));
    }
    if let Some(r) = &f.reason {
        let pattern = format!("%\"{}\"%", like_literal(r));
        q = q.filter(signins::reasons.like(pattern).escape('\\'));
    }
    if let Some(r) = &f.account_risk {
        let accounts = users::table
            .filter(users::risk_state.eq(r.clone()))
            .select(users::id.nullable());
        q = q.filter(signins::user_id.eq_any(accounts));
    }
    if let Some(from) = f.from {
        q = q.filter(signins::at.ge(from));
    }
    if let Some(until) = f.until {
        q = q.filter(signins::at.lt(until));
    }
    if let Some(c) = after {
        q = q.filter(
            signins::at
                .lt(c.at)
                .or(signins::at.eq(c.at).and(signins::id.lt(c.id.clone()))),
        );
    }
    Ok(q.order((signins::at.desc(), signins::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Usernames of the given user ids (missing ids are simply absent: the user was deleted).
pub fn usernames(conn: &mut DbConn, ids: &[String]) -> StoreResult<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut unique: Vec<&String> = ids.iter().collect();
    unique.sort();
    unique.dedup();
    let rows: Vec<(String, String)> = users::table
        .filter(users::id.eq_any(unique))
        .select((users::id, users::username))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}
