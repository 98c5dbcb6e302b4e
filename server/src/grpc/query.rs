//! `eligibility.v1.EligibilityService`: decode, hand the raw values to the
//! read side's request checks, resolve the read point, ask the view,
//! encode. Authorization and metrics are layers around it.

use std::{pin::Pin, sync::Arc};

use eligibility::{Consistency, Country, ListId, Point, Revision, proto::v1 as pb};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{self as cv, to_status};
use crate::{
    app::App,
    budget::Consumer,
    reads::{View, request},
    watch::{Event, Filter, Origin, Start, WatchRequest},
};

/// The read service.
pub struct EligibilityService {
    app: Arc<App>,
}

impl EligibilityService {
    /// A service over `app`.
    pub fn new(app: Arc<App>) -> Self {
        EligibilityService { app }
    }

    async fn view<T>(&self, req: &Request<T>, p: Option<&pb::ReadPoint>) -> Result<View, Status> {
        let point = cv::point("point", p)?;
        self.resolve(req, point, "point.at_revision").await
    }

    async fn resolve<T>(&self, req: &Request<T>, point: Point, at_field: &'static str) -> Result<View, Status> {
        self.app.view(point, cv::deadline(req.metadata()), at_field).await.map_err(to_status)
    }

    /// BatchCheck's items, checked, and the view they are decided at.
    async fn batch_view<'a, T>(
        &self,
        req: &Request<T>,
        items: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        point: Option<&pb::ReadPoint>,
    ) -> Result<(View, Vec<(ListId, Country)>), Status> {
        let items = request::batch(items, self.app.limits()).map_err(to_status)?;
        Ok((self.view(req, point).await?, items))
    }

    /// BatchCheck answered as a ready gRPC frame (see `grpc::encode`):
    /// the same bytes the generated server would send.
    pub(crate) async fn batch_check_frame<'a>(
        &self,
        req: &'a Request<super::encode::BatchItems>,
    ) -> Result<bytes::Bytes, Status> {
        let r = req.get_ref();
        let utf8 = |i: usize, field: &str, b: &'a bytes::Bytes| {
            std::str::from_utf8(b).map_err(|_| cv::invalid(&format!("items[{i}].{field}"), "not UTF-8"))
        };
        let mut items = Vec::with_capacity(r.items.len());
        for (i, (l, c)) in r.items.iter().enumerate() {
            items.push((utf8(i, "list_id", l)?, utf8(i, "country", c)?));
        }
        let (view, items) = self.batch_view(req, items.into_iter(), r.point.as_ref()).await?;
        let decisions = view.check_all_ref(&items).map_err(to_status)?;
        decisions.iter().for_each(|d| count_decision(d.reason));
        Ok(super::encode::batch_check_frame(&cv::header(&view.header()), &decisions))
    }
}

/// An open watch: its events (a stream of what the transport sends), and
/// its account on its connection (absent when the request came from no
/// connection the server accepted, e.g. an embedder's own transport).
pub struct Watching<S> {
    /// The events, presented for the transport.
    pub events: S,
    /// The stream's account: the body counts what it hands over, and learns
    /// from it why the events ended and where the client resumes.
    pub consumer: Option<Arc<Consumer>>,
}

impl EligibilityService {
    /// Opens a watch: converts the request and returns the stream of
    /// `WatchEvent`s, each already a gRPC message frame.
    pub async fn open_watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Watching<impl Stream<Item = bytes::Bytes> + Send + use<>>, Status> {
        self.watch_events(req, cv::watch_event_frame).await
    }

    /// Opens a watch whose events are presented by `present` (with the
    /// store id), for any transport: the request is converted and checked
    /// here, once.
    pub async fn watch_events<T, F>(
        &self,
        req: Request<pb::WatchRequest>,
        present: F,
    ) -> Result<Watching<impl Stream<Item = T> + Send + use<T, F>>, Status>
    where
        T: Send + 'static,
        F: Fn(&Event, &str) -> T + Send + 'static,
    {
        let conn = crate::conns::info(req.extensions());
        let consumer = conn.map(|c| Arc::new(c.ledger.consumer()));
        let origin = Origin { peer: conn.and_then(|c| c.tcp.remote_addr()), consumer: consumer.clone() };
        let r = req.into_inner();
        let start = match r.start.and_then(|s| s.start) {
            None | Some(pb::watch_start::Start::Now(_)) => Start::Now,
            Some(pb::watch_start::Start::AfterRevision(n)) => Start::After(Revision(n)),
            Some(pb::watch_start::Start::Snapshot(_)) => Start::Snapshot,
        };
        let mut filter = Filter::default();
        for (i, l) in r.list_ids.iter().enumerate() {
            filter.lists.insert(request::list_id(&format!("list_ids[{i}]"), l).map_err(to_status)?);
        }
        for (i, c) in r.countries.iter().enumerate() {
            filter.countries.insert(request::country(&format!("countries[{i}]"), c).map_err(to_status)?);
        }
        let requested = (!r.store_id.is_empty()).then_some(r.store_id);
        let store_id = self.app.registry.store_id();
        let events = self
            .app
            .watch(WatchRequest { start, filter, store_id: requested }, origin, move |e| present(&e, &store_id))
            .await
            .map_err(to_status)?;
        Ok(Watching { events, consumer })
    }
}

fn count_decision(reason: crate::snapshot::DecisionReason) {
    use crate::snapshot::DecisionReason::*;
    // Counter handles resolved once (the recorder is installed before the
    // server serves), not a labelled lookup per check.
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; 6]> = std::sync::OnceLock::new();
    if !crate::exporter::installed() {
        return;
    }
    let c = COUNTERS.get_or_init(|| {
        ["listed", "not_listed", "removed", "denylisted", "not_denylisted", "denylist_removed"]
            .map(|label| metrics::counter!("eligibility_checks_total", "decision" => label))
    });
    let i = match reason {
        Listed => 0,
        NotListed => 1,
        Removed => 2,
        Denylisted => 3,
        NotDenylisted => 4,
        DenylistRemoved => 5,
    };
    c[i].increment(1);
}

/// The stream type of Watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::eligibility_service_server::EligibilityService for EligibilityService {
    async fn check(&self, req: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let r = req.get_ref();
        let list = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let country = request::country("country", &r.country).map_err(to_status)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let d = view.check(&list, country).map_err(to_status)?;
        count_decision(d.reason);
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
        let (view, items) = self.batch_view(&req, items, r.point.as_ref()).await?;
        let decisions = view.check_all(&items).map_err(to_status)?;
        decisions.iter().for_each(|d| count_decision(d.reason));
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
        let list = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let after = request::entries_token(&r.page_token).map_err(to_status)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let size = request::page_size(r.page_size, request::ENTRIES_PAGE, self.app.limits());
        let page = size.and_then(|size| view.members(&list, after, size)).map_err(to_status)?;
        Ok(Response::new(pb::ListEntriesResponse {
            header: Some(cv::header(&view.header())),
            mode: page.meta.mode.to_proto(),
            entries: page.members.iter().map(|m| cv::entry(m.country, &m.event)).collect(),
            next_page_token: request::next_entries_token(page.next_after),
        }))
    }

    async fn list_lists(&self, req: Request<pb::ListListsRequest>) -> Result<Response<pb::ListListsResponse>, Status> {
        let view = self.view(&req, req.get_ref().point.as_ref()).await?;
        let lists = view.lists().iter().map(cv::list).collect();
        Ok(Response::new(pb::ListListsResponse { header: Some(cv::header(&view.header())), lists }))
    }

    async fn get_list(&self, req: Request<pb::GetListRequest>) -> Result<Response<pb::GetListResponse>, Status> {
        let r = req.get_ref();
        let list = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let info = view.list_info(&list).map_err(to_status)?;
        Ok(Response::new(pb::GetListResponse { header: Some(cv::header(&view.header())), list: Some(cv::list(&info)) }))
    }

    async fn history(&self, req: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let r = req.get_ref();
        let list = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let country = request::opt_country("country", &r.country).map_err(to_status)?;
        let after = request::history_token(&r.page_token).map_err(to_status)?;
        let consistency = match r.at_revision {
            0 => Consistency::Latest,
            n => Consistency::AtRevision(Revision(n)),
        };
        let view = self.resolve(&req, Point { as_of: None, consistency }, "at_revision").await?;
        let size = request::page_size(r.page_size, request::HISTORY_PAGE, self.app.limits());
        let page = size.and_then(|size| view.history(&list, country, after, size)).map_err(to_status)?;
        Ok(Response::new(pb::HistoryResponse {
            header: Some(cv::header(&view.header())),
            changesets: page.changesets.iter().map(cv::changeset).collect(),
            next_page_token: request::next_history_token(page.next_after),
        }))
    }

    async fn diff(&self, req: Request<pb::DiffRequest>) -> Result<Response<pb::DiffResponse>, Status> {
        let r = req.get_ref();
        let list = request::list_id("list_id", &r.list_id).map_err(to_status)?;
        let from = cv::point("from", r.from.as_ref())?;
        let to = cv::point("to", r.to.as_ref())?;
        let from = request::diff_from(from).map_err(to_status)?;
        let to = self.resolve(&req, to, "to.at_revision").await?;
        let d = to.diff(&list, from).map_err(to_status)?;
        let names = |v: &[eligibility::Country]| v.iter().map(|c| c.to_string()).collect();
        Ok(Response::new(pb::DiffResponse {
            header: Some(cv::header(&to.header())),
            added: names(&d.added),
            removed: names(&d.removed),
            conditions_changed: names(&d.conditions_changed),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        // The server routes Watch to the framed path (`watch_route`); this
        // is the same stream, decoded (past each frame's 5-byte prefix), for
        // embedders of the generated service.
        use prost::Message;
        let stream = self.open_watch(req).await?.events;
        let decoded = stream.map(|frame| {
            pb::WatchEvent::decode(frame.slice(5.min(frame.len())..)).map_err(|e| Status::internal(e.to_string()))
        });
        Ok(Response::new(Box::pin(decoded)))
    }
}
