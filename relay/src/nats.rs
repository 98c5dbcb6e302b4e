//! The JetStream sink: one message per changeset and list, on
//! `<prefix>.<list_id>`, with `Nats-Msg-Id: <store_id>:<revision>:<list_id>`.
//!
//! Exactly once in effect, with no local state: at start the relay reads
//! the stream's last message to learn the last revision published (and,
//! walking back over that revision's messages, which of its lists were), and
//! resumes the watch before that revision, skipping the lists already
//! there. A message re-sent after a lost acknowledgement is dropped by
//! JetStream's duplicate window (`Nats-Msg-Id`). Every publish is
//! acknowledged before the next, so each subject's order is the revision
//! order.

use std::{collections::HashSet, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{self, stream::Stream},
};
use bytes::Bytes;
use eligibility_client::{Changeset, Client, Revision};
use prost::Message;

use crate::{
    config::{Filter, Format, NatsConfig},
    feed::{self, Fatal, Outage},
};

/// Header: the changeset's revision.
pub const REVISION: &str = "Eligibility-Revision";
/// Header: the store the revision belongs to.
pub const STORE_ID: &str = "Eligibility-Store-Id";
/// Header: the list.
pub const LIST_ID: &str = "Eligibility-List-Id";

/// Where the stream left off.
#[derive(Debug, Default)]
struct Resume {
    /// Resume the watch after this revision.
    after: u64,
    /// The revision after `after` whose messages are partly in the stream,
    /// and the lists of it that are.
    partial: Option<(u64, HashSet<String>)>,
}

/// Runs the sink until a fatal error.
pub async fn run(cfg: NatsConfig, client: Client, store_id: String, filter: Filter, max_backoff: Duration) -> Fatal {
    let (js, stream) = connect(&cfg, max_backoff).await;
    let resume = match resume_point(&stream, &store_id).await {
        Ok(r) => r,
        Err(f) => return f,
    };
    tracing::info!(stream = %cfg.stream, after = resume.after, partial = ?resume.partial.as_ref().map(|p| p.0), "JetStream sink resuming");
    let published = metrics::counter!("eligibility_relay_published_total", "sink" => "nats");
    let skip = resume.partial;
    let result = feed::drive(&client, &store_id, &filter, Revision(resume.after), "nats", max_backoff, |cs| {
        let js = js.clone();
        let (cfg, store_id, skip, published) = (&cfg, &store_id, &skip, &published);
        async move {
            for (list, part) in feed::per_list(&cs) {
                if let Some((rev, lists)) = skip
                    && *rev == cs.revision.0
                    && lists.contains(list.as_str())
                {
                    continue;
                }
                publish(&js, cfg, store_id, list.as_str(), &part, max_backoff).await;
                published.increment(1);
            }
            Ok(())
        }
    })
    .await;
    match result {
        Ok(()) => Fatal::Sink("the change stream ended".into()),
        Err(f) => f,
    }
}

/// Connects and finds (or creates) the stream, waiting for NATS as long as
/// it takes.
async fn connect(cfg: &NatsConfig, max_backoff: Duration) -> (jetstream::Context, Stream) {
    feed::until_ok(format!("NATS at {}", cfg.url), max_backoff, || try_connect(cfg)).await
}

async fn try_connect(cfg: &NatsConfig) -> Result<(jetstream::Context, Stream), crate::error::Error> {
    use crate::error::Error;
    let nc = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name("eligibility-relay")
        .connect(cfg.url.as_str())
        .await
        .map_err(Error::NatsConnect)?;
    let js = jetstream::new(nc);
    let subjects = format!("{}.>", cfg.prefix);
    let mut stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![subjects.clone()],
            retention: cfg.retention,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NatsStream { stream: cfg.stream.clone(), source: Box::new(e) })?;
    let info =
        stream.info().await.map_err(|e| Error::NatsStream { stream: cfg.stream.clone(), source: Box::new(e) })?;
    if !info.config.subjects.iter().any(|s| s == &subjects || s == ">") {
        return Err(Error::NatsSubjects { stream: cfg.stream.clone(), subjects, have: info.config.subjects.clone() });
    }
    Ok((js, stream))
}

/// Reads where the stream left off; refuses a stream that holds another
/// store's messages.
async fn resume_point(stream: &Stream, store_id: &str) -> Result<Resume, Fatal> {
    let last = stream.cached_info().state.last_sequence;
    let mut seq = last;
    let mut top: Option<u64> = None;
    let mut lists = HashSet::new();
    while seq > 0 {
        let msg = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            // A gap (a deleted message): look further back.
            Err(_) if top.is_some() || seq + 1000 > last => {
                seq -= 1;
                continue;
            }
            Err(e) => return Err(Fatal::Sink(format!("cannot read the stream's last messages: {e}"))),
        };
        let header = |k: &str| msg.headers.get(k).map(|v| v.as_str().to_owned());
        let (Some(rev), Some(store), Some(list)) = (header(REVISION), header(STORE_ID), header(LIST_ID)) else {
            return Err(Fatal::Sink(format!("message {seq} of the stream was not published by eligibility-relay")));
        };
        if store != store_id {
            return Err(Fatal::StoreMismatch(format!(
                "the stream holds messages of store {store}; the server's store is {store_id} (use another stream)"
            )));
        }
        let rev: u64 = rev.parse().map_err(|_| Fatal::Sink(format!("message {seq}: bad {REVISION} {rev:?}")))?;
        match top {
            None => top = Some(rev),
            Some(t) if t != rev => break,
            Some(_) => {}
        }
        lists.insert(list);
        seq -= 1;
    }
    Ok(match top {
        None => Resume::default(),
        Some(t) => Resume { after: t - 1, partial: Some((t, lists)) },
    })
}

/// Publishes one message and waits for JetStream's acknowledgement,
/// retrying (the same message id) until it is stored.
async fn publish(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    store_id: &str,
    list: &str,
    part: &Changeset,
    max_backoff: Duration,
) {
    let wire = part.to_proto();
    let body = match cfg.format {
        Format::Json => Bytes::from(serde_json::to_vec(&wire).expect("a message serializes")),
        Format::Protobuf => Bytes::from(wire.encode_to_vec()),
    };
    let id = format!("{store_id}:{}:{list}", part.revision.0);
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.as_str());
    headers.insert(REVISION, part.revision.0.to_string().as_str());
    headers.insert(STORE_ID, store_id);
    headers.insert(LIST_ID, list);
    headers.insert(
        "Content-Type",
        match cfg.format {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf; messageType=eligibility.v1.Changeset",
        },
    );
    let subject = format!("{}.{list}", cfg.prefix);
    let mut outage = Outage::new(format!("JetStream stream {}", cfg.stream));
    let mut attempt = 0;
    loop {
        let sent = async {
            let ack = js
                .publish_with_headers(subject.clone(), headers.clone(), body.clone())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(10), sent).await {
            Ok(Ok(_ack)) => {
                outage.up();
                return;
            }
            Ok(Err(e)) => outage.down(&e),
            Err(_) => outage.down(&"no acknowledgement within 10 s"),
        }
        attempt += 1;
        tokio::time::sleep(feed::backoff(attempt, max_backoff)).await;
    }
}
