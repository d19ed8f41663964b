//! API key format: `pc_live_<32 base62 chars>_<6 hex checksum>`.
//!
//! The checksum (first 6 hex digits of blake3 of everything before it) lets the server reject malformed or
//! mistyped keys without a store lookup. Keys are stored only as the blake3 hash of the whole key.

use rand::Rng as _;

/// Prefix of account keys.
pub const LIVE_PREFIX: &str = "pc_live_";
/// Prefix of generated admin keys.
pub const ADMIN_PREFIX: &str = "pc_admin_";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Generates a new account key.
pub fn generate_live() -> String {
    generate(LIVE_PREFIX)
}

/// Generates a new admin key.
pub fn generate_admin() -> String {
    generate(ADMIN_PREFIX)
}

fn generate(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let random: String = (0..RANDOM_LEN)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect();
    let body = format!("{prefix}{random}");
    let sum = checksum(&body);
    format!("{body}_{sum}")
}

fn checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex()[..CHECKSUM_LEN].to_string()
}

/// Whether `key` is a well-formed account key with a valid checksum.
pub fn is_well_formed_live(key: &str) -> bool {
    well_formed(key, LIVE_PREFIX)
}

fn well_formed(key: &str, prefix: &str) -> bool {
    let Some(rest) = key.strip_prefix(prefix) else {
        return false;
    };
    let Some((random, sum)) = rest.split_once('_') else {
        return false;
    };
    random.len() == RANDOM_LEN
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && sum.len() == CHECKSUM_LEN
        && checksum(&key[..prefix.len() + RANDOM_LEN]) == sum
}

/// The stored form of a key: blake3 hex of the whole key.
pub fn hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// Compares a presented key with a stored hash in constant time.
pub fn matches(key: &str, stored_hash_hex: &str) -> bool {
    match blake3::Hash::from_hex(stored_hash_hex) {
        Ok(stored) => blake3::hash(key.as_bytes()) == stored,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate_live();
        let b = generate_live();
        assert!(a.starts_with("pc_live_"));
        assert!(is_well_formed_live(&a));
        assert_ne!(a, b);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
    }

    #[test]
    fn rejects_malformed_and_mistyped_keys() {
        let key = generate_live();
        let mut typo = key.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("ascii");
        for bad in [
            "",
            "pc_live_",
            "pc_live_abc_123456",
            "nonsense",
            &typo,
            &key[1..],
            "pc_live_é",
        ] {
            assert!(!is_well_formed_live(bad), "{bad:?} accepted");
        }
    }
}
