//! The report: a table for people, one JSON object for scripts. Per scenario (and per stream of
//! password_spray): achieved throughput, latency percentiles of the whole operation, errors by
//! kind, outcomes, and the server's cost per operation.

use serde_json::{json, Value};

use crate::run::PhaseResult;
use crate::stats::{Sla, SlaVerdict};

/// One scenario's reported run: the phase measured (in increment mode, the highest rate that
/// met the SLA, or the first step when none did) and the steps tried.
pub struct Row {
    pub result: PhaseResult,
    pub verdict: SlaVerdict,
    /// Increment mode: (rate, passed, why) of each step.
    pub steps: Vec<(f64, bool, String)>,
    /// Increment mode: the highest rate that met the SLA.
    pub max_rate: Option<f64>,
}

/// CPU seconds per operation over all watched processes.
fn cpu_per_op(r: &PhaseResult) -> Option<f64> {
    let cpu: Option<f64> = r.spent.cpu.iter().try_fold(0.0, |a, c| c.map(|c| a + c));
    match cpu {
        Some(c) if r.spent.ops > 0 && !r.spent.cpu.is_empty() => Some(c / r.spent.ops as f64),
        _ => None,
    }
}

fn own_cpu_per_op(r: &PhaseResult) -> Option<f64> {
    match r.spent.own_cpu {
        Some(c) if r.spent.ops > 0 => Some(c / r.spent.ops as f64),
        _ => None,
    }
}

fn commits_per_op(r: &PhaseResult) -> Option<f64> {
    match r.spent.commits {
        Some(c) if r.spent.ops > 0 => Some(c / r.spent.ops as f64),
        _ => None,
    }
}

fn peak_rss_mb(r: &PhaseResult) -> Option<f64> {
    let v: Option<Vec<u64>> = r.spent.peak_rss.iter().copied().collect();
    v.and_then(|v| v.into_iter().max())
        .map(|b| b as f64 / (1024.0 * 1024.0))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".into(),
    }
}

pub fn table(rows: &[Row], header: &str, show_steps: bool, sla: &Sla) -> String {
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(header);
        out.push('\n');
    }
    out.push_str(&format!(
        "SLA per request: {} errors, mean ≤ {} ms, p99 ≤ {} ms\n",
        sla.max_errors, sla.mean_ms, sla.p99_ms
    ));
    out.push_str(&format!(
        "{:<28} {:>8} {:>9} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>12} {:>8} {:>10} {:>9}  {}\n",
        "scenario", "rate", "ops/s", "ok", "err", "mean", "p50", "p95", "p99", "max",
        "cpu ms/op", "1 vCPU per", "peakRSS", "commits/op", "gen ms/op", "SLA"
    ));
    for row in rows {
        let r = &row.result;
        let cpu = cpu_per_op(r);
        for (i, name) in r.scenario.streams().iter().enumerate() {
            let Some(s) = r.streams.get(i) else { continue };
            let f = s.op_figures();
            let label = if name.is_empty() {
                r.scenario.name().to_owned()
            } else {
                format!("{}/{}", r.scenario.name(), name)
            };
            let mut errs = s.error_count();
            if i == 0 {
                errs += r.dropped + r.unfinished;
            }
            // Resource figures belong to the whole scenario: shown on its first line.
            let (cpu_s, vcpu, rss, commits, gen) = if i == 0 {
                (
                    opt(cpu.map(|c| c * 1000.0), 2),
                    cpu.filter(|c| *c > 0.0)
                        .map(|c| format!("{:.0} ops/s", 1.0 / c))
                        .unwrap_or_else(|| "n/a".into()),
                    peak_rss_mb(r)
                        .map(|m| format!("{m:.0} MB"))
                        .unwrap_or_else(|| "n/a".into()),
                    opt(commits_per_op(r), 2),
                    opt(own_cpu_per_op(r).map(|c| c * 1000.0), 2),
                )
            } else {
                Default::default()
            };
            let sla_col = if i == 0 {
                match row.max_rate {
                    Some(m) => format!("max {m:.0}/s"),
                    None if !row.steps.is_empty() => "none met".into(),
                    None if row.verdict.pass => "pass".into(),
                    None => format!("fail ({})", row.verdict.why),
                }
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{:<28} {:>8.0} {:>9.1} {:>7} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>12} {:>8} {:>10} {:>9}  {}\n",
                label,
                r.phase.rate,
                r.throughput(i),
                s.ok,
                errs,
                f.mean,
                f.p50,
                f.p95,
                f.p99,
                f.max,
                cpu_s,
                vcpu,
                rss,
                commits,
                gen,
                sla_col
            ));
            if show_steps {
                for (step, f) in s.step_figures() {
                    out.push_str(&format!(
                        "  {:<26} {:>8} {:>9} {:>7} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}\n",
                        step, "", "", f.count, "", f.mean, f.p50, f.p95, f.p99, f.max
                    ));
                }
            }
            for (kind, n) in &s.errors {
                out.push_str(&format!("  error {n:>6} × {kind}\n"));
            }
            if i == 0 && r.dropped > 0 {
                out.push_str(&format!(
                    "  error {:>6} × dropped: max in-flight reached\n",
                    r.dropped
                ));
            }
            if i == 0 && r.unfinished > 0 {
                out.push_str(&format!(
                    "  error {:>6} × still running after the drain timeout\n",
                    r.unfinished
                ));
            }
            for (kind, n) in &s.outcomes {
                out.push_str(&format!("  outcome {n:>6} × {kind}\n"));
            }
        }
        if !row.steps.is_empty() {
            let tried: Vec<String> = row
                .steps
                .iter()
                .map(|(rate, pass, why)| {
                    if *pass {
                        format!("{rate:.0} ok")
                    } else {
                        format!("{rate:.0} failed ({why})")
                    }
                })
                .collect();
            out.push_str(&format!("  increments: {}\n", tried.join(", ")));
        }
    }
    out
}

pub fn json(rows: &[Row], config: Value) -> Value {
    let scenarios: Vec<Value> = rows
        .iter()
        .map(|row| {
            let r = &row.result;
            let cpu = cpu_per_op(r);
            let streams: serde_json::Map<String, Value> = r
                .scenario
                .streams()
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let s = r.streams.get(i)?;
                    let mut v = s.json();
                    v["throughput"] = json!((r.throughput(i) * 10.0).round() / 10.0);
                    let key = if name.is_empty() { "ops" } else { name };
                    Some((key.to_owned(), v))
                })
                .collect();
            json!({
                "scenario": r.scenario.name(),
                "rate": r.phase.rate,
                "ramp_secs": r.phase.ramp.as_secs_f64(),
                "duration_secs": r.phase.duration.as_secs_f64(),
                "streams": streams,
                "dropped": r.dropped,
                "unfinished": r.unfinished,
                "errors": r.errors(),
                "sla": { "pass": row.verdict.pass, "why": row.verdict.why },
                "increments": row.steps.iter().map(|(rate, pass, why)| json!({"rate": rate, "pass": pass, "why": why})).collect::<Vec<_>>(),
                "max_rate_meeting_sla": row.max_rate,
                "server": {
                    "cpu_seconds": r.spent.cpu,
                    "cpu_seconds_per_op": cpu,
                    "ops_per_vcpu_second": cpu.filter(|c| *c > 0.0).map(|c| 1.0 / c),
                    "peak_rss_bytes": r.spent.peak_rss,
                    "peak_rss_reset_at_start": r.spent.peak_reset,
                    "commits": r.spent.commits,
                    "commits_per_op": commits_per_op(r),
                    "ops": r.spent.ops,
                    "load_tool_cpu_seconds_per_op": own_cpu_per_op(r),
                    "seconds": r.spent.seconds,
                },
            })
        })
        .collect();
    json!({ "config": config, "scenarios": scenarios })
}
