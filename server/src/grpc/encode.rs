//! BatchCheck's answer encoded by hand, straight from the decisions, into
//! one framed buffer: no owned wire message per item (five strings copied
//! and freed per decision), and each deciding change (shared by many items:
//! a list's members mostly joined in a few changesets) encoded once per
//! answer. The bytes are exactly what prost makes of the same
//! `BatchCheckResponse` (fields in tag order, defaults left out); a test
//! compares the two for every country of the demo list.

use bytes::{BufMut, Bytes};
use eligibility::proto::v1 as pb;
use prost::{
    Message,
    encoding::{WireType, encode_key, encode_varint, encoded_len_varint},
};

use crate::snapshot::Decision;

/// Length of a length-delimited field `tag` carrying `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.put_slice(bytes);
}

fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() { 0 } else { delimited_len(tag, s.len()) }
}

fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        put_delimited(tag, s.as_bytes(), buf);
    }
}

fn varint_len(tag: u32, v: u64) -> usize {
    if v == 0 { 0 } else { prost::encoding::key_len(tag) + encoded_len_varint(v) }
}

fn put_varint(tag: u32, v: u64, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

/// One decision's fields (without its own tag and length).
fn decision_len(d: &Decision, deciding: Option<&[u8]>) -> usize {
    str_len(1, d.list.as_str())
        + str_len(2, d.country.alpha2())
        + varint_len(3, u64::from(d.eligible))
        + varint_len(4, d.reason.to_proto() as u64)
        + deciding.map_or(0, |b| delimited_len(5, b.len()))
        + str_len(6, d.conditions())
}

fn put_decision(d: &Decision, deciding: Option<&[u8]>, buf: &mut Vec<u8>) {
    put_str(1, d.list.as_str(), buf);
    put_str(2, d.country.alpha2(), buf);
    put_varint(3, u64::from(d.eligible), buf);
    put_varint(4, d.reason.to_proto() as u64, buf);
    if let Some(b) = deciding {
        put_delimited(5, b, buf);
    }
    put_str(6, d.conditions(), buf);
}

/// The gRPC frame (flag, length, message) of a `BatchCheckResponse` with
/// `header` and `decisions`.
pub fn batch_check_frame(header: &pb::ResponseHeader, decisions: &[Decision]) -> Bytes {
    // Each distinct deciding change, encoded once: (revision, action) names
    // it (its changeset gives the rest).
    let mut encoded: Vec<((u64, i32), Vec<u8>)> = Vec::new();
    let mut which: Vec<Option<usize>> = Vec::with_capacity(decisions.len());
    for d in decisions {
        which.push(d.deciding.as_ref().map(|e| {
            let key = (e.revision.0, e.action.to_proto());
            match encoded.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    encoded.push((key, super::convert::deciding(e).encode_to_vec()));
                    encoded.len() - 1
                }
            }
        }));
    }
    let deciding = |i: usize| which[i].map(|j| encoded[j].1.as_slice());
    let header = header.encode_to_vec();
    let mut len = delimited_len(1, header.len());
    for (i, d) in decisions.iter().enumerate() {
        len += delimited_len(2, decision_len(d, deciding(i)));
    }
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    buf.put_u32(len as u32);
    put_delimited(1, &header, &mut buf);
    for (i, d) in decisions.iter().enumerate() {
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(decision_len(d, deciding(i)) as u64, &mut buf);
        put_decision(d, deciding(i), &mut buf);
    }
    Bytes::from(buf)
}
