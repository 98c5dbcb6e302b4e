//! `eligibility.v1.EligibilityService`: decode, hand the raw values to the
//! read side's request checks, resolve the read point, ask the view,
//! encode. Authorization and metrics are layers around it.

use std::{pin::Pin, sync::Arc};

use eligibility::{Point, proto::v1 as pb};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{self as cv, to_status};
use crate::{
    app::{App, Watching},
    app::{Asked, queries::count_decision},
};

/// The read service.
pub struct EligibilityService {
    app: Arc<App>,
}

/// How a gRPC read waits (its `grpc-timeout`) and names its read point.
fn asked<T>(req: &Request<T>) -> Asked {
    Asked { wait: cv::deadline(req.metadata().as_ref()), at_field: "point.at_revision" }
}

/// The read point of a request (`None`: now, at the head).
fn point(p: Option<&pb::ReadPoint>) -> Result<Point, Status> {
    cv::point("point", p).map_err(to_status)
}

impl EligibilityService {
    /// A service over `app`.
    pub fn new(app: Arc<App>) -> Self {
        EligibilityService { app }
    }

    /// BatchCheck answered as a ready gRPC frame (see `grpc::encode`):
    /// the same bytes the generated server would send.
    pub(crate) async fn batch_check_frame<'a>(
        &self,
        req: &'a Request<super::encode::BatchItems>,
    ) -> Result<bytes::Bytes, Status> {
        let r = req.get_ref();
        let utf8 = |i: usize, field: &str, b: &'a [u8]| {
            // Ids and codes are ASCII: checked so with one pass, and only
            // other text goes through the full UTF-8 check.
            if b.is_ascii() {
                // SAFETY: ASCII is valid UTF-8.
                return Ok(unsafe { std::str::from_utf8_unchecked(b) });
            }
            std::str::from_utf8(b).map_err(|_| cv::invalid(&format!("items[{i}].{field}"), "not UTF-8"))
        };
        let mut items = Vec::with_capacity(r.len());
        for (i, (l, c)) in r.iter().enumerate() {
            items.push((utf8(i, "list_id", l)?, utf8(i, "country", c)?));
        }
        let point = point(r.point.as_ref())?;
        let (view, items) = self.app.queries.batch(items.into_iter(), point, asked(req)).await.map_err(to_status)?;
        let decisions = view.check_all_ref(&items).map_err(to_status)?;
        decisions.iter().for_each(|d| count_decision(d.reason));
        Ok(super::encode::batch_check_frame(&cv::header(&view.header()), &decisions))
    }
}

impl EligibilityService {
    /// The store this service answers from.
    pub fn store_id(&self) -> std::sync::Arc<str> {
        self.app.registry.store_id()
    }

    /// Opens a watch: the stream of `WatchEvent`s, each already a gRPC
    /// message frame.
    pub async fn open_watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Watching<impl Stream<Item = bytes::Bytes> + Send + use<>>, Status> {
        let (_, extensions, message) = req.into_parts();
        let watch = cv::watch_request(message).map_err(to_status)?;
        self.app.open_watch(watch, &extensions, cv::watch_event_frame).await.map_err(to_status)
    }
}

/// The stream type of Watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::eligibility_service_server::EligibilityService for EligibilityService {
    async fn check(&self, req: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let r = req.get_ref();
        let point = point(r.point.as_ref())?;
        let (view, d) = self.app.queries.check(&r.list_id, &r.country, point, asked(&req)).await.map_err(to_status)?;
        Ok(Response::new(pb::CheckResponse {
            header: Some(cv::header(&view.header())),
            decision: Some(cv::decision(&d)),
        }))
    }

    async fn batch_check(
        &self,
        req: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        let r = req.get_ref();
        let items = r.items.iter().map(|it| (it.list_id.as_str(), it.country.as_str()));
        let point = point(r.point.as_ref())?;
        let (view, decisions) = self.app.queries.batch_check(items, point, asked(&req)).await.map_err(to_status)?;
        Ok(Response::new(pb::BatchCheckResponse {
            header: Some(cv::header(&view.header())),
            decisions: decisions.iter().map(cv::decision).collect(),
        }))
    }

    async fn list_entries(
        &self,
        req: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let r = req.get_ref();
        let point = point(r.point.as_ref())?;
        let (view, page) = self
            .app
            .queries
            .entries(&r.list_id, r.page_size, &r.page_token, point, asked(&req))
            .await
            .map_err(to_status)?;
        Ok(Response::new(cv::entries(&view, &page)))
    }

    async fn list_lists(&self, req: Request<pb::ListListsRequest>) -> Result<Response<pb::ListListsResponse>, Status> {
        let point = point(req.get_ref().point.as_ref())?;
        let view = self.app.queries.view(point, asked(&req)).await.map_err(to_status)?;
        Ok(Response::new(cv::lists(&view)))
    }

    async fn get_list(&self, req: Request<pb::GetListRequest>) -> Result<Response<pb::GetListResponse>, Status> {
        let r = req.get_ref();
        let point = point(r.point.as_ref())?;
        let (view, info) = self.app.queries.list(&r.list_id, point, asked(&req)).await.map_err(to_status)?;
        Ok(Response::new(pb::GetListResponse { header: Some(cv::header(&view.header())), list: Some(cv::list(&info)) }))
    }

    async fn history(&self, req: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let r = req.get_ref();
        let wait = asked(&req).wait;
        let (view, page) = self
            .app
            .queries
            .history(&r.list_id, &r.country, r.at_revision, r.page_size, &r.page_token, wait)
            .await
            .map_err(to_status)?;
        Ok(Response::new(cv::history(&view, &page)))
    }

    async fn diff(&self, req: Request<pb::DiffRequest>) -> Result<Response<pb::DiffResponse>, Status> {
        let r = req.get_ref();
        let from = cv::point("from", r.from.as_ref()).map_err(to_status)?;
        let to = cv::point("to", r.to.as_ref()).map_err(to_status)?;
        let (view, d) = self.app.queries.diff(&r.list_id, from, to, asked(&req).wait).await.map_err(to_status)?;
        Ok(Response::new(cv::diff(&view, &d)))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        // The server routes Watch to the framed path (`watch_route`); this
        // is the same stream, decoded (past each frame's 5-byte prefix), for
        // embedders of the generated service.
        use prost::Message;
        let stream = self.open_watch(req).await?.events;
        let decoded = stream.map(|frame| {
            pb::WatchEvent::decode(frame.slice(eligibility::GRPC_PREFIX.min(frame.len())..))
                .map_err(|e| Status::internal(e.to_string()))
        });
        let mut resp = Response::new(Box::pin(decoded) as WatchStream);
        if let Ok(id) = self.store_id().parse() {
            resp.metadata_mut().insert(eligibility::STORE_ID_METADATA, id);
        }
        Ok(resp)
    }
}
