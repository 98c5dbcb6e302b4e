//! The frame every page shares (header, navigation, token form, live
//! banner, footer) and the small pieces pages are made of: dates, country
//! labels, read-point controls.

use std::sync::Arc;

use eligibility::{Country, Revision, Timestamp};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use crate::{identity::Principal, model::Changeset};

/// What a page knows of its request.
pub(super) struct Ctx {
    /// The authenticated caller (`None`: anonymous, or auth is off).
    pub who: Option<Principal>,
    /// Whether the server authenticates at all.
    pub auth_enabled: bool,
    /// Whether the caller's role may record changes.
    pub can_write: bool,
    /// The head revision when the page was made.
    pub head: Revision,
    /// The store id.
    pub store_id: Arc<str>,
}

/// A whole page. `pinned`: the revision the URL fixes (the live script
/// then announces new revisions without replacing the view).
pub(super) fn page(ctx: &Ctx, title: &str, pinned: Option<Revision>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon request (it would only be refused).
                link rel="icon" href="data:,";
                title { (title) " · Eligibility console" }
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("console.js")) defer {}
            }
            body data-head=(ctx.head.0) data-store=(ctx.store_id) data-pinned=[pinned.map(|r| r.0)]
                data-auth=(ctx.auth_enabled) data-who=[ctx.who.as_ref().map(|p| &p.name)] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Eligibility registry" }
                    nav aria-label="Main" {
                        a href="/" { "Lists" }
                        a href="/history" { "History" }
                        form.lookup action="/countries" method="get" role="search" {
                            label for="lookup-code" { "Country" }
                            input #lookup-code name="code" size="4" maxlength="3" placeholder="MX" required
                                autocomplete="off" aria-describedby="lookup-help";
                            span #lookup-help .hidden { "ISO 3166 code, e.g. MX or MEX" }
                            button type="submit" { "Show" }
                        }
                    }
                    (who(ctx))
                }
                div #live role="status" aria-live="polite" {}
                main #main tabindex="-1" { (body) }
                footer {
                    "Store " code { (ctx.store_id) } " · head revision " span #head { (ctx.head.0) }
                    " · " a href="/v1/openapi.json" { "HTTP API" }
                    " · map: Natural Earth (public domain) · "
                    span #live-state { "live updates need JavaScript" }
                }
            }
        }
    }
}

/// The caller and the token form (when the server authenticates).
fn who(ctx: &Ctx) -> Markup {
    html! {
        div.who {
            @if let Some(p) = &ctx.who {
                span #signed-in { "Signed in as " strong { (p.name) } " (" (p.role) ")" }
                " " button #sign-out type="button" { "Forget token" }
            } @else if ctx.auth_enabled {
                form #token-form {
                    label for="token" { "Token" }
                    input #token type="password" name="token" autocomplete="off" required
                        aria-describedby="token-help";
                    button type="submit" { "Use" }
                    span #token-help .hidden { "Kept for this browser tab only, sent as a header, never stored in a cookie." }
                }
            } @else {
                span.muted { "Authentication is off (development)" }
            }
            noscript { span.muted { " Signing in and recording changes need JavaScript." } }
            p #token-error .error role="alert" hidden {}
        }
    }
}

/// A time as people read it: the date alone at midnight UTC, else date and
/// time to the minute.
pub(super) fn when(t: Timestamp) -> String {
    let s = t.to_string();
    match s.strip_suffix("T00:00:00Z") {
        Some(date) => date.to_owned(),
        None => format!("{} {} UTC", &s[..10], s.get(11..16).unwrap_or("")),
    }
}

/// A `<time>` element.
pub(super) fn time(t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) { (when(t)) } }
}

/// The date part of a time, for a date input.
pub(super) fn date_value(t: Timestamp) -> String {
    t.to_string()[..10].to_owned()
}

/// A country: its code and name, linked to its timeline.
pub(super) fn country(c: Country) -> Markup {
    html! {
        a.country href=(format!("/countries/{}", c.alpha2())) {
            span.code { (c.alpha2()) } " " span.name { (c.name()) }
        }
    }
}

/// The link to a revision's changeset in the history.
pub(super) fn revision(r: Revision) -> Markup {
    html! { a.rev href=(format!("/history?before={}#r{}", r.0 + 1, r.0)) { "r" (r.0) } }
}

/// The read-point controls of a page at `path`: valid time and revision,
/// and the permalink that fixes both.
pub(super) fn point_form(path: &str, as_of: Timestamp, at: Revision, head: Revision) -> Markup {
    let permalink = format!("{path}?as_of={}&at_revision={}", as_of, at.0);
    html! {
        form.point method="get" action=(path) {
            label { "As of " input type="date" name="as_of" value=(date_value(as_of)); }
            label {
                "As recorded at revision "
                input.rev-number type="number" name="at_revision" min="1" max=(head.0) value=(at.0);
            }
            input.rev-slider type="range" min="1" max=(head.0) value=(at.0) aria-label="Revision slider";
            button type="submit" { "Show" }
            a.permalink href=(permalink) title="A link that shows exactly this view, whatever is recorded later" {
                "Permalink"
            }
        }
    }
}

/// One line about a changeset's changes, by list: `cyber: −MX −MA −SA −AE`.
pub(super) fn summary(cs: &Changeset) -> String {
    use crate::model::{Change, EntryAction};
    let mut by_list: Vec<(&str, Vec<String>)> = Vec::new();
    for ch in &cs.changes {
        let token = match ch {
            Change::CreateList { .. } => "list created".to_owned(),
            Change::UpdateList { .. } => "details changed".to_owned(),
            Change::Entry { country, action: EntryAction::Add, .. } => format!("+{}", country.alpha2()),
            Change::Entry { country, .. } => format!("\u{2212}{}", country.alpha2()),
        };
        let list = ch.list().as_str();
        match by_list.iter_mut().find(|(l, _)| *l == list) {
            Some((_, tokens)) => tokens.push(token),
            None => by_list.push((list, vec![token])),
        }
    }
    let parts: Vec<String> = by_list
        .into_iter()
        .map(|(list, mut tokens)| {
            if tokens.len() > 12 {
                let more = tokens.len() - 10;
                tokens.truncate(10);
                tokens.push(format!("and {more} more"));
            }
            format!("{list}: {}", tokens.join(" "))
        })
        .collect();
    parts.join("; ")
}
