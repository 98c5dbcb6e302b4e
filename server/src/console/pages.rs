//! The other pages: a country's timeline, the diff between two points, the
//! history, and the sign-in and error pages.

use eligibility::{Country, ListId, Point, Revision, Timestamp};
use maud::{Markup, html};

use super::{
    chart::{self, Axis},
    layout::{Ctx, country as country_label, page, point_form, revision, summary, time, when},
};
use crate::{
    error::Result,
    model::EntryAction,
    reads::{View, timeline::Interval},
};

/// The page asking for a token (reads need one and none was sent).
pub(super) fn sign_in(ctx: &Ctx, why: &str) -> Markup {
    let body = html! {
        h1 { "Sign in to read" }
        p #sign-in-needed { "This registry shows its lists to authenticated readers only (" (why) "). "
            "Enter your token above: it is kept for this browser tab only and sent with each request as a header." }
        noscript { p.error { "Signing in needs JavaScript: a token is sent as a header, never as a cookie." } }
    };
    page(ctx, "Sign in", None, body)
}

/// A page saying what was wrong with the request.
pub(super) fn error(ctx: &Ctx, message: &str) -> Markup {
    let body = html! {
        h1 { "Cannot show this" }
        p.error #error-message role="alert" { (message) }
        p { a href="/" { "Back to the lists" } }
    };
    page(ctx, "Cannot show this", None, body)
}

/// `/countries/{code}`: the country on every list along valid time, as
/// recorded at the view's revision, with every change that made a
/// boundary; backdated changes are marked as such.
pub(super) fn country(ctx: &Ctx, view: &View, c: Country, pinned: Option<Revision>) -> Markup {
    let timelines = view.country_timelines(c);
    let now = Timestamp::now();
    let axis = Axis::covering(timelines.iter().flat_map(|t| t.events.iter().map(|e| e.effective_at)), now, 8.0, 788.0);
    let path = format!("/countries/{}", c.alpha2());
    let body = html! {
        h1 { span.code { (c.alpha2()) } " " (c.name()) }
        (point_form(&path, view.as_of(), view.revision(), ctx.head))
        p.muted { "Eligibility along valid time on every list, as recorded at revision " (view.revision().0)
            ". A change recorded after the date it takes effect (a backdated correction) is marked; "
            "pick an earlier revision to see what was on record before it." }
        @for t in &timelines {
            @let now_eligible = view.check(&t.list.id, c).is_ok_and(|d| d.eligible);
            section.timeline-list data-list=(t.list.id) {
                h2 { a href=(format!("/lists/{}", t.list.id)) { (t.list.meta.title) } }
                p.status {
                    "As of " (time(view.as_of())) ": "
                    @if now_eligible { strong.eligible-text { "eligible" } } @else { strong.ineligible-text { "not eligible" } }
                }
                (chart::timeline(&t.intervals, axis, &format!("{} on {} along valid time", c.alpha2(), t.list.id)))
                ol.intervals {
                    @for i in &t.intervals { (interval(i)) }
                }
                @if !t.events.is_empty() {
                    div.scroll {
                        table.events {
                            thead { tr { th { "Effective" } th { "Change" } th { "Revision" } th { "Recorded" } th { "Reason" } th { "Reference" } } }
                            tbody {
                                @for e in &t.events {
                                    @let cs = &e.changeset;
                                    tr data-rev=(e.revision.0) {
                                        td { (time(e.effective_at)) }
                                        td { (if e.action == EntryAction::Add { "added" } else { "removed" }) }
                                        td { (revision(e.revision)) }
                                        td {
                                            (time(cs.recorded_at))
                                            @if e.effective_at < cs.recorded_at && days(cs.recorded_at, e.effective_at) >= 1 {
                                                " " span.badge.backdated title="Recorded after the date it takes effect" {
                                                    "backdated " (days(cs.recorded_at, e.effective_at)) " days"
                                                }
                                            }
                                        }
                                        td { (cs.reason) }
                                        td { (cs.reference) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if timelines.is_empty() { p { "No list exists at this revision." } }
    };
    page(ctx, &format!("{} {}", c.alpha2(), c.name()), pinned, body)
}

/// Whole days from `b` to `a`.
fn days(a: Timestamp, b: Timestamp) -> i64 {
    (a.as_micros() - b.as_micros()) / (24 * 3600 * 1_000_000)
}

/// One interval as a sentence: "Eligible from 2021-01-01 until 2021-11-01".
fn interval(i: &Interval) -> Markup {
    html! {
        li class=(if i.eligible { "interval eligible" } else { "interval ineligible" }) {
            strong { (if i.eligible { "Eligible" } else { "Not eligible" }) }
            @match i.from { Some(f) => { " from " (time(f)) } None => { " from the beginning" } }
            @match i.to { Some(t) => { " until " (time(t)) } None => { " on" } }
            @if let Some(e) = &i.opened_by {
                span.why { " (" (revision(e.revision)) ": " (e.changeset.reason)
                    @if !e.changeset.reference.is_empty() { "; " (e.changeset.reference) } ")" }
            }
        }
    }
}

/// `/lists/{id}/diff`: added, removed and changed conditions between two
/// points (the view is the later one; `from`'s valid time defaults to just
/// before the list's last change took effect).
pub(super) fn diff(ctx: &Ctx, view: &View, id: &ListId, from: Point) -> Result<Markup> {
    let info = view.list_info(id)?;
    let from = match from.as_of {
        Some(_) => from,
        None => {
            let steps = view.member_counts(id)?;
            let before_last = steps.last().and_then(|s| Timestamp::from_micros(s.from.as_micros() - 1_000_000));
            Point { as_of: before_last.or(Some(view.as_of())), ..from }
        }
    };
    let d = view.diff(id, from)?;
    let from_as_of = from.as_of.unwrap_or(view.as_of());
    let from_rev = match from.consistency {
        eligibility::Consistency::AtRevision(r) => r,
        _ => view.revision(),
    };
    let rows = |title: &str, key: &str, cs: &[Country]| {
        html! {
            section id=(key) {
                h2 { (title) " (" (cs.len()) ")" }
                @if cs.is_empty() { p.muted { "None." } }
                @else { ul.countries { @for c in cs { li data-cc=(c.alpha2()) { (country_label(*c)) } } } }
            }
        }
    };
    let body = html! {
        h1 { "Changes to " (info.meta.title) }
        form.point method="get" action=(format!("/lists/{id}/diff")) {
            fieldset {
                legend { "From" }
                label { "As of " input type="date" name="from_as_of" value=(super::layout::date_value(from_as_of)); }
                label { "At revision " input type="number" name="from_revision" min="1" max=(ctx.head.0) value=(from_rev.0); }
            }
            fieldset {
                legend { "To" }
                label { "As of " input type="date" name="as_of" value=(super::layout::date_value(view.as_of())); }
                label { "At revision " input type="number" name="at_revision" min="1" max=(ctx.head.0) value=(view.revision().0); }
            }
            button type="submit" { "Compare" }
        }
        p.summary { "From " (when(from_as_of)) " (revision " (from_rev.0) ") to " (when(view.as_of())) " (revision " (view.revision().0) ")." }
        (rows("Added", "added", &d.added))
        (rows("Removed", "removed", &d.removed))
        (rows("Conditions changed", "conditions-changed", &d.conditions_changed))
    };
    Ok(page(ctx, &format!("Changes to {id}"), None, body))
}

/// How many changesets a history page shows.
const HISTORY_PAGE: usize = 50;

/// `/history`: changesets newest first (of one list, or all), with actor,
/// reason, reference, effective and recorded times; activation entries
/// marked.
pub(super) fn history(ctx: &Ctx, view: &View, list: Option<&ListId>, before: Option<Revision>) -> Result<Markup> {
    let (changesets, more) = view.recent(list, before, HISTORY_PAGE)?;
    let lists = view.lists();
    let body = html! {
        h1 { "History" @if let Some(l) = list { " of " code { (l) } } }
        form.point method="get" action="/history" {
            label { "List "
                select name="list" {
                    option value="" selected[list.is_none()] { "All lists" }
                    @for l in &lists { option value=(l.id) selected[list == Some(&l.id)] { (l.id) } }
                }
            }
            button type="submit" { "Show" }
        }
        div.scroll {
            table #history {
                thead { tr { th { "Revision" } th { "Effective" } th { "Recorded" } th { "Actor" } th { "Changes" } th { "Reason" } th { "Reference" } } }
                tbody {
                    @for cs in &changesets {
                        tr id=(format!("r{}", cs.revision.0)) data-rev=(cs.revision.0) {
                            td { (cs.revision.0) }
                            td { (time(cs.effective_at)) }
                            td { (time(cs.recorded_at)) }
                            td { (cs.actor) }
                            td {
                                @if let Some(orig) = cs.activates {
                                    span.badge.activation { "activation" } " of " (revision(orig)) ": "
                                }
                                (summary(cs))
                            }
                            td { (cs.reason) }
                            td { (cs.reference) }
                        }
                    }
                }
            }
        }
        @if changesets.is_empty() { p { "Nothing recorded yet." } }
        @if let Some(next) = more {
            p { a rel="next" href=(match list { Some(l) => format!("/history?list={l}&before={}", next.0), None => format!("/history?before={}", next.0) }) { "Older changesets" } }
        }
    };
    Ok(page(ctx, "History", None, body))
}
