//! WebAuthn passkeys: a thin, pure wrapper over webauthn-rs for registration, second-factor
//! authentication and passwordless (discoverable) sign-in.
//!
//! Owns: the relying-party settings derived from the issuer URL, building the options the browser
//! needs, and verifying what it answers (challenge, origin, RP id, signature, user verification,
//! signature counter). Everything crossing the boundary is a plain string or JSON value, so the
//! caller can keep ceremony state and credentials in the database (shared between nodes).
//!
//! Must not: speak HTTP, touch the database, read the wall clock or decide policy (which factor,
//! what to record on a clone). Ceremony state is single-use: the caller deletes it on finish.
//! (webauthn-rs itself reads `SystemTime` while registering, for attestation certificate
//! validity; nothing here does.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::AuthError;

/// The largest browser response (JSON) a ceremony reads: a real one is a few KiB. The web
/// layer caps request bodies at the same size; this holds for every caller.
pub const MAX_RESPONSE_JSON: usize = 16 * 1024;

/// The relying party: vigil's WebAuthn configuration, built once from the issuer.
#[derive(Debug, Clone)]
pub struct Passkeys {
    inner: Webauthn,
}

/// A stored credential as the DB will hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// base64url (no padding) of the credential id.
    pub cred_id: String,
    /// serde JSON of `webauthn_rs::prelude::Passkey` (public key, counter, flags).
    pub passkey_json: String,
}

/// A newly registered credential, to be stored for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// base64url (no padding) of the credential id. The caller must refuse an id that is
    /// already registered (to any account).
    pub cred_id: String,
    /// serde JSON of the new `Passkey`, to store as `StoredPasskey::passkey_json`.
    pub passkey_json: String,
}

/// A successful assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// base64url (no padding) of the credential that signed.
    pub cred_id: String,
    /// Set when the counter or backup state changed: the caller stores it in place of the old one.
    pub updated_passkey_json: Option<String>,
    /// The authenticator verified the user (PIN, biometric): amr `user`.
    pub user_verified: bool,
    /// The browser reported a roaming authenticator (`authenticatorAttachment: "cross-platform"`):
    /// amr `hwk`; otherwise (platform, synced or not reported) `swk`.
    pub hardware: bool,
}

impl Passkeys {
    /// RP id = the issuer URL's host (e.g. "localhost"), origin = the issuer's origin. Errors if the
    /// issuer is unusable for WebAuthn: not a URL, an IP address (WebAuthn needs a domain), or
    /// plain http on anything but localhost (browsers only allow WebAuthn in secure contexts).
    pub fn new(issuer: &str) -> Result<Self, AuthError> {
        let url = Url::parse(issuer).map_err(|_| config("the issuer is not a URL"))?;
        let rp_id = url
            .domain()
            .ok_or_else(|| config("the issuer's host must be a domain name, not an IP address"))?;
        let local = rp_id == "localhost" || rp_id.ends_with(".localhost");
        if !(url.scheme() == "https" || (url.scheme() == "http" && local)) {
            return Err(config("the issuer must use https (or http on localhost)"));
        }
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|_| config("the issuer has no usable origin"))?;
        let inner = WebauthnBuilder::new(rp_id, &origin)
            .and_then(WebauthnBuilder::build)
            .map_err(|_| config("the issuer cannot be a WebAuthn relying party"))?;
        Ok(Self { inner })
    }

    /// Options for `navigator.credentials.create` (webauthn-rs's `CreationChallengeResponse`,
    /// i.e. `{ "publicKey": {...} }`) and the state JSON to keep server-side. `existing`
    /// credentials are excluded. User verification is required; a discoverable credential is
    /// preferred (`residentKey: "preferred"`) so it also serves passwordless sign-in.
    pub fn start_registration(
        &self,
        user_uuid: Uuid,
        username: &str,
        display_name: &str,
        existing: &[StoredPasskey],
    ) -> Result<(Value, String), AuthError> {
        let exclude = existing
            .iter()
            .map(|s| parse_passkey(s).map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<CredentialID>, _>>()?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (ccr, state) = self
            .inner
            .start_passkey_registration(user_uuid, username, display_name, exclude)
            .map_err(protocol)?;
        let mut options = to_value(&ccr)?;
        // webauthn-rs 0.6 always sends residentKey "discouraged" for passkeys and keeps no
        // server-side check of it, so asking for more is a pure client hint. "preferred" (not
        // "required") keeps security keys without resident-key storage usable as a second factor.
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            sel.insert("residentKey".into(), "preferred".into());
            sel.insert("requireResidentKey".into(), false.into());
        }
        Ok((options, to_json(&state)?))
    }

    /// Verify the browser's answer to `start_registration` against its state.
    pub fn finish_registration(
        &self,
        response_json: &str,
        state_json: &str,
    ) -> Result<Registered, AuthError> {
        let response: RegisterPublicKeyCredential = response_from_json(response_json)?;
        let state: PasskeyRegistration = from_json(state_json, "state")?;
        let passkey = self
            .inner
            .finish_passkey_registration(&response, &state)
            .map_err(protocol)?;
        Ok(Registered {
            cred_id: b64(passkey.cred_id()),
            passkey_json: to_json(&passkey)?,
        })
    }

    /// Second factor after a password: options for `navigator.credentials.get` with the user's
    /// credentials as allow-list, and the state JSON. User verification is required.
    pub fn start_authentication(
        &self,
        creds: &[StoredPasskey],
    ) -> Result<(Value, String), AuthError> {
        let passkeys = creds
            .iter()
            .map(parse_passkey)
            .collect::<Result<Vec<_>, _>>()?;
        let (rcr, state) = self
            .inner
            .start_passkey_authentication(&passkeys)
            .map_err(protocol)?;
        Ok((to_value(&rcr)?, to_json(&state)?))
    }

    /// Verify a second-factor assertion. `creds` are the user's credentials as stored *now*: the
    /// signing credential must be among them and its stored counter is the one checked (not the
    /// snapshot taken at start, which a parallel ceremony could have made stale).
    pub fn finish_authentication(
        &self,
        response_json: &str,
        state_json: &str,
        creds: &[StoredPasskey],
    ) -> Result<Authenticated, AuthError> {
        let (response, hardware) = parse_assertion(response_json)?;
        // `PasskeyAuthentication` and `DiscoverableAuthentication` are both `{ ast:
        // AuthenticationState }` and serialise identically; reading the state as the latter gives
        // access to `finish_discoverable_authentication_v2`, the one public entry point that checks
        // an assertion against a caller-supplied (fresh) credential. Pinned by
        // `parallel_ceremony_uses_fresh_counter`.
        let state: DiscoverableAuthentication = from_json(state_json, "state")?;
        let passkey = find(creds, response.get_credential_id())?;
        let result = self
            .inner
            .finish_discoverable_authentication_v2(&response, state, &passkey)
            .map_err(protocol)?;
        outcome(passkey, &result, hardware)
    }

    /// Passwordless: options with no allow-list (the authenticator offers its discoverable
    /// credentials for this RP) and the state JSON. The options carry webauthn-rs's
    /// `"mediation": "conditional"` at the top level, beside `publicKey`; a button-driven page
    /// passes only `publicKey` to `navigator.credentials.get`.
    pub fn start_discoverable(&self) -> Result<(Value, String), AuthError> {
        let (rcr, state) = self
            .inner
            .start_discoverable_authentication()
            .map_err(protocol)?;
        Ok((to_value(&rcr)?, to_json(&state)?))
    }

    /// Which user and credential the browser's answer claims (user handle = the UUID given at
    /// registration). Unverified: only use it to load that user's credentials for
    /// `finish_discoverable`.
    pub fn identify_discoverable(&self, response_json: &str) -> Result<(Uuid, String), AuthError> {
        let (response, _) = parse_assertion(response_json)?;
        let (user, cred_id) = self
            .inner
            .identify_discoverable_authentication(&response)
            .map_err(protocol)?;
        Ok((user, b64(cred_id)))
    }

    /// Verify a passwordless assertion. `creds` must be the credentials of the user returned by
    /// `identify_discoverable` (as stored now); the signing credential must be among them.
    pub fn finish_discoverable(
        &self,
        response_json: &str,
        state_json: &str,
        creds: &[StoredPasskey],
    ) -> Result<Authenticated, AuthError> {
        let (response, hardware) = parse_assertion(response_json)?;
        self.inner
            .identify_discoverable_authentication(&response)
            .map_err(protocol)?;
        let state: DiscoverableAuthentication = from_json(state_json, "state")?;
        let passkey = find(creds, response.get_credential_id())?;
        let result = self
            .inner
            .finish_discoverable_authentication_v2(&response, state, &passkey)
            .map_err(protocol)?;
        outcome(passkey, &result, hardware)
    }
}

/// Parse an assertion and read the browser-reported attachment. `authenticatorAttachment` is not
/// part of webauthn-rs's `PublicKeyCredential` (serde ignores it) and is not signed by the
/// authenticator: good enough to choose amr `hwk` vs `swk`, not a security boundary.
fn parse_assertion(response_json: &str) -> Result<(PublicKeyCredential, bool), AuthError> {
    let raw: Value = response_from_json(response_json)?;
    let hardware =
        raw.get("authenticatorAttachment").and_then(Value::as_str) == Some("cross-platform");
    let response = serde_json::from_value(raw).map_err(|_| malformed("response"))?;
    Ok((response, hardware))
}

/// The stored credential with this id, or "unknown credential" (not the user's, or removed).
fn find(creds: &[StoredPasskey], cred_id: &[u8]) -> Result<Passkey, AuthError> {
    for stored in creds {
        let passkey = parse_passkey(stored)?;
        if passkey.cred_id().as_slice() == cred_id {
            return Ok(passkey);
        }
    }
    Err(AuthError::Webauthn("unknown credential".into()))
}

fn outcome(
    mut passkey: Passkey,
    result: &AuthenticationResult,
    hardware: bool,
) -> Result<Authenticated, AuthError> {
    let updated_passkey_json = match passkey.update_credential(result) {
        Some(true) => Some(to_json(&passkey)?),
        _ => None,
    };
    Ok(Authenticated {
        cred_id: b64(result.cred_id()),
        updated_passkey_json,
        user_verified: result.user_verified(),
        hardware,
    })
}

fn parse_passkey(stored: &StoredPasskey) -> Result<Passkey, AuthError> {
    serde_json::from_str(&stored.passkey_json)
        .map_err(|_| AuthError::Webauthn("a stored passkey is unreadable".into()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn from_json<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T, AuthError> {
    serde_json::from_str(json).map_err(|_| malformed(what))
}

/// A browser's response: at most [`MAX_RESPONSE_JSON`] bytes of JSON.
fn response_from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, AuthError> {
    if json.len() > MAX_RESPONSE_JSON {
        return Err(AuthError::Webauthn("the response is too large".into()));
    }
    from_json(json, "response")
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AuthError> {
    serde_json::to_string(value).map_err(|_| AuthError::Webauthn("serialisation failed".into()))
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, AuthError> {
    serde_json::to_value(value).map_err(|_| AuthError::Webauthn("serialisation failed".into()))
}

fn malformed(what: &str) -> AuthError {
    AuthError::Webauthn(format!("malformed {what}"))
}

fn config(msg: &str) -> AuthError {
    AuthError::Webauthn(msg.into())
}

/// A webauthn-rs error as a short message safe to log and show; a counter regression becomes
/// `CloneDetected` so that the caller can refuse the credential and tell the admin.
fn protocol(e: WebauthnError) -> AuthError {
    let msg = match e {
        WebauthnError::CredentialPossibleCompromise => return AuthError::CloneDetected,
        WebauthnError::InvalidRPOrigin => "origin mismatch",
        WebauthnError::InvalidRPIDHash => "relying party mismatch",
        WebauthnError::MismatchedChallenge | WebauthnError::ChallengeNotFound => {
            "challenge mismatch"
        }
        WebauthnError::InvalidClientDataType => "wrong ceremony type",
        WebauthnError::UserNotPresent => "user presence required",
        WebauthnError::UserNotVerified => "user verification required",
        WebauthnError::CredentialNotFound => "unknown credential",
        WebauthnError::CredentialExcludedFromRequest => "credential already registered",
        WebauthnError::InvalidUserUniqueId => "no valid user handle",
        WebauthnError::Configuration => "invalid relying party configuration",
        other => return AuthError::Webauthn(other.to_string()),
    };
    AuthError::Webauthn(msg.into())
}

#[cfg(test)]
mod tests {
    //! Ceremonies against webauthn-authenticator-rs's software authenticators. `SoftPasskey` and
    //! `SoftToken` implement the CTAP side (real P-256 keys, real authenticator data, real
    //! signatures); `WebauthnAuthenticator::do_*` adds the browser's checks and clientDataJSON.
    //! Everything goes through JSON strings, exactly as between browser, handler and database.

    use super::*;
    use webauthn_authenticator_rs::prelude::{
        CreationChallengeResponse, PublicKeyCredential as ClientAssertion, RequestChallengeResponse,
    };
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_authenticator_rs::softtoken::SoftToken;
    use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator as _};

    const ISSUER: &str = "http://localhost:8080";

    fn rp() -> Passkeys {
        Passkeys::new(ISSUER).unwrap()
    }

    fn origin() -> Url {
        Url::parse(ISSUER).unwrap()
    }

    /// `SoftPasskey::new(true)`: sets the UV flag (webauthn-rs passkeys require UV).
    fn soft() -> SoftPasskey {
        SoftPasskey::new(true)
    }

    fn register(
        pk: &Passkeys,
        authr: &mut impl AuthenticatorBackend,
        user: Uuid,
        existing: &[StoredPasskey],
    ) -> StoredPasskey {
        let (options, state) = pk
            .start_registration(user, "alice", "Alice", existing)
            .unwrap();
        let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let reg = authr.do_registration(origin(), ccr).unwrap();
        // Shaped as static/webauthn.js sends it: unsigned extras a browser adds.
        let mut reg = serde_json::to_value(&reg).unwrap();
        reg["authenticatorAttachment"] = "cross-platform".into();
        reg["extensions"] = serde_json::json!({ "credProps": { "rk": true } });
        reg["response"]["transports"] = serde_json::json!(["usb", "hybrid", "smart-card"]);
        let done = pk.finish_registration(&reg.to_string(), &state).unwrap();
        StoredPasskey {
            cred_id: done.cred_id,
            passkey_json: done.passkey_json,
        }
    }

    /// Browser side of `navigator.credentials.get` at the right origin: the response JSON.
    fn sign(authr: &mut impl AuthenticatorBackend, options: Value) -> String {
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let assertion = authr.do_authentication(origin(), rcr).unwrap();
        serde_json::to_string(&assertion).unwrap()
    }

    /// A full second-factor ceremony; returns the stored passkey as the caller would update it.
    fn authenticate(
        pk: &Passkeys,
        authr: &mut impl AuthenticatorBackend,
        stored: StoredPasskey,
    ) -> Result<StoredPasskey, AuthError> {
        let creds = [stored.clone()];
        let (options, state) = pk.start_authentication(&creds)?;
        let response = sign(authr, options);
        let ok = pk.finish_authentication(&response, &state, &creds)?;
        Ok(StoredPasskey {
            passkey_json: ok.updated_passkey_json.unwrap_or(stored.passkey_json),
            ..stored
        })
    }

    fn counter(stored: &StoredPasskey) -> u64 {
        let v: Value = serde_json::from_str(&stored.passkey_json).unwrap();
        v["cred"]["counter"].as_u64().unwrap()
    }

    #[test]
    fn register_then_authenticate() {
        let pk = rp();
        let mut authr = soft();
        let user = Uuid::new_v4();

        let (options, _) = pk.start_registration(user, "alice", "Alice", &[]).unwrap();
        let sel = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["residentKey"], "preferred");
        assert_eq!(sel["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert_eq!(options["publicKey"]["user"]["id"], b64(user.as_bytes()));

        let stored = register(&pk, &mut authr, user, &[]);
        assert_eq!(counter(&stored), 0);

        // Existing credentials are excluded from a further registration.
        let (options, _) = pk
            .start_registration(user, "alice", "Alice", std::slice::from_ref(&stored))
            .unwrap();
        assert_eq!(
            options["publicKey"]["excludeCredentials"][0]["id"],
            stored.cred_id.as_str()
        );

        let creds = [stored.clone()];
        let (options, state) = pk.start_authentication(&creds).unwrap();
        assert_eq!(
            options["publicKey"]["allowCredentials"][0]["id"],
            stored.cred_id.as_str()
        );
        assert_eq!(options["publicKey"]["userVerification"], "required");
        let response = sign(&mut authr, options);
        let ok = pk.finish_authentication(&response, &state, &creds).unwrap();
        assert_eq!(ok.cred_id, stored.cred_id);
        assert!(ok.user_verified);
        assert!(!ok.hardware, "the soft authenticator reports no attachment");
        let updated = ok.updated_passkey_json.expect("counter moved 0 -> 1");
        let stored = StoredPasskey {
            passkey_json: updated,
            ..stored
        };
        assert_eq!(counter(&stored), 1);

        // The state belongs to its ceremony: an answer to one challenge fails against another.
        let (options, _) = pk.start_authentication(&creds).unwrap();
        let (_, other_state) = pk.start_authentication(&creds).unwrap();
        let response = sign(&mut authr, options);
        let err = pk.finish_authentication(&response, &other_state, std::slice::from_ref(&stored));
        assert!(matches!(err, Err(AuthError::Webauthn(m)) if m == "challenge mismatch"));

        // A credential that is not (or no longer) the user's is refused.
        let (options, state) = pk
            .start_authentication(std::slice::from_ref(&stored))
            .unwrap();
        let response = sign(&mut authr, options);
        let err = pk.finish_authentication(&response, &state, &[]);
        assert!(matches!(err, Err(AuthError::Webauthn(m)) if m == "unknown credential"));
    }

    #[test]
    fn attachment_maps_to_hardware() {
        let pk = rp();
        let mut authr = soft();
        let stored = register(&pk, &mut authr, Uuid::new_v4(), &[]);
        let mut stored = stored;
        for (attachment, hardware) in [
            (Some("cross-platform"), true),
            (Some("platform"), false),
            (None, false),
        ] {
            let creds = [stored.clone()];
            let (options, state) = pk.start_authentication(&creds).unwrap();
            let mut response: Value = serde_json::from_str(&sign(&mut authr, options)).unwrap();
            if let Some(a) = attachment {
                // Set by the browser, outside what the authenticator signs.
                response["authenticatorAttachment"] = a.into();
            }
            let ok = pk
                .finish_authentication(&response.to_string(), &state, &creds)
                .unwrap();
            assert_eq!(ok.hardware, hardware, "{attachment:?}");
            stored.passkey_json = ok.updated_passkey_json.unwrap();
        }
    }

    /// The soft authenticators cannot store resident keys (they refuse `requireResidentKey` and
    /// look credentials up only through the allow-list) and never return a user handle. So the
    /// test plays the resident-key authenticator's part: it hands the soft key the credential a
    /// real one would find by RP id, and puts back the user handle a real one would return. Both
    /// are outside the signed data (authenticatorData + hash of clientDataJSON); the challenge,
    /// origin, RP id hash, flags, counter and signature are all genuine.
    #[test]
    fn discoverable_round_trip() {
        let pk = rp();
        let mut authr = soft();
        let user = Uuid::new_v4();
        let stored = register(&pk, &mut authr, user, &[]);
        let creds = [stored.clone()];

        let (options, state) = pk.start_discoverable().unwrap();
        assert_eq!(options["mediation"], "conditional");
        assert!(options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty));
        assert_eq!(options["publicKey"]["userVerification"], "required");

        let mut rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let (allow, _) = pk.start_authentication(&creds).unwrap();
        let allow: RequestChallengeResponse = serde_json::from_value(allow).unwrap();
        rcr.public_key.allow_credentials = allow.public_key.allow_credentials;
        let mut assertion: ClientAssertion = authr.do_authentication(origin(), rcr).unwrap();

        // Without a user handle the answer identifies nobody.
        let bare = serde_json::to_string(&assertion).unwrap();
        assert!(matches!(
            pk.identify_discoverable(&bare),
            Err(AuthError::Webauthn(m)) if m == "no valid user handle"
        ));
        assert!(pk.finish_discoverable(&bare, &state, &creds).is_err());

        assertion.response.user_handle = Some(user.as_bytes().to_vec());
        let response = serde_json::to_string(&assertion).unwrap();
        let (who, cred_id) = pk.identify_discoverable(&response).unwrap();
        assert_eq!(who, user);
        assert_eq!(cred_id, stored.cred_id);

        // Another user's credentials do not verify it.
        let other = register(&pk, &mut soft(), Uuid::new_v4(), &[]);
        let err = pk.finish_discoverable(&response, &state, std::slice::from_ref(&other));
        assert!(matches!(err, Err(AuthError::Webauthn(m)) if m == "unknown credential"));

        let ok = pk.finish_discoverable(&response, &state, &creds).unwrap();
        assert_eq!(ok.cred_id, stored.cred_id);
        assert!(ok.user_verified);
        assert!(ok.updated_passkey_json.is_some());
    }

    /// A real clone: `SoftToken` serialises its whole state (keys and counter), so a copy taken
    /// mid-life is a second authenticator holding the same private key with a lagging counter.
    #[test]
    fn cloned_authenticator_is_refused() {
        let pk = rp();
        let (mut original, _ca) = SoftToken::new(true).unwrap();
        let stored = register(&pk, &mut original, Uuid::new_v4(), &[]);
        let stored = authenticate(&pk, &mut original, stored).unwrap();
        assert_eq!(counter(&stored), 1);

        let snapshot = original.to_cbor().unwrap();
        let mut lagging = SoftToken::from_cbor(&snapshot).unwrap();
        let mut level = SoftToken::from_cbor(&snapshot).unwrap();

        // The original moves on: the server has now seen counter 3.
        let stored = authenticate(&pk, &mut original, stored).unwrap();
        let stored = authenticate(&pk, &mut original, stored).unwrap();
        assert_eq!(counter(&stored), 3);

        // The clone signs a valid assertion (fresh challenge, right origin) with counter 2 < 3.
        let err = authenticate(&pk, &mut lagging, stored.clone());
        assert!(matches!(err, Err(AuthError::CloneDetected)), "{err:?}");

        // Equal is refused too: another copy signs with 2, then again with 3 == 3.
        assert!(matches!(
            authenticate(&pk, &mut level, stored.clone()),
            Err(AuthError::CloneDetected)
        ));
        assert!(matches!(
            authenticate(&pk, &mut level, stored.clone()),
            Err(AuthError::CloneDetected)
        ));

        // The original is unaffected (refusal and reporting are the caller's policy).
        let stored = authenticate(&pk, &mut original, stored).unwrap();
        assert_eq!(counter(&stored), 4);
    }

    /// The counter is checked against the credential as stored at finish time, not the copy
    /// webauthn-rs snapshots into the state at start: two ceremonies in flight, the later one
    /// finishes first and raises the stored counter, the earlier answer (lower counter) must fail.
    #[test]
    fn parallel_ceremony_uses_fresh_counter() {
        let pk = rp();
        let mut authr = soft();
        let registered = register(&pk, &mut authr, Uuid::new_v4(), &[]);
        let creds = [registered.clone()];

        let (options_a, state_a) = pk.start_authentication(&creds).unwrap();
        let (options_b, state_b) = pk.start_authentication(&creds).unwrap();
        let response_a = sign(&mut authr, options_a); // counter 1
        let response_b = sign(&mut authr, options_b); // counter 2

        let ok = pk
            .finish_authentication(&response_b, &state_b, &creds)
            .unwrap();
        let fresh = StoredPasskey {
            passkey_json: ok.updated_passkey_json.unwrap(),
            ..registered.clone()
        };
        assert_eq!(counter(&fresh), 2);

        let err = pk.finish_authentication(&response_a, &state_a, std::slice::from_ref(&fresh));
        assert!(matches!(err, Err(AuthError::CloneDetected)), "{err:?}");

        // The same answer against the stale credential (counter 0, as in state_a) would pass:
        // the fresh `creds` argument is what catches it.
        assert!(pk
            .finish_authentication(&response_a, &state_a, &creds)
            .is_ok());
    }

    #[test]
    fn wrong_origin_is_refused() {
        let pk = rp();
        let mut authr = soft();
        let stored = register(&pk, &mut authr, Uuid::new_v4(), &[]);
        let creds = [stored];
        let evil = Url::parse("http://evil.example:8080").unwrap();

        // A browser refuses outright: RP id "localhost" is not evil.example's, and http is only
        // a secure context on localhost.
        let (options, _) = pk.start_authentication(&creds).unwrap();
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        assert!(authr.do_authentication(evil.clone(), rcr).is_err());

        // A client without those checks (a relaying phishing proxy) gets a genuine signature
        // over clientData naming its own origin; the server refuses it. Same for another port.
        for bad in [evil.clone(), Url::parse("http://localhost:9999").unwrap()] {
            let (options, state) = pk.start_authentication(&creds).unwrap();
            let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
            let assertion =
                AuthenticatorBackend::perform_auth(&mut authr, bad.clone(), rcr.public_key, 60_000)
                    .unwrap();
            let err = pk.finish_authentication(
                &serde_json::to_string(&assertion).unwrap(),
                &state,
                &creds,
            );
            assert!(
                matches!(&err, Err(AuthError::Webauthn(m)) if m == "origin mismatch"),
                "{bad}: {err:?}"
            );
        }

        // Registration from the wrong origin is refused as well.
        let (options, state) = pk
            .start_registration(Uuid::new_v4(), "bob", "Bob", &[])
            .unwrap();
        let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let reg = AuthenticatorBackend::perform_register(&mut authr, evil, ccr.public_key, 60_000)
            .unwrap();
        let err = pk.finish_registration(&serde_json::to_string(&reg).unwrap(), &state);
        assert!(
            matches!(&err, Err(AuthError::Webauthn(m)) if m == "origin mismatch"),
            "{err:?}"
        );
    }

    #[test]
    fn issuer_must_be_a_secure_domain() {
        // WebAuthn RP ids are domains: IP addresses are refused.
        assert!(Passkeys::new("http://127.0.0.1:8080").is_err());
        assert!(Passkeys::new("https://127.0.0.1").is_err());
        assert!(Passkeys::new("https://[::1]:8443").is_err());
        // Browsers allow WebAuthn over http only on localhost.
        assert!(Passkeys::new("http://id.example.com").is_err());
        assert!(Passkeys::new("not a url").is_err());

        assert!(Passkeys::new("http://localhost").is_ok());
        let pk = Passkeys::new("https://id.example.com:8443/vigil/").unwrap();
        let origins: Vec<&str> = pk
            .inner
            .get_allowed_origins()
            .iter()
            .map(Url::as_str)
            .collect();
        assert_eq!(origins, ["https://id.example.com:8443/"]);
        let (options, _) = pk.start_discoverable().unwrap();
        assert_eq!(options["publicKey"]["rpId"], "id.example.com");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let pk = rp();
        let junk = StoredPasskey {
            cred_id: "x".into(),
            passkey_json: "{}".into(),
        };
        assert!(pk
            .start_authentication(std::slice::from_ref(&junk))
            .is_err());
        assert!(pk
            .start_registration(Uuid::new_v4(), "a", "A", &[junk])
            .is_err());
        assert!(pk.finish_registration("{}", "{}").is_err());
        assert!(pk.finish_authentication("nope", "{}", &[]).is_err());
        assert!(pk.identify_discoverable("[]").is_err());
        let (_, state) = pk.start_discoverable().unwrap();
        assert!(pk.finish_discoverable("{}", &state, &[]).is_err());
    }
}
