//! temBoard agent 7's password hashes, accepted so that an existing installation keeps its users
//! until each one logs in again and is upgraded to Argon2id.
//!
//! The scheme, as implemented by `hash_password` in temBoard's
//! `agent/temboardagent/usermgmt.py` (dalibo/temboard, 7.x; also `temboardagent/usermgmt.py` in
//! earlier releases):
//!
//! ```text
//! base64( sha512( hexlify(utf8(password)) || sha512(utf8(username)) ) )
//! ```
//!
//! - `hexlify` is lower-case hexadecimal of the password's UTF-8 bytes (ASCII text, twice as long);
//! - the "salt" is the raw 64-byte SHA-512 digest of the username, appended after the password;
//! - the result is standard base64 with padding (88 characters) of the 64-byte digest.
//!
//! The users file (`temboard-agent-adduser`, `usermgmt.get_user`) holds one `username:hash` line
//! per user; lines are stripped and split on `:`. temBoard compared with `!=`; we compare in
//! constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Length of the base64 text of a SHA-512 digest, padding included.
const ENCODED_LEN: usize = 88;

/// The digest temBoard agent 7 stores for this user and password.
pub fn digest(username: &str, password: &str) -> [u8; 64] {
    let salt = Sha512::digest(username.as_bytes());
    let mut hasher = Sha512::new();
    hasher.update(hex::encode(password.as_bytes()).as_bytes());
    hasher.update(salt);
    hasher.finalize().into()
}

/// The users-file text temBoard agent 7 writes for this user and password.
#[cfg(test)]
pub fn encode(username: &str, password: &str) -> String {
    STANDARD.encode(digest(username, password))
}

/// Recognises a temBoard hash in a users file; anything else is not one.
pub fn parse(text: &str) -> Option<[u8; 64]> {
    if text.len() != ENCODED_LEN {
        return None;
    }
    STANDARD.decode(text).ok()?.try_into().ok()
}

/// Whether `password` is the one `stored` was made from, without an early exit that would let
/// response times reveal how many leading bytes matched.
pub fn verify(stored: &[u8; 64], username: &str, password: &str) -> bool {
    bool::from(digest(username, password).ct_eq(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula spelled out step by step, independently of `digest`, as the Python does it.
    fn python_formula(username: &str, password: &str) -> String {
        let bytes_password: Vec<u8> = password
            .as_bytes()
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect();
        let bytes_sha_username = Sha512::digest(username.as_bytes()).to_vec();
        let mut input = bytes_password;
        input.extend_from_slice(&bytes_sha_username);
        STANDARD.encode(Sha512::digest(&input))
    }

    #[test]
    fn encode_follows_the_temboard_formula() {
        for (user, password) in [
            ("alice", "s3cret!"),
            ("admin", "é€ unicode ☃"),
            ("bob", "x"),
        ] {
            let encoded = encode(user, password);
            assert_eq!(encoded, python_formula(user, password));
            assert_eq!(encoded.len(), ENCODED_LEN);
            assert!(
                encoded.ends_with("=="),
                "a 64-byte digest pads with two '='"
            );
        }
    }

    #[test]
    fn the_username_salts_the_hash() {
        assert_ne!(encode("alice", "same"), encode("bob", "same"));
    }

    #[test]
    fn parse_accepts_only_a_base64_sha512() {
        let encoded = encode("alice", "pw");
        assert_eq!(parse(&encoded), Some(digest("alice", "pw")));
        assert_eq!(
            parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
            None
        );
        assert_eq!(parse(&encoded[..87]), None);
        assert_eq!(parse(&"!".repeat(88)), None);
    }

    #[test]
    fn verify_checks_user_and_password() {
        let stored = digest("alice", "pw");
        assert!(verify(&stored, "alice", "pw"));
        assert!(!verify(&stored, "alice", "pw "));
        assert!(!verify(&stored, "alicE", "pw"));
    }
}
