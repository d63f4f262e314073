//! Session tokens: the secret a client sends as `X-Session` after logging in.
//!
//! Only a SHA-256 of a token reaches the state store, so a copy of the store (a backup, a stolen
//! disk) does not let anyone act as a logged-in user.

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// Random bytes per token: 256 bits cannot be guessed, and hex keeps temBoard's 64-character
/// lower-case form that its clients expect.
const TOKEN_BYTES: usize = 32;

/// A fresh session token from the operating system's CSPRNG.
pub fn new_session_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).context("cannot read random bytes for a session token")?;
    Ok(hex::encode(bytes))
}

/// Whether `s` has the shape of a token this agent issues; anything else is "malformed" before
/// the store is even asked.
pub fn is_well_formed_session(s: &str) -> bool {
    s.len() == TOKEN_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key a session is stored under.
pub fn session_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_well_formed_and_distinct() {
        let a = new_session_token().unwrap();
        let b = new_session_token().unwrap();
        assert!(is_well_formed_session(&a), "{a}");
        assert!(is_well_formed_session(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn well_formed_means_64_lower_case_hex_digits() {
        assert!(is_well_formed_session(&"0123456789abcdef".repeat(4)));
        assert!(!is_well_formed_session(&"0123456789ABCDEF".repeat(4)));
        assert!(!is_well_formed_session(&"a".repeat(63)));
        assert!(!is_well_formed_session(&"a".repeat(65)));
        assert!(!is_well_formed_session(&"g".repeat(64)));
        assert!(!is_well_formed_session(""));
        // 64 bytes but not 64 ASCII characters.
        assert!(!is_well_formed_session(&format!("{}é", "a".repeat(62))));
    }

    #[test]
    fn the_stored_hash_is_not_the_token() {
        let token = new_session_token().unwrap();
        let hash = session_token_hash(&token);
        assert_ne!(hash, token);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, session_token_hash(&token));
    }
}
