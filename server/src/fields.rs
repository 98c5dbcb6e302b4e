//! A request's fields as domain values, for every request that names a
//! list or a country (reads, writes, watches, on every transport): each
//! error is `INVALID_ARGUMENT` naming the field by its path in the request
//! (`changes[3].country`) and saying what is wrong with the value.

use eligibility::{Country, ListId};

use crate::error::{Error, Result};

/// Parses a list id field.
pub fn list_id(field: &str, value: &str) -> Result<ListId> {
    ListId::parse(value).map_err(|e| Error::invalid(field, e.to_string()))
}

/// Parses a country field.
pub fn country(field: &str, value: &str) -> Result<Country> {
    Country::parse(value).map_err(|e| Error::invalid(field, e.to_string()))
}

/// Parses an optional country field ("" means none).
pub fn opt_country(field: &str, value: &str) -> Result<Option<Country>> {
    if value.is_empty() { Ok(None) } else { country(field, value).map(Some) }
}

/// The most digits of a revision written as text (an entity tag, an event
/// id, a page token): any revision a store reaches, and never past 2^64.
pub const REVISION_DIGITS: usize = 19;

/// A revision written as text: 1 to [`REVISION_DIGITS`] ASCII digits (no
/// sign, no space), as the OpenAPI document states it.
pub fn revision_digits(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > REVISION_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
