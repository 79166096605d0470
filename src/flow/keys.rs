//! Signing-key rotation, shared by `vigil keys rotate` and the admin console.

use super::accounts::Actor;
use super::{FlowError, Services};
use crate::clock::Timestamp;
use crate::store::keys::KeyRow;
use crate::store::{self, StoreError};

/// Make a new key active for every algorithm; the old ones stay published for
/// `KEY_GRACE_SECS` so tokens they signed still verify. Audited as `keys.rotated`.
pub async fn rotate(
    svc: &Services,
    actor: &Actor,
    now: Timestamp,
) -> Result<Vec<KeyRow>, FlowError> {
    let (keys, auditor, actor) = (svc.keys.clone(), svc.auditor.clone(), actor.clone());
    Ok(svc
        .db
        .run(move |conn| {
            store::transaction(conn, |conn| {
                let created = keys
                    .rotate(conn, now, crate::oidc::KEY_GRACE_SECS)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let ids: Vec<String> = created.iter().map(|k| k.id.clone()).collect();
                auditor.record(
                    conn,
                    now,
                    actor
                        .event("keys.rotated")
                        .details(serde_json::json!({ "new": ids })),
                )?;
                Ok(created)
            })
        })
        .await?)
}

/// A key's state at `now`: `active`, `rotated` (still published) or `retired`.
pub fn state(k: &KeyRow, now: Timestamp) -> &'static str {
    match (k.rotated_at, k.publish_until) {
        (None, _) => "active",
        (Some(_), Some(until)) if until > now.micros() => "rotated",
        _ => "retired",
    }
}

/// Every key, newest first.
pub async fn list(svc: &Services) -> Result<Vec<KeyRow>, FlowError> {
    let mut rows = svc.db.run(store::keys::all).await?;
    rows.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    Ok(rows)
}
