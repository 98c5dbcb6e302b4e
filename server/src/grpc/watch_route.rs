//! The Watch RPC's fast path: events are encoded once (see
//! [`crate::watch::Published`]) and written to every stream as the same
//! bytes, through a codec whose items are already-encoded messages. The
//! wire format is exactly `eligibility.v1.WatchEvent`; only the server's
//! work changes. Every other method goes to the generated service.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BufMut, Bytes};
use eligibility::proto::v1::{self as pb, eligibility_service_server::EligibilityServiceServer};
use prost::Message;
use tonic::{
    Request, Response, Status,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    server::{Grpc, NamedService, ServerStreamingService},
};

use super::query::{EligibilityService, EncodedStream};

const WATCH_PATH: &str = "/eligibility.v1.EligibilityService/Watch";

/// Writes pre-encoded messages; reads `WatchRequest`s.
#[derive(Default)]
struct EncodedCodec;

struct BytesEncoder;
struct RequestDecoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RequestDecoder {
    type Item = pb::WatchRequest;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<pb::WatchRequest>, Status> {
        let len = src.remaining();
        pb::WatchRequest::decode(src.copy_to_bytes(len))
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("invalid WatchRequest: {e}")))
    }
}

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = pb::WatchRequest;
    type Encoder = BytesEncoder;
    type Decoder = RequestDecoder;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder
    }
}

struct WatchRpc(Arc<EligibilityService>);

impl ServerStreamingService<pb::WatchRequest> for WatchRpc {
    type Response = Bytes;
    type ResponseStream = EncodedStream;
    type Future = Pin<Box<dyn Future<Output = Result<Response<EncodedStream>, Status>> + Send>>;
    fn call(&mut self, req: Request<pb::WatchRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { svc.open_watch(req).await.map(Response::new) })
    }
}

/// `eligibility.v1.EligibilityService`: Watch on the encoded path, the rest
/// by the generated server.
#[derive(Clone)]
pub struct EligibilityRoute {
    generated: EligibilityServiceServer<EligibilityService>,
    service: Arc<EligibilityService>,
    max_decoding: usize,
}

impl EligibilityRoute {
    /// Serves `service`, refusing requests larger than `max_decoding` bytes.
    pub fn new(service: EligibilityService, max_decoding: usize) -> Self {
        let service = Arc::new(service);
        let generated = EligibilityServiceServer::from_arc(service.clone()).max_decoding_message_size(max_decoding);
        EligibilityRoute { generated, service, max_decoding }
    }
}

impl NamedService for EligibilityRoute {
    const NAME: &'static str = "eligibility.v1.EligibilityService";
}

impl tower::Service<http::Request<Body>> for EligibilityRoute {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() == WATCH_PATH {
            let rpc = WatchRpc(self.service.clone());
            let max = self.max_decoding;
            Box::pin(async move {
                let mut grpc = Grpc::new(EncodedCodec).apply_max_message_size_config(Some(max), None);
                Ok(grpc.server_streaming(rpc, req).await)
            })
        } else {
            let mut generated = self.generated.clone();
            Box::pin(async move { tower::Service::call(&mut generated, req).await })
        }
    }
}
