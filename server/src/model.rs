//! The domain model: lists, changes and changesets. No wire types here.

use eligibility::{Country, ListId, Revision, Timestamp};
pub use eligibility::{EntryAction, ListMode};
use serde::{Deserialize, Serialize};

/// A list's descriptive metadata and mode.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ListMeta {
    /// Short title.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Publishing authority or source.
    pub authority: String,
    /// ALLOWLIST or DENYLIST; fixed at creation.
    pub mode: ListMode,
}

/// One change inside a changeset.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A list is created.
    CreateList {
        /// The new list.
        list: ListId,
        /// Its metadata (boxed: entry changes, by far the most common, then
        /// take half the space each).
        meta: Box<ListMeta>,
    },
    /// A list's metadata is replaced (the mode never changes).
    UpdateList {
        /// The list.
        list: ListId,
        /// The complete new metadata (boxed, as for `CreateList`).
        meta: Box<ListMeta>,
    },
    /// A country is added to or removed from a list.
    Entry {
        /// The list.
        list: ListId,
        /// The country.
        country: Country,
        /// Add or remove.
        action: EntryAction,
        /// Conditions of membership (empty for none, always empty on
        /// remove).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        conditions: String,
    },
}

impl Change {
    /// The list the change is about.
    pub fn list(&self) -> &ListId {
        match self {
            Change::CreateList { list, .. } | Change::UpdateList { list, .. } | Change::Entry { list, .. } => list,
        }
    }

    /// Names `list` (the same id) as the change's list: lets the registry
    /// share one copy of an id among all its changes.
    pub fn set_list(&mut self, id: ListId) {
        match self {
            Change::CreateList { list, .. } | Change::UpdateList { list, .. } | Change::Entry { list, .. } => {
                *list = id
            }
        }
    }

    /// The country, for entry changes.
    pub fn country(&self) -> Option<Country> {
        match self {
            Change::Entry { country, .. } => Some(*country),
            _ => None,
        }
    }
}

/// The idempotency key of a write, with a fingerprint of the request's
/// content so a reused key with different content is detected.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RequestKey {
    /// The client's key.
    pub id: Box<str>,
    /// Hex digest of the request content.
    pub fingerprint: Box<str>,
}

/// A changeset before commit: the store assigns revision and recorded_at.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChangesetDraft {
    /// When it takes effect; `None` means the commit time.
    pub effective_at: Option<Timestamp>,
    /// Who makes it.
    pub actor: String,
    /// Why (non-empty).
    pub reason: String,
    /// Legal basis or document id (may be empty).
    pub reference: String,
    /// Idempotency key.
    pub request: Option<RequestKey>,
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// For an activation entry: the future-dated changeset it activates.
    pub activates: Option<Revision>,
}

impl ChangesetDraft {
    /// The changeset this draft becomes when committed as `revision` at
    /// `recorded_at` (the effective time defaults to the commit time).
    pub fn to_changeset(&self, revision: Revision, recorded_at: Timestamp) -> Changeset {
        Changeset {
            revision,
            effective_at: self.effective_at.unwrap_or(recorded_at),
            recorded_at,
            actor: self.actor.as_str().into(),
            reason: self.reason.as_str().into(),
            reference: self.reference.as_str().into(),
            request: self.request.clone(),
            changes: self.changes.as_slice().into(),
            activates: self.activates,
        }
    }
}

/// A committed changeset. Its text fields are boxed strings (exactly their
/// length, 16 bytes each in the struct): a long history keeps millions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Changeset {
    /// Store-wide revision.
    pub revision: Revision,
    /// When it takes (or took) legal effect.
    pub effective_at: Timestamp,
    /// When it was committed.
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub actor: Box<str>,
    /// Why.
    pub reason: Box<str>,
    /// Legal basis (may be empty).
    pub reference: Box<str>,
    /// Idempotency key it was recorded with.
    pub request: Option<RequestKey>,
    /// The changes.
    pub changes: Box<[Change]>,
    /// For an activation entry: the changeset it activates.
    pub activates: Option<Revision>,
}

/// FNV-1a, 64-bit: a stable (across builds and platforms) digest for
/// request fingerprints. Not a security boundary: it only tells a retried
/// request from a different one that reuses a key.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.as_bytes().iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
