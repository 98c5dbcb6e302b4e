//! List identifiers.

use std::{borrow::Borrow, fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::TypeError;

/// Maximum length of a list id, in bytes.
pub const LIST_ID_MAX_LEN: usize = 63;

/// The id of an eligibility list: `^[a-z0-9][a-z0-9._-]{0,62}$`, e.g.
/// `cyber`. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListId(Arc<str>);

impl ListId {
    /// Validates and wraps a list id.
    pub fn parse(id: &str) -> Result<Self, TypeError> {
        let bytes = id.as_bytes();
        let first_ok = bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok =
            bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if !first_ok || !rest_ok || bytes.len() > LIST_ID_MAX_LEN {
            return Err(TypeError::ListId(id.to_owned()));
        }
        Ok(ListId(Arc::from(id)))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListId({})", &self.0)
    }
}

impl Borrow<str> for ListId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for ListId {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ListId::parse(s)
    }
}

impl TryFrom<String> for ListId {
    type Error = TypeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ListId::parse(&s)
    }
}

impl From<ListId> for String {
    fn from(id: ListId) -> String {
        id.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        for id in ["cyber", "0", "a.b_c-d", "dual-use.cat5", &"a".repeat(63)] {
            assert_eq!(ListId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn invalid_ids() {
        for id in ["", "Cyber", "-x", ".x", "_x", "a b", "a/b", "é", &"a".repeat(64)] {
            assert_eq!(ListId::parse(id).unwrap_err(), TypeError::ListId(id.to_owned()));
        }
    }
}
