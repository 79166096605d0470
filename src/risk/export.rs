//! vigil's own sign-in log as a labelled training set, in the column format `risk replay`,
//! `risk compare` and `risk fit` read (`replay::HEADER`). The labels come from vigil's own
//! evidence, never from the score being trained:
//!
//! | the sign-in | label |
//! |---|---|
//! | signed in or passed its step-up, no attack verdict | legitimate (`Login Successful` True) |
//! | judged an attack by an admin, or reported by its user | attack (`Is Account Takeover` True) |
//! | blocked, then judged legitimate by an admin | legitimate |
//! | a wrong password | a failed attempt (`Login Successful` False: failure counts) |
//! | blocked or failed its step-up, and nobody judged it | left out (unlabelled) |
//!
//! An attack verdict on the step-up that was asked (`step_up_required`, where a failed
//! second factor is reviewed) marks that attempt an attack: the password was right. Pure.

use std::io::Write;

use super::replay::HEADER;
use super::SignInFeatures;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Legitimate,
    Attack,
    FailedAttempt,
}

/// The label of a logged sign-in, from its outcome and the verdicts given to it; None when
/// vigil has no evidence either way (or the row is an intermediate step of another sign-in).
pub fn label(outcome: &str, verdicts: &[&str]) -> Option<Label> {
    let attack = verdicts.contains(&"attack");
    let legitimate = verdicts.contains(&"legitimate");
    match outcome {
        _ if attack && outcome != "failure" => Some(Label::Attack),
        "success" | "step_up_passed" => Some(Label::Legitimate),
        "blocked" | "step_up_failed" if legitimate => Some(Label::Legitimate),
        "failure" => Some(Label::FailedAttempt),
        _ => None,
    }
}

/// Write the header line.
pub fn header(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "{}", HEADER.join(","))
}

fn quoted(s: &str) -> String {
    // RFC 4180: quote when needed, double the quotes; no line breaks survive in a field.
    let s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One row: the sign-in `id`, its user (vigil's opaque user id: no names leave), its features
/// (country, city, ASN, address when still kept) and the raw User-Agent.
pub fn row(
    w: &mut dyn Write,
    id: &str,
    user_id: &str,
    f: &SignInFeatures,
    user_agent: &str,
    label: Label,
) -> std::io::Result<()> {
    let when = chrono::DateTime::from_timestamp_micros(f.at.micros())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let t = |b: bool| if b { "True" } else { "False" };
    let success = label != Label::FailedAttempt;
    let fields = [
        quoted(id),
        when,
        quoted(user_id),
        String::new(),
        f.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        quoted(f.geo.country.as_deref().unwrap_or("-")),
        "-".to_owned(),
        quoted(f.geo.city.as_deref().unwrap_or("-")),
        f.geo.asn.map(|a| a.to_string()).unwrap_or_default(),
        quoted(user_agent),
        quoted(&format!(
            "{} {}",
            f.ua.browser_family,
            f.ua.browser_major.as_deref().unwrap_or("")
        )),
        quoted(&f.ua.os_family),
        quoted(f.ua.device_type.as_str()),
        t(success).to_owned(),
        t(false).to_owned(),
        t(label == Label::Attack).to_owned(),
    ];
    writeln!(w, "{}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::risk::replay::parse_row;

    #[test]
    fn labels_come_from_outcomes_and_verdicts() {
        assert_eq!(label("success", &[]), Some(Label::Legitimate));
        assert_eq!(label("step_up_passed", &[]), Some(Label::Legitimate));
        assert_eq!(label("success", &["attack"]), Some(Label::Attack));
        assert_eq!(label("step_up_required", &["attack"]), Some(Label::Attack));
        assert_eq!(
            label("step_up_required", &[]),
            None,
            "its ending row counts"
        );
        assert_eq!(label("blocked", &[]), None, "nobody judged it");
        assert_eq!(label("blocked", &["legitimate"]), Some(Label::Legitimate));
        assert_eq!(label("blocked", &["attack"]), Some(Label::Attack));
        assert_eq!(label("step_up_failed", &[]), None);
        assert_eq!(label("failure", &[]), Some(Label::FailedAttempt));
    }

    #[test]
    fn a_row_reads_back_with_the_replay_parser() {
        let mut f = SignInFeatures::at(Timestamp::from_secs(1_790_000_000));
        f.ip = Some(
            "203.0.113.9"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        f.geo.country = Some("DE".into());
        f.geo.city = Some("Berlin, Mitte".into());
        f.geo.asn = Some(3320);
        let mut out = Vec::new();
        row(
            &mut out,
            "s1",
            "u1",
            &f,
            "Mozilla/5.0 (\"x\")",
            Label::Attack,
        )
        .unwrap_or(());
        let line = String::from_utf8(out).unwrap_or_default();
        let r = parse_row(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(r.user, "u1");
        assert_eq!(r.at, f.at);
        assert_eq!(r.country.as_deref(), Some("DE"));
        assert_eq!(r.city.as_deref(), Some("Berlin, Mitte"));
        assert_eq!(r.asn, Some(3320));
        assert_eq!(r.user_agent, "Mozilla/5.0 (\"x\")");
        assert!(r.success && r.takeover && !r.attack_ip);
    }
}
