//! Tests of the Merkle tree: the transparency-dev vectors (independent of
//! this code), and proofs made here verified here for every small tree.

use std::path::Path;

use base64::Engine;

use super::*;

fn vectors(kind: &str) -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/merkle-vectors").join(kind);
    fn walk(dir: &Path, out: &mut Vec<(String, serde_json::Value)>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), serde_json::from_str(&text).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir, &mut out);
    assert!(out.len() > 90, "{kind}: only {} vectors found", out.len());
    out
}

fn base64(v: &serde_json::Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).ok()
}

/// A base64 hash; `None` when it is not 32 bytes (a malformed input, which
/// a typed hash cannot even hold: the verification is refused).
fn hash(v: &serde_json::Value) -> Option<Hash> {
    base64(v)?.try_into().ok()
}

/// A consistency vector's root: some give roots that are not 32 bytes
/// ("don't care"), only ever compared with each other; such a value stands
/// in as the SHA-256 of a marker byte and its bytes, which keeps equal
/// values equal and differs from every real hash.
fn root_or_stand_in(v: &serde_json::Value) -> Option<Hash> {
    Some(base64(v)?.try_into().unwrap_or_else(|bytes: Vec<u8>| {
        let mut h = sha2::Sha256::new();
        h.update([0xff]);
        h.update(&bytes);
        h.finalize().into()
    }))
}

fn proof(v: &serde_json::Value) -> Option<Vec<Hash>> {
    match v.as_array() {
        None => Some(Vec::new()),
        Some(items) => items.iter().map(hash).collect(),
    }
}

/// Every vector of `kind`: `verify` says whether it verifies (`None`: an
/// input the types cannot hold, which counts as refused); each must verify
/// exactly when it is not marked `wantErr`, and both kinds must be there.
fn check_vectors(kind: &str, verify: impl Fn(&serde_json::Value) -> Option<bool>) {
    let (mut good, mut bad) = (0, 0);
    for (name, v) in vectors(kind) {
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(verify(&v).unwrap_or(false), !want_err, "{name}: {}", v["desc"]);
        if want_err { bad += 1 } else { good += 1 }
    }
    assert!(good >= 5 && bad > 50, "{kind}: {good} valid and {bad} invalid vectors");
}

#[test]
fn every_inclusion_vector() {
    check_vectors("inclusion", |v| {
        let (leaf, root, proof) = (hash(&v["leafHash"])?, hash(&v["root"])?, proof(&v["proof"])?);
        let (index, size) = (v["leafIdx"].as_u64()?, v["treeSize"].as_u64()?);
        Some(verify_inclusion(index, size, &leaf, &proof, &root).is_ok())
    });
}

#[test]
fn every_consistency_vector() {
    check_vectors("consistency", |v| {
        let (root1, root2) = (root_or_stand_in(&v["root1"])?, root_or_stand_in(&v["root2"])?);
        let proof = proof(&v["proof"])?;
        let (size1, size2) = (v["size1"].as_u64()?, v["size2"].as_u64()?);
        Some(verify_consistency(size1, size2, &proof, &root1, &root2).is_ok())
    });
}

/// The RFC's example tree sizes and more: every proof made here verifies,
/// and a proof for another leaf, size or root does not.
#[test]
fn proofs_made_here_verify_for_every_small_tree() {
    let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for n in 1..=leaves.len() {
        let tree = &leaves[..n];
        let r = root(tree);
        for i in 0..n {
            let p = inclusion_proof(i, tree);
            assert_eq!(verify_inclusion(i as u64, n as u64, &tree[i], &p, &r), Ok(()), "leaf {i} of {n}");
            if n > 1 {
                let other = (i + 1) % n;
                assert!(verify_inclusion(other as u64, n as u64, &tree[i], &p, &r).is_err(), "leaf {i} as {other}");
            }
            let wrong = leaf_hash(b"not the root");
            assert_eq!(verify_inclusion(i as u64, n as u64, &tree[i], &p, &wrong), Err(ProofError::RootMismatch));
        }
        for m in 1..=n {
            let p = consistency_proof(m, tree);
            let older = root(&tree[..m]);
            assert_eq!(verify_consistency(m as u64, n as u64, &p, &older, &r), Ok(()), "{m} -> {n}");
            if m < n {
                let wrong = leaf_hash(b"not the older root");
                assert_eq!(verify_consistency(m as u64, n as u64, &p, &wrong, &r), Err(ProofError::RootMismatch));
            }
        }
    }
    assert_eq!(verify_consistency(0, 5, &[], &root(&[]), &root(&leaves[..5])), Err(ProofError::EmptyTree));
    assert_eq!(verify_consistency(0, 0, &[], &root(&[]), &root(&[])), Err(ProofError::EmptyTree));
    assert!(matches!(verify_consistency(5, 4, &[], &leaves[0], &leaves[0]), Err(ProofError::SizesReversed { .. })));
}
