//! Outgoing e-mail, the channel only: where a message goes (`VIGIL_SMTP_URL`: an SMTP server
//! through lettre, or the log) and what it looks like (plain text and HTML from
//! `templates/mail/`). No database and no HTTP: `flow::mail` queues messages in the outbox in
//! the transaction of what caused them and drains the outbox in the background, so a sign-in
//! never waits for a mail server.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tera::{Context, Tera};

use crate::config::{MailSettings, MailTransport};

macro_rules! mail_templates {
    ($($name:literal),*) => {
        &[$(
            (concat!($name, ".txt"), include_str!(concat!("../../templates/mail/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../../templates/mail/", $name, ".html"))),
        )*]
    };
}
/// The messages vigil sends, each `templates/mail/<name>.txt` and `.html`.
const SOURCES: &[(&str, &str)] = mail_templates!(
    "verify_email",
    "reset_password",
    "notice",
    "invite",
    "admin_digest"
);

/// A rendered message, as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// The server refused it for good (a 5xx reply, an address it will never take): retrying
    /// cannot help.
    pub permanent: bool,
    pub message: String,
}

enum Channel {
    Off,
    Log,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The configured channel and the message templates.
pub struct Mailer {
    channel: Channel,
    from: Mailbox,
    tera: Tera,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, String> {
        let channel = match &settings.transport {
            MailTransport::Off => Channel::Off,
            MailTransport::Log => Channel::Log,
            MailTransport::Smtp(url) => Channel::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("VIGIL_SMTP_URL: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(20)))
                    .build(),
            ),
        };
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("VIGIL_MAIL_FROM: {e}"))?;
        let mut tera = Tera::default();
        tera.add_raw_templates(SOURCES.iter().copied())
            .map_err(|e| format!("mail templates: {e}"))?;
        Ok(Mailer {
            channel,
            from,
            tera,
        })
    }

    /// Whether messages go anywhere (features that need e-mail are off without it).
    pub fn enabled(&self) -> bool {
        !matches!(self.channel, Channel::Off)
    }

    /// Render `name` (a message in `templates/mail/`) with `subject` and the values in `ctx`.
    pub fn render(
        &self,
        name: &str,
        subject: &str,
        ctx: &serde_json::Value,
    ) -> Result<Rendered, String> {
        let mut c = Context::from_value(ctx.clone()).map_err(|e| e.to_string())?;
        c.insert("subject", subject);
        let text = self
            .tera
            .render(&format!("{name}.txt"), &c)
            .map_err(|e| format!("{name}.txt: {e}"))?;
        let html = self
            .tera
            .render(&format!("{name}.html"), &c)
            .map_err(|e| format!("{name}.html: {e}"))?;
        Ok(Rendered {
            subject: subject.to_owned(),
            text,
            html,
        })
    }

    /// Send one message now.
    pub async fn send(&self, to: &str, m: &Rendered) -> Result<(), SendError> {
        let permanent = |message: String| SendError {
            permanent: true,
            message,
        };
        let to_box = to
            .parse::<Mailbox>()
            .map_err(|e| permanent(format!("the address {to:?}: {e}")))?;
        match &self.channel {
            Channel::Off => Err(permanent(
                "e-mail is off (VIGIL_SMTP_URL is not set)".into(),
            )),
            Channel::Log => {
                tracing::info!(
                    to = %to_box,
                    subject = %m.subject,
                    body = %m.text,
                    "e-mail (VIGIL_SMTP_URL=log: written here instead of sent)"
                );
                Ok(())
            }
            Channel::Smtp(transport) => {
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(to_box)
                    .subject(m.subject.clone())
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_PLAIN)
                                    .body(m.text.clone()),
                            )
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(m.html.clone()),
                            ),
                    )
                    .map_err(|e| permanent(format!("building the message: {e}")))?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError {
                        permanent: e.is_permanent(),
                        message: e.to_string(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer::new(&MailSettings {
            transport: MailTransport::Log,
            from: "vigil@id.example.com".into(),
        })
        .unwrap()
    }

    #[test]
    fn every_template_renders_and_html_is_escaped() {
        let m = mailer();
        for name in SOURCES.iter().filter_map(|(f, _)| f.strip_suffix(".txt")) {
            let r = m
                .render(
                    name,
                    "Subject",
                    &serde_json::json!({
                        "name": "<b>Ann</b>", "username": "<b>Ann</b>", "link": "<b>Ann</b>",
                        "hours": 24, "minutes": 15, "days": 7, "ip": "<b>Ann</b>",
                        "when": "<b>Ann</b>", "kind": "new_sign_in", "factor": "<b>Ann</b>",
                        "place": "<b>Ann</b>", "device": "<b>Ann</b>", "report": "<b>Ann</b>",
                        "account": "<b>Ann</b>", "since": "<b>Ann</b>", "blocked": 1,
                        "reported": 0, "entered_risk": 0, "open_reviews": 1,
                        "latest_blocked": [], "accounts": [], "review": "<b>Ann</b>",
                    }),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.text.contains("<b>Ann</b>"), "plain text is not escaped");
            assert!(r.html.contains("&lt;b&gt;Ann&lt;&#x2F;b&gt;"), "{}", r.html);
            assert!(!r.html.contains("<b>Ann"), "HTML is escaped");
        }
    }

    #[tokio::test]
    async fn a_bad_address_is_a_permanent_failure() {
        let e = mailer()
            .send(
                "not an address",
                &mailer()
                    .render(
                        "verify_email",
                        "s",
                        &serde_json::json!({"name": "a", "link": "l", "hours": 24}),
                    )
                    .unwrap(),
            )
            .await
            .unwrap_err();
        assert!(e.permanent);
    }
}
