//! The write requests' fields as domain values, and a write's answer.

use eligibility::proto::v1 as pb;

use super::{action_from, changeset, mode_from};
use crate::{
    error::{Error, Result},
    fields,
    identity::Principal,
    limits::Limits,
    model::ListMeta,
    writes::{EntryChange, WriteOptions, WriteResult},
};

/// The options of a write, with the actor to record: the authenticated
/// caller (who cannot claim to be another), or the claimed actor when the
/// caller is anonymous (authentication off).
pub fn write_options(caller: Option<&Principal>, o: Option<&pb::WriteOptions>) -> Result<WriteOptions> {
    let claimed = o.map(|o| o.actor.as_str()).unwrap_or("");
    let actor = match caller {
        Some(p) if !claimed.is_empty() && claimed != p.name => {
            return Err(Error::ActorMismatch { claimed: claimed.to_owned(), principal: p.name.clone() });
        }
        Some(p) => p.name.clone(),
        None => claimed.to_owned(),
    };
    let o = o.ok_or_else(|| Error::invalid("options", "required (at least options.reason)"))?;
    Ok(WriteOptions {
        actor,
        reason: o.reason.clone(),
        reference: o.reference.clone(),
        request_id: (!o.request_id.is_empty()).then(|| o.request_id.clone()),
        expected_revision: o.expected_revision.map(eligibility::Revision),
        validate_only: false,
    })
}

/// CreateList's list: its id and metadata.
pub fn new_list(list: Option<pb::List>) -> Result<(eligibility::ListId, ListMeta)> {
    let l = list.ok_or_else(|| Error::invalid("list", "required"))?;
    let id = fields::list_id("list.id", &l.id)?;
    let meta = ListMeta {
        title: l.title,
        description: l.description,
        authority: l.authority,
        mode: mode_from("list.mode", l.mode)?,
    };
    Ok((id, meta))
}

/// Apply's changes (their number checked first).
pub fn entry_changes(changes: &[pb::EntryChange], limits: &Limits) -> Result<Vec<EntryChange>> {
    crate::writes::request::change_count(changes.len(), limits)?;
    let mut out = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        out.push(EntryChange {
            list: fields::list_id(&format!("changes[{i}].list_id"), &c.list_id)?,
            country: fields::country(&format!("changes[{i}].country"), &c.country)?,
            action: action_from(&format!("changes[{i}].action"), c.action)?,
            conditions: c.conditions.clone(),
        });
    }
    Ok(out)
}

/// ReplaceMembers' members, with their conditions.
pub fn members(members: Vec<pb::Member>) -> Result<Vec<(eligibility::Country, String)>> {
    let mut out = Vec::with_capacity(members.len());
    for (i, m) in members.into_iter().enumerate() {
        out.push((fields::country(&format!("members[{i}].country"), &m.country)?, m.conditions));
    }
    Ok(out)
}

/// A write's answer.
pub fn written(w: &WriteResult) -> pb::WriteResponse {
    pb::WriteResponse {
        revision: w.revision.0,
        store_id: w.store_id.to_string(),
        recorded: w.recorded,
        replayed: w.replayed,
        changeset: w.changeset.as_deref().map(changeset),
        validate_only: w.validate_only,
    }
}
