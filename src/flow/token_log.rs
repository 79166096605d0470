//! The access-token issuance log (who got which token, when, by which grant), written in
//! batches: a token is self-contained and checking it never reads this log, so issuing one costs
//! no database write. A batch is written when it reaches [`BATCH`] lines or [`INTERVAL`] after
//! its first line, whichever comes first — one commit for many tokens. A node that dies loses at
//! most the last interval's lines; the tokens themselves, their grants (codes, refresh tokens)
//! and their revocations are stored as before.
//!
//! The same write moves the usage marks forward (`store::usage`: the last token each user got
//! for each client, and the last time each role was in one), folded per batch, so that least
//! privilege knows what is used without a write per token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashMap;

use crate::store::tokens::{self, AccessTokenRow};
use crate::store::usage::{self, ClientUse, RoleUse};
use crate::store::{self as db, Db};

/// Lines per write.
pub const BATCH: usize = 512;
/// The longest a line waits in memory.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct TokenLog {
    db: Db,
    pending: Mutex<Vec<(AccessTokenRow, Vec<String>)>>,
}

impl TokenLog {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(TokenLog {
            db,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Queue one line, with the roles the token carried; schedules the write that will carry it.
    pub fn record(self: &Arc<Self>, row: AccessTokenRow, roles: Vec<String>) {
        let len = match self.pending.lock() {
            Ok(mut p) => {
                p.push((row, roles));
                p.len()
            }
            Err(_) => return,
        };
        if len >= BATCH {
            let me = self.clone();
            tokio::spawn(async move { me.flush().await });
        } else if len == 1 {
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(INTERVAL).await;
                me.flush().await;
            });
        }
    }

    /// Write whatever is queued (also called at shutdown and by tests).
    pub async fn flush(&self) {
        let rows = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        let (clients, roles) = fold_usage(&rows);
        let rows: Vec<AccessTokenRow> = rows.into_iter().map(|(r, _)| r).collect();
        if let Err(e) = self
            .db
            .run(move |c| {
                db::transaction(c, |c| {
                    tokens::insert_access_batch(c, &rows)?;
                    usage::touch(c, &clients, &roles)
                })
            })
            .await
        {
            tracing::warn!(error = %e, lines = n, "the token issuance log could not be written; these lines are lost");
        }
    }
}

/// The latest use per (user, client) and per (user, client, role) in a batch: a user refreshing
/// every few seconds is one row per batch, not one per token.
fn fold_usage(rows: &[(AccessTokenRow, Vec<String>)]) -> (Vec<ClientUse>, Vec<RoleUse>) {
    let mut clients: HashMap<(&str, &str), i64> = HashMap::new();
    let mut roles: HashMap<(&str, &str, &str), i64> = HashMap::new();
    for (r, held) in rows {
        let Some(user) = r.user_id.as_deref() else {
            continue; // client_credentials: no user
        };
        let at = clients.entry((user, &r.client_id)).or_insert(r.issued_at);
        *at = (*at).max(r.issued_at);
        for role in held {
            let at = roles
                .entry((user, &r.client_id, role))
                .or_insert(r.issued_at);
            *at = (*at).max(r.issued_at);
        }
    }
    let mut c: Vec<ClientUse> = clients
        .into_iter()
        .map(|((u, cl), t)| ClientUse {
            user_id: u.to_owned(),
            client_id: cl.to_owned(),
            last_used_at: t,
        })
        .collect();
    let mut r: Vec<RoleUse> = roles
        .into_iter()
        .map(|((u, cl, ro), t)| RoleUse {
            user_id: u.to_owned(),
            client_id: cl.to_owned(),
            role: ro.to_owned(),
            last_used_at: t,
        })
        .collect();
    // A stable order: two nodes' batches lock the same rows in the same order.
    c.sort_by(|a, b| (&a.user_id, &a.client_id).cmp(&(&b.user_id, &b.client_id)));
    r.sort_by(|a, b| (&a.user_id, &a.client_id, &a.role).cmp(&(&b.user_id, &b.client_id, &b.role)));
    (c, r)
}
