//! Words for an assessment: one line per contribution for admins (the sign-in log, the review
//! queue), and one short, non-revealing sentence for the user on the step-up page. Owns no
//! scoring and never shows a user their score, values or the model.

use super::{Assessment, Contribution};

/// One line per contribution, most suspicious first, e.g.
/// `+3.04  country = SE  (seen 0× for this user, 12× globally) [new_country]`.
pub fn explain(a: &Assessment) -> Vec<String> {
    let mut cs: Vec<&Contribution> = a.contributions.iter().collect();
    cs.sort_by(|x, y| y.llr.total_cmp(&x.llr));
    cs.into_iter()
        .map(|c| {
            let signal = c
                .signal
                .filter(|_| c.llr > 0.0)
                .map_or_else(String::new, |s| format!(" [{s}]"));
            format!(
                "{:+.2}  {} = {}  (seen {}× for this user, {}× globally){signal}",
                c.llr, c.feature, c.value, c.seen_for_user, c.seen_globally
            )
        })
        .collect()
}

/// The reason shown on the step-up page: the strongest reason's sentence, or a neutral one.
pub fn user_message(a: &Assessment) -> &'static str {
    a.reasons
        .first()
        .map_or("we need to confirm it's you", |s| s.user_message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::{Level, Signal};

    #[test]
    fn lines_and_user_message() {
        let c = |feature: &str, llr, signal| Contribution {
            feature: feature.to_owned(),
            value: "v".to_owned(),
            seen_for_user: 0,
            seen_globally: 12,
            llr,
            signal,
        };
        let mut a = Assessment {
            score: 50,
            level: Level::Medium,
            reasons: vec![Signal::NewCountry],
            contributions: vec![
                c("os", -0.5, Some(Signal::NewUserAgent)),
                c("country", 3.04, Some(Signal::NewCountry)),
            ],
            rule: None,
            raw: 2.54,
            model: "x".to_owned(),
        };
        let lines = explain(&a);
        assert_eq!(
            lines[0],
            "+3.04  country = v  (seen 0× for this user, 12× globally) [new_country]"
        );
        assert_eq!(
            lines[1],
            "-0.50  os = v  (seen 0× for this user, 12× globally)"
        );
        assert_eq!(user_message(&a), "this sign-in comes from a new location");
        a.reasons.clear();
        assert_eq!(user_message(&a), "we need to confirm it's you");
    }
}
