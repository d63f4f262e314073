//! API tokens from the configuration (`[auth] api_tokens`), sent as `Authorization: Bearer`.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The configured tokens, held only as SHA-256 digests so that a memory dump or a debug print
/// does not hand them out.
#[derive(Clone, Default)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl TokenSet {
    pub fn new(tokens: &[String]) -> TokenSet {
        TokenSet {
            digests: tokens
                .iter()
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of the set. Every digest is compared, without an early exit, so
    /// response times say neither which token matched nor how close a guess came.
    pub fn contains(&self, token: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let found = self
            .digests
            .iter()
            .fold(Choice::from(0), |found, d| found | d.ct_eq(&candidate));
        bool::from(found)
    }
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens)", self.digests.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_exactly_the_configured_tokens() {
        let set = TokenSet::new(&[
            "first-token-0123456789".into(),
            "second-token-abcdefgh".into(),
        ]);
        assert!(set.contains("first-token-0123456789"));
        assert!(set.contains("second-token-abcdefgh"));
        assert!(!set.contains("first-token-012345678"));
        assert!(!set.contains(""));
        assert!(!set.is_empty());
    }

    #[test]
    fn an_empty_set_contains_nothing() {
        let set = TokenSet::new(&[]);
        assert!(set.is_empty());
        assert!(!set.contains(""));
        assert!(!set.contains("anything"));
    }

    #[test]
    fn debug_does_not_print_tokens() {
        let set = TokenSet::new(&["secret-token-0123456789".into()]);
        let shown = format!("{set:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
