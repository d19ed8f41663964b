//! Arbitrary strings -> the server's API key parser (host/server/src/keys.rs, included by path so that the
//! code lives in one place without building the whole server under the sanitizer).
//!
//! Invariants: nothing panics; every key matches its own hash and no other key's; an accepted key has the
//! documented shape; a key built the documented way is accepted, and with its checksum altered it is not.
#![no_main]

#[allow(dead_code)]
#[path = "../../host/server/src/keys.rs"]
mod keys;

use libfuzzer_sys::fuzz_target;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Input layout: UTF-8 text; the first line is the key, the rest another key or a stored hash. The key's
// bytes (cycled) choose the characters of a key built the documented way, and the last two bytes of the
// input which checksum digit of it to alter, and to what.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, other) = text.split_once('\n').unwrap_or((text, ""));
    let hash = keys::hash(key);
    assert_eq!(hash.len(), 64);
    assert!(
        keys::matches(key, &hash),
        "{key:?} does not match its own hash"
    );
    let _ = keys::matches(key, other);
    if other != key {
        assert!(!keys::matches(other, &hash));
    }
    if keys::is_well_formed_live(key) {
        assert!(key.starts_with(keys::LIVE_PREFIX), "{key:?}");
        assert_eq!(key.len(), keys::LIVE_PREFIX.len() + 32 + 1 + 6, "{key:?}");
        assert!(key.is_ascii(), "{key:?}");
    }

    // A key made like `generate_live` makes one, from fuzzer-chosen characters.
    let material: &[u8] = if key.is_empty() { b"0" } else { key.as_bytes() };
    let random: String = material
        .iter()
        .cycle()
        .take(32)
        .map(|b| BASE62[usize::from(*b) % BASE62.len()] as char)
        .collect();
    let flip = match data {
        [.., a, b] => (*a, *b),
        _ => (0, 0),
    };
    let body = format!("{}{random}", keys::LIVE_PREFIX);
    let sum = &blake3::hash(body.as_bytes()).to_hex()[..6];
    let built = format!("{body}_{sum}");
    assert!(keys::is_well_formed_live(&built), "{built:?} rejected");
    assert!(keys::matches(&built, &keys::hash(&built)));
    // Altering one checksum digit (to anything else, including upper case hex) makes it malformed.
    let mut altered = built.clone().into_bytes();
    let at = altered.len() - 6 + usize::from(flip.0 % 6);
    let replacement = b"0123456789abcdefABCDEF_x"[usize::from(flip.1) % 24];
    if altered[at] != replacement {
        altered[at] = replacement;
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(!keys::is_well_formed_live(&altered), "{altered:?} accepted");
    }
    // Admin keys are not account keys.
    assert!(!keys::is_well_formed_live(&built.replacen(
        keys::LIVE_PREFIX,
        keys::ADMIN_PREFIX,
        1
    )));
});
