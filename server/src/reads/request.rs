//! Read requests as they enter the application: every field parsed with
//! its path for the error, every limit checked, the same for every
//! transport (a transport decodes its message and hands the raw values
//! here).

use eligibility::{Consistency, Country, ListId, Point, Revision};

use crate::{
    error::{Error, Result},
    limits::Limits,
};

pub use crate::fields::{country, list_id, opt_country};

/// The items of a BatchCheck: at least one, at most `limits.max_batch`
/// (checked before any item is parsed), each parsed with its index.
pub fn batch<'a>(
    items: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    limits: &Limits,
) -> Result<Vec<(ListId, Country)>> {
    let max = limits.max_batch;
    match items.len() {
        0 => return Err(Error::invalid("items", "at least one item is required")),
        n if n > max => {
            return Err(Error::invalid("items", format!("{n} items are more than the maximum {max} per batch")));
        }
        _ => {}
    }
    // Field names are only built for an error. Items mostly name the same
    // list: it is parsed (and its id allocated) once per run of equal ids.
    let mut last: Option<(&str, ListId)> = None;
    items
        .enumerate()
        .map(|(i, (l, c))| {
            let list = match &last {
                Some((s, id)) if *s == l => id.clone(),
                _ => {
                    let id =
                        ListId::parse(l).map_err(|e| Error::invalid(format!("items[{i}].list_id"), e.to_string()))?;
                    last = Some((l, id.clone()));
                    id
                }
            };
            Ok((list, Country::parse(c).map_err(|e| Error::invalid(format!("items[{i}].country"), e.to_string()))?))
        })
        .collect()
}

/// Diff's `from` point: it is resolved against the snapshot `to` reads,
/// so it cannot wait for a revision.
pub fn diff_from(from: Point) -> Result<Point> {
    if matches!(from.consistency, Consistency::MinRevision(_)) {
        return Err(Error::invalid("from.min_revision", "not allowed in from; use at_revision"));
    }
    Ok(from)
}

/// A page size: 0 means `default`; above the limit is an error.
pub fn page_size(asked: u32, default: usize, limits: &Limits) -> Result<usize> {
    match asked {
        0 => Ok(default),
        n if n <= limits.max_page_size => Ok(n as usize),
        n => Err(Error::invalid("page_size", format!("{n} is above the maximum page size {}", limits.max_page_size))),
    }
}

/// Default page size of ListEntries.
pub const ENTRIES_PAGE: usize = 250;
/// Default page size of History.
pub const HISTORY_PAGE: usize = 100;

/// How ListEntries' page token starts (the OpenAPI document states it too).
pub(crate) const ENTRIES_TOKEN: &str = "after-country:";
/// How History's page token starts.
pub(crate) const HISTORY_TOKEN: &str = "after-revision:";

/// ListEntries' page token: the last country of the previous page.
pub fn entries_token(token: &str) -> Result<Option<Country>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .strip_prefix(ENTRIES_TOKEN)
        .and_then(|c| Country::parse(c).ok())
        .map(Some)
        .ok_or_else(|| Error::invalid("page_token", format!("{token:?} is not a page token from ListEntries")))
}

/// The page token that continues ListEntries after `last`.
pub fn next_entries_token(last: Option<Country>) -> String {
    last.map(|c| format!("{ENTRIES_TOKEN}{c}")).unwrap_or_default()
}

/// History's page token: the last revision of the previous page.
pub fn history_token(token: &str) -> Result<Revision> {
    if token.is_empty() {
        return Ok(Revision::ZERO);
    }
    token
        .strip_prefix(HISTORY_TOKEN)
        .and_then(crate::fields::revision_digits)
        .map(Revision)
        .ok_or_else(|| Error::invalid("page_token", format!("{token:?} is not a page token from History")))
}

/// The page token that continues History after `last`.
pub fn next_history_token(last: Option<Revision>) -> String {
    last.map(|r| format!("{HISTORY_TOKEN}{r}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_limits_come_before_item_errors() {
        let limits = Limits { max_batch: 2, ..Limits::default() };
        let e = batch([("cyber", "ZZ"); 3].into_iter(), &limits).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { ref field, .. } if field == "items"), "{e}");
        let e = batch([("cyber", "FR"), ("cyber", "ZZ")].into_iter(), &limits).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { ref field, .. } if field == "items[1].country"), "{e}");
        assert!(batch(std::iter::empty(), &limits).is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_junk_is_refused() {
        let fr = Country::parse("FR").unwrap();
        assert_eq!(entries_token(&next_entries_token(Some(fr))).unwrap(), Some(fr));
        assert_eq!(history_token(&next_history_token(Some(Revision(7)))).unwrap(), Revision(7));
        assert!(entries_token("after-revision:7").is_err());
        assert!(history_token("junk").is_err());
        assert_eq!(page_size(0, 9, &Limits::default()).unwrap(), 9);
        assert!(page_size(u32::MAX, 9, &Limits::default()).is_err());
    }
}
