//! The reasons a risk assessment can give: the contract signal names of ARCHITECTURE.md §3.
//! Owns only the names and their rendering; which contributions map to which signal is
//! decided in `model.rs`. Renaming a variant breaks tokens, logs and scripts: don't.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One reason a sign-in looked risky. Serialises (and displays) as its contract name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The device cookie / fingerprint has not signed in as this user before.
    NewDevice,
    /// The country has never (or rarely) been seen for this user.
    NewCountry,
    /// The city has never (or rarely) been seen for this user.
    NewCity,
    /// The network (autonomous system) has never (or rarely) been seen for this user.
    NewAsn,
    /// Faster than flight from the last verified sign-in, after both accuracy radii.
    ImpossibleTravel,
    /// The address is on the configured anonymiser / Tor / deny list.
    AnonymousIp,
    /// Recent failed passwords for this account or from this address.
    FailedAttempts,
    /// Outside the user's usual hours of sign-in.
    UnusualHour,
    /// Browser family or OS never (or rarely) seen for this user.
    NewUserAgent,
}

impl Signal {
    /// The contract name, e.g. `"new_device"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::NewDevice => "new_device",
            Signal::NewCountry => "new_country",
            Signal::NewCity => "new_city",
            Signal::NewAsn => "new_asn",
            Signal::ImpossibleTravel => "impossible_travel",
            Signal::AnonymousIp => "anonymous_ip",
            Signal::FailedAttempts => "failed_attempts",
            Signal::UnusualHour => "unusual_hour",
            Signal::NewUserAgent => "new_user_agent",
        }
    }

    /// A short, non-revealing sentence for the step-up page (no values, no scores).
    pub const fn user_message(self) -> &'static str {
        match self {
            Signal::NewDevice => "we don't recognise this device",
            Signal::NewUserAgent => "we don't recognise this browser",
            Signal::NewCountry | Signal::NewCity | Signal::NewAsn | Signal::ImpossibleTravel => {
                "this sign-in comes from a new location"
            }
            Signal::AnonymousIp => "this sign-in comes from a network we can't verify",
            Signal::FailedAttempts => "we noticed unusual activity on your account",
            Signal::UnusualHour => "this sign-in happens at an unusual time for you",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_display_use_contract_names() {
        for s in [
            Signal::NewDevice,
            Signal::NewCountry,
            Signal::NewCity,
            Signal::NewAsn,
            Signal::ImpossibleTravel,
            Signal::AnonymousIp,
            Signal::FailedAttempts,
            Signal::UnusualHour,
            Signal::NewUserAgent,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Signal>(&json).unwrap(), s);
        }
    }
}
