//! Users managing their own second factors from /account: TOTP enrolment (secret shown once,
//! active only after a valid code), removal, recovery codes (generated at the first enrolment,
//! shown once, regenerable). Every change is audited.

use super::{mfa, random_token, FlowError, Services};
use crate::audit::AuditEvent;
use crate::auth::{recovery, totp};
use crate::clock::Timestamp;
use crate::store::flows::{self, FlowRow};
use crate::store::users::User;
use crate::store::{self, factors, token_digest, DbConn, StoreResult};

/// How long a user has to confirm a new TOTP secret with a code.
const ENROL_SECS: i64 = 15 * 60;

pub struct TotpEnrolment {
    /// Goes into the confirmation form (a hidden input).
    pub flow: String,
    pub secret_base32: String,
    pub uri: String,
    pub qr_svg: String,
}

/// A new TOTP secret, pending until the user proves their app has it.
pub async fn totp_begin(
    svc: &Services,
    now: Timestamp,
    user: &User,
) -> Result<TotpEnrolment, FlowError> {
    let secret = totp::new_secret();
    let uri = totp::otpauth_uri(&secret, &user.username)?;
    let qr_svg = totp::qr_svg(&uri)?;
    let flow = random_token();
    let id = token_digest(&flow);
    let sealed = svc
        .master
        .seal(&id, &secret)
        .map_err(|e| FlowError::Invalid(e.to_string()))?;
    let row = FlowRow {
        id,
        purpose: "totp_enrol".into(),
        user_id: Some(user.id.clone()),
        data: sealed,
        created_at: now.micros(),
        expires_at: now.plus_secs(ENROL_SECS).micros(),
    };
    svc.db.run(move |c| flows::insert(c, &row)).await?;
    Ok(TotpEnrolment {
        flow,
        secret_base32: totp::base32(&secret),
        uri,
        qr_svg,
    })
}

/// Confirm enrolment with a code from the app. `Ok(Err(msg))` is a mistake the user can fix;
/// `Ok(Ok(codes))` carries new recovery codes when this was the first factor.
pub async fn totp_confirm(
    svc: &Services,
    now: Timestamp,
    user: &User,
    flow: &str,
    code: &str,
    ip: std::net::IpAddr,
) -> Result<Result<Option<Vec<String>>, String>, FlowError> {
    let (id, uid) = (token_digest(flow), user.id.clone());
    let row = svc
        .db
        .run(move |c| flows::find(c, &id, "totp_enrol", now.micros()))
        .await?;
    let Some(row) = row.filter(|r| r.user_id.as_deref() == Some(uid.as_str())) else {
        return Ok(Err("This set-up expired. Start again.".into()));
    };
    let secret = svc
        .master
        .open(&row.id, &row.data)
        .map_err(|e| FlowError::Invalid(e.to_string()))?;
    let step =
        match totp::verify(&secret, code, now, None) {
            Ok(s) => s,
            Err(_) => return Ok(Err(
                "That code is not right. Check the time on your device and try the current code."
                    .into(),
            )),
        };
    let (svc2, uid, username) = (svc.clone(), user.id.clone(), user.username.clone());
    let codes = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                flows::delete(c, &row.id)?;
                mfa::store_totp(&svc2, c, &uid, &secret, Some(step), now)
                    .map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
                svc2.auditor.record(
                    c,
                    now,
                    AuditEvent::new("factor.enrolled")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip)
                        .details(serde_json::json!({ "factor": "totp", "user": username })),
                )?;
                first_recovery_codes(&svc2.auditor, c, &uid, now, Some(ip))
            })
        })
        .await?;
    super::notices::send(
        svc,
        now,
        &user.id,
        super::notices::Notice::FactorAdded("totp"),
    )
    .await;
    Ok(Ok(codes))
}

/// At the first enrolment, give the user recovery codes (returned once, stored hashed).
pub fn first_recovery_codes(
    auditor: &crate::audit::Auditor,
    conn: &mut DbConn,
    user_id: &str,
    now: Timestamp,
    ip: Option<std::net::IpAddr>,
) -> StoreResult<Option<Vec<String>>> {
    if factors::recovery_codes_left(conn, user_id)? > 0 {
        return Ok(None);
    }
    let codes = recovery::generate();
    let digests: Vec<String> = codes.iter().map(|c| recovery::digest(c)).collect();
    factors::replace_recovery_codes(conn, user_id, &digests, now.micros())?;
    let mut ev = AuditEvent::new("factor.recovery_codes_generated")
        .actor(user_id.to_owned())
        .target(user_id.to_owned());
    if let Some(ip) = ip {
        ev = ev.ip(ip);
    }
    auditor.record(conn, now, ev)?;
    Ok(Some(codes))
}

/// Replace all recovery codes with ten new ones.
pub async fn regenerate_recovery(
    svc: &Services,
    now: Timestamp,
    user: &User,
    ip: std::net::IpAddr,
) -> Result<Vec<String>, FlowError> {
    let codes = recovery::generate();
    let digests: Vec<String> = codes.iter().map(|c| recovery::digest(c)).collect();
    let (auditor, uid) = (svc.auditor.clone(), user.id.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                factors::replace_recovery_codes(c, &uid, &digests, now.micros())?;
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("factor.recovery_codes_generated")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip),
                )
            })
        })
        .await?;
    Ok(codes)
}

/// Remove the user's TOTP factor. When no factor is left, the recovery codes go too.
pub async fn totp_remove(
    svc: &Services,
    now: Timestamp,
    user: &User,
    ip: std::net::IpAddr,
) -> Result<(), FlowError> {
    let (auditor, uid) = (svc.auditor.clone(), user.id.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                if factors::delete_totp(c, &uid)? {
                    auditor.record(
                        c,
                        now,
                        AuditEvent::new("factor.removed")
                            .actor(uid.clone())
                            .target(uid.clone())
                            .ip(ip)
                            .details(serde_json::json!({ "factor": "totp" })),
                    )?;
                }
                drop_orphan_recovery_codes(c, &uid)
            })
        })
        .await?;
    Ok(())
}

/// Recovery codes only make sense beside a real factor.
pub fn drop_orphan_recovery_codes(conn: &mut DbConn, user_id: &str) -> StoreResult<()> {
    if !factors::enrolled(conn, user_id)?.any() {
        factors::delete_recovery_codes(conn, user_id)?;
    }
    Ok(())
}

/// Operator provisioning (`vigil user totp-enroll`): a confirmed TOTP secret and its URI.
pub async fn totp_provision(
    svc: &Services,
    now: Timestamp,
    user: &User,
) -> Result<String, FlowError> {
    let secret = totp::new_secret();
    let uri = totp::otpauth_uri(&secret, &user.username)?;
    let (svc2, uid) = (svc.clone(), user.id.clone());
    svc.db
        .run(move |c| {
            store::transaction(c, |c| {
                mfa::store_totp(&svc2, c, &uid, &secret, None, now)
                    .map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
                svc2.auditor.record(
                    c,
                    now,
                    AuditEvent::new("factor.enrolled")
                        .actor("cli")
                        .target(uid.clone())
                        .details(serde_json::json!({ "factor": "totp" })),
                )
            })
        })
        .await?;
    Ok(uri)
}

/// Park freshly generated recovery codes for one showing (after a JSON enrolment call).
pub async fn park_codes_for_display(
    svc: &Services,
    now: Timestamp,
    user: &User,
    codes: &[String],
) -> Result<String, FlowError> {
    let token = random_token();
    let id = token_digest(&token);
    let sealed = svc
        .master
        .seal(
            &id,
            serde_json::to_string(codes).unwrap_or_default().as_bytes(),
        )
        .map_err(|e| FlowError::Invalid(e.to_string()))?;
    let row = FlowRow {
        id,
        purpose: "show_recovery".into(),
        user_id: Some(user.id.clone()),
        data: sealed,
        created_at: now.micros(),
        expires_at: now.plus_secs(600).micros(),
    };
    svc.db.run(move |c| flows::insert(c, &row)).await?;
    Ok(token)
}

/// Take parked codes (shown once: the row is deleted as it is read).
pub async fn take_parked_codes(
    svc: &Services,
    now: Timestamp,
    user: &User,
    token: &str,
) -> Result<Option<Vec<String>>, FlowError> {
    let (id, uid) = (token_digest(token), user.id.clone());
    let row = svc
        .db
        .run(move |c| flows::take(c, &id, "show_recovery", now.micros()))
        .await?;
    let Some(row) = row.filter(|r| r.user_id.as_deref() == Some(uid.as_str())) else {
        return Ok(None);
    };
    let plain = svc
        .master
        .open(&row.id, &row.data)
        .map_err(|e| FlowError::Invalid(e.to_string()))?;
    Ok(serde_json::from_slice(&plain).ok())
}

/// The owner confirms a factor suspended by containment (`totp` or a passkey's id). `NotFound`
/// when there is no such suspended factor. Audited.
pub async fn confirm_suspended(
    svc: &Services,
    now: Timestamp,
    user: &User,
    which: &str,
    ip: std::net::IpAddr,
) -> Result<(), FlowError> {
    let (auditor, uid, which) = (
        svc.auditor.clone(),
        user.id.clone(),
        which.chars().take(64).collect::<String>(),
    );
    let done = svc
        .db
        .run(move |c| {
            store::transaction(c, |c| {
                if !factors::confirm_suspended(c, &uid, &which)? {
                    return Ok(false);
                }
                auditor.record(
                    c,
                    now,
                    AuditEvent::new("factor.confirmed")
                        .actor(uid.clone())
                        .target(uid.clone())
                        .ip(ip)
                        .details(serde_json::json!({ "factor": which })),
                )?;
                Ok(true)
            })
        })
        .await?;
    if done {
        Ok(())
    } else {
        Err(FlowError::NotFound("suspended factor".into()))
    }
}
