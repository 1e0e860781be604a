//! A secret read from the configuration, such as an API key: compared in constant time, never printed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret prints as, in `Debug` and in the effective configuration.
pub(crate) const REDACTED: &str = "[redacted]";

/// A secret. `Debug` and serialization print [`REDACTED`], so that no log line, error or
/// `config check` output carries it; equality is [`Secret::matches`], in constant time.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that sends it (a request header).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is this secret, in time that depends only on the lengths, so that timing does
    /// not tell how much of it was right.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }

    /// Whether two secrets are the same, as [`Secret::matches`] compares them.
    pub(crate) fn matches_secret(&self, other: &Secret) -> bool {
        self.matches(&other.0)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_every_byte() {
        assert!(Secret::new("dev-key").matches("dev-key"));
        assert!(!Secret::new("dev-key").matches("dev-kez"));
        assert!(!Secret::new("dev-key").matches("dev-key-2"));
        assert!(!Secret::new("").matches("x"));
    }

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("planted-4711");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(serde_json::to_string(&secret).expect("serializes"), "\"[redacted]\"");
        assert_eq!(secret.expose(), "planted-4711");
    }
}
