//! Typed Rust client for the export eligibility service (`eligibility.v1`).
//!
//! ```no_run
//! use eligibility_client::{Client, Country, ListId};
//!
//! # async fn demo() -> eligibility_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let cyber = ListId::parse("cyber").unwrap();
//! let answer = client.check(&cyber, Country::parse("MX").unwrap()).await?;
//! println!("eligible: {} ({:?}) at revision {}", answer.decision.eligible, answer.decision.reason, answer.header.revision);
//! # Ok(()) }
//! ```
//!
//! Every read answers with a [`Header`] (revision, store id, valid time).
//! Reads take a [`Point`] to ask "as of" a time and/or "at" a revision.
//! The generated wire types stay reachable through [`Client::raw_query`] and
//! [`Client::raw_admin`] for the rare case that needs them.
#![warn(missing_docs)]

mod error;
mod types;

use std::time::Duration;

use eligibility::proto::v1::{
    self as pb, admin_service_client::AdminServiceClient, eligibility_service_client::EligibilityServiceClient,
};
pub use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp, point_to_proto};
pub use error::{Error, Result};
use tonic::transport::{Channel, Endpoint};
pub use types::*;

/// Default timeout for one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a [`Client`] with options.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: Option<String>,
}

impl ClientBuilder {
    /// Per-call timeout (sent to the server as the call's deadline).
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Connection timeout.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// User agent sent with every call.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut ep = Endpoint::from_shared(self.url.clone())
            .map_err(|e| Error::Transport(format!("invalid url {:?}: {e}", self.url)))?
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        if let Some(ua) = &self.user_agent {
            ep = ep.user_agent(ua.clone()).map_err(|e| Error::Transport(format!("invalid user agent: {e}")))?;
        }
        Ok(ep)
    }

    /// Connects now; fails if the server cannot be reached.
    pub async fn connect(self) -> Result<Client> {
        let channel = self.endpoint()?.connect().await?;
        Ok(Client::from_channel(channel))
    }

    /// Returns a client that connects on first use (and reconnects after a
    /// failure).
    pub fn connect_lazy(self) -> Result<Client> {
        Ok(Client::from_channel(self.endpoint()?.connect_lazy()))
    }
}

/// The answer to a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckAnswer {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The decision.
    pub decision: Decision,
}

/// The answer to a batch check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchAnswer {
    /// Revision, store id and valid time (one snapshot for all items).
    pub header: Header,
    /// One decision per item, in order.
    pub decisions: Vec<Decision>,
}

/// A list's members at a point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// Revision, store id and valid time.
    pub header: Header,
    /// The list's mode.
    pub mode: ListMode,
    /// The members, ordered by country code.
    pub entries: Vec<Entry>,
}

/// A client of one server (cheap to clone; clones share the connection).
#[derive(Clone, Debug)]
pub struct Client {
    query: EligibilityServiceClient<Channel>,
    admin: AdminServiceClient<Channel>,
}

impl Client {
    /// A builder for `url` (e.g. `http://127.0.0.1:50051`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: None,
        }
    }

    /// Connects with default options.
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        Self::builder(url).connect().await
    }

    /// A client over an existing channel.
    pub fn from_channel(channel: Channel) -> Client {
        Client { query: EligibilityServiceClient::new(channel.clone()), admin: AdminServiceClient::new(channel) }
    }

    /// The generated read-service client, for calls this crate does not
    /// wrap.
    pub fn raw_query(&self) -> EligibilityServiceClient<Channel> {
        self.query.clone()
    }

    /// The generated admin-service client.
    pub fn raw_admin(&self) -> AdminServiceClient<Channel> {
        self.admin.clone()
    }

    /// May `country` receive items of `list` now (latest revision)?
    pub async fn check(&self, list: &ListId, country: Country) -> Result<CheckAnswer> {
        self.check_at(list, country, Point::latest()).await
    }

    /// May `country` receive items of `list` at `point`?
    pub async fn check_at(&self, list: &ListId, country: Country, point: Point) -> Result<CheckAnswer> {
        let r = self
            .query
            .clone()
            .check(pb::CheckRequest {
                list_id: list.to_string(),
                country: country.to_string(),
                point: Some(point_to_proto(&point)),
            })
            .await?
            .into_inner();
        Ok(CheckAnswer { header: types::header(r.header)?, decision: types::decision(r.decision)? })
    }

    /// Checks many (list, country) pairs at one snapshot.
    pub async fn batch_check(&self, items: &[(ListId, Country)], point: Point) -> Result<BatchAnswer> {
        let r = self
            .query
            .clone()
            .batch_check(pb::BatchCheckRequest {
                items: items
                    .iter()
                    .map(|(l, c)| pb::CheckItem { list_id: l.to_string(), country: c.to_string() })
                    .collect(),
                point: Some(point_to_proto(&point)),
            })
            .await?
            .into_inner();
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
            let r = self
                .query
                .clone()
                .list_entries(pb::ListEntriesRequest {
                    list_id: list.to_string(),
                    point: Some(point_to_proto(&point)),
                    page_size: 0,
                    page_token: token,
                })
                .await?
                .into_inner();
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
    pub async fn lists(&self, point: Point) -> Result<(Header, Vec<List>)> {
        let r = self
            .query
            .clone()
            .list_lists(pb::ListListsRequest { point: Some(point_to_proto(&point)) })
            .await?
            .into_inner();
        Ok((types::header(r.header)?, r.lists.into_iter().map(types::list).collect::<Result<_>>()?))
    }

    /// One list at `point`.
    pub async fn get_list(&self, list: &ListId, point: Point) -> Result<(Header, List)> {
        let r = self
            .query
            .clone()
            .get_list(pb::GetListRequest { list_id: list.to_string(), point: Some(point_to_proto(&point)) })
            .await?
            .into_inner();
        Ok((types::header(r.header)?, types::list(r.list.ok_or_else(|| Error::InvalidResponse("no list".into()))?)?))
    }

    /// The changesets that touched `list` (and `country`), all pages, in
    /// revision order, as recorded up to `at_revision` (latest if `None`).
    pub async fn history(
        &self,
        list: &ListId,
        country: Option<Country>,
        at_revision: Option<Revision>,
    ) -> Result<(Header, Vec<Changeset>)> {
        let mut token = String::new();
        let mut at = at_revision.map(|r| r.0).unwrap_or(0);
        let mut all = Vec::new();
        loop {
            let r = self
                .query
                .clone()
                .history(pb::HistoryRequest {
                    list_id: list.to_string(),
                    country: country.map(|c| c.to_string()).unwrap_or_default(),
                    at_revision: at,
                    page_size: 0,
                    page_token: token,
                })
                .await?
                .into_inner();
            let header = types::header(r.header)?;
            // Later pages stay at the first page's revision.
            at = header.revision.0;
            for c in r.changesets {
                all.push(types::changeset(c)?);
            }
            if r.next_page_token.is_empty() {
                return Ok((header, all));
            }
            token = r.next_page_token;
        }
    }

    /// Members added, removed and with changed conditions from `from` to
    /// `to`.
    pub async fn diff(&self, list: &ListId, from: Point, to: Point) -> Result<Diff> {
        let r = self
            .query
            .clone()
            .diff(pb::DiffRequest {
                list_id: list.to_string(),
                from: Some(point_to_proto(&from)),
                to: Some(point_to_proto(&to)),
            })
            .await?
            .into_inner();
        let countries = |v: Vec<String>| v.iter().map(|c| types::country(c)).collect::<Result<Vec<_>>>();
        Ok(Diff {
            header: types::header(r.header)?,
            added: countries(r.added)?,
            removed: countries(r.removed)?,
            conditions_changed: countries(r.conditions_changed)?,
        })
    }

    /// Creates a list.
    pub async fn create_list(&self, list: &NewList, opts: &WriteOptions) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .create_list(pb::CreateListRequest {
                list: Some(pb::List {
                    id: list.id.to_string(),
                    title: list.title.clone(),
                    description: list.description.clone(),
                    authority: list.authority.clone(),
                    mode: types::mode_to(list.mode),
                    ..Default::default()
                }),
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Updates a list's metadata; `None` fields are kept.
    pub async fn update_list(
        &self,
        list: &ListId,
        title: Option<String>,
        description: Option<String>,
        authority: Option<String>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .update_list(pb::UpdateListRequest {
                list_id: list.to_string(),
                title,
                description,
                authority,
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Records one changeset of entry changes, effective at `effective_at`
    /// (default: commit time).
    pub async fn apply(
        &self,
        changes: &[EntryChange],
        effective_at: Option<Timestamp>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .apply(pb::ApplyRequest {
                changes: changes
                    .iter()
                    .map(|c| pb::EntryChange {
                        list_id: c.list.to_string(),
                        country: c.country.to_string(),
                        action: types::action_to(c.action),
                        conditions: c.conditions.clone(),
                    })
                    .collect(),
                effective_at: effective_at.map(Into::into),
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Makes `list`'s membership exactly `members` (country, conditions);
    /// the server records the needed adds and removes as one changeset.
    pub async fn replace_members(
        &self,
        list: &ListId,
        members: &[(Country, String)],
        effective_at: Option<Timestamp>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .replace_members(pb::ReplaceMembersRequest {
                list_id: list.to_string(),
                members: members
                    .iter()
                    .map(|(c, cond)| pb::Member { country: c.to_string(), conditions: cond.clone() })
                    .collect(),
                effective_at: effective_at.map(Into::into),
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }
}
