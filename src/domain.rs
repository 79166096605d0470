//! Values that cannot be wrong: parsed once at the edge (CLI, forms), trusted everywhere after.

use std::fmt;

/// A username: 1–64 characters of `a-z 0-9 . _ - @ +`, stored lower-case so that `Alice` and
/// `alice` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = s.trim().to_lowercase();
        if v.is_empty() {
            return Err("the username is empty".into());
        }
        if v.chars().count() > 64 {
            return Err("the username is longer than 64 characters".into());
        }
        if let Some(c) = v
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@+".contains(*c)))
        {
            return Err(format!(
                "the username contains `{c}`; use letters, digits and . _ - @ +"
            ));
        }
        Ok(Username(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address in the plain `local@domain.tld` shape (no display names, no spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = s.trim();
        let bad = || format!("`{v}` is not an e-mail address");
        if v.len() > 254 || v.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, domain) = v.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(v.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_restricted() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("<script>").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn emails_need_a_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("a@localhost").is_err());
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("a b@example.com").is_err());
    }
}

/// A redirect URI fit to register: absolute, no fragment, no user-info, `https` (or `http` to a
/// loopback host, or an RFC 8252 private-use scheme such as `com.example.app:/cb` for native
/// apps). Kept exactly as written, because matching at `/authorize` is by exact string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URI ({e})"))?;
        if url.fragment().is_some() || s.contains('#') {
            return Err(format!("`{s}` must not contain a fragment (#)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{s}` must not contain user information"));
        }
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" if url.host_str().is_some() => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "`{s}` must use https (plain http is allowed only for localhost)"
                ))
            }
            scheme if scheme.contains('.') => {}
            _ => {
                return Err(format!(
                    "`{s}` must use https (or a private-use scheme like com.example.app)"
                ))
            }
        }
        Ok(RedirectUri(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A client id: 1–128 characters of letters, digits and `. _ - :`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 128 {
            return Err("a client id has 1 to 128 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        {
            return Err(format!(
                "client id `{s}` may only contain letters, digits and . _ - :"
            ));
        }
        Ok(ClientId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: 1–128 characters, no control characters, trimmed (an HR system's
/// "Sales EMEA" is a fine name). Unique, case-sensitive, as SCIM's `displayName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = s.trim();
        if v.is_empty() || v.chars().count() > 128 {
            return Err("a group name has 1 to 128 characters".into());
        }
        if v.chars().any(char::is_control) {
            return Err("a group name cannot contain control characters".into());
        }
        Ok(GroupName(v.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role's name, as applications receive it in the `roles` claim: 1–64 characters of
/// letters, digits and `. _ - :` (no spaces, so it can never be mistaken for two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("a role name has 1 to 64 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        {
            return Err(format!(
                "role name `{s}` may only contain letters, digits and . _ - :"
            ));
        }
        Ok(RoleName(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_safe() {
        assert!(RedirectUri::parse("https://app.example.com/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost:3000/cb").is_ok());
        assert!(RedirectUri::parse("http://127.0.0.1/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/cb").is_ok());
        assert!(RedirectUri::parse("http://app.example.com/cb").is_err());
        assert!(RedirectUri::parse("https://app.example.com/cb#x").is_err());
        assert!(RedirectUri::parse("https://u:p@app.example.com/cb").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("javascript:alert(1)").is_err());
    }
}
