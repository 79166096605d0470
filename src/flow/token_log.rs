//! The access-token issuance log (who got which token, when, by which grant), written in
//! batches: a token is self-contained and checking it never reads this log, so issuing one costs
//! no database write. A batch is written when it reaches [`BATCH`] lines or [`INTERVAL`] after
//! its first line, whichever comes first — one commit for many tokens. A node that dies loses at
//! most the last interval's lines; the tokens themselves, their grants (codes, refresh tokens)
//! and their revocations are stored as before.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::tokens::{self, AccessTokenRow};
use crate::store::Db;

/// Lines per write.
pub const BATCH: usize = 512;
/// The longest a line waits in memory.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct TokenLog {
    db: Db,
    pending: Mutex<Vec<AccessTokenRow>>,
}

impl TokenLog {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(TokenLog {
            db,
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Queue one line; schedules the write that will carry it.
    pub fn record(self: &Arc<Self>, row: AccessTokenRow) {
        let len = match self.pending.lock() {
            Ok(mut p) => {
                p.push(row);
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
        if let Err(e) = self
            .db
            .run(move |c| tokens::insert_access_batch(c, &rows))
            .await
        {
            tracing::warn!(error = %e, lines = n, "the token issuance log could not be written; these lines are lost");
        }
    }
}
