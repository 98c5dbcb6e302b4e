//! What only gRPC needs: the domain error as a status (its code and
//! standard error details from [`Error::code`], [`Error::violation`] and
//! [`Error::info`]), the caller's deadline from `grpc-timeout`, and gRPC's
//! message framing. The message conversions both transports share are
//! [`crate::wire`]'s (re-exported here).

use eligibility::{error_info, proto::v1 as pb};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use crate::wire::*;
use crate::{error::Error, watch::Event};

/// An `INVALID_ARGUMENT` status with a standard `BadRequest` field
/// violation naming the field.
pub fn invalid(field: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid {field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// A status with a machine-readable `ErrorInfo` (reason and metadata).
fn info(code: Code, msg: String, reason: &str, metadata: &[(&str, String)]) -> Status {
    let md: std::collections::HashMap<String, String> =
        metadata.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Status::with_error_details(code, msg, ErrorDetails::with_error_info(reason, error_info::DOMAIN, md))
}

/// `RESOURCE_EXHAUSTED` for a watch the slow-consumer budget cut, with
/// `ErrorInfo` reason `SLOW_CONSUMER` and, when known, the revision to
/// resume after.
pub fn slow_consumer(msg: String, resume_after: Option<u64>) -> Status {
    let md: Vec<(&str, String)> =
        resume_after.map(|r| (error_info::key::RESUME_AFTER_REVISION, r.to_string())).into_iter().collect();
    info(Code::ResourceExhausted, msg, error_info::reason::SLOW_CONSUMER, &md)
}

/// A domain error as a status: its code and message, with a
/// `BadRequest` field violation or an `ErrorInfo` where the error has one.
pub fn to_status(e: Error) -> Status {
    let msg = e.to_string();
    if e.is_internal() {
        tracing::error!(error = %msg, "internal error");
    }
    if let Some((field, message)) = e.violation() {
        return invalid(field, message);
    }
    match e.info() {
        Some((reason, metadata)) => info(e.code(), msg, reason, &metadata),
        None => Status::new(e.code(), msg),
    }
}

/// A watch event as a gRPC message frame (the 5-byte length prefix and the
/// encoded `WatchEvent`), ready for the wire. A changeset is framed once
/// and the bytes are shared by every watcher that sends the same one.
pub fn watch_event_frame(e: &Event, store_id: &str) -> bytes::Bytes {
    match e {
        Event::Changeset(p) => {
            p.wire(|cs| grpc_frame(&pb::WatchEvent { event: Some(pb::watch_event::Event::Changeset(changeset(cs))) }))
        }
        other => grpc_frame(&watch_event(other, store_id)),
    }
}

/// `message` in gRPC's length-prefixed framing (uncompressed).
pub fn grpc_frame(message: &impl prost::Message) -> bytes::Bytes {
    let len = message.encoded_len();
    let mut buf = Vec::with_capacity(eligibility::GRPC_PREFIX + len);
    buf.push(0);
    // A message over 4 GiB cannot be framed; ours are bounded far below
    // by the request limits and list sizes.
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    message.encode_raw(&mut buf);
    buf.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violation() {
        let s = invalid("items[2].country", "\"ZZ\" is not a country");
        assert_eq!(s.code(), Code::InvalidArgument);
        let br = s.get_details_bad_request().expect("bad request details");
        assert_eq!(br.field_violations[0].field, "items[2].country");
    }
}
