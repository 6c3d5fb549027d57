//! `Secret`: a string that never shows itself by accident.
//!
//! Tokens, passwords and keys travel as `Secret` so that `Debug`, `Display`, logs and JSON
//! serialisation print `[redacted]`; the value is reachable only through `expose`, which makes
//! every deliberate use easy to find. The memory is wiped on drop.

use std::fmt;

use zeroize::Zeroize;

/// A secret string: redacted in `Debug`, `Display` and serialisation, wiped on drop.
/// No `PartialEq`: comparing secrets goes through [`Secret::ct_eq`], in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call sites are the places that need reviewing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a candidate in constant time (for tokens and keys).
    pub fn ct_eq(&self, candidate: &[u8]) -> bool {
        crate::random::ct_eq(self.0.as_bytes(), candidate)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2-very-secret");
        let shown = format!(
            "{secret} {secret:?} {}",
            serde_json::to_string(&secret).expect("serialises")
        );
        assert!(!shown.contains("hunter2"), "leaked: {shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn constant_time_comparison_matches_only_the_same_value() {
        let secret = Secret::new("abc123");
        assert!(secret.ct_eq(b"abc123"));
        assert!(!secret.ct_eq(b"abc124"));
        assert!(!secret.ct_eq(b"abc12"), "a prefix is not the value");
    }
}
