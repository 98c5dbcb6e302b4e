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
    /// (list_id, country) of each item, in order.
    pub items: Vec<(Bytes, Bytes)>,
    /// The read point.
    pub point: Option<pb::ReadPoint>,
}

impl BatchItems {
    fn item_len(list: &[u8], country: &[u8]) -> usize {
        bytes_len(ITEM_LIST_ID, list) + bytes_len(ITEM_COUNTRY, country)
    }
}

impl Message for BatchItems {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        for (list, country) in &self.items {
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
        use prost::encoding::{bytes as pbytes, decode_key, skip_field};
        match tag {
            REQUEST_ITEMS => {
                // The item's bytes, sliced (not copied) from the request.
                let mut item = Bytes::new();
                pbytes::merge(wire_type, &mut item, buf, ctx.clone())?;
                let (mut list, mut country) = (Bytes::new(), Bytes::new());
                while bytes::Buf::has_remaining(&item) {
                    let (tag, wire_type) = decode_key(&mut item)?;
                    match tag {
                        ITEM_LIST_ID => pbytes::merge(wire_type, &mut list, &mut item, ctx.clone())?,
                        ITEM_COUNTRY => pbytes::merge(wire_type, &mut country, &mut item, ctx.clone())?,
                        _ => skip_field(wire_type, tag, &mut item, ctx.clone())?,
                    }
                }
                self.items.push((list, country));
                Ok(())
            }
            REQUEST_POINT => {
                prost::encoding::message::merge(wire_type, self.point.get_or_insert_with(Default::default), buf, ctx)
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let items: usize = self.items.iter().map(|(l, c)| delimited_len(REQUEST_ITEMS, Self::item_len(l, c))).sum();
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
}
