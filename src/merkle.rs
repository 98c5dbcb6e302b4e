//! The Merkle tree of RFC 6962 / RFC 9162 (§2.1), as Certificate
//! Transparency, Go's checksum database and the C2SP tlog specifications
//! use it: leaf hash `SHA-256(0x00 || leaf)`, interior node
//! `SHA-256(0x01 || left || right)`, the tree over n leaves split at the
//! largest power of two smaller than n. Here are the hashes, a tree's root,
//! the two proofs (inclusion of a leaf, consistency of two tree sizes) and
//! their verification, in the API crate so that a client (or an auditor's
//! tool built on it) verifies offline exactly what the server proves.
//!
//! Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and is
//! tested against the transparency-dev test vectors
//! (`tests/data/merkle-vectors`), which no one here wrote.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The older size is larger than the newer.
    #[error("tree size {older} is larger than {newer}")]
    SizesReversed {
        /// The first (older) size.
        older: u64,
        /// The second (newer) size.
        newer: u64,
    },
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("the proof has the wrong number of hashes ({0})")]
    WrongLength(usize),
    /// A consistency proof from the empty tree: there is none to check (RFC
    /// 9162 asks 0 < first < second).
    #[error("a tree of size 0 has no consistency proof")]
    EmptyTree,
    /// The proof leads to another root than the one given.
    #[error("the proof leads to another root")]
    RootMismatch,
}

/// The hash of a leaf's bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an interior node over its two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree over `leaves` (leaf hashes, in order); the empty
/// tree's root is the hash of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree over `leaves` (RFC 9162
/// §2.1.3.1), from the leaf's sibling up.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n as u64) as usize;
    let (mut proof, sibling) = if index < k {
        (inclusion_proof(index, &leaves[..k]), root(&leaves[k..]))
    } else {
        (inclusion_proof(index - k, &leaves[k..]), root(&leaves[..k]))
    };
    proof.push(sibling);
    proof
}

/// The consistency proof between the tree's first `older` leaves and all of
/// `leaves` (RFC 9162 §2.1.4.1).
pub fn consistency_proof(older: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn sub(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole { Vec::new() } else { vec![root(leaves)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut proof = sub(m, &leaves[..k], whole);
            proof.push(root(&leaves[k..]));
            proof
        } else {
            let mut proof = sub(m - k, &leaves[k..], false);
            proof.push(root(&leaves[..k]));
            proof
        }
    }
    if older == 0 || older >= leaves.len() {
        return Vec::new();
    }
    sub(older, leaves, true)
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of
/// `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `older` leaves with root `older_root` is a
/// prefix of the tree of `newer` leaves with root `newer_root` (RFC 9162
/// §2.1.4.2). Equal sizes need an empty proof and equal roots; a proof from
/// size 0 is refused ([`ProofError::EmptyTree`]: it would prove nothing).
pub fn verify_consistency(
    older: u64,
    newer: u64,
    proof: &[Hash],
    older_root: &Hash,
    newer_root: &Hash,
) -> Result<(), ProofError> {
    if older > newer {
        return Err(ProofError::SizesReversed { older, newer });
    }
    if older == 0 {
        return Err(ProofError::EmptyTree);
    }
    if older == newer {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength(proof.len()));
        }
        return if older_root == newer_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength(0));
    }
    // When the older tree is a complete subtree, its root starts the path.
    let with_root;
    let path: &[Hash] = if older.is_power_of_two() {
        with_root = std::iter::once(*older_root).chain(proof.iter().copied()).collect::<Vec<_>>();
        &with_root
    } else {
        proof
    };
    let (mut fn_, mut sn) = (older - 1, newer - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if fr != *older_root || sr != *newer_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
