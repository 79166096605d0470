//! Withdrawing consent. Forgetting the grant alone would leave the app's refresh tokens working
//! for weeks, so withdrawal also revokes every token the user holds at that app, in the same
//! transaction as the deletion and its audit entry.

use std::net::IpAddr;

use super::{FlowError, Services};
use crate::audit::AuditEvent;
use crate::clock::Timestamp;
use crate::store::{self, consents, tokens};

/// Withdraw `user_id`'s consent for `client_id` and revoke the user's refresh and access tokens
/// at that client. Returns whether anything changed (audited as `consent.revoked` if so).
pub async fn withdraw(
    svc: &Services,
    now: Timestamp,
    user_id: &str,
    client_id: &str,
    ip: IpAddr,
) -> Result<bool, FlowError> {
    let (auditor, uid, cid) = (
        svc.auditor.clone(),
        user_id.to_owned(),
        client_id.to_owned(),
    );
    let changed = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                let had_consent = consents::revoke(c, &uid, &cid)?;
                let revoked = tokens::revoke_for_user(
                    c,
                    &uid,
                    Some(&cid),
                    crate::oidc::grant_revocation(now),
                )?;
                let changed = had_consent || revoked.refresh_tokens > 0 || revoked.grants > 0;
                if changed {
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("consent.revoked")
                            .actor(uid.clone())
                            .target(cid.clone())
                            .ip(ip)
                            .details(serde_json::json!({
                                "consent": had_consent,
                                "refresh_tokens_revoked": revoked.refresh_tokens,
                                "grants_revoked": revoked.grants,
                            })),
                    )?;
                }
                Ok(changed)
            })
        })
        .await?;
    Ok(changed)
}
