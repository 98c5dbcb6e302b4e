//! Conversions between wire messages and domain types that both the server
//! and the client need.

use crate::{
    Consistency, Point, Revision, Timestamp, TypeError,
    proto::v1::{ReadPoint, read_point},
};

impl TryFrom<&ReadPoint> for Point {
    type Error = TypeError;

    /// The error names the bad timestamp.
    fn try_from(p: &ReadPoint) -> Result<Point, TypeError> {
        let as_of = p.as_of.as_ref().map(Timestamp::try_from).transpose()?;
        let consistency = match p.consistency {
            None => Consistency::Latest,
            Some(read_point::Consistency::AtRevision(r)) => Consistency::AtRevision(Revision(r)),
            Some(read_point::Consistency::MinRevision(r)) => Consistency::MinRevision(Revision(r)),
        };
        Ok(Point { as_of, consistency })
    }
}

impl From<&Point> for ReadPoint {
    fn from(p: &Point) -> ReadPoint {
        ReadPoint {
            as_of: p.as_of.map(Into::into),
            consistency: match p.consistency {
                Consistency::Latest => None,
                Consistency::AtRevision(r) => Some(read_point::Consistency::AtRevision(r.0)),
                Consistency::MinRevision(r) => Some(read_point::Consistency::MinRevision(r.0)),
            },
        }
    }
}

/// Converts an optional wire `ReadPoint` into a [`Point`] (absent: the
/// latest, now); the error names the bad timestamp.
pub fn point_from_proto(p: Option<&ReadPoint>) -> Result<Point, TypeError> {
    p.map(Point::try_from).unwrap_or(Ok(Point::default()))
}

/// Converts a [`Point`] into the wire `ReadPoint`.
pub fn point_to_proto(p: &Point) -> ReadPoint {
    ReadPoint::from(p)
}
