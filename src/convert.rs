//! Conversions between wire messages and domain types that both the server
//! and the client need.

use crate::{
    Consistency, Point, Revision, Timestamp, TypeError,
    proto::v1::{ReadPoint, read_point},
};

/// Converts an optional wire `ReadPoint` into a [`Point`]; the error names
/// the bad timestamp.
pub fn point_from_proto(p: Option<&ReadPoint>) -> Result<Point, TypeError> {
    let Some(p) = p else {
        return Ok(Point::default());
    };
    let as_of = p.as_of.as_ref().map(Timestamp::try_from).transpose()?;
    let consistency = match p.consistency {
        None => Consistency::Latest,
        Some(read_point::Consistency::AtRevision(r)) => Consistency::AtRevision(Revision(r)),
        Some(read_point::Consistency::MinRevision(r)) => Consistency::MinRevision(Revision(r)),
    };
    Ok(Point { as_of, consistency })
}

/// Converts a [`Point`] into the wire `ReadPoint`.
pub fn point_to_proto(p: &Point) -> ReadPoint {
    ReadPoint {
        as_of: p.as_of.map(Into::into),
        consistency: match p.consistency {
            Consistency::Latest => None,
            Consistency::AtRevision(r) => Some(read_point::Consistency::AtRevision(r.0)),
            Consistency::MinRevision(r) => Some(read_point::Consistency::MinRevision(r.0)),
        },
    }
}
