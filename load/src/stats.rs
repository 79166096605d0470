//! Latencies and outcomes of one phase: an HDR histogram per operation and per request step
//! (microseconds, 3 significant digits), errors by kind, and counted outcomes that are not
//! errors (a password spray's 401s and 429s).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::http::Steps;

/// Up to 10 minutes, in microseconds.
const MAX_MICROS: u64 = 600_000_000;

// Constant bounds that `new_with_bounds` documents as valid (low ≥ 1, high ≥ 2·low, 3 digits):
// not input, so it cannot fail at run time.
#[allow(clippy::expect_used)]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
    h.saturating_record(us.clamp(1, MAX_MICROS));
}

/// What one sub-stream of a scenario did (a scenario has one, `password_spray` two).
pub struct Stream {
    pub ops: Histogram<u64>,
    pub ok: u64,
    pub steps: BTreeMap<&'static str, Histogram<u64>>,
    pub errors: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            ops: histogram(),
            ok: 0,
            steps: BTreeMap::new(),
            errors: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }
}

impl Stream {
    /// One iteration: its latency from its scheduled arrival, its requests, and how it ended.
    pub fn record(
        &mut self,
        latency: Duration,
        steps: &Steps,
        result: Result<Option<String>, String>,
    ) {
        for (name, d) in &steps.0 {
            record(self.steps.entry(name).or_insert_with(histogram), *d);
        }
        match result {
            Ok(outcome) => {
                self.ok += 1;
                record(&mut self.ops, latency);
                if let Some(o) = outcome {
                    *self.outcomes.entry(o).or_default() += 1;
                }
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Latency figures of `h` in milliseconds.
    fn figures(h: &Histogram<u64>) -> Figures {
        if h.is_empty() {
            return Figures::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Figures {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }

    pub fn op_figures(&self) -> Figures {
        Self::figures(&self.ops)
    }

    pub fn step_figures(&self) -> Vec<(&'static str, Figures)> {
        self.steps
            .iter()
            .map(|(k, h)| (*k, Self::figures(h)))
            .collect()
    }

    /// The SLA is judged per request, as Keycloak's benchmark does: the worst step's mean and
    /// p99, and no error at all.
    pub fn sla(&self, sla: &Sla) -> SlaVerdict {
        let steps = self.step_figures();
        let worst_mean = steps.iter().map(|(_, f)| f.mean).fold(0.0, f64::max);
        let worst_p99 = steps.iter().map(|(_, f)| f.p99).fold(0.0, f64::max);
        let errors = self.error_count();
        let mut why = Vec::new();
        if errors > sla.max_errors {
            why.push(format!("{errors} errors"));
        }
        if worst_mean > sla.mean_ms {
            why.push(format!("mean {worst_mean:.1} ms > {} ms", sla.mean_ms));
        }
        if worst_p99 > sla.p99_ms {
            why.push(format!("p99 {worst_p99:.1} ms > {} ms", sla.p99_ms));
        }
        SlaVerdict {
            pass: why.is_empty() && self.ok > 0,
            why: if self.ok == 0 && why.is_empty() {
                "no operation completed".into()
            } else {
                why.join(", ")
            },
        }
    }

    pub fn json(&self) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .step_figures()
            .into_iter()
            .map(|(k, f)| (k.to_owned(), f.json()))
            .collect();
        json!({
            "ok": self.ok,
            "errors": self.error_count(),
            "errors_by_kind": self.errors,
            "outcomes": self.outcomes,
            "latency_ms": self.op_figures().json(),
            "steps": steps,
        })
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Figures {
    pub fn json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "count": self.count,
            "mean": r(self.mean),
            "p50": r(self.p50),
            "p95": r(self.p95),
            "p99": r(self.p99),
            "max": r(self.max),
        })
    }
}

/// Keycloak's benchmark SLA, per request.
#[derive(Debug, Clone, Copy)]
pub struct Sla {
    pub max_errors: u64,
    pub mean_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone)]
pub struct SlaVerdict {
    pub pass: bool,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_is_per_step_and_counts_errors() {
        let sla = Sla {
            max_errors: 0,
            mean_ms: 300.0,
            p99_ms: 500.0,
        };
        let mut s = Stream::default();
        let fast = Steps(vec![
            ("a", Duration::from_millis(5)),
            ("b", Duration::from_millis(10)),
        ]);
        for _ in 0..100 {
            s.record(Duration::from_millis(15), &fast, Ok(None));
        }
        assert!(s.sla(&sla).pass);
        let slow = Steps(vec![("b", Duration::from_millis(900))]);
        for _ in 0..5 {
            s.record(Duration::from_millis(900), &slow, Ok(None));
        }
        let v = s.sla(&sla);
        assert!(!v.pass && v.why.contains("p99"), "{}", v.why);
        let mut e = Stream::default();
        e.record(Duration::from_millis(1), &fast, Err("x: status 500".into()));
        e.record(Duration::from_millis(1), &fast, Ok(Some("refused".into())));
        assert!(!e.sla(&sla).pass);
        assert_eq!(e.error_count(), 1);
        assert_eq!(e.outcomes["refused"], 1);
    }
}
