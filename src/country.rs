//! ISO 3166-1 countries.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::TypeError;

/// A destination country: an officially assigned ISO 3166-1 code, or `XK`
/// (Kosovo, a user-assigned code that export-control authorities use).
///
/// Parsing accepts alpha-2 (`"MX"`), alpha-3 (`"MEX"`) and numeric
/// (`"484"`) codes in any case; the value always displays as upper-case
/// alpha-2. It is two bytes, `Copy`, and orders by alpha-2 code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a code in any accepted form (see the type's docs). Allocates
    /// nothing: it is on every request's path.
    pub fn parse(code: &str) -> Result<Self, TypeError> {
        let b = code.as_bytes();
        let t = table();
        let found = match b.len() {
            2 if b.iter().all(u8::is_ascii_alphabetic) => {
                let c = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
                t.alpha2[slot(c)].then_some(Country(c))
            }
            3 if b.iter().all(u8::is_ascii_alphabetic) => t
                .alpha3
                .get(&[b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase(), b[2].to_ascii_uppercase()])
                .copied(),
            3 if b.iter().all(u8::is_ascii_digit) => t.numeric.get(&[b[0], b[1], b[2]]).copied(),
            _ => None,
        };
        found.ok_or_else(|| TypeError::Country(code.to_owned()))
    }

    /// The upper-case alpha-2 code.
    pub fn alpha2(&self) -> &str {
        debug_assert!(self.0.iter().all(u8::is_ascii_uppercase));
        // SAFETY: both bytes are ASCII upper-case letters: a `Country` is
        // made only by `parse` (serde included, through `try_from`) and the
        // lookup table, from upper-cased ASCII letters; ASCII is UTF-8.
        // (Unchecked: the encoders ask for it once per decision, and the
        // UTF-8 check cost a BatchCheck 4 % of its instructions.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The English short name, e.g. "Mexico".
    pub fn name(&self) -> &'static str {
        celes::Country::from_alpha2(self.alpha2()).map(|c| c.long_name).unwrap_or("")
    }

    /// Every accepted country (the officially assigned codes plus `XK`),
    /// ordered by alpha-2 code.
    pub fn all() -> Vec<Country> {
        let mut all: Vec<Country> =
            celes::Country::get_countries().iter().filter_map(|c| Country::parse(c.alpha2).ok()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// Every code [`Country::parse`] accepts, upper-case: each country's
    /// alpha-2, alpha-3 and numeric code (parsing also takes the letters
    /// in any case). For documents that must state the accepted set
    /// exactly, such as the OpenAPI document's pattern.
    pub fn accepted_codes() -> Vec<String> {
        let t = table();
        let mut three: Vec<String> =
            t.alpha3.keys().chain(t.numeric.keys()).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        three.sort();
        Country::all().iter().map(|c| c.alpha2().to_owned()).chain(three).collect()
    }
}

/// Lookup tables built once from celes' list.
struct Tables {
    alpha2: [bool; 26 * 26],
    alpha3: std::collections::HashMap<[u8; 3], Country>,
    numeric: std::collections::HashMap<[u8; 3], Country>,
}

fn slot(c: [u8; 2]) -> usize {
    (c[0] - b'A') as usize * 26 + (c[1] - b'A') as usize
}

fn table() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Tables { alpha2: [false; 26 * 26], alpha3: Default::default(), numeric: Default::default() };
        for c in celes::Country::get_countries() {
            let a2 = c.alpha2.as_bytes();
            let country = Country([a2[0].to_ascii_uppercase(), a2[1].to_ascii_uppercase()]);
            t.alpha2[slot(country.0)] = true;
            let a3 = c.alpha3.as_bytes();
            t.alpha3
                .insert([a3[0].to_ascii_uppercase(), a3[1].to_ascii_uppercase(), a3[2].to_ascii_uppercase()], country);
            let n = c.code.as_bytes();
            if n.len() == 3 {
                t.numeric.insert([n[0], n[1], n[2]], country);
            }
        }
        t
    })
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha2())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.alpha2())
    }
}

impl FromStr for Country {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::parse(s)
    }
}

impl TryFrom<String> for Country {
    type Error = TypeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Country::parse(&s)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.alpha2().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form_and_case() {
        for input in ["MA", "ma", "Ma", "MAR", "mar", "504"] {
            assert_eq!(Country::parse(input).unwrap().alpha2(), "MA", "{input}");
        }
        assert_eq!(Country::parse("XK").unwrap().alpha2(), "XK");
        assert_eq!(Country::parse("xkx").unwrap().alpha2(), "XK");
        assert_eq!(Country::parse("004").unwrap().alpha2(), "AF");
    }

    #[test]
    fn rejects_garbage() {
        for input in ["", "M", "ZZ", "ZZZ", "999", "4", " MX", "MX ", "M1", "MEXI", "é1", "uk"] {
            let err = Country::parse(input).unwrap_err();
            assert_eq!(err, TypeError::Country(input.to_owned()), "{input}");
        }
    }

    #[test]
    fn all_has_the_assigned_codes_and_kosovo() {
        let all = Country::all();
        assert_eq!(all.len(), 250);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.contains(&Country::parse("XK").unwrap()));
    }

    #[test]
    fn display_and_serde_are_alpha2() {
        let c = Country::parse("mex").unwrap();
        assert_eq!(c.to_string(), "MX");
        assert_eq!(c.name(), "Mexico");
    }
}
