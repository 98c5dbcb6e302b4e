//! The typed answers from their wire messages: every field checked (a
//! server that sends something this crate cannot read is an
//! `InvalidResponse`, never a panic).

use super::*;

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
