//! Device signals: the User-Agent parsed by the `uaparser` crate with uap-core's
//! `regexes.yaml` (shipped in `data/uap/`), the login page's "device hints" field, the
//! `Accept-Language` primary tag, and a stable fingerprint over them. Owns no state and never
//! fails: anything unparsable becomes "Other" / absent. No HTTP types: the caller passes strings.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uaparser::{Parser as _, UserAgentParser};

use super::{Device, UaInfo};

/// Longest User-Agent we parse (longer ones are cut): bounds regex work per request.
const MAX_UA_BYTES: usize = 512;
/// Longest device-hints field we read; anything longer is ignored.
pub const MAX_HINTS_BYTES: usize = 512;
/// Longest single hint value kept.
const MAX_HINT_VALUE: usize = 64;

/// Compiled once. An `Err` here (a broken regexes file) degrades every parse to "Other".
static PARSER: LazyLock<Result<UserAgentParser, String>> = LazyLock::new(|| {
    UserAgentParser::builder()
        .with_unicode_support(false)
        .build_from_bytes(include_bytes!("../../data/uap/regexes.yaml"))
        .map_err(|e| format!("{e:?}"))
});

/// How many distinct User-Agent strings keep their parse. A parse tries uap-core's ~1,000
/// regexes in turn and, on a thread that has not run them yet, first builds their lazy DFAs:
/// milliseconds of CPU per sign-in (the load tool found 12 % of a password sign-in's CPU here),
/// while a population sends few distinct strings. The cache is S3-FIFO (`quick_cache`): a flood
/// of one-off strings passes through its small probation queue without evicting the strings
/// seen again and again.
const UA_CACHE_ENTRIES: usize = 4096;

static PARSED: LazyLock<quick_cache::sync::Cache<String, UaInfo>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(UA_CACHE_ENTRIES));

/// The kind of device, as reported in `UaInfo::device_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    #[default]
    Other,
}

impl DeviceType {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Other => "other",
        }
    }
}

/// The optional hints the login page's script posts as a small JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHints {
    pub tz: Option<String>,
    pub screen: Option<String>,
    pub platform: Option<String>,
}

/// Whether the regexes file compiled (for a start-up log line / readiness check).
pub fn parser_status() -> Result<(), String> {
    PARSER.as_ref().map(|_| ()).map_err(Clone::clone)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parse a User-Agent into browser family + major, OS family and device type (cached: a parse
/// is a pure function of the string).
pub fn parse_user_agent(user_agent: &str) -> UaInfo {
    let ua = truncate(user_agent, MAX_UA_BYTES);
    if let Some(hit) = PARSED.get(ua) {
        return hit;
    }
    let parsed = parse_uncached(ua);
    PARSED.insert(ua.to_owned(), parsed.clone());
    parsed
}

fn parse_uncached(ua: &str) -> UaInfo {
    let Ok(parser) = PARSER.as_ref() else {
        return UaInfo::default();
    };
    let c = parser.parse(ua);
    let device_type = classify(ua, &c.device.family, &c.os.family, &c.user_agent.family);
    UaInfo {
        browser_family: c.user_agent.family.into_owned(),
        browser_major: c.user_agent.major.map(|m| m.into_owned()),
        os_family: c.os.family.into_owned(),
        device_type,
    }
}

fn classify(ua: &str, device: &str, os: &str, browser: &str) -> DeviceType {
    let lower = ua.to_ascii_lowercase();
    if device == "Spider" || browser.contains("bot") || lower.contains("bot/") {
        return DeviceType::Bot;
    }
    let tablet_family = ["iPad", "Kindle", "Tablet", "Nexus 7", "Nexus 9", "Nexus 10"];
    if tablet_family.iter().any(|t| device.contains(t))
        || lower.contains("tablet")
        || (os == "Android" && !lower.contains("mobile"))
    {
        return DeviceType::Tablet;
    }
    let mobile_os = ["iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"];
    if device == "iPhone" || mobile_os.contains(&os) || lower.contains("mobile") {
        return DeviceType::Mobile;
    }
    let desktop_os = [
        "Windows",
        "Mac OS X",
        "macOS",
        "Linux",
        "Ubuntu",
        "Fedora",
        "Debian",
        "Chrome OS",
        "ChromeOS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
    ];
    if desktop_os.contains(&os) || os.starts_with("Windows") {
        return DeviceType::Desktop;
    }
    DeviceType::Other
}

fn clean(v: Option<String>) -> Option<String> {
    let v = v?;
    let v: String = truncate(v.trim(), MAX_HINT_VALUE)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Read the hidden device-hints field. Garbage, oversize input (> 512 bytes) or wrong types
/// yield empty hints: the field is attacker-controlled and only ever weak evidence.
pub fn parse_hints(raw: &str) -> DeviceHints {
    if raw.len() > MAX_HINTS_BYTES {
        return DeviceHints::default();
    }
    match serde_json::from_str::<DeviceHints>(raw) {
        Ok(h) => DeviceHints {
            tz: clean(h.tz),
            screen: clean(h.screen),
            platform: clean(h.platform),
        },
        Err(_) => DeviceHints::default(),
    }
}

/// The primary language tag of an `Accept-Language` header, lowercased: `"de-DE,de;q=0.9"`
/// gives `"de"`.
pub fn primary_language(accept_language: &str) -> Option<String> {
    let first = accept_language.split(',').next()?.split(';').next()?.trim();
    let primary = first.split('-').next()?.trim().to_ascii_lowercase();
    let ok = !primary.is_empty()
        && primary.len() <= 8
        && primary.chars().all(|c| c.is_ascii_alphabetic());
    ok.then_some(primary)
}

/// A stable fingerprint: the first 16 hex digits of SHA-256 over browser family + major, OS
/// family, device type, time zone, screen, platform and primary language. Not secret and not
/// unique; it recognises "the same browser on the same machine" when the cookie is gone.
pub fn fingerprint(ua: &UaInfo, hints: &DeviceHints, language: Option<&str>) -> String {
    let parts = [
        ua.browser_family.as_str(),
        ua.browser_major.as_deref().unwrap_or(""),
        ua.os_family.as_str(),
        ua.device_type.as_str(),
        hints.tz.as_deref().unwrap_or(""),
        hints.screen.as_deref().unwrap_or(""),
        hints.platform.as_deref().unwrap_or(""),
        language.unwrap_or(""),
    ];
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed so that ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Everything the device side of a sign-in needs, from the raw request strings.
pub fn observe(
    user_agent: &str,
    accept_language: Option<&str>,
    hints_raw: Option<&str>,
    cookie_id: Option<&str>,
) -> (UaInfo, Device) {
    let ua = parse_user_agent(user_agent);
    let hints = hints_raw.map(parse_hints).unwrap_or_default();
    let lang = accept_language.and_then(primary_language);
    let device = Device {
        cookie_id: cookie_id.filter(|c| !c.is_empty()).map(str::to_owned),
        fingerprint: Some(fingerprint(&ua, &hints, lang.as_deref())),
    };
    (ua, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ua: &str) -> (String, Option<String>, String, DeviceType) {
        let u = parse_user_agent(ua);
        (
            u.browser_family,
            u.browser_major,
            u.os_family,
            u.device_type,
        )
    }

    #[test]
    fn regexes_compile() {
        parser_status().unwrap();
    }

    #[test]
    fn common_browsers() {
        use DeviceType::*;
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
             "Chrome", "124", "Windows", Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
             "Mobile Safari", "17", "iOS", Mobile),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
             "Firefox", "125", "Linux", Desktop),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
             "Edge", "124", "Windows", Desktop),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
             "Chrome Mobile", "124", "Android", Mobile),
            ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
             "Mobile Safari", "17", "iOS", Tablet),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
             "Googlebot", "2", "Other", Bot),
        ];
        for (ua, browser, major, os, kind) in cases {
            let got = p(ua);
            assert_eq!(
                got,
                (
                    browser.to_owned(),
                    Some(major.to_owned()),
                    os.to_owned(),
                    kind
                ),
                "{ua}"
            );
        }
        let mac = p("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15");
        assert_eq!((mac.0.as_str(), mac.3), ("Safari", Desktop));
    }

    #[test]
    fn garbage_user_agents_are_other() {
        let u = parse_user_agent("");
        assert_eq!(
            (u.browser_family.as_str(), u.device_type),
            ("Other", DeviceType::Other)
        );
        let long = "é".repeat(10_000); // cut on a char boundary, no panic
        assert_eq!(parse_user_agent(&long).browser_family, "Other");
    }

    #[test]
    fn hints_tolerate_garbage() {
        let h =
            parse_hints(r#"{"tz":"Europe/Berlin","screen":"1920x1080","platform":"Linux x86_64"}"#);
        assert_eq!(h.tz.as_deref(), Some("Europe/Berlin"));
        assert_eq!(h.screen.as_deref(), Some("1920x1080"));
        assert_eq!(h.platform.as_deref(), Some("Linux x86_64"));
        for bad in ["", "null", "not json", "[1,2]", r#"{"tz":5}"#] {
            assert_eq!(parse_hints(bad), DeviceHints::default(), "{bad}");
        }
        let huge = format!(r#"{{"tz":"{}"}}"#, "x".repeat(600));
        assert_eq!(parse_hints(&huge), DeviceHints::default());
        let h = parse_hints(&format!(
            r#"{{"tz":" {}\u0000 ","extra":1}}"#,
            "y".repeat(100)
        ));
        assert_eq!(h.tz.map(|t| t.len()), Some(MAX_HINT_VALUE));
    }

    #[test]
    fn languages_and_fingerprints() {
        assert_eq!(
            primary_language("de-DE,de;q=0.9,en;q=0.8").as_deref(),
            Some("de")
        );
        assert_eq!(primary_language("EN").as_deref(), Some("en"));
        assert_eq!(primary_language("*"), None);
        assert_eq!(primary_language(""), None);

        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
        let hints = r#"{"tz":"Europe/Berlin","screen":"1920x1080","platform":"Linux x86_64"}"#;
        let (_, a) = observe(ua, Some("de-DE"), Some(hints), Some("cookie-1"));
        let (_, b) = observe(ua, Some("de-AT,de;q=0.9"), Some(hints), None);
        let (_, c) = observe(ua, Some("en-GB"), Some(hints), None);
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "same browser, same primary language"
        );
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint.as_ref().map(String::len), Some(16));
        assert_eq!(
            (a.cookie_id.as_deref(), b.cookie_id),
            (Some("cookie-1"), None)
        );
    }
}
