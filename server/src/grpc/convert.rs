//! Wire <-> domain conversions and the one error mapping. Everything that
//! touches prost types on the server lives in `grpc/`.

use std::time::Duration;

use eligibility::{
    Point, Timestamp,
    error_info::{self, key, reason},
    point_from_proto,
    proto::v1 as pb,
};
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    error::Error,
    model::{Change, Changeset, EntryAction, ListMeta, ListMode},
    reads::{Header, ListInfo},
    snapshot::{Decision, Event as EntryEvent},
    watch::Event,
};

/// An `INVALID_ARGUMENT` status with a standard `BadRequest` field
/// violation naming the field.
pub fn invalid(field: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid {field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// A status with a machine-readable `ErrorInfo` (reason and metadata).
fn info(code: Code, msg: String, reason: &str, metadata: &[(&str, String)]) -> Status {
    let md: std::collections::HashMap<String, String> =
        metadata.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Status::with_error_details(code, msg, ErrorDetails::with_error_info(reason, error_info::DOMAIN, md))
}

/// `RESOURCE_EXHAUSTED` for a watch the slow-consumer budget cut, with
/// `ErrorInfo` reason `SLOW_CONSUMER` and, when known, the revision to
/// resume after.
pub fn slow_consumer(msg: String, resume_after: Option<u64>) -> Status {
    let md: Vec<(&str, String)> =
        resume_after.map(|r| (error_info::key::RESUME_AFTER_REVISION, r.to_string())).into_iter().collect();
    info(Code::ResourceExhausted, msg, error_info::reason::SLOW_CONSUMER, &md)
}

/// Maps a domain error to a status. Exhaustive on purpose.
pub fn to_status(e: Error) -> Status {
    let msg = e.to_string();
    match e {
        Error::InvalidArgument { field, message } => invalid(&field, &message),
        Error::ListNotFound { .. } => Status::not_found(msg),
        Error::ListExists(_) | Error::RequestIdReused { .. } => Status::already_exists(msg),
        Error::RevisionMismatch { expected, actual } => info(
            Code::Aborted,
            msg,
            reason::REVISION_MISMATCH,
            &[(key::EXPECTED_REVISION, expected.to_string()), (key::ACTUAL_REVISION, actual.to_string())],
        ),
        Error::RevisionOutOfRange { .. } => Status::out_of_range(msg),
        Error::StoreMismatch { ref actual, .. } => {
            info(Code::FailedPrecondition, msg.clone(), reason::STORE_MISMATCH, &[(key::STORE_ID, actual.clone())])
        }
        Error::ResumeAhead { head, .. } => {
            info(Code::FailedPrecondition, msg, reason::RESUME_AHEAD, &[(key::HEAD_REVISION, head.to_string())])
        }
        Error::ResourceExhausted(_) => Status::resource_exhausted(msg),
        Error::NotYetAtRevision { .. } | Error::Unavailable(_) | Error::ShuttingDown => Status::unavailable(msg),
        Error::Corrupt(_) | Error::Config(_) => {
            tracing::error!(error = %msg, "internal error");
            Status::internal(msg)
        }
    }
}

/// Parses a read point.
pub fn point(field: &str, p: Option<&pb::ReadPoint>) -> Result<Point, Status> {
    point_from_proto(p).map_err(|e| invalid(&format!("{field}.as_of"), &e.to_string()))
}

/// Parses an optional timestamp field.
pub fn timestamp(field: &str, t: Option<&eligibility::wkt::Timestamp>) -> Result<Option<Timestamp>, Status> {
    t.map(Timestamp::try_from).transpose().map_err(|e| invalid(field, &e.to_string()))
}

/// How long a call may wait server-side: its `grpc-timeout` less a margin
/// (a tenth, at most 50 ms), so the server's own answer (e.g. UNAVAILABLE
/// for an unreached `min_revision`) reaches the client before its deadline
/// fires.
pub fn deadline(metadata: &MetadataMap) -> Option<Duration> {
    let d = grpc_timeout(metadata)?;
    Some(d.saturating_sub((d / 10).min(Duration::from_millis(50))))
}

fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
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
pub fn mode_from(field: &str, m: i32) -> Result<ListMode, Status> {
    ListMode::try_from(m).map_err(|e| invalid(field, &e.to_string()))
}

/// Entry action from wire.
pub fn action_from(field: &str, a: i32) -> Result<EntryAction, Status> {
    EntryAction::try_from(a).map_err(|e| invalid(field, &e.to_string()))
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

/// A watch event as a gRPC message frame (the 5-byte length prefix and the
/// encoded `WatchEvent`), ready for the wire. A changeset is framed once
/// and the bytes are shared by every watcher that sends the same one.
pub fn watch_event_frame(e: &Event, store_id: &str) -> bytes::Bytes {
    match e {
        Event::Changeset(p) => {
            p.wire(|cs| grpc_frame(&pb::WatchEvent { event: Some(pb::watch_event::Event::Changeset(changeset(cs))) }))
        }
        other => grpc_frame(&watch_event(other, store_id)),
    }
}

/// `message` in gRPC's length-prefixed framing (uncompressed).
pub fn grpc_frame(message: &impl prost::Message) -> bytes::Bytes {
    let len = message.encoded_len();
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    // A message over 4 GiB cannot be framed; ours are bounded far below
    // by the request limits and list sizes.
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    message.encode_raw(&mut buf);
    buf.into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        let mut m = MetadataMap::new();
        assert_eq!(deadline(&m), None);
        m.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(deadline(&m), Some(Duration::from_millis(225)));
        m.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(deadline(&m), Some(Duration::from_millis(2950)));
        m.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(deadline(&m), None);
    }

    #[test]
    fn invalid_argument_carries_field_violation() {
        let s = invalid("items[2].country", "\"ZZ\" is not a country");
        assert_eq!(s.code(), Code::InvalidArgument);
        let br = s.get_details_bad_request().expect("bad request details");
        assert_eq!(br.field_violations[0].field, "items[2].country");
    }
}
