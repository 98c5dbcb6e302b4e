//! Typed answers and requests. Converted from the wire at the edge, so
//! applications never need the generated prost types.

use eligibility::{Country, ListId, Revision, Timestamp, proto::v1 as pb};

use crate::error::{Error, Result};

mod wire;
pub(crate) use wire::*;

/// Where an answer comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The revision the answer was computed at.
    pub revision: Revision,
    /// The server's store id.
    pub store_id: String,
    /// The valid time the answer was computed for.
    pub as_of: Timestamp,
}

pub use eligibility::{DecisionReason, EntryAction, ListMode};

/// The recorded change that decided a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecidingChange {
    /// Its changeset's revision.
    pub revision: Revision,
    /// When it took effect.
    pub effective_at: Timestamp,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Legal basis (may be empty).
    pub reference: String,
    /// Add or remove.
    pub action: EntryAction,
}

/// The answer to one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The list.
    pub list: ListId,
    /// The country.
    pub country: Country,
    /// May items of the list go to the country?
    pub eligible: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The change that decided it, if any.
    pub deciding_change: Option<DecidingChange>,
    /// Conditions of membership ("" when none).
    pub conditions: String,
}

/// A list's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    /// Id.
    pub id: ListId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Authority or source.
    pub authority: String,
    /// Mode.
    pub mode: ListMode,
    /// Creating revision.
    pub created_revision: Revision,
    /// Last revision that touched it.
    pub updated_revision: Revision,
    /// Members at the point read.
    pub member_count: u32,
}

/// A member of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The country.
    pub country: Country,
    /// Conditions of membership.
    pub conditions: String,
    /// The change that made it a member.
    pub deciding_change: Option<DecidingChange>,
}

/// One change within a changeset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A country added to or removed from a list.
    Entry {
        /// The list.
        list: ListId,
        /// The country.
        country: Country,
        /// Add or remove.
        action: EntryAction,
        /// Conditions (add only).
        conditions: String,
    },
    /// A list was created.
    ListCreated(List),
    /// A list's metadata was updated.
    ListUpdated(List),
}

/// A recorded changeset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changeset {
    /// Revision.
    pub revision: Revision,
    /// When it takes effect.
    pub effective_at: Timestamp,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Legal basis.
    pub reference: String,
    /// Idempotency key, if any.
    pub request_id: Option<String>,
    /// The changes.
    pub changes: Vec<Change>,
    /// For an activation entry: the changeset it activates.
    pub activates: Option<Revision>,
}

impl Change {
    /// The list this change is about.
    pub fn list(&self) -> &ListId {
        match self {
            Change::Entry { list, .. } => list,
            Change::ListCreated(l) | Change::ListUpdated(l) => &l.id,
        }
    }
}

impl List {
    /// The wire message (`eligibility.v1.List`).
    pub fn to_proto(&self) -> pb::List {
        pb::List {
            id: self.id.to_string(),
            title: self.title.clone(),
            description: self.description.clone(),
            authority: self.authority.clone(),
            mode: self.mode.into(),
            created_revision: self.created_revision.0,
            updated_revision: self.updated_revision.0,
            member_count: self.member_count,
        }
    }
}

impl Changeset {
    /// The wire message (`eligibility.v1.Changeset`), e.g. for its
    /// canonical JSON (`serde_json::to_string`) or its binary encoding:
    /// exactly what the server sent.
    pub fn to_proto(&self) -> pb::Changeset {
        let changes = self
            .changes
            .iter()
            .map(|c| pb::Change {
                kind: Some(match c {
                    Change::Entry { list, country, action, conditions } => pb::change::Kind::Entry(pb::EntryChange {
                        list_id: list.to_string(),
                        country: country.to_string(),
                        action: (*action).into(),
                        conditions: conditions.clone(),
                    }),
                    Change::ListCreated(l) => pb::change::Kind::ListCreated(l.to_proto()),
                    Change::ListUpdated(l) => pb::change::Kind::ListUpdated(l.to_proto()),
                }),
            })
            .collect();
        pb::Changeset {
            revision: self.revision.0,
            effective_at: Some(self.effective_at.into()),
            recorded_at: Some(self.recorded_at.into()),
            actor: self.actor.clone(),
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            request_id: self.request_id.clone().unwrap_or_default(),
            changes,
            activates_revision: self.activates.map_or(0, |r| r.0),
        }
    }
}

/// Members added/removed between two points.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diff {
    /// Where the answer comes from (the `to` point).
    pub header: Header,
    /// Members at `to` only.
    pub added: Vec<Country>,
    /// Members at `from` only.
    pub removed: Vec<Country>,
    /// Members at both whose conditions differ.
    pub conditions_changed: Vec<Country>,
}

/// The result of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOutcome {
    /// The recorded revision (the original one for a replay, the head for a
    /// no-op).
    pub revision: Revision,
    /// The store id.
    pub store_id: String,
    /// Whether this call recorded a new changeset.
    pub recorded: bool,
    /// Whether the request id had been recorded before.
    pub replayed: bool,
    /// The changeset (absent for a no-op); for a validate-only write, the
    /// changeset that would be recorded.
    pub changeset: Option<Changeset>,
    /// Whether the write only validated: nothing was recorded.
    pub validate_only: bool,
}

/// Fields every write carries. `reason` is required.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Why the change is made (required).
    pub reason: String,
    /// Legal basis or document id.
    pub reference: String,
    /// Idempotency key: a retry with the same key returns the original
    /// revision.
    pub request_id: Option<String>,
    /// Only record if the head revision equals this.
    pub expected_revision: Option<Revision>,
    /// Who makes the change.
    pub actor: String,
    /// Validate only (AIP-163; Apply and ReplaceMembers): the server checks
    /// the write and answers the changeset it would record, and records
    /// nothing.
    pub validate_only: bool,
}

impl WriteOptions {
    /// Options with a reason.
    pub fn reason(reason: impl Into<String>) -> Self {
        WriteOptions { reason: reason.into(), ..Default::default() }
    }

    /// Sets the legal reference.
    pub fn with_reference(mut self, r: impl Into<String>) -> Self {
        self.reference = r.into();
        self
    }

    /// Sets the idempotency key.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the optimistic-concurrency precondition.
    pub fn with_expected_revision(mut self, r: Revision) -> Self {
        self.expected_revision = Some(r);
        self
    }

    /// Sets the actor.
    pub fn with_actor(mut self, a: impl Into<String>) -> Self {
        self.actor = a.into();
        self
    }

    /// Asks only to validate (Apply and ReplaceMembers): see
    /// [`WriteOptions::validate_only`].
    pub fn validating_only(mut self) -> Self {
        self.validate_only = true;
        self
    }

    pub(crate) fn to_proto(&self) -> pb::WriteOptions {
        pb::WriteOptions {
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            request_id: self.request_id.clone().unwrap_or_default(),
            expected_revision: self.expected_revision.map(|r| r.0),
            actor: self.actor.clone(),
        }
    }
}

/// A new list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewList {
    /// Id.
    pub id: ListId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Authority or source.
    pub authority: String,
    /// Mode (fixed for the list's life).
    pub mode: ListMode,
}

impl NewList {
    /// A list titled by its id, without description or authority (set the
    /// fields for more).
    pub fn new(id: ListId, mode: ListMode) -> Self {
        NewList { title: id.to_string(), id, description: String::new(), authority: String::new(), mode }
    }
}

/// One entry change for [`crate::Client::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryChange {
    /// The list.
    pub list: ListId,
    /// The country.
    pub country: Country,
    /// Add or remove.
    pub action: EntryAction,
    /// Conditions (add only).
    pub conditions: String,
}

impl EntryChange {
    /// Add `country` to `list`.
    pub fn add(list: &ListId, country: Country) -> Self {
        EntryChange { list: list.clone(), country, action: EntryAction::Add, conditions: String::new() }
    }

    /// Remove `country` from `list`.
    pub fn remove(list: &ListId, country: Country) -> Self {
        EntryChange { list: list.clone(), country, action: EntryAction::Remove, conditions: String::new() }
    }

    /// Sets conditions (for an add).
    pub fn with_conditions(mut self, c: impl Into<String>) -> Self {
        self.conditions = c.into();
        self
    }
}
