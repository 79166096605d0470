//! Passwords: argon2id hashing and verification on a bounded set of blocking threads, the
//! policy for new passwords (NIST SP 800-63B: length and a common-password list, no composition
//! rules), and a dummy hash so that an unknown username costs the same time as a known one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    self, Output, ParamsString, PasswordHash, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AuthError;
use crate::config::PasswordParams;

pub const MIN_LENGTH: usize = 8;
/// Long enough for any passphrase, short enough that hashing cannot be used to exhaust memory.
pub const MAX_LENGTH: usize = 1024;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// Refuse a new password that is too short, too long, the username, or commonly used.
pub fn check_policy(password: &str, username: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(AuthError::WeakPassword(format!(
            "the password is too short: use at least {MIN_LENGTH} characters"
        )));
    }
    if chars > MAX_LENGTH {
        return Err(AuthError::WeakPassword(format!(
            "the password is too long: use at most {MAX_LENGTH} characters"
        )));
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() {
        return Err(AuthError::WeakPassword(
            "the password must not be the username".into(),
        ));
    }
    if COMMON.contains(lower.as_str()) {
        return Err(AuthError::WeakPassword(
            "this password is on the list of commonly used passwords; choose another".into(),
        ));
    }
    Ok(())
}

/// The result of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub ok: bool,
    /// The stored hash uses other parameters than the configured ones: rehash now.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords off the async workers, at most `permits` at a time, with at
/// most `queue` more waiting: beyond that a request is refused at once ([`AuthError::Busy`])
/// rather than holding memory and a connection while a flood drains.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    queue: usize,
    waiting: Arc<AtomicUsize>,
    dummy: Arc<String>,
    /// Argon2 working memory (19 MiB at the default cost), kept between verifications: a fresh
    /// allocation of that size per sign-in costs thousands of page faults. At most one buffer
    /// per permit exists, so the pool never holds more than `concurrency` of them.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// One place in the wait queue, given back however the wait ends (done, failed or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish()
    }
}

impl Hasher {
    /// `concurrency` bounds simultaneous hashes (the core count: more only queues in the kernel);
    /// `queue` bounds the requests waiting for one.
    pub fn new(p: PasswordParams, concurrency: usize, queue: usize) -> Result<Self, AuthError> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let mut h = Hasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            dummy: Arc::new(String::new()),
            memory: Arc::new(Mutex::new(Vec::new())),
        };
        // A real hash of a random value: verifying against it costs exactly what a real one does.
        let random = uuid::Uuid::new_v4().to_string();
        h.dummy = Arc::new(h.hash_blocking(&random)?);
        // An idle server (or a CLI command) does not keep 19 MiB it may never use: the first
        // sign-in takes its buffer again.
        if let Ok(mut pool) = h.memory.lock() {
            pool.clear();
        }
        Ok(h)
    }

    /// Requests waiting for a hashing thread now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A hashing slot: at once if one is free, else a place in the bounded queue, else `Busy`.
    async fn slot(&self) -> Result<SemaphorePermit<'_>, AuthError> {
        let metrics = &crate::telemetry::METRICS;
        if let Ok(p) = self.permits.try_acquire() {
            metrics.hash_wait.observe(0.0);
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics.hash_rejected.inc();
            return Err(AuthError::Busy);
        }
        let _place = Waiting(&self.waiting);
        let queued = std::time::Instant::now();
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()));
        metrics.hash_wait.observe(queued.elapsed().as_secs_f64());
        permit
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hash on the calling thread (the server goes through [`Hasher::hash`]). The working memory
    /// comes from the pool, as for a verification: argon2's own `hash_password` allocates and
    /// frees 19 MiB per new password, and glibc then keeps every later allocation below that size
    /// in its arenas (its mmap threshold follows the largest block freed).
    pub fn hash_blocking(&self, password: &str) -> Result<String, AuthError> {
        let failed = |e: &dyn std::fmt::Display| AuthError::Hashing(e.to_string());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| failed(&e))?;
        let argon = self.argon();
        let len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = self
            .in_pooled_memory(self.params.block_count(), |blocks| {
                Output::init_with(len, |out| {
                    argon
                        .hash_password_into_with_memory(
                            password.as_bytes(),
                            salt_bytes,
                            out,
                            blocks,
                        )
                        .map_err(password_hash::Error::from)
                })
            })
            .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Run `f` on `need` argon2 blocks from the pool (allocated on first use, given back after).
    fn in_pooled_memory<R>(&self, need: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let mut blocks = self
            .memory
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        let out = f(&mut blocks[..need]);
        if let Ok(mut pool) = self.memory.lock() {
            pool.push(blocks);
        }
        out
    }

    /// Verify on the calling thread. The server goes through [`Hasher::verify`] (bounded, off
    /// the async workers); the ceilings bench calls this to time the hash as the server runs it.
    pub fn verify_blocking(&self, stored: &str, password: &str) -> Checked {
        let Ok(parsed) = PasswordHash::new(stored) else {
            // An account without a password (provisioned, not yet set): nothing verifies, and
            // the answer takes as long as a real check, so it does not tell such accounts apart.
            if stored != self.dummy.as_str() && !self.dummy.is_empty() {
                let _ = self.verify_blocking(&self.dummy, password);
            }
            return Checked {
                ok: false,
                needs_rehash: false,
            };
        };
        let ok = match self.verify_in_pooled_memory(&parsed, password.as_bytes()) {
            Some(ok) => ok,
            // Not an argon2id hash this path understands: the crate's own verifier decides.
            None => self
                .argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        };
        let needs_rehash = ok && !self.matches_params(&parsed);
        Checked { ok, needs_rehash }
    }

    /// Recompute an argon2id hash with working memory from the pool and compare in constant
    /// time; `None` when the hash is not argon2id with a salt and an output.
    fn verify_in_pooled_memory(&self, parsed: &PasswordHash<'_>, password: &[u8]) -> Option<bool> {
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return None;
        }
        let params = Params::try_from(parsed).ok()?;
        let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
        let expected = parsed.hash?;
        let mut salt_buf = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(Algorithm::Argon2id, version, params.clone());
        let computed = self.in_pooled_memory(params.block_count(), |blocks| {
            argon
                .hash_password_into_with_memory(password, salt, &mut out, blocks)
                .is_ok()
        });
        Some(computed && bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    }

    fn matches_params(&self, parsed: &PasswordHash<'_>) -> bool {
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        match Params::try_from(parsed) {
            Ok(p) => {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            }
            Err(_) => false,
        }
    }

    /// Hash a new password on the blocking pool.
    pub async fn hash(&self, password: SecretString) -> Result<String, AuthError> {
        let _permit = self.slot().await?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.hash_blocking(password.expose_secret()))
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?
    }

    /// Verify `password` against `stored`, or against the dummy hash when there is no account,
    /// so both paths take the same time. `ok` is false for an unknown account.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: SecretString,
    ) -> Result<Checked, AuthError> {
        let _permit = self.slot().await?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || match stored {
            Some(hash) => me.verify_blocking(&hash, password.expose_secret()),
            None => {
                let _ = me.verify_blocking(&me.dummy, password.expose_secret());
                Checked {
                    ok: false,
                    needs_rehash: false,
                }
            }
        })
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(
            PasswordParams {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            2,
            8,
        )
        .unwrap()
    }

    #[test]
    fn policy_refuses_short_common_and_username() {
        assert!(check_policy("short", "alice").is_err());
        assert!(check_policy("password123", "alice").is_err());
        assert!(check_policy("Alice-Rocks", "alice-rocks").is_err());
        assert!(check_policy("correct horse battery staple", "alice").is_ok());
    }

    #[tokio::test]
    async fn verifies_and_detects_parameter_change() {
        let h = cheap();
        let stored = h.hash_blocking("correct horse battery staple").unwrap();
        let ok = h
            .verify(Some(stored.clone()), "correct horse battery staple".into())
            .await
            .unwrap();
        assert_eq!(
            ok,
            Checked {
                ok: true,
                needs_rehash: false
            }
        );
        let bad = h
            .verify(Some(stored.clone()), "wrong".into())
            .await
            .unwrap();
        assert!(!bad.ok);
        let unknown = h.verify(None, "anything".into()).await.unwrap();
        assert!(!unknown.ok);
        let stronger = Hasher::new(
            PasswordParams {
                memory_kib: 2048,
                iterations: 1,
                parallelism: 1,
            },
            1,
            8,
        )
        .unwrap();
        let r = stronger
            .verify(Some(stored), "correct horse battery staple".into())
            .await
            .unwrap();
        assert_eq!(
            r,
            Checked {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn pooled_memory_agrees_with_the_crates_verifier() {
        // Hashes of two costs, verified in turn so buffers are reused dirty and at other sizes.
        let small = cheap();
        let big = Hasher::new(
            PasswordParams {
                memory_kib: 4096,
                iterations: 2,
                parallelism: 1,
            },
            1,
            8,
        )
        .unwrap();
        let hashes = [
            small.hash_blocking("first passphrase").unwrap(),
            big.hash_blocking("first passphrase").unwrap(),
            small.hash_blocking("second passphrase").unwrap(),
        ];
        for _ in 0..3 {
            for stored in &hashes {
                let parsed = PasswordHash::new(stored).unwrap();
                for pw in ["first passphrase", "second passphrase", "First passphrase"] {
                    let crate_says = small
                        .argon()
                        .verify_password(pw.as_bytes(), &parsed)
                        .is_ok();
                    let pooled = small.verify_in_pooled_memory(&parsed, pw.as_bytes());
                    assert_eq!(pooled, Some(crate_says), "{stored} / {pw}");
                }
            }
        }
        assert!(small.memory.lock().unwrap().len() <= 1);
    }

    #[test]
    fn new_hashes_are_made_in_pooled_memory_and_the_crate_accepts_them() {
        // Nothing is held after start-up; the first new password takes a buffer and gives it
        // back, the next ones reuse it instead of allocating their own working memory.
        let h = cheap();
        assert_eq!(h.memory.lock().unwrap().len(), 0);
        for pw in ["first passphrase", "second passphrase"] {
            let stored = h.hash_blocking(pw).unwrap();
            assert!(
                stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
                "{stored}"
            );
            let parsed = PasswordHash::new(&stored).unwrap();
            assert!(h.argon().verify_password(pw.as_bytes(), &parsed).is_ok());
            assert!(h.argon().verify_password(b"other", &parsed).is_err());
            assert_eq!(h.memory.lock().unwrap().len(), 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_at_once() {
        // One slot, one place in the queue, and a hash slow enough that a third caller arrives
        // while both are taken.
        let h = Hasher::new(
            PasswordParams {
                memory_kib: 32 * 1024,
                iterations: 4,
                parallelism: 1,
            },
            1,
            1,
        )
        .unwrap();
        let stored = h.hash_blocking("correct horse battery staple").unwrap();
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let (h, s) = (h.clone(), stored.clone());
                tokio::spawn(async move { h.verify(Some(s), "wrong".into()).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for c in calls {
            match c.await.unwrap() {
                Ok(r) => {
                    assert!(!r.ok);
                    done += 1;
                }
                Err(AuthError::Busy) => busy += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(busy >= 1, "a full queue refuses");
        assert!(done >= 1, "the slot and the queue are served");
        assert!(done <= 6 - busy);
        // The queue empties again: a later caller is served.
        assert!(h.verify(Some(stored), "wrong".into()).await.is_ok());
        assert_eq!(h.waiting.load(Ordering::SeqCst), 0);
    }
}
