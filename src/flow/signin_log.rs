//! The admin's view of the sign-in log: filters typed into a form turned into a checked
//! `LogFilter`, rows made readable (username, place, device, reasons), a detail view with the
//! per-signal contributions, and the CSV / JSON-lines export rows. Plain data out; the web
//! layer renders and streams it.

use std::collections::HashMap;

use serde::Serialize;

use super::{FlowError, Services};
use crate::risk::{Assessment, SignInFeatures};
use crate::store::reviews::ReviewRow;
use crate::store::signin_log::{self, Cursor, LogFilter};
use crate::store::signins::SigninRow;
use crate::store::{self, users};

/// Rows per page of the log.
pub const PAGE_SIZE: i64 = 50;
/// Rows an export holds at most (newest first), so one request cannot read the whole table.
pub const EXPORT_MAX_ROWS: i64 = 100_000;
/// Rows an export reads per database round trip.
pub const EXPORT_BATCH: i64 = 1_000;

/// How a sign-in-log row proved who it was (its `method` column).
pub const METHODS: [&str; 7] = [
    "password",
    "passkey",
    "totp",
    "recovery_code",
    "webauthn",
    "sso",
    // A password reset through a link mailed to the account's address.
    "email_link",
];
pub const DECISIONS: [&str; 3] = ["allow", "step_up", "block"];
pub const LEVELS: [&str; 3] = ["low", "medium", "high"];
pub const OUTCOMES: [&str; 8] = [
    "success",
    "failure",
    "step_up_required",
    "step_up_passed",
    "step_up_failed",
    "blocked",
    // A signed-in user refused by an application's access rule (it admits only its roles).
    "access_denied",
    // A new password was chosen through a mailed link (no session is created).
    "password_reset",
];
pub const ACCOUNT_RISKS: [&str; 3] = ["none", "at_risk", "compromised"];
/// The contract signal names (ARCHITECTURE.md §3).
pub const REASONS: [&str; 9] = [
    "new_device",
    "new_country",
    "new_city",
    "new_asn",
    "new_user_agent",
    "unusual_hour",
    "impossible_travel",
    "anonymous_ip",
    "failed_attempts",
];

/// The filter form as typed (all text, so that nonsense is a message, not an extractor error).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RawFilter {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub reason: String,
    /// YYYY-MM-DD (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// YYYY-MM-DD (UTC), inclusive.
    #[serde(default)]
    pub to: String,
    /// The account's current risk state.
    #[serde(default)]
    pub account_risk: String,
}

impl RawFilter {
    /// The non-empty fields as a query string, for pagination and export links.
    pub fn query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("user", self.user.trim()),
            ("decision", self.decision.trim()),
            ("level", self.level.trim()),
            ("outcome", self.outcome.trim()),
            ("reason", self.reason.trim()),
            ("from", self.from.trim()),
            ("to", self.to.trim()),
            ("account_risk", self.account_risk.trim()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn one_of(value: &str, allowed: &[&str], what: &str) -> Result<Option<String>, FlowError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if allowed.contains(&v) {
        Ok(Some(v.to_owned()))
    } else {
        Err(FlowError::Invalid(format!(
            "Unknown {what} `{}`. Choose one of: {}.",
            v.chars().take(40).collect::<String>(),
            allowed.join(", ")
        )))
    }
}

/// Midnight UTC of a YYYY-MM-DD date, in µs.
fn day_start(value: &str, what: &str) -> Result<Option<i64>, FlowError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc().timestamp_micros()))
        .ok_or_else(|| FlowError::Invalid(format!("The {what} date must look like 2026-01-31.")))
}

/// Check the form and resolve the username. An unknown username is not an error: the log
/// simply has nothing for it (`user_id` then matches no row).
pub async fn parse(svc: &Services, raw: &RawFilter) -> Result<LogFilter, FlowError> {
    let from = day_start(&raw.from, "from")?;
    let until = day_start(&raw.to, "to")?.map(|t| t + 86_400_000_000);
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            return Err(FlowError::Invalid(
                "The from date must not be after the to date.".into(),
            ));
        }
    }
    let user = raw.user.trim().to_owned();
    let user_id = if user.is_empty() {
        None
    } else {
        let name = user.to_lowercase();
        let found = svc
            .db
            .run(move |c| users::find_by_username(c, &name))
            .await?;
        // No such user: a filter that matches nothing, rather than ignoring it.
        Some(
            found
                .map(|u| u.id)
                .unwrap_or_else(|| format!("unknown:{user}")),
        )
    };
    Ok(LogFilter {
        user_id,
        decision: one_of(&raw.decision, &DECISIONS, "decision")?,
        level: one_of(&raw.level, &LEVELS, "level")?,
        outcome: one_of(&raw.outcome, &OUTCOMES, "outcome")?,
        reason: one_of(&raw.reason, &REASONS, "reason")?,
        from,
        until,
        account_risk: one_of(&raw.account_risk, &ACCOUNT_RISKS, "account risk")?,
    })
}

/// `at.id` of a row, for `?after=`.
pub fn cursor_text(c: &Cursor) -> String {
    format!("{}.{}", c.at, c.id)
}

pub fn parse_cursor(s: &str) -> Result<Option<Cursor>, FlowError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad =
        || FlowError::Invalid("That page link is not valid; start from the first page.".into());
    let (at, id) = s.split_once('.').ok_or_else(bad)?;
    let at = at.parse().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    Ok(Some(Cursor {
        at,
        id: id.to_owned(),
    }))
}

/// One row of the log, ready to show or export.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub at_micros: i64,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub at: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub method: String,
    pub outcome: String,
    /// None once retention has dropped it.
    pub ip: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub asn_org: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub client_id: Option<String>,
    pub score: Option<i64>,
    pub level: Option<String>,
    pub decision: Option<String>,
    pub reasons: Vec<String>,
    pub rule: Option<String>,
    pub model: Option<String>,
    pub geoip_build: Option<i64>,
    pub candidate_decision: Option<String>,
    pub acr: Option<String>,
}

/// Format µs since the epoch (UTC) for tables and exports.
pub fn when(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

/// A GeoIP build epoch (seconds) as the date the database was built.
pub fn build_date(epoch_secs: i64) -> String {
    chrono::DateTime::from_timestamp(epoch_secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| epoch_secs.to_string())
}

/// The device cookie is close to a credential for the risk engine (a known one lowers the
/// score), so views and exports say only whether there was one.
fn redact_features(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(c) = v.pointer_mut("/device/cookie_id") {
        if c.is_string() {
            *c = serde_json::Value::String("(present)".into());
        }
    }
    v
}

fn features_of(r: &SigninRow) -> Option<SignInFeatures> {
    r.features
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

fn assessment_of(r: &SigninRow) -> Option<Assessment> {
    r.assessment
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

impl Entry {
    pub fn from_row(r: &SigninRow, names: &HashMap<String, String>) -> Entry {
        let f = features_of(r);
        let a = assessment_of(r);
        let reasons = r
            .reasons
            .as_deref()
            .and_then(|j| serde_json::from_str::<Vec<String>>(j).ok())
            .unwrap_or_default();
        Entry {
            id: r.id.clone(),
            at_micros: r.at,
            at: when(r.at),
            user_id: r.user_id.clone(),
            username: r.user_id.as_ref().and_then(|u| names.get(u).cloned()),
            method: r.method.clone(),
            outcome: r.outcome.clone(),
            ip: r.ip.clone(),
            country: f.as_ref().and_then(|f| f.geo.country.clone()),
            city: f.as_ref().and_then(|f| f.geo.city.clone()),
            asn: f.as_ref().and_then(|f| f.geo.asn),
            asn_org: f.as_ref().and_then(|f| f.geo.asn_org.clone()),
            browser: f.as_ref().map(|f| f.ua.browser_family.clone()),
            os: f.as_ref().map(|f| f.ua.os_family.clone()),
            device_type: f.as_ref().map(|f| f.ua.device_type.as_str().to_owned()),
            user_agent: r.user_agent.clone(),
            client_id: r.client_id.clone(),
            score: r.score,
            level: r.level.clone(),
            decision: r.decision.clone(),
            reasons,
            rule: a.and_then(|a| a.rule),
            model: r.model.clone(),
            geoip_build: r.geoip_build,
            candidate_decision: r.candidate_decision.clone(),
            acr: r.acr.clone(),
        }
    }
}

fn entries(rows: &[SigninRow], names: &HashMap<String, String>) -> Vec<Entry> {
    rows.iter().map(|r| Entry::from_row(r, names)).collect()
}

/// A page of the log and the cursor of the next one.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Option<String>,
}

pub async fn page(
    svc: &Services,
    filter: &LogFilter,
    after: Option<Cursor>,
) -> Result<Page, FlowError> {
    let f = filter.clone();
    let (mut rows, names) = svc
        .db
        .run(move |c| {
            let rows = signin_log::page(c, &f, after.as_ref(), PAGE_SIZE + 1)?;
            let ids: Vec<String> = rows.iter().filter_map(|r| r.user_id.clone()).collect();
            Ok((rows, signin_log::usernames(c, &ids)?))
        })
        .await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(usize::try_from(PAGE_SIZE).unwrap_or(50));
    let next = more.then(|| rows.last()).flatten().map(|r| {
        cursor_text(&Cursor {
            at: r.at,
            id: r.id.clone(),
        })
    });
    Ok(Page {
        entries: entries(&rows, &names),
        next,
    })
}

/// One batch of an export: entries plus the full features and assessment (for JSON lines),
/// and where the next batch starts (None when the log is exhausted).
pub struct Batch {
    pub rows: Vec<(Entry, Option<serde_json::Value>, Option<serde_json::Value>)>,
    pub next: Option<Cursor>,
}

pub async fn export_batch(
    svc: &Services,
    filter: &LogFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Batch, FlowError> {
    let f = filter.clone();
    let (rows, names) = svc
        .db
        .run(move |c| {
            let rows = signin_log::page(c, &f, after.as_ref(), limit)?;
            let ids: Vec<String> = rows.iter().filter_map(|r| r.user_id.clone()).collect();
            Ok((rows, signin_log::usernames(c, &ids)?))
        })
        .await?;
    let next = (rows.len() as i64 >= limit)
        .then(|| rows.last())
        .flatten()
        .map(|r| Cursor {
            at: r.at,
            id: r.id.clone(),
        });
    let json = |s: &Option<String>| {
        s.as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
    };
    Ok(Batch {
        rows: rows
            .iter()
            .map(|r| {
                (
                    Entry::from_row(r, &names),
                    json(&r.features).map(redact_features),
                    json(&r.assessment),
                )
            })
            .collect(),
        next,
    })
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 24] = [
    "id",
    "at",
    "user_id",
    "username",
    "method",
    "outcome",
    "ip",
    "country",
    "city",
    "asn",
    "asn_org",
    "browser",
    "os",
    "device_type",
    "user_agent",
    "client_id",
    "score",
    "level",
    "decision",
    "reasons",
    "rule",
    "model",
    "geoip_build",
    "candidate_decision",
];

/// Free text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's
/// advice for CSV injection); vigil's own values never start with these characters.
pub(crate) fn cell(s: Option<&str>) -> String {
    match s {
        Some(v) if v.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{v}"),
        Some(v) => v.to_owned(),
        None => String::new(),
    }
}

/// One CSV record, matching [`CSV_HEADER`]. Quoting is the `csv` crate's.
pub fn csv_record(e: &Entry) -> [String; 24] {
    let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    [
        e.id.clone(),
        chrono::DateTime::from_timestamp_micros(e.at_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default(),
        cell(e.user_id.as_deref()),
        cell(e.username.as_deref()),
        cell(Some(&e.method)),
        cell(Some(&e.outcome)),
        cell(e.ip.as_deref()),
        cell(e.country.as_deref()),
        cell(e.city.as_deref()),
        e.asn.map(|a| a.to_string()).unwrap_or_default(),
        cell(e.asn_org.as_deref()),
        cell(e.browser.as_deref()),
        cell(e.os.as_deref()),
        cell(e.device_type.as_deref()),
        cell(e.user_agent.as_deref()),
        cell(e.client_id.as_deref()),
        n(e.score),
        cell(e.level.as_deref()),
        cell(e.decision.as_deref()),
        e.reasons.join(" "),
        cell(e.rule.as_deref()),
        cell(e.model.as_deref()),
        n(e.geoip_build),
        cell(e.candidate_decision.as_deref()),
    ]
}

/// One JSON line: the entry's fields plus the full features and assessment.
pub fn json_line(
    e: &Entry,
    features: Option<serde_json::Value>,
    assessment: Option<serde_json::Value>,
) -> String {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "at".into(),
            serde_json::Value::String(
                chrono::DateTime::from_timestamp_micros(e.at_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    .unwrap_or_default(),
            ),
        );
        o.insert("features".into(), features.unwrap_or_default());
        o.insert("assessment".into(), assessment.unwrap_or_default());
    }
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// One contribution, for the detail view.
#[derive(Debug, Clone, Serialize)]
pub struct ContributionRow {
    pub feature: String,
    pub value: String,
    pub seen_for_user: u32,
    pub seen_globally: u64,
    pub llr: f64,
    /// `llr` signed, two decimals, as the table shows it.
    pub contribution: String,
    pub signal: Option<String>,
}

/// Everything known about one sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub entry: Entry,
    pub contributions: Vec<ContributionRow>,
    pub raw: Option<f64>,
    pub geoip_build_date: Option<String>,
    pub features_json: Option<String>,
    pub session_id: Option<String>,
    pub amr: Option<String>,
    pub reviews: Vec<ReviewRow>,
}

pub async fn detail(svc: &Services, id: &str) -> Result<Detail, FlowError> {
    let id = id.to_owned();
    let found = svc
        .db
        .run(move |c| {
            let Some(row) = store::signins::find(c, &id)? else {
                return Ok(None);
            };
            let names = signin_log::usernames(c, &row.user_id.iter().cloned().collect::<Vec<_>>())?;
            let reviews = store::reviews::for_signin(c, &row.id)?;
            Ok(Some((row, names, reviews)))
        })
        .await?;
    let Some((row, names, reviews)) = found else {
        return Err(FlowError::NotFound("sign-in".into()));
    };
    let a = assessment_of(&row);
    let mut contributions: Vec<ContributionRow> = a
        .as_ref()
        .map(|a| {
            a.contributions
                .iter()
                .map(|c| ContributionRow {
                    feature: c.feature.clone(),
                    value: c.value.clone(),
                    seen_for_user: c.seen_for_user,
                    seen_globally: c.seen_globally,
                    llr: c.llr,
                    contribution: format!("{:+.2}", c.llr),
                    signal: c.signal.filter(|_| c.llr > 0.0).map(|s| s.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    contributions.sort_by(|x, y| y.llr.total_cmp(&x.llr));
    let features_json = row
        .features
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|v| serde_json::to_string_pretty(&redact_features(v)).ok());
    Ok(Detail {
        entry: Entry::from_row(&row, &names),
        contributions,
        raw: a.map(|a| (a.raw * 100.0).round() / 100.0),
        geoip_build_date: row.geoip_build.map(build_date),
        features_json,
        session_id: row.session_id.clone(),
        amr: row.amr.clone(),
        reviews,
    })
}
