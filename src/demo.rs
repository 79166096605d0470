//! `vigil demo`'s story, so the console shows what vigil is for on first start: three weeks of
//! ordinary sign-ins for a handful of people in several countries (addresses the shipped GeoIP
//! test database knows), imported and scored as `vigil risk import` would; then three events
//! through the real flows — an impossible-travel sign-in that steps up, a sign-in from a
//! deny-listed address that is blocked and waits in the review queue, and a "this wasn't me"
//! report. Seeded once per database (a marker row), after the demo accounts.

use std::io::Write as _;

use secrecy::SecretString;

use crate::clock::Timestamp;
use crate::flow::accounts::{self, Actor, NewAccount};
use crate::flow::login::{self, Outcome, PasswordAttempt};
use crate::flow::{random_token, FlowError, RequestContext, Services};
use crate::risk::export::{self, Label};
use crate::risk::SignInFeatures;

const MARKER: &str = "demo_story";
/// The address the demo's deny list holds (in the test database's New York range).
pub const DENY_LISTED: &str = "203.0.113.200";
const DAYS: i64 = 21;

/// One person of the story: name, usual address, country, city, ASN, browser.
struct Person {
    username: &'static str,
    name: &'static str,
    ip: &'static str,
    country: &'static str,
    city: &'static str,
    asn: u32,
    ua: &'static str,
}

const PEOPLE: [Person; 5] = [
    Person {
        username: "demo",
        name: "Demo User",
        ip: "81.2.69.142",
        country: "GB",
        city: "London",
        asn: 64510,
        ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    },
    Person {
        username: "amira",
        name: "Amira Lindqvist",
        ip: "89.160.20.112",
        country: "SE",
        city: "Linköping",
        asn: 64511,
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    },
    Person {
        username: "bruno",
        name: "Bruno Keller",
        ip: "192.0.2.30",
        country: "DE",
        city: "Berlin",
        asn: 64496,
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    },
    Person {
        username: "chen",
        name: "Chen Wei",
        ip: "203.0.113.40",
        country: "US",
        city: "New York",
        asn: 64498,
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    },
    Person {
        username: "dana",
        name: "Dana Okafor",
        ip: "2.125.160.216",
        country: "GB",
        city: "Boxford",
        asn: 64509,
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    },
];

/// What the story seeded.
#[derive(Debug, Clone, Default)]
pub struct Story {
    pub history: u64,
    /// The live events, one line each, for the demo's banner.
    pub events: Vec<String>,
}

/// The history in the replay format: each person signs in on weekdays (twice, at hours of
/// their own), with a mistyped password now and then. Deterministic: the same story each time.
fn history(now: Timestamp) -> Vec<u8> {
    let mut rows: Vec<(i64, &Person, bool)> = Vec::new();
    let day = 86_400_i64;
    let start = now.minus_secs(DAYS * day).micros() / (day * 1_000_000) * day;
    for d in 0..DAYS {
        let midnight = start + d * day;
        // 1970-01-01 was a Thursday: day 2 and 3 of each week (mod 7) are the weekend.
        if matches!((midnight / day).rem_euclid(7), 2 | 3) {
            continue;
        }
        for (k, p) in PEOPLE.iter().enumerate() {
            let k = k as i64;
            let morning = midnight + (7 + k) * 3600 + (d * 7 + k * 13) % 50 * 60;
            let afternoon = midnight + (13 + k) * 3600 + (d * 11 + k * 5) % 50 * 60;
            if (d + k) % 6 == 0 {
                rows.push((morning - 40, p, false));
            }
            rows.push((morning, p, true));
            rows.push((afternoon, p, true));
        }
    }
    rows.retain(|r| r.0 < now.minus_secs(2 * 3600).micros() / 1_000_000);
    rows.sort_by_key(|r| r.0);
    let mut out = Vec::new();
    let _ = export::header(&mut out);
    for (i, (at, p, ok)) in rows.iter().enumerate() {
        let mut f = SignInFeatures::at(Timestamp(at * 1_000_000));
        f.ip = p.ip.parse().ok();
        f.geo.country = Some(p.country.into());
        f.geo.city = Some(p.city.into());
        f.geo.asn = Some(p.asn);
        let label = if *ok {
            Label::Legitimate
        } else {
            Label::FailedAttempt
        };
        let _ = export::row(&mut out, &i.to_string(), p.username, &f, p.ua, label);
    }
    let _ = out.flush();
    out
}

fn ctx(ip: &str, ua: &str) -> RequestContext {
    RequestContext {
        ip: ip.parse().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        user_agent: Some(ua.to_owned()),
        device_id: Some(random_token()),
        accept_language: None,
        hints: None,
    }
}

async fn sign_in(
    svc: &Services,
    now: Timestamp,
    username: &str,
    password: &str,
    c: RequestContext,
) -> Result<Outcome, FlowError> {
    login::password(
        svc,
        now,
        PasswordAttempt {
            username: username.into(),
            password: SecretString::from(password.to_owned()),
            ctx: c,
            previous_session: None,
            tx: None,
            want_mfa: false,
        },
    )
    .await
}

fn said(o: &Outcome) -> &'static str {
    match o {
        Outcome::SignedIn { .. } => "signed in",
        Outcome::SecondFactor { .. } => "asked for a second factor",
        Outcome::Blocked { .. } => "blocked",
        Outcome::Refused => "refused",
        Outcome::Throttled { .. } => "throttled",
        Outcome::NotYet { .. } => "not ready",
    }
}

/// Seed the story once. `password` is every story account's password (the demo user's).
pub async fn seed(svc: &Services, password: &str) -> Result<Option<Story>, FlowError> {
    let now = svc.clock.now();
    if svc
        .db
        .run(|c| crate::store::risk::state(c, MARKER))
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let actor = Actor::new("demo");
    let existing: Vec<String> = accounts::list(svc)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    for p in &PEOPLE {
        if !existing.iter().any(|u| u == p.username) {
            accounts::create(
                svc,
                &actor,
                now,
                NewAccount {
                    username: p.username.into(),
                    email: format!("{}@example.com", p.username),
                    name: p.name.into(),
                    is_admin: false,
                    password: SecretString::from(password.to_owned()),
                },
            )
            .await?;
        }
    }
    let imported = crate::flow::history::import_log(
        svc,
        &actor,
        now,
        std::io::Cursor::new(history(now)),
        false,
        0,
    )
    .await?;
    let mut story = Story {
        history: imported.signins + imported.failures,
        events: Vec::new(),
    };

    // Amira, who has an authenticator app, signs in from Sydney an hour after Linköping.
    let amira = accounts::find(svc, "amira").await?;
    // An hour ago from Linköping, through the real flow (the imported history carries no
    // coordinates; this sign-in's GeoIP lookup does), then Sydney now.
    let hour_ago = now.minus_secs(3600);
    let home = ctx(PEOPLE[1].ip, PEOPLE[1].ua);
    let _ = sign_in(svc, hour_ago, "amira", password, home).await?;
    crate::flow::factors::totp_provision(svc, now, &amira).await?;
    let o = sign_in(
        svc,
        now,
        "amira",
        password,
        ctx("198.51.100.7", PEOPLE[1].ua),
    )
    .await?;
    story.events.push(format!(
        "amira from Sydney an hour after Linköping: {}",
        said(&o)
    ));
    // Bruno's password, tried from a deny-listed address.
    let o = sign_in(svc, now, "bruno", password, ctx(DENY_LISTED, PEOPLE[2].ua)).await?;
    story.events.push(format!(
        "bruno from a deny-listed address ({DENY_LISTED}): {} — see the review queue",
        said(&o)
    ));
    // Dana says her latest sign-in was not her.
    let dana = accounts::find(svc, "dana").await?;
    let uid = dana.id.clone();
    let latest = svc
        .db
        .run(move |c| crate::store::signins::latest_success(c, &uid))
        .await?;
    if let Some(row) = latest {
        let here = std::net::IpAddr::from([127, 0, 0, 1]);
        crate::flow::review::report(svc, now, &dana.id, &row.id, here).await?;
        story
            .events
            .push("dana reported her latest sign-in: \"this wasn't me\" — her account is compromised until she resets it".into());
    }
    svc.db
        .run(move |c| crate::store::risk::put_state(c, MARKER, "{}", now.micros()))
        .await?;
    Ok(Some(story))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_history_parses_in_time_order() {
        let now = crate::clock::Timestamp(1_767_225_600_000_000);
        let csv = super::history(now);
        let rows: Vec<_> = crate::risk::replay::Rows::new(std::io::Cursor::new(csv)).collect();
        assert!(rows.len() > 100, "{}", rows.len());
        assert!(rows.iter().all(Result::is_ok));
    }
}
