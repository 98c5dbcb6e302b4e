//! The webhook sink: each changeset POSTed as its canonical JSON to every
//! endpoint, signed as Standard Webhooks says (`webhook-id` =
//! `<store_id>:<revision>`, `webhook-timestamp`, `webhook-signature`), one
//! at a time per endpoint: revision n+1 goes after n was acknowledged with
//! a 2xx. A failure is retried (capped exponential backoff with jitter,
//! `Retry-After` honoured), never skipped; the acknowledged position is
//! saved durably and the endpoint resumes from it after a restart, so a
//! receiver sees a duplicate only of the one in flight at a crash, with
//! the same `webhook-id`. Redirects are not followed; TLS certificates are
//! verified.

use std::time::Duration;

use bytes::Bytes;
use eligibility_client::{Changeset, Client, Revision};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{client::legacy::Client as Http, rt::TokioExecutor};

use crate::{
    config::Webhook,
    feed::{self, Fatal, Outage},
    position::{Position, PositionFile},
};

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The HTTP client every endpoint shares.
pub fn http_client() -> Result<Http<Connector, Full<Bytes>>, crate::error::Error> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(crate::error::Error::RootCertificates)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Http::builder(TokioExecutor::new()).build(https))
}

/// What a receiver's answer is read to, at most (it is only logged).
const MAX_ANSWER: usize = 16 << 10;

/// How one attempt ended.
enum Outcome {
    Delivered,
    /// Retry, after at least this long if the receiver said so.
    Retry(String, Option<Duration>),
}

/// Runs one endpoint until a fatal error.
pub async fn run(
    w: Webhook,
    client: Client,
    store_id: String,
    position: PositionFile,
    http: Http<Connector, Full<Bytes>>,
    timeout: Duration,
    max_backoff: Duration,
) -> Fatal {
    let after = match position.load() {
        Err(e) => return Fatal::Sink(e.to_string()),
        Ok(None) => 0,
        Ok(Some(p)) if p.store_id != store_id => {
            return Fatal::StoreMismatch(format!(
                "webhook {}'s position belongs to store {}; the server's store is {store_id} (delete the position file to start over)",
                w.name, p.store_id
            ));
        }
        Ok(Some(p)) => p.revision,
    };
    tracing::info!(webhook = %w.name, url = %w.url, after, "webhook sink resuming");
    let sink = format!("webhook:{}", w.name);
    let sent = metrics::counter!("eligibility_relay_published_total", "sink" => sink.clone());
    let failed = metrics::counter!("eligibility_relay_webhook_failures_total", "sink" => sink.clone());
    let result = feed::drive(&client, &store_id, &w.filter, Revision(after), &sink, max_backoff, |cs| {
        let (w, http, position, store_id, sent, failed) = (&w, &http, &position, &store_id, &sent, &failed);
        async move {
            deliver(w, http, store_id, &cs, timeout, max_backoff, failed).await;
            sent.increment(1);
            position
                .save(&Position { store_id: store_id.clone(), revision: cs.revision.0 })
                .map_err(|e| Fatal::Sink(format!("cannot save webhook {}'s position: {e}", w.name)))
        }
    })
    .await;
    match result {
        Ok(()) => Fatal::Sink("the change stream ended".into()),
        Err(f) => f,
    }
}

/// Delivers one changeset, retrying until the endpoint acknowledges it.
async fn deliver(
    w: &Webhook,
    http: &Http<Connector, Full<Bytes>>,
    store_id: &str,
    cs: &Changeset,
    timeout: Duration,
    max_backoff: Duration,
    failed: &metrics::Counter,
) {
    let body = Bytes::from(serde_json::to_vec(&cs.to_proto()).expect("a message serializes"));
    let id = format!("{store_id}:{}", cs.revision.0);
    let mut outage = Outage::new(format!("webhook {} ({})", w.name, w.url));
    let mut attempt = 0;
    loop {
        match attempt_once(w, http, &id, &body, timeout).await {
            Outcome::Delivered => {
                outage.up();
                return;
            }
            Outcome::Retry(why, after) => {
                failed.increment(1);
                outage.down(&why);
                attempt += 1;
                let wait = feed::backoff(attempt, max_backoff).max(after.unwrap_or_default().min(max_backoff));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn attempt_once(
    w: &Webhook,
    http: &Http<Connector, Full<Bytes>>,
    id: &str,
    body: &Bytes,
    timeout: Duration,
) -> Outcome {
    // Signed afresh at every attempt: receivers refuse old timestamps.
    let timestamp = eligibility::Timestamp::now().as_micros() / 1_000_000;
    let request = http::Request::post(w.url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("eligibility-relay/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", w.secret.sign(id, timestamp, body))
        .body(Full::new(body.clone()));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(format!("cannot build the request: {e}"), None),
    };
    let answered = tokio::time::timeout(timeout, async {
        let resp = http.request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read (a bounded part of) the answer, so the connection can be
        // reused; it is only logged.
        let text = Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Ok::<_, String>((status, retry_after, text))
    })
    .await;
    match answered {
        Err(_) => Outcome::Retry(format!("no answer within {timeout:?}"), None),
        Ok(Err(e)) => Outcome::Retry(e, None),
        Ok(Ok((status, _, _))) if status.is_success() => Outcome::Delivered,
        Ok(Ok((status, retry_after, text))) => {
            let what = if status.is_redirection() { " (redirects are not followed)" } else { "" };
            Outcome::Retry(
                format!("answered {status}{what}: {}", String::from_utf8_lossy(&text[..text.len().min(200)])),
                retry_after,
            )
        }
    }
}
