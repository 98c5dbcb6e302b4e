//! The demo data set: the reported 2021 cut of the cyber list, shipped in
//! `server/demo/cyber-2021.toml` with its source noted there.

use eligibility::{Country, ListId, Timestamp};
use serde::Deserialize;

use crate::{
    error::{Error, Result},
    model::{EntryAction, ListMeta, ListMode},
    registry::Registry,
    writes::{EntryChange, WriteOptions, Writer},
};

/// The demo file, embedded so the binary needs no files beside it.
pub const DEMO_TOML: &str = include_str!("../demo/cyber-2021.toml");

/// The actor recorded for demo changesets.
pub const DEMO_ACTOR: &str = "demo-loader";

#[derive(Deserialize)]
struct DemoFile {
    list: DemoList,
    changesets: Vec<DemoChangeset>,
}

#[derive(Deserialize)]
struct DemoList {
    id: String,
    title: String,
    description: String,
    authority: String,
    mode: ListMode,
    reference: String,
}

#[derive(Deserialize)]
struct DemoChangeset {
    effective_at: String,
    reason: String,
    reference: String,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("demo data: {e}"))
}

/// Loads the demo data into an empty store; returns false (and writes
/// nothing) when the store already holds data.
pub async fn load(writer: &Writer, registry: &Registry) -> Result<bool> {
    if registry.head().0 != 0 {
        return Ok(false);
    }
    let file: DemoFile = toml::from_str(DEMO_TOML).map_err(corrupt)?;
    let list = ListId::parse(&file.list.id).map_err(corrupt)?;
    let opts = |reason: &str, reference: &str, key: String| WriteOptions {
        actor: DEMO_ACTOR.to_owned(),
        reason: reason.to_owned(),
        reference: reference.to_owned(),
        request_id: Some(key),
        expected_revision: None,
        validate_only: false,
    };
    writer
        .create_list(
            list.clone(),
            ListMeta {
                title: file.list.title,
                description: file.list.description,
                authority: file.list.authority,
                mode: file.list.mode,
            },
            opts("Demo list created", &file.list.reference, "demo-2021-create".into()),
        )
        .await?;
    for (i, cs) in file.changesets.iter().enumerate() {
        let mut changes = Vec::new();
        for (codes, action) in [(&cs.add, EntryAction::Add), (&cs.remove, EntryAction::Remove)] {
            for code in codes {
                changes.push(EntryChange {
                    list: list.clone(),
                    country: Country::parse(code).map_err(corrupt)?,
                    action,
                    conditions: String::new(),
                });
            }
        }
        let eff = Timestamp::parse(&cs.effective_at).map_err(corrupt)?;
        writer.apply(changes, Some(eff), opts(&cs.reason, &cs.reference, format!("demo-2021-{i}"))).await?;
    }
    Ok(true)
}
