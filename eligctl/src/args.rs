//! The command line: every subcommand and option.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use eligibility_client::{Country, ListId, Point, Revision, Timestamp, WriteOptions};

/// Command-line client of the export eligibility service.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// Server URL.
    #[arg(long, global = true, env = "ELIGIBILITY_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Print JSON instead of tables (one object per line for `watch`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Bearer token.
    #[arg(long, global = true, env = "ELIGIBILITY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify the server (use an https:// URL).
    #[arg(long, global = true, env = "ELIGIBILITY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, global = true, env = "ELIGIBILITY_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, global = true, env = "ELIGIBILITY_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Per-call timeout in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct WriteArgs {
    /// Why (required; recorded with the changeset).
    #[arg(long)]
    pub reason: String,
    /// When the change takes effect (RFC 3339 or date; default: commit
    /// time).
    #[arg(long, value_parser = parse_time)]
    pub effective: Option<Timestamp>,
    /// Legal basis or document id.
    #[arg(long, default_value = "")]
    pub reference: String,
    /// Idempotency key: retrying with the same key records once.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Record only if the head revision is this.
    #[arg(long)]
    pub expected_revision: Option<u64>,
    /// Who makes the change (when the server does not take it from the
    /// token).
    #[arg(long, default_value = "")]
    pub actor: String,
    /// Read the file as YAML (default: by extension; CSV otherwise).
    #[arg(long)]
    pub yaml: bool,
}

impl WriteArgs {
    pub fn options(&self) -> WriteOptions {
        let mut o = WriteOptions::reason(self.reason.clone()).with_reference(self.reference.clone());
        o.request_id = self.request_id.clone();
        o.expected_revision = self.expected_revision.map(Revision);
        o.with_actor(self.actor.clone())
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    Allowlist,
    Denylist,
}

#[derive(Args, Clone, Copy)]
pub struct PointArgs {
    /// Valid time: RFC 3339 or a date (default: now).
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<Timestamp>,
    /// Transaction time: answer exactly at this revision (default: latest).
    #[arg(long)]
    pub at_revision: Option<u64>,
}

impl PointArgs {
    pub fn point(&self) -> Point {
        let p = Point { as_of: self.as_of, ..Point::default() };
        match self.at_revision {
            Some(r) => p.at_revision(Revision(r)),
            None => p,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
