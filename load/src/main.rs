//! `vigil-load`: an open-workload load generator for vigil with keycloak-benchmark's scenarios
//! (see load/README.md). It speaks to the server only over HTTP, like a browser and a relying
//! party would, and reads the server's CPU and memory from /proc when given its PID.

mod data;
mod http;
mod report;
mod run;
mod scenarios;
mod stats;
mod sys;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use crate::report::Row;
use crate::run::{run_phase, Phase, Watch};
use crate::scenarios::{Ctx, Options, Scenario};
use crate::stats::Sla;

#[derive(Parser, Debug)]
#[command(
    name = "vigil-load",
    version,
    about = "Open-workload load generator for vigil (keycloak-benchmark's scenarios)"
)]
struct Cli {
    /// Scenarios to run, in order (default: all). One of auth_code, login_user_password,
    /// client_credentials, refresh_token, basic_get, discovery, sso_reassess, step_up_totp,
    /// password_spray.
    scenarios: Vec<String>,
    /// Base URL of a server (repeat for several nodes; virtual users are spread round-robin).
    #[arg(long = "target", default_value = "http://localhost:8080")]
    targets: Vec<String>,
    /// Users seeded with `vigil seed --users N` (user-1..user-N).
    #[arg(long, default_value_t = 100)]
    users: u32,
    /// Clients seeded with `vigil seed --clients M` (client-1..client-M).
    #[arg(long, default_value_t = 20)]
    clients: u32,
    /// Target arrival rate, operations per second (the first rate in --increment mode).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of linear ramp from 0 to the rate (not measured).
    #[arg(long, default_value_t = 5.0)]
    ramp_up: f64,
    /// Seconds measured at the full rate.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Iterations running at once; an arrival beyond it is dropped and counted as an error.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Increment mode: raise the rate by this much per step until the SLA fails; report the
    /// highest rate that met it.
    #[arg(long)]
    increment: Option<f64>,
    /// Increment mode: stop at this rate even if the SLA still holds.
    #[arg(long, default_value_t = 100_000.0)]
    max_rate: f64,
    /// SLA: errors allowed per phase.
    #[arg(long, default_value_t = 0)]
    sla_errors: u64,
    /// SLA: the slowest request step's mean latency, ms.
    #[arg(long, default_value_t = 300.0)]
    sla_mean_ms: f64,
    /// SLA: the slowest request step's p99 latency, ms.
    #[arg(long, default_value_t = 500.0)]
    sla_p99_ms: f64,
    /// PID of a server process to measure (CPU per op, peak RSS); repeat for two nodes.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON object to this file (the table still goes to stdout).
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// Also print each request step's latency.
    #[arg(long)]
    steps: bool,
    /// A CI run: each scenario for --smoke-secs at --smoke-rate, no ramp; exit 1 on any error.
    /// Timings are reported, never judged.
    #[arg(long)]
    smoke: bool,
    #[arg(long, default_value_t = 3.0)]
    smoke_secs: f64,
    #[arg(long, default_value_t = 4.0)]
    smoke_rate: f64,
    /// Virtual users the session scenarios (refresh_token, basic_get, sso_reassess) sign in
    /// before measuring and cycle through.
    #[arg(long, default_value_t = 200)]
    sessions: u32,
    /// Virtual users step_up_totp signs in once before measuring (from the first far address)
    /// and cycles through; each can answer one TOTP step-up per 30 s, so its rate is at most
    /// this / 30 per second. 0: all users.
    #[arg(long, default_value_t = 0)]
    step_up_users: u32,
    /// Addresses step_up_totp signs in from through the trusted proxy, in turn (far apart in
    /// vigil's GeoIP test database: London, Sydney).
    #[arg(long = "far-address", default_values_t = ["81.2.69.10".to_owned(), "198.51.100.10".to_owned()])]
    far_addresses: Vec<String>,
    /// The address password_spray's attack comes from (New York in the test database).
    #[arg(long, default_value = "203.0.113.66")]
    spray_address: String,
    /// Share of password_spray arrivals that are attack attempts.
    #[arg(long, default_value_t = 0.5)]
    spray_share: f64,
    /// Seconds a request may take before it counts as a timeout error.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Seconds to wait for each target's discovery document at start.
    #[arg(long, default_value_t = 30.0)]
    wait: f64,
    /// Free text describing the setup (database, nodes, hash parameters), shown in the report.
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil-load: {e}");
            ExitCode::from(2)
        }
    }
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what}: {s} is not a number of seconds"))
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let mut scenarios = Vec::new();
    for s in &cli.scenarios {
        scenarios.push(Scenario::parse(s)?);
    }
    if scenarios.is_empty() {
        scenarios = Scenario::ALL.to_vec();
    }
    if cli.rate <= 0.0 && cli.increment.is_none() {
        return Err("--rate must be above 0".into());
    }
    if cli.targets.is_empty() {
        return Err("give at least one --target".into());
    }
    let timeout = secs(cli.timeout, "--timeout")?;
    let wait = secs(cli.wait, "--wait")?;
    let mut targets = Vec::new();
    for t in &cli.targets {
        targets.push(http::Target::discover(t, timeout, wait).await?);
    }
    if scenarios.iter().any(|s| s.needs_users()) && cli.users == 0 {
        return Err("these scenarios need seeded users: give --users N as seeded".into());
    }
    let opts = Options {
        far_addresses: cli.far_addresses.clone(),
        spray_address: cli.spray_address.clone(),
        spray_share: cli.spray_share,
        sessions: cli.sessions,
        step_up_users: cli.step_up_users,
    };
    let ctx = Arc::new(Ctx::new(targets, cli.users, cli.clients, opts));
    let sla = Sla {
        max_errors: cli.sla_errors,
        mean_ms: cli.sla_mean_ms,
        p99_ms: cli.sla_p99_ms,
    };
    let watch = Watch {
        pids: cli.pids.clone(),
    };
    let (rate, ramp, duration) = if cli.smoke {
        (
            cli.smoke_rate,
            Duration::ZERO,
            secs(cli.smoke_secs, "--smoke-secs")?,
        )
    } else {
        (
            cli.rate,
            secs(cli.ramp_up, "--ramp-up")?,
            secs(cli.duration, "--duration")?,
        )
    };
    let mut rows = Vec::new();
    let mut prepared = false;
    for s in scenarios {
        if s.needs_sessions() && !prepared {
            eprintln!(
                "signing in {} virtual users for the session scenarios…",
                ctx.session_pool()
            );
            scenarios::prepare(&ctx, s, 8).await?;
            prepared = true;
        }
        if s == Scenario::StepUpTotp {
            eprintln!(
                "signing in {} virtual users once from {} for step_up_totp…",
                ctx.step_up_pool(),
                cli.far_addresses.first().map(String::as_str).unwrap_or("?")
            );
            scenarios::prepare(&ctx, s, 8).await?;
            scenarios::await_fresh_totp_window(&ctx).await;
        }
        let phase = |rate: f64| Phase {
            rate,
            ramp,
            duration,
            max_in_flight: cli.max_in_flight,
        };
        let row = match cli.increment.filter(|_| !cli.smoke) {
            None => {
                eprintln!(
                    "{}: {rate}/s for {:.0} s…",
                    s.name(),
                    duration.as_secs_f64()
                );
                let result = run_phase(&ctx, s, cli.clients, phase(rate), &watch).await;
                let verdict = judge(&result, &sla);
                Row {
                    result,
                    verdict,
                    steps: Vec::new(),
                    max_rate: None,
                }
            }
            Some(step) if step > 0.0 => {
                increment(&ctx, s, &cli, rate, step, &phase, &watch, &sla).await
            }
            Some(_) => return Err("--increment must be above 0".into()),
        };
        rows.push(row);
    }
    let config = json!({
        "label": cli.label,
        "targets": cli.targets,
        "users": cli.users,
        "clients": cli.clients,
        "sessions": ctx.session_pool(),
        "step_up_users": ctx.step_up_pool(),
        "pids": cli.pids,
        "rate": rate,
        "ramp_up_secs": ramp.as_secs_f64(),
        "duration_secs": duration.as_secs_f64(),
        "max_in_flight": cli.max_in_flight,
        "increment": cli.increment,
        "smoke": cli.smoke,
        "sla": { "errors": sla.max_errors, "mean_ms": sla.mean_ms, "p99_ms": sla.p99_ms },
    });
    let doc = report::json(&rows, config);
    if let Some(path) = &cli.json_out {
        std::fs::write(path, format!("{doc}\n"))
            .map_err(|e| format!("--json-out {}: {e}", path.display()))?;
    }
    if cli.json {
        println!("{doc}");
    } else {
        let header = format!(
            "vigil-load {}{} — targets {}; {} users, {} clients",
            env!("CARGO_PKG_VERSION"),
            if cli.label.is_empty() {
                String::new()
            } else {
                format!(" — {}", cli.label)
            },
            cli.targets.join(", "),
            cli.users,
            cli.clients
        );
        print!("{}", report::table(&rows, &header, cli.steps, &sla));
    }
    if cli.smoke {
        let failed: Vec<String> = rows
            .iter()
            .filter(|r| r.result.errors() > 0 || r.result.ok() == 0)
            .map(|r| {
                format!(
                    "{} ({} errors, {} ok)",
                    r.result.scenario.name(),
                    r.result.errors(),
                    r.result.ok()
                )
            })
            .collect();
        if !failed.is_empty() {
            eprintln!("vigil-load: smoke run failed: {}", failed.join(", "));
            return Ok(ExitCode::from(1));
        }
        eprintln!(
            "vigil-load: smoke run passed ({} scenarios, 0 errors)",
            rows.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The SLA over every stream of a phase; the dropped and unfinished arrivals are errors too.
fn judge(r: &run::PhaseResult, sla: &Sla) -> stats::SlaVerdict {
    let mut why = Vec::new();
    let mut pass = true;
    for (i, s) in r.streams.iter().enumerate() {
        // The spray's own requests are the attack: only their errors (not their latency) count.
        let attack = r.scenario == Scenario::PasswordSpray && i == 0;
        let v = s.sla(&Sla {
            max_errors: sla.max_errors,
            mean_ms: if attack { f64::INFINITY } else { sla.mean_ms },
            p99_ms: if attack { f64::INFINITY } else { sla.p99_ms },
        });
        if !v.pass {
            pass = false;
            why.push(v.why);
        }
    }
    let lost = r.dropped + r.unfinished;
    if lost > sla.max_errors {
        pass = false;
        why.push(format!("{lost} arrivals dropped or unfinished"));
    }
    stats::SlaVerdict {
        pass,
        why: why.join("; "),
    }
}

/// The three most frequent error kinds of a phase, "N × kind" each.
fn top_errors(r: &run::PhaseResult) -> String {
    let mut all: Vec<(u64, String)> = r
        .streams
        .iter()
        .flat_map(|s| s.errors.iter().map(|(k, n)| (*n, k.clone())))
        .collect();
    if r.dropped > 0 {
        all.push((r.dropped, "dropped: max in-flight reached".into()));
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    all.iter()
        .take(3)
        .map(|(n, k)| format!("{n} × {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::too_many_arguments)]
async fn increment(
    ctx: &Arc<Ctx>,
    s: Scenario,
    cli: &Cli,
    start: f64,
    step: f64,
    phase: &dyn Fn(f64) -> Phase,
    watch: &Watch,
    sla: &Sla,
) -> Row {
    let mut tried = Vec::new();
    let mut best: Option<(run::PhaseResult, stats::SlaVerdict)> = None;
    let mut first: Option<(run::PhaseResult, stats::SlaVerdict)> = None;
    let mut rate = start.max(step);
    while rate <= cli.max_rate {
        eprintln!("{}: {rate}/s…", s.name());
        let result = run_phase(ctx, s, cli.clients, phase(rate), watch).await;
        let verdict = judge(&result, sla);
        eprintln!(
            "{}: {rate}/s {} ({:.1} ops/s, p99 {:.1} ms){}",
            s.name(),
            if verdict.pass {
                "met the SLA"
            } else {
                "failed the SLA"
            },
            result.throughput(result.streams.len().saturating_sub(1)),
            result
                .streams
                .last()
                .map(|x| x.op_figures().p99)
                .unwrap_or(0.0),
            if verdict.pass {
                String::new()
            } else {
                format!(": {}", verdict.why)
            }
        );
        let kinds = top_errors(&result);
        if !kinds.is_empty() {
            eprintln!("  errors: {kinds}");
        }
        let why = if kinds.is_empty() {
            verdict.why.clone()
        } else {
            format!("{}; {kinds}", verdict.why)
        };
        tried.push((rate, verdict.pass, why));
        let pass = verdict.pass;
        if pass {
            best = Some((result, verdict));
        } else {
            if best.is_none() {
                first = Some((result, verdict));
            }
            break;
        }
        rate += step;
    }
    let max_rate = best.as_ref().map(|(r, _)| r.phase.rate);
    match best.or(first) {
        Some((result, verdict)) => Row {
            result,
            verdict,
            steps: tried,
            max_rate,
        },
        None => Row {
            result: run_phase(ctx, s, cli.clients, phase(0.0), watch).await,
            verdict: stats::SlaVerdict {
                pass: false,
                why: "no step ran (--max-rate below --rate)".into(),
            },
            steps: tried,
            max_rate: None,
        },
    }
}
