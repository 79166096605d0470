//! CSRF protection for every form, with the `csrf` crate's HMAC token pairs: a cookie and a
//! form field that only verify together and expire. The key is a server secret in the database,
//! so any node can verify a form another node served.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use base64::alphabet::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use csrf::{CsrfProtection, HmacCsrfProtection};

use super::errors::WebError;

pub const COOKIE: &str = "vigil_csrf";
const TTL_SECS: i64 = 12 * 3600;
/// The crate encodes tokens (form) in URL-safe base64 and cookies in standard base64.
const B64_TOKEN: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_COOKIE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub struct Csrf {
    protect: HmacCsrfProtection,
    secure: bool,
}

impl Csrf {
    pub fn new(key: [u8; 32], secure: bool) -> Self {
        Csrf {
            protect: HmacCsrfProtection::from_key(key),
            secure,
        }
    }

    /// A token for a form on this page, and the cookie to send with the page. Reuses the
    /// browser's current token value when it has a valid one, so several open tabs all work.
    pub fn issue(&self, req: &HttpRequest) -> Result<(String, Cookie<'static>), WebError> {
        let previous = req.cookie(COOKIE);
        let (token, value) = self.issue_values(previous.as_ref().map(|c| c.value()))?;
        let cookie = Cookie::build(COOKIE, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(TTL_SECS))
            .finish();
        Ok((token, cookie))
    }

    /// The form token and the cookie value of [`Csrf::issue`], from the browser's current
    /// cookie value (if any).
    pub fn issue_values(
        &self,
        previous_cookie: Option<&str>,
    ) -> Result<(String, String), WebError> {
        let previous: Option<[u8; 64]> = previous_cookie
            .and_then(|c| B64_COOKIE.decode(c).ok())
            .and_then(|bytes| self.protect.parse_cookie(&bytes).ok())
            .and_then(|c| <[u8; 64]>::try_from(c.value()).ok());
        let (token, cookie) = self
            .protect
            .generate_token_pair(previous.as_ref(), TTL_SECS)
            .map_err(|e| WebError::Internal(format!("csrf token: {e}")))?;
        Ok((token.b64_url_string(), cookie.b64_string()))
    }

    /// Refuse the request unless `form_token` pairs with the browser's CSRF cookie.
    pub fn verify(&self, req: &HttpRequest, form_token: &str) -> Result<(), WebError> {
        let cookie = req.cookie(COOKIE).ok_or(WebError::Csrf)?;
        self.verify_values(cookie.value(), form_token)
    }

    /// [`Csrf::verify`] on the values: the cookie's and the form's.
    pub fn verify_values(&self, cookie_value: &str, form_token: &str) -> Result<(), WebError> {
        let cookie_bytes = B64_COOKIE
            .decode(cookie_value)
            .map_err(|_| WebError::Csrf)?;
        let token_bytes = B64_TOKEN.decode(form_token).map_err(|_| WebError::Csrf)?;
        let parsed_cookie = self
            .protect
            .parse_cookie(&cookie_bytes)
            .map_err(|_| WebError::Csrf)?;
        let parsed_token = self
            .protect
            .parse_token(&token_bytes)
            .map_err(|_| WebError::Csrf)?;
        self.protect
            .verify_token_pair(&parsed_token, &parsed_cookie)
            .map_err(|_| WebError::Csrf)
    }
}
