//! The tera templates, compiled into the binary so vigil runs from any working directory.
//! One copy per language of `locales/` (web/i18n.rs), each with its own `t(id="…")` and
//! `page_lang()`; a page renders in the request's language, the admin console in English.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use tera::{Context, Tera};

use super::i18n::{self, Lang};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

const SOURCES: &[(&str, &str)] = templates![
    "base.html",
    "login.html",
    "account.html",
    "error.html",
    "signed_out.html",
    "email_verify.html",
    "forgot.html",
    "reset.html",
    "report.html",
    "register.html",
    "consent.html",
    "form_post.html",
    "no_access.html",
    "logout_confirm.html",
    "mfa.html",
    "totp_enrol.html",
    "recovery_codes.html",
    "password.html",
    "admin/base.html",
    "admin/dashboard.html",
    "admin/policy.html",
    "admin/fairness.html",
    "admin/keys.html",
    "admin/users.html",
    "admin/user.html",
    "admin/clients.html",
    "admin/client.html",
    "admin/client_fields.html",
    "admin/signins.html",
    "admin/signin.html",
    "admin/review.html",
    "admin/groups.html",
    "admin/group.html",
    "admin/reviews.html",
    "admin/access_review.html",
];

static TERA: LazyLock<Result<Vec<(Lang, Tera)>, String>> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_templates(SOURCES.iter().copied())
        .map_err(|e| format!("{e:?}"))?;
    t.register_filter("pct", pct);
    t.register_filter("ratio", ratio);
    Ok(i18n::supported()
        .iter()
        .map(|lang| {
            let mut copy = t.clone();
            copy.register_function("t", i18n::Translate(lang.clone()));
            copy.register_function("page_lang", i18n::PageLang(lang.clone()));
            (lang.clone(), copy)
        })
        .collect())
});

/// `0.1234 | pct` → `12.3 %`.
fn pct(
    v: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let x = v.as_f64().unwrap_or(0.0);
    Ok(tera::Value::String(format!("{:.1} %", x * 100.0)))
}

/// `1.567 | ratio` → `1.57×`; infinite or missing → `—`.
fn ratio(
    v: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    Ok(tera::Value::String(match v.as_f64() {
        Some(x) if x.is_finite() => format!("{x:.2}×"),
        _ => "—".into(),
    }))
}

/// Render `name` in the request's language (the admin console: English); a template error is
/// logged and becomes a minimal page, never a panic.
pub fn render(name: &str, ctx: &Context) -> Result<String, String> {
    let lang = if name.starts_with("admin/") {
        Lang::english()
    } else {
        i18n::current()
    };
    render_in(&lang, name, ctx)
}

/// Render `name` in `lang` (English when vigil has no such catalogue).
pub fn render_in(lang: &Lang, name: &str, ctx: &Context) -> Result<String, String> {
    match &*TERA {
        Ok(all) => {
            let t = all
                .iter()
                .find(|(l, _)| l == lang)
                .or(all.first())
                .map(|(_, t)| t)
                .ok_or("no templates")?;
            t.render(name, ctx).map_err(|e| format!("{e:?}"))
        }
        Err(e) => Err(e.clone()),
    }
}

/// An HTML response with `status`.
pub fn page(status: StatusCode, name: &str, ctx: &Context) -> HttpResponse {
    match render(name, ctx) {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((
                actix_web::http::header::CONTENT_LANGUAGE,
                if name.starts_with("admin/") {
                    "en".to_owned()
                } else {
                    i18n::current().code()
                },
            ))
            .body(body),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>Error · vigil</title><h1>Something went wrong</h1>")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_templates_compile() {
        assert!(super::TERA.is_ok(), "{:?}", super::TERA.as_ref().err());
    }

    /// The pages' Content-Security-Policy allows styles and scripts from files only: an inline
    /// `style=` attribute or `<script>` body is silently dropped by the browser (the dashboard's
    /// legend lost its colours so). Keep every page to classes and `static/` files.
    #[test]
    fn no_page_relies_on_what_the_csp_blocks() {
        for (name, src) in super::SOURCES {
            assert!(
                !src.contains(" style="),
                "{name}: an inline style attribute"
            );
            for (i, _) in src.match_indices("<script") {
                let tag = &src[i..src[i..].find('>').map_or(src.len(), |e| i + e)];
                assert!(tag.contains(" src="), "{name}: an inline script");
            }
            assert!(!src.contains("<style"), "{name}: an inline style element");
            assert!(
                !src.contains(" onclick=") && !src.contains(" onsubmit="),
                "{name}: an inline handler"
            );
        }
    }
}
