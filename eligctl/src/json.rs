//! The JSON shapes eligctl prints (its JSON contract), serialized by
//! serde from the client's types.

use eligibility_client::{
    Change, Changeset, Country, DecidingChange, Decision, DecisionReason, EntryAction, List, ListId, ListMode,
    Revision, Timestamp,
};
use serde::{Serialize, Serializer};

/// Timestamps as RFC 3339 text (the API crate's own serde form is
/// microseconds, for machines that store them).
pub fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

pub fn print_json(v: &impl Serialize) {
    // Our shapes hold only strings, numbers and booleans: serializing them
    // cannot fail.
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

#[derive(Serialize)]
pub struct DecidingJson<'a> {
    revision: Revision,
    #[serde(serialize_with = "rfc3339")]
    effective_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    recorded_at: Timestamp,
    actor: &'a str,
    reason: &'a str,
    reference: &'a str,
    action: EntryAction,
}

impl<'a> DecidingJson<'a> {
    pub fn of(d: &'a Option<DecidingChange>) -> Option<Self> {
        d.as_ref().map(|d| DecidingJson {
            revision: d.revision,
            effective_at: d.effective_at,
            recorded_at: d.recorded_at,
            actor: &d.actor,
            reason: &d.reason,
            reference: &d.reference,
            action: d.action,
        })
    }
}

#[derive(Serialize)]
pub struct DecisionJson<'a> {
    list: &'a ListId,
    country: Country,
    eligible: bool,
    reason: DecisionReason,
    conditions: &'a str,
    deciding_change: Option<DecidingJson<'a>>,
}

impl<'a> From<&'a Decision> for DecisionJson<'a> {
    fn from(d: &'a Decision) -> Self {
        DecisionJson {
            list: &d.list,
            country: d.country,
            eligible: d.eligible,
            reason: d.reason,
            conditions: &d.conditions,
            deciding_change: DecidingJson::of(&d.deciding_change),
        }
    }
}

#[derive(Serialize)]
pub struct ListJson<'a> {
    id: &'a ListId,
    title: &'a str,
    mode: ListMode,
    members: u32,
    authority: &'a str,
    created_revision: Revision,
    updated_revision: Revision,
}

impl<'a> From<&'a List> for ListJson<'a> {
    fn from(l: &'a List) -> Self {
        ListJson {
            id: &l.id,
            title: &l.title,
            mode: l.mode,
            members: l.member_count,
            authority: &l.authority,
            created_revision: l.created_revision,
            updated_revision: l.updated_revision,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeJson<'a> {
    ListCreated(ListJson<'a>),
    ListUpdated(ListJson<'a>),
    Entry { list: &'a ListId, country: Country, action: EntryAction, conditions: &'a str },
}

impl<'a> From<&'a Change> for ChangeJson<'a> {
    fn from(c: &'a Change) -> Self {
        match c {
            Change::ListCreated(l) => ChangeJson::ListCreated(l.into()),
            Change::ListUpdated(l) => ChangeJson::ListUpdated(l.into()),
            Change::Entry { list, country, action, conditions } => {
                ChangeJson::Entry { list, country: *country, action: *action, conditions }
            }
        }
    }
}

#[derive(Serialize)]
pub struct ChangesetJson<'a> {
    revision: Revision,
    #[serde(serialize_with = "rfc3339")]
    effective_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    recorded_at: Timestamp,
    actor: &'a str,
    reason: &'a str,
    reference: &'a str,
    request_id: &'a Option<String>,
    activates: Option<Revision>,
    changes: Vec<ChangeJson<'a>>,
}

impl<'a> From<&'a Changeset> for ChangesetJson<'a> {
    fn from(c: &'a Changeset) -> Self {
        ChangesetJson {
            revision: c.revision,
            effective_at: c.effective_at,
            recorded_at: c.recorded_at,
            actor: &c.actor,
            reason: &c.reason,
            reference: &c.reference,
            request_id: &c.request_id,
            activates: c.activates,
            changes: c.changes.iter().map(ChangeJson::from).collect(),
        }
    }
}
