//! Every read the transports offer, orchestrated once: the raw request
//! values are checked (naming their fields), the read point is resolved
//! (waiting for `min_revision` within the caller's deadline), the view is
//! asked, and decisions are counted. gRPC, HTTP/JSON and the console call
//! these with domain values and encode the answers themselves; none of
//! them goes through another's types.

use std::{sync::Arc, time::Duration};

use eligibility::{Consistency, Country, ListId, Point, Revision};

use crate::{
    error::Result,
    fields,
    reads::{DiffResult, HistoryPage, ListInfo, MembersPage, View, request},
    registry::Registry,
    snapshot::{Decision, DecisionReason},
};

/// How a read waits and where a bad revision is reported: the caller's
/// deadline (less a margin, so the server's own answer arrives first),
/// and the name of the point's `at_revision` field in its request.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    /// How long the read may wait for `min_revision`.
    pub wait: Option<Duration>,
    /// The field an `at_revision` beyond the head is reported on.
    pub at_field: &'static str,
}

/// The reads, over a registry.
#[derive(Clone)]
pub struct Queries {
    registry: Arc<Registry>,
}

impl Queries {
    /// The reads of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Queries { registry }
    }

    /// The view at `point` (ListLists, and the base of every other read).
    pub async fn view(&self, point: Point, asked: Asked) -> Result<View> {
        self.registry.view(point, asked.wait, asked.at_field).await
    }

    /// Check: may `country` receive items of `list` at `point`?
    pub async fn check(&self, list: &str, country: &str, point: Point, asked: Asked) -> Result<(View, Decision)> {
        let list = fields::list_id("list_id", list)?;
        let country = fields::country("country", country)?;
        let view = self.view(point, asked).await?;
        let d = view.check(&list, country)?;
        count_decision(d.reason);
        Ok((view, d))
    }

    /// BatchCheck's items, checked (their number first), and the view they
    /// are decided at; the caller decides them (owned or borrowed) and
    /// counts them with [`count_decision`].
    pub async fn batch<'a>(
        &self,
        items: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        point: Point,
        asked: Asked,
    ) -> Result<(View, Vec<(ListId, Country)>)> {
        let items = request::batch(items, self.registry.limits())?;
        Ok((self.view(point, asked).await?, items))
    }

    /// BatchCheck, decided: the view and one decision per item.
    pub async fn batch_check<'a>(
        &self,
        items: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        point: Point,
        asked: Asked,
    ) -> Result<(View, Vec<Decision>)> {
        let (view, items) = self.batch(items, point, asked).await?;
        let decisions = view.check_all(&items)?;
        decisions.iter().for_each(|d| count_decision(d.reason));
        Ok((view, decisions))
    }

    /// GetList: one list's metadata and count at `point`.
    pub async fn list(&self, list: &str, point: Point, asked: Asked) -> Result<(View, ListInfo)> {
        let list = fields::list_id("list_id", list)?;
        let view = self.view(point, asked).await?;
        let info = view.list_info(&list)?;
        Ok((view, info))
    }

    /// ListEntries: a page of members (`page_size` 0: the default).
    pub async fn entries(
        &self,
        list: &str,
        page_size: u32,
        page_token: &str,
        point: Point,
        asked: Asked,
    ) -> Result<(View, MembersPage)> {
        let list = fields::list_id("list_id", list)?;
        let after = request::entries_token(page_token)?;
        let view = self.view(point, asked).await?;
        let size = request::page_size(page_size, request::ENTRIES_PAGE, self.registry.limits())?;
        let page = view.members(&list, after, size)?;
        Ok((view, page))
    }

    /// History: the changesets that touched `list` (or one country on it)
    /// as recorded at `at_revision` (0: the head), paged.
    pub async fn history(
        &self,
        list: &str,
        country: &str,
        at_revision: u64,
        page_size: u32,
        page_token: &str,
        wait: Option<Duration>,
    ) -> Result<(View, HistoryPage)> {
        let list = fields::list_id("list_id", list)?;
        let country = fields::opt_country("country", country)?;
        let after = request::history_token(page_token)?;
        let consistency = match at_revision {
            0 => Consistency::Latest,
            n => Consistency::AtRevision(Revision(n)),
        };
        let view = self.view(Point { as_of: None, consistency }, Asked { wait, at_field: "at_revision" }).await?;
        let size = request::page_size(page_size, request::HISTORY_PAGE, self.registry.limits())?;
        let page = view.history(&list, country, after, size)?;
        Ok((view, page))
    }

    /// Diff: what changed on `list` between two points (`from` is read in
    /// the snapshot `to` resolves, so it cannot wait).
    pub async fn diff(&self, list: &str, from: Point, to: Point, wait: Option<Duration>) -> Result<(View, DiffResult)> {
        let list = fields::list_id("list_id", list)?;
        let from = request::diff_from(from)?;
        let to = self.view(to, Asked { wait, at_field: "to.at_revision" }).await?;
        let d = to.diff(&list, from)?;
        Ok((to, d))
    }
}

/// Counts a decision in `eligibility_checks_total`.
pub fn count_decision(reason: DecisionReason) {
    use DecisionReason::*;
    // Counter handles resolved once (the recorder is installed before the
    // server serves), not a labelled lookup per check.
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; 6]> = std::sync::OnceLock::new();
    if !crate::prometheus::installed() {
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
