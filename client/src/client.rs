//! The client: connection options, typed calls, retries.

use std::time::Duration;

use eligibility::proto::v1::{
    self as pb, admin_service_client::AdminServiceClient, eligibility_service_client::EligibilityServiceClient,
};
use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp, point_to_proto};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    error::{Error, Result},
    types::{self, *},
};

/// Default timeout for one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Adds the bearer token (if any) to every call.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// The transport under the generated clients: a channel with the auth
/// interceptor.
pub type Transport = InterceptedService<Channel, Auth>;

/// TLS settings (rustls with ring).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM of the CA that signed the server's certificate (default: none,
    /// which means the server's certificate must chain to a CA given here;
    /// this crate bundles no public roots).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Server name to verify, if not the URL's host.
    pub domain: Option<String>,
}

/// Retries with exponential backoff and full jitter, for idempotent calls
/// (reads) only; writes are never retried automatically (retry them with
/// the same request id).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry (upper bound of the jitter).
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// The backoff before retry number `attempt` (1-based): a random
    /// duration up to `min(max, initial * 2^(attempt-1))` ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_backoff);
        cap.mul_f64(jitter())
    }
}

/// A pseudo-random number in [0, 1): enough to spread retries apart.
pub(crate) fn jitter() -> f64 {
    use std::{
        cell::Cell,
        time::{SystemTime, UNIX_EPOCH},
    };
    thread_local!(static STATE: Cell<u64> = Cell::new(
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
    ));
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Builds a [`Client`] with options.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: Option<String>,
    keep_alive: Option<Duration>,
    token: Option<String>,
    tls: Option<TlsOptions>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// HTTP/2 keep-alive pings at this interval (also while idle), so a dead
    /// connection is noticed and watch streams reconnect.
    pub fn with_keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = Some(interval);
        self
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connects with TLS (use an `https://` URL).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Retry policy for idempotent calls.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

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
            .connect_timeout(self.connect_timeout)
            // Many watch streams may share this connection: size the
            // receive windows for them (see the server's Http2Config).
            .initial_connection_window_size(Some(16 << 20))
            .initial_stream_window_size(Some(1 << 20))
            .tcp_nodelay(true);
        if let Some(ua) = &self.user_agent {
            ep = ep.user_agent(ua.clone()).map_err(|e| Error::Transport(format!("invalid user agent: {e}")))?;
        }
        if let Some(k) = self.keep_alive {
            ep = ep.http2_keep_alive_interval(k).keep_alive_timeout(k).keep_alive_while_idle(true);
        }
        if let Some(tls) = &self.tls {
            let mut cfg = ClientTlsConfig::new();
            if let Some(ca) = &tls.ca_pem {
                cfg = cfg.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity {
                cfg = cfg.identity(Identity::from_pem(cert, key));
            }
            if let Some(d) = &tls.domain {
                cfg = cfg.domain_name(d.clone());
            }
            ep = ep.tls_config(cfg).map_err(|e| Error::Transport(format!("tls: {e}")))?;
        }
        Ok(ep)
    }

    fn auth(&self) -> Result<Auth> {
        let header = match &self.token {
            None => None,
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Error::Transport("the bearer token has characters not allowed in a header".into()))?,
            ),
        };
        Ok(Auth { header })
    }

    /// Connects now; fails if the server cannot be reached.
    pub async fn connect(self) -> Result<Client> {
        let channel = self.endpoint()?.connect().await?;
        Ok(Client::with_parts(channel, self.auth()?, self.retry.clone()))
    }

    /// Returns a client that connects on first use (and reconnects after a
    /// failure).
    pub fn connect_lazy(self) -> Result<Client> {
        Ok(Client::with_parts(self.endpoint()?.connect_lazy(), self.auth()?, self.retry.clone()))
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
    query: EligibilityServiceClient<Transport>,
    admin: AdminServiceClient<Transport>,
    retry: RetryPolicy,
}

impl Client {
    /// A builder for `url` (e.g. `http://127.0.0.1:50051`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: None,
            keep_alive: None,
            token: None,
            tls: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Connects with default options.
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        Self::builder(url).connect().await
    }

    /// A client over an existing channel (no token, default retries).
    pub fn from_channel(channel: Channel) -> Client {
        Self::with_parts(channel, Auth::default(), RetryPolicy::default())
    }

    fn with_parts(channel: Channel, auth: Auth, retry: RetryPolicy) -> Client {
        Client {
            query: EligibilityServiceClient::with_interceptor(channel.clone(), auth.clone()),
            admin: AdminServiceClient::with_interceptor(channel, auth),
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

    /// Runs an idempotent call under the retry policy.
    async fn read<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(EligibilityServiceClient<Transport>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let mut attempt = 1;
        loop {
            match call(self.query.clone()).await {
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
        let r = self
            .read(|mut q| {
                let req = req.clone();
                async move { q.check(req).await }
            })
            .await?;
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
        let r = self
            .read(|mut q| {
                let req = req.clone();
                async move { q.batch_check(req).await }
            })
            .await?;
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
            let r = self
                .read(|mut q| {
                    let req = req.clone();
                    async move { q.list_entries(req).await }
                })
                .await?;
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
        let req = pb::ListListsRequest { point: Some(point_to_proto(&point)) };
        let r = self.read(|mut q| async move { q.list_lists(req).await }).await?;
        Ok((types::header(r.header)?, r.lists.into_iter().map(types::list).collect::<Result<_>>()?))
    }

    /// One list at `point`.
    pub async fn get_list(&self, list: &ListId, point: Point) -> Result<(Header, List)> {
        let req = pb::GetListRequest { list_id: list.to_string(), point: Some(point_to_proto(&point)) };
        let r = self
            .read(|mut q| {
                let req = req.clone();
                async move { q.get_list(req).await }
            })
            .await?;
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
            let req = pb::HistoryRequest {
                list_id: list.to_string(),
                country: country.map(|c| c.to_string()).unwrap_or_default(),
                at_revision: at,
                page_size: 0,
                page_token: token,
            };
            let r = self
                .read(|mut q| {
                    let req = req.clone();
                    async move { q.history(req).await }
                })
                .await?;
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
        let req = pb::DiffRequest {
            list_id: list.to_string(),
            from: Some(point_to_proto(&from)),
            to: Some(point_to_proto(&to)),
        };
        let r = self
            .read(|mut q| {
                let req = req.clone();
                async move { q.diff(req).await }
            })
            .await?;
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
                    mode: list.mode.to_proto(),
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
                        action: c.action.to_proto(),
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
