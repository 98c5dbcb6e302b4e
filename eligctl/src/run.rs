//! Dispatch: each subcommand as a call to the client and a rendering of
//! its answer; failures as exit codes.

use std::{io::Write, path::PathBuf, time::Duration};

use eligibility_client::{
    Client, Error, ListMode, NewList, Point, Revision, Timestamp, TlsOptions, WatchOptions, WatchStart, WriteOptions,
};
use tokio_stream::StreamExt;

use crate::{
    args::{Cli, Command, Mode},
    input, render,
};

/// Why eligctl failed.
pub enum Failure {
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

impl Failure {
    /// A connection that was made and then broke off before an answer: what
    /// a plaintext client meets at a TLS port.
    pub fn connected_then_failed(&self) -> bool {
        matches!(self, Failure::Client(Error::Transport { message: m, .. }) if !m.contains("tcp connect error") && !m.contains("dns error"))
    }
}

pub fn exit_code(e: &Failure) -> u8 {
    match e {
        Failure::Input(_) => 2,
        Failure::Client(e) => match e {
            Error::InvalidArgument { .. } | Error::OutOfRange(_) => 2,
            Error::NotFound(_) => 3,
            Error::Unavailable(_) | Error::Transport { .. } | Error::Tls { .. } => 4,
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
        let mut tls = TlsOptions::default();
        tls.ca_pem = cli.ca_cert.as_ref().map(read_pem).transpose()?;
        tls.identity = identity;
        b = b.with_tls(tls);
    }
    Ok(b.connect_lazy()?)
}

/// Runs the command; the exit code on success (1: not eligible).
pub async fn run(cli: Cli) -> Result<u8, Failure> {
    let client = connect(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Check { list, country, point } => {
            let a = client.check_at(&list, country, point.point()).await?;
            render::check(json, &a);
            Ok(if a.decision.eligible { 0 } else { 1 })
        }
        Command::Batch { file, point } => {
            let items = input::batch(&file).map_err(Failure::Input)?;
            let a = client.batch_check(&items, point.point()).await?;
            render::batch(json, &a);
            Ok(if a.decisions.iter().all(|d| d.eligible) { 0 } else { 1 })
        }
        Command::Lists { point } => {
            let eligibility_client::ListsAnswer { header: h, lists, .. } = client.lists(point.point()).await?;
            render::lists(json, &h, &lists);
            Ok(0)
        }
        Command::Members { list, point } => {
            render::members(json, &list, &client.members(&list, point.point()).await?);
            Ok(0)
        }
        Command::History { list, country, at_revision } => {
            let eligibility_client::HistoryAnswer { header: h, changesets, .. } =
                client.history(&list, country, at_revision.map(Revision)).await?;
            render::history(json, &h, &changesets);
            Ok(0)
        }
        Command::Diff { list, from, from_revision, to, to_revision } => {
            let d = client.diff(&list, point(from, from_revision), point(to, to_revision)).await?;
            render::diff(json, &list, &d);
            Ok(0)
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
            while let Some(event) = stream.next().await {
                let event = event?;
                seen += usize::from(matches!(event, eligibility_client::WatchEvent::Changeset(_)));
                render::event(json, &event);
                let _ = std::io::stdout().flush();
                if count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
            Ok(0)
        }
        Command::Apply { file, write } => {
            let changes = input::changes(&file, write.yaml).map_err(Failure::Input)?;
            render::write(json, &client.apply(&changes, write.effective, &write.options()).await?);
            Ok(0)
        }
        Command::Replace { list, file, write } => {
            let members = input::members(&file, write.yaml).map_err(Failure::Input)?;
            render::write(json, &client.replace_members(&list, &members, write.effective, &write.options()).await?);
            Ok(0)
        }
        Command::CreateList { list, mode, title, description, authority, reason } => {
            let mode = match mode {
                Mode::Allowlist => ListMode::Allowlist,
                Mode::Denylist => ListMode::Denylist,
            };
            let new = NewList { id: list, title, description, authority, mode };
            render::write(json, &client.create_list(&new, &WriteOptions::reason(reason)).await?);
            Ok(0)
        }
    }
}

/// A read point from `--from`/`--to` and their revisions.
fn point(as_of: Option<Timestamp>, revision: Option<u64>) -> Point {
    let p = Point { as_of, ..Point::default() };
    revision.map(|r| p.at_revision(Revision(r))).unwrap_or(p)
}
