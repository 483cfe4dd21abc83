//! Values that must never reach a log or a `Debug` print: tokens, and
//! backend URLs that may carry a password (`amqp://user:PASSWORD@host`,
//! `redis://:PASSWORD@host`). Both are `secrecy` secrets (wiped from memory
//! on drop); reading the value takes an explicit `expose()`.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A secret string (a bearer token). `Debug` prints `[redacted]`; there is
/// no `Display`.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A URL whose password, if any, is secret. `Debug` and `Display` print it
/// with the password replaced by `***` (and nothing but the scheme if the
/// URL does not parse, since then nobody knows where the password is).
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// The whole URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL's scheme (`amqp`, `sqs`, `redis`, `memory`…), `""` if none.
    pub fn scheme(&self) -> &str {
        self.expose()
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
    }

    /// The URL as it may be logged.
    pub fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut parsed) => {
                if parsed.password().is_some() {
                    // Cannot fail on a URL that already has a password.
                    let _ = parsed.set_password(Some("***"));
                }
                parsed.to_string()
            }
            Err(_) => format!("{}://…", self.scheme()),
        }
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let url = SecretUrl::from("amqp://guest:hunter2@rabbit:5672/%2f");
        assert_eq!(url.expose(), "amqp://guest:hunter2@rabbit:5672/%2f");
        for shown in [format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("guest:***@rabbit"), "{shown}");
        }
        let redis = SecretUrl::from("redis://:hunter2@cache:6379/0");
        assert!(!format!("{redis:?}").contains("hunter2"));
        assert_eq!(SecretUrl::from("sqs://").to_string(), "sqs://");
        let garbled = SecretUrl::from("redis://:hunter2@[bad");
        assert_eq!(garbled.to_string(), "redis://…");
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "[redacted]");
    }
}
