//! Query strings, for the HTTP API and the console alike: `key=value`
//! pairs, percent-decoded (`+` is a space), keys repeatable; and the read
//! point every read takes from them.

use eligibility::{Consistency, Point, Revision, Timestamp};

use crate::error::{Error, Result};

fn invalid(field: &str, message: &str) -> Error {
    Error::invalid(field, message)
}

/// A parsed query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `uri`'s query (none: empty). Malformed escapes are errors.
    pub fn parse(uri: &http::Uri) -> Result<Query> {
        let mut out = Vec::new();
        for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Query(out))
    }

    /// The one value of `key` (given twice: an error).
    pub fn one<'a>(&'a self, key: &'a str) -> Result<Option<&'a str>> {
        let mut values = self.all(key);
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid(key, "given more than once"));
        }
        Ok(first)
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// An unsigned number.
    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.one(key)?
            .map(|v| v.parse::<u64>().map_err(|_| invalid(key, &format!("{v:?} is not a non-negative integer"))))
            .transpose()
    }

    /// A time (RFC 3339, or a date).
    pub fn time(&self, key: &str) -> Result<Option<Timestamp>> {
        self.one(key)?.map(|v| Timestamp::parse(v).map_err(|e| invalid(key, &e.to_string()))).transpose()
    }

    /// `true` or `false` (absent: false).
    pub fn flag(&self, key: &str) -> Result<bool> {
        match self.one(key)? {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(v) => Err(invalid(key, &format!("{v:?} is not true or false"))),
        }
    }

    /// Refuses keys other than `known` (a typo is an error, not ignored).
    pub fn only(&self, known: &[&str]) -> Result<()> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(invalid(k, &format!("unknown query parameter (known: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    /// The read point: `as_of`, and `at_revision` or `min_revision`.
    pub fn point(&self) -> Result<Point> {
        let consistency = match (self.number("at_revision")?, self.number("min_revision")?) {
            (Some(_), Some(_)) => {
                return Err(invalid("at_revision", "at_revision and min_revision exclude each other"));
            }
            (Some(r), None) => Consistency::AtRevision(Revision(r)),
            (None, Some(r)) => Consistency::MinRevision(Revision(r)),
            (None, None) => Consistency::Latest,
        };
        Ok(Point { as_of: self.time("as_of")?, consistency })
    }
}

/// Whether a read point pins both time axes (its answer never changes).
pub fn fixed(point: &Point) -> bool {
    point.as_of.is_some() && matches!(point.consistency, Consistency::AtRevision(_))
}

/// The query keys of a read point.
pub const POINT: [&str; 3] = ["as_of", "at_revision", "min_revision"];

fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = byte else {
                    return Err(invalid("query", &format!("{s:?} has a malformed %-escape")));
                };
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| invalid("query", &format!("{s:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Query> {
        Query::parse(&format!("http://x/?{s}").parse().unwrap())
    }

    #[test]
    fn values_are_decoded_and_repeatable() {
        let q = q("as_of=2021-10-15T00%3A00%3A00%2B00%3A00&list_id=a&list_id=b&x=a+b").unwrap();
        assert_eq!(q.one("as_of").unwrap(), Some("2021-10-15T00:00:00+00:00"));
        assert_eq!(q.all("list_id").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.one("x").unwrap(), Some("a b"));
        assert!(q.one("list_id").is_err());
        assert!(q.only(&["as_of", "list_id"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(q("a=%zz").is_err());
        assert!(q("at_revision=-1").unwrap().point().is_err());
        assert!(q("at_revision=1&min_revision=2").unwrap().point().is_err());
        assert!(q("as_of=yesterday").unwrap().point().is_err());
        assert!(q("snapshot=maybe").unwrap().flag("snapshot").is_err());
    }
}
