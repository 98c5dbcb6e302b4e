//! The domain's values as the `eligibility.v1` messages, and those
//! messages' fields as domain values: the one place both transports that
//! speak them share (gRPC encodes the messages as protobuf; HTTP/JSON as
//! their canonical JSON mapping). Parse errors are domain errors naming the
//! field. The write requests' conversions are in [`writes`].

mod writes;

pub use self::writes::{entry_changes, members, new_list, write_options, written};

use std::time::Duration;

use eligibility::{Point, Timestamp, point_from_proto, proto::v1 as pb};

use crate::{
    error::{Error, Result},
    fields,
    model::{Change, Changeset, EntryAction, ListMeta, ListMode},
    reads::{DiffResult, Header, HistoryPage, ListInfo, MembersPage, View, request},
    snapshot::{Decision, Event as EntryEvent},
    watch::{Event, Filter, Start, WatchRequest},
};

/// Parses a read point.
pub fn point(field: &str, p: Option<&pb::ReadPoint>) -> Result<Point> {
    point_from_proto(p).map_err(|e| Error::invalid(format!("{field}.as_of"), e.to_string()))
}

/// Parses an optional timestamp field.
pub fn timestamp(field: &str, t: Option<&eligibility::wkt::Timestamp>) -> Result<Option<Timestamp>> {
    t.map(Timestamp::try_from).transpose().map_err(|e| Error::invalid(field, e.to_string()))
}

/// How long a call may wait server-side: its `grpc-timeout` (gRPC and
/// gRPC-Web send it; the HTTP API honours it too) less a margin
/// (a tenth, at most 50 ms), so the server's own answer (e.g. UNAVAILABLE
/// for an unreached `min_revision`) reaches the client before its deadline
/// fires.
pub fn deadline(metadata: &http::HeaderMap) -> Option<Duration> {
    let d = grpc_timeout(metadata)?;
    Some(d.saturating_sub((d / 10).min(Duration::from_millis(50))))
}

fn grpc_timeout(metadata: &http::HeaderMap) -> Option<Duration> {
    let v = metadata.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Response header.
pub fn header(h: &Header) -> pb::ResponseHeader {
    pb::ResponseHeader { revision: h.revision.0, store_id: h.store_id.to_string(), as_of: Some(h.as_of.into()) }
}

/// List mode from wire.
pub fn mode_from(field: &str, m: i32) -> Result<ListMode> {
    ListMode::try_from(m).map_err(|e| Error::invalid(field, e.to_string()))
}

/// Entry action from wire.
pub fn action_from(field: &str, a: i32) -> Result<EntryAction> {
    EntryAction::try_from(a).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A list (metadata at some revision) to wire.
pub fn list(info: &ListInfo) -> pb::List {
    list_meta(info.id.as_str(), &info.meta, info.created.0, info.updated.0, info.member_count)
}

fn list_meta(id: &str, meta: &ListMeta, created: u64, updated: u64, members: u32) -> pb::List {
    pb::List {
        id: id.to_owned(),
        title: meta.title.clone(),
        description: meta.description.clone(),
        authority: meta.authority.clone(),
        mode: meta.mode.to_proto(),
        created_revision: created,
        updated_revision: updated,
        member_count: members,
    }
}

/// The deciding change of an event.
pub fn deciding(e: &EntryEvent) -> pb::DecidingChange {
    let cs = &e.changeset;
    pb::DecidingChange {
        revision: e.revision.0,
        effective_at: Some(e.effective_at.into()),
        recorded_at: Some(cs.recorded_at.into()),
        actor: cs.actor.to_string(),
        reason: cs.reason.to_string(),
        reference: cs.reference.to_string(),
        action: e.action.to_proto(),
    }
}

/// A decision to wire.
pub fn decision(d: &Decision) -> pb::Decision {
    pb::Decision {
        list_id: d.list.to_string(),
        country: d.country.to_string(),
        eligible: d.eligible,
        reason: d.reason.to_proto(),
        deciding_change: d.deciding.as_ref().map(deciding),
        conditions: d.conditions().to_owned(),
    }
}

/// A changeset to wire.
pub fn changeset(cs: &Changeset) -> pb::Changeset {
    let changes = cs
        .changes
        .iter()
        .map(|c| pb::Change {
            kind: Some(match c {
                Change::CreateList { list, meta } => {
                    pb::change::Kind::ListCreated(list_meta(list.as_str(), meta, cs.revision.0, cs.revision.0, 0))
                }
                Change::UpdateList { list, meta } => {
                    pb::change::Kind::ListUpdated(list_meta(list.as_str(), meta, 0, cs.revision.0, 0))
                }
                Change::Entry { list, country, action: a, conditions } => pb::change::Kind::Entry(pb::EntryChange {
                    list_id: list.to_string(),
                    country: country.to_string(),
                    action: a.to_proto(),
                    conditions: conditions.clone(),
                }),
            }),
        })
        .collect();
    pb::Changeset {
        revision: cs.revision.0,
        effective_at: Some(cs.effective_at.into()),
        recorded_at: Some(cs.recorded_at.into()),
        actor: cs.actor.to_string(),
        reason: cs.reason.to_string(),
        reference: cs.reference.to_string(),
        request_id: cs.request.as_ref().map(|k| k.id.to_string()).unwrap_or_default(),
        changes,
        activates_revision: cs.activates.map(|r| r.0).unwrap_or(0),
    }
}

/// A watch event to wire.
pub fn watch_event(e: &Event, store_id: &str) -> pb::WatchEvent {
    use pb::watch_event::Event as E;
    let event = match e {
        Event::Changeset(p) => E::Changeset(changeset(&p.changeset)),
        Event::Progress(r) => E::Progress(pb::Progress { revision: r.0, store_id: store_id.to_owned() }),
        Event::SnapshotList(s) => E::SnapshotList(pb::SnapshotList {
            list: Some(list(&s.info)),
            entries: s.members.iter().map(|m| entry(m.country, &m.event)).collect(),
            pending: s.pending.iter().map(|c| changeset(c)).collect(),
            removed: s.removed.iter().map(|m| entry(m.country, &m.event)).collect(),
        }),
        Event::SnapshotEnd(r, as_of) => E::SnapshotEnd(pb::SnapshotEnd {
            revision: r.0,
            store_id: store_id.to_owned(),
            as_of: Some((*as_of).into()),
        }),
    };
    pb::WatchEvent { event: Some(event) }
}

/// A list member to wire.
pub fn entry(country: eligibility::Country, e: &EntryEvent) -> pb::Entry {
    pb::Entry {
        country: country.to_string(),
        conditions: e.conditions().to_owned(),
        deciding_change: Some(deciding(e)),
    }
}

/// ListEntries' answer.
pub fn entries(view: &View, page: &MembersPage) -> pb::ListEntriesResponse {
    pb::ListEntriesResponse {
        header: Some(header(&view.header())),
        mode: page.meta.mode.to_proto(),
        entries: page.members.iter().map(|m| entry(m.country, &m.event)).collect(),
        next_page_token: request::next_entries_token(page.next_after),
    }
}

/// ListLists' answer.
pub fn lists(view: &View) -> pb::ListListsResponse {
    pb::ListListsResponse { header: Some(header(&view.header())), lists: view.lists().iter().map(list).collect() }
}

/// History's answer.
pub fn history(view: &View, page: &HistoryPage) -> pb::HistoryResponse {
    pb::HistoryResponse {
        header: Some(header(&view.header())),
        changesets: page.changesets.iter().map(changeset).collect(),
        next_page_token: request::next_history_token(page.next_after),
    }
}

/// Diff's answer.
pub fn diff(view: &View, d: &DiffResult) -> pb::DiffResponse {
    let names = |v: &[eligibility::Country]| v.iter().map(|c| c.to_string()).collect();
    pb::DiffResponse {
        header: Some(header(&view.header())),
        added: names(&d.added),
        removed: names(&d.removed),
        conditions_changed: names(&d.conditions_changed),
    }
}

/// A Watch request as the hub takes it (list ids and countries checked,
/// naming each by its index).
pub fn watch_request(r: pb::WatchRequest) -> Result<WatchRequest> {
    let start = match r.start.and_then(|s| s.start) {
        None | Some(pb::watch_start::Start::Now(_)) => Start::Now,
        Some(pb::watch_start::Start::AfterRevision(n)) => Start::After(eligibility::Revision(n)),
        Some(pb::watch_start::Start::Snapshot(_)) => Start::Snapshot,
    };
    let mut filter = Filter::default();
    for (i, l) in r.list_ids.iter().enumerate() {
        filter.lists.insert(fields::list_id(&format!("list_ids[{i}]"), l)?);
    }
    for (i, c) in r.countries.iter().enumerate() {
        filter.countries.insert(fields::country(&format!("countries[{i}]"), c)?);
    }
    let store_id = (!r.store_id.is_empty()).then_some(r.store_id);
    Ok(WatchRequest { start, filter, store_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        let mut m = http::HeaderMap::new();
        assert_eq!(deadline(&m), None);
        m.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(deadline(&m), Some(Duration::from_millis(225)));
        m.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(deadline(&m), Some(Duration::from_millis(2950)));
        m.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(deadline(&m), None);
    }
}
