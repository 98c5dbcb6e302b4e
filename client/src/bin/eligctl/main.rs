//! `eligctl`: the command-line client of the export eligibility service.
//!
//! Exit codes (for scripts): 0 success (for `check` and `batch`: eligible);
//! 1 `check`/`batch` answered "not eligible" (for any item); 2 bad usage, a
//! bad input file, or a request the server rejected as invalid; 3 not
//! found; 4 server unavailable or unreachable; 5 conflict (stale
//! `--expected-revision`, reused request id); 6 any other error.

mod input;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use eligibility_client::{
    Changeset, Client, Country, DecidingChange, Decision, Error, ListId, ListMode, NewList, Point, Revision, Timestamp,
    TlsOptions, WatchEvent, WatchOptions, WatchStart, WriteOptions, WriteOutcome,
};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

/// Command-line client of the export eligibility service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Server URL.
    #[arg(long, global = true, env = "ELIGIBILITY_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Print JSON instead of tables (one object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    /// Bearer token.
    #[arg(long, global = true, env = "ELIGIBILITY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) to verify the server (use an https:// URL).
    #[arg(long, global = true, env = "ELIGIBILITY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, global = true, env = "ELIGIBILITY_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, global = true, env = "ELIGIBILITY_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Per-call timeout in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct WriteArgs {
    /// Why (required; recorded with the changeset).
    #[arg(long)]
    reason: String,
    /// When the change takes effect (RFC 3339 or date; default: commit
    /// time).
    #[arg(long, value_parser = parse_time)]
    effective: Option<Timestamp>,
    /// Legal basis or document id.
    #[arg(long, default_value = "")]
    reference: String,
    /// Idempotency key: retrying with the same key records once.
    #[arg(long)]
    request_id: Option<String>,
    /// Record only if the head revision is this.
    #[arg(long)]
    expected_revision: Option<u64>,
    /// Who makes the change (when the server does not take it from the
    /// token).
    #[arg(long, default_value = "")]
    actor: String,
    /// Read the file as YAML (default: by extension; CSV otherwise).
    #[arg(long)]
    yaml: bool,
}

impl WriteArgs {
    fn options(&self) -> WriteOptions {
        WriteOptions {
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            request_id: self.request_id.clone(),
            expected_revision: self.expected_revision.map(Revision),
            actor: self.actor.clone(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Allowlist,
    Denylist,
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
    /// Many checks at one snapshot, from a file (or - for stdin) of `LIST
    /// COUNTRY` lines. Exits 0 if all are eligible, 1 if any is not.
    Batch {
        /// The file.
        file: String,
        #[command(flatten)]
        point: PointArgs,
    },
    /// Follow the change stream, printing each change as it comes.
    Watch {
        /// Only this list (repeatable).
        #[arg(long = "list", value_parser = parse_list)]
        lists: Vec<ListId>,
        /// Only this country (repeatable).
        #[arg(long = "country", value_parser = parse_country)]
        countries: Vec<Country>,
        /// Start after this revision (0: all history) instead of now.
        #[arg(long, conflicts_with = "snapshot")]
        after_revision: Option<u64>,
        /// Start with the current state, then follow.
        #[arg(long)]
        snapshot: bool,
        /// Stop after this many changesets (default: follow forever).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Record the changes in a CSV (`list,country,action[,conditions]`) or
    /// YAML (`changes:`) file as one changeset.
    Apply {
        /// The file (- for stdin).
        file: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Make a list's membership exactly the members in a CSV
    /// (`country[,conditions]`) or YAML (`members:`) file.
    Replace {
        /// List id.
        #[arg(value_parser = parse_list)]
        list: ListId,
        /// The file (- for stdin).
        file: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Create a list.
    CreateList {
        /// List id.
        #[arg(value_parser = parse_list)]
        list: ListId,
        /// ALLOWLIST (members eligible) or DENYLIST (members not eligible).
        #[arg(long, value_enum)]
        mode: Mode,
        /// Title.
        #[arg(long, default_value = "")]
        title: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Authority or source.
        #[arg(long, default_value = "")]
        authority: String,
        /// Why.
        #[arg(long)]
        reason: String,
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

/// Why eligctl failed.
enum Failure {
    /// A client error.
    Client(Error),
    /// A bad input file.
    Input(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Client(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(e) => e.fmt(f),
            Failure::Input(m) => f.write_str(m),
        }
    }
}

fn exit_code(e: &Failure) -> u8 {
    match e {
        Failure::Input(_) => 2,
        Failure::Client(e) => match e {
            Error::InvalidArgument { .. } | Error::OutOfRange(_) => 2,
            Error::NotFound(_) => 3,
            Error::Unavailable(_) | Error::Transport(_) => 4,
            Error::Conflict { .. } | Error::AlreadyExists(_) => 5,
            _ => 6,
        },
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Input(format!("reading {}: {e}", path.display())))
}

fn connect(cli: &Cli) -> Result<Client, Failure> {
    let mut b = Client::builder(cli.server.clone())
        .with_timeout(Duration::from_secs(cli.timeout))
        .with_user_agent(concat!("eligctl/", env!("CARGO_PKG_VERSION")))
        .with_keep_alive(Duration::from_secs(20));
    if let Some(t) = &cli.token {
        b = b.with_bearer_token(t.clone());
    }
    if cli.ca_cert.is_some() || cli.client_cert.is_some() {
        let identity = match (&cli.client_cert, &cli.client_key) {
            (Some(c), Some(k)) => Some((read_pem(c)?, read_pem(k)?)),
            _ => None,
        };
        b = b.with_tls(TlsOptions { ca_pem: cli.ca_cert.as_ref().map(read_pem).transpose()?, identity, domain: None });
    }
    Ok(b.connect_lazy()?)
}

fn write_json(w: &WriteOutcome) -> Value {
    json!({
        "revision": w.revision.0,
        "store_id": w.store_id,
        "recorded": w.recorded,
        "replayed": w.replayed,
        "changeset": w.changeset.as_ref().map(changeset_json),
    })
}

fn print_write(json: bool, w: &WriteOutcome) {
    if json {
        println!("{}", write_json(w));
    } else if w.replayed {
        println!("already recorded at revision {} (request id replayed; nothing written)", w.revision);
    } else if !w.recorded {
        println!("no change: the list already matches (head revision {})", w.revision);
    } else if let Some(c) = &w.changeset {
        println!("recorded revision {}: {} (effective {})", c.revision, summarize(c), c.effective_at);
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

async fn run(cli: Cli) -> Result<u8, Failure> {
    let client = connect(&cli)?;
    match cli.command {
        Command::Batch { file, point } => {
            let items = input::batch(&file).map_err(Failure::Input)?;
            let a = client.batch_check(&items, point.point()).await?;
            let all = a.decisions.iter().all(|d| d.eligible);
            if cli.json {
                let v: Vec<Value> = a.decisions.iter().map(decision_json).collect();
                println!(
                    "{}",
                    json!({"revision": a.header.revision.0, "as_of": a.header.as_of.to_string(), "decisions": v})
                );
            } else {
                let mut t = table(&["list", "country", "eligible", "reason", "deciding revision", "conditions"]);
                for d in &a.decisions {
                    t.add_row(vec![
                        d.list.to_string(),
                        d.country.to_string(),
                        if d.eligible { "yes" } else { "NO" }.to_owned(),
                        format!("{:?}", d.reason),
                        d.deciding_change.as_ref().map(|c| c.revision.to_string()).unwrap_or_default(),
                        d.conditions.clone(),
                    ]);
                }
                println!("{t}\nas of {} at revision {}", a.header.as_of, a.header.revision);
            }
            Ok(if all { 0 } else { 1 })
        }
        Command::Watch { lists, countries, after_revision, snapshot, count } => {
            let start = match (after_revision, snapshot) {
                (Some(r), _) => WatchStart::After(Revision(r)),
                (None, true) => WatchStart::Snapshot,
                (None, false) => WatchStart::Now,
            };
            let mut opts = WatchOptions::from(start);
            opts.lists = lists.into_iter().collect();
            opts.countries = countries.into_iter().collect();
            let mut stream = client.watch(opts).await?;
            let mut seen = 0usize;
            while let Some(ev) = stream.next().await {
                match ev? {
                    WatchEvent::Changeset(c) => {
                        seen += 1;
                        if cli.json {
                            println!("{}", json!({"event": "changeset", "changeset": changeset_json(&c)}));
                        } else {
                            println!(
                                "revision {} effective {} by {}: {} — {}",
                                c.revision,
                                c.effective_at,
                                c.actor,
                                summarize(&c),
                                c.reason
                            );
                        }
                    }
                    WatchEvent::Progress(r) => {
                        if cli.json {
                            println!("{}", json!({"event": "progress", "revision": r.0}));
                        }
                    }
                    WatchEvent::Snapshot { lists, revision, as_of } => {
                        if cli.json {
                            let v: Vec<Value> = lists
                                .iter()
                                .map(|l| json!({"list": l.list.id.as_str(), "members": l.entries.iter().map(|e| e.country.to_string()).collect::<Vec<_>>(), "pending": l.pending.len()}))
                                .collect();
                            println!(
                                "{}",
                                json!({"event": "snapshot", "revision": revision.0, "as_of": as_of.to_string(), "lists": v})
                            );
                        } else {
                            for l in &lists {
                                let members: Vec<String> = l.entries.iter().map(|e| e.country.to_string()).collect();
                                println!("snapshot {} ({} members): {}", l.list.id, members.len(), members.join(" "));
                                for p in &l.pending {
                                    println!(
                                        "  pending revision {} effective {}: {}",
                                        p.revision,
                                        p.effective_at,
                                        summarize(p)
                                    );
                                }
                            }
                            println!("snapshot at revision {revision} (as of {as_of}); following…");
                        }
                    }
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
                if count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
            Ok(0)
        }
        Command::Apply { file, write } => {
            let changes = input::changes(&file, write.yaml).map_err(Failure::Input)?;
            let w = client.apply(&changes, write.effective, &write.options()).await?;
            print_write(cli.json, &w);
            Ok(0)
        }
        Command::Replace { list, file, write } => {
            let members = input::members(&file, write.yaml).map_err(Failure::Input)?;
            let w = client.replace_members(&list, &members, write.effective, &write.options()).await?;
            print_write(cli.json, &w);
            Ok(0)
        }
        Command::CreateList { list, mode, title, description, authority, reason } => {
            let mode = match mode {
                Mode::Allowlist => ListMode::Allowlist,
                Mode::Denylist => ListMode::Denylist,
            };
            let w = client
                .create_list(&NewList { id: list, title, description, authority, mode }, &WriteOptions::reason(reason))
                .await?;
            print_write(cli.json, &w);
            Ok(0)
        }
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
