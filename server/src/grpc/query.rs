//! `eligibility.v1.EligibilityService`: validate, convert, call the
//! registry, map errors.

use std::{pin::Pin, sync::Arc};

use eligibility::{Consistency, Country, Revision, Timestamp, proto::v1 as pb};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{self as cv, invalid, to_status};
use crate::{
    auth::{Authenticator, Role},
    registry::{Header, Registry, View},
    watch::{Filter, Start, WatchRequest},
};

/// The read service.
pub struct EligibilityService {
    registry: Arc<Registry>,
    auth: Arc<Authenticator>,
}

impl EligibilityService {
    /// A service over `registry`, guarded by `auth`.
    pub fn new(registry: Arc<Registry>, auth: Arc<Authenticator>) -> Self {
        EligibilityService { registry, auth }
    }

    fn allow<T>(&self, req: &Request<T>, what: &str) -> Result<(), Status> {
        super::authorize(&self.auth, req, Role::Reader, what).map(|_| ())
    }

    async fn view<T>(&self, req: &Request<T>, p: Option<&pb::ReadPoint>) -> Result<View, Status> {
        let point = cv::point("point", p)?;
        self.registry.view(point, cv::deadline(req.metadata())).await.map_err(to_status)
    }
}

/// A Watch stream of `WatchEvent`s, each already a gRPC message frame.
pub type EncodedStream = Pin<Box<dyn Stream<Item = bytes::Bytes> + Send>>;

impl EligibilityService {
    /// Opens a watch: validates and converts the request, authorizes, and
    /// returns the stream of framed events.
    pub async fn open_watch(&self, req: Request<pb::WatchRequest>) -> Result<EncodedStream, Status> {
        self.allow(&req, "Watch")?;
        let peer = req.remote_addr();
        let r = req.into_inner();
        let start = match r.start.and_then(|s| s.start) {
            None | Some(pb::watch_start::Start::Now(_)) => Start::Now,
            Some(pb::watch_start::Start::AfterRevision(n)) => Start::After(Revision(n)),
            Some(pb::watch_start::Start::Snapshot(_)) => Start::Snapshot,
        };
        let mut filter = Filter::default();
        for (i, l) in r.list_ids.iter().enumerate() {
            filter.lists.insert(cv::list_id(&format!("list_ids[{i}]"), l)?);
        }
        for (i, c) in r.countries.iter().enumerate() {
            filter.countries.insert(cv::country(&format!("countries[{i}]"), c)?);
        }
        let requested = (!r.store_id.is_empty()).then_some(r.store_id);
        let store_id = self.registry.store_id();
        self.registry
            .watch(WatchRequest { start, filter, store_id: requested }, peer, move |e| {
                cv::watch_event_frame(&e, &store_id)
            })
            .await
            .map_err(to_status)
    }
}

const ENTRIES_TOKEN: &str = "after-country:";
const HISTORY_TOKEN: &str = "after-revision:";

fn entries_token(token: &str) -> Result<Option<Country>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .strip_prefix(ENTRIES_TOKEN)
        .and_then(|c| Country::parse(c).ok())
        .map(Some)
        .ok_or_else(|| invalid("page_token", &format!("{token:?} is not a page token from ListEntries")))
}

fn history_token(token: &str) -> Result<Revision, Status> {
    if token.is_empty() {
        return Ok(Revision::ZERO);
    }
    token
        .strip_prefix(HISTORY_TOKEN)
        .and_then(|r| r.parse().ok())
        .map(Revision)
        .ok_or_else(|| invalid("page_token", &format!("{token:?} is not a page token from History")))
}

fn count_decision(d: &crate::snapshot::Decision) {
    use crate::snapshot::DecisionReason::*;
    // Counter handles resolved once (the recorder is installed before the
    // server serves), not a labelled lookup per check.
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; 6]> = std::sync::OnceLock::new();
    if !crate::metrics::installed() {
        return;
    }
    let c = COUNTERS.get_or_init(|| {
        ["listed", "not_listed", "removed", "denylisted", "not_denylisted", "denylist_removed"]
            .map(|label| metrics::counter!("eligibility_checks_total", "decision" => label))
    });
    let i = match d.reason {
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
        self.allow(&req, "Check")?;
        let r = req.get_ref();
        let list = cv::list_id("list_id", &r.list_id)?;
        let country = cv::country("country", &r.country)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let d = view.check(&list, country).map_err(to_status)?;
        count_decision(&d);
        Ok(Response::new(pb::CheckResponse {
            header: Some(cv::header(&view.header())),
            decision: Some(cv::decision(&d)),
        }))
    }

    async fn batch_check(
        &self,
        req: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        self.allow(&req, "BatchCheck")?;
        let r = req.get_ref();
        let max = self.registry.limits().max_batch;
        if r.items.is_empty() {
            return Err(invalid("items", "at least one item is required"));
        }
        if r.items.len() > max {
            return Err(invalid(
                "items",
                &format!("{} items are more than the maximum {max} per batch", r.items.len()),
            ));
        }
        let mut items = Vec::with_capacity(r.items.len());
        for (i, it) in r.items.iter().enumerate() {
            items.push((
                // Field names are only built for an error.
                eligibility::ListId::parse(&it.list_id)
                    .map_err(|e| invalid(&format!("items[{i}].list_id"), &e.to_string()))?,
                eligibility::Country::parse(&it.country)
                    .map_err(|e| invalid(&format!("items[{i}].country"), &e.to_string()))?,
            ));
        }
        let view = self.view(&req, r.point.as_ref()).await?;
        let decisions = items
            .iter()
            .map(|(l, c)| {
                view.check(l, *c).map(|d| {
                    count_decision(&d);
                    cv::decision(&d)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        Ok(Response::new(pb::BatchCheckResponse { header: Some(cv::header(&view.header())), decisions }))
    }

    async fn list_entries(
        &self,
        req: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        self.allow(&req, "ListEntries")?;
        let r = req.get_ref();
        let list = cv::list_id("list_id", &r.list_id)?;
        let after = entries_token(&r.page_token)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let page = self.registry.members(&view, &list, after, r.page_size).map_err(to_status)?;
        Ok(Response::new(pb::ListEntriesResponse {
            header: Some(cv::header(&view.header())),
            mode: page.meta.mode.to_proto(),
            entries: page.members.iter().map(|m| cv::entry(m.country, &m.event)).collect(),
            next_page_token: page.next_after.map(|c| format!("{ENTRIES_TOKEN}{c}")).unwrap_or_default(),
        }))
    }

    async fn list_lists(&self, req: Request<pb::ListListsRequest>) -> Result<Response<pb::ListListsResponse>, Status> {
        self.allow(&req, "ListLists")?;
        let view = self.view(&req, req.get_ref().point.as_ref()).await?;
        let lists = view.snap.lists_at(view.at).map(|l| cv::list(&Registry::list_info(&view, l))).collect();
        Ok(Response::new(pb::ListListsResponse { header: Some(cv::header(&view.header())), lists }))
    }

    async fn get_list(&self, req: Request<pb::GetListRequest>) -> Result<Response<pb::GetListResponse>, Status> {
        self.allow(&req, "GetList")?;
        let r = req.get_ref();
        let list = cv::list_id("list_id", &r.list_id)?;
        let view = self.view(&req, r.point.as_ref()).await?;
        let l = view.list(&list).map_err(to_status)?;
        Ok(Response::new(pb::GetListResponse {
            header: Some(cv::header(&view.header())),
            list: Some(cv::list(&Registry::list_info(&view, l))),
        }))
    }

    async fn history(&self, req: Request<pb::HistoryRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        self.allow(&req, "History")?;
        let r = req.get_ref();
        let list = cv::list_id("list_id", &r.list_id)?;
        let country = cv::opt_country("country", &r.country)?;
        let after = history_token(&r.page_token)?;
        let snap = self.registry.snapshot();
        let at = match r.at_revision {
            0 => snap.revision(),
            n if n > snap.revision().0 => {
                return Err(to_status(crate::error::Error::RevisionOutOfRange {
                    field: "at_revision",
                    requested: Revision(n),
                    head: snap.revision(),
                }));
            }
            n => Revision(n),
        };
        let page = self.registry.history(&snap, &list, country, at, after, r.page_size).map_err(to_status)?;
        let header = Header { revision: at, store_id: snap.store_id_shared(), as_of: Timestamp::now() };
        Ok(Response::new(pb::HistoryResponse {
            header: Some(cv::header(&header)),
            changesets: page.changesets.iter().map(cv::changeset).collect(),
            next_page_token: page.next_after.map(|r| format!("{HISTORY_TOKEN}{r}")).unwrap_or_default(),
        }))
    }

    async fn diff(&self, req: Request<pb::DiffRequest>) -> Result<Response<pb::DiffResponse>, Status> {
        self.allow(&req, "Diff")?;
        let r = req.get_ref();
        let list = cv::list_id("list_id", &r.list_id)?;
        let from = cv::point("from", r.from.as_ref())?;
        let to_point = cv::point("to", r.to.as_ref())?;
        if matches!(from.consistency, Consistency::MinRevision(_)) {
            return Err(invalid("from.min_revision", "not allowed in from; use at_revision"));
        }
        let to = self.registry.view(to_point, cv::deadline(req.metadata())).await.map_err(to_status)?;
        let from_at = match from.consistency {
            Consistency::AtRevision(r) if r > to.snap.revision() => {
                return Err(to_status(crate::error::Error::RevisionOutOfRange {
                    field: "from.at_revision",
                    requested: r,
                    head: to.snap.revision(),
                }));
            }
            Consistency::AtRevision(r) => r,
            _ => to.snap.revision(),
        };
        let from_view = View { snap: to.snap.clone(), at: from_at, as_of: from.as_of.unwrap_or(to.as_of) };
        let d = Registry::diff(&from_view, &to, &list).map_err(to_status)?;
        let names = |v: &[Country]| v.iter().map(|c| c.to_string()).collect();
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
        let stream = self.open_watch(req).await?;
        let decoded = stream.map(|frame| {
            pb::WatchEvent::decode(frame.slice(5.min(frame.len())..)).map_err(|e| Status::internal(e.to_string()))
        });
        Ok(Response::new(Box::pin(decoded)))
    }
}
