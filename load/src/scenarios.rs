//! The scenarios, as keycloak-benchmark names them, each one iteration ("operation") of a
//! virtual user against vigil's real pages and endpoints:
//!
//! ```text
//! auth_code            authorize(PKCE) → login page → POST password → code → token → end_session
//! login_user_password  authorize(PKCE) → login page → POST password → code → logout (confirm page)
//! client_credentials   POST token (client_secret_basic)
//! refresh_token        POST token with the VU's refresh token; keeps the rotated one
//! basic_get            discovery, JWKS, userinfo with the VU's access token
//! discovery            discovery alone (also for the oidc-provider peer)
//! sso_reassess         authorize with the VU's live session cookie → code, no password
//! step_up_totp         authorize from a far address (X-Forwarded-For) → password → TOTP → code
//! password_spray       wrong passwords for the upper half of the users from one address,
//!                      beside auth_code for the lower half from the tool's own address
//! ```
//!
//! Virtual user K is seeded `user-K`; it talks to target (K-1) mod T with client (K-1) mod M + 1.
//! Session scenarios (refresh_token, basic_get, sso_reassess) first sign in their VUs once
//! (`prepare`, not measured) and keep cookies and tokens across iterations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use tokio::sync::Mutex;
use url::Url;

use crate::data::{self, Pkce};
use crate::http::{
    hidden_input, param, query_of, rp_get, rp_post, Browser, OpError, Resp, Steps, Target,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    AuthCode,
    LoginUserPassword,
    ClientCredentials,
    RefreshToken,
    BasicGet,
    Discovery,
    SsoReassess,
    StepUpTotp,
    PasswordSpray,
}

impl Scenario {
    /// In the order a full run goes: the spray last, so the failures it leaves behind (risk
    /// signals, throttle counters) cannot touch the others.
    pub const ALL: [Scenario; 9] = [
        Scenario::AuthCode,
        Scenario::LoginUserPassword,
        Scenario::ClientCredentials,
        Scenario::RefreshToken,
        Scenario::BasicGet,
        Scenario::Discovery,
        Scenario::SsoReassess,
        Scenario::StepUpTotp,
        Scenario::PasswordSpray,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::AuthCode => "auth_code",
            Scenario::LoginUserPassword => "login_user_password",
            Scenario::ClientCredentials => "client_credentials",
            Scenario::RefreshToken => "refresh_token",
            Scenario::BasicGet => "basic_get",
            Scenario::Discovery => "discovery",
            Scenario::SsoReassess => "sso_reassess",
            Scenario::StepUpTotp => "step_up_totp",
            Scenario::PasswordSpray => "password_spray",
        }
    }

    pub fn parse(s: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scenario `{s}` (one of {})", names.join(", "))
            })
    }

    /// The sub-streams it reports: one, or the spray's attack and legitimate traffic.
    pub fn streams(self) -> &'static [&'static str] {
        match self {
            Scenario::PasswordSpray => &["attack", "legit"],
            _ => &[""],
        }
    }

    /// Needs each VU signed in with a refresh token before the measurement.
    pub fn needs_sessions(self) -> bool {
        matches!(
            self,
            Scenario::RefreshToken | Scenario::BasicGet | Scenario::SsoReassess
        )
    }

    /// Works against any OpenID provider (the peer has no seeded users).
    pub fn needs_users(self) -> bool {
        !matches!(self, Scenario::ClientCredentials | Scenario::Discovery)
    }
}

/// Knobs of the scenarios.
#[derive(Debug, Clone)]
pub struct Options {
    /// Far-away addresses of the GeoIP test database that step_up_totp alternates between
    /// (alternating makes every sign-in impossible travel from the one before).
    pub far_addresses: Vec<String>,
    /// The one address the spray comes from.
    pub spray_address: String,
    /// Share of password_spray arrivals that are attack attempts (the rest: auth_code).
    pub spray_share: f64,
    /// How many VUs the session scenarios sign in and cycle through.
    pub sessions: u32,
    /// How many VUs step_up_totp cycles through (each takes one TOTP code per 30 s, so this
    /// bounds its rate at users/30 per second); 0: all.
    pub step_up_users: u32,
}

/// A VU's state kept across iterations.
#[derive(Default)]
pub struct VuState {
    /// The browser of the session scenarios (its session and device cookies).
    pub jar: Option<Arc<Jar>>,
    pub refresh: Option<String>,
    /// An access token and when it stops being safe to use.
    pub access: Option<(String, Instant)>,
}

/// A virtual user: seeded user `k`.
pub struct Vu {
    pub k: u32,
    pub target: usize,
    pub client: u32,
    pub state: Mutex<VuState>,
    /// The last TOTP step this user spent (+1; 0: none): vigil takes each step once.
    pub totp_step: AtomicU64,
    /// step_up_totp sign-ins so far (picks the next far address).
    pub trips: AtomicU64,
}

/// Everything iterations share.
pub struct Ctx {
    pub targets: Vec<Target>,
    pub vus: Vec<Vu>,
    pub opts: Options,
    rr: AtomicU64,
    spray_rr: AtomicU64,
}

impl Ctx {
    pub fn new(targets: Vec<Target>, users: u32, clients: u32, opts: Options) -> Ctx {
        let t = targets.len().max(1);
        let vus = (1..=users)
            .map(|k| Vu {
                k,
                target: (k as usize - 1) % t,
                client: (k - 1) % clients.max(1) + 1,
                state: Mutex::new(VuState::default()),
                totp_step: AtomicU64::new(0),
                trips: AtomicU64::new(0),
            })
            .collect();
        Ctx {
            targets,
            vus,
            opts,
            rr: AtomicU64::new(0),
            spray_rr: AtomicU64::new(0),
        }
    }

    /// The next VU, round-robin, among the first `pool` (at least one).
    fn next_vu(&self, lo: usize, hi: usize) -> Option<&Vu> {
        if hi <= lo {
            return None;
        }
        let n = self.rr.fetch_add(1, Ordering::Relaxed) as usize;
        self.vus.get(lo + n % (hi - lo))
    }

    fn target(&self, vu: &Vu) -> Result<&Target, OpError> {
        self.targets
            .get(vu.target)
            .ok_or_else(|| OpError::at("setup", "no target"))
    }

    /// The VUs the session scenarios use.
    pub fn session_pool(&self) -> usize {
        (self.opts.sessions as usize).min(self.vus.len())
    }

    /// The VUs step_up_totp uses.
    pub fn step_up_pool(&self) -> usize {
        match self.opts.step_up_users {
            0 => self.vus.len(),
            n => (n as usize).min(self.vus.len()),
        }
    }

    /// Round-robin over clients for scenarios without a user (client_credentials, discovery).
    fn next_client(&self, clients: u32) -> (u32, usize) {
        let n = self.rr.fetch_add(1, Ordering::Relaxed);
        let c = (n % u64::from(clients.max(1))) as u32 + 1;
        let t = (n % self.targets.len().max(1) as u64) as usize;
        (c, t)
    }
}

/// Run one iteration. Returns the stream it belongs to and its outcome (a label for outcomes
/// that are expected but worth counting, such as a spray's 429).
pub async fn iterate(
    ctx: &Ctx,
    s: Scenario,
    clients: u32,
    steps: &mut Steps,
) -> (usize, Result<Option<String>, OpError>) {
    let users = ctx.vus.len();
    let no_vu = || OpError::at("setup", "no seeded users (--users)");
    match s {
        Scenario::AuthCode => match ctx.next_vu(0, users) {
            Some(vu) => (0, auth_code(ctx, vu, true, steps).await.map(|_| None)),
            None => (0, Err(no_vu())),
        },
        Scenario::LoginUserPassword => match ctx.next_vu(0, users) {
            Some(vu) => (0, auth_code(ctx, vu, false, steps).await.map(|_| None)),
            None => (0, Err(no_vu())),
        },
        Scenario::ClientCredentials => {
            let (c, t) = ctx.next_client(clients);
            (0, client_credentials(ctx, c, t, steps).await.map(|_| None))
        }
        Scenario::Discovery => {
            let (_, t) = ctx.next_client(clients);
            (0, discovery(ctx, t, steps).await.map(|_| None))
        }
        Scenario::RefreshToken => match ctx.next_vu(0, ctx.session_pool()) {
            Some(vu) => (0, refresh_token(ctx, vu, steps).await.map(|_| None)),
            None => (0, Err(no_vu())),
        },
        Scenario::BasicGet => match ctx.next_vu(0, ctx.session_pool()) {
            Some(vu) => (0, basic_get(ctx, vu, steps).await.map(|_| None)),
            None => (0, Err(no_vu())),
        },
        Scenario::SsoReassess => match ctx.next_vu(0, ctx.session_pool()) {
            Some(vu) => (0, sso_reassess(ctx, vu, steps).await.map(|_| None)),
            None => (0, Err(no_vu())),
        },
        Scenario::StepUpTotp => (0, step_up_totp(ctx, steps).await.map(|_| None)),
        Scenario::PasswordSpray => {
            let n = ctx.spray_rr.fetch_add(1, Ordering::Relaxed);
            // Deterministic interleaving at the configured share (Bresenham-style).
            let share = ctx.opts.spray_share.clamp(0.0, 1.0);
            let attack = ((n + 1) as f64 * share).floor() > (n as f64 * share).floor();
            let half = users / 2;
            if attack {
                let k = half + (n as usize % (users - half).max(1));
                match ctx.vus.get(k) {
                    Some(vu) => (0, spray_attempt(ctx, vu, steps).await.map(Some)),
                    None => (0, Err(no_vu())),
                }
            } else {
                match ctx.next_vu(0, half) {
                    Some(vu) => (1, auth_code(ctx, vu, true, steps).await.map(|_| None)),
                    None => (1, Err(no_vu())),
                }
            }
        }
    }
}

/// Set up the VUs a scenario keeps state in, before it is measured (up to `parallel` sign-ins
/// at a time): the session scenarios sign each VU in once (browser, refresh and access
/// token); step_up_totp signs each VU in once from the first far address, so that the next
/// sign-in, from the other one, is impossible travel.
pub async fn prepare(ctx: &Arc<Ctx>, s: Scenario, parallel: usize) -> Result<(), String> {
    let pool = match s {
        _ if s.needs_sessions() => ctx.session_pool(),
        Scenario::StepUpTotp => ctx.step_up_pool(),
        _ => return Ok(()),
    };
    let mut set = tokio::task::JoinSet::new();
    let mut failures = Vec::new();
    for i in 0..pool {
        while set.len() >= parallel.max(1) {
            if let Some(Ok(Err(e))) = set.join_next().await {
                failures.push(e);
            }
        }
        let ctx = ctx.clone();
        set.spawn(async move {
            let Some(vu) = ctx.vus.get(i) else {
                return Ok(());
            };
            let mut steps = Steps::default();
            let done = if s == Scenario::StepUpTotp {
                baseline(&ctx, vu, &mut steps).await
            } else {
                let mut st = vu.state.lock().await;
                if st.refresh.is_some() && st.jar.is_some() {
                    return Ok(());
                }
                session_sign_in(&ctx, vu, &mut st, &mut steps).await
            };
            done.map_err(|e| format!("user-{}: {}", vu.k, e.kind))
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            failures.push(e);
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {pool} set-up sign-ins failed; first: {first}",
            failures.len()
        )),
    }
}

/// After set-up sign-ins that answered step-ups, wait for the next 30 s TOTP window: those
/// users cannot answer another in this one, and the measurement would count that as errors.
pub async fn await_fresh_totp_window(ctx: &Ctx) {
    let now = unix_now();
    let current = data::totp_step(now) + 1;
    if ctx
        .vus
        .iter()
        .any(|v| v.totp_step.load(Ordering::SeqCst) >= current)
    {
        tokio::time::sleep(Duration::from_secs(30 - now % 30) + Duration::from_millis(200)).await;
    }
}

/// step_up_totp's first sign-in of a VU, from the first far address (answering a step-up if
/// one is asked): the location the next trip is measured from.
async fn baseline(ctx: &Ctx, vu: &Vu, steps: &mut Steps) -> Result<(), OpError> {
    if vu.trips.load(Ordering::SeqCst) > 0 {
        return Ok(());
    }
    let target = ctx.target(vu)?;
    let xff = ctx.opts.far_addresses.first().cloned();
    let b = Browser::new(target, Arc::new(Jar::default()), xff);
    let pkce = Pkce::new();
    let mut tries = 0;
    loop {
        match sign_in(&b, vu, "openid", &pkce, Mfa::IfAsked, steps).await {
            Ok(_) => break,
            // This user's TOTP window is spent (a step-up answered moments ago): wait for the next.
            Err(e) if e.kind.starts_with("totp: no unused") && tries < 2 => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(31 - unix_now() % 30)).await;
            }
            Err(e) => return Err(e),
        }
    }
    vu.trips.store(1, Ordering::SeqCst);
    Ok(())
}

/// A fresh browser signed in with `openid offline_access`; keeps its jar and tokens.
async fn session_sign_in(
    ctx: &Ctx,
    vu: &Vu,
    st: &mut VuState,
    steps: &mut Steps,
) -> Result<(), OpError> {
    let target = ctx.target(vu)?;
    let jar = Arc::new(Jar::default());
    let b = Browser::new(target, jar.clone(), Some(data::home_address(vu.k)));
    let pkce = Pkce::new();
    let code = sign_in(&b, vu, "openid offline_access", &pkce, Mfa::Never, steps).await?;
    let tokens = exchange(target, vu.client, &code, &pkce, steps).await?;
    st.refresh = Some(
        tokens["refresh_token"]
            .as_str()
            .ok_or_else(|| OpError::at("token", "no refresh_token for offline_access"))?
            .to_owned(),
    );
    st.access = access_of(&tokens);
    st.jar = Some(jar);
    Ok(())
}

fn access_of(tokens: &serde_json::Value) -> Option<(String, Instant)> {
    let at = tokens["access_token"].as_str()?.to_owned();
    let life = tokens["expires_in"].as_u64().unwrap_or(300);
    // Renew with a minute to spare.
    Some((
        at,
        Instant::now() + Duration::from_secs(life.saturating_sub(60).max(1)),
    ))
}

fn client_creds(client: u32) -> (String, String) {
    (data::client_id(client), data::client_secret(client))
}

fn status(step: &str, r: &Resp) -> OpError {
    // The OAuth error code, when the body is an OAuth error (bounded vocabulary).
    let code = serde_json::from_str::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    match (r.status, code) {
        (401, None) if step.starts_with("login") => OpError::at(step, "refused (401)"),
        (403, None) => OpError::at(step, "refused (403)"),
        (429, _) => OpError::at(step, "throttled (429)"),
        (503, _) => OpError::at(step, "busy (503)"),
        (s, Some(c)) => OpError::at(step, format!("status {s} {c}")),
        (s, None) => OpError::at(step, format!("status {s}")),
    }
}

fn is_redirect(r: &Resp) -> bool {
    matches!(r.status, 301 | 302 | 303 | 307 | 308)
}

/// The authorization request URL for `vu` with `pkce`, and its state.
fn authorize_url(target: &Target, vu: &Vu, scope: &str, pkce: &Pkce) -> (Url, String) {
    let state = data::random_value();
    let mut u = target.authorization.clone();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &data::client_id(vu.client))
        .append_pair("redirect_uri", data::REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &data::random_value())
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    (u, state)
}

/// The code (state checked) from the redirect back to the client, or the error it carries.
fn code_from(location: &str, state: &str) -> Result<String, OpError> {
    let q = query_of(location);
    if let Some(e) = param(&q, "error") {
        return Err(OpError::at("authorize", format!("error={e}")));
    }
    if param(&q, "state") != Some(state) {
        return Err(OpError::at("authorize", "state mismatch"));
    }
    param(&q, "code")
        .map(str::to_owned)
        .ok_or_else(|| OpError::at("authorize", "no code in the redirect"))
}

/// Follow same-site redirects (resume, consent…) until the client's redirect URI.
async fn follow_to_client(
    b: &Browser<'_>,
    mut r: Resp,
    step: &'static str,
    steps: &mut Steps,
) -> Result<String, OpError> {
    for _ in 0..5 {
        if !is_redirect(&r) {
            return Err(status(step, &r));
        }
        let loc = r
            .location
            .clone()
            .ok_or_else(|| OpError::at(step, "redirect without Location"))?;
        if loc.starts_with(data::REDIRECT_URI) {
            return Ok(loc);
        }
        if loc.starts_with("/login/mfa") {
            return Err(OpError::at(step, "step-up asked"));
        }
        if loc.starts_with("/login") {
            return Err(OpError::at(step, "sent back to the login page"));
        }
        let url = b.target.on_target(&loc).map_err(|e| OpError::at(step, e))?;
        r = b.get(&url, "follow", steps).await?;
    }
    Err(OpError::at(step, "too many redirects"))
}

/// What a sign-in expects of the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mfa {
    /// A step-up is an error (the password scenarios).
    Never,
    /// No step-up is an error (step_up_totp).
    Expect,
    /// Answer it if asked (setting up a baseline).
    IfAsked,
}

/// authorize → (SSO, or login page → password [→ TOTP]) → code.
async fn sign_in(
    b: &Browser<'_>,
    vu: &Vu,
    scope: &str,
    pkce: &Pkce,
    totp: Mfa,
    steps: &mut Steps,
) -> Result<String, OpError> {
    let (url, state) = authorize_url(b.target, vu, scope, pkce);
    let r = b.get(&url, "authorize", steps).await?;
    let loc = match (&r.location, is_redirect(&r)) {
        (Some(l), true) => l.clone(),
        _ => return Err(status("authorize", &r)),
    };
    if loc.starts_with(data::REDIRECT_URI) {
        return code_from(&loc, &state);
    }
    let login_url = b
        .target
        .on_target(&loc)
        .map_err(|e| OpError::at("authorize", e))?;
    let page = b.get(&login_url, "login page", steps).await?;
    if page.status != 200 {
        return Err(status("login page", &page));
    }
    let csrf = hidden_input(&page.body, "csrf_token")
        .ok_or_else(|| OpError::at("login page", "no csrf_token"))?;
    let tx = hidden_input(&page.body, "tx")
        .or_else(|| param(&query_of(&loc), "tx").map(str::to_owned))
        .unwrap_or_default();
    let post = b
        .target
        .on_target("/login")
        .map_err(|e| OpError::at("login", e))?;
    let (user, pass) = (data::username(vu.k), data::password(vu.k));
    let r = b
        .post_form(
            &post,
            &[
                ("csrf_token", &csrf),
                ("tx", &tx),
                ("device_hints", ""),
                ("username", &user),
                ("password", &pass),
            ],
            "login",
            steps,
        )
        .await?;
    let mfa = is_redirect(&r)
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/login/mfa") || l.contains("/login/mfa"));
    let r = match (mfa, totp) {
        // vigil refused the sign-in outright (the risk engine's block): say so, not "no step-up".
        (false, _) if r.status == 403 => return Err(OpError::at("login", "blocked (403)")),
        (false, Mfa::Expect) => return Err(OpError::at("login", "no step-up asked")),
        (true, Mfa::Never) => return Err(OpError::at("login", "step-up asked")),
        (true, _) => submit_totp(b, vu, steps).await?,
        (false, _) => r,
    };
    let back = follow_to_client(b, r, "login", steps).await?;
    code_from(&back, &state)
}

/// The TOTP step-up page: a code for the current 30 s step, once per user and step.
async fn submit_totp(b: &Browser<'_>, vu: &Vu, steps: &mut Steps) -> Result<Resp, OpError> {
    let url = b
        .target
        .on_target("/login/mfa")
        .map_err(|e| OpError::at("mfa page", e))?;
    let page = b.get(&url, "mfa page", steps).await?;
    if page.status != 200 {
        return Err(status("mfa page", &page));
    }
    let csrf = hidden_input(&page.body, "csrf_token")
        .ok_or_else(|| OpError::at("mfa page", "no csrf_token"))?;
    if !page.body.contains("name=\"code\"") {
        return Err(OpError::at(
            "mfa page",
            "no TOTP form (factor not enrolled?)",
        ));
    }
    let now = unix_now();
    let step = data::totp_step(now);
    // vigil accepts a step once per user: claim it, or give up on this user for this window.
    let prev = vu.totp_step.fetch_max(step + 1, Ordering::SeqCst);
    if prev > step {
        return Err(OpError::at("totp", "no unused 30 s window for this user"));
    }
    let code = data::totp_code(&data::totp_secret(&data::username(vu.k)), now)
        .map_err(|e| OpError::at("totp", e))?;
    let post = b
        .target
        .on_target("/login/mfa/totp")
        .map_err(|e| OpError::at("totp", e))?;
    let r = b
        .post_form(
            &post,
            &[("csrf_token", &csrf), ("code", &code)],
            "totp",
            steps,
        )
        .await?;
    if !is_redirect(&r) {
        return Err(status("totp", &r));
    }
    Ok(r)
}

/// Wall-clock seconds, for TOTP (vigil reads the same clock).
#[allow(clippy::disallowed_methods)] // a TOTP code is a function of wall-clock time
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// POST /token with the code and the PKCE verifier; the token response.
async fn exchange(
    target: &Target,
    client: u32,
    code: &str,
    pkce: &Pkce,
    steps: &mut Steps,
) -> Result<serde_json::Value, OpError> {
    let (id, secret) = client_creds(client);
    let r = rp_post(
        target,
        &target.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", data::REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
        ],
        Some((&id, &secret)),
        "token (code)",
        steps,
    )
    .await?;
    token_json("token (code)", &r)
}

fn token_json(step: &str, r: &Resp) -> Result<serde_json::Value, OpError> {
    if r.status != 200 {
        return Err(status(step, r));
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|_| OpError::at(step, "not JSON"))?;
    if v["access_token"].as_str().is_none() {
        return Err(OpError::at(step, "no access_token"));
    }
    Ok(v)
}

/// auth_code (with the exchange and an end_session logout by ID token) or
/// login_user_password (without the exchange; the logout confirmation page instead).
async fn auth_code(
    ctx: &Ctx,
    vu: &Vu,
    exchange_code: bool,
    steps: &mut Steps,
) -> Result<(), OpError> {
    let target = ctx.target(vu)?;
    let b = Browser::new(
        target,
        Arc::new(Jar::default()),
        Some(data::home_address(vu.k)),
    );
    let pkce = Pkce::new();
    let code = sign_in(&b, vu, "openid", &pkce, Mfa::Never, steps).await?;
    let end = target
        .end_session
        .clone()
        .ok_or_else(|| OpError::at("logout", "no end_session_endpoint"))?;
    let state = data::random_value();
    if exchange_code {
        let tokens = exchange(target, vu.client, &code, &pkce, steps).await?;
        let idt = tokens["id_token"]
            .as_str()
            .ok_or_else(|| OpError::at("token (code)", "no id_token"))?;
        let mut u = end;
        u.query_pairs_mut()
            .append_pair("id_token_hint", idt)
            .append_pair("post_logout_redirect_uri", data::POST_LOGOUT_REDIRECT_URI)
            .append_pair("state", &state);
        let r = b.get(&u, "logout", steps).await?;
        logged_out("logout", &r)
    } else {
        let mut u = end;
        u.query_pairs_mut()
            .append_pair("client_id", &data::client_id(vu.client))
            .append_pair("post_logout_redirect_uri", data::POST_LOGOUT_REDIRECT_URI)
            .append_pair("state", &state);
        let page = b.get(&u, "logout page", steps).await?;
        if page.status != 200 {
            return Err(status("logout page", &page));
        }
        let field = |n: &str| {
            hidden_input(&page.body, n).ok_or_else(|| OpError::at("logout page", format!("no {n}")))
        };
        let (csrf, cid, plr, st) = (
            field("csrf_token")?,
            field("client_id")?,
            field("post_logout_redirect_uri")?,
            field("state")?,
        );
        let post = target
            .on_target("/logout/confirm")
            .map_err(|e| OpError::at("logout", e))?;
        let r = b
            .post_form(
                &post,
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &cid),
                    ("post_logout_redirect_uri", &plr),
                    ("state", &st),
                ],
                "logout",
                steps,
            )
            .await?;
        logged_out("logout", &r)
    }
}

fn logged_out(step: &str, r: &Resp) -> Result<(), OpError> {
    match &r.location {
        Some(l) if is_redirect(r) && l.starts_with(data::POST_LOGOUT_REDIRECT_URI) => Ok(()),
        _ => Err(status(step, r)),
    }
}

async fn client_credentials(
    ctx: &Ctx,
    client: u32,
    target: usize,
    steps: &mut Steps,
) -> Result<(), OpError> {
    let t = ctx
        .targets
        .get(target)
        .ok_or_else(|| OpError::at("setup", "no target"))?;
    let (id, secret) = client_creds(client);
    let r = rp_post(
        t,
        &t.token,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
        "token (client_credentials)",
        steps,
    )
    .await?;
    token_json("token (client_credentials)", &r).map(|_| ())
}

async fn discovery(ctx: &Ctx, target: usize, steps: &mut Steps) -> Result<(), OpError> {
    let t = ctx
        .targets
        .get(target)
        .ok_or_else(|| OpError::at("setup", "no target"))?;
    let r = rp_get(t, &t.discovery, None, "discovery", steps).await?;
    json_ok("discovery", &r)
}

fn json_ok(step: &str, r: &Resp) -> Result<(), OpError> {
    if r.status != 200 {
        return Err(status(step, r));
    }
    serde_json::from_str::<serde_json::Value>(&r.body)
        .map(|_| ())
        .map_err(|_| OpError::at(step, "not JSON"))
}

/// One refresh with the VU's current refresh token; the rotated one replaces it. A VU whose
/// token was lost (an error) signs in again at its next turn, outside the measured requests.
async fn refresh_token(ctx: &Ctx, vu: &Vu, steps: &mut Steps) -> Result<(), OpError> {
    let target = ctx.target(vu)?;
    let mut st = vu.state.lock().await;
    let Some(rt) = st.refresh.clone() else {
        let mut setup = Steps::default();
        session_sign_in(ctx, vu, &mut st, &mut setup).await?;
        return Err(OpError::at("refresh", "no refresh token (signed in again)"));
    };
    let (id, secret) = client_creds(vu.client);
    let r = rp_post(
        target,
        &target.token,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        Some((&id, &secret)),
        "token (refresh)",
        steps,
    )
    .await?;
    match token_json("token (refresh)", &r) {
        Ok(v) => {
            st.refresh = v["refresh_token"].as_str().map(str::to_owned);
            st.access = access_of(&v).or(st.access.take());
            if st.refresh.is_none() {
                return Err(OpError::at("token (refresh)", "no rotated refresh_token"));
            }
            Ok(())
        }
        Err(e) => {
            st.refresh = None;
            Err(e)
        }
    }
}

/// discovery, JWKS and userinfo with the VU's access token (renewed by a refresh when it is
/// about to expire; that request counts in the operation).
async fn basic_get(ctx: &Ctx, vu: &Vu, steps: &mut Steps) -> Result<(), OpError> {
    let target = ctx.target(vu)?;
    let r = rp_get(target, &target.discovery, None, "discovery", steps).await?;
    json_ok("discovery", &r)?;
    let r = rp_get(target, &target.jwks, None, "jwks", steps).await?;
    json_ok("jwks", &r)?;
    let fresh = {
        let st = vu.state.lock().await;
        st.access
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    };
    let at = match fresh {
        Some(t) => t,
        None => {
            refresh_token(ctx, vu, steps).await?;
            let st = vu.state.lock().await;
            st.access
                .as_ref()
                .map(|(t, _)| t.clone())
                .ok_or_else(|| OpError::at("userinfo", "no access token"))?
        }
    };
    let ui = target
        .userinfo
        .as_ref()
        .ok_or_else(|| OpError::at("userinfo", "no userinfo_endpoint"))?;
    let r = rp_get(target, ui, Some(&at), "userinfo", steps).await?;
    json_ok("userinfo", &r)
}

/// authorize again in the VU's signed-in browser: vigil re-assesses the session and answers
/// with a code, no password.
async fn sso_reassess(ctx: &Ctx, vu: &Vu, steps: &mut Steps) -> Result<(), OpError> {
    let target = ctx.target(vu)?;
    let jar = {
        let mut st = vu.state.lock().await;
        match st.jar.clone() {
            Some(j) => j,
            None => {
                let mut setup = Steps::default();
                session_sign_in(ctx, vu, &mut st, &mut setup).await?;
                st.jar
                    .clone()
                    .ok_or_else(|| OpError::at("setup", "no session"))?
            }
        }
    };
    let b = Browser::new(target, jar, Some(data::home_address(vu.k)));
    let pkce = Pkce::new();
    let (url, state) = authorize_url(target, vu, "openid", &pkce);
    let r = b.get(&url, "authorize (sso)", steps).await?;
    match &r.location {
        Some(l) if is_redirect(&r) && l.starts_with(data::REDIRECT_URI) => {
            code_from(l, &state).map(|_| ())
        }
        Some(l) if is_redirect(&r) && l.starts_with("/login") => {
            // The session is gone (ended, expired, re-assessed away): sign in again next time.
            vu.state.lock().await.jar = None;
            Err(OpError::at(
                "authorize (sso)",
                "no SSO: sent to the login page",
            ))
        }
        _ => Err(status("authorize (sso)", &r)),
    }
}

/// A sign-in from a far address through the trusted proxy: vigil asks for the second factor
/// and the TOTP code completes it. Users rotate; one whose TOTP window is spent is skipped.
async fn step_up_totp(ctx: &Ctx, steps: &mut Steps) -> Result<(), OpError> {
    let users = ctx.step_up_pool();
    let step = data::totp_step(unix_now()) + 1;
    // The next user who has not spent this window (at most one pass over all users).
    let mut vu = None;
    for _ in 0..users {
        if let Some(v) = ctx.next_vu(0, users) {
            if v.totp_step.load(Ordering::SeqCst) < step {
                vu = Some(v);
                break;
            }
        }
    }
    let vu = vu.ok_or_else(|| OpError::at("totp", "every user spent this 30 s window"))?;
    let target = ctx.target(vu)?;
    let far = &ctx.opts.far_addresses;
    let trip = vu.trips.fetch_add(1, Ordering::Relaxed) as usize;
    let xff = far.get(trip % far.len().max(1)).cloned();
    let b = Browser::new(target, Arc::new(Jar::default()), xff);
    let pkce = Pkce::new();
    sign_in(&b, vu, "openid", &pkce, Mfa::Expect, steps)
        .await
        .map(|_| ())
}

/// One wrong password from the spray address. vigil's answers are outcomes, not errors: 401
/// (refused) until the address's failure budget is spent, then 429 (throttled, no hash).
async fn spray_attempt(ctx: &Ctx, vu: &Vu, steps: &mut Steps) -> Result<String, OpError> {
    let target = ctx.target(vu)?;
    let b = Browser::new(
        target,
        Arc::new(Jar::default()),
        Some(ctx.opts.spray_address.clone()),
    );
    let url = target
        .on_target("/login")
        .map_err(|e| OpError::at("spray page", e))?;
    let page = b.get(&url, "spray page", steps).await?;
    if page.status != 200 {
        return Err(status("spray page", &page));
    }
    let csrf = hidden_input(&page.body, "csrf_token")
        .ok_or_else(|| OpError::at("spray page", "no csrf_token"))?;
    let user = data::username(vu.k);
    let r = b
        .post_form(
            &url,
            &[
                ("csrf_token", &csrf),
                ("device_hints", ""),
                ("username", &user),
                ("password", "Winter2024!"),
            ],
            "spray attempt",
            steps,
        )
        .await?;
    match r.status {
        401 => Ok("refused (401)".into()),
        429 => Ok("throttled (429)".into()),
        403 => Ok("blocked (403)".into()),
        _ if is_redirect(&r) => Err(OpError::at("spray attempt", "a wrong password signed in")),
        _ => Err(status("spray attempt", &r)),
    }
}
