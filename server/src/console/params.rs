//! A console page's query: the API's parsing (percent-decoding, repeated
//! and unknown keys refused), except that an empty value means absent (an
//! HTML form sends every field, filled or not). Errors are messages for
//! the page.

use eligibility::{Consistency, Country, ListId, Point, Revision, Timestamp};

use crate::query::Query;

/// The parsed query of a page.
pub(super) struct Params(Query);

impl Params {
    /// Parses the request's query, refusing keys other than `known`.
    pub fn parse<B>(req: &http::Request<B>, known: &[&str]) -> Result<Params, String> {
        let q = Query::parse(req.uri()).map_err(|e| e.to_string())?;
        q.only(known).map_err(|e| e.to_string())?;
        Ok(Params(q))
    }

    /// The non-empty value of `key`.
    fn get<'a>(&'a self, key: &'a str) -> Result<Option<&'a str>, String> {
        Ok(self.0.one(key).map_err(|e| format!("{key}: {e}"))?.map(str::trim).filter(|v| !v.is_empty()))
    }

    /// A read point from a time key and a revision key.
    pub fn point(&self, time: &str, revision: &str) -> Result<Point, String> {
        let as_of = self
            .get(time)?
            .map(|v| Timestamp::parse(v).map_err(|e| format!("{time}: {e} (a date like 2021-11-01, or RFC 3339)")))
            .transpose()?;
        let consistency = match self.revision(revision)? {
            Some(r) => Consistency::AtRevision(r),
            None => Consistency::Latest,
        };
        Ok(Point { as_of, consistency })
    }

    /// A revision (a positive integer).
    pub fn revision(&self, key: &str) -> Result<Option<Revision>, String> {
        self.get(key)?
            .map(|v| match v.parse::<u64>() {
                Ok(r) if r > 0 => Ok(Revision(r)),
                _ => Err(format!("{key}: {v:?} is not a revision (a positive integer)")),
            })
            .transpose()
    }

    /// The revision a page is pinned to by its URL, if it is.
    pub fn pinned(&self, key: &str) -> Option<Revision> {
        self.revision(key).ok().flatten()
    }

    /// A country code.
    pub fn country(&self, key: &str) -> Result<Country, String> {
        country(key, self.get(key)?.ok_or_else(|| format!("{key}: a country code is required"))?)
    }

    /// A list id, if given.
    pub fn opt_list(&self, key: &str) -> Result<Option<ListId>, String> {
        self.get(key)?.map(list_id).transpose()
    }
}

/// A country code (alpha-2 or alpha-3, any case).
pub(super) fn country(what: &str, v: &str) -> Result<Country, String> {
    Country::parse(v.trim()).map_err(|e| format!("{what}: {e}"))
}

/// A list id.
pub(super) fn list_id(v: &str) -> Result<ListId, String> {
    ListId::parse(v).map_err(|e| format!("list: {e}"))
}
