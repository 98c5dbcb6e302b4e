//! Country codes, list ids and timestamps from arbitrary text: never a
//! panic, and whatever parses prints back to a form that parses to the
//! same value.
#![no_main]

use eligibility::{Country, ListId, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Country::parse(text) {
        assert_eq!(Country::parse(&c.to_string()).ok(), Some(c), "{text:?}");
        assert_eq!(c.to_string().len(), 2, "{text:?}");
    }
    if let Ok(id) = ListId::parse(text) {
        assert_eq!(ListId::parse(id.as_str()).ok().as_ref(), Some(&id), "{text:?}");
    }
    if let Ok(t) = Timestamp::parse(text) {
        assert_eq!(Timestamp::parse(&t.to_string()).ok(), Some(t), "{text:?}");
    }
});
