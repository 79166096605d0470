//! The hourly purge of dead rows (see `store::housekeeping`): what "dead" means for each table.

use super::Services;
use crate::clock::Timestamp;
use crate::oidc::LIFETIMES;
use crate::store::housekeeping::{self, Cutoffs, Swept};
use crate::store::StoreError;

/// An unused code is kept this long after it expired. It never produced a token, so nothing
/// depends on it; the day only keeps a just-expired code's "expired" answer and its row around
/// for anyone investigating a failed sign-in.
const UNUSED_CODE_GRACE_SECS: i64 = 24 * 3600;

/// Delete what can no longer be used, as of `now`.
///
/// A *used* code is kept while anything it touched may still matter: a replay of it revokes
/// the tokens it issued (`revoke_by_code`), which live at most `refresh_absolute`; and
/// back-channel logout finds a session's clients through its codes, for as long as the session
/// can last. So used codes go only after the longer of the two, counted from their creation.
pub async fn sweep(svc: &Services, now: Timestamp) -> Result<Swept, StoreError> {
    let keep_used = LIFETIMES
        .refresh_absolute
        .max(svc.settings.session.absolute_secs);
    let cutoffs = Cutoffs {
        now: now.micros(),
        unused_codes_expired_before: now.minus_secs(UNUSED_CODE_GRACE_SECS).micros(),
        used_codes_created_before: now.minus_secs(keep_used).micros(),
        // The throttle window is at most a day (config); older failures count for nothing.
        failures_before: now
            .minus_secs(svc.settings.throttle.window_secs.max(24 * 3600))
            .micros(),
        token_log_expired_before: match svc.settings.token_log_retention_days {
            0 => None,
            days => Some(now.minus_secs(i64::from(days) * 86_400).micros()),
        },
    };
    let swept = svc.db.run(move |c| housekeeping::sweep(c, cutoffs)).await?;
    Ok(swept)
}
