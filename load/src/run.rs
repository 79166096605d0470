//! The open workload: arrivals at a target rate (ops/s) reached by a linear ramp, each arrival
//! one scenario iteration in its own task, at most `max_in_flight` at once (an arrival beyond
//! that is dropped and counted as an error: the generator, or the server, cannot keep up).
//! Latency runs from an arrival's scheduled time, so a stall is charged to every arrival it
//! delays (no coordinated omission). Only arrivals after the ramp are measured.
//!
//! ```text
//! rate ▲        ┌───────────── steady (measured) ─────────────┐
//!      │      ╱ │                                              │
//!      │    ╱   │                                              │ drain in-flight
//!      │  ╱ramp │                                              │
//!      └────────┴──────────────────────────────────────────────┴──▶ t
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::http::Steps;
use crate::scenarios::{iterate, Ctx, Scenario};
use crate::stats::Stream;
use crate::sys;

#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub rate: f64,
    pub ramp: Duration,
    pub duration: Duration,
    pub max_in_flight: usize,
}

/// The processes and endpoints whose cost is measured.
pub struct Watch {
    pub pids: Vec<u32>,
}

/// What the server spent during a phase.
#[derive(Debug, Clone, Default)]
pub struct Spent {
    /// CPU seconds per watched process (None: unreadable).
    pub cpu: Vec<Option<f64>>,
    /// Peak RSS per watched process, bytes.
    pub peak_rss: Vec<Option<u64>>,
    /// Whether the peak was reset at the phase start (else: since process start).
    pub peak_reset: bool,
    pub commits: Option<f64>,
    /// CPU seconds the load tool itself used.
    pub own_cpu: Option<f64>,
    /// Operations the resource figures are divided by.
    pub ops: u64,
    /// Seconds between the two samples.
    pub seconds: f64,
}

pub struct PhaseResult {
    pub scenario: Scenario,
    pub phase: Phase,
    pub streams: Vec<Stream>,
    /// Arrivals refused because `max_in_flight` were running.
    pub dropped: u64,
    /// Arrivals still running when the drain timed out.
    pub unfinished: u64,
    pub spent: Spent,
}

impl PhaseResult {
    pub fn ok(&self) -> u64 {
        self.streams.iter().map(|s| s.ok).sum()
    }
    pub fn errors(&self) -> u64 {
        self.streams.iter().map(Stream::error_count).sum::<u64>() + self.dropped + self.unfinished
    }
    /// Achieved throughput of completed operations over the measured window.
    pub fn throughput(&self, stream: usize) -> f64 {
        let secs = self.phase.duration.as_secs_f64();
        match self.streams.get(stream) {
            Some(s) if secs > 0.0 => s.ok as f64 / secs,
            _ => 0.0,
        }
    }
}

/// When arrival `i` is due, in seconds from the phase start: the rate grows linearly from 0 to
/// `rate` over `ramp` seconds (so `rate·ramp/2` arrivals fall in the ramp), then stays.
pub fn arrival(i: u64, rate: f64, ramp: f64) -> f64 {
    let i = i as f64;
    let in_ramp = rate * ramp / 2.0;
    if ramp > 0.0 && i < in_ramp {
        (2.0 * ramp * i / rate).sqrt()
    } else {
        ramp + (i - in_ramp) / rate
    }
}

pub async fn run_phase(
    ctx: &Arc<Ctx>,
    scenario: Scenario,
    clients: u32,
    phase: Phase,
    watch: &Watch,
) -> PhaseResult {
    let streams: Arc<Mutex<Vec<Stream>>> = Arc::new(Mutex::new(
        scenario
            .streams()
            .iter()
            .map(|_| Stream::default())
            .collect(),
    ));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let ramp = phase.ramp.as_secs_f64();
    let end = ramp + phase.duration.as_secs_f64();
    let start = Instant::now();
    let mut dropped = 0u64;
    let mut steady_arrivals = 0u64;
    let mut before: Option<(sys::Sample, Instant)> = None;
    let peak_reset = watch.pids.iter().all(|p| sys::reset_peak_rss(*p)) && !watch.pids.is_empty();
    let bases: Vec<url::Url> = ctx.targets.iter().map(|t| t.base.clone()).collect();
    let http = ctx.targets.first().map(|t| t.http.clone());
    if phase.rate > 0.0 {
        for i in 0u64.. {
            let t = arrival(i, phase.rate, ramp);
            if t >= end {
                break;
            }
            let steady = t >= ramp;
            if steady && before.is_none() {
                // The measured window opens: sample the server before its first arrival.
                tokio::time::sleep_until(start + Duration::from_secs_f64(t)).await;
                let s = match &http {
                    Some(h) => sys::sample(&watch.pids, h, &bases).await,
                    None => sys::Sample::default(),
                };
                before = Some((s, Instant::now()));
            }
            let due = start + Duration::from_secs_f64(t);
            tokio::time::sleep_until(due).await;
            if steady {
                steady_arrivals += 1;
            }
            if in_flight.load(Ordering::SeqCst) >= phase.max_in_flight {
                if steady {
                    dropped += 1;
                }
                continue;
            }
            in_flight.fetch_add(1, Ordering::SeqCst);
            let (ctx, streams, in_flight) = (ctx.clone(), streams.clone(), in_flight.clone());
            tokio::spawn(async move {
                let mut steps = Steps::default();
                let (stream, result) = iterate(&ctx, scenario, clients, &mut steps).await;
                let latency = due.elapsed();
                if steady {
                    if let Ok(mut s) = streams.lock() {
                        if let Some(st) = s.get_mut(stream) {
                            st.record(latency, &steps, result.map_err(|e| e.kind));
                        }
                    }
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
    // Drain: let the last arrivals finish (bounded: a wedged server must not hang the run).
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let unfinished = in_flight.load(Ordering::SeqCst) as u64;
    let after = match &http {
        Some(h) => sys::sample(&watch.pids, h, &bases).await,
        None => sys::Sample::default(),
    };
    let spent = match before {
        Some((b, at)) => Spent {
            cpu: b
                .cpu
                .iter()
                .zip(&after.cpu)
                .map(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => Some(y - x),
                    _ => None,
                })
                .collect(),
            peak_rss: watch
                .pids
                .iter()
                .map(|p| sys::peak_rss_bytes(*p).ok())
                .collect(),
            peak_reset,
            commits: match (b.commits, after.commits) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            },
            own_cpu: match (b.own, after.own) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            },
            ops: steady_arrivals.saturating_sub(dropped),
            seconds: at.elapsed().as_secs_f64(),
        },
        None => Spent::default(),
    };
    let streams = match Arc::try_unwrap(streams) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        // A task still holds it (drain timed out): take a copy of nothing rather than wait.
        Err(shared) => match shared.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        },
    };
    PhaseResult {
        scenario,
        phase,
        streams,
        dropped,
        unfinished,
        spent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_ramp_then_hold_the_rate() {
        // 10/s with a 4 s ramp: 20 arrivals in the ramp, then one every 0.1 s.
        assert_eq!(arrival(0, 10.0, 4.0), 0.0);
        assert!((arrival(20, 10.0, 4.0) - 4.0).abs() < 1e-9);
        assert!((arrival(30, 10.0, 4.0) - 5.0).abs() < 1e-9);
        let t5 = arrival(5, 10.0, 4.0);
        assert!(
            (t5 - 2.0).abs() < 1e-9,
            "a quarter of the ramp's arrivals by half its time"
        );
        // No ramp: evenly spaced from 0.
        assert!((arrival(7, 10.0, 0.0) - 0.7).abs() < 1e-9);
    }
}
