//! Write requests as they enter the application: the options, text
//! lengths, change counts and duplicates checked, the same for every
//! transport, before anything is locked or written. Also the request
//! fingerprints that tell a retry from a reused request id.

use std::collections::{BTreeMap, HashMap};

use eligibility::{Country, ListId, Timestamp};

use super::{EntryChange, ListPatch, WriteOptions};
use crate::{
    error::{Error, Result},
    limits::{Limits, text_limits::*},
    model::{Change, EntryAction, ListMeta, fingerprint},
};

/// A text's length in characters (Unicode scalar values: what JSON
/// Schema's `maxLength` counts, so the OpenAPI document states the limit
/// exactly; at most 4 bytes each).
fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    // Bytes bound characters from above: most texts need no count.
    if value.len() > max {
        let chars = value.chars().count();
        if chars > max {
            return Err(Error::invalid(field, format!("{chars} characters is longer than the maximum {max}")));
        }
    }
    Ok(())
}

/// The options every write carries: a reason is required; an empty
/// request id means none; an empty actor is recorded as "anonymous".
pub fn options(mut opts: WriteOptions) -> Result<WriteOptions> {
    if opts.reason.trim().is_empty() {
        return Err(Error::invalid("options.reason", "a reason is required (why is this change made?)"));
    }
    check_len("options.reason", &opts.reason, REASON)?;
    check_len("options.reference", &opts.reference, REFERENCE)?;
    check_len("options.actor", &opts.actor, ACTOR)?;
    if let Some(id) = &opts.request_id {
        check_len("options.request_id", id, REQUEST_ID)?;
        if id.trim().is_empty() {
            opts.request_id = None;
        }
    }
    if opts.actor.trim().is_empty() {
        opts.actor = "anonymous".to_owned();
    }
    Ok(opts)
}

fn meta_fields(title: &str, description: &str, authority: &str, prefix: &str) -> Result<()> {
    let f = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
    check_len(&f("title"), title, TITLE)?;
    check_len(&f("description"), description, DESCRIPTION)?;
    check_len(&f("authority"), authority, AUTHORITY)
}

fn conditions(action: EntryAction, conditions: &str, field: &str) -> Result<()> {
    check_len(field, conditions, CONDITIONS)?;
    if action == EntryAction::Remove && !conditions.is_empty() {
        return Err(Error::invalid(field, format!("{conditions:?}: a removal has no conditions")));
    }
    Ok(())
}

/// A new list's metadata.
pub fn create_list(meta: &ListMeta) -> Result<()> {
    meta_fields(&meta.title, &meta.description, &meta.authority, "list")
}

/// A metadata patch.
pub fn update_list(patch: &ListPatch) -> Result<()> {
    meta_fields(
        patch.title.as_deref().unwrap_or(""),
        patch.description.as_deref().unwrap_or(""),
        patch.authority.as_deref().unwrap_or(""),
        "",
    )
}

/// The count of an Apply's changes (checked before any change is parsed):
/// at least one, at most `limits.max_changes`.
pub fn change_count(n: usize, limits: &Limits) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("changes", "at least one change is required"));
    }
    if n > limits.max_changes {
        return Err(Error::invalid(
            "changes",
            format!("{n} changes are more than the maximum {} per changeset", limits.max_changes),
        ));
    }
    Ok(())
}

/// An Apply's changes: counted, one per (list, country), conditions only
/// on additions.
pub fn apply(changes: Vec<EntryChange>, limits: &Limits) -> Result<Vec<Change>> {
    change_count(changes.len(), limits)?;
    let mut seen: HashMap<(&ListId, Country), usize> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if let Some(first) = seen.insert((&c.list, c.country), i) {
            return Err(Error::invalid(
                format!("changes[{i}]"),
                format!(
                    "({}, {}) is already changed by changes[{first}]; one change per list and country",
                    c.list, c.country
                ),
            ));
        }
        conditions(c.action, &c.conditions, &format!("changes[{i}].conditions"))?;
    }
    Ok(changes
        .into_iter()
        .map(|c| Change::Entry { list: c.list, country: c.country, action: c.action, conditions: c.conditions })
        .collect())
}

/// ReplaceMembers' members: each country once, conditions within limits.
pub fn members(members: Vec<(Country, String)>) -> Result<BTreeMap<Country, String>> {
    let mut wanted = BTreeMap::new();
    for (i, (c, cond)) in members.into_iter().enumerate() {
        conditions(EntryAction::Add, &cond, &format!("members[{i}].conditions"))?;
        if wanted.insert(c, cond).is_some() {
            return Err(Error::invalid(format!("members[{i}].country"), format!("{c} is listed twice")));
        }
    }
    Ok(wanted)
}

/// The fingerprint of a write of explicit changes.
pub fn changes_fingerprint(
    kind: &str,
    opts: &WriteOptions,
    effective_at: Option<Timestamp>,
    changes: &[Change],
) -> String {
    let eff = effective_at.map(|t| t.to_string()).unwrap_or_default();
    let body = serde_json::to_string(changes).unwrap_or_default();
    fingerprint(&[kind, &opts.actor, &opts.reason, &opts.reference, &eff, &body])
}

/// The fingerprint of a metadata patch.
pub fn patch_fingerprint(list: &ListId, patch: &ListPatch, opts: &WriteOptions) -> String {
    let key = format!("{list}\n{:?}\n{:?}\n{:?}", patch.title, patch.description, patch.authority);
    fingerprint(&["update_list", &opts.actor, &opts.reason, &opts.reference, &key])
}

/// The fingerprint of a ReplaceMembers.
pub fn members_fingerprint(
    list: &ListId,
    wanted: &BTreeMap<Country, String>,
    effective_at: Option<Timestamp>,
    opts: &WriteOptions,
) -> String {
    let mut key = format!("{list}\n");
    for (c, cond) in wanted {
        key.push_str(&format!("{c}={cond}\n"));
    }
    let eff = effective_at.map(|t| t.to_string()).unwrap_or_default();
    fingerprint(&["replace_members", &opts.actor, &opts.reason, &opts.reference, &eff, &key])
}
