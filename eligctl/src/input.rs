//! Reading change files (CSV or YAML) and batch files.

use std::{io::Read, path::Path};

use eligibility_client::{Country, EntryAction, EntryChange, ListId};
use serde::Deserialize;

/// A bad input file: the message names the file, the line or item, and the
/// value.
pub type InputError = String;

fn read(path: &str) -> Result<String, InputError> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

fn is_yaml(path: &str) -> bool {
    matches!(Path::new(path).extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRow {
    list: String,
    country: String,
    action: String,
    #[serde(default)]
    conditions: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesFile {
    changes: Vec<ChangeRow>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MemberRow {
    Code(String),
    Full {
        country: String,
        #[serde(default)]
        conditions: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersFile {
    members: Vec<MemberRow>,
}

fn change(at: &str, r: ChangeRow) -> Result<EntryChange, InputError> {
    let list = ListId::parse(&r.list).map_err(|e| format!("{at}: list: {e}"))?;
    let country = Country::parse(&r.country).map_err(|e| format!("{at}: country: {e}"))?;
    let action = match r.action.to_ascii_lowercase().as_str() {
        "add" => EntryAction::Add,
        "remove" => EntryAction::Remove,
        other => return Err(format!("{at}: action {other:?} is not add or remove")),
    };
    Ok(EntryChange { list, country, action, conditions: r.conditions })
}

/// Entry changes from a CSV (header `list,country,action[,conditions]`) or
/// YAML (`changes: [{list, country, action, conditions?}]`) file; `-` is
/// stdin (CSV unless `yaml`).
pub fn changes(path: &str, yaml: bool) -> Result<Vec<EntryChange>, InputError> {
    let text = read(path)?;
    if yaml || is_yaml(path) {
        let f: ChangesFile = serde_norway::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        return f.changes.into_iter().enumerate().map(|(i, r)| change(&format!("{path}: changes[{i}]"), r)).collect();
    }
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in rdr.deserialize::<ChangeRow>().enumerate() {
        let at = format!("{path}: row {}", i + 2);
        out.push(change(&at, row.map_err(|e| format!("{at}: {e}"))?)?);
    }
    Ok(out)
}

/// Members from a CSV (header `country[,conditions]`) or YAML (`members:`
/// of codes or `{country, conditions}`) file.
pub fn members(path: &str, yaml: bool) -> Result<Vec<(Country, String)>, InputError> {
    let text = read(path)?;
    let rows: Vec<(String, String, String)> = if yaml || is_yaml(path) {
        let f: MembersFile = serde_norway::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        f.members
            .into_iter()
            .enumerate()
            .map(|(i, m)| match m {
                MemberRow::Code(c) => (format!("{path}: members[{i}]"), c, String::new()),
                MemberRow::Full { country, conditions } => (format!("{path}: members[{i}]"), country, conditions),
            })
            .collect()
    } else {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Row {
            country: String,
            #[serde(default)]
            conditions: String,
        }
        let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for (i, row) in rdr.deserialize::<Row>().enumerate() {
            let at = format!("{path}: row {}", i + 2);
            let r = row.map_err(|e| format!("{at}: {e}"))?;
            rows.push((at, r.country, r.conditions));
        }
        rows
    };
    rows.into_iter()
        .map(|(at, c, cond)| Ok((Country::parse(&c).map_err(|e| format!("{at}: country: {e}"))?, cond)))
        .collect()
}

/// Batch items: one `LIST COUNTRY` per line (space or comma separated;
/// blank lines and `#` comments skipped).
pub fn batch(path: &str) -> Result<Vec<(ListId, Country)>, InputError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
        let at = format!("{path}: line {}", i + 1);
        let [l, c] = parts[..] else {
            return Err(format!("{at}: expected `LIST COUNTRY`, got {line:?}"));
        };
        out.push((
            ListId::parse(l).map_err(|e| format!("{at}: {e}"))?,
            Country::parse(c).map_err(|e| format!("{at}: {e}"))?,
        ));
    }
    if out.is_empty() {
        return Err(format!("{path}: no items"));
    }
    Ok(out)
}
