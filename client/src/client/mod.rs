//! The client: typed calls (reads here, writes in `writes`), built by the
//! [`ClientBuilder`].

mod builder;
mod writes;

use eligibility::proto::v1::{
    self as pb, admin_service_client::AdminServiceClient, eligibility_service_client::EligibilityServiceClient,
};
use eligibility::{Consistency, Country, ListId, Point, Revision, point_to_proto};
use tonic::{Status, transport::Channel};

use crate::{
    error::{Error, Result},
    types::{self, *},
};

use self::builder::Auth;
pub use self::builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, RetryPolicy, TlsOptions, Transport};
/// The answer to a check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckAnswer {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The decision.
    pub decision: Decision,
}

/// The answer to a batch check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchAnswer {
    /// Revision, store id and valid time (one snapshot for all items).
    pub header: Header,
    /// One decision per item, in order.
    pub decisions: Vec<Decision>,
}

/// A list's members at a point.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Members {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The list's mode.
    pub mode: ListMode,
    /// The members, ordered by country code.
    pub entries: Vec<Entry>,
}

/// Every list at a point.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListsAnswer {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The lists, by id.
    pub lists: Vec<List>,
}

/// One list at a point.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListAnswer {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The list.
    pub list: List,
}

/// The changesets that touched a list (or one country on it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryAnswer {
    /// Revision (every page was read at the first page's) and store id.
    pub header: Header,
    /// The changesets, in revision order.
    pub changesets: Vec<Changeset>,
}

/// A client of one server (cheap to clone; clones share the connection).
#[derive(Clone, Debug)]
pub struct Client {
    query: EligibilityServiceClient<Transport>,
    admin: AdminServiceClient<Transport>,
    retry: RetryPolicy,
}

impl Client {
    /// A builder for `url` (e.g. `http://127.0.0.1:50051`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url.into())
    }

    /// Connects with default options.
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        Self::builder(url).connect().await
    }

    /// A client over an existing channel (no token, default retries).
    pub fn from_channel(channel: Channel) -> Client {
        Self::with_parts(channel, Auth::default(), RetryPolicy::default())
    }

    pub(super) fn with_parts(channel: Channel, auth: Auth, retry: RetryPolicy) -> Client {
        Client {
            query: EligibilityServiceClient::new(Transport::new(channel.clone(), auth.clone())),
            admin: AdminServiceClient::new(Transport::new(channel, auth)),
            retry,
        }
    }

    /// The generated read-service client, for calls this crate does not
    /// wrap.
    pub fn raw_query(&self) -> EligibilityServiceClient<Transport> {
        self.query.clone()
    }

    /// The generated admin-service client.
    pub fn raw_admin(&self) -> AdminServiceClient<Transport> {
        self.admin.clone()
    }

    /// Runs an idempotent call with `req` under the retry policy (each
    /// attempt gets a copy of the request).
    async fn read<Req, T, F, Fut>(&self, req: &Req, call: F) -> Result<T>
    where
        Req: Clone,
        F: Fn(EligibilityServiceClient<Transport>, Req) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let mut attempt = 1;
        loop {
            match call(self.query.clone(), req.clone()).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) => {
                    let e = Error::from(s);
                    if attempt >= self.retry.max_attempts || !e.is_transient() {
                        return Err(e);
                    }
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// May `country` receive items of `list` now (latest revision)?
    pub async fn check(&self, list: &ListId, country: Country) -> Result<CheckAnswer> {
        self.check_at(list, country, Point::latest()).await
    }

    /// May `country` receive items of `list` at `point`?
    pub async fn check_at(&self, list: &ListId, country: Country, point: Point) -> Result<CheckAnswer> {
        let req = pb::CheckRequest {
            list_id: list.to_string(),
            country: country.to_string(),
            point: Some(point_to_proto(&point)),
        };
        let r = self.read(&req, |mut q, r| async move { q.check(r).await }).await?;
        Ok(CheckAnswer { header: types::header(r.header)?, decision: types::decision(r.decision)? })
    }

    /// Checks many (list, country) pairs at one snapshot.
    pub async fn batch_check(&self, items: &[(ListId, Country)], point: Point) -> Result<BatchAnswer> {
        let req = pb::BatchCheckRequest {
            items: items
                .iter()
                .map(|(l, c)| pb::CheckItem { list_id: l.to_string(), country: c.to_string() })
                .collect(),
            point: Some(point_to_proto(&point)),
        };
        let r = self.read(&req, |mut q, r| async move { q.batch_check(r).await }).await?;
        Ok(BatchAnswer {
            header: types::header(r.header)?,
            decisions: r.decisions.into_iter().map(|d| types::decision(Some(d))).collect::<Result<_>>()?,
        })
    }

    /// All members of `list` at `point` (every page; the point is pinned to
    /// the first page's revision so the pages agree).
    pub async fn members(&self, list: &ListId, point: Point) -> Result<Members> {
        let mut point = point;
        let mut token = String::new();
        let mut out: Option<Members> = None;
        loop {
            let req = pb::ListEntriesRequest {
                list_id: list.to_string(),
                point: Some(point_to_proto(&point)),
                page_size: 0,
                page_token: token,
            };
            let r = self.read(&req, |mut q, r| async move { q.list_entries(r).await }).await?;
            let header = types::header(r.header)?;
            let entries = r.entries.into_iter().map(types::entry).collect::<Result<Vec<_>>>()?;
            match &mut out {
                None => {
                    point = Point { as_of: Some(header.as_of), consistency: Consistency::AtRevision(header.revision) };
                    out = Some(Members { header, mode: types::mode(r.mode)?, entries });
                }
                Some(m) => m.entries.extend(entries),
            }
            if r.next_page_token.is_empty() {
                return out.ok_or_else(|| Error::InvalidResponse("no page".into()));
            }
            token = r.next_page_token;
        }
    }

    /// All lists at `point`.
    pub async fn lists(&self, point: Point) -> Result<ListsAnswer> {
        let req = pb::ListListsRequest { point: Some(point_to_proto(&point)) };
        let r = self.read(&req, |mut q, r| async move { q.list_lists(r).await }).await?;
        Ok(ListsAnswer {
            header: types::header(r.header)?,
            lists: r.lists.into_iter().map(types::list).collect::<Result<_>>()?,
        })
    }

    /// One list at `point`.
    pub async fn get_list(&self, list: &ListId, point: Point) -> Result<ListAnswer> {
        let req = pb::GetListRequest { list_id: list.to_string(), point: Some(point_to_proto(&point)) };
        let r = self.read(&req, |mut q, r| async move { q.get_list(r).await }).await?;
        Ok(ListAnswer {
            header: types::header(r.header)?,
            list: types::list(r.list.ok_or_else(|| Error::InvalidResponse("no list".into()))?)?,
        })
    }

    /// The changesets that touched `list` (and `country`), all pages, in
    /// revision order, as recorded up to `at_revision` (latest if `None`).
    pub async fn history(
        &self,
        list: &ListId,
        country: Option<Country>,
        at_revision: Option<Revision>,
    ) -> Result<HistoryAnswer> {
        let mut token = String::new();
        let mut at = at_revision.map(|r| r.0).unwrap_or(0);
        let mut all = Vec::new();
        loop {
            let req = pb::HistoryRequest {
                list_id: list.to_string(),
                country: country.map(|c| c.to_string()).unwrap_or_default(),
                at_revision: at,
                page_size: 0,
                page_token: token,
            };
            let r = self.read(&req, |mut q, r| async move { q.history(r).await }).await?;
            let header = types::header(r.header)?;
            // Later pages stay at the first page's revision.
            at = header.revision.0;
            for c in r.changesets {
                all.push(types::changeset(c)?);
            }
            if r.next_page_token.is_empty() {
                return Ok(HistoryAnswer { header, changesets: all });
            }
            token = r.next_page_token;
        }
    }

    /// Members added, removed and with changed conditions from `from` to
    /// `to`.
    pub async fn diff(&self, list: &ListId, from: Point, to: Point) -> Result<Diff> {
        let req = pb::DiffRequest {
            list_id: list.to_string(),
            from: Some(point_to_proto(&from)),
            to: Some(point_to_proto(&to)),
        };
        let r = self.read(&req, |mut q, r| async move { q.diff(r).await }).await?;
        let countries = |v: Vec<String>| v.iter().map(|c| types::country(c)).collect::<Result<Vec<_>>>();
        Ok(Diff {
            header: types::header(r.header)?,
            added: countries(r.added)?,
            removed: countries(r.removed)?,
            conditions_changed: countries(r.conditions_changed)?,
        })
    }
}
