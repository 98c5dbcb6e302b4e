//! The idempotency keys a snapshot has seen, by a 64-bit hash of the key:
//! the key itself is in the changeset at the revision found (the caller
//! compares it), so the index keeps no copy of it (a long history has
//! millions). The rare key whose hash an earlier key already has is kept
//! whole in an overflow map: a collision is handled, not assumed away.

use std::sync::Arc;

use eligibility::Revision;
use imbl::HashMap;

/// Request id → the revision recorded under it (persistent, like the
/// rest of a snapshot).
#[derive(Clone, Debug, Default)]
pub(super) struct RequestIndex {
    by_hash: HashMap<u64, Revision>,
    overflow: HashMap<Arc<str>, Revision>,
}

impl RequestIndex {
    /// The revision recorded under `id`; `recorded(r)` says whether the
    /// changeset at `r` carries `id` (a hash match may be another key's).
    pub fn get(&self, id: &str, recorded: impl Fn(Revision) -> bool) -> Option<Revision> {
        self.get_hashed(key_hash(id), id, recorded)
    }

    /// Keeps `id` as recorded at `rev`.
    pub fn insert(&mut self, id: &str, rev: Revision) {
        self.insert_hashed(key_hash(id), id, rev)
    }

    fn get_hashed(&self, h: u64, id: &str, recorded: impl Fn(Revision) -> bool) -> Option<Revision> {
        match self.by_hash.get(&h) {
            Some(r) if recorded(*r) => Some(*r),
            _ => self.overflow.get(id).copied(),
        }
    }

    fn insert_hashed(&mut self, h: u64, id: &str, rev: Revision) {
        if self.by_hash.contains_key(&h) {
            self.overflow.insert(Arc::from(id), rev);
        } else {
            self.by_hash.insert(h, rev);
        }
    }
}

/// The hash a key is kept under (the standard library's keyed-with-zeros
/// SipHash: stable within the process, which is all an in-memory index
/// needs).
fn key_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_even_when_their_hashes_collide() {
        // Which revision carries which key, as the log would say.
        let log = [(Revision(1), "a"), (Revision(2), "b"), (Revision(3), "c"), (Revision(4), "d")];
        let carries = |id: &'static str| move |r: Revision| log.iter().any(|(rev, k)| *rev == r && *k == id);
        let mut index = RequestIndex::default();
        index.insert("a", Revision(1));
        index.insert("b", Revision(2));
        assert_eq!(
            (index.get("a", carries("a")), index.get("b", carries("b")), index.get("zz", carries("zz"))),
            (Some(Revision(1)), Some(Revision(2)), None)
        );
        // Two keys under one hash, as if they collided.
        index.insert_hashed(7, "c", Revision(3));
        index.insert_hashed(7, "d", Revision(4));
        assert_eq!(index.get_hashed(7, "c", carries("c")), Some(Revision(3)));
        assert_eq!(index.get_hashed(7, "d", carries("d")), Some(Revision(4)));
        assert_eq!(index.get_hashed(7, "e", carries("e")), None);
    }
}
