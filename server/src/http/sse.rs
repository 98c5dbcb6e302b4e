//! `GET /v1/watch`: the change stream as server-sent events. Each event's
//! `id:` is the revision it completes (snapshot lists have none: they
//! complete nothing until `snapshot_end`), `event:` its kind, `data:` its
//! JSON. A client that reconnects with `Last-Event-ID` resumes after that
//! revision, so a browser's `EventSource` resumes by itself, with no gap
//! and no duplicate. Idle streams carry a `progress` event at every
//! heartbeat, which also keeps proxies from closing them.

use axum::{
    body::Body,
    extract::{Request, State},
};
use bytes::Bytes;
use eligibility::proto::v1::{self as pb, watch_event::Event as E};
use http::{HeaderValue, Response, header};

use super::{Answer, Http};
use crate::{
    budget::Consumer,
    error::Error,
    layers::{
        metrics::{Tallied, TallyOffer},
        stream_body::StreamBody,
    },
    query::Query,
    watch::{Encoding, Event},
    wire::{self, watch_event},
};

/// The keys `GET /v1/watch` takes.
const KEYS: [&str; 5] = ["after_revision", "snapshot", "list_id", "country", "store_id"];

/// See the module docs.
pub async fn watch(State(h): State<Http>, req: Request) -> Answer {
    let (mut parts, _) = req.into_parts();
    let q = Query::parse(&parts.uri)?;
    q.only(&KEYS)?;
    let last_event_id = match parts.headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(crate::fields::revision_digits(v.trim()).ok_or_else(|| {
            Error::invalid("Last-Event-ID", format!("{v:?} is not a revision (an id this stream sent)"))
        })?),
        Some(Err(_)) => return Err(Error::invalid("Last-Event-ID", "not text").into()),
    };
    let after = q.number("after_revision")?;
    let snapshot = q.flag("snapshot")?;
    let start = match (last_event_id, after, snapshot) {
        // A reconnection resumes where it left off, whatever the URL said.
        (Some(r), _, _) | (None, Some(r), false) => Some(pb::watch_start::Start::AfterRevision(r)),
        (None, Some(_), true) => {
            return Err(Error::invalid("snapshot", "after_revision and snapshot exclude each other").into());
        }
        (None, None, true) => Some(pb::watch_start::Start::Snapshot(true)),
        (None, None, false) => None,
    };
    // The request as a WatchRequest message, so its fields are checked
    // and named as gRPC's are.
    let msg = pb::WatchRequest {
        start: start.map(|s| pb::WatchStart { start: Some(s) }),
        list_ids: q.all("list_id").map(str::to_owned).collect(),
        countries: q.all("country").map(str::to_owned).collect(),
        store_id: q.one("store_id")?.unwrap_or_default().to_owned(),
    };
    let offer = parts.extensions.remove::<TallyOffer>();
    let watching = h.app.open_watch(wire::watch_request(msg)?, &parts.extensions, present).await?;
    // The body the gRPC Watch has (each event counted on the connection's
    // ledger as it is handed over, the writer's wake-ups batched, the
    // metrics record kept by the body); a stream the slow-consumer budget
    // cuts just ends: the browser's `EventSource` reconnects with the last
    // id it received.
    let tally = offer.map(TallyOffer::accept);
    let tallied = tally.is_some();
    let body = StreamBody::new(watching.events, watching.consumer, tally, sse_end);
    let mut resp = Response::new(Body::new(body));
    if tallied {
        resp.extensions_mut().insert(Tallied);
    }
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(id) = HeaderValue::from_str(&h.app.registry.store_id()) {
        headers.insert(eligibility::STORE_ID_METADATA, id);
    }
    // Proxies that buffer responses (nginx) would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// How an event stream ends: with its last event (the metrics say whether
/// the slow-consumer budget cut it).
fn sse_end(consumer: Option<&Consumer>) -> (tonic::Code, Option<http::HeaderMap>) {
    match consumer {
        Some(c) if c.is_cut() => (tonic::Code::ResourceExhausted, None),
        _ => (tonic::Code::Ok, None),
    }
}

/// An event as the stream sends it. A changeset is encoded once and its
/// bytes shared by every stream that sends the same one (as the gRPC path
/// does).
fn present(e: &Event, store_id: &str) -> Bytes {
    match e {
        Event::Changeset(p) => p.encoded_as(Encoding::ServerSentEvent, |_| sse(&watch_event(e, store_id))),
        other => sse(&watch_event(other, store_id)),
    }
}

/// One event in the `text/event-stream` format.
fn sse(e: &pb::WatchEvent) -> Bytes {
    let (id, kind, data) = match &e.event {
        Some(E::Changeset(c)) => (Some(c.revision), "changeset", serde_json::to_string(c)),
        Some(E::Progress(p)) => (Some(p.revision), "progress", serde_json::to_string(p)),
        Some(E::SnapshotList(s)) => (None, "snapshot_list", serde_json::to_string(s)),
        Some(E::SnapshotEnd(s)) => (Some(s.revision), "snapshot_end", serde_json::to_string(s)),
        None => (None, "unknown", Ok("{}".to_owned())),
    };
    // JSON from serde_json has no raw newlines, so one `data:` line holds it.
    let data = data.unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    let text = match id {
        Some(id) => format!("id: {id}\nevent: {kind}\ndata: {data}\n\n"),
        None => format!("event: {kind}\ndata: {data}\n\n"),
    };
    Bytes::from(text)
}
