//! The one enforcement point. Every path that creates a session, issues a code, refreshes a
//! token, changes a factor or a credential, or acts in the admin console asks [`require`] —
//! given the account, the session it would use, the request's context and the action — and gets
//! back a [`Requirement`]: go ahead, prove a (phishing-resistant) second factor, sign in again,
//! choose a new password first, enrol a factor first, or no.
//!
//! Nothing else decides. The risk engine scores (`risk.rs`), policy maps the score to a
//! [`Decision`]; this function combines that decision with what the account and session are:
//!
//! ```text
//!  account disabled ─────────────────────────────────────────────► Deny
//!  self-registered, address unconfirmed or held for review ───────► Deny
//!  session used from another device (cookie) ────────────────────► Deny (session is ended)
//!  action ─┬ SignIn(password)  risk decision, then: compromised ► second factor (none: Deny)
//!          │                   at_risk ► second factor; admin with a factor ► second factor
//!          ├ SignIn(passkey)   only a Block stops it (a passkey is the strongest proof)
//!          ├ UseSession        must change password ► ChangePassword; compromised ► Deny;
//!          │                   at_risk ► session at mfa (a password-only one steps up);
//!          │                   re-scored decision ► step up unless the session already has it
//!          ├ Refresh           disabled/compromised/must-change/session revoked/consent gone ► Deny
//!          ├ AccountPage       must change password ► ChangePassword; re-score ► sign in again
//!          ├ ChangePassword    a factor enrolled ► session at mfa
//!          ├ ChangeFactor      sign-in ≤ 5 min old, at mfa when a factor is enrolled
//!          ├ ResetPassword     (mailed link, no session) Block ► Deny; a factor ► second factor
//!          │                   (a passkey at high risk); none: compromised/high ► Deny, else
//!          │                   Allow (the account is left at_risk)
//!          ├ AdminConsole      a console role that covers the page; a factor; session at mfa
//!          └ AdminChange       AdminConsole + a role that may change it + sign-in ≤ 5 min old
//!  client (no user) ─ Provision  a provisioning client with a `scim` token; staff accounts and
//!                                console groups only de-provisioned, never changed
//! ```
//! The table in `docs/ARCHITECTURE.md` §2a is this function in words; `tests` below check it
//! row by row.

use crate::oidc::{acr_rank, ACR_MFA, ACR_PHR};
use crate::risk::{AvailableFactors, BlockReason, Decision, Level};
use crate::store::sessions::Session;
use crate::store::users::User;

/// How recent a sign-in must be for a change to factors, credentials or (admins) anything.
pub const FRESH_SECS: i64 = 300;

/// The account's risk state: what a compromise leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRisk {
    None,
    /// A high-risk sign-in got in, or a step-up failed: every sign-in steps up.
    AtRisk,
    /// Reported by its user or judged an attack by an admin: the password alone never
    /// suffices again until a second factor and a new password (or an admin reset).
    Compromised,
}

impl AccountRisk {
    pub fn parse(s: &str) -> Self {
        match s {
            "at_risk" => AccountRisk::AtRisk,
            "compromised" => AccountRisk::Compromised,
            _ => AccountRisk::None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRisk::None => "none",
            AccountRisk::AtRisk => "at_risk",
            AccountRisk::Compromised => "compromised",
        }
    }
}

/// How a sign-in proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Passkey,
}

/// What is being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A sign-in that proved `Method` and would create a session.
    SignIn(Method),
    /// An SSO session used for an application: re-use at /authorize, resume, consent, code.
    UseSession,
    /// The authorization-code exchange (the code was minted under `UseSession`; what changed
    /// since — a compromise, a forced password change, the client's roles lost — stops it).
    Exchange,
    /// The refresh grant.
    Refresh,
    /// The user's own pages.
    AccountPage,
    /// Change one's own password.
    ChangePassword,
    /// Add, replace, remove or confirm a factor; regenerate recovery codes.
    ChangeFactor,
    /// Choose a new password through a link mailed to the account's address (no session): the
    /// link proves the mailbox, a second factor the rest. Without one the reset is let through
    /// and the caller leaves the account `at_risk`.
    ResetPassword,
    /// Read a part of the admin console, give review verdicts.
    AdminConsole(Area),
    /// Any other console change (accounts, factors, roles, clients, policy, keys).
    AdminChange(Area),
    /// Put a privileged role into a token (at the code exchange and every refresh), for the
    /// grant seen as a session: anything but `Allow` withholds the privileged roles.
    ReleasePrivileged,
    /// A machine client provisioning accounts and groups through SCIM (no user, no session).
    Provision(Provision),
}

/// What a provisioning client attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// Obtain a token with the `scim` scope (`client_credentials`).
    Token,
    /// Read users and groups.
    Read,
    /// Create or change a user or a group (its members included).
    Change,
    /// Deactivate or delete a user, delete a group: access only ever shrinks.
    Deprovision,
}

/// A client acting for itself, as enforcement sees it.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    pub id: &'a str,
    /// The client is marked for provisioning (`--provisioning`).
    pub provisioning: bool,
}

/// Who acts: a person's account (every browser and token path) or a client on its own behalf.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Account(&'a AccountView<'a>),
    Client(ClientView<'a>),
}

impl<'a, 'b: 'a> From<&'a AccountView<'b>> for Subject<'a> {
    fn from(a: &'a AccountView<'b>) -> Self {
        Subject::Account(a)
    }
}

impl<'a> From<ClientView<'a>> for Subject<'a> {
    fn from(c: ClientView<'a>) -> Self {
        Subject::Client(c)
    }
}

/// The parts of the admin console, as the console roles divide them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The dashboard, the sign-in log and its exports, fairness.
    Reports,
    /// The user list and a user's page.
    Users,
    /// Helping a user: unlock, reset the password, end sessions, remove factors.
    UserSupport,
    /// The review queue and its verdicts.
    Review,
    /// Everything else: accounts created, disabled, deleted or promoted; clients, groups and
    /// roles, policy, keys.
    Configuration,
    /// Access reviews: reading and deciding a campaign's items. `helpdesk`: the campaign names
    /// the console's helpdesk among its reviewers (admins always review). Opening one is
    /// `Configuration`.
    AccessReview { helpdesk: bool },
}

/// The console roles an account holds (roles of the built-in client `vigil`, directly or
/// through a group): `admin` everything; `helpdesk` users and the review queue; `auditor`
/// reads the reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleRoles {
    pub admin: bool,
    pub helpdesk: bool,
    pub auditor: bool,
}

impl ConsoleRoles {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut c = ConsoleRoles::default();
        for n in names {
            match n {
                "admin" => c.admin = true,
                "helpdesk" => c.helpdesk = true,
                "auditor" => c.auditor = true,
                _ => {}
            }
        }
        c
    }
    pub fn any(self) -> bool {
        self.admin || self.helpdesk || self.auditor
    }
    /// Whether these roles may read (`change` false) or change a part of the console.
    pub fn may(self, area: Area, change: bool) -> bool {
        let helpdesk = match area {
            Area::Reports | Area::Users => !change,
            Area::UserSupport | Area::Review => true,
            Area::AccessReview { helpdesk } => helpdesk,
            Area::Configuration => false,
        };
        let auditor = area == Area::Reports && !change;
        self.admin || (self.helpdesk && helpdesk) || (self.auditor && auditor)
    }
    /// The names held, for pages.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.admin, "admin"),
            (self.helpdesk, "helpdesk"),
            (self.auditor, "auditor"),
        ]
        .into_iter()
        .filter(|(h, _)| *h)
        .map(|(_, n)| n)
        .collect()
    }
}

/// Only an admin acts on another member of staff (an account holding a console role): a
/// helpdesk that could reset an admin's password, or take away an admin's role in an access
/// review, could become one or lock the admins out.
pub fn may_act_on(console: ConsoleRoles, target_is_staff: bool) -> bool {
    !target_is_staff || console.admin
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    /// The risk policy blocked it.
    Blocked(BlockReason),
    /// The account is compromised and nothing it can present here will do.
    Compromised,
    NotAdmin,
    /// A console role that does not cover this page or change (or a helpdesk acting on
    /// another member of staff).
    NotPermitted,
    /// The session cookie came from another browser than the one it was made for.
    WrongDevice,
    /// The session or token was ended (sign-out, containment, withdrawn consent).
    Revoked,
    /// The application admits only holders of one of its roles, and the user holds none.
    NoAccess,
    /// The account is at risk: privileged roles are withheld until it is remediated.
    AtRisk,
    /// A self-registered account whose address is not confirmed yet.
    Unverified,
    /// A self-registered account an administrator has not approved yet.
    HeldForReview,
}

impl Refusal {
    /// One sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Disabled => "this account is disabled; contact your administrator",
            Refusal::Blocked(r) => r.message(),
            Refusal::Compromised => {
                "this account was reported as compromised and has no second factor to prove it is you; \
                 contact your administrator"
            }
            Refusal::NotAdmin => {
                "This page is for administrators. Your account does not have the admin role."
            }
            Refusal::NotPermitted => {
                "Your console role does not cover this page or action. Ask an administrator."
            }
            Refusal::WrongDevice => "your session belongs to another browser; sign in again",
            Refusal::Revoked => "this session or token was ended",
            Refusal::NoAccess => {
                "this application admits only people who hold one of its roles, and your account \
                 holds none; ask your administrator for one"
            }
            Refusal::AtRisk => {
                "this account is at risk; privileged roles are withheld until it is remediated"
            }
            Refusal::Unverified => {
                "this account's e-mail address is not confirmed yet; open the link we mailed to it"
            }
            Refusal::HeldForReview => {
                "this account is waiting for an administrator to approve its registration"
            }
        }
    }
}

/// What must happen before the action may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Allow,
    /// Prove a second factor; with `phishing_resistant`, only a passkey will do.
    StepUp {
        phishing_resistant: bool,
    },
    /// Sign in again now; with `mfa`, with a second factor.
    Reauthenticate {
        mfa: bool,
    },
    /// Choose a new password before anything else.
    ChangePassword,
    /// Enrol a second factor first (an admin without one).
    EnrolFactor,
    Deny(Refusal),
}

/// A second factor, as the step-up checks ask [`Requirement::accepts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
    Passkey,
}

impl Requirement {
    /// Whether proving `f` satisfies this requirement (a step-up's factor check asks this).
    pub fn accepts(&self, f: Factor) -> bool {
        match self {
            Requirement::StepUp {
                phishing_resistant: true,
            } => f == Factor::Passkey,
            Requirement::StepUp { .. } | Requirement::Reauthenticate { mfa: true } => true,
            _ => false,
        }
    }

    /// The factors a step-up page may offer: only those [`accepts`](Self::accepts) and enrolled.
    pub fn offered(&self, enrolled: AvailableFactors) -> Vec<Factor> {
        [
            (Factor::Passkey, enrolled.webauthn),
            (Factor::Totp, enrolled.totp),
            (Factor::RecoveryCode, enrolled.recovery),
        ]
        .into_iter()
        .filter(|(f, has)| *has && self.accepts(*f))
        .map(|(f, _)| f)
        .collect()
    }
}

/// The account as enforcement sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccountView<'a> {
    pub user: &'a User,
    /// Usable (not suspended) factors this server can ask for.
    pub factors: AvailableFactors,
}

impl AccountView<'_> {
    pub fn risk(&self) -> AccountRisk {
        AccountRisk::parse(&self.user.risk_state)
    }
    fn has_factor(&self) -> bool {
        self.factors.webauthn || self.factors.totp
    }
}

/// The request around the action.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Now, in microseconds.
    pub now: i64,
    /// The device cookie of the browser asking (None for back-channel calls such as refresh).
    pub device_id: Option<&'a str>,
    /// This request's risk decision and level, when it was scored.
    pub decision: Option<(Decision, Level)>,
    /// The sign-in asks for a second factor anyway (re-authentication for a factor change).
    pub want_mfa: bool,
    /// Refresh: the session the token came from was ended.
    pub session_revoked: bool,
    /// Refresh: a third-party client whose consent was withdrawn.
    pub consent_withdrawn: bool,
    /// Codes and tokens for a client: what the user holds of its roles.
    pub roles: Option<RoleFacts>,
    /// The account's console roles (read for password sign-ins and console pages).
    pub console: ConsoleRoles,
    /// A console change aimed at an account that itself holds a console role; for
    /// provisioning, also a group that carries a console role.
    pub target_is_staff: bool,
    /// Provisioning: the presented token is the client's own (`client_credentials`) and
    /// carries the `scim` scope.
    pub scim_token: bool,
}

/// What a code or token for a client would carry of its roles (`flow/access.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleFacts {
    /// The client admits only holders of one of its roles, and the user holds none.
    pub lacks_required: bool,
    /// The token would carry a privileged role (scope `roles` and the user holds one).
    pub privileged: bool,
    /// The oldest sign-in that may receive a privileged role of this client, in seconds.
    pub privileged_max_age_secs: i64,
}

/// The level the session's last assessment gave (its `risk` claim).
fn session_level(s: &Session) -> Option<Level> {
    let claim: serde_json::Value = serde_json::from_str(s.risk.as_deref()?).ok()?;
    match claim.get("level")?.as_str()? {
        "high" => Some(Level::High),
        "medium" => Some(Level::Medium),
        "low" => Some(Level::Low),
        _ => None,
    }
}

/// What the session lacks for a privileged role: `None` when it may have one; else whether the
/// step-up must be phishing-resistant. A privileged role needs a second factor (a passkey when
/// the sign-in was high risk) proved no longer ago than the client's maximum age.
fn privileged_gap(s: &Session, r: &RoleFacts, now: i64) -> Option<bool> {
    let high = session_level(s) == Some(Level::High);
    let strong = if high {
        s.acr == ACR_PHR
    } else {
        at_least_mfa(s)
    };
    let recent = now - s.auth_time <= r.privileged_max_age_secs.saturating_mul(1_000_000);
    if strong && recent {
        None
    } else {
        Some(high)
    }
}

fn at_least_mfa(s: &Session) -> bool {
    acr_rank(&s.acr) >= acr_rank(ACR_MFA) && acr_rank(&s.acr) != usize::MAX
}

fn fresh(s: &Session, now: i64) -> bool {
    now - s.auth_time <= FRESH_SECS * 1_000_000
}

/// What a risk decision asks of a session that already exists.
fn decision_over_session(decision: Decision, s: &Session) -> Requirement {
    match decision {
        Decision::Allow => Requirement::Allow,
        Decision::Block { reason } => Requirement::Deny(Refusal::Blocked(reason)),
        Decision::StepUp { phishing_resistant } => {
            let has = if phishing_resistant {
                s.acr == ACR_PHR
            } else {
                at_least_mfa(s)
            };
            if has {
                Requirement::Allow
            } else {
                Requirement::StepUp { phishing_resistant }
            }
        }
    }
}

/// The enforcement decision. Pure: the caller loads the account (or the acting client), the
/// session and the facts.
pub fn require<'a>(
    subject: impl Into<Subject<'a>>,
    session: Option<&Session>,
    facts: &Facts<'_>,
    action: Action,
) -> Requirement {
    match subject.into() {
        Subject::Account(account) => require_of_account(account, session, facts, action),
        Subject::Client(client) => require_of_client(client, facts, action),
    }
}

/// A client acting for itself may only provision, and only when it is marked for it and its
/// token carries the `scim` scope. Staff accounts and groups that carry a console role are
/// de-provisioned but never changed: a provisioning client that could reset an admin's
/// password, rename them or join a console group would own the console.
fn require_of_client(client: ClientView<'_>, facts: &Facts<'_>, action: Action) -> Requirement {
    let Action::Provision(kind) = action else {
        return Requirement::Deny(Refusal::NotPermitted);
    };
    if !client.provisioning {
        return Requirement::Deny(Refusal::NotPermitted);
    }
    match kind {
        Provision::Token => Requirement::Allow,
        _ if !facts.scim_token => Requirement::Deny(Refusal::NotPermitted),
        Provision::Change if facts.target_is_staff => Requirement::Deny(Refusal::NotPermitted),
        Provision::Read | Provision::Change | Provision::Deprovision => Requirement::Allow,
    }
}

fn require_of_account(
    account: &AccountView<'_>,
    session: Option<&Session>,
    facts: &Facts<'_>,
    action: Action,
) -> Requirement {
    let user = account.user;
    if user.disabled {
        return Requirement::Deny(Refusal::Disabled);
    }
    // A self-registered account is nobody's until its address is confirmed and, when held,
    // an administrator approved it: no sign-in, session, token or reset.
    match user.registration.as_deref() {
        None => {}
        Some("held") => return Requirement::Deny(Refusal::HeldForReview),
        Some(_) => return Requirement::Deny(Refusal::Unverified),
    }
    if let Some(s) = session {
        if s.user_id != user.id {
            return Requirement::Deny(Refusal::Revoked);
        }
        // A browser session is bound to the browser that created it; a back-channel call
        // (refresh) has no browser.
        if action != Action::Refresh && s.device_id.as_deref() != facts.device_id {
            return Requirement::Deny(Refusal::WrongDevice);
        }
    }
    let risk = account.risk();
    match action {
        // People provision through the console, never through a client's SCIM token.
        Action::Provision(_) => Requirement::Deny(Refusal::NotPermitted),
        Action::SignIn(Method::Password) => {
            let mut need = match facts.decision {
                Some((Decision::Block { reason }, level)) => {
                    // "Always MFA" cannot block an account that has no factor yet at low risk.
                    if reason == BlockReason::NoSecondFactor && level == Level::Low {
                        Requirement::Allow
                    } else {
                        return Requirement::Deny(Refusal::Blocked(reason));
                    }
                }
                Some((Decision::StepUp { phishing_resistant }, _)) => {
                    Requirement::StepUp { phishing_resistant }
                }
                Some((Decision::Allow, _)) | None => Requirement::Allow,
            };
            // An account at risk with no factor to ask for (a reset by e-mail left it so) gets
            // in only by a sign-in the risk engine finds ordinary: its verified sign-in.
            let verified_without_factor = risk == AccountRisk::AtRisk
                && !account.has_factor()
                && matches!(facts.decision, Some((Decision::Allow, Level::Low)));
            let second_factor_anyway = (risk != AccountRisk::None && !verified_without_factor)
                || (facts.console.any() && account.has_factor())
                || (facts.want_mfa && account.has_factor());
            if need == Requirement::Allow && second_factor_anyway {
                need = Requirement::StepUp {
                    phishing_resistant: false,
                };
            }
            if let Requirement::StepUp { phishing_resistant } = need {
                let can = if phishing_resistant {
                    account.factors.webauthn
                } else {
                    account.factors.any()
                };
                if !can {
                    return Requirement::Deny(match risk {
                        AccountRisk::Compromised => Refusal::Compromised,
                        _ if phishing_resistant => {
                            Refusal::Blocked(BlockReason::NoPhishingResistantFactor)
                        }
                        _ => Refusal::Blocked(BlockReason::NoSecondFactor),
                    });
                }
            }
            need
        }
        Action::SignIn(Method::Passkey) => match facts.decision {
            Some((Decision::Block { reason }, _)) if reason != BlockReason::NoSecondFactor => {
                Requirement::Deny(Refusal::Blocked(reason))
            }
            _ => Requirement::Allow,
        },
        Action::UseSession => {
            let Some(s) = session else {
                return Requirement::Reauthenticate { mfa: false };
            };
            if user.must_change_password {
                return Requirement::ChangePassword;
            }
            if risk == AccountRisk::Compromised {
                return Requirement::Deny(Refusal::Compromised);
            }
            // At risk: a session that proved a second factor stands; a password-only one steps up.
            if risk == AccountRisk::AtRisk && !at_least_mfa(s) {
                return if account.has_factor() {
                    Requirement::StepUp {
                        phishing_resistant: false,
                    }
                } else {
                    Requirement::Deny(Refusal::Blocked(BlockReason::NoSecondFactor))
                };
            }
            let need = match facts.decision {
                // As at sign-in: "always MFA" cannot refuse a low-risk reuse by an account
                // that has no factor to ask for yet (the policy asks every account that has one).
                Some((
                    Decision::Block {
                        reason: BlockReason::NoSecondFactor,
                    },
                    Level::Low,
                )) => Requirement::Allow,
                Some((d, _)) => decision_over_session(d, s),
                None => Requirement::Allow,
            };
            match (need, facts.roles) {
                (Requirement::Allow, Some(r)) if r.lacks_required => {
                    Requirement::Deny(Refusal::NoAccess)
                }
                // A privileged role steps the session up first, when the account can; an
                // account at risk, or one without the factor, gets the token without it.
                (Requirement::Allow, Some(r)) if r.privileged && risk == AccountRisk::None => {
                    match privileged_gap(s, &r, facts.now) {
                        Some(true) if account.factors.webauthn => Requirement::StepUp {
                            phishing_resistant: true,
                        },
                        Some(false) if account.has_factor() => Requirement::StepUp {
                            phishing_resistant: false,
                        },
                        _ => Requirement::Allow,
                    }
                }
                (need, _) => need,
            }
        }
        Action::ReleasePrivileged => {
            let (Some(s), Some(r)) = (session, facts.roles) else {
                return Requirement::Deny(Refusal::Revoked);
            };
            if risk != AccountRisk::None {
                return Requirement::Deny(Refusal::AtRisk);
            }
            match privileged_gap(s, &r, facts.now) {
                None => Requirement::Allow,
                Some(phishing_resistant) => Requirement::StepUp { phishing_resistant },
            }
        }
        Action::Exchange => {
            if user.must_change_password || risk == AccountRisk::Compromised {
                return Requirement::Deny(Refusal::Revoked);
            }
            if facts.roles.is_some_and(|r| r.lacks_required) {
                return Requirement::Deny(Refusal::NoAccess);
            }
            Requirement::Allow
        }
        Action::Refresh => {
            if user.must_change_password
                || risk == AccountRisk::Compromised
                || facts.session_revoked
                || facts.consent_withdrawn
            {
                return Requirement::Deny(Refusal::Revoked);
            }
            if facts.roles.is_some_and(|r| r.lacks_required) {
                return Requirement::Deny(Refusal::NoAccess);
            }
            match session {
                // The refresh token's grant, seen as a session (its acr and auth_time).
                Some(s) if risk == AccountRisk::AtRisk && !at_least_mfa(s) => {
                    Requirement::Deny(Refusal::Revoked)
                }
                _ => Requirement::Allow,
            }
        }
        Action::ResetPassword => {
            let phishing_resistant = match facts.decision {
                Some((Decision::Block { reason }, _)) if reason != BlockReason::NoSecondFactor => {
                    return Requirement::Deny(Refusal::Blocked(reason))
                }
                Some((Decision::StepUp { phishing_resistant }, _)) => phishing_resistant,
                _ => false,
            };
            if account.has_factor() {
                if phishing_resistant && !account.factors.webauthn {
                    return Requirement::Deny(Refusal::Blocked(
                        BlockReason::NoPhishingResistantFactor,
                    ));
                }
                Requirement::StepUp { phishing_resistant }
            } else if risk == AccountRisk::Compromised {
                Requirement::Deny(Refusal::Compromised)
            } else if phishing_resistant {
                Requirement::Deny(Refusal::Blocked(BlockReason::NoPhishingResistantFactor))
            } else {
                Requirement::Allow
            }
        }
        Action::AccountPage | Action::ChangePassword | Action::ChangeFactor => {
            let Some(s) = session else {
                return Requirement::Reauthenticate { mfa: false };
            };
            if let Some((d, _)) = facts.decision {
                match decision_over_session(d, s) {
                    Requirement::Allow => {}
                    Requirement::Deny(r) => return Requirement::Deny(r),
                    _ => {
                        return Requirement::Reauthenticate {
                            mfa: account.has_factor(),
                        }
                    }
                }
            }
            match action {
                Action::ChangePassword => {
                    if account.has_factor() && !at_least_mfa(s) {
                        Requirement::Reauthenticate { mfa: true }
                    } else {
                        Requirement::Allow
                    }
                }
                _ if user.must_change_password => Requirement::ChangePassword,
                Action::ChangeFactor => {
                    let mfa = account.has_factor();
                    if !fresh(s, facts.now) || (mfa && !at_least_mfa(s)) {
                        Requirement::Reauthenticate { mfa }
                    } else {
                        Requirement::Allow
                    }
                }
                _ => Requirement::Allow,
            }
        }
        Action::AdminConsole(area) | Action::AdminChange(area) => {
            let Some(s) = session else {
                return Requirement::Reauthenticate { mfa: false };
            };
            let console = facts.console;
            if !console.any() {
                return Requirement::Deny(Refusal::NotAdmin);
            }
            let change = matches!(action, Action::AdminChange(_));
            // Only an admin acts on another member of staff: a helpdesk that could reset an
            // admin's password could become one.
            if !console.may(area, change) || (change && !may_act_on(console, facts.target_is_staff))
            {
                return Requirement::Deny(Refusal::NotPermitted);
            }
            if user.must_change_password {
                return Requirement::ChangePassword;
            }
            if !account.has_factor() {
                return Requirement::EnrolFactor;
            }
            if let Some((Decision::Block { reason }, _)) = facts.decision {
                return Requirement::Deny(Refusal::Blocked(reason));
            }
            let stepped_up_decision = matches!(
                facts.decision.map(|(d, _)| decision_over_session(d, s)),
                Some(Requirement::StepUp { .. })
            );
            if !at_least_mfa(s) || stepped_up_decision || (change && !fresh(s, facts.now)) {
                return Requirement::Reauthenticate { mfa: true };
            }
            Requirement::Allow
        }
    }
}

/// The account's usable factors that this server can ask for (passkeys need a domain name).
pub async fn factors_of(
    svc: &super::Services,
    user_id: &str,
) -> Result<AvailableFactors, super::FlowError> {
    let uid = user_id.to_owned();
    let e = svc
        .db
        .run(move |c| crate::store::factors::enrolled(c, &uid))
        .await?;
    Ok(available(svc, e))
}

/// The enrolled factors this server can ask for (for a caller that read them with other rows).
pub fn available(svc: &super::Services, e: crate::store::factors::Enrolled) -> AvailableFactors {
    AvailableFactors {
        webauthn: e.webauthn && svc.passkeys.is_some(),
        totp: e.totp,
        recovery: e.recovery,
    }
}

/// [`require`] with the account's factors loaded: what the web layer and the token endpoint
/// call.
pub async fn check(
    svc: &super::Services,
    user: &User,
    session: Option<&Session>,
    facts: &Facts<'_>,
    action: Action,
) -> Result<Requirement, super::FlowError> {
    let factors = factors_of(svc, &user.id).await?;
    Ok(require(
        &AccountView { user, factors },
        session,
        facts,
        action,
    ))
}

/// [`check`] for a browser session on the user's own or the admin pages. When the request
/// comes from another network than the one the session was made on, it is re-scored first:
/// a session is not a blank cheque, here as at `/authorize`.
pub async fn check_session(
    svc: &super::Services,
    now: crate::clock::Timestamp,
    session: &Session,
    user: &User,
    ctx: &super::RequestContext,
    action: Action,
    target_is_staff: bool,
) -> Result<Requirement, super::FlowError> {
    let moved = session.ip.as_deref() != Some(ctx.ip.to_string().as_str());
    // A re-score reads the account's factors with the verdict; otherwise read them here.
    let (decision, factors) = if moved {
        let v = super::risk::evaluate(svc, now, &user.id, ctx, &user.username, None, None).await?;
        (Some((v.decision, v.assessment.level)), v.available)
    } else {
        (None, factors_of(svc, &user.id).await?)
    };
    let console = match action {
        Action::AdminConsole(_) | Action::AdminChange(_) => {
            super::access::console(svc, &user.id).await?
        }
        _ => ConsoleRoles::default(),
    };
    let facts = Facts {
        now: now.micros(),
        device_id: ctx.device_id.as_deref(),
        decision,
        console,
        target_is_staff,
        ..Facts::default()
    };
    let need = require(
        &AccountView { user, factors },
        Some(session),
        &facts,
        action,
    );
    if moved && need != Requirement::Allow {
        let (auditor, uid, sid, ip) = (
            svc.auditor.clone(),
            user.id.clone(),
            session.id.clone(),
            ctx.ip,
        );
        let what = format!("{need:?}");
        svc.db
            .run(move |c| {
                auditor.record(
                    c,
                    now,
                    crate::audit::AuditEvent::new("session.reassessed")
                        .actor(uid)
                        .target(sid)
                        .ip(ip)
                        .details(serde_json::json!({ "requirement": what })),
                )
            })
            .await?;
    }
    Ok(need)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::ACR_PWD;

    fn user(risk: &str) -> User {
        User {
            id: "u".into(),
            username: "ann".into(),
            email: "a@example.com".into(),
            name: String::new(),
            password_hash: String::new(),
            disabled: false,
            created_at: 0,
            updated_at: 0,
            must_change_password: false,
            risk_state: risk.into(),
            risk_state_at: Some(100),
            email_verified: false,
            registration: None,
        }
    }

    fn session(acr: &str, auth_time: i64) -> Session {
        Session {
            id: "s".into(),
            token_hash: String::new(),
            user_id: "u".into(),
            created_at: auth_time,
            last_seen_at: auth_time,
            idle_expires_at: i64::MAX,
            expires_at: i64::MAX,
            auth_time,
            acr: acr.into(),
            amr: "[]".into(),
            device_id: Some("dev".into()),
            ip: None,
            user_agent: None,
            revoked_at: None,
            risk: None,
        }
    }

    const TOTP: AvailableFactors = AvailableFactors {
        webauthn: false,
        totp: true,
        recovery: true,
    };
    const NONE: AvailableFactors = AvailableFactors {
        webauthn: false,
        totp: false,
        recovery: false,
    };

    fn facts(now: i64) -> Facts<'static> {
        Facts {
            now,
            device_id: Some("dev"),
            ..Facts::default()
        }
    }

    fn step(pr: bool) -> Requirement {
        Requirement::StepUp {
            phishing_resistant: pr,
        }
    }

    #[test]
    fn password_sign_in_rows() {
        let u = user("none");
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        let mut f = facts(0);
        f.decision = Some((Decision::Allow, Level::Low));
        let pw = Action::SignIn(Method::Password);
        assert_eq!(require(&a, None, &f, pw), Requirement::Allow);
        f.decision = Some((step(true).as_decision(), Level::High));
        assert_eq!(
            require(&a, None, &f, pw),
            Requirement::Deny(Refusal::Blocked(BlockReason::NoPhishingResistantFactor)),
            "a passkey is needed and TOTP will not do"
        );
        // At risk or compromised: every password sign-in steps up.
        for r in ["at_risk", "compromised"] {
            let u = user(r);
            let a = AccountView {
                user: &u,
                factors: TOTP,
            };
            f.decision = Some((Decision::Allow, Level::Low));
            assert_eq!(require(&a, None, &f, pw), step(false), "{r}");
        }
        let u = user("compromised");
        let a = AccountView {
            user: &u,
            factors: NONE,
        };
        assert_eq!(
            require(&a, None, &f, pw),
            Requirement::Deny(Refusal::Compromised)
        );
    }

    #[test]
    fn an_account_at_risk_without_a_factor_gets_in_only_by_an_ordinary_sign_in() {
        let u = user("at_risk");
        let a = AccountView {
            user: &u,
            factors: NONE,
        };
        let pw = Action::SignIn(Method::Password);
        let mut f = facts(0);
        f.decision = Some((Decision::Allow, Level::Low));
        assert_eq!(require(&a, None, &f, pw), Requirement::Allow);
        for level in [Level::Medium, Level::High] {
            f.decision = Some((Decision::Allow, level));
            assert_eq!(
                require(&a, None, &f, pw),
                Requirement::Deny(Refusal::Blocked(BlockReason::NoSecondFactor)),
                "{level:?}"
            );
        }
        f.decision = Some((step(false).as_decision(), Level::Medium));
        assert_eq!(
            require(&a, None, &f, pw),
            Requirement::Deny(Refusal::Blocked(BlockReason::NoSecondFactor))
        );
    }

    #[test]
    fn password_reset_rows() {
        let reset = Action::ResetPassword;
        let mut f = facts(0);
        f.decision = Some((Decision::Allow, Level::Low));
        // A factor enrolled: the mailbox alone never resets the password.
        for r in ["none", "at_risk", "compromised"] {
            let u = user(r);
            let a = AccountView {
                user: &u,
                factors: TOTP,
            };
            assert_eq!(require(&a, None, &f, reset), step(false), "{r}");
        }
        let u = user("none");
        let with_passkey = AccountView {
            user: &u,
            factors: AvailableFactors {
                webauthn: true,
                ..TOTP
            },
        };
        let without = AccountView {
            user: &u,
            factors: NONE,
        };
        assert_eq!(require(&without, None, &f, reset), Requirement::Allow);
        f.decision = Some((step(false).as_decision(), Level::Medium));
        assert_eq!(require(&without, None, &f, reset), Requirement::Allow);
        f.decision = Some((step(true).as_decision(), Level::High));
        assert_eq!(require(&with_passkey, None, &f, reset), step(true));
        assert_eq!(
            require(&without, None, &f, reset),
            Requirement::Deny(Refusal::Blocked(BlockReason::NoPhishingResistantFactor))
        );
        f.decision = Some((
            Decision::Block {
                reason: BlockReason::DenyListed,
            },
            Level::High,
        ));
        assert_eq!(
            require(&with_passkey, None, &f, reset),
            Requirement::Deny(Refusal::Blocked(BlockReason::DenyListed))
        );
        let c = user("compromised");
        let compromised = AccountView {
            user: &c,
            factors: NONE,
        };
        f.decision = Some((Decision::Allow, Level::Low));
        assert_eq!(
            require(&compromised, None, &f, reset),
            Requirement::Deny(Refusal::Compromised)
        );
        let mut d = user("none");
        d.disabled = true;
        let disabled = AccountView {
            user: &d,
            factors: TOTP,
        };
        assert_eq!(
            require(&disabled, None, &f, reset),
            Requirement::Deny(Refusal::Disabled)
        );
    }

    #[test]
    fn phishing_resistant_step_up_accepts_only_passkeys() {
        let r = step(true);
        assert!(r.accepts(Factor::Passkey));
        assert!(!r.accepts(Factor::Totp));
        assert!(!r.accepts(Factor::RecoveryCode));
        let all = AvailableFactors {
            webauthn: true,
            totp: true,
            recovery: true,
        };
        assert_eq!(r.offered(all), vec![Factor::Passkey]);
        assert_eq!(step(false).offered(all).len(), 3);
    }

    #[test]
    fn sessions_are_bound_to_their_device() {
        let u = user("none");
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        let s = session(ACR_MFA, 0);
        let mut f = facts(0);
        f.device_id = Some("other");
        for action in [
            Action::UseSession,
            Action::AccountPage,
            Action::AdminConsole(Area::Reports),
            Action::ChangeFactor,
        ] {
            assert_eq!(
                require(&a, Some(&s), &f, action),
                Requirement::Deny(Refusal::WrongDevice)
            );
        }
        assert_eq!(
            require(&a, Some(&s), &f, Action::Refresh),
            Requirement::Allow
        );
    }

    #[test]
    fn factor_changes_need_a_fresh_mfa_sign_in() {
        let u = user("none");
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        let now = 10_000_000_000;
        let f = facts(now);
        let pwd = session(ACR_PWD, now);
        assert_eq!(
            require(&a, Some(&pwd), &f, Action::ChangeFactor),
            Requirement::Reauthenticate { mfa: true }
        );
        let stale = session(ACR_MFA, now - (FRESH_SECS + 1) * 1_000_000);
        assert_eq!(
            require(&a, Some(&stale), &f, Action::ChangeFactor),
            Requirement::Reauthenticate { mfa: true }
        );
        let ok = session(ACR_MFA, now - 1_000_000);
        assert_eq!(
            require(&a, Some(&ok), &f, Action::ChangeFactor),
            Requirement::Allow
        );
        // The first factor: the password again, recently.
        let a = AccountView {
            user: &u,
            factors: NONE,
        };
        assert_eq!(
            require(&a, Some(&pwd), &f, Action::ChangeFactor),
            Requirement::Allow
        );
        assert_eq!(
            require(&a, Some(&stale), &f, Action::ChangeFactor),
            Requirement::Reauthenticate { mfa: false }
        );
    }

    #[test]
    fn refresh_is_refused_after_containment() {
        let mut u = user("none");
        let s = session(ACR_PWD, 0);
        let f = facts(0);
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        assert_eq!(
            require(&a, Some(&s), &f, Action::Refresh),
            Requirement::Allow
        );
        let mut revoked = f;
        revoked.session_revoked = true;
        assert_eq!(
            require(&a, Some(&s), &revoked, Action::Refresh),
            Requirement::Deny(Refusal::Revoked)
        );
        u.must_change_password = true;
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        assert_eq!(
            require(&a, Some(&s), &f, Action::Refresh),
            Requirement::Deny(Refusal::Revoked)
        );
        let u = user("compromised");
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        assert_eq!(
            require(&a, Some(&s), &f, Action::Refresh),
            Requirement::Deny(Refusal::Revoked)
        );
    }

    #[test]
    fn admins_need_a_factor_and_fresh_changes() {
        let u = user("none");
        let now = 10_000_000_000;
        let f = Facts {
            console: ConsoleRoles {
                admin: true,
                ..ConsoleRoles::default()
            },
            ..facts(now)
        };
        let a = AccountView {
            user: &u,
            factors: NONE,
        };
        let pwd = session(ACR_PWD, now);
        assert_eq!(
            require(&a, Some(&pwd), &f, Action::AdminConsole(Area::Users)),
            Requirement::EnrolFactor
        );
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        assert_eq!(
            require(&a, Some(&pwd), &f, Action::AdminConsole(Area::Users)),
            Requirement::Reauthenticate { mfa: true }
        );
        let stale = session(ACR_MFA, now - (FRESH_SECS + 1) * 1_000_000);
        assert_eq!(
            require(
                &a,
                Some(&stale),
                &f,
                Action::AdminConsole(Area::Configuration)
            ),
            Requirement::Allow
        );
        assert_eq!(
            require(
                &a,
                Some(&stale),
                &f,
                Action::AdminChange(Area::Configuration)
            ),
            Requirement::Reauthenticate { mfa: true }
        );
    }

    /// Delegated administration: each console role sees exactly its part; helpdesk changes
    /// stop at another member of staff; nobody without a console role gets in.
    #[test]
    fn console_roles_divide_the_console() {
        let u = user("none");
        let now = 10_000_000_000;
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        let s = session(ACR_MFA, now);
        let as_role = |c: ConsoleRoles| Facts {
            console: c,
            ..facts(now)
        };
        let helpdesk = ConsoleRoles {
            helpdesk: true,
            ..ConsoleRoles::default()
        };
        let auditor = ConsoleRoles {
            auditor: true,
            ..ConsoleRoles::default()
        };
        let none = ConsoleRoles::default();
        use Area::*;
        let table = [
            // area, change, helpdesk may, auditor may
            (Reports, false, true, true),
            (Reports, true, false, false),
            (Users, false, true, false),
            (Users, true, false, false),
            (UserSupport, true, true, false),
            (Review, false, true, false),
            (Review, true, true, false),
            (Configuration, false, false, false),
            (Configuration, true, false, false),
        ];
        for (area, change, h, au) in table {
            let action = if change {
                Action::AdminChange(area)
            } else {
                Action::AdminConsole(area)
            };
            for (roles, may) in [(helpdesk, h), (auditor, au)] {
                let got = require(&a, Some(&s), &as_role(roles), action);
                let want = if may {
                    Requirement::Allow
                } else {
                    Requirement::Deny(Refusal::NotPermitted)
                };
                assert_eq!(got, want, "{roles:?} {action:?}");
            }
            assert_eq!(
                require(&a, Some(&s), &as_role(none), action),
                Requirement::Deny(Refusal::NotAdmin)
            );
        }
        let mut on_staff = as_role(helpdesk);
        on_staff.target_is_staff = true;
        assert_eq!(
            require(&a, Some(&s), &on_staff, Action::AdminChange(UserSupport)),
            Requirement::Deny(Refusal::NotPermitted),
            "a helpdesk cannot reset an admin's password"
        );
    }

    #[test]
    fn always_mfa_lets_a_factorless_account_reuse_its_session_at_low_risk() {
        // "Always MFA" (low = step_up) turns into Block(NoSecondFactor) for an account without
        // a factor; at low risk sign-in lets it in, and so must the SSO reuse that follows.
        let u = user("none");
        let a = AccountView {
            user: &u,
            factors: NONE,
        };
        let no_factor = Decision::Block {
            reason: BlockReason::NoSecondFactor,
        };
        let mut f = facts(1000);
        f.decision = Some((no_factor, Level::Low));
        assert_eq!(
            require(&a, None, &f, Action::SignIn(Method::Password)),
            Requirement::Allow
        );
        assert_eq!(
            require(&a, Some(&session(ACR_PWD, 500)), &f, Action::UseSession),
            Requirement::Allow
        );
        f.decision = Some((no_factor, Level::Medium));
        assert_eq!(
            require(&a, Some(&session(ACR_PWD, 500)), &f, Action::UseSession),
            Requirement::Deny(Refusal::Blocked(BlockReason::NoSecondFactor)),
            "above low risk the missing factor still refuses"
        );
    }

    #[test]
    fn at_risk_sessions_step_up_unless_they_proved_a_second_factor() {
        let u = user("at_risk");
        let a = AccountView {
            user: &u,
            factors: TOTP,
        };
        let f = facts(1000);
        assert_eq!(
            require(&a, Some(&session(ACR_PWD, 500)), &f, Action::UseSession),
            step(false)
        );
        assert_eq!(
            require(&a, Some(&session(ACR_PWD, 500)), &f, Action::Refresh),
            Requirement::Deny(Refusal::Revoked),
            "a password-only refresh family of an account at risk ends"
        );
        assert_eq!(
            require(&a, Some(&session(ACR_MFA, 500)), &f, Action::UseSession),
            Requirement::Allow
        );
    }

    impl Requirement {
        fn as_decision(self) -> Decision {
            match self {
                Requirement::StepUp { phishing_resistant } => {
                    Decision::StepUp { phishing_resistant }
                }
                _ => Decision::Allow,
            }
        }
    }

    /// Roles under risk: a client that admits only its roles refuses a user who holds none (at
    /// every path that issues: a code, an exchange, a refresh); a privileged role steps a weak or
    /// old session up, and is never released to an account at risk.
    #[test]
    fn roles_under_risk() {
        let now = 10_000 * 1_000_000;
        let ann = user("none");
        let acct = AccountView {
            user: &ann,
            factors: TOTP,
        };
        let lacking = RoleFacts {
            lacks_required: true,
            privileged: false,
            privileged_max_age_secs: 3600,
        };
        let privileged = RoleFacts {
            lacks_required: false,
            privileged: true,
            privileged_max_age_secs: 3600,
        };
        let with = |r: RoleFacts| Facts {
            roles: Some(r),
            ..facts(now)
        };
        let mfa_now = session(ACR_MFA, now - 10 * 1_000_000);
        let pwd_now = session(ACR_PWD, now - 10 * 1_000_000);
        let mfa_old = session(ACR_MFA, now - 3601 * 1_000_000);
        for action in [Action::UseSession, Action::Exchange, Action::Refresh] {
            assert_eq!(
                require(&acct, Some(&mfa_now), &with(lacking), action),
                Requirement::Deny(Refusal::NoAccess),
                "{action:?}"
            );
        }
        assert_eq!(
            require(&acct, Some(&pwd_now), &with(privileged), Action::UseSession),
            step(false)
        );
        assert_eq!(
            require(&acct, Some(&mfa_old), &with(privileged), Action::UseSession),
            step(false)
        );
        assert_eq!(
            require(&acct, Some(&mfa_now), &with(privileged), Action::UseSession),
            Requirement::Allow
        );
        // After a high-risk sign-in only a passkey will do; without one, no step-up is asked
        // (the token comes without the role).
        let mut high = mfa_now.clone();
        high.risk = Some(r#"{"score":80,"level":"high"}"#.into());
        assert_eq!(
            require(&acct, Some(&high), &with(privileged), Action::UseSession),
            Requirement::Allow
        );
        assert_ne!(
            require(
                &acct,
                Some(&high),
                &with(privileged),
                Action::ReleasePrivileged
            ),
            Requirement::Allow
        );
        let keyed = AccountView {
            user: &ann,
            factors: AvailableFactors {
                webauthn: true,
                ..TOTP
            },
        };
        assert_eq!(
            require(&keyed, Some(&high), &with(privileged), Action::UseSession),
            step(true)
        );
        // Release at issuance: recent mfa yes; old or password-only no; at risk never.
        assert_eq!(
            require(
                &acct,
                Some(&mfa_now),
                &with(privileged),
                Action::ReleasePrivileged
            ),
            Requirement::Allow
        );
        for s in [&mfa_old, &pwd_now] {
            assert_ne!(
                require(&acct, Some(s), &with(privileged), Action::ReleasePrivileged),
                Requirement::Allow
            );
        }
        let risky = user("at_risk");
        let at_risk = AccountView {
            user: &risky,
            factors: TOTP,
        };
        assert_eq!(
            require(
                &at_risk,
                Some(&mfa_now),
                &with(privileged),
                Action::ReleasePrivileged
            ),
            Requirement::Deny(Refusal::AtRisk)
        );
        assert_eq!(
            require(
                &at_risk,
                Some(&mfa_now),
                &with(privileged),
                Action::UseSession
            ),
            Requirement::Allow,
            "no step-up can earn it: the session goes on without the role"
        );
    }

    #[test]
    fn only_a_provisioning_client_with_its_scim_token_provisions_and_never_the_console() {
        let hr = ClientView {
            id: "hr",
            provisioning: true,
        };
        let other = ClientView {
            id: "reports",
            provisioning: false,
        };
        let scim = Facts {
            scim_token: true,
            ..Facts::default()
        };
        let staff = Facts {
            scim_token: true,
            target_is_staff: true,
            ..Facts::default()
        };
        let deny = Requirement::Deny(Refusal::NotPermitted);
        let p = |k| Action::Provision(k);
        assert_eq!(
            require(hr, None, &Facts::default(), p(Provision::Token)),
            Requirement::Allow
        );
        assert_eq!(
            require(other, None, &Facts::default(), p(Provision::Token)),
            deny
        );
        for k in [Provision::Read, Provision::Change, Provision::Deprovision] {
            assert_eq!(require(hr, None, &scim, p(k)), Requirement::Allow, "{k:?}");
            assert_eq!(require(other, None, &scim, p(k)), deny, "{k:?}");
            assert_eq!(
                require(hr, None, &Facts::default(), p(k)),
                deny,
                "no scim scope: {k:?}"
            );
        }
        assert_eq!(require(hr, None, &staff, p(Provision::Change)), deny);
        assert_eq!(
            require(hr, None, &staff, p(Provision::Deprovision)),
            Requirement::Allow
        );
        assert_eq!(
            require(hr, None, &scim, Action::UseSession),
            deny,
            "a client has no session"
        );
        let u = user("none");
        let acct = AccountView {
            user: &u,
            factors: TOTP,
        };
        assert_eq!(
            require(&acct, None, &scim, p(Provision::Read)),
            deny,
            "people use the console"
        );
    }
}
