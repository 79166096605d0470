//! Recovery codes: ten single-use codes of 118 random bits each, shown once, stored as SHA-256
//! digests. ASVS 5.0 (6.5.2) allows a fast hash only for lookup secrets of at least 112 bits;
//! below that a stolen table could be brute-forced, so the codes are long rather than the hash slow
//! (a slow hash per code would cost ten argon2 runs per attempt).

use rand::Rng as _;

use crate::store::token_digest;

pub const COUNT: usize = 10;
/// No 0/O or 1/I/L: codes are read off paper.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Characters per code: 24 × log2(31) ≈ 118.9 bits.
pub const LENGTH: usize = 24;

/// Ten fresh codes like `k7qm-2xwp-c9dt-r4hn-a3ke-w8ps`.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let chars: Vec<char> = (0..LENGTH)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is stored: the digest of the normalised code (case, spaces and dashes ignored).
pub fn digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    token_digest(&normal)
}

#[cfg(test)]
mod tests {
    use super::LENGTH;

    #[test]
    fn codes_are_distinct_and_normalised() {
        let codes = super::generate();
        assert_eq!(codes.len(), 10);
        let mut d: Vec<String> = codes.iter().map(|c| super::digest(c)).collect();
        d.dedup();
        assert_eq!(d.len(), 10);
        assert!(codes.iter().all(|c| c.len() == LENGTH + LENGTH / 4 - 1));
        let bits = LENGTH as f64 * (super::ALPHABET.len() as f64).log2();
        assert!(
            bits >= 112.0,
            "ASVS 6.5.2: a fast hash needs 112 bits, have {bits}"
        );
        let c = &codes[0];
        assert_eq!(
            super::digest(c),
            super::digest(&c.to_uppercase().replace('-', " "))
        );
    }
}
