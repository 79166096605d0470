//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, or `none` for public clients (RFC 6749 §2.3).
//! Secrets are compared as SHA-256 digests in constant time.

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::OAuthError;
use crate::clock::Timestamp;
use crate::flow::Services;
use crate::store::clients::Client;
use crate::store::token_digest;

/// What the request presented.
#[derive(Debug, Default)]
pub struct Presented {
    pub basic: Option<(String, String)>,
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
}

/// Decode one `application/x-www-form-urlencoded` component (RFC 6749 §2.3.1 encodes the id
/// and secret this way inside Basic credentials): `+` is a space, `%XX` a byte. A literal `&`
/// or `=` (a client that did not encode) is kept as written, never a separator.
pub fn form_decode(s: &str) -> String {
    let escaped = s.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

impl Presented {
    /// Read the `Authorization` header value, if it is Basic.
    pub fn from_parts(
        authorization: Option<&str>,
        form_id: Option<String>,
        form_secret: Option<String>,
    ) -> Result<Self, OAuthError> {
        let basic = match authorization {
            // `get`, not `h[..6]`: the sixth byte may fall inside a multi-byte character.
            Some(h)
                if h.len() > 6 && h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) =>
            {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h[6..].trim())
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
                let text = String::from_utf8(raw)
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
                let (id, secret) = text
                    .split_once(':')
                    .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
                let (id, secret) = (form_decode(id), form_decode(secret));
                // NUL cannot be stored in PostgreSQL text: no client has it (and a lookup with it
                // would be a database error).
                if id.contains('\0') {
                    return Err(OAuthError::invalid_client("malformed Basic credentials"));
                }
                Some((id, secret))
            }
            _ => None,
        };
        // PostgreSQL text cannot hold NUL: no client id has one, and looking one up would be a
        // database error, a 500 (found by tests/it/adversarial.rs).
        if form_id.as_deref().is_some_and(|id| id.contains('\0')) {
            return Err(OAuthError::invalid_client("unknown client"));
        }
        Ok(Presented {
            basic,
            form_id,
            form_secret,
        })
    }
}

/// Authenticate the client, or fail with `invalid_client` (401) / `invalid_request`. Clients
/// come from the node's cache (`flow::revocations`), which drops them when one changes anywhere.
pub async fn authenticate(
    svc: &Services,
    now: Timestamp,
    p: Presented,
) -> Result<Client, OAuthError> {
    let (id, secret) = match (p.basic, p.form_id, p.form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the credentials",
                ));
            }
            (id, Some(secret))
        }
        (None, Some(id), secret) => (id, secret),
        (None, None, _) => {
            return Err(OAuthError::invalid_client(
                "client authentication is required",
            ))
        }
    };
    if id.len() > 128 {
        return Err(OAuthError::invalid_client("unknown client"));
    }
    let client = svc
        .revocations
        .client(&svc.db, now, &id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    match (&client.secret_hash, secret) {
        (Some(expected), Some(given)) => {
            let ok: bool = token_digest(&given)
                .as_bytes()
                .ct_eq(expected.as_bytes())
                .into();
            if ok {
                Ok(client)
            } else {
                Err(OAuthError::invalid_client("client authentication failed"))
            }
        }
        (Some(_), None) => Err(OAuthError::invalid_client("client authentication failed")),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(OAuthError::invalid_client("a public client has no secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn basic_credentials_are_form_decoded_exactly() {
        let p = Presented::from_parts(Some(&basic("my%20app:s%3Ae+c")), None, None).unwrap();
        assert_eq!(p.basic, Some(("my app".into(), "s:e c".into())));
        // A client that does not form-encode: `=` and `&` are characters, not separators
        // (a base64 secret ending in `=` once lost it, `a&b` was read as `a`).
        let p = Presented::from_parts(Some(&basic("app:c2VjcmV0=")), None, None).unwrap();
        assert_eq!(p.basic, Some(("app".into(), "c2VjcmV0=".into())));
        let p = Presented::from_parts(Some(&basic("a&b:x=y&z")), None, None).unwrap();
        assert_eq!(p.basic, Some(("a&b".into(), "x=y&z".into())));
    }

    #[test]
    fn malformed_headers_are_refused_not_panicked() {
        // A multi-byte character across the sixth byte once panicked (`h[..6]`).
        for h in [
            "Basi\u{e9}xyz",
            "Basic\u{e9}",
            "Basic !!!",
            "Basic AAAA",
            "Basic gA==",
        ] {
            let r = Presented::from_parts(Some(h), None, None);
            assert!(r.is_err() || r.is_ok_and(|p| p.basic.is_none()), "{h:?}");
        }
        assert!(Presented::from_parts(Some(&basic("no-colon")), None, None).is_err());
        assert!(Presented::from_parts(Some(&basic("a%00:b")), None, None).is_err());
        let p = Presented::from_parts(Some("Bearer x"), None, None).unwrap();
        assert!(p.basic.is_none());
    }
}
