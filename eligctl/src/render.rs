//! What eligctl prints: tables and lines for people, and JSON for scripts
//! (through serde, in the shapes of `json`: one object per answer, one per
//! line for `watch`).

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use eligibility_client::{
    BatchAnswer, Change, Changeset, CheckAnswer, Country, DecisionReason, Diff, EntryAction, Header, List, ListId,
    ListMode, Members, Revision, Timestamp, WatchEvent, WriteOutcome,
};
use serde::Serialize;

use crate::json::{ChangesetJson, DecidingJson, DecisionJson, ListJson, print_json, rfc3339};

/// A table for people: wraps at the terminal's width, or at a readable
/// width when piped.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    if t.width().is_none() {
        t.set_width(160);
    }
    t
}

/// `check`.
pub fn check(json: bool, a: &CheckAnswer) {
    let d = &a.decision;
    if json {
        #[derive(Serialize)]
        struct CheckJson<'a> {
            #[serde(flatten)]
            decision: DecisionJson<'a>,
            revision: Revision,
            #[serde(serialize_with = "rfc3339")]
            as_of: Timestamp,
            store_id: &'a str,
        }
        let h = &a.header;
        return print_json(&CheckJson {
            decision: d.into(),
            revision: h.revision,
            as_of: h.as_of,
            store_id: &h.store_id,
        });
    }
    let verdict = if d.eligible { "ELIGIBLE" } else { "NOT ELIGIBLE" };
    println!("{} -> {} ({}): {verdict} [{}]", d.list, d.country, d.country.name(), reason(d.reason));
    if !d.conditions.is_empty() {
        println!("  conditions: {}", d.conditions);
    }
    if let Some(c) = &d.deciding_change {
        println!(
            "  decided by revision {} ({}, effective {}, recorded {} by {})",
            c.revision,
            action(c.action),
            c.effective_at,
            c.recorded_at,
            c.actor
        );
        println!("  reason: {}", c.reason);
        if !c.reference.is_empty() {
            println!("  reference: {}", c.reference);
        }
    }
    println!("  answered as of {} at revision {}", a.header.as_of, a.header.revision);
}

/// `batch`.
pub fn batch(json: bool, a: &BatchAnswer) {
    if json {
        #[derive(Serialize)]
        struct BatchJson<'a> {
            revision: Revision,
            #[serde(serialize_with = "rfc3339")]
            as_of: Timestamp,
            decisions: Vec<DecisionJson<'a>>,
        }
        let decisions = a.decisions.iter().map(DecisionJson::from).collect();
        return print_json(&BatchJson { revision: a.header.revision, as_of: a.header.as_of, decisions });
    }
    let mut t = table(&["list", "country", "eligible", "reason", "deciding revision", "conditions"]);
    for d in &a.decisions {
        t.add_row(vec![
            d.list.to_string(),
            d.country.to_string(),
            if d.eligible { "yes" } else { "NO" }.to_owned(),
            reason(d.reason).to_owned(),
            d.deciding_change.as_ref().map(|c| c.revision.to_string()).unwrap_or_default(),
            d.conditions.clone(),
        ]);
    }
    println!("{t}\nas of {} at revision {}", a.header.as_of, a.header.revision);
}

/// `lists`.
pub fn lists(json: bool, h: &Header, lists: &[List]) {
    if json {
        #[derive(Serialize)]
        struct ListsJson<'a> {
            revision: Revision,
            lists: Vec<ListJson<'a>>,
        }
        return print_json(&ListsJson { revision: h.revision, lists: lists.iter().map(ListJson::from).collect() });
    }
    let mut t = table(&["id", "mode", "members", "title", "updated at revision"]);
    for l in lists {
        t.add_row(vec![
            l.id.to_string(),
            mode(l.mode).to_owned(),
            l.member_count.to_string(),
            l.title.clone(),
            l.updated_revision.to_string(),
        ]);
    }
    println!("{t}\nrevision {}", h.revision);
}

/// `members`.
pub fn members(json: bool, list: &ListId, m: &Members) {
    if json {
        #[derive(Serialize)]
        struct MemberJson<'a> {
            country: Country,
            conditions: &'a str,
            deciding_change: Option<DecidingJson<'a>>,
        }
        #[derive(Serialize)]
        struct MembersJson<'a> {
            list: &'a ListId,
            mode: ListMode,
            revision: Revision,
            #[serde(serialize_with = "rfc3339")]
            as_of: Timestamp,
            members: Vec<MemberJson<'a>>,
        }
        let members = m
            .entries
            .iter()
            .map(|e| MemberJson {
                country: e.country,
                conditions: &e.conditions,
                deciding_change: DecidingJson::of(&e.deciding_change),
            })
            .collect();
        return print_json(&MembersJson {
            list,
            mode: m.mode,
            revision: m.header.revision,
            as_of: m.header.as_of,
            members,
        });
    }
    let mut t = table(&["country", "name", "conditions", "since (effective)", "revision"]);
    for e in &m.entries {
        let (eff, rev) = e
            .deciding_change
            .as_ref()
            .map(|d| (d.effective_at.to_string(), d.revision.to_string()))
            .unwrap_or_default();
        t.add_row(vec![e.country.to_string(), e.country.name().to_owned(), e.conditions.clone(), eff, rev]);
    }
    println!("{t}");
    println!(
        "{} members ({}) as of {} at revision {}",
        m.entries.len(),
        mode(m.mode),
        m.header.as_of,
        m.header.revision
    );
}

/// `history`.
pub fn history(json: bool, h: &Header, changesets: &[Changeset]) {
    if json {
        #[derive(Serialize)]
        struct HistoryJson<'a> {
            revision: Revision,
            changesets: Vec<ChangesetJson<'a>>,
        }
        let changesets = changesets.iter().map(ChangesetJson::from).collect();
        return print_json(&HistoryJson { revision: h.revision, changesets });
    }
    let mut t = table(&["revision", "effective", "recorded", "actor", "changes", "reason"]);
    for c in changesets {
        t.add_row(vec![
            c.revision.to_string(),
            c.effective_at.to_string(),
            c.recorded_at.to_string(),
            c.actor.clone(),
            summarize(c),
            c.reason.clone(),
        ]);
    }
    println!("{t}");
}

/// `diff`.
pub fn diff(json: bool, list: &ListId, d: &Diff) {
    if json {
        #[derive(Serialize)]
        struct DiffJson<'a> {
            list: &'a ListId,
            revision: Revision,
            added: &'a [Country],
            removed: &'a [Country],
            conditions_changed: &'a [Country],
        }
        return print_json(&DiffJson {
            list,
            revision: d.header.revision,
            added: &d.added,
            removed: &d.removed,
            conditions_changed: &d.conditions_changed,
        });
    }
    let names = |v: &[Country]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" ");
    println!("added ({}): {}", d.added.len(), names(&d.added));
    println!("removed ({}): {}", d.removed.len(), names(&d.removed));
    println!("conditions changed ({}): {}", d.conditions_changed.len(), names(&d.conditions_changed));
}

/// The outcome of a write.
pub fn write(json: bool, w: &WriteOutcome) {
    if json {
        #[derive(Serialize)]
        struct WriteJson<'a> {
            revision: Revision,
            store_id: &'a str,
            recorded: bool,
            replayed: bool,
            changeset: Option<ChangesetJson<'a>>,
        }
        return print_json(&WriteJson {
            revision: w.revision,
            store_id: &w.store_id,
            recorded: w.recorded,
            replayed: w.replayed,
            changeset: w.changeset.as_ref().map(ChangesetJson::from),
        });
    }
    if w.replayed {
        println!("already recorded at revision {} (request id replayed; nothing written)", w.revision);
    } else if !w.recorded {
        println!("no change: the list already matches (head revision {})", w.revision);
    } else if let Some(c) = &w.changeset {
        println!("recorded revision {}: {} (effective {})", c.revision, summarize(c), c.effective_at);
    }
}

/// One event of `watch`.
pub fn event(json: bool, e: &WatchEvent) {
    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum EventJson<'a> {
        Changeset {
            changeset: ChangesetJson<'a>,
        },
        Progress {
            revision: Revision,
        },
        Snapshot {
            revision: Revision,
            #[serde(serialize_with = "rfc3339")]
            as_of: Timestamp,
            lists: Vec<SnapshotListJson<'a>>,
        },
    }
    #[derive(Serialize)]
    struct SnapshotListJson<'a> {
        list: &'a ListId,
        members: Vec<Country>,
        pending: usize,
    }
    match e {
        WatchEvent::Changeset(c) if json => print_json(&EventJson::Changeset { changeset: c.into() }),
        WatchEvent::Changeset(c) => println!(
            "revision {} effective {} by {}: {} — {}",
            c.revision,
            c.effective_at,
            c.actor,
            summarize(c),
            c.reason
        ),
        WatchEvent::Progress(r) if json => print_json(&EventJson::Progress { revision: *r }),
        WatchEvent::Progress(_) => {}
        WatchEvent::Snapshot { lists, revision, as_of } if json => {
            let lists = lists
                .iter()
                .map(|l| SnapshotListJson {
                    list: &l.list.id,
                    members: l.entries.iter().map(|e| e.country).collect(),
                    pending: l.pending.len(),
                })
                .collect();
            print_json(&EventJson::Snapshot { revision: *revision, as_of: *as_of, lists })
        }
        WatchEvent::Snapshot { lists, revision, as_of } => {
            for l in lists {
                let members: Vec<String> = l.entries.iter().map(|e| e.country.to_string()).collect();
                println!("snapshot {} ({} members): {}", l.list.id, members.len(), members.join(" "));
                for p in &l.pending {
                    println!("  pending revision {} effective {}: {}", p.revision, p.effective_at, summarize(p));
                }
            }
            println!("snapshot at revision {revision} (as of {as_of}); following…");
        }
        // An event a newer client knows and this eligctl does not.
        _ => {}
    }
}

/// An error, as the last thing printed.
pub fn error(json: bool, message: &str) {
    if json {
        #[derive(Serialize)]
        struct ErrorJson<'a> {
            error: &'a str,
        }
        match serde_json::to_string(&ErrorJson { error: message }) {
            Ok(line) => eprintln!("{line}"),
            Err(_) => eprintln!("error: {message}"),
        }
    } else {
        eprintln!("error: {message}");
    }
}

fn reason(r: DecisionReason) -> &'static str {
    match r {
        DecisionReason::Listed => "listed",
        DecisionReason::NotListed => "not listed",
        DecisionReason::Removed => "removed",
        DecisionReason::Denylisted => "denylisted",
        DecisionReason::NotDenylisted => "not denylisted",
        DecisionReason::DenylistRemoved => "removed from the denylist",
    }
}

fn mode(m: ListMode) -> &'static str {
    match m {
        ListMode::Allowlist => "allowlist",
        ListMode::Denylist => "denylist",
    }
}

fn action(a: EntryAction) -> &'static str {
    match a {
        EntryAction::Add => "added",
        EntryAction::Remove => "removed",
    }
}

/// One line for a changeset's changes: `+N (codes)`, `-N (codes)`.
fn summarize(c: &Changeset) -> String {
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    let mut parts = Vec::new();
    for ch in &c.changes {
        match ch {
            Change::Entry { country, action: EntryAction::Add, .. } => adds.push(country.to_string()),
            Change::Entry { country, action: EntryAction::Remove, .. } => removes.push(country.to_string()),
            Change::ListCreated(l) => parts.push(format!("created {}", l.id)),
            Change::ListUpdated(l) => parts.push(format!("updated {}", l.id)),
        }
    }
    if !adds.is_empty() {
        parts.push(format!("+{} ({})", adds.len(), abbreviate(&adds)));
    }
    if !removes.is_empty() {
        parts.push(format!("-{} ({})", removes.len(), abbreviate(&removes)));
    }
    if let Some(r) = c.activates {
        parts.push(format!("activates revision {r}"));
    }
    parts.join("; ")
}

fn abbreviate(codes: &[String]) -> String {
    if codes.len() <= 8 { codes.join(" ") } else { format!("{} …", codes[..8].join(" ")) }
}
