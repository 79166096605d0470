//! The pages' language: Fluent catalogues (`locales/<lang>/*.ftl`, embedded at compile time by
//! `fluent_templates::static_loader!`), the choice of a language per request, and the `t`
//! function the templates call.
//!
//! Choice, first that names a language vigil has a catalogue for:
//!
//! ```text
//! /authorize ui_locales (space-separated, in order; OIDC Core §3.1.2.1)
//!   └─ remembered for the sign-in that follows in the `vigil_lang` cookie (web/oidc.rs)
//! vigil_lang cookie ──> Accept-Language (q-values) ──> English
//! ```
//!
//! The middleware [`language`] puts the choice in a task-local for the request; rendering
//! ([`super::templates`]) and [`t`] read it. Admin pages stay English. The languages offered
//! (`ui_locales_supported`) are the catalogue directories, nothing else.
//!
//! Sentences the flow returns as English text (refusals, "this link does not work", …) are
//! matched here by their English ([`flow_text`]): `flow/` stays free of presentation, and a
//! sentence that is not in the table is shown as it is.
//!
//! Must not: decide anything but words. The language never changes what a page does, which
//! form fields it has, or what it reveals.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::Error;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // No Unicode isolation marks around values: the pages are left-to-right and tests
        // (and people copying text) see exactly the words.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The cookie that carries an authorization request's `ui_locales` choice through its sign-in
/// (login, step-up, consent). It only selects words: a value that is not one of
/// [`supported`] is ignored.
pub const LANG_COOKIE: &str = "vigil_lang";

static ENGLISH: LazyLock<LanguageIdentifier> = LazyLock::new(|| "en".parse().unwrap_or_default());

/// A language vigil has a catalogue for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lang(LanguageIdentifier);

impl Lang {
    /// The fallback language, whose catalogue is complete by definition.
    pub fn english() -> Lang {
        Lang(ENGLISH.clone())
    }
    /// The BCP 47 tag (`en`, `de`), for `<html lang>` and the cookie.
    pub fn code(&self) -> String {
        self.0.to_string()
    }
    /// A supported language by its exact tag (the cookie's value).
    pub fn from_code(code: &str) -> Option<Lang> {
        supported().iter().find(|l| l.code() == code).cloned()
    }
    pub fn is_english(&self) -> bool {
        *self == Lang::english()
    }
}

static SUPPORTED: LazyLock<Vec<Lang>> = LazyLock::new(|| {
    let mut v: Vec<Lang> = LOCALES.locales().cloned().map(Lang).collect();
    // English (the fallback) first, then by tag: a stable order for discovery.
    v.sort_by_key(|l| (!l.is_english(), l.code()));
    v
});

/// The languages with a catalogue, English first.
pub fn supported() -> &'static [Lang] {
    &SUPPORTED
}

/// Their tags, for `ui_locales_supported`.
pub fn supported_codes() -> Vec<String> {
    supported().iter().map(Lang::code).collect()
}

/// The first of `tags`, in the order given, that vigil has: exactly, or by its language
/// (`de-DE` → `de`). Tags that do not parse are skipped.
pub fn pick<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Lang> {
    let available: Vec<LanguageIdentifier> = supported().iter().map(|l| l.0.clone()).collect();
    tags.into_iter()
        .filter_map(|t| t.trim().parse::<LanguageIdentifier>().ok())
        .find_map(|requested| {
            fluent_langneg::negotiate_languages(
                &[requested],
                &available,
                None,
                fluent_langneg::NegotiationStrategy::Filtering,
            )
            .first()
            .map(|l| Lang((*l).clone()))
        })
}

/// The tags of an `Accept-Language` header (RFC 9110 §12.5.4), most wanted first: ordered by
/// q-value (stable for equal ones), `q=0` and `*` left out. At most 32 entries are read.
pub fn accept_language(header: &str) -> Vec<&str> {
    let mut tags: Vec<(&str, f32)> = header
        .split(',')
        .take(32)
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let mut q = 1.0f32;
            for p in pieces {
                if let Some(v) = p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")) {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            (!tag.is_empty() && tag != "*" && q > 0.0).then_some((tag, q))
        })
        .collect();
    tags.sort_by(|a, b| b.1.total_cmp(&a.1));
    tags.into_iter().map(|(t, _)| t).collect()
}

/// The language of a request: `ui_locales`, then the cookie, then `Accept-Language`, then
/// English.
pub fn negotiate(ui_locales: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
    ui_locales
        .and_then(|u| pick(u.split_ascii_whitespace()))
        .or_else(|| cookie.and_then(Lang::from_code))
        .or_else(|| accept.and_then(|a| pick(accept_language(a))))
        .unwrap_or_else(Lang::english)
}

tokio::task_local! {
    static CURRENT: Lang;
}

/// The language of the request being handled (English outside one).
pub fn current() -> Lang {
    CURRENT
        .try_with(Lang::clone)
        .unwrap_or_else(|_| Lang::english())
}

/// Run `f` with `lang` as the request's language.
pub async fn scope<F: Future>(lang: Lang, f: F) -> F::Output {
    CURRENT.scope(lang, f).await
}

/// The `Accept-Language` header of a request, if readable.
pub fn accept_header(headers: &header::HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        // `to_str` passed: visible ASCII only, so any length is a character boundary.
        .map(|s| s.get(..s.len().min(512)).unwrap_or(s))
}

/// The middleware: every browser request is handled in its language (the cookie, then
/// `Accept-Language`). `/authorize` narrows it by `ui_locales` itself (web/oidc.rs).
pub async fn language(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if super::middleware::is_api(req.path()) {
        return next.call(req).await;
    }
    let lang = negotiate(
        None,
        req.cookie(LANG_COOKIE).as_ref().map(|c| c.value()),
        accept_header(req.headers()),
    );
    scope(lang, next.call(req)).await
}

/// Message `id` in `lang` with `args` (plain text: a page escapes it like any value). An id
/// missing from every catalogue (a bug the unit tests catch) shows as itself.
pub fn text(lang: &Lang, id: &str, args: &[(&str, FluentValue<'static>)]) -> String {
    let map: HashMap<Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| (Cow::Owned((*k).to_owned()), v.clone()))
        .collect();
    LOCALES
        .try_lookup_complete(&lang.0, id, Some(&map))
        .unwrap_or_else(|| {
            tracing::error!(message.id = id, "no such message in any catalogue");
            id.to_owned()
        })
}

/// Message `id` in the request's language.
pub fn t(id: &str) -> String {
    text(&current(), id, &[])
}

/// Message `id` with arguments in the request's language.
pub fn t_with(id: &str, args: &[(&str, FluentValue<'static>)]) -> String {
    text(&current(), id, args)
}

/// The words for a stored code (`signin-method-email-link` for `email_link`), or the code
/// itself when no catalogue has it. The codes of the sign-in log are a closed set, each with a
/// message (a unit test holds them to it).
pub fn code_label(lang: &Lang, prefix: &str, code: &str) -> String {
    let id = format!("{prefix}{}", code.replace('_', "-"));
    LOCALES
        .try_lookup(&lang.0, &id)
        .unwrap_or_else(|| code.to_owned())
}

/// A string argument.
pub fn arg(s: impl Into<String>) -> FluentValue<'static> {
    FluentValue::from(s.into())
}

/// The templates' `t(id="…", name=value…)` in one language. The catalogue's words are ours and
/// may hold markup, so the result is not escaped again; every value passed in is escaped here.
pub struct Translate(pub Lang);

impl tera::Function for Translate {
    fn call(&self, args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
        let id = args
            .get("id")
            .and_then(tera::Value::as_str)
            .ok_or_else(|| tera::Error::msg("t: the message id (id=\"…\") is missing"))?;
        let map: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .filter(|(k, _)| k.as_str() != "id")
            .map(|(k, v)| {
                let v = match v {
                    tera::Value::Number(n) => match n.as_i64() {
                        Some(i) => FluentValue::from(i),
                        None => FluentValue::from(n.as_f64().unwrap_or(0.0)),
                    },
                    tera::Value::String(s) => FluentValue::from(tera::escape_html(s)),
                    tera::Value::Null => FluentValue::from(""),
                    other => FluentValue::from(tera::escape_html(&other.to_string())),
                };
                (Cow::Owned(k.clone()), v)
            })
            .collect();
        LOCALES
            .try_lookup_complete(&self.0 .0, id, Some(&map))
            .map(tera::Value::String)
            .ok_or_else(|| tera::Error::msg(format!("t: no message {id:?} in any catalogue")))
    }

    fn is_safe(&self) -> bool {
        true
    }
}

/// The templates' `page_lang()`: the tag for `<html lang>`.
pub struct PageLang(pub Lang);

impl tera::Function for PageLang {
    fn call(&self, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
        Ok(tera::Value::String(self.0.code()))
    }

    fn is_safe(&self) -> bool {
        true
    }
}

/// The flow's English sentences that people see, with their message ids. The refusals come
/// from the enums themselves, so a reworded refusal is still matched.
static FLOW_TEXTS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    use crate::auth::password::{MAX_LENGTH, MIN_LENGTH};
    use crate::flow::enforce::Refusal;
    use crate::risk::BlockReason;
    let mut m: HashMap<String, &'static str> = HashMap::new();
    for (r, id) in [
        (Refusal::Disabled, "refusal-disabled"),
        (Refusal::Compromised, "refusal-compromised"),
        (Refusal::NotAdmin, "refusal-not-admin"),
        (Refusal::NotPermitted, "refusal-not-permitted"),
        (Refusal::WrongDevice, "refusal-wrong-device"),
        (Refusal::Revoked, "refusal-revoked"),
        (Refusal::NoAccess, "refusal-no-access"),
        (Refusal::AtRisk, "refusal-at-risk"),
        (Refusal::Unverified, "refusal-unverified"),
        (Refusal::HeldForReview, "refusal-held"),
        (
            Refusal::Blocked(BlockReason::DenyListed),
            "block-deny-listed",
        ),
        (Refusal::Blocked(BlockReason::Policy), "block-policy"),
        (
            Refusal::Blocked(BlockReason::NoSecondFactor),
            "block-no-second-factor",
        ),
        (
            Refusal::Blocked(BlockReason::NoPhishingResistantFactor),
            "block-no-phishing-resistant",
        ),
    ] {
        m.insert(r.message().to_owned(), id);
    }
    for (s, id) in [
        ("This sign-in request has expired or belongs to another browser. Go back to the application and start again.", "flow-request-expired"),
        ("The request does not name a known application (client_id).", "flow-unknown-client"),
        ("The application that sent you here is not registered with vigil.", "flow-unregistered-client"),
        ("The application asked to send you to an address it has not registered. For your safety, vigil stopped here.", "flow-unregistered-redirect"),
        ("The request has no redirect_uri.", "flow-no-redirect-uri"),
        ("The sign-in service is temporarily unavailable.", "flow-service-unavailable"),
        ("Enter your username or your e-mail address.", "flow-identifier-needed"),
        ("This link does not work: it expired (links work for 15 minutes), was already used, or was replaced by a newer one. Ask for a new link.", "flow-reset-link-dead"),
        ("Open this link in the browser where you asked for it (links work only there). Or ask for a new link in this browser.", "flow-reset-other-browser"),
        ("This password reset expired or was already completed. Ask for a new link.", "reset-expired"),
        ("This server does not take registrations; ask your administrator for an account.", "flow-registration-off"),
        ("This invitation does not work: it expired (invitations work for 7 days), was already used, or was copied incompletely. Ask for a new one.", "flow-invite-dead"),
        ("An e-mail address is needed.", "flow-email-needed"),
        ("That username is taken; choose another.", "flow-username-taken"),
        ("This link does not work: it expired, was already used, or was copied incompletely. Ask for a new one on your account page.", "flow-verify-link-dead"),
        ("This link was sent to an address the account no longer has; nothing was changed.", "flow-verify-old-address"),
        ("This link does not work: it expired, was already used, or was copied incompletely. If someone else is using your account, sign in and choose \u{201c}This wasn't me\u{201d} on your account page, or ask your administrator.", "flow-report-link-dead"),
        ("Your current password is not right.", "flow-current-password-wrong"),
        ("Choose a factor to remove.", "flow-choose-factor"),
        ("This set-up expired. Start again.", "flow-setup-expired"),
        ("That code is not right. Check the time on your device and try the current code.", "flow-totp-wrong"),
        ("the password must not be the username", "weak-username"),
        ("this password is on the list of commonly used passwords; choose another", "weak-common"),
    ] {
        m.insert(s.to_owned(), id);
    }
    m.insert(
        format!("the password is too short: use at least {MIN_LENGTH} characters"),
        "weak-too-short",
    );
    m.insert(
        format!("the password is too long: use at most {MAX_LENGTH} characters"),
        "weak-too-long",
    );
    m
});

/// The arguments some flow sentences carry (the password limits).
fn flow_args(id: &str) -> Vec<(&'static str, FluentValue<'static>)> {
    use crate::auth::password::{MAX_LENGTH, MIN_LENGTH};
    match id {
        "weak-too-short" => vec![("n", FluentValue::from(MIN_LENGTH))],
        "weak-too-long" => vec![("n", FluentValue::from(MAX_LENGTH))],
        _ => Vec::new(),
    }
}

/// A sentence of the flow in the request's language: the catalogue's words for a sentence
/// [`FLOW_TEXTS`] knows, the sentence itself otherwise (and always in English).
pub fn flow_text(english: &str) -> String {
    flow_text_in(&current(), english)
}

/// [`flow_text`] in `lang`.
pub fn flow_text_in(lang: &Lang, english: &str) -> String {
    if lang.is_english() {
        return english.to_owned();
    }
    if let Some(reason) = english
        .strip_prefix("Password: ")
        .and_then(|r| r.strip_suffix('.'))
    {
        if FLOW_TEXTS.contains_key(reason) {
            return text(
                lang,
                "weak-password",
                &[("reason", arg(flow_text_in(lang, reason)))],
            );
        }
    }
    match FLOW_TEXTS.get(english) {
        Some(id) => text(lang, id, &flow_args(id)),
        None => english.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sign_in_method_and_outcome_has_words_in_every_language() {
        use crate::flow::signin_log::{METHODS, OUTCOMES};
        for lang in supported() {
            for (prefix, codes) in [
                ("signin-method-", &METHODS[..]),
                ("signin-outcome-", &OUTCOMES[..]),
            ] {
                for code in codes {
                    let id = format!("{prefix}{}", code.replace('_', "-"));
                    assert!(
                        LOCALES.try_lookup(&lang.0, &id).is_some(),
                        "{id} missing in {}",
                        lang.code()
                    );
                }
            }
        }
    }

    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn de() -> Lang {
        Lang::from_code("de").expect("a German catalogue")
    }

    /// The message ids of every `.ftl` file of one language directory.
    fn ids(lang: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(lang);
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("a locales directory") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "ftl") {
                let src = std::fs::read_to_string(&path).expect("a readable catalogue");
                let res = fluent_templates::fluent_bundle::FluentResource::try_new(src)
                    .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", path.display()));
                for entry in res.entries() {
                    if let fluent_syntax::ast::Entry::Message(m) = entry {
                        assert!(
                            out.insert(m.id.name.to_owned()),
                            "{lang}: {} twice",
                            m.id.name
                        );
                    }
                }
            }
        }
        out
    }

    /// Every language has every message, and no more: a missing translation fails here.
    #[test]
    fn every_catalogue_has_every_message() {
        let en = ids("en");
        assert!(en.len() > 100, "English catalogue read: {}", en.len());
        for lang in supported_codes() {
            let other = ids(&lang);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
            assert!(extra.is_empty(), "{lang} has ids English lacks: {extra:?}");
        }
    }

    /// Every `t(id="…")` of a template, and every id the Rust code asks for, is in English.
    #[test]
    fn every_id_used_exists() {
        let en = ids("en");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = BTreeSet::new();
        let mut files = Vec::new();
        for dir in ["templates", "src/web"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("a directory") {
                files.push(entry.expect("an entry").path());
            }
        }
        for path in files.iter().filter(|p| p.is_file()) {
            let src = std::fs::read_to_string(path).expect("readable");
            for pat in ["t(id=\"", "t(\"", "t_with(\"", "text(&lang, \""] {
                for (i, _) in src.match_indices(pat) {
                    // `insert("…")`, `get("…")`: not ours.
                    if src[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    {
                        continue;
                    }
                    let rest = &src[i + pat.len()..];
                    if let Some(end) = rest.find('"') {
                        let id = &rest[..end];
                        if id.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !id.is_empty()
                        {
                            used.insert((path.display().to_string(), id.to_owned()));
                        }
                    }
                }
            }
        }
        assert!(used.len() > 100, "ids found: {}", used.len());
        for (file, id) in &used {
            assert!(
                en.contains(id),
                "{file} uses {id:?}, which locales/en lacks"
            );
        }
        for id in FLOW_TEXTS.values() {
            assert!(
                en.contains(*id),
                "FLOW_TEXTS maps to {id:?}, which locales/en lacks"
            );
        }
    }

    /// English is the flow's own words, so mapping a sentence never changes an English page.
    #[test]
    fn english_catalogue_says_what_the_flow_says() {
        let en = Lang::english();
        for (english, id) in FLOW_TEXTS.iter() {
            assert_eq!(&text(&en, id, &flow_args(id)), english, "{id}");
        }
        assert_ne!(
            flow_text_in(&de(), "That username is taken; choose another."),
            "That username is taken; choose another."
        );
        assert!(
            flow_text_in(&de(), "Password: the password must not be the username.")
                .starts_with("Passwort: ")
        );
        assert_eq!(flow_text_in(&de(), "anything else"), "anything else");
    }

    #[test]
    fn languages_are_the_catalogues() {
        assert_eq!(supported_codes(), vec!["en".to_owned(), "de".to_owned()]);
    }

    #[test]
    fn negotiation() {
        let en = Lang::english();
        assert_eq!(negotiate(None, None, Some("de-DE,de;q=0.9,en;q=0.5")), de());
        assert_eq!(negotiate(None, None, Some("en;q=0.5, de;q=0.8")), de());
        assert_eq!(negotiate(None, None, Some("de;q=0, en")), en);
        assert_eq!(negotiate(None, None, Some("fr-FR, *;q=0.1")), en);
        assert_eq!(negotiate(None, None, None), en);
        assert_eq!(negotiate(Some("fr de"), None, Some("en")), de());
        assert_eq!(negotiate(Some("de"), Some("en"), Some("en")), de());
        assert_eq!(negotiate(Some("xx"), Some("de"), Some("en")), de());
        assert_eq!(negotiate(None, Some("de"), Some("en")), de());
        assert_eq!(negotiate(None, Some("fr"), Some("en")), en);
        assert_eq!(negotiate(None, Some("<script>"), None), en);
        assert_eq!(accept_language("a;q=0.2, b, c;q=0.5"), vec!["b", "c", "a"]);
    }

    #[test]
    fn values_are_escaped_words_are_not() {
        let f = Translate(Lang::english());
        let mut args = HashMap::new();
        args.insert("id".to_owned(), tera::Value::from("consent-intro"));
        args.insert("client".to_owned(), tera::Value::from("<b>x</b>"));
        let out = tera::Function::call(&f, &args).expect("a message");
        assert_eq!(
            out,
            "<strong>&lt;b&gt;x&lt;&#x2F;b&gt;</strong> would like to:"
        );
        let mut args = HashMap::new();
        args.insert("id".to_owned(), tera::Value::from("account-recovery-left"));
        args.insert("count".to_owned(), tera::Value::from(1));
        assert_eq!(
            tera::Function::call(&f, &args).expect("a message"),
            "1 unused recovery code left."
        );
        args.insert("count".to_owned(), tera::Value::from(7));
        assert_eq!(
            tera::Function::call(&f, &args).expect("a message"),
            "7 unused recovery codes left."
        );
    }
}
