//! Least privilege from what is really used: pure functions from a [`Snapshot`] of who holds
//! what (users, groups, grants, and when each was last used) to [`Finding`]s an admin can check.
//! No HTTP, no database, no wall clock — like `src/risk/`: `vigil access report` builds the
//! snapshot from the live database, `vigil access evaluate` from a synthetic organisation with
//! planted excess (`synth.rs`), and access reviews take their recommendations from here.
//!
//! ```text
//!  Snapshot ──► unused grants      (a direct grant not issued in a token for N days)
//!           ──► peer outliers      (a direct grant few members of the user's groups hold)
//!           ──► dormant accounts   (no verified sign-in and no token for N days)
//!           ──► candidate roles    (greedy tiling of the user × grant matrix: grants many
//!                                   users hold directly, proposed as one grant to a group)
//! ```
//!
//! Only **direct** grants are judged per user: a grant through a group is held by every peer by
//! construction, and is reviewed where it is made (the group).

pub mod synth;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// A (client, role) pair: one column of the user × grant matrix.
pub type GrantKey = (String, String);

/// One account as the miners see it (times in Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: i64,
    /// The last verified sign-in (a session created with every factor policy asked).
    pub last_signin_at: Option<i64>,
    /// The last token issued to the account for any client (code exchange or refresh).
    pub last_active_at: Option<i64>,
    /// The names of the groups the account is a member of.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A role held directly or granted to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The holder: a username (direct grant) or a group name (`to_group`).
    pub holder: String,
    #[serde(default)]
    pub to_group: bool,
    pub client_id: String,
    pub role: String,
    #[serde(default)]
    pub privileged: bool,
    pub granted_at: i64,
}

/// When a user last received a role in a token to its client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    pub username: String,
    pub client_id: String,
    pub role: String,
    pub last_used_at: i64,
}

/// Everything the miners read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub now: i64,
    pub accounts: Vec<Account>,
    pub grants: Vec<Grant>,
    pub uses: Vec<Use>,
}

/// The knobs; the defaults are what `vigil access report` uses (README "Least privilege").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// A direct grant not used for this long is unused; an account without a sign-in or a
    /// token for this long is dormant.
    pub unused_days: u32,
    /// Fewer peers than this and the peer rate says nothing.
    pub min_peers: usize,
    /// A direct grant held by fewer than this share of the peers (in every group of the user)
    /// is an outlier.
    pub outlier_rate: f64,
    /// An unused grant that at least this share of the peers hold is kept (a seasonal task,
    /// not excess).
    pub common_rate: f64,
    /// A group-based grant is proposed when at least this share of the group's members hold
    /// the role directly.
    pub role_coverage: f64,
    /// ... and at least this many of them.
    pub role_min_users: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            unused_days: 90,
            min_peers: 5,
            outlier_rate: 0.15,
            common_rate: 0.50,
            role_coverage: 0.80,
            role_min_users: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    UnusedGrant,
    PeerOutlier,
    DormantAccount,
    CandidateRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Remove,
    Disable,
    Replace,
    Keep,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnusedGrant => "unused_grant",
            Kind::PeerOutlier => "peer_outlier",
            Kind::DormantAccount => "dormant_account",
            Kind::CandidateRole => "candidate_role",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Disable => "disable",
            Action::Replace => "replace",
            Action::Keep => "keep",
        }
    }
}

/// One recommendation with its evidence in words. The JSON form (`vigil access report --json`)
/// is the contract: `kind`, `action`, `username`, `client_id`, `role`, `evidence`, null where a
/// field does not apply; `group` and `replaces` for candidate roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    pub action: Action,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub role: Option<String>,
    pub evidence: String,
    /// Candidate roles: the group to grant to (an existing one, or a proposed `new:` one).
    pub group: Option<String>,
    /// Candidate roles: the members it would be granted to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Candidate roles: how many direct grants it makes redundant.
    pub replaces: Option<usize>,
    /// Candidate roles: members of the group who would gain a role they do not hold today.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
}

impl Finding {
    fn grant(kind: Kind, action: Action, user: &str, g: &GrantKey, evidence: String) -> Self {
        Finding {
            kind,
            action,
            username: Some(user.to_owned()),
            client_id: Some(g.0.clone()),
            role: Some(g.1.clone()),
            evidence,
            group: None,
            members: Vec::new(),
            replaces: None,
            exceptions: Vec::new(),
        }
    }
}

/// The best peer evidence for one direct grant: the group of the user in which the most
/// other members hold it.
#[derive(Debug, Clone, PartialEq)]
struct PeerRate {
    group: String,
    holders: usize,
    peers: usize,
}

impl PeerRate {
    fn rate(&self) -> f64 {
        if self.peers == 0 {
            0.0
        } else {
            self.holders as f64 / self.peers as f64
        }
    }
    fn words(&self) -> String {
        format!(
            "{} of {} peers in {} hold it",
            self.holders, self.peers, self.group
        )
    }
}

/// The matrix, indexed once.
struct Index<'a> {
    snap: &'a Snapshot,
    /// Direct grants per user.
    direct: BTreeMap<&'a str, BTreeSet<GrantKey>>,
    /// Effective grants (direct or through a group) per user.
    effective: HashMap<&'a str, HashSet<GrantKey>>,
    /// Members per group.
    members: BTreeMap<&'a str, Vec<&'a str>>,
    /// Per group: how many members hold each grant (effectively).
    held_in: HashMap<&'a str, HashMap<GrantKey, usize>>,
    /// Groups of more than half the accounts (`all-staff`): everyone's peers, so no one's.
    broad: HashSet<&'a str>,
    /// Grants made to each group.
    group_grants: HashMap<&'a str, HashSet<GrantKey>>,
    last_use: HashMap<(&'a str, &'a str, &'a str), i64>,
    granted_at: HashMap<(&'a str, &'a str, &'a str), i64>,
    accounts: HashMap<&'a str, &'a Account>,
}

impl<'a> Index<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let mut direct: BTreeMap<&str, BTreeSet<GrantKey>> = BTreeMap::new();
        let mut group_grants: HashMap<&str, HashSet<GrantKey>> = HashMap::new();
        let mut granted_at = HashMap::new();
        for g in &snap.grants {
            let key = (g.client_id.clone(), g.role.clone());
            if g.to_group {
                group_grants.entry(&g.holder).or_default().insert(key);
            } else {
                direct.entry(&g.holder).or_default().insert(key);
                granted_at.insert(
                    (g.holder.as_str(), g.client_id.as_str(), g.role.as_str()),
                    g.granted_at,
                );
            }
        }
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut effective: HashMap<&str, HashSet<GrantKey>> = HashMap::new();
        let mut accounts = HashMap::new();
        for a in &snap.accounts {
            accounts.insert(a.username.as_str(), a);
            let e = effective.entry(&a.username).or_default();
            if let Some(d) = direct.get(a.username.as_str()) {
                e.extend(d.iter().cloned());
            }
            for g in &a.groups {
                members.entry(g).or_default().push(&a.username);
                if let Some(gg) = group_grants.get(g.as_str()) {
                    e.extend(gg.iter().cloned());
                }
            }
        }
        let mut held_in: HashMap<&str, HashMap<GrantKey, usize>> = HashMap::new();
        for (g, ms) in &members {
            let counts = held_in.entry(g).or_default();
            for m in ms {
                if let Some(e) = effective.get(m) {
                    for k in e {
                        *counts.entry(k.clone()).or_default() += 1;
                    }
                }
            }
        }
        let broad = members
            .iter()
            .filter(|(_, ms)| ms.len() * 2 > snap.accounts.len())
            .map(|(g, _)| *g)
            .collect();
        let last_use = snap
            .uses
            .iter()
            .map(|u| {
                (
                    (u.username.as_str(), u.client_id.as_str(), u.role.as_str()),
                    u.last_used_at,
                )
            })
            .collect();
        Index {
            snap,
            direct,
            effective,
            members,
            held_in,
            broad,
            group_grants,
            last_use,
            granted_at,
            accounts,
        }
    }

    /// The group of `user` in which the largest share of the other members hold `g`. A group
    /// of more than half of all accounts is left out: its rate is the population's, and a
    /// grant common in one department would look normal for everyone there.
    fn peer_rate(&self, user: &str, g: &GrantKey) -> Option<PeerRate> {
        let a = self.accounts.get(user)?;
        let mut best: Option<PeerRate> = None;
        for group in a.groups.iter().filter(|g| !self.broad.contains(g.as_str())) {
            let n = self.members.get(group.as_str()).map_or(0, Vec::len);
            let held = self
                .held_in
                .get(group.as_str())
                .and_then(|c| c.get(g))
                .copied()
                .unwrap_or(0);
            // The user holds it: leave them out of both counts.
            let pr = PeerRate {
                group: group.clone(),
                holders: held.saturating_sub(1),
                peers: n.saturating_sub(1),
            };
            if best.as_ref().is_none_or(|b| {
                pr.rate() > b.rate() || (pr.rate() == b.rate() && pr.peers > b.peers)
            }) {
                best = Some(pr);
            }
        }
        best
    }
}

fn days(secs: i64) -> i64 {
    secs.max(0) / DAY
}

/// Every finding for the snapshot, in a stable order (kind, then username, client, role).
pub fn analyse(snap: &Snapshot, p: &Params) -> Vec<Finding> {
    let ix = Index::new(snap);
    let mut out = grant_findings(&ix, p);
    out.extend(dormant_accounts(snap, p));
    out.extend(candidate_roles(&ix, p));
    out.sort_by(|a, b| {
        (a.kind, &a.username, &a.client_id, &a.role, &a.group).cmp(&(
            b.kind,
            &b.username,
            &b.client_id,
            &b.role,
            &b.group,
        ))
    });
    out
}

/// Unused grants and peer outliers: each direct grant of an enabled account judged once.
fn grant_findings(ix: &Index<'_>, p: &Params) -> Vec<Finding> {
    let now = ix.snap.now;
    let cutoff = now - i64::from(p.unused_days) * DAY;
    let mut out = Vec::new();
    for (user, grants) in &ix.direct {
        let Some(acct) = ix.accounts.get(user) else {
            continue;
        };
        // A dormant account's grants are all idle: the account is the finding.
        if acct.disabled || is_dormant(acct, cutoff) {
            continue;
        }
        for g in grants {
            let k = (*user, g.0.as_str(), g.1.as_str());
            let used = ix.last_use.get(&k).copied();
            let granted = ix.granted_at.get(&k).copied().unwrap_or(now);
            let peers = ix.peer_rate(user, g);
            let judged = peers.as_ref().filter(|r| r.peers >= p.min_peers);
            let unused = granted < cutoff && used.is_none_or(|t| t < cutoff);
            let usage = match used {
                Some(t) => format!("not used for {} days", days(now - t)),
                None => format!(
                    "never used in the {} days since it was granted",
                    days(now - granted)
                ),
            };
            if unused {
                let (action, why) = match judged {
                    Some(r) if r.rate() >= p.common_rate => (
                        Action::Keep,
                        format!("{usage}, but {} (a periodic task, not excess)", r.words()),
                    ),
                    Some(r) => (Action::Remove, format!("{usage}; {}", r.words())),
                    None => (Action::Remove, format!("{usage}; no group to compare with")),
                };
                out.push(Finding::grant(Kind::UnusedGrant, action, user, g, why));
            } else if let Some(r) = judged.filter(|r| r.rate() < p.outlier_rate) {
                let when = match used {
                    Some(t) => format!("used {} days ago", days(now - t)),
                    None => "not used yet".to_owned(),
                };
                out.push(Finding::grant(
                    Kind::PeerOutlier,
                    Action::Remove,
                    user,
                    g,
                    format!("only {}; {when}", r.words()),
                ));
            }
        }
    }
    out
}

fn is_dormant(a: &Account, cutoff: i64) -> bool {
    a.created_at < cutoff
        && a.last_signin_at
            .max(a.last_active_at)
            .is_none_or(|t| t < cutoff)
}

/// Enabled accounts with neither a verified sign-in nor a token for `unused_days`.
fn dormant_accounts(snap: &Snapshot, p: &Params) -> Vec<Finding> {
    let cutoff = snap.now - i64::from(p.unused_days) * DAY;
    snap.accounts
        .iter()
        .filter(|a| !a.disabled && is_dormant(a, cutoff))
        .map(|a| {
            let evidence = match (a.last_signin_at, a.last_active_at) {
                (None, None) => format!(
                    "never signed in since the account was made {} days ago",
                    days(snap.now - a.created_at)
                ),
                (s, t) => {
                    let part = |what: &str, v: Option<i64>| match v {
                        Some(v) => format!("{what} {} days ago", days(snap.now - v)),
                        None => format!("no {what}"),
                    };
                    format!(
                        "{}; {}",
                        part("last verified sign-in", s),
                        part("last token", t)
                    )
                }
            };
            Finding {
                kind: Kind::DormantAccount,
                action: Action::Disable,
                username: Some(a.username.clone()),
                client_id: None,
                role: None,
                evidence,
                group: None,
                members: Vec::new(),
                replaces: None,
                exceptions: Vec::new(),
            }
        })
        .collect()
}

/// A tile of the user × grant matrix: these users, these grants.
#[derive(Debug, Clone)]
struct Tile {
    /// An existing group, or None for a proposed new group.
    group: Option<String>,
    users: Vec<String>,
    grants: BTreeSet<GrantKey>,
}

/// Candidate roles by **greedy tiling** of the direct-grant matrix (Geerts, Goethals and
/// Mielikäinen, "Tiling databases", 2004 — greedy Boolean matrix factorisation restricted to
/// tiles an admin can act on). Candidate tiles come from two places: each existing group with
/// the grants most of its members hold directly (a grant to the group), and each set of grants
/// that several users hold directly with identical access (a new group). The tile that makes
/// the most not-yet-covered direct grants redundant is taken first, until none replaces at
/// least `role_min_users` grants. Why this and not frequent itemsets or a learned
/// factorisation: every proposal is literally an action ("grant these roles to this group"), its
/// benefit is a count an admin can verify, and it is deterministic and quick at 10,000 users.
fn candidate_roles(ix: &Index<'_>, p: &Params) -> Vec<Finding> {
    let mut tiles: Vec<Tile> = Vec::new();
    for (group, ms) in &ix.members {
        if ms.len() < p.role_min_users {
            continue;
        }
        let mut count: BTreeMap<&GrantKey, usize> = BTreeMap::new();
        for m in ms {
            if let Some(d) = ix.direct.get(m) {
                for g in d {
                    *count.entry(g).or_default() += 1;
                }
            }
        }
        let given = ix.group_grants.get(group);
        let grants: BTreeSet<GrantKey> = count
            .into_iter()
            .filter(|(g, n)| {
                *n >= p.role_min_users
                    && *n as f64 >= p.role_coverage * ms.len() as f64
                    && given.is_none_or(|s| !s.contains(*g))
            })
            .map(|(g, _)| g.clone())
            .collect();
        if !grants.is_empty() {
            tiles.push(Tile {
                group: Some((*group).to_owned()),
                users: ms.iter().map(|m| (*m).to_owned()).collect(),
                grants,
            });
        }
    }
    // Identical direct access shared by several users who are not already one group's tile.
    let mut same: BTreeMap<&BTreeSet<GrantKey>, Vec<&str>> = BTreeMap::new();
    for (u, d) in &ix.direct {
        if d.len() >= 2 {
            same.entry(d).or_default().push(u);
        }
    }
    for (grants, users) in same {
        if users.len() >= p.role_min_users {
            tiles.push(Tile {
                group: None,
                users: users.iter().map(|u| (*u).to_owned()).collect(),
                grants: grants.clone(),
            });
        }
    }
    let mut covered: HashSet<(String, GrantKey)> = HashSet::new();
    let gain = |t: &Tile, covered: &HashSet<(String, GrantKey)>| -> usize {
        t.users
            .iter()
            .map(|u| {
                let d = ix.direct.get(u.as_str());
                t.grants
                    .iter()
                    .filter(|g| {
                        d.is_some_and(|d| d.contains(*g))
                            && !covered.contains(&(u.clone(), (*g).clone()))
                    })
                    .count()
            })
            .sum()
    };
    let mut out = Vec::new();
    let mut proposed = 0usize;
    // Lazy greedy: a tile's gain only falls as others cover its grants, so a popped tile whose
    // recomputed gain still tops the heap is the best one (ties: the earlier tile).
    let mut heap: BinaryHeap<(usize, Reverse<usize>)> = tiles
        .iter()
        .enumerate()
        .map(|(i, t)| (gain(t, &covered), Reverse(i)))
        .collect();
    while let Some((stale, Reverse(i))) = heap.pop() {
        let g = gain(&tiles[i], &covered);
        if g < stale {
            heap.push((g, Reverse(i)));
            continue;
        }
        if g < p.role_min_users {
            break;
        }
        let t = &tiles[i];
        proposed += 1;
        let name = t
            .group
            .clone()
            .unwrap_or_else(|| format!("new:candidate-role-{proposed}"));
        for grant in &t.grants {
            let holders: Vec<&String> = t
                .users
                .iter()
                .filter(|u| ix.direct.get(u.as_str()).is_some_and(|d| d.contains(grant)))
                .collect();
            let replaced = holders
                .iter()
                .filter(|u| !covered.contains(&((**u).clone(), grant.clone())))
                .count();
            let exceptions: Vec<String> = t
                .users
                .iter()
                .filter(|u| {
                    !ix.effective
                        .get(u.as_str())
                        .is_some_and(|e| e.contains(grant))
                })
                .cloned()
                .collect();
            for u in &holders {
                covered.insert(((*u).clone(), grant.clone()));
            }
            let whom = match &t.group {
                Some(gr) => format!(
                    "{} of the {} members of {gr} hold it directly",
                    holders.len(),
                    t.users.len()
                ),
                None => format!(
                    "{} users hold it directly, with the same access ({})",
                    holders.len(),
                    t.grants
                        .iter()
                        .map(|(c, r)| format!("{c}/{r}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let gains = if exceptions.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} would gain it: {}",
                    exceptions.len(),
                    exceptions
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if exceptions.len() > 5 { ", …" } else { "" }
                )
            };
            out.push(Finding {
                kind: Kind::CandidateRole,
                action: Action::Replace,
                username: None,
                client_id: Some(grant.0.clone()),
                role: Some(grant.1.clone()),
                evidence: format!(
                    "grant it to {name}: {whom}; replaces {replaced} direct grants{gains}"
                ),
                group: Some(name.clone()),
                members: if t.group.is_none() {
                    t.users.clone()
                } else {
                    Vec::new()
                },
                replaces: Some(replaced),
                exceptions,
            });
        }
    }
    out
}

/// How many direct grants the candidate roles make redundant, of how many there are.
pub fn replaced_share(snap: &Snapshot, findings: &[Finding]) -> (usize, usize) {
    let direct = snap.grants.iter().filter(|g| !g.to_group).count();
    let replaced = findings
        .iter()
        .filter(|f| f.kind == Kind::CandidateRole)
        .filter_map(|f| f.replaces)
        .sum();
    (replaced, direct)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn acct(name: &str, groups: &[&str], signin_days_ago: Option<i64>) -> Account {
        Account {
            username: name.into(),
            disabled: false,
            created_at: NOW - 400 * DAY,
            last_signin_at: signin_days_ago.map(|d| NOW - d * DAY),
            last_active_at: None,
            groups: groups.iter().map(|g| (*g).into()).collect(),
        }
    }
    fn direct(user: &str, client: &str, role: &str) -> Grant {
        Grant {
            holder: user.into(),
            to_group: false,
            client_id: client.into(),
            role: role.into(),
            privileged: false,
            granted_at: NOW - 300 * DAY,
        }
    }
    fn used(user: &str, client: &str, role: &str, days_ago: i64) -> Use {
        Use {
            username: user.into(),
            client_id: client.into(),
            role: role.into(),
            last_used_at: NOW - days_ago * DAY,
        }
    }
    /// Ten members of `sales`, all holding crm/user directly and using it, beside twelve of
    /// `support` with helpdesk/agent (so that neither group is everyone).
    fn sales() -> Snapshot {
        let mut s = Snapshot {
            now: NOW,
            ..Default::default()
        };
        for i in 0..10 {
            let u = format!("s{i}");
            s.accounts.push(acct(&u, &["sales"], Some(1)));
            s.grants.push(direct(&u, "crm", "user"));
            s.uses.push(used(&u, "crm", "user", 2));
        }
        for i in 0..12 {
            let u = format!("t{i}");
            s.accounts.push(acct(&u, &["support"], Some(1)));
            s.grants.push(direct(&u, "helpdesk", "agent"));
            s.uses.push(used(&u, "helpdesk", "agent", 2));
        }
        s
    }
    fn in_group<'a>(f: &'a [&'a Finding], group: &str) -> Vec<&'a Finding> {
        f.iter()
            .copied()
            .filter(|x| x.group.as_deref() == Some(group))
            .collect()
    }
    fn of(f: &[Finding], kind: Kind) -> Vec<&Finding> {
        f.iter().filter(|x| x.kind == kind).collect()
    }

    #[test]
    fn a_grant_unused_for_longer_than_the_window_is_recommended_for_removal() {
        let mut s = sales();
        s.grants.push(direct("s3", "payroll", "admin"));
        s.uses.push(used("s3", "payroll", "admin", 143));
        let f = analyse(&s, &Params::default());
        let u = of(&f, Kind::UnusedGrant);
        assert_eq!(u.len(), 1, "{f:#?}");
        assert_eq!(u[0].action, Action::Remove);
        assert_eq!(u[0].username.as_deref(), Some("s3"));
        assert_eq!(u[0].role.as_deref(), Some("admin"));
        assert_eq!(
            u[0].evidence,
            "not used for 143 days; 0 of 9 peers in sales hold it"
        );
        // A grant used within the window is not unused.
        assert!(!f
            .iter()
            .any(|x| x.kind == Kind::UnusedGrant && x.client_id.as_deref() == Some("crm")));
    }

    #[test]
    fn an_unused_grant_most_peers_hold_is_kept_as_periodic() {
        let mut s = sales();
        for i in 0..10 {
            let u = format!("s{i}");
            s.grants.push(direct(&u, "ledger", "year-end"));
            s.uses.push(used(
                &u,
                "ledger",
                "year-end",
                if i == 0 { 200 } else { 20 },
            ));
        }
        let f = analyse(&s, &Params::default());
        let u = of(&f, Kind::UnusedGrant);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].action, Action::Keep);
        assert!(
            u[0].evidence.contains("9 of 9 peers in sales hold it"),
            "{}",
            u[0].evidence
        );
    }

    #[test]
    fn a_recent_grant_is_not_unused_yet() {
        let mut s = sales();
        let mut g = direct("s1", "wiki", "editor");
        g.granted_at = NOW - 10 * DAY;
        s.grants.push(g);
        s.accounts.push(acct("s10", &["sales"], Some(1)));
        let f = analyse(&s, &Params::default());
        assert!(of(&f, Kind::UnusedGrant).is_empty(), "{f:#?}");
    }

    #[test]
    fn a_used_grant_almost_no_peer_holds_is_an_outlier_with_the_best_group_as_evidence() {
        let mut s = sales();
        // s0 is also in eng, where 2 of 5 others hold git/dev: not an outlier there.
        s.accounts[0].groups.push("eng".into());
        s.grants.push(direct("s0", "git", "dev"));
        s.uses.push(used("s0", "git", "dev", 1));
        for i in 0..5 {
            let u = format!("e{i}");
            s.accounts.push(acct(&u, &["eng"], Some(1)));
            if i < 2 {
                s.grants.push(direct(&u, "git", "dev"));
                s.uses.push(used(&u, "git", "dev", 1));
            }
        }
        // s5 copied git/dev from a colleague: 0 of 9 in sales hold it.
        s.grants.push(direct("s5", "git", "dev"));
        s.uses.push(used("s5", "git", "dev", 3));
        let f = analyse(&s, &Params::default());
        let o = of(&f, Kind::PeerOutlier);
        assert_eq!(o.len(), 1, "{o:#?}");
        assert_eq!(o[0].username.as_deref(), Some("s5"));
        assert_eq!(
            o[0].evidence,
            "only 1 of 9 peers in sales hold it; used 3 days ago"
        );
    }

    #[test]
    fn too_few_peers_say_nothing() {
        let mut s = Snapshot {
            now: NOW,
            ..Default::default()
        };
        for i in 0..3 {
            s.accounts.push(acct(&format!("x{i}"), &["tiny"], Some(1)));
        }
        s.grants.push(direct("x0", "git", "admin"));
        s.uses.push(used("x0", "git", "admin", 1));
        assert!(of(&analyse(&s, &Params::default()), Kind::PeerOutlier).is_empty());
    }

    #[test]
    fn dormant_accounts_are_those_without_sign_in_or_token_in_the_window() {
        let mut s = sales();
        s.accounts.push(acct("gone", &["sales"], Some(143)));
        let mut busy = acct("robot", &["sales"], Some(300));
        busy.last_active_at = Some(NOW - DAY);
        s.accounts.push(busy);
        let mut never = acct("never", &[], None);
        never.created_at = NOW - 100 * DAY;
        s.accounts.push(never);
        let mut off = acct("off", &[], Some(500));
        off.disabled = true;
        s.accounts.push(off);
        let f = analyse(&s, &Params::default());
        let d = of(&f, Kind::DormantAccount);
        let names: Vec<_> = d.iter().filter_map(|x| x.username.as_deref()).collect();
        assert_eq!(names, ["gone", "never"]);
        assert_eq!(d[0].action, Action::Disable);
        assert_eq!(
            d[0].evidence,
            "last verified sign-in 143 days ago; no last token"
        );
        assert_eq!(
            d[1].evidence,
            "never signed in since the account was made 100 days ago"
        );
    }

    #[test]
    fn a_role_most_of_a_group_holds_directly_is_proposed_as_a_group_grant() {
        let mut s = sales();
        s.accounts.push(acct("s10", &["sales"], Some(1)));
        let f = analyse(&s, &Params::default());
        let all = of(&f, Kind::CandidateRole);
        let c = in_group(&all, "sales");
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].replaces, Some(10));
        assert_eq!(c[0].exceptions, ["s10"]);
        assert_eq!(
            c[0].evidence,
            "grant it to sales: 10 of the 11 members of sales hold it directly; replaces 10 direct grants; 1 would gain it: s10"
        );
    }

    #[test]
    fn identical_direct_access_outside_any_group_becomes_a_new_group() {
        let mut s = Snapshot {
            now: NOW,
            ..Default::default()
        };
        for i in 0..4 {
            let u = format!("c{i}");
            s.accounts.push(acct(&u, &[], Some(1)));
            for r in ["read", "write"] {
                s.grants.push(direct(&u, "ci", r));
                s.uses.push(used(&u, "ci", r, 1));
            }
        }
        let f = analyse(&s, &Params::default());
        let c = of(&f, Kind::CandidateRole);
        assert_eq!(c.len(), 2);
        assert!(c
            .iter()
            .all(|x| x.group.as_deref() == Some("new:candidate-role-1")));
        assert_eq!(c.iter().filter_map(|x| x.replaces).sum::<usize>(), 8);
        assert_eq!(c[0].members, ["c0", "c1", "c2", "c3"]);
        assert_eq!(replaced_share(&s, &f), (8, 8));
    }

    #[test]
    fn a_role_already_granted_to_the_group_is_not_proposed_again() {
        let mut s = sales();
        s.grants.push(Grant {
            holder: "sales".into(),
            to_group: true,
            client_id: "crm".into(),
            role: "user".into(),
            privileged: false,
            granted_at: NOW - 300 * DAY,
        });
        let f = analyse(&s, &Params::default());
        // Still 10 identical direct sets of one grant each: below the two-grant bar.
        assert!(
            in_group(&of(&f, Kind::CandidateRole), "sales").is_empty(),
            "{f:#?}"
        );
        // Held through the group by every peer: the direct grants are redundant, not outliers.
        assert!(of(&f, Kind::PeerOutlier).is_empty());
    }
}
