//! From an assessment to a decision: the configurable `Policy` (one `Action` per level, plus
//! one for deny-listed networks) resolved against the factors the user actually has. Owns no
//! scoring. A report-only candidate policy is just a second `decide` call with another policy.
//!
//! ```text
//!  deny-listed ──► policy.deny_listed ─┐
//!  max(level, client minimum) ─► policy.<level> ─┴► Allow
//!                                                   StepUp            ─► no factor at all ─► Block
//!                                                   StepUpPhishingRes ─► no WebAuthn      ─► Block
//!                                                   Block
//! ```

use serde::{Deserialize, Serialize};

use super::model::RULE_DENY_LIST;
use super::{Assessment, Level, Signal};

/// What a level asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    /// A second factor: the strongest the user has is offered first.
    StepUp,
    /// Only a phishing-resistant factor (WebAuthn) will do; without one, block.
    StepUpPhishingResistant,
    Block,
}

/// The actions per level. Default: low → allow, medium → step-up, high → phishing-resistant
/// step-up (else block), deny-listed network → block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub low: Action,
    pub medium: Action,
    pub high: Action,
    pub deny_listed: Action,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            low: Action::Allow,
            medium: Action::StepUp,
            high: Action::StepUpPhishingResistant,
            deny_listed: Action::Block,
        }
    }
}

impl Policy {
    pub fn for_level(&self, level: Level) -> Action {
        match level {
            Level::Low => self.low,
            Level::Medium => self.medium,
            Level::High => self.high,
        }
    }
}

/// The second factors the user has enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AvailableFactors {
    pub webauthn: bool,
    pub totp: bool,
    pub recovery: bool,
}

impl AvailableFactors {
    pub fn any(&self) -> bool {
        self.webauthn || self.totp || self.recovery
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    DenyListed,
    /// The policy blocks this level outright.
    Policy,
    /// A step-up was needed but the user has no second factor.
    NoSecondFactor,
    /// A phishing-resistant step-up was needed but the user has no WebAuthn credential.
    NoPhishingResistantFactor,
}

impl BlockReason {
    /// A stable name for counters (`vigil_blocks_total{reason}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockReason::DenyListed => "deny_listed",
            BlockReason::Policy => "policy",
            BlockReason::NoSecondFactor => "no_second_factor",
            BlockReason::NoPhishingResistantFactor => "no_phishing_resistant_factor",
        }
    }

    /// What the refusal page tells the user they can do.
    pub const fn message(self) -> &'static str {
        match self {
            BlockReason::DenyListed => {
                "sign-ins from this network are not accepted; try again from another network"
            }
            BlockReason::Policy => "this sign-in was refused; contact your administrator",
            BlockReason::NoSecondFactor => {
                "this sign-in needs a second factor and your account has no second factor; \
                 sign in from a familiar device, or ask your administrator to review it"
            }
            BlockReason::NoPhishingResistantFactor => {
                "this sign-in needs a security key or passkey and your account has none; \
                 sign in from a familiar device, or ask your administrator to review it"
            }
        }
    }
}

/// The outcome. Serialises with a `decision` tag: `"allow"`, `"step_up"`, `"block"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow,
    /// `phishing_resistant`: only WebAuthn is acceptable.
    StepUp {
        phishing_resistant: bool,
    },
    Block {
        reason: BlockReason,
    },
}

impl Decision {
    /// `"allow"`, `"step_up"` or `"block"` (the `risk.decision` claim).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp { .. } => "step_up",
            Decision::Block { .. } => "block",
        }
    }
}

/// Decide. `min_level_from_client` is a client's floor (from its policy or `acr_values`):
/// map "needs MFA" to `Medium` and "needs phishing-resistant MFA" to `High`; it only ever
/// raises the level. A deny-listed network gets `policy.deny_listed` whatever the score.
pub fn decide(
    a: &Assessment,
    policy: &Policy,
    factors: AvailableFactors,
    min_level_from_client: Option<Level>,
) -> Decision {
    let deny_listed =
        a.rule.as_deref() == Some(RULE_DENY_LIST) || a.reasons.contains(&Signal::AnonymousIp);
    let action = if deny_listed {
        policy.deny_listed
    } else {
        policy.for_level(a.level.max(min_level_from_client.unwrap_or(Level::Low)))
    };
    let block = |reason| Decision::Block { reason };
    match action {
        Action::Allow => Decision::Allow,
        Action::Block if deny_listed => block(BlockReason::DenyListed),
        Action::Block => block(BlockReason::Policy),
        _ if !factors.any() => block(BlockReason::NoSecondFactor),
        Action::StepUp => Decision::StepUp {
            phishing_resistant: false,
        },
        Action::StepUpPhishingResistant if factors.webauthn => Decision::StepUp {
            phishing_resistant: true,
        },
        Action::StepUpPhishingResistant => block(BlockReason::NoPhishingResistantFactor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(level: Level, rule: Option<&str>) -> Assessment {
        Assessment {
            score: 0,
            level,
            reasons: vec![],
            contributions: vec![],
            rule: rule.map(str::to_owned),
            raw: 0.0,
            model: String::new(),
        }
    }

    const NONE: AvailableFactors = AvailableFactors {
        webauthn: false,
        totp: false,
        recovery: false,
    };
    const TOTP: AvailableFactors = AvailableFactors {
        webauthn: false,
        totp: true,
        recovery: true,
    };
    const ALL: AvailableFactors = AvailableFactors {
        webauthn: true,
        totp: true,
        recovery: true,
    };

    #[test]
    fn default_policy_table() {
        let p = Policy::default();
        let d = |level, f| decide(&assessment(level, None), &p, f, None);
        let step = |pr| Decision::StepUp {
            phishing_resistant: pr,
        };
        let block = |reason| Decision::Block { reason };
        assert_eq!(d(Level::Low, NONE), Decision::Allow);
        assert_eq!(d(Level::Medium, TOTP), step(false));
        assert_eq!(d(Level::Medium, ALL), step(false));
        assert_eq!(d(Level::Medium, NONE), block(BlockReason::NoSecondFactor));
        assert_eq!(d(Level::High, ALL), step(true));
        assert_eq!(
            d(Level::High, TOTP),
            block(BlockReason::NoPhishingResistantFactor)
        );
        assert_eq!(d(Level::High, NONE), block(BlockReason::NoSecondFactor));
    }

    #[test]
    fn deny_list_blocks_and_client_minimum_raises() {
        let p = Policy::default();
        let denied = assessment(Level::High, Some(RULE_DENY_LIST));
        assert_eq!(
            decide(&denied, &p, ALL, None),
            Decision::Block {
                reason: BlockReason::DenyListed
            }
        );
        let low = assessment(Level::Low, None);
        assert_eq!(
            decide(&low, &p, TOTP, Some(Level::Medium)),
            Decision::StepUp {
                phishing_resistant: false
            }
        );
        assert_eq!(
            decide(&low, &p, ALL, Some(Level::High)),
            Decision::StepUp {
                phishing_resistant: true
            }
        );
        // A client minimum never lowers the level.
        let high = assessment(Level::High, None);
        assert_eq!(decide(&high, &p, ALL, Some(Level::Low)).as_str(), "step_up");
    }

    #[test]
    fn serialisation() {
        let j = |d: Decision| serde_json::to_string(&d).unwrap();
        assert_eq!(j(Decision::Allow), r#"{"decision":"allow"}"#);
        assert_eq!(
            j(Decision::StepUp {
                phishing_resistant: true
            }),
            r#"{"decision":"step_up","phishing_resistant":true}"#
        );
        assert_eq!(
            j(Decision::Block {
                reason: BlockReason::NoSecondFactor
            }),
            r#"{"decision":"block","reason":"no_second_factor"}"#
        );
        let p: Policy = serde_json::from_str(r#"{"medium":"block"}"#).unwrap();
        assert_eq!(
            (p.medium, p.high),
            (Action::Block, Action::StepUpPhishingResistant)
        );
    }
}
