//! Decisions: whether a list's items may go to a country at a point in
//! time, and the change that decided it, owned or borrowed from the
//! snapshot.

use eligibility::{Country, ListId, Revision, Timestamp};

pub use eligibility::DecisionReason;

use super::{Event, ListState};
use crate::model::{EntryAction, ListMode};

/// The answer to one check.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The list.
    pub list: ListId,
    /// The country.
    pub country: Country,
    /// May items of the list go to the country?
    pub eligible: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The deciding change, if any change applies.
    pub deciding: Option<Event>,
}

impl Decision {
    /// Conditions attached to the membership ("" when none or not a member).
    pub fn conditions(&self) -> &str {
        membership_conditions(self.deciding.as_ref())
    }
}

/// A decision borrowed from the snapshot (see [`ListState::decide`]): the
/// same fields as [`Decision`], with no reference count touched.
#[derive(Clone, Copy, Debug)]
pub struct DecisionRef<'a> {
    /// The list.
    pub list: &'a ListId,
    /// The country.
    pub country: Country,
    /// May items of the list go to the country?
    pub eligible: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The deciding change, if any change applies.
    pub deciding: Option<&'a Event>,
}

impl DecisionRef<'_> {
    /// Conditions attached to the membership ("" when none or not a member).
    pub fn conditions(&self) -> &str {
        membership_conditions(self.deciding)
    }

    /// The same decision, owned.
    pub fn to_decision(&self) -> Decision {
        Decision {
            list: self.list.clone(),
            country: self.country,
            eligible: self.eligible,
            reason: self.reason,
            deciding: self.deciding.cloned(),
        }
    }
}

/// The conditions of a membership decided by `deciding` ("" when none, or
/// when the deciding change is not an add).
fn membership_conditions(deciding: Option<&Event>) -> &str {
    match deciding {
        Some(e) if e.action == EntryAction::Add => e.conditions(),
        _ => "",
    }
}

impl ListState {
    /// Decides `country` on this list at (as_of, at), the list being in
    /// `mode` at `at` (a caller deciding many countries looks it up once).
    pub fn decide(&self, mode: ListMode, country: Country, as_of: Timestamp, at: Revision) -> DecisionRef<'_> {
        let deciding = self.deciding(country, as_of, at);
        let (eligible, reason) = eligibility::decide(mode, deciding.map(|e| e.action));
        DecisionRef { list: &self.id, country, eligible, reason, deciding }
    }
}
