//! The tera templates, compiled into the binary so vigil runs from any working directory.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use tera::{Context, Tera};

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

static TERA: LazyLock<Result<Tera, String>> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_templates(SOURCES.iter().copied())
        .map_err(|e| format!("{e:?}"))?;
    t.register_filter("pct", pct);
    t.register_filter("ratio", ratio);
    Ok(t)
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

/// Render `name`; a template error is logged and becomes a minimal page, never a panic.
pub fn render(name: &str, ctx: &Context) -> Result<String, String> {
    match &*TERA {
        Ok(t) => t.render(name, ctx).map_err(|e| format!("{e:?}")),
        Err(e) => Err(e.clone()),
    }
}

/// An HTML response with `status`.
pub fn page(status: StatusCode, name: &str, ctx: &Context) -> HttpResponse {
    match render(name, ctx) {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
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
