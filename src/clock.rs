//! Time as a parameter. The edge of each request reads the clock once and passes the instant
//! down, so token expiry, TOTP windows and impossible-travel tests can run on a fixed clock.
//! The wall clock is forbidden everywhere else by clippy's `disallowed-methods`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Microseconds since the Unix epoch: the one time representation stored in the database.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1_000_000)
    }
    pub const fn micros(self) -> i64 {
        self.0
    }
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    pub const fn plus_secs(self, secs: i64) -> Self {
        Timestamp(self.0 + secs * 1_000_000)
    }
    pub const fn minus_secs(self, secs: i64) -> Self {
        Timestamp(self.0 - secs * 1_000_000)
    }
    /// A human-readable UTC rendering for pages and the CLI.
    pub fn display(self) -> String {
        chrono::DateTime::from_timestamp_micros(self.0)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "—".to_owned())
    }
}

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// The system clock shifted by an offset a test can move forward (token expiry, TOTP steps).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_micros: AtomicI64,
}

impl ShiftedClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn advance_secs(&self, secs: i64) {
        self.offset_micros
            .fetch_add(secs * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let base = SystemClock.now();
        Timestamp(base.0 + self.offset_micros.load(Ordering::SeqCst))
    }
}
