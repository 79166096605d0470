//! The fuzz targets' checks on stable Rust, without libFuzzer: every target runs over its seed
//! corpus (`fuzz/corpus/<target>/`, regression inputs included), mutations of the seeds and
//! random bytes from a fixed-seed generator, so a run is reproducible.
//!
//! Run with `cd fuzz && cargo test --lib --no-default-features` (add `--release` for many
//! iterations). `VIGIL_FUZZ_ITERS` (default 20,000) sets the generated inputs per target and
//! `VIGIL_FUZZ_SEED` (default 1) the generator's seed. A failing input is written to
//! `fuzz/artifacts/stable/<target>-<n>` (feed it to `cargo fuzz run <target> <file>`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// splitmix64: small, fast, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// A variation of `seed`: byte flips, random bytes inserted or overwritten, deletions,
/// splices with another seed, or an interesting byte (delimiters of the formats fuzzed).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    const SPECIAL: &[u8] = b"&=%+#?/:.,;\"'\\[]{}\n\r\t \x00\xff\xc3";
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if at < v.len() => v[at] ^= 1u8 << rng.below(8),
            1 => v.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => {
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(16)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            4 => v.truncate(at),
            5 => {
                let n = rng.below(8);
                v.splice(at..at, rng.bytes(n));
            }
            _ if at < v.len() => v[at] = rng.next() as u8,
            _ => {}
        }
    }
    v
}

fn run(target: &str, check: fn(&[u8])) {
    let iters = env_num("VIGIL_FUZZ_ITERS", 20_000);
    let mut rng = Rng(env_num("VIGIL_FUZZ_SEED", 1) ^ (target.len() as u64 * 0x51));
    let seeds = seeds(target);
    let mut inputs: Vec<Vec<u8>> = seeds.clone();
    for i in 0..iters {
        let input = if seeds.is_empty() || i % 3 == 0 {
            let n = rng.below(if i % 2 == 0 { 64 } else { 600 });
            rng.bytes(n)
        } else {
            let s = &seeds[rng.below(seeds.len())];
            let o = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s, o)
        };
        inputs.push(input);
    }
    for (n, input) in inputs.iter().enumerate() {
        let outcome = catch_unwind(AssertUnwindSafe(|| check(input)));
        if let Err(panic) = outcome {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/stable");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{target}-{n}"));
            let _ = std::fs::write(&file, input);
            eprintln!(
                "{target}: input {n} failed ({} bytes, saved to {}): {:?}",
                input.len(),
                file.display(),
                String::from_utf8_lossy(input)
            );
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!(
        "{target}: {} inputs ({} seeds) passed",
        inputs.len(),
        seeds.len()
    );
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            run(stringify!($name), crate::$name);
        }
    )*};
}

targets!(
    authorize_params,
    authorize_validate,
    redirect_uri,
    authorize_response,
    token_body,
    basic_auth,
    jws,
    cookies,
    xff,
    denylist,
    replay_csv,
    device_hints,
    webauthn_json,
    config_toml,
    scim_filter,
    scim_patch,
);

/// The `jws` target's tokens outlive a long campaign slice: they were valid for ten minutes,
/// and a 12-minute slice reported their expiry as a broken invariant.
#[test]
fn jws_tokens_outlive_a_campaign() {
    use base64::Engine as _;
    for (token, _) in &crate::jws_state().valid {
        let claims = token.split('.').nth(1).expect("a JWS has claims");
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64url claims");
        let claims: serde_json::Value = serde_json::from_slice(&claims).expect("JSON claims");
        let (exp, iat) = (claims["exp"].as_i64(), claims["iat"].as_i64());
        let life = exp.zip(iat).map(|(e, i)| e - i);
        assert!(life >= Some(86_400), "valid for {life:?} s only");
    }
}
