//! Revisions and the point-in-time selector.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The store-wide revision: dense, strictly increasing, assigned to each
/// changeset at commit. `Revision(0)` is the empty store.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub u64);

impl Revision {
    /// The empty store's revision.
    pub const ZERO: Revision = Revision(0);

    /// The revision after this one.
    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which recorded changes a read sees (transaction time and consistency).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Consistency {
    /// The latest revision the answering replica knows (the default).
    #[default]
    Latest,
    /// The latest revision, once the replica has reached at least this one.
    MinRevision(Revision),
    /// Exactly this revision (audit).
    AtRevision(Revision),
}

/// The point a read is answered at: valid time `as_of` (default: now) and
/// transaction time / consistency.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Point {
    /// Which changes were in effect; `None` means the server's clock.
    pub as_of: Option<Timestamp>,
    /// Which changes had been recorded.
    pub consistency: Consistency,
}

impl Point {
    /// Now, at the latest revision.
    pub fn latest() -> Self {
        Point::default()
    }

    /// As of a time, at the latest revision.
    pub fn as_of(t: Timestamp) -> Self {
        Point { as_of: Some(t), consistency: Consistency::Latest }
    }

    /// Sets the exact revision.
    pub fn at_revision(mut self, r: Revision) -> Self {
        self.consistency = Consistency::AtRevision(r);
        self
    }

    /// Sets the minimum revision.
    pub fn min_revision(mut self, r: Revision) -> Self {
        self.consistency = Consistency::MinRevision(r);
        self
    }
}
