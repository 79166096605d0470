//! Recovery codes: ten single-use codes of 80 random bits each, shown once, stored as SHA-256
//! digests (their entropy makes a slow hash unnecessary).

use rand::Rng as _;

use crate::store::token_digest;

pub const COUNT: usize = 10;
/// No 0/O or 1/I/L: codes are read off paper.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Ten fresh codes like `k7qm-2xwp-c9dt-r4hn`.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let chars: Vec<char> = (0..16)
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
    #[test]
    fn codes_are_distinct_and_normalised() {
        let codes = super::generate();
        assert_eq!(codes.len(), 10);
        let mut d: Vec<String> = codes.iter().map(|c| super::digest(c)).collect();
        d.dedup();
        assert_eq!(d.len(), 10);
        let c = &codes[0];
        assert_eq!(
            super::digest(c),
            super::digest(&c.to_uppercase().replace('-', " "))
        );
    }
}
