//! The framed fast paths of Watch, Check and BatchCheck (the routes the
//! table marks `framed`; the shortcut layer sends them here, past the
//! router). Watch events are framed once (see
//! [`crate::watch::Published`]) and every stream writes the same bytes: the
//! response body hands the shared frame to HTTP/2 as it is, with no
//! per-watcher encoding or copy. Check, the hottest unary call, is read
//! whole and answered in one exact-size frame, without the generated
//! server's per-call codec machinery (the answer is byte for byte the
//! generated service's; `tests/tests/check_path.rs`). The wire format is
//! exactly gRPC; only the server's work changes. Every other method of
//! the service is the generated server's, in the router.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use eligibility::proto::v1 as pb;
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message;
use tonic::{Request, Status, body::Body};

use eligibility::GRPC_PREFIX;

use super::query::EligibilityService;
use crate::{
    app::Watching,
    budget::Consumer,
    layers::{
        metrics::{Tallied, TallyOffer},
        stream_body::StreamBody,
    },
    routes::{Op, Resolved},
};

/// Reads the one request message (`name`, e.g. `WatchRequest`) of a call:
/// stops as soon as a whole message is in (a client need not half-close
/// first), and refuses a message over `max` bytes before reading it.
async fn read_request<M: Message + Default>(body: &mut Body, max: usize, name: &str) -> Result<M, Status> {
    let mut buf = BytesMut::new();
    loop {
        if buf.len() >= GRPC_PREFIX {
            if buf[0] != 0 {
                return Err(Status::unimplemented(
                    "compressed requests are not supported; send WatchRequest uncompressed",
                ));
            }
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if len > max {
                // The limits layer refuses this before the route sees it;
                // kept so the route is safe on its own.
                return Err(Status::resource_exhausted(format!(
                    "the request message is {len} bytes; the limit is {max} bytes"
                )));
            }
            if buf.len() >= GRPC_PREFIX + len {
                buf.advance(GRPC_PREFIX);
                return M::decode(buf.split_to(len).freeze())
                    .map_err(|e| Status::invalid_argument(format!("invalid {name}: {e}")));
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(status)) => return Err(status),
            None => {
                return Err(Status::invalid_argument(if buf.is_empty() {
                    format!("the call carried no {name}")
                } else {
                    format!("the call ended inside its {name} ({} bytes)", buf.len())
                }));
            }
        }
    }
}

/// The status a cut stream ends with: resumable, and saying where from.
fn cut(consumer: &Consumer) -> Status {
    let after = consumer.resume_after();
    let from = match after {
        Some(r) => format!("resume after revision {r}"),
        None => "start again (the snapshot was not complete)".to_owned(),
    };
    crate::grpc::convert::slow_consumer(
        format!(
            "slow consumer: this stream held more unsent bytes than the server's budget allows; {from} (the client \
             crate's watch and an EventSource resume by themselves)"
        ),
        after,
    )
}

/// How a Watch call ends: `grpc-status: 0` (server shutdown) or
/// `RESOURCE_EXHAUSTED` when the slow-consumer budget cut it.
fn grpc_end(consumer: Option<&Consumer>) -> (tonic::Code, Option<http::HeaderMap>) {
    let status = match consumer {
        Some(c) if c.is_cut() => cut(c),
        _ => Status::ok(""),
    };
    let mut trailers = http::HeaderMap::new();
    let _ = status.add_header(&mut trailers);
    (status.code(), Some(trailers))
}

/// Answers one Watch call.
async fn watch(service: Arc<EligibilityService>, req: http::Request<Body>, max: usize) -> http::Response<Body> {
    let (mut parts, mut body) = req.into_parts();
    let offer = parts.extensions.remove::<TallyOffer>();
    let message = match read_request(&mut body, max, "WatchRequest").await {
        Ok(m) => m,
        Err(status) => return status.into_http(),
    };
    match service.open_watch(Request::from_http(http::Request::from_parts(parts, message))).await {
        Ok(Watching { events, consumer }) => {
            // No error-mapping layer to poll through per event per watcher,
            // nor a metrics wrapper: one box around the whole watch.
            let tally = offer.map(TallyOffer::accept);
            let tallied = tally.is_some();
            let body = crate::layers::unmapped(StreamBody::new(events, consumer, tally, grpc_end));
            let mut resp = http::Response::new(body);
            resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
            if let Ok(id) = http::HeaderValue::from_str(&service.store_id()) {
                resp.headers_mut().insert(eligibility::STORE_ID_METADATA, id);
            }
            if tallied {
                resp.extensions_mut().insert(Tallied);
            }
            resp
        }
        Err(status) => status.into_http(),
    }
}

/// A unary answer: its one message, then `grpc-status: 0`.
struct UnaryBody {
    message: Option<Bytes>,
    done: bool,
}

impl http_body::Body for UnaryBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(m) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(m))));
        }
        if std::mem::replace(&mut self.done, true) {
            return Poll::Ready(None);
        }
        let mut trailers = http::HeaderMap::new();
        let _ = Status::ok("").add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Reads a unary call's request message whole, and its body to the end
/// (over HTTP/2 its end came with the message; over HTTP/1.1, gRPC-Web, a
/// body left unread would keep the connection from serving the client's
/// next call); the request as the service takes it, or the refusal.
async fn unary_request<M: Message + Default>(
    req: http::Request<Body>,
    max: usize,
    name: &str,
) -> Result<Request<M>, http::Response<Body>> {
    let (parts, mut body) = req.into_parts();
    let message: M = read_request(&mut body, max, name).await.map_err(|s| s.into_http())?;
    while let Some(Ok(_)) = body.frame().await {}
    Ok(Request::from_http(http::Request::from_parts(parts, message)))
}

/// A unary answer: one ready gRPC frame, then an OK status.
fn framed_answer(frame: bytes::Bytes, headers: http::HeaderMap) -> http::Response<Body> {
    let mut resp = http::Response::new(crate::layers::unmapped(UnaryBody { message: Some(frame), done: false }));
    *resp.headers_mut() = headers;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    resp
}

/// Answers one Check call: the same handler as the generated server's,
/// without its per-call codec machinery (a streaming decoder for one
/// message, an 8 KiB encode buffer per answer): the request read whole,
/// the answer framed in one exact-size buffer.
async fn check(service: Arc<EligibilityService>, req: http::Request<Body>, max: usize) -> http::Response<Body> {
    use pb::eligibility_service_server::EligibilityService as _;
    let request: Request<pb::CheckRequest> = match unary_request(req, max, "CheckRequest").await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match service.check(request).await {
        Ok(answer) => {
            let (metadata, message, _) = answer.into_parts();
            framed_answer(super::convert::grpc_frame(&message), metadata.into_headers())
        }
        Err(status) => status.into_http(),
    }
}

/// Answers one BatchCheck call likewise, its answer encoded by hand from
/// the decisions (`grpc::encode`): the same bytes as the generated
/// server's, without an owned wire message per item.
async fn batch_check(service: Arc<EligibilityService>, req: http::Request<Body>, max: usize) -> http::Response<Body> {
    let request: Request<super::encode::BatchItems> = match unary_request(req, max, "BatchCheckRequest").await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match service.batch_check_frame(&request).await {
        Ok(frame) => framed_answer(frame, http::HeaderMap::new()),
        Err(status) => status.into_http(),
    }
}

/// `eligibility.v1.EligibilityService`'s framed methods: Watch, Check and
/// BatchCheck, chosen by the request's resolved route.
#[derive(Clone)]
pub struct Framed {
    service: Arc<EligibilityService>,
    max_decoding: usize,
}

impl Framed {
    /// Serves `service`, refusing requests larger than `max_decoding` bytes.
    pub fn new(service: Arc<EligibilityService>, max_decoding: usize) -> Self {
        Framed { service, max_decoding }
    }
}

impl tower::Service<http::Request<Body>> for Framed {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let (service, max) = (self.service.clone(), self.max_decoding);
        let op = Resolved::of(&req).route().filter(|r| r.framed).map(|r| r.op);
        Box::pin(async move {
            Ok(match op {
                Some(Op::Watch) => watch(service, req, max).await,
                Some(Op::Check) => check(service, req, max).await,
                Some(Op::BatchCheck) => batch_check(service, req, max).await,
                // The shortcut layer sends only framed routes here.
                _ => Status::unimplemented(format!("{} has no framed path", req.uri().path())).into_http(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::StreamBody;
    use tonic::Code;

    use super::*;

    const MAX: usize = 1024;

    /// A request body made of these data frames, then (unless `hang`) its end.
    fn body(chunks: Vec<Vec<u8>>, hang: bool) -> Body {
        let frames = tokio_stream::iter(chunks.into_iter().map(|c| Ok::<_, Status>(Frame::data(Bytes::from(c)))));
        if hang {
            Body::new(StreamBody::new(tokio_stream::StreamExt::chain(frames, tokio_stream::pending())))
        } else {
            Body::new(StreamBody::new(frames))
        }
    }

    fn request() -> pb::WatchRequest {
        pb::WatchRequest { list_ids: vec!["cyber".into()], store_id: "s".into(), ..Default::default() }
    }

    async fn read(chunks: Vec<Vec<u8>>) -> Result<pb::WatchRequest, Status> {
        read_request(&mut body(chunks, false), MAX, "WatchRequest").await
    }

    #[tokio::test]
    async fn a_request_split_across_frames_is_read_whole() {
        let frame = convert_frame();
        let (a, b) = frame.split_at(3);
        let (b, c) = b.split_at(4);
        assert_eq!(read(vec![a.to_vec(), b.to_vec(), c.to_vec()]).await.unwrap(), request());
    }

    fn convert_frame() -> Vec<u8> {
        super::super::convert::grpc_frame(&request()).to_vec()
    }

    #[tokio::test]
    async fn the_request_is_answered_without_waiting_for_the_client_to_half_close() {
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            read_request::<pb::WatchRequest>(&mut body(vec![convert_frame()], true), MAX, "WatchRequest"),
        )
        .await
        .expect("read_request waited for the end of the body");
        assert_eq!(got.unwrap(), request());
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused_before_it_is_read() {
        // Only the prefix is sent: the refusal must not wait for the rest.
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&(MAX as u32 + 1).to_be_bytes());
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            read_request::<pb::WatchRequest>(&mut body(vec![prefix], true), MAX, "WatchRequest"),
        )
        .await
        .expect("the oversized request was read to its end")
        .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("the limit is"), "{}", err.message());
    }

    #[tokio::test]
    async fn malformed_requests_get_clear_errors() {
        let mut compressed = convert_frame();
        compressed[0] = 1;
        let err = read(vec![compressed]).await.unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert!(err.message().contains("compressed"), "{}", err.message());

        let err = read(vec![]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("no WatchRequest"), "{}", err.message());

        let frame = convert_frame();
        let err = read(vec![frame[..frame.len() - 1].to_vec()]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("ended inside"), "{}", err.message());

        let err = read(vec![vec![0, 0, 0, 0, 2, 0xff, 0xff]]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("invalid WatchRequest"), "{}", err.message());
    }

    #[tokio::test]
    async fn the_body_sends_frames_as_they_are_then_an_ok_status() {
        let frames = vec![Bytes::from_static(b"\0\0\0\0\x01a"), Bytes::from_static(b"\0\0\0\0\x01b")];
        let events = tokio_stream::iter(frames.clone());
        let mut body = std::pin::pin!(crate::layers::stream_body::StreamBody::new(events, None, None, grpc_end));
        for want in frames {
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), want);
        }
        let trailers = body.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert!(http_body::Body::is_end_stream(&*body));
        assert!(body.frame().await.is_none());
    }
}
