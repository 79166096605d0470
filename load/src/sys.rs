//! What the server process spent, read from Linux's /proc: CPU time (utime + stime of
//! /proc/PID/stat) and peak resident memory (VmHWM of /proc/PID/status, reset per phase through
//! /proc/PID/clear_refs where allowed), and vigil's durable-commit counter from `/metrics`.

use std::time::Duration;

use url::Url;

/// Clock ticks per second of /proc/PID/stat: USER_HZ, 100 on every Linux ABI in use (the
/// kernel fixes it for userspace; `getconf CLK_TCK` would need libc or a subprocess).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let tick = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v as f64 / USER_HZ)
            .ok_or_else(|| format!("{path}: no field {}", i + 3))
    };
    Ok(tick(11)? + tick(12)?)
}

/// Peak resident set size in bytes (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("{path}: no VmHWM"))
}

/// Reset the peak RSS to the current RSS (Linux ≥ 4.0, same user or root), so a phase reports
/// its own peak. Returns false where not allowed: the peak is then since process start.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `vigil_db_commits_total` from `/metrics` (Prometheus text), summed over its label sets;
/// `None` when the endpoint or the counter is absent.
pub async fn commits(http: &reqwest::Client, base: &Url) -> Option<f64> {
    let url = base.join("metrics").ok()?;
    let r = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    parse_counter(&r.text().await.ok()?, "vigil_db_commits_total")
}

fn parse_counter(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name 12`, `name{flow="token"} 12`, not `name_created …`.
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest
            .rsplit_once('}')
            .map(|(_, v)| v)
            .unwrap_or(rest)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}

/// One sample of every watched process.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub cpu: Vec<Option<f64>>,
    /// The load tool's own CPU seconds: when it nears the cores left to it, it is the limit.
    pub own: Option<f64>,
    pub commits: Option<f64>,
}

pub async fn sample(pids: &[u32], http: &reqwest::Client, bases: &[Url]) -> Sample {
    let cpu = pids.iter().map(|p| cpu_seconds(*p).ok()).collect();
    // Two nodes share one database: a commit counter per node, summed.
    let mut commits_total: Option<f64> = None;
    for b in bases {
        if let Some(c) = commits(http, b).await {
            commits_total = Some(commits_total.unwrap_or(0.0) + c);
        }
    }
    Sample {
        cpu,
        own: cpu_seconds(std::process::id()).ok(),
        commits: commits_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_sums_label_sets_and_ignores_lookalikes() {
        let text = "# HELP vigil_db_commits_total Durable commits.\n\
                    # TYPE vigil_db_commits_total counter\n\
                    vigil_db_commits_total{flow=\"token\"} 10\n\
                    vigil_db_commits_total{flow=\"login\"} 5.5\n\
                    vigil_db_commits_total_created 1700000000\n";
        assert_eq!(parse_counter(text, "vigil_db_commits_total"), Some(15.5));
        assert_eq!(
            parse_counter("vigil_db_commits_total 3\n", "vigil_db_commits_total"),
            Some(3.0)
        );
        assert_eq!(parse_counter("other 3\n", "vigil_db_commits_total"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(peak_rss_bytes(me).unwrap() > 0);
    }
}
