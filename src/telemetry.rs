//! What this process has done, counted for Prometheus: the collectors live here, in the core,
//! so the flows that know a sign-in's decision or a step-up's factor count it themselves and
//! the web layer only encodes (`web/metrics.rs`). The collectors are process-wide, as the
//! `prometheus` crate intends: one process is one node.
//!
//! Sign-in counts are taken when the row that records them is committed, never before: the
//! flows note them while they write the sign-in log ([`note_signin`]), and `store::Db::run`
//! counts what a committed closure noted ([`take_noted`]) and drops what a failed one did.

use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// Latency buckets (seconds) for requests and database waits: 1 ms to 10 s.
const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for short internal steps (an audit append, a wait for a pooled connection).
const SHORT: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The process's collectors. Label values are closed sets (route patterns, the sign-in log's
/// vocabulary), never user input, so the number of series stays bounded.
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub signins: IntCounterVec,
    pub step_ups: IntCounterVec,
    pub blocks: IntCounterVec,
    pub throttled: IntCounterVec,
    pub hash_wait: Histogram,
    pub hash_rejected: IntCounter,
    pub db_pool_wait: Histogram,
    pub db_unavailable: IntCounter,
    pub audit_append: Histogram,
    pub tokens_issued: IntCounterVec,
    pub breached_checks: IntCounterVec,
    pub reset_requests: IntCounterVec,
    pub mail: IntCounterVec,
    /// The metric names registered above, used or not yet.
    names: Vec<String>,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let counter =
        |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
    let histogram = |name: &str, help: &str, buckets: &[f64]| {
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
    };
    let mut m = Metrics {
        http_requests: counter(
            "vigil_http_requests_total",
            "HTTP requests answered, by route pattern, method and status code",
            &["route", "method", "status"],
        )?,
        http_duration: HistogramVec::new(
            HistogramOpts::new(
                "vigil_http_request_duration_seconds",
                "Time from request to response head, by route pattern and method",
            )
            .buckets(LATENCY.to_vec()),
            &["route", "method"],
        )?,
        signins: counter(
            "vigil_signins_total",
            "Rows of the sign-in log committed, by method, outcome, risk decision and level \
             (`none` when no risk assessment was made, e.g. a wrong password)",
            &["method", "outcome", "decision", "level"],
        )?,
        step_ups: counter(
            "vigil_step_ups_total",
            "Second-factor answers to a step-up or a sign-in, by factor and result",
            &["factor", "result"],
        )?,
        blocks: counter(
            "vigil_blocks_total",
            "Sign-ins refused by risk policy or account state, by reason",
            &["reason"],
        )?,
        throttled: counter(
            "vigil_throttled_total",
            "Guesses refused before any check because a failure budget was spent, by budget",
            &["budget"],
        )?,
        hash_wait: histogram(
            "vigil_password_hash_wait_seconds",
            "Time a password verification waited for a hashing thread",
            LATENCY,
        )?,
        hash_rejected: IntCounter::new(
            "vigil_password_hash_rejected_total",
            "Password verifications refused at once (503) because the hash queue was full",
        )?,
        db_pool_wait: histogram(
            "vigil_db_pool_wait_seconds",
            "Time a database task waited for a pooled connection",
            SHORT,
        )?,
        db_unavailable: IntCounter::new(
            "vigil_db_unavailable_total",
            "Database tasks that got no connection (the database was unreachable or the pool \
             stayed exhausted)",
        )?,
        audit_append: histogram(
            "vigil_audit_append_seconds",
            "Time to append one entry to the audit chain (read the head, hash, insert)",
            SHORT,
        )?,
        tokens_issued: counter(
            "vigil_tokens_issued_total",
            "Token responses issued by the token endpoint, by grant type",
            &["grant"],
        )?,
        breached_checks: counter(
            "vigil_breached_password_checks_total",
            "Passwords looked up in the breached-password range API, by result \
             (`unavailable`: the API did not answer and the check failed open)",
            &["result"],
        )?,
        reset_requests: counter(
            "vigil_password_reset_requests_total",
            "Password-reset requests, by result (`sent`, `no_account`, `throttled`); the \
             page answers all of them alike",
            &["result"],
        )?,
        mail: counter(
            "vigil_mail_total",
            "Outgoing e-mail attempts by the background sender, by result (`sent`, \
             `retrying`, `abandoned`)",
            &["result"],
        )?,
        registry,
        names: Vec::new(),
    };
    let collectors: [Box<dyn Collector>; 15] = [
        Box::new(m.http_requests.clone()),
        Box::new(m.http_duration.clone()),
        Box::new(m.signins.clone()),
        Box::new(m.step_ups.clone()),
        Box::new(m.blocks.clone()),
        Box::new(m.throttled.clone()),
        Box::new(m.hash_wait.clone()),
        Box::new(m.hash_rejected.clone()),
        Box::new(m.db_pool_wait.clone()),
        Box::new(m.db_unavailable.clone()),
        Box::new(m.audit_append.clone()),
        Box::new(m.tokens_issued.clone()),
        Box::new(m.breached_checks.clone()),
        Box::new(m.reset_requests.clone()),
        Box::new(m.mail.clone()),
    ];
    for c in collectors {
        m.names
            .extend(c.desc().into_iter().map(|d| d.fq_name.clone()));
        m.registry.register(c)?;
    }
    Ok(m)
}

/// The collectors (created on first use; the names and labels above are fixed, so building
/// them cannot fail at run time — a failure would be a programming error caught by the tests).
#[allow(clippy::expect_used)]
pub static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().expect("the metric definitions are valid"));

/// The names of the process's metric families, used or not yet (a vector appears in the
/// exposition only once one of its label sets was counted).
pub fn declared() -> Vec<String> {
    METRICS.names.clone()
}

/// One committed row of the sign-in log, as the counters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigninNote {
    pub method: &'static str,
    pub outcome: &'static str,
    pub decision: &'static str,
    pub level: &'static str,
    /// Why it was blocked, when `outcome` is `blocked`.
    pub block_reason: Option<&'static str>,
}

thread_local! {
    /// Sign-ins written by the database task running on this thread, not yet committed.
    static NOTED: RefCell<Vec<SigninNote>> = const { RefCell::new(Vec::new()) };
}

/// Note a sign-in-log row written inside the current database task.
/// Count a password-reset request by what became of it.
pub fn note_reset_request(result: &'static str) {
    METRICS.reset_requests.with_label_values(&[result]).inc();
}

/// Count an outgoing e-mail attempt.
pub fn note_mail(result: &'static str, n: u32) {
    if n > 0 {
        METRICS
            .mail
            .with_label_values(&[result])
            .inc_by(u64::from(n));
    }
}

pub fn note_signin(note: SigninNote) {
    NOTED.with(|n| n.borrow_mut().push(note));
}

/// Take what the current task noted: counted when `committed`, dropped otherwise.
pub fn take_noted(committed: bool) {
    let noted = NOTED.with(|n| std::mem::take(&mut *n.borrow_mut()));
    if committed {
        for n in noted {
            count_signin(&n);
        }
    }
}

fn count_signin(n: &SigninNote) {
    let m = &*METRICS;
    m.signins
        .with_label_values(&[n.method, n.outcome, n.decision, n.level])
        .inc();
    match n.outcome {
        "step_up_passed" => m.step_ups.with_label_values(&[n.method, "passed"]).inc(),
        "step_up_failed" => m.step_ups.with_label_values(&[n.method, "failed"]).inc(),
        "blocked" => m
            .blocks
            .with_label_values(&[n.block_reason.unwrap_or("account_state")])
            .inc(),
        _ => {}
    }
}

/// A request answered: `route` is the matched pattern (`unmatched` for 404s), never the raw path.
pub fn observe_request(route: &str, method: &str, status: u16, took: Duration) {
    let m = &*METRICS;
    let code = status.to_string();
    m.http_requests
        .with_label_values(&[route, method, code.as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[route, method])
        .observe(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_committed_sign_ins_are_counted() {
        let note = SigninNote {
            method: "unit-test-method",
            outcome: "blocked",
            decision: "block",
            level: "high",
            block_reason: Some("policy"),
        };
        let count = || {
            METRICS
                .signins
                .with_label_values(&["unit-test-method", "blocked", "block", "high"])
                .get()
        };
        let before = count();
        note_signin(note.clone());
        take_noted(false);
        assert_eq!(count(), before, "a rolled-back sign-in is not counted");
        note_signin(note);
        take_noted(true);
        assert_eq!(count(), before + 1);
    }

    #[test]
    fn every_collector_is_registered() {
        let names: Vec<String> = METRICS
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        // Vectors appear once a label set was used; the plain ones always.
        assert!(names.contains(&"vigil_password_hash_wait_seconds".to_owned()));
        assert!(names.contains(&"vigil_audit_append_seconds".to_owned()));
    }
}
