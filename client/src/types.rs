//! Typed answers and requests. Converted from the wire at the edge, so
//! applications never need the generated prost types.

use eligibility::{Country, ListId, Revision, Timestamp, proto::v1 as pb};

use crate::error::{Error, Result};

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

// ---- wire -> typed ---------------------------------------------------------

fn bad(what: &str) -> Error {
    Error::InvalidResponse(what.to_owned())
}

pub(crate) fn ts(t: Option<&eligibility::wkt::Timestamp>, what: &str) -> Result<Timestamp> {
    t.and_then(|t| Timestamp::try_from(t).ok()).ok_or_else(|| bad(what))
}

pub(crate) fn header(h: Option<pb::ResponseHeader>) -> Result<Header> {
    let h = h.ok_or_else(|| bad("missing header"))?;
    Ok(Header { revision: Revision(h.revision), store_id: h.store_id, as_of: ts(h.as_of.as_ref(), "header.as_of")? })
}

pub(crate) fn list_id(s: &str) -> Result<ListId> {
    ListId::parse(s).map_err(|e| bad(&e.to_string()))
}

pub(crate) fn country(s: &str) -> Result<Country> {
    Country::parse(s).map_err(|e| bad(&e.to_string()))
}

pub(crate) fn mode(m: i32) -> Result<ListMode> {
    ListMode::try_from(m).map_err(|e| bad(&e.to_string()))
}

pub(crate) fn action(a: i32) -> Result<EntryAction> {
    EntryAction::try_from(a).map_err(|e| bad(&e.to_string()))
}

pub(crate) fn deciding(d: Option<pb::DecidingChange>) -> Result<Option<DecidingChange>> {
    d.map(|d| {
        Ok(DecidingChange {
            revision: Revision(d.revision),
            effective_at: ts(d.effective_at.as_ref(), "deciding_change.effective_at")?,
            recorded_at: ts(d.recorded_at.as_ref(), "deciding_change.recorded_at")?,
            actor: d.actor,
            reason: d.reason,
            reference: d.reference,
            action: action(d.action)?,
        })
    })
    .transpose()
}

pub(crate) fn decision(d: Option<pb::Decision>) -> Result<Decision> {
    let d = d.ok_or_else(|| bad("missing decision"))?;
    let reason = DecisionReason::try_from(d.reason).map_err(|e| bad(&e.to_string()))?;
    Ok(Decision {
        list: list_id(&d.list_id)?,
        country: country(&d.country)?,
        eligible: d.eligible,
        reason,
        deciding_change: deciding(d.deciding_change)?,
        conditions: d.conditions,
    })
}

pub(crate) fn list(l: pb::List) -> Result<List> {
    Ok(List {
        id: list_id(&l.id)?,
        title: l.title,
        description: l.description,
        authority: l.authority,
        mode: mode(l.mode)?,
        created_revision: Revision(l.created_revision),
        updated_revision: Revision(l.updated_revision),
        member_count: l.member_count,
    })
}

pub(crate) fn entry(e: pb::Entry) -> Result<Entry> {
    Ok(Entry { country: country(&e.country)?, conditions: e.conditions, deciding_change: deciding(e.deciding_change)? })
}

pub(crate) fn changeset(c: pb::Changeset) -> Result<Changeset> {
    let changes = c
        .changes
        .into_iter()
        .map(|ch| match ch.kind.ok_or_else(|| bad("empty change"))? {
            pb::change::Kind::Entry(e) => Ok(Change::Entry {
                list: list_id(&e.list_id)?,
                country: country(&e.country)?,
                action: action(e.action)?,
                conditions: e.conditions,
            }),
            pb::change::Kind::ListCreated(l) => Ok(Change::ListCreated(list(l)?)),
            pb::change::Kind::ListUpdated(l) => Ok(Change::ListUpdated(list(l)?)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Changeset {
        revision: Revision(c.revision),
        effective_at: ts(c.effective_at.as_ref(), "changeset.effective_at")?,
        recorded_at: ts(c.recorded_at.as_ref(), "changeset.recorded_at")?,
        actor: c.actor,
        reason: c.reason,
        reference: c.reference,
        request_id: (!c.request_id.is_empty()).then_some(c.request_id),
        changes,
        activates: (c.activates_revision != 0).then_some(Revision(c.activates_revision)),
    })
}

pub(crate) fn write_outcome(w: pb::WriteResponse) -> Result<WriteOutcome> {
    Ok(WriteOutcome {
        revision: Revision(w.revision),
        store_id: w.store_id,
        recorded: w.recorded,
        replayed: w.replayed,
        changeset: w.changeset.map(changeset).transpose()?,
        validate_only: w.validate_only,
    })
}

#[cfg(test)]
mod to_proto_tests {
    use super::*;

    #[test]
    fn a_changeset_goes_back_to_exactly_the_message_it_came_from() {
        // (Times are kept to the microsecond, as the server records them.)
        let ts = |s: i64| Some(eligibility::wkt::Timestamp { seconds: s, nanos: 5_000 });
        let list = pb::List {
            id: "cyber".into(),
            title: "Cyber".into(),
            description: "d".into(),
            authority: "a".into(),
            mode: pb::ListMode::Allowlist as i32,
            created_revision: 1,
            updated_revision: 2,
            member_count: 0,
        };
        let wire = pb::Changeset {
            revision: 7,
            effective_at: ts(1_635_724_800),
            recorded_at: ts(1_635_724_900),
            actor: "export-desk".into(),
            reason: "cut".into(),
            reference: "ref".into(),
            request_id: "r1".into(),
            changes: vec![
                pb::Change {
                    kind: Some(pb::change::Kind::Entry(pb::EntryChange {
                        list_id: "cyber".into(),
                        country: "MX".into(),
                        action: pb::EntryAction::Add as i32,
                        conditions: "end-use check".into(),
                    })),
                },
                pb::Change { kind: Some(pb::change::Kind::ListCreated(list.clone())) },
                pb::Change { kind: Some(pb::change::Kind::ListUpdated(list)) },
            ],
            activates_revision: 3,
        };
        let decoded = changeset(wire.clone()).unwrap();
        assert_eq!(decoded.to_proto(), wire);
        assert_eq!(decoded.changes[1].list().as_str(), "cyber");
    }
}
