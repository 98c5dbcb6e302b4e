//! The lists page and a list at a point: members, removed countries, the
//! member-count chart, the map, and (for writers) the write forms.

use eligibility::{Country, ListId, Revision, Timestamp};
use maud::{Markup, html};

use super::{
    chart,
    layout::{Ctx, country, page, point_form, revision, time, when},
    map::{self, Paint},
};
use crate::{
    error::Result,
    model::ListMode,
    reads::{Filter, Member, View},
    snapshot::DecisionReason,
};

/// `/`: every list with its mode, authority, member count now and its last
/// change.
pub(super) fn index(ctx: &Ctx, view: &View) -> Markup {
    let lists = view.lists();
    let body = html! {
        h1 { "Lists" }
        p.lede { "Each list says to which countries items of its kind may be exported. "
            "Counts are as of now, at revision " (view.revision().0) "." }
        @if lists.is_empty() {
            p { "No list has been recorded yet." }
        } @else {
            div.scroll {
                table #lists {
                    thead { tr { th { "List" } th { "Mode" } th { "Authority" } th.num { "Members now" } th { "Last change" } } }
                    tbody {
                        @for l in &lists {
                            @let last = view.changeset(l.updated);
                            tr data-list=(l.id) {
                                td { a href=(format!("/lists/{}", l.id)) { (l.meta.title) } br; code { (l.id) } }
                                td { (mode(l.meta.mode)) }
                                td { (l.meta.authority) }
                                td.num.count { (l.member_count) }
                                td {
                                    (revision(l.updated))
                                    @if let Some(cs) = last { ", effective " (time(cs.effective_at)) br; span.reason { (cs.reason) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(ctx, "Lists", None, body)
}

fn mode(m: ListMode) -> &'static str {
    match m {
        ListMode::Allowlist => "allowlist (listed countries are eligible)",
        ListMode::Denylist => "denylist (listed countries are not eligible)",
    }
}

/// `/lists/{id}`: the list at the view's point.
pub(super) fn list(ctx: &Ctx, view: &View, id: &ListId, pinned: Option<Revision>) -> Result<Markup> {
    let info = view.list_info(id)?;
    let filter = Filter { lists: [id.clone()].into(), ..Filter::default() };
    let state = view.snapshot_lists(&filter).into_iter().next();
    let (members, removed, pending) = match state {
        Some(s) => (s.members, s.removed, s.pending),
        None => Default::default(),
    };
    let steps = view.member_counts(id)?;
    let path = format!("/lists/{id}");
    let as_of = view.as_of();
    let paint = |c: Country| -> Paint {
        let Ok(d) = view.check(id, c) else { return Paint { class: "nodata", label: "unknown".into() } };
        let by = |verb: &str, e: &crate::snapshot::Event| {
            format!("not eligible: {verb} {} (r{})", when(e.effective_at), e.revision.0)
        };
        match (d.reason, &d.deciding) {
            _ if d.eligible => Paint { class: "eligible", label: "eligible".into() },
            (DecisionReason::Removed, Some(e)) => Paint { class: "removed", label: by("removed", e) },
            (_, Some(e)) => Paint { class: "ineligible", label: by("listed", e) },
            (_, None) => Paint { class: "ineligible", label: "not eligible: never listed".into() },
        }
    };
    let body = html! {
        h1 { (info.meta.title) }
        p.meta { code { (id) } " · " (mode(info.meta.mode)) " · " (info.meta.authority) }
        @if !info.meta.description.is_empty() { p.description { (info.meta.description) } }
        (point_form(&path, as_of, view.revision(), ctx.head))
        p.summary #summary {
            "As of " (time(as_of)) ", as recorded at revision " (view.revision().0) ": "
            strong #member-count { (members.len()) } " member" @if members.len() != 1 { "s" } "."
            @if view.revision() < ctx.head {
                " " span.later { "Later revisions exist (head " (ctx.head.0) "); this view does not show them." }
            }
        }
        p { a href=(format!("/lists/{id}/diff?as_of={}&at_revision={}", as_of, view.revision().0)) { "Compare with another point" }
            " · " a href=(format!("/history?list={id}")) { "History of this list" } }
        section.figure {
            h2 { "Members over valid time" }
            p.muted { "As recorded at revision " (view.revision().0) ". Each dot is a change taking effect; the vertical line is the date shown." }
            (chart::members(&steps, as_of, Timestamp::now()))
        }
        section.figure {
            h2 { "Map as of " (when(as_of)) }
            (map::world(&format!("World map of {} as of {}", id, when(as_of)), paint))
            p.legend { span.key.eligible {} "eligible " span.key.removed {} "removed " span.key.ineligible {} "not eligible" }
        }
        section #members {
            h2 { "Members (" (members.len()) ")" }
            (member_table(&members, "Member since", false))
            (deciding(&members))
        }
        section #removed {
            h2 { "Removed (" (removed.len()) ")" }
            @if removed.is_empty() { p.muted { "No country's deciding change at this point is a removal." } }
            @else { (member_table(&removed, "Removed", true)) }
        }
        @if !pending.is_empty() {
            section #pending {
                h2 { "Recorded, not in effect as of this date" }
                ul { @for cs in &pending { li { (revision(cs.revision)) " effective " (time(cs.effective_at)) ": " (cs.reason) } } }
            }
        }
        @if ctx.can_write { (write_forms(id, &members)) }
    };
    Ok(page(ctx, &info.meta.title, pinned, body))
}

/// Members (or removed countries) with the change that decides each;
/// `why`: with its reason and reference in each row (members share a few
/// changes, listed once below their table instead).
fn member_table(rows: &[Member], since: &str, why: bool) -> Markup {
    html! {
        div.scroll {
            table.members {
                thead { tr {
                    th { "Country" } th { (since) } th { "Revision" }
                    @if why { th { "Reason" } th { "Reference" } } @else { th { "Conditions" } }
                } }
                tbody {
                    @for m in rows {
                        tr data-cc=(m.country.alpha2()) {
                            td { (country(m.country)) }
                            td { (time(m.event.effective_at)) }
                            td { (revision(m.event.revision)) }
                            @if why {
                                td.reason { (m.event.changeset.reason) }
                                td { (m.event.changeset.reference) }
                            } @else {
                                td { (m.event.conditions()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The changes that made the members, each once, with reason and
/// reference.
fn deciding(rows: &[Member]) -> Markup {
    let mut revs: Vec<&Member> = Vec::new();
    for m in rows {
        if !revs.iter().any(|r| r.event.revision == m.event.revision) {
            revs.push(m);
        }
    }
    revs.sort_by_key(|m| m.event.revision);
    html! {
        @if !revs.is_empty() {
            dl.deciding {
                @for m in revs {
                    @let cs = &m.event.changeset;
                    dt { (revision(cs.revision)) ", effective " (time(cs.effective_at)) " (" (cs.actor) ")" }
                    dd { (cs.reason) @if !cs.reference.is_empty() { br; span.muted { (cs.reference) } } }
                }
            }
        }
    }
}

/// Recording a change and replacing the members: filled in the page, sent
/// by the script (the token is a header), previewed with `validate_only`.
fn write_forms(id: &ListId, members: &[Member]) -> Markup {
    let current: Vec<&str> = members.iter().map(|m| m.country.alpha2()).collect();
    html! {
        section.write #record {
            h2 { "Record a change" }
            form #apply-form data-list=(id) {
                label { "Add (codes, separated by spaces or commas)" textarea name="add" rows="2" {} }
                label { "Conditions for the added countries" input name="conditions"; }
                label { "Remove (codes)" textarea name="remove" rows="2" {} }
                (common_fields())
                button type="submit" { "Preview" }
            }
            div.preview aria-live="polite" {}
        }
        section.write #replace {
            h2 { "Replace the members" }
            p.muted { "Paste the complete new membership; the server records the adds and removes that make it so." }
            form #replace-form data-list=(id) {
                label { "Members (codes)" textarea name="members" rows="4" { (current.join(" ")) } }
                (common_fields())
                button type="submit" { "Preview" }
            }
            div.preview aria-live="polite" {}
        }
    }
}

fn common_fields() -> Markup {
    html! {
        label { "Effective (empty: when recorded)" input type="date" name="effective"; }
        label { "Reason (required)" input name="reason" required; }
        label { "Reference" input name="reference"; }
    }
}
