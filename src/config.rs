//! Typed settings: defaults <- `vigil.toml` (path from `VIGIL_CONFIG`) <- `VIGIL_*` environment.
//!
//! Every key is parsed into a type that can only hold a valid value, so the rest of vigil never
//! re-checks configuration. A bad value stops start-up with one line naming the key (exit 2).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use url::Url;

/// One problem with one key, phrased for an operator.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {source_name}: {problem}")]
pub struct ConfigError {
    pub source_name: String,
    pub problem: String,
}

impl ConfigError {
    fn new(source_name: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            source_name: source_name.into(),
            problem: problem.into(),
        }
    }
}

/// `VIGIL_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; colours only when the output is a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, message, fields).
    Json,
}

/// Where the database lives; only the two supported schemes can be represented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://vigil.db".into());
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Url::parse(s).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    /// The URL with any password removed, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => match Url::parse(u) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    url.to_string()
                }
                Err(_) => "postgres://…".into(),
            },
        }
    }
}

/// The issuer URL: absolute http(s), no query or fragment, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(s: &str) -> Result<Self, String> {
        // A URL parser drops surrounding spaces and removes tabs and newlines anywhere, but the
        // issuer is compared as a string (`iss`, discovery): such characters would be kept in
        // it and break every client.
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let url = Url::parse(s).map_err(|e| format!("not an absolute URL ({e})"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err("must be an http:// or https:// URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        if url.host_str().is_none() {
            return Err("must have a host".into());
        }
        Ok(Issuer(s.trim_end_matches('/').to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_https(&self) -> bool {
        // As the URL parser reads the scheme: `HTTPS://…` and `https:host` are https too
        // (secure cookies, HSTS), though they do not start with `https://`.
        Url::parse(&self.0).is_ok_and(|u| u.scheme() == "https")
    }
    /// The host name, used as the WebAuthn relying-party id.
    pub fn host(&self) -> String {
        Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Argon2id cost parameters (OWASP's recommendation by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Failed-attempt limits; counters live in the database so every node sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub account_failures: u32,
    pub ip_failures: u32,
    pub window_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// Everything vigil can be told, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub issuer: Issuer,
    pub database_url: DatabaseUrl,
    pub geoip_city: Option<PathBuf>,
    pub geoip_asn: Option<PathBuf>,
    pub trusted_proxies: Vec<IpNet>,
    pub ip_denylist: Option<PathBuf>,
    pub log: String,
    /// How log lines are written: readable text, or one JSON object per line for collectors.
    pub log_format: LogFormat,
    pub password: PasswordParams,
    /// Passwords allowed to wait for a hashing thread; `None`: 32 per core. Beyond it, 503.
    pub hash_queue: Option<usize>,
    pub session: SessionSettings,
    pub throttle: ThrottleSettings,
    /// Encrypts private signing keys and TOTP secrets at rest (base64 of 32 bytes).
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// What each risk level does (`low=allow,medium=step_up,…`); see README.
    pub risk_policy: crate::risk::Policy,
    /// A report-only candidate policy, evaluated and logged beside the enforced one.
    pub risk_candidate_policy: Option<crate::risk::Policy>,
    pub risk_threshold_medium: u8,
    pub risk_threshold_high: u8,
    pub risk_travel_speed_kmh: u32,
    /// Every this many days retraining fits a candidate model on the labelled sign-in log and
    /// puts it in shadow for a person to promote (`flow::models`); 0: never.
    pub risk_retrain_days: u32,
    /// Raw client IPs are cleared after this many days (0 keeps them); see README "Audit log".
    pub ip_retention_days: u32,
    /// Days the access-token issuance log keeps a line after its token expired; 0: forever.
    pub token_log_retention_days: u32,
    /// Seconds after a refresh token's rotation during which presenting it again is refused
    /// without revoking its family (two workers of one app refreshing at once). 0: any second
    /// use is reuse and revokes the family.
    pub refresh_reuse_interval_secs: i64,
    /// Seconds between SIGTERM and closing the listener, during which `/readyz` answers 503 so
    /// load balancers stop sending new requests first (0: close at once).
    pub shutdown_drain_secs: u64,
    /// A bearer token that opens `/metrics` to remote scrapers (`metrics_token`, or the first
    /// line of `metrics_token_file`); without one it answers only requests from the loopback
    /// interface.
    pub metrics_token: Option<String>,
    /// A second listener for the operator's endpoints only (`/metrics`, `/healthz`, `/readyz`),
    /// e.g. on an internal network: with it, `/metrics` is not served on `bind` at all.
    pub metrics_bind: Option<SocketAddr>,
    /// Where e-mail goes (`smtp_url`): off (unset), the log, or an SMTP server.
    pub mail: MailSettings,
    /// The Pwned Passwords range API (`pwned_passwords_url`, e.g.
    /// `https://api.pwnedpasswords.com/range/`); unset: no breached-password check.
    pub pwned_passwords_url: Option<String>,
    /// Who may create an account on `/register` (`registration`): nobody (default), holders of
    /// an admin's invitation, or anyone.
    pub registration: Registration,
    /// How often administrators get the high-risk digest by e-mail (`admin_digest_hours`);
    /// 0: never.
    pub admin_digest_hours: u32,
}

/// Self-registration (README "E-mail").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    #[default]
    Off,
    Invite,
    Open,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Off => "off",
            Registration::Invite => "invite",
            Registration::Open => "open",
        }
    }
}

/// Outgoing e-mail (README "E-mail").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// The `From:` address (`mail_from`); default `vigil@` and the issuer's host.
    pub from: String,
}

/// `smtp_url`: unset, `log`, or `smtp://` / `smtps://` with optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// No e-mail: the features that need it say so.
    Off,
    /// Each message is written to the log instead of sent (the demo's default).
    Log,
    /// An SMTP server, as lettre's connection URL (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://host`).
    Smtp(String),
}

impl std::fmt::Debug for MailTransport {
    /// Never the credentials: settings are logged and printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransport::Off => f.write_str("Off"),
            MailTransport::Log => f.write_str("Log"),
            MailTransport::Smtp(u) => {
                let shown = url::Url::parse(u)
                    .map(|mut v| {
                        if !v.username().is_empty() || v.password().is_some() {
                            let _ = v.set_username("…");
                            let _ = v.set_password(None);
                        }
                        v.to_string()
                    })
                    .unwrap_or_default();
                write!(f, "Smtp({shown:?})")
            }
        }
    }
}

impl MailTransport {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "" => Ok(MailTransport::Off),
            "log" => Ok(MailTransport::Log),
            _ => {
                let u = url::Url::parse(s)
                    .map_err(|_| "use `log`, or smtp://host[:port] or smtps://host[:port] (credentials as user:password@)".to_owned())?;
                if !matches!(u.scheme(), "smtp" | "smtps") || u.host_str().is_none_or(str::is_empty)
                {
                    return Err("use `log`, or smtp://host[:port] or smtps://host[:port]".into());
                }
                Ok(MailTransport::Smtp(s.to_owned()))
            }
        }
    }
}

/// The keys vigil understands, in the order the README's table lists them.
pub const KEYS: &[&str] = &[
    "bind",
    "issuer",
    "database_url",
    "geoip_city",
    "geoip_asn",
    "trusted_proxies",
    "ip_denylist",
    "log",
    "log_format",
    "master_key",
    "master_key_file",
    "argon2_memory_kib",
    "argon2_iterations",
    "argon2_parallelism",
    "hash_queue",
    "session_idle_minutes",
    "session_absolute_hours",
    "throttle_account_failures",
    "throttle_ip_failures",
    "throttle_window_minutes",
    "risk_policy",
    "risk_candidate_policy",
    "risk_threshold_medium",
    "risk_threshold_high",
    "risk_travel_speed_kmh",
    "risk_retrain_days",
    "ip_retention_days",
    "token_log_retention_days",
    "refresh_reuse_interval_secs",
    "shutdown_drain_secs",
    "metrics_token",
    "metrics_token_file",
    "metrics_bind",
    "smtp_url",
    "mail_from",
    "pwned_passwords_url",
    "registration",
    "admin_digest_hours",
];

const DEFAULT_GEOIP_CITY: &str = "geoip/vigil-test-city.mmdb";
const DEFAULT_GEOIP_ASN: &str = "geoip/vigil-test-asn.mmdb";

/// A raw value and where it came from, so errors can name the source.
struct Raw {
    value: String,
    source_name: String,
}

impl Settings {
    /// Load from the real process environment and the file it names.
    pub fn load() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::from_env_map(&env)
    }

    /// Load from an explicit environment (tests pass their own).
    pub fn from_env_map(env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();
        if let Some(path) = env.get("VIGIL_CONFIG") {
            read_file(Path::new(path), &mut raw)?;
        }
        for key in KEYS {
            let name = format!("VIGIL_{}", key.to_ascii_uppercase());
            if let Some(v) = env.get(&name) {
                raw.insert(
                    key,
                    Raw {
                        value: v.clone(),
                        source_name: name,
                    },
                );
            }
        }
        Self::from_raw(raw)
    }

    fn from_raw(mut raw: BTreeMap<&'static str, Raw>) -> Result<Self, ConfigError> {
        let mut take = |k: &'static str| raw.remove(k);
        let bind = match take("bind") {
            Some(r) => r.value.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    r.source_name,
                    format!(
                        "`{}` is not an address:port such as 127.0.0.1:8080",
                        r.value
                    ),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let issuer = match take("issuer") {
            Some(r) => Issuer::parse(&r.value)
                .map_err(|p| ConfigError::new(r.source_name, format!("`{}` {p}", r.value)))?,
            None => Issuer("http://localhost:8080".into()),
        };
        let database_url = match take("database_url") {
            Some(r) => {
                DatabaseUrl::parse(&r.value).map_err(|p| ConfigError::new(r.source_name, p))?
            }
            None => DatabaseUrl::Sqlite(PathBuf::from("vigil.db")),
        };
        let geoip_city = optional_file(take("geoip_city"), DEFAULT_GEOIP_CITY)?;
        let geoip_asn = optional_file(take("geoip_asn"), DEFAULT_GEOIP_ASN)?;
        let trusted_proxies = match take("trusted_proxies") {
            Some(r) => parse_cidrs(&r.value).map_err(|p| ConfigError::new(r.source_name, p))?,
            None => Vec::new(),
        };
        let ip_denylist = match take("ip_denylist") {
            Some(r) if r.value.is_empty() => None,
            Some(r) => Some(existing_file(r)?),
            None => None,
        };
        let log = take("log")
            .map(|r| log_filter(&r.value))
            .unwrap_or_else(|| "info".into());
        // Field filters (`[span{field=value}]`) compile their values into regular-expression
        // automata; a value like `.*..k.k;......` took minutes to build (found by fuzzing
        // config_toml), so a typo could hang the start. Targets and levels are what vigil's
        // logs need; anything longer than a page is a mistake too.
        if log.contains('{') || log.len() > 1_000 {
            return Err(ConfigError::new(
                "VIGIL_LOG",
                "use target=level directives (e.g. `info,vigil=debug`); field filters ({…}) and \
                 filters over 1,000 characters are not accepted",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            return Err(ConfigError::new(
                "VIGIL_LOG",
                format!("not a log filter ({e})"),
            ));
        }
        let log_format = match take("log_format") {
            None => LogFormat::Text,
            Some(r) => match r.value.trim() {
                "" | "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new(
                        r.source_name,
                        format!("`{other}` is not a log format; use text or json"),
                    ))
                }
            },
        };
        let master_key = take("master_key").map(|r| r.value);
        let metrics_bind = match take("metrics_bind").filter(|r| !r.value.is_empty()) {
            Some(r) => {
                let addr = r.value.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::new(
                        &r.source_name,
                        format!("`{}` is not an address:port such as 10.0.0.5:9100", r.value),
                    )
                })?;
                if addr == bind {
                    return Err(ConfigError::new(
                        r.source_name,
                        "must differ from the main listener (`bind`): it is a second one",
                    ));
                }
                Some(addr)
            }
            None => None,
        };
        let metrics_token = match (take("metrics_token"), take("metrics_token_file")) {
            (Some(t), Some(f)) => {
                return Err(ConfigError::new(
                    f.source_name,
                    format!("set either this or {}, not both", t.source_name),
                ))
            }
            (Some(t), None) => Some(t.value).filter(|t| !t.is_empty()),
            // A file, so the token can come from a secret (e.g. compose's /run/secrets) rather
            // than the environment, where `ps e` and crash dumps show it.
            (None, Some(f)) => {
                let token = std::fs::read_to_string(&f.value).map_err(|e| {
                    ConfigError::new(&f.source_name, format!("cannot read `{}` ({e})", f.value))
                })?;
                let token = token.trim();
                if token.is_empty() {
                    return Err(ConfigError::new(
                        f.source_name,
                        format!("`{}` is empty", f.value),
                    ));
                }
                Some(token.to_owned())
            }
            (None, None) => None,
        };
        let transport = match take("smtp_url") {
            Some(r) => {
                MailTransport::parse(&r.value).map_err(|p| ConfigError::new(r.source_name, p))?
            }
            None => MailTransport::Off,
        };
        let from = match take("mail_from") {
            Some(r) if !r.value.trim().is_empty() => {
                let v = r.value.trim().to_owned();
                // The mailer's own parser: what it accepts here it can send from (the default,
                // `vigil@localhost`, included — found by fuzzing config_toml).
                v.parse::<lettre::Address>().map_err(|e| {
                    ConfigError::new(
                        r.source_name,
                        format!("`{v}` is not an e-mail address ({e})"),
                    )
                })?;
                v
            }
            // The issuer's host when it makes an address the setting accepts (a host URL
            // parsing allows, such as one with a comma, does not — found by fuzzing).
            _ => url::Url::parse(issuer.as_str())
                .ok()
                .and_then(|u| u.host_str().map(|h| format!("vigil@{h}")))
                .filter(|a| a.parse::<lettre::Address>().is_ok())
                .unwrap_or_else(|| "vigil@localhost".into()),
        };
        let mail = MailSettings { transport, from };
        let registration = match take("registration") {
            None => Registration::Off,
            Some(r) => match r.value.trim() {
                "" | "off" => Registration::Off,
                "invite" => Registration::Invite,
                "open" => Registration::Open,
                _ => return Err(ConfigError::new(r.source_name, "use off, invite or open")),
            },
        };
        let admin_digest_hours = match take("admin_digest_hours") {
            None => 24,
            Some(r) => match r.value.trim().parse::<u32>() {
                Ok(h) if h <= 24 * 31 => h,
                _ => {
                    return Err(ConfigError::new(
                        r.source_name,
                        "use a number of hours from 0 (never) to 744",
                    ))
                }
            },
        };
        let pwned_passwords_url = match take("pwned_passwords_url") {
            Some(r) if !r.value.trim().is_empty() => {
                let v = r.value.trim().to_owned();
                match url::Url::parse(&v) {
                    Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
                        Some(v)
                    }
                    _ => return Err(ConfigError::new(
                        r.source_name,
                        "use the range API's base URL, e.g. https://api.pwnedpasswords.com/range/",
                    )),
                }
            }
            _ => None,
        };
        let master_key_file = match take("master_key_file") {
            Some(r) => Some(PathBuf::from(r.value)),
            None => None,
        };
        let defaults = PasswordParams::default();
        let password = PasswordParams {
            memory_kib: number(
                take("argon2_memory_kib"),
                defaults.memory_kib,
                1024,
                4 * 1024 * 1024,
            )?,
            iterations: number(take("argon2_iterations"), defaults.iterations, 1, 100)?,
            parallelism: number(take("argon2_parallelism"), defaults.parallelism, 1, 64)?,
        };
        let session = SessionSettings {
            idle_secs: 60
                * i64::from(number(
                    take("session_idle_minutes"),
                    120u32,
                    1,
                    60 * 24 * 30,
                )?),
            absolute_secs: 3600
                * i64::from(number(take("session_absolute_hours"), 12u32, 1, 24 * 90)?),
        };
        let hash_queue = match take("hash_queue") {
            Some(r) => Some(number(Some(r), 0usize, 0, 1_000_000)?),
            None => None,
        };
        let throttle = ThrottleSettings {
            account_failures: number(take("throttle_account_failures"), 5, 1, 10_000)?,
            ip_failures: number(take("throttle_ip_failures"), 30, 1, 1_000_000)?,
            window_secs: 60
                * i64::from(number(take("throttle_window_minutes"), 15u32, 1, 24 * 60)?),
        };
        let risk_policy = match take("risk_policy") {
            Some(r) => parse_policy(&r.value).map_err(|p| ConfigError::new(r.source_name, p))?,
            None => crate::risk::Policy::default(),
        };
        let risk_candidate_policy = match take("risk_candidate_policy") {
            Some(r) if r.value.is_empty() => None,
            Some(r) => {
                Some(parse_policy(&r.value).map_err(|p| ConfigError::new(r.source_name, p))?)
            }
            None => None,
        };
        let risk_threshold_medium: u8 = number(take("risk_threshold_medium"), 35, 1, 99)?;
        let risk_threshold_high: u8 = number(take("risk_threshold_high"), 70, 2, 100)?;
        if risk_threshold_high <= risk_threshold_medium {
            return Err(ConfigError::new(
                "VIGIL_RISK_THRESHOLD_HIGH",
                "must be above VIGIL_RISK_THRESHOLD_MEDIUM",
            ));
        }
        let risk_travel_speed_kmh = number(take("risk_travel_speed_kmh"), 900, 100, 5000)?;
        // The quarterly retraining people are told to do; up to ten years, 0 turns it off.
        let risk_retrain_days = number(take("risk_retrain_days"), 90u32, 0, 3650)?;
        // Up to ten years; 0 means keep raw IPs forever (no purge runs).
        let ip_retention_days = number(take("ip_retention_days"), 30u32, 0, 3650)?;
        let token_log_retention_days = number(take("token_log_retention_days"), 90u32, 0, 3650)?;
        // Up to five minutes: a window for concurrent duplicates, not a second lifetime.
        let refresh_reuse_interval_secs =
            i64::from(number(take("refresh_reuse_interval_secs"), 0u32, 0, 300)?);
        let shutdown_drain_secs = u64::from(number(take("shutdown_drain_secs"), 0u32, 0, 60)?);
        Ok(Settings {
            refresh_reuse_interval_secs,
            shutdown_drain_secs,
            risk_policy,
            risk_candidate_policy,
            risk_threshold_medium,
            risk_threshold_high,
            risk_travel_speed_kmh,
            risk_retrain_days,
            mail,
            pwned_passwords_url,
            registration,
            admin_digest_hours,
            ip_retention_days,
            token_log_retention_days,
            bind,
            issuer,
            database_url,
            geoip_city,
            geoip_asn,
            trusted_proxies,
            ip_denylist,
            log,
            log_format,
            password,
            session,
            hash_queue,
            throttle,
            master_key,
            metrics_token,
            metrics_bind,
            master_key_file,
        })
    }

    /// Settings from the text of a `vigil.toml` alone (no environment); `source` names it in
    /// errors. What `VIGIL_CONFIG` does, without reading a file.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, ConfigError> {
        let mut raw = BTreeMap::new();
        read_toml(text, source, &mut raw)?;
        Self::from_raw(raw)
    }

    /// Defaults only (tests and the CLI start from here).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_raw(BTreeMap::new())
    }
}

fn read_file(path: &Path, raw: &mut BTreeMap<&'static str, Raw>) -> Result<(), ConfigError> {
    let source = format!("VIGIL_CONFIG ({})", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&source, format!("cannot read the file ({e})")))?;
    read_toml(&text, &path.display().to_string(), raw)
}

/// The keys of a `vigil.toml` text as raw values; `shown` names the file in errors.
fn read_toml(
    text: &str,
    shown: &str,
    raw: &mut BTreeMap<&'static str, Raw>,
) -> Result<(), ConfigError> {
    let source = format!("VIGIL_CONFIG ({shown})");
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new(&source, format!("not valid TOML ({})", e.message()))
    })?;
    for (k, v) in table {
        let Some(key) = KEYS.iter().find(|known| **known == k) else {
            return Err(ConfigError::new(
                format!("{shown} key `{k}`"),
                "unknown key",
            ));
        };
        let value = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s),
                        _ => {
                            return Err(ConfigError::new(
                                format!("{shown} key `{k}`"),
                                "list items must be strings",
                            ))
                        }
                    }
                }
                parts.join(",")
            }
            _ => {
                return Err(ConfigError::new(
                    format!("{shown} key `{k}`"),
                    "must be a string, number or list of strings",
                ))
            }
        };
        raw.insert(
            key,
            Raw {
                value,
                source_name: format!("{shown} key `{k}`"),
            },
        );
    }
    Ok(())
}

fn number<T>(raw: Option<Raw>, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match raw {
        None => Ok(default),
        Some(r) => match r.value.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(v),
            _ => Err(ConfigError::new(
                r.source_name,
                format!("`{}` must be a whole number from {min} to {max}", r.value),
            )),
        },
    }
}

fn existing_file(r: Raw) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(&r.value);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ConfigError::new(
            r.source_name,
            format!("file `{}` does not exist", r.value),
        ))
    }
}

/// An explicitly configured file must exist; the default is used only when present.
fn optional_file(raw: Option<Raw>, default: &str) -> Result<Option<PathBuf>, ConfigError> {
    match raw {
        Some(r) if r.value.is_empty() => Ok(None),
        Some(r) => existing_file(r).map(Some),
        None => {
            let p = PathBuf::from(default);
            Ok(p.is_file().then_some(p))
        }
    }
}

/// A log filter with each comma-separated directive trimmed. tracing-subscriber 0.3 reads a
/// directive that starts with a space at shifted offsets: `info, vigil=debug` filtered a target
/// ` vigi`, and a non-ASCII character after the space panicked at start-up (found by the
/// `config_toml` fuzz target).
pub fn log_filter(s: &str) -> String {
    s.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// `low=allow,medium=step_up,high=step_up_phishing_resistant,deny_listed=block`; levels not
/// named keep their default.
pub fn parse_policy(s: &str) -> Result<crate::risk::Policy, String> {
    use crate::risk::Action;
    let mut p = crate::risk::Policy::default();
    for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (level, action) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not level=action"))?;
        let a = match action.trim() {
            "allow" => Action::Allow,
            "step_up" => Action::StepUp,
            "step_up_phishing_resistant" => Action::StepUpPhishingResistant,
            "block" => Action::Block,
            other => {
                return Err(format!(
                    "unknown action `{other}` (allow, step_up, step_up_phishing_resistant, block)"
                ))
            }
        };
        match level.trim() {
            "low" => p.low = a,
            "medium" => p.medium = a,
            "high" => p.high = a,
            "deny_listed" => p.deny_listed = a,
            other => {
                return Err(format!(
                    "unknown level `{other}` (low, medium, high, deny_listed)"
                ))
            }
        }
    }
    Ok(p)
}

/// Comma-separated CIDRs or bare addresses (a bare address is a /32 or /128).
pub fn parse_cidrs(s: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = match part.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match part.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return Err(format!("`{part}` is not an IP address or CIDR")),
            },
        };
        out.push(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_env_map(&env(&[])).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer.as_str(), "http://localhost:8080");
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("vigil.db".into()));
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(s.ip_retention_days, 30);
    }

    /// The default sender (`vigil@` + the issuer's host, `localhost` in development) is one the
    /// setting itself accepts, so settings written back load again (found by config_toml);
    /// nonsense is refused, and SMTP credentials never show in `Debug`.
    #[test]
    fn mail_settings_round_trip_and_hide_credentials() {
        let s = Settings::from_toml("", "t.toml").unwrap();
        assert_eq!(s.mail.from, "vigil@localhost");
        let again = Settings::from_toml("mail_from = \"vigil@localhost\"\n", "t.toml").unwrap();
        assert_eq!(again.mail, s.mail);
        assert!(Settings::from_toml("mail_from = \"not an address\"\n", "t.toml").is_err());
        assert!(Settings::from_toml("smtp_url = \"http://x\"\n", "t.toml").is_err());
        let s = Settings::from_toml(
            "smtp_url = \"smtp://vigil:s3cret@mail.example.com:587?tls=required\"\n",
            "t.toml",
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("mail.example.com") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    /// A field filter whose value builds a huge automaton hung the start for minutes (the
    /// config_toml fuzz target's timeout); it is refused at once, plain directives still work.
    #[test]
    fn log_filters_are_targets_and_levels() {
        let bomb = "iDo.0, [`{x= *..k.k;............................................^^}]";
        let e = Settings::from_env_map(&env(&[("VIGIL_LOG", bomb)])).unwrap_err();
        assert!(e.to_string().contains("VIGIL_LOG"), "{e}");
        let long = "vigil=debug,".repeat(100);
        assert!(Settings::from_env_map(&env(&[("VIGIL_LOG", long.as_str())])).is_err());
        let ok = Settings::from_env_map(&env(&[("VIGIL_LOG", "info, vigil=debug")])).unwrap();
        assert_eq!(ok.log, "info,vigil=debug");
    }

    #[test]
    fn the_metrics_listener_is_an_address_other_than_bind() {
        let s = Settings::from_env_map(&env(&[("VIGIL_METRICS_BIND", "10.0.0.5:9100")])).unwrap();
        assert_eq!(
            s.metrics_bind.map(|a| a.to_string()).as_deref(),
            Some("10.0.0.5:9100")
        );
        let none = Settings::from_env_map(&env(&[("VIGIL_METRICS_BIND", "")])).unwrap();
        assert!(none.metrics_bind.is_none());
        let bad = Settings::from_env_map(&env(&[("VIGIL_METRICS_BIND", "9100")])).unwrap_err();
        assert!(bad.to_string().contains("VIGIL_METRICS_BIND"), "{bad}");
        let same = Settings::from_env_map(&env(&[
            ("VIGIL_BIND", "127.0.0.1:9000"),
            ("VIGIL_METRICS_BIND", "127.0.0.1:9000"),
        ]))
        .unwrap_err();
        assert!(same.to_string().contains("second"), "{same}");
    }

    #[test]
    fn the_metrics_token_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("vigil-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("metrics_token");
        std::fs::write(&file, "scrape-me-please\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let s = Settings::from_env_map(&env(&[("VIGIL_METRICS_TOKEN_FILE", &path)])).unwrap();
        assert_eq!(s.metrics_token.as_deref(), Some("scrape-me-please"));
        let both = Settings::from_env_map(&env(&[
            ("VIGIL_METRICS_TOKEN_FILE", &path),
            ("VIGIL_METRICS_TOKEN", "other"),
        ]))
        .unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        std::fs::write(&file, "  \n").unwrap();
        let empty =
            Settings::from_env_map(&env(&[("VIGIL_METRICS_TOKEN_FILE", &path)])).unwrap_err();
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let missing = Settings::from_env_map(&env(&[(
            "VIGIL_METRICS_TOKEN_FILE",
            "/nonexistent/vigil/token",
        )]))
        .unwrap_err();
        assert!(
            missing.to_string().contains("VIGIL_METRICS_TOKEN_FILE"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refresh_reuse_interval_defaults_to_zero_and_is_bounded() {
        let s = Settings::from_env_map(&env(&[])).unwrap();
        assert_eq!(s.refresh_reuse_interval_secs, 0);
        let s =
            Settings::from_env_map(&env(&[("VIGIL_REFRESH_REUSE_INTERVAL_SECS", "30")])).unwrap();
        assert_eq!(s.refresh_reuse_interval_secs, 30);
        for bad in ["-1", "301", "soon"] {
            let e = Settings::from_env_map(&env(&[("VIGIL_REFRESH_REUSE_INTERVAL_SECS", bad)]))
                .unwrap_err();
            assert!(
                e.to_string().contains("VIGIL_REFRESH_REUSE_INTERVAL_SECS"),
                "{e}"
            );
        }
    }

    #[test]
    fn ip_retention_days_is_bounded_and_zero_keeps_forever() {
        let s = Settings::from_env_map(&env(&[("VIGIL_IP_RETENTION_DAYS", "0")])).unwrap();
        assert_eq!(s.ip_retention_days, 0);
        let s = Settings::from_env_map(&env(&[("VIGIL_IP_RETENTION_DAYS", "7")])).unwrap();
        assert_eq!(s.ip_retention_days, 7);
        for bad in ["-1", "3651", "a week"] {
            let e = Settings::from_env_map(&env(&[("VIGIL_IP_RETENTION_DAYS", bad)])).unwrap_err();
            assert!(e.to_string().contains("VIGIL_IP_RETENTION_DAYS"), "{e}");
        }
    }

    #[test]
    fn environment_overrides_and_errors_name_the_key() {
        let s = Settings::from_env_map(&env(&[("VIGIL_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]))
            .unwrap();
        assert_eq!(s.trusted_proxies.len(), 2);
        let e =
            Settings::from_env_map(&env(&[("VIGIL_TRUSTED_PROXIES", "10.0.0.0/99")])).unwrap_err();
        assert!(e.to_string().contains("VIGIL_TRUSTED_PROXIES"), "{e}");
        let e = Settings::from_env_map(&env(&[("VIGIL_ISSUER", "not a url")])).unwrap_err();
        assert!(e.to_string().contains("VIGIL_ISSUER"), "{e}");
        let e = Settings::from_env_map(&env(&[("VIGIL_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(e.to_string().contains("VIGIL_DATABASE_URL"), "{e}");
        let e =
            Settings::from_env_map(&env(&[("VIGIL_GEOIP_CITY", "/nope/city.mmdb")])).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn issuer_scheme_is_case_insensitive_and_whitespace_is_refused() {
        // Found writing the TOML fuzz target's invariants (fuzz/src/lib.rs): `HTTPS://…` (or
        // `https:host`) was accepted as an issuer but not treated as https (no Secure cookies,
        // no HSTS), and a space or tab the URL parser skips stayed in the issuer string.
        assert!(Issuer::parse("HTTPS://id.example.com").unwrap().is_https());
        assert!(Issuer::parse("https:id.example.com").unwrap().is_https());
        assert!(Issuer::parse("https://id.example.com").unwrap().is_https());
        assert!(!Issuer::parse("http://localhost:8080").unwrap().is_https());
        for bad in [
            "https://id.example.com ",
            " https://id.example.com",
            "https://id.exa\tmple.com",
            "https://id.example.com/\n",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad:?}");
        }
        let s = Settings::from_toml("issuer = \"HTTPS://id.example.com/\"\n", "t.toml").unwrap();
        assert!(s.issuer.is_https());
    }

    #[test]
    fn log_directives_are_trimmed() {
        // Found by the config_toml fuzz target: a space then a non-ASCII character in a
        // directive panicked inside tracing-subscriber instead of loading or failing cleanly.
        let s = Settings::from_env_map(&env(&[("VIGIL_LOG", "info, \u{e9}=debug")]));
        assert!(s.is_ok_and(|s| s.log == "info,\u{e9}=debug"));
        let s = Settings::from_env_map(&env(&[("VIGIL_LOG", " info , vigil=debug ,")])).unwrap();
        assert_eq!(s.log, "info,vigil=debug");
        let s = Settings::from_toml("log = \"warn,\\t\u{fffd}x=info\"\n", "t.toml");
        assert!(s.is_ok() || s.is_err(), "no panic");
    }

    #[test]
    fn file_rejects_unknown_keys_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(
            &path,
            "bind = \"0.0.0.0:9000\"\nissuer = \"https://id.example.com/\"\n",
        )
        .unwrap();
        let p = path.to_string_lossy().to_string();
        let s = Settings::from_env_map(&env(&[
            ("VIGIL_CONFIG", &p),
            ("VIGIL_BIND", "127.0.0.1:9001"),
        ]))
        .unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:9001");
        assert_eq!(s.issuer.as_str(), "https://id.example.com");
        std::fs::write(&path, "colour = \"blue\"\n").unwrap();
        let e = Settings::from_env_map(&env(&[("VIGIL_CONFIG", &p)])).unwrap_err();
        assert!(
            e.to_string().contains("`colour`") && e.to_string().contains("unknown key"),
            "{e}"
        );
    }
}
