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
    str_len(1, d.list.as_str())
        + str_len(2, d.country.alpha2())
        + varint_len(3, u64::from(d.eligible))
        + varint_len(4, d.reason.to_proto() as u64)
        + deciding.map_or(0, |b| delimited_len(5, b.len()))
        + str_len(6, d.conditions())
}

fn put_decision(d: &DecisionRef<'_>, deciding: Option<&[u8]>, buf: &mut Vec<u8>) {
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
    let len = delimited_len(1, header.len()) + lens.iter().map(|&l| delimited_len(2, l)).sum::<usize>();
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    buf.put_u32(len as u32);
    put_delimited(1, &header, &mut buf);
    for (i, d) in decisions.iter().enumerate() {
        encode_key(2, WireType::LengthDelimited, &mut buf);
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
        bytes_len(1, list) + bytes_len(2, country)
    }
}

impl Message for BatchItems {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        for (list, country) in &self.items {
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(Self::item_len(list, country) as u64, buf);
            put_bytes(1, list, buf);
            put_bytes(2, country, buf);
        }
        if let Some(p) = &self.point {
            prost::encoding::message::encode(2, p, buf);
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
            1 => {
                // The item's bytes, sliced (not copied) from the request.
                let mut item = Bytes::new();
                pbytes::merge(wire_type, &mut item, buf, ctx.clone())?;
                let (mut list, mut country) = (Bytes::new(), Bytes::new());
                while bytes::Buf::has_remaining(&item) {
                    let (tag, wire_type) = decode_key(&mut item)?;
                    match tag {
                        1 => pbytes::merge(wire_type, &mut list, &mut item, ctx.clone())?,
                        2 => pbytes::merge(wire_type, &mut country, &mut item, ctx.clone())?,
                        _ => skip_field(wire_type, tag, &mut item, ctx.clone())?,
                    }
                }
                self.items.push((list, country));
                Ok(())
            }
            2 => prost::encoding::message::merge(wire_type, self.point.get_or_insert_with(Default::default), buf, ctx),
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let items: usize = self.items.iter().map(|(l, c)| delimited_len(1, Self::item_len(l, c))).sum();
        items + self.point.as_ref().map_or(0, |p| prost::encoding::message::encoded_len(2, p))
    }

    fn clear(&mut self) {
        self.items.clear();
        self.point = None;
    }
}
