//! `eligctl`: the command-line client of the export eligibility service.
//!
//! Exit codes (for scripts): 0 success (for `check`: eligible); 1 `check`
//! answered "not eligible"; 2 bad usage or a request the server rejected as
//! invalid; 3 not found; 4 server unavailable or unreachable; 5 any other
//! error.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use eligibility_client::{
    Changeset, Client, Country, DecidingChange, Decision, Error, ListId, Point, Revision, Timestamp,
};
use serde_json::{Value, json};

/// Command-line client of the export eligibility service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Server URL.
    #[arg(long, global = true, env = "ELIGIBILITY_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Copy)]
struct PointArgs {
    /// Valid time: RFC 3339 or a date (default: now).
    #[arg(long, value_parser = parse_time)]
    as_of: Option<Timestamp>,
    /// Transaction time: answer exactly at this revision (default: latest).
    #[arg(long)]
    at_revision: Option<u64>,
}

impl PointArgs {
    fn point(&self) -> Point {
        let p = Point { as_of: self.as_of, ..Point::default() };
        match self.at_revision {
            Some(r) => p.at_revision(Revision(r)),
            None => p,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// May COUNTRY receive items of LIST? Exits 0 if eligible, 1 if not.
    Check {
        /// List id, e.g. cyber.
        #[arg(value_parser = parse_list)]
        list: ListId,
        /// Country: alpha-2, alpha-3 or numeric.
        #[arg(value_parser = parse_country)]
        country: Country,
        #[command(flatten)]
        point: PointArgs,
    },
    /// All lists.
    Lists {
        #[command(flatten)]
        point: PointArgs,
    },
    /// The members of a list.
    Members {
        /// List id.
        #[arg(value_parser = parse_list)]
        list: ListId,
        #[command(flatten)]
        point: PointArgs,
    },
    /// The changes to a list (or one country on it).
    History {
        /// List id.
        #[arg(value_parser = parse_list)]
        list: ListId,
        /// Only this country.
        #[arg(long, value_parser = parse_country)]
        country: Option<Country>,
        /// As recorded up to this revision.
        #[arg(long)]
        at_revision: Option<u64>,
    },
    /// Countries added and removed between two times (or revisions).
    Diff {
        /// List id.
        #[arg(value_parser = parse_list)]
        list: ListId,
        /// Earlier valid time.
        #[arg(long, value_parser = parse_time)]
        from: Option<Timestamp>,
        /// Earlier revision.
        #[arg(long)]
        from_revision: Option<u64>,
        /// Later valid time (default now).
        #[arg(long, value_parser = parse_time)]
        to: Option<Timestamp>,
        /// Later revision (default latest).
        #[arg(long)]
        to_revision: Option<u64>,
    },
}

fn parse_list(s: &str) -> Result<ListId, String> {
    ListId::parse(s).map_err(|e| e.to_string())
}

fn parse_country(s: &str) -> Result<Country, String> {
    Country::parse(s).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::InvalidArgument { .. } | Error::OutOfRange(_) => 2,
        Error::NotFound(_) => 3,
        Error::Unavailable(_) | Error::Transport(_) => 4,
        _ => 5,
    }
}

fn deciding_json(d: &Option<DecidingChange>) -> Value {
    match d {
        None => Value::Null,
        Some(d) => json!({
            "revision": d.revision.0,
            "effective_at": d.effective_at.to_string(),
            "recorded_at": d.recorded_at.to_string(),
            "actor": d.actor,
            "reason": d.reason,
            "reference": d.reference,
            "action": format!("{:?}", d.action).to_lowercase(),
        }),
    }
}

fn decision_json(d: &Decision) -> Value {
    json!({
        "list": d.list.as_str(),
        "country": d.country.to_string(),
        "eligible": d.eligible,
        "reason": format!("{:?}", d.reason),
        "conditions": d.conditions,
        "deciding_change": deciding_json(&d.deciding_change),
    })
}

fn changeset_json(c: &Changeset) -> Value {
    json!({
        "revision": c.revision.0,
        "effective_at": c.effective_at.to_string(),
        "recorded_at": c.recorded_at.to_string(),
        "actor": c.actor,
        "reason": c.reason,
        "reference": c.reference,
        "request_id": c.request_id,
        "activates": c.activates.map(|r| r.0),
        "changes": c.changes.iter().map(|ch| format!("{ch:?}")).collect::<Vec<_>>(),
    })
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    if t.width().is_none() {
        // Not a terminal (piped): wrap long reasons at a readable width.
        t.set_width(160);
    }
    t
}

async fn run(cli: Cli) -> Result<u8, Error> {
    let client = Client::builder(cli.server.clone()).connect_lazy()?;
    match cli.command {
        Command::Check { list, country, point } => {
            let a = client.check_at(&list, country, point.point()).await?;
            let d = &a.decision;
            if cli.json {
                let mut v = decision_json(d);
                v["revision"] = json!(a.header.revision.0);
                v["as_of"] = json!(a.header.as_of.to_string());
                v["store_id"] = json!(a.header.store_id);
                println!("{v}");
            } else {
                let verdict = if d.eligible { "ELIGIBLE" } else { "NOT ELIGIBLE" };
                println!("{} -> {} ({}): {verdict} [{:?}]", d.list, d.country, d.country.name(), d.reason);
                if !d.conditions.is_empty() {
                    println!("  conditions: {}", d.conditions);
                }
                if let Some(c) = &d.deciding_change {
                    println!(
                        "  decided by revision {} ({:?}, effective {}, recorded {} by {})",
                        c.revision, c.action, c.effective_at, c.recorded_at, c.actor
                    );
                    println!("  reason: {}", c.reason);
                    if !c.reference.is_empty() {
                        println!("  reference: {}", c.reference);
                    }
                }
                println!("  answered as of {} at revision {}", a.header.as_of, a.header.revision);
            }
            Ok(if d.eligible { 0 } else { 1 })
        }
        Command::Lists { point } => {
            let (h, lists) = client.lists(point.point()).await?;
            if cli.json {
                let v: Vec<Value> = lists
                    .iter()
                    .map(|l| {
                        json!({"id": l.id.as_str(), "title": l.title, "mode": format!("{:?}", l.mode),
                               "members": l.member_count, "authority": l.authority,
                               "created_revision": l.created_revision.0, "updated_revision": l.updated_revision.0})
                    })
                    .collect();
                println!("{}", json!({"revision": h.revision.0, "lists": v}));
            } else {
                let mut t = table(&["id", "mode", "members", "title", "updated at revision"]);
                for l in &lists {
                    t.add_row(vec![
                        l.id.to_string(),
                        format!("{:?}", l.mode),
                        l.member_count.to_string(),
                        l.title.clone(),
                        l.updated_revision.to_string(),
                    ]);
                }
                println!("{t}\nrevision {}", h.revision);
            }
            Ok(0)
        }
        Command::Members { list, point } => {
            let m = client.members(&list, point.point()).await?;
            if cli.json {
                let v: Vec<Value> = m
                    .entries
                    .iter()
                    .map(|e| {
                        json!({"country": e.country.to_string(), "conditions": e.conditions,
                                    "deciding_change": deciding_json(&e.deciding_change)})
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"list": list.as_str(), "mode": format!("{:?}", m.mode), "revision": m.header.revision.0,
                           "as_of": m.header.as_of.to_string(), "members": v})
                );
            } else {
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
                    "{} members ({:?}) as of {} at revision {}",
                    m.entries.len(),
                    m.mode,
                    m.header.as_of,
                    m.header.revision
                );
            }
            Ok(0)
        }
        Command::History { list, country, at_revision } => {
            let (h, changesets) = client.history(&list, country, at_revision.map(Revision)).await?;
            if cli.json {
                let v: Vec<Value> = changesets.iter().map(changeset_json).collect();
                println!("{}", json!({"revision": h.revision.0, "changesets": v}));
            } else {
                let mut t = table(&["revision", "effective", "recorded", "actor", "changes", "reason"]);
                for c in &changesets {
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
            Ok(0)
        }
        Command::Diff { list, from, from_revision, to, to_revision } => {
            let mk = |t: Option<Timestamp>, r: Option<u64>| {
                let p = Point { as_of: t, ..Point::default() };
                r.map(|r| p.at_revision(Revision(r))).unwrap_or(p)
            };
            let d = client.diff(&list, mk(from, from_revision), mk(to, to_revision)).await?;
            let names = |v: &[Country]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
            if cli.json {
                println!(
                    "{}",
                    json!({"list": list.as_str(), "revision": d.header.revision.0, "added": names(&d.added),
                           "removed": names(&d.removed), "conditions_changed": names(&d.conditions_changed)})
                );
            } else {
                println!("added ({}): {}", d.added.len(), names(&d.added).join(" "));
                println!("removed ({}): {}", d.removed.len(), names(&d.removed).join(" "));
                println!(
                    "conditions changed ({}): {}",
                    d.conditions_changed.len(),
                    names(&d.conditions_changed).join(" ")
                );
            }
            Ok(0)
        }
    }
}

fn summarize(c: &Changeset) -> String {
    use eligibility_client::{Change, EntryAction};
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    let mut other = Vec::new();
    for ch in &c.changes {
        match ch {
            Change::Entry { country, action: EntryAction::Add, .. } => adds.push(country.to_string()),
            Change::Entry { country, action: EntryAction::Remove, .. } => removes.push(country.to_string()),
            Change::ListCreated(l) => other.push(format!("created {}", l.id)),
            Change::ListUpdated(l) => other.push(format!("updated {}", l.id)),
        }
    }
    let mut parts = other;
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                eprintln!("{}", json!({"error": e.to_string()}));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}
