//! BatchCheck's answer encoded by hand, straight from the decisions, into
//! one framed buffer: no owned wire message per item (five strings copied
//! and freed per decision), and each deciding change (shared by many items:
//! a list's members mostly joined in a few changesets) encoded once per
//! answer. The bytes are exactly what prost makes of the same
//! `BatchCheckResponse` (fields in tag order, defaults left out); a test
//! compares the two for every country of the demo list.

use std::ops::Range;

use bytes::{BufMut, Bytes};
use eligibility::proto::v1 as pb;
use prost::{
    Message,
    encoding::{WireType, encoded_len_varint},
};

use crate::snapshot::DecisionRef;

/// The field numbers of the messages encoded and read here, named as in
/// `proto/eligibility/v1/` (a test checks them against the descriptors).
mod tag {
    /// `BatchCheckResponse.header`.
    pub const RESPONSE_HEADER: u32 = 1;
    /// `BatchCheckResponse.decisions`.
    pub const RESPONSE_DECISIONS: u32 = 2;
    /// `Decision.list_id`.
    pub const DECISION_LIST_ID: u32 = 1;
    /// `Decision.country`.
    pub const DECISION_COUNTRY: u32 = 2;
    /// `Decision.eligible`.
    pub const DECISION_ELIGIBLE: u32 = 3;
    /// `Decision.reason`.
    pub const DECISION_REASON: u32 = 4;
    /// `Decision.deciding_change`.
    pub const DECISION_DECIDING_CHANGE: u32 = 5;
    /// `Decision.conditions`.
    pub const DECISION_CONDITIONS: u32 = 6;
    /// `BatchCheckRequest.items`.
    pub const REQUEST_ITEMS: u32 = 1;
    /// `BatchCheckRequest.point`.
    pub const REQUEST_POINT: u32 = 2;
    /// `CheckItem.list_id`.
    pub const ITEM_LIST_ID: u32 = 1;
    /// `CheckItem.country`.
    pub const ITEM_COUNTRY: u32 = 2;
}
use tag::*;

use eligibility::GRPC_PREFIX;

/// Length of a length-delimited field `tag` carrying `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A varint, its one-byte form inline (every key and almost every length
/// and value here: prost's `encode_varint` is a call and a loop per byte).
#[inline]
fn encode_varint(v: u64, buf: &mut impl BufMut) {
    if v < 0x80 {
        buf.put_u8(v as u8);
    } else {
        prost::encoding::encode_varint(v, buf);
    }
}

/// A field's key.
#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut impl BufMut) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

fn put_delimited(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.put_slice(bytes);
}

/// Length of a string or bytes field (left out when empty, as prost does).
fn bytes_len(tag: u32, b: &[u8]) -> usize {
    if b.is_empty() { 0 } else { delimited_len(tag, b.len()) }
}

fn put_bytes(tag: u32, b: &[u8], buf: &mut impl BufMut) {
    if !b.is_empty() {
        put_delimited(tag, b, buf);
    }
}

fn str_len(tag: u32, s: &str) -> usize {
    bytes_len(tag, s.as_bytes())
}

fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    put_bytes(tag, s.as_bytes(), buf);
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
fn decision_len(d: &DecisionRef<'_>, deciding: Option<&[u8]>) -> usize {
    str_len(DECISION_LIST_ID, d.list.as_str())
        + str_len(DECISION_COUNTRY, d.country.alpha2())
        + varint_len(DECISION_ELIGIBLE, u64::from(d.eligible))
        + varint_len(DECISION_REASON, d.reason.to_proto() as u64)
        + deciding.map_or(0, |b| delimited_len(DECISION_DECIDING_CHANGE, b.len()))
        + str_len(DECISION_CONDITIONS, d.conditions())
}

fn put_decision(d: &DecisionRef<'_>, deciding: Option<&[u8]>, buf: &mut Vec<u8>) {
    put_str(DECISION_LIST_ID, d.list.as_str(), buf);
    put_str(DECISION_COUNTRY, d.country.alpha2(), buf);
    put_varint(DECISION_ELIGIBLE, u64::from(d.eligible), buf);
    put_varint(DECISION_REASON, d.reason.to_proto() as u64, buf);
    if let Some(b) = deciding {
        put_delimited(DECISION_DECIDING_CHANGE, b, buf);
    }
    put_str(DECISION_CONDITIONS, d.conditions(), buf);
}

/// The gRPC frame (flag, length, message) of a `BatchCheckResponse` with
/// `header` and `decisions`.
pub fn batch_check_frame(header: &pb::ResponseHeader, decisions: &[DecisionRef<'_>]) -> Bytes {
    // Each distinct deciding change, encoded once: (revision, action) names
    // it (its changeset gives the rest).
    let mut encoded: Vec<((u64, i32), Vec<u8>)> = Vec::new();
    let mut which: Vec<Option<usize>> = Vec::with_capacity(decisions.len());
    for d in decisions {
        which.push(d.deciding.map(|e| {
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
    // Each decision's length, once: the total needs them, then each item's prefix.
    let lens: Vec<usize> = decisions.iter().enumerate().map(|(i, d)| decision_len(d, deciding(i))).collect();
    let len = delimited_len(RESPONSE_HEADER, header.len())
        + lens.iter().map(|&l| delimited_len(RESPONSE_DECISIONS, l)).sum::<usize>();
    let mut buf = Vec::with_capacity(GRPC_PREFIX + len);
    buf.push(0);
    buf.put_u32(len as u32);
    put_delimited(RESPONSE_HEADER, &header, &mut buf);
    for (i, d) in decisions.iter().enumerate() {
        encode_key(RESPONSE_DECISIONS, WireType::LengthDelimited, &mut buf);
        encode_varint(lens[i] as u64, &mut buf);
        put_decision(d, deciding(i), &mut buf);
    }
    Bytes::from(buf)
}

/// A `BatchCheckRequest` read without copying its strings: each item's
/// list id and country are slices of the request's own bytes (prost's
/// generated message allocates two strings per item; a batch has up to
/// `max_batch` items). Unknown fields are skipped, as prost does; the
/// strings' UTF-8 is checked where they are used.
#[derive(Debug, Default)]
pub(crate) struct BatchItems {
    /// Each item's bytes (one slice of the request, not a copy) with its
    /// list id's and country's places in them.
    items: Vec<(Bytes, Range<usize>, Range<usize>)>,
    /// The read point.
    pub point: Option<pb::ReadPoint>,
}

impl BatchItems {
    fn item_len(list: &[u8], country: &[u8]) -> usize {
        bytes_len(ITEM_LIST_ID, list) + bytes_len(ITEM_COUNTRY, country)
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// (list_id, country) of each item, in order, as the request's bytes.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.items.iter().map(|(b, l, c)| (&b[l.clone()], &b[c.clone()]))
    }

    /// An item's fields, read in place: one pass over its bytes, no
    /// allocation or reference count per field (a batch has up to
    /// `max_batch` items). The last of a repeated field wins, as prost
    /// merges it; unknown fields are skipped.
    fn read_item(
        item: Bytes,
        ctx: &prost::encoding::DecodeContext,
    ) -> Result<(Bytes, Range<usize>, Range<usize>), prost::DecodeError> {
        use prost::encoding::{decode_key, decode_varint, skip_field};
        let (mut list, mut country) = (0..0, 0..0);
        let mut rest: &[u8] = &item;
        while !rest.is_empty() {
            let (tag, wire_type) = decode_key(&mut rest)?;
            let ours = (tag == ITEM_LIST_ID || tag == ITEM_COUNTRY) && wire_type == WireType::LengthDelimited;
            let mut value = rest;
            let len = if ours { decode_varint(&mut value)? } else { u64::MAX };
            match len {
                len if len <= value.len() as u64 => {
                    let start = item.len() - value.len();
                    let field = start..start + len as usize;
                    rest = &value[len as usize..];
                    if tag == ITEM_LIST_ID { list = field } else { country = field }
                }
                // Another field, or one longer than what is left (prost's
                // own error says so).
                _ => skip_field(wire_type, tag, &mut rest, ctx.clone())?,
            }
        }
        Ok((item, list, country))
    }
}

impl Message for BatchItems {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        for (list, country) in self.iter() {
            encode_key(REQUEST_ITEMS, WireType::LengthDelimited, buf);
            encode_varint(Self::item_len(list, country) as u64, buf);
            put_bytes(ITEM_LIST_ID, list, buf);
            put_bytes(ITEM_COUNTRY, country, buf);
        }
        if let Some(p) = &self.point {
            prost::encoding::message::encode(REQUEST_POINT, p, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        use prost::encoding::skip_field;
        match tag {
            REQUEST_ITEMS => {
                // The item's bytes, sliced (not copied) from the request.
                let mut item = Bytes::new();
                prost::encoding::bytes::merge(wire_type, &mut item, buf, ctx.clone())?;
                self.items.push(Self::read_item(item, &ctx)?);
                Ok(())
            }
            REQUEST_POINT => {
                prost::encoding::message::merge(wire_type, self.point.get_or_insert_with(Default::default), buf, ctx)
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let items: usize = self.iter().map(|(l, c)| delimited_len(REQUEST_ITEMS, Self::item_len(l, c))).sum();
        items + self.point.as_ref().map_or(0, |p| prost::encoding::message::encoded_len(REQUEST_POINT, p))
    }

    fn clear(&mut self) {
        self.items.clear();
        self.point = None;
    }
}

#[cfg(test)]
mod tests {
    use prost_types::FileDescriptorSet;

    use super::*;

    /// The named field numbers are the descriptors' own.
    #[test]
    fn tags_are_the_protos() {
        let set = FileDescriptorSet::decode(eligibility::FILE_DESCRIPTOR_SET).unwrap();
        let number = |message: &str, field: &str| {
            set.file
                .iter()
                .flat_map(|f| &f.message_type)
                .find(|m| m.name() == message)
                .and_then(|m| m.field.iter().find(|f| f.name() == field))
                .map(|f| f.number() as u32)
                .unwrap_or_else(|| panic!("{message}.{field}"))
        };
        assert_eq!(number("BatchCheckResponse", "header"), RESPONSE_HEADER);
        assert_eq!(number("BatchCheckResponse", "decisions"), RESPONSE_DECISIONS);
        assert_eq!(number("Decision", "list_id"), DECISION_LIST_ID);
        assert_eq!(number("Decision", "country"), DECISION_COUNTRY);
        assert_eq!(number("Decision", "eligible"), DECISION_ELIGIBLE);
        assert_eq!(number("Decision", "reason"), DECISION_REASON);
        assert_eq!(number("Decision", "deciding_change"), DECISION_DECIDING_CHANGE);
        assert_eq!(number("Decision", "conditions"), DECISION_CONDITIONS);
        assert_eq!(number("BatchCheckRequest", "items"), REQUEST_ITEMS);
        assert_eq!(number("BatchCheckRequest", "point"), REQUEST_POINT);
        assert_eq!(number("CheckItem", "list_id"), ITEM_LIST_ID);
        assert_eq!(number("CheckItem", "country"), ITEM_COUNTRY);
    }

    /// Items read in place agree with the generated decoder on every shape
    /// a client may send: one-byte and longer lengths, unknown fields of
    /// each wire type inside an item, a repeated field (the last wins),
    /// and a truncated item is an error for both.
    #[test]
    fn items_read_in_place_are_the_generated_decoders() {
        let item = |fields: &[u8]| {
            let mut b = vec![0x0a, fields.len() as u8];
            b.extend_from_slice(fields);
            b
        };
        let long = "a".repeat(200);
        let mut long_item = vec![0x0a, 200, 1];
        long_item.extend_from_slice(long.as_bytes());
        long_item.extend_from_slice(&[0x12, 2, b'M', b'X']);
        let mut long_request = vec![0x0a];
        prost::encoding::encode_varint(long_item.len() as u64, &mut long_request);
        long_request.extend_from_slice(&long_item);
        let cases: Vec<Vec<u8>> = vec![
            item(b"\x0a\x05cyber\x12\x02MX"),
            item(b"\x12\x02MX\x0a\x05cyber"),
            // unknown varint, fixed64, fixed32 and bytes fields between.
            item(
                b"\x18\x96\x01\x0a\x05cyber\x21\x01\x02\x03\x04\x05\x06\x07\x08\x2d\x01\x02\x03\x04\x32\x01z\x12\x02MX",
            ),
            item(b"\x0a\x01a\x0a\x05cyber\x12\x02FR\x12\x02MX"),
            item(b""),
            long_request,
        ];
        for bytes in cases {
            let ours = BatchItems::decode(bytes.as_slice()).unwrap();
            let theirs = pb::BatchCheckRequest::decode(bytes.as_slice()).unwrap();
            let ours: Vec<(String, String)> = ours
                .iter()
                .map(|(l, c)| (String::from_utf8(l.to_vec()).unwrap(), String::from_utf8(c.to_vec()).unwrap()))
                .collect();
            let theirs: Vec<(String, String)> = theirs.items.into_iter().map(|i| (i.list_id, i.country)).collect();
            assert_eq!(ours, theirs, "{bytes:?}");
        }
        for truncated in [item(b"\x0a\x0ccyber\x12\x02MX"), item(b"\x0a"), item(b"\x21\x01\x02")] {
            assert!(BatchItems::decode(truncated.as_slice()).is_err(), "{truncated:?}");
            assert!(pb::BatchCheckRequest::decode(truncated.as_slice()).is_err(), "{truncated:?}");
        }
    }
}
