//! The outbox: a message is rendered and queued in the transaction of what caused it, and sent
//! by a background sender on every node ([`spawn_sender`]). A mail server that is down delays
//! mail and fails no request; a node that dies after the commit leaves the message for the
//! next node; of several nodes one sends each message (a compare-and-set lease).
//!
//! ```text
//!  flow (in its transaction) ─► queue ─► mail_outbox ─► drain (every 2 s) ─► Mailer::send
//!                                           ▲   retry with backoff, 30 s … 1 h, 12 tries  │
//!                                           └──────────────────────────────────────────────┘
//! ```

use std::time::Duration;

use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::mail::Mailer;
use crate::store::mail::{self as outbox, OutboxRow};
use crate::store::{new_id, DbConn, StoreResult};

/// How often each node looks for due messages.
pub const DRAIN_EVERY: Duration = Duration::from_secs(2);
/// How long a node may take to send a message it claimed before another node may.
const LEASE_SECS: i64 = 120;
/// Attempts before a message is abandoned (about a day of backoff).
const MAX_ATTEMPTS: i32 = 12;
/// Sent and abandoned messages are deleted after this long (they hold addresses and links).
pub const KEEP_DAYS: i64 = 7;

/// Render `template` and queue it for `to`, inside the caller's transaction. With e-mail off
/// nothing is queued (the callers' features say mail is off).
pub fn queue(
    conn: &mut DbConn,
    mailer: &Mailer,
    now: Timestamp,
    to: &str,
    template: &str,
    subject: &str,
    ctx: &serde_json::Value,
) -> StoreResult<()> {
    if !mailer.enabled() {
        return Ok(());
    }
    let m = mailer
        .render(template, subject, ctx)
        .map_err(crate::store::StoreError::Corrupt)?;
    outbox::enqueue(
        conn,
        &OutboxRow {
            id: new_id(),
            kind: template.to_owned(),
            to_addr: to.to_owned(),
            subject: m.subject,
            text_body: m.text,
            html_body: m.html,
            created_at: now.micros(),
            attempts: 0,
            next_attempt_at: now.micros(),
            sent_at: None,
            failed_at: None,
            last_error: None,
        },
    )
}

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub sent: u32,
    pub retrying: u32,
    pub abandoned: u32,
}

/// The wait before attempt `n + 1` after `n` failures: 30 s doubling, at most an hour.
fn backoff_secs(failures: i32) -> i64 {
    (30i64 << failures.clamp(0, 7)).min(3600)
}

/// Send what is due now.
pub async fn drain(svc: &Services, now: Timestamp) -> Result<Drained, FlowError> {
    let mut d = Drained::default();
    if !svc.mailer.enabled() {
        return Ok(d);
    }
    let due = svc
        .db
        .run(move |c| outbox::due(c, now.micros(), 50))
        .await?;
    for m in due {
        let (id, seen) = (m.id.clone(), m.next_attempt_at);
        let lease = now.plus_secs(LEASE_SECS).micros();
        let mine = svc
            .db
            .run(move |c| outbox::claim(c, &id, seen, lease))
            .await?;
        if !mine {
            continue;
        }
        let rendered = crate::mail::Rendered {
            subject: m.subject.clone(),
            text: m.text_body.clone(),
            html: m.html_body.clone(),
        };
        let result = svc.mailer.send(&m.to_addr, &rendered).await;
        let id = m.id.clone();
        match result {
            Ok(()) => {
                svc.db
                    .run(move |c| outbox::sent(c, &id, now.micros()))
                    .await?;
                d.sent += 1;
            }
            Err(e) => {
                let give_up = e.permanent || m.attempts + 1 >= MAX_ATTEMPTS;
                let retry_at = (!give_up).then(|| now.plus_secs(backoff_secs(m.attempts)).micros());
                if give_up {
                    tracing::warn!(kind = %m.kind, attempts = m.attempts + 1, error = %e.message, "an e-mail was abandoned");
                    d.abandoned += 1;
                } else {
                    tracing::info!(kind = %m.kind, attempts = m.attempts + 1, error = %e.message, "an e-mail could not be sent yet; retrying");
                    d.retrying += 1;
                }
                let msg = e.message.clone();
                svc.db
                    .run(move |c| outbox::attempt_failed(c, &id, now.micros(), retry_at, &msg))
                    .await?;
            }
        }
    }
    crate::telemetry::note_mail("sent", d.sent);
    crate::telemetry::note_mail("retrying", d.retrying);
    crate::telemetry::note_mail("abandoned", d.abandoned);
    Ok(d)
}

/// The background sender of `serve` and `demo` (and the test server).
pub fn spawn_sender(svc: &Services) {
    if !svc.mailer.enabled() {
        return;
    }
    let svc = svc.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = drain(&svc, svc.clock.now()).await {
                tracing::warn!(error = %e, "the e-mail sender could not read the outbox");
            }
        }
    });
}

/// Housekeeping: forget sent and abandoned messages after [`KEEP_DAYS`], expired links, and
/// reset requests older than a day (the throttle counts an hour).
pub fn purge(conn: &mut DbConn, now: Timestamp) -> StoreResult<usize> {
    Ok(
        outbox::purge(conn, now.minus_secs(KEEP_DAYS * 86_400).micros())?
            + outbox::purge_links(conn, now.micros())?
            + outbox::purge_requests(conn, now.minus_secs(86_400).micros())?,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let b: Vec<i64> = (0..9).map(super::backoff_secs).collect();
        assert_eq!(b, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }
}
