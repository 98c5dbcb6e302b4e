//! The eligibility rule itself, shared by the server and the client's
//! mirror so the two can never disagree: a list's mode and the deciding
//! change give the answer and its reason.

use serde::{Deserialize, Serialize};

use crate::{TypeError, proto::v1 as pb};

/// `TryFrom<i32>` (the wire value; UNSPECIFIED and unknown values are
/// errors) and `From<Self> for i32`, over `from_proto`/`to_proto`.
macro_rules! wire_enum {
    ($t:ty, $kind:literal, $expected:literal) => {
        impl TryFrom<i32> for $t {
            type Error = TypeError;
            fn try_from(v: i32) -> Result<Self, TypeError> {
                <$t>::from_proto(v).ok_or(TypeError::Enum { kind: $kind, value: v, expected: $expected })
            }
        }

        impl From<$t> for i32 {
            fn from(v: $t) -> i32 {
                v.to_proto()
            }
        }
    };
}

wire_enum!(ListMode, "a list mode", "LIST_MODE_ALLOWLIST or LIST_MODE_DENYLIST");
wire_enum!(EntryAction, "an entry action", "ENTRY_ACTION_ADD or ENTRY_ACTION_REMOVE");
wire_enum!(DecisionReason, "a decision reason", "a DECISION_REASON_ value other than UNSPECIFIED");

/// How a list's membership decides eligibility.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListMode {
    /// Members are eligible; all other countries are not.
    Allowlist,
    /// Members are not eligible; all other countries are.
    Denylist,
}

/// What an entry change does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryAction {
    /// Make the country a member (or update its conditions).
    Add,
    /// Make the country not a member.
    Remove,
}

/// Why a check came out as it did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionReason {
    /// Allowlist member: eligible.
    Listed,
    /// Never on the allowlist: not eligible.
    NotListed,
    /// Removed from the allowlist: not eligible.
    Removed,
    /// Denylist member: not eligible.
    Denylisted,
    /// Never on the denylist: eligible.
    NotDenylisted,
    /// Removed from the denylist: eligible.
    DenylistRemoved,
}

/// The rule: eligibility and its reason from the list's mode and the
/// action of the deciding change (`None`: no change applies).
pub fn decide(mode: ListMode, deciding: Option<EntryAction>) -> (bool, DecisionReason) {
    use DecisionReason::*;
    match (mode, deciding) {
        (ListMode::Allowlist, Some(EntryAction::Add)) => (true, Listed),
        (ListMode::Allowlist, Some(EntryAction::Remove)) => (false, Removed),
        (ListMode::Allowlist, None) => (false, NotListed),
        (ListMode::Denylist, Some(EntryAction::Add)) => (false, Denylisted),
        (ListMode::Denylist, Some(EntryAction::Remove)) => (true, DenylistRemoved),
        (ListMode::Denylist, None) => (true, NotDenylisted),
    }
}

impl ListMode {
    /// The wire value.
    pub fn to_proto(self) -> i32 {
        match self {
            ListMode::Allowlist => pb::ListMode::Allowlist as i32,
            ListMode::Denylist => pb::ListMode::Denylist as i32,
        }
    }

    /// From the wire value; `None` for UNSPECIFIED or unknown values.
    pub fn from_proto(v: i32) -> Option<Self> {
        match pb::ListMode::try_from(v) {
            Ok(pb::ListMode::Allowlist) => Some(ListMode::Allowlist),
            Ok(pb::ListMode::Denylist) => Some(ListMode::Denylist),
            _ => None,
        }
    }
}

impl EntryAction {
    /// The wire value.
    pub fn to_proto(self) -> i32 {
        match self {
            EntryAction::Add => pb::EntryAction::Add as i32,
            EntryAction::Remove => pb::EntryAction::Remove as i32,
        }
    }

    /// From the wire value; `None` for UNSPECIFIED or unknown values.
    pub fn from_proto(v: i32) -> Option<Self> {
        match pb::EntryAction::try_from(v) {
            Ok(pb::EntryAction::Add) => Some(EntryAction::Add),
            Ok(pb::EntryAction::Remove) => Some(EntryAction::Remove),
            _ => None,
        }
    }
}

impl DecisionReason {
    /// The wire value.
    pub fn to_proto(self) -> i32 {
        (match self {
            DecisionReason::Listed => pb::DecisionReason::Listed,
            DecisionReason::NotListed => pb::DecisionReason::NotListed,
            DecisionReason::Removed => pb::DecisionReason::Removed,
            DecisionReason::Denylisted => pb::DecisionReason::Denylisted,
            DecisionReason::NotDenylisted => pb::DecisionReason::NotDenylisted,
            DecisionReason::DenylistRemoved => pb::DecisionReason::DenylistRemoved,
        }) as i32
    }

    /// From the wire value; `None` for UNSPECIFIED or unknown values.
    pub fn from_proto(v: i32) -> Option<Self> {
        Some(match pb::DecisionReason::try_from(v).ok()? {
            pb::DecisionReason::Listed => DecisionReason::Listed,
            pb::DecisionReason::NotListed => DecisionReason::NotListed,
            pb::DecisionReason::Removed => DecisionReason::Removed,
            pb::DecisionReason::Denylisted => DecisionReason::Denylisted,
            pb::DecisionReason::NotDenylisted => DecisionReason::NotDenylisted,
            pb::DecisionReason::DenylistRemoved => DecisionReason::DenylistRemoved,
            pb::DecisionReason::Unspecified => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule, pinned: the server and the client's mirror both answer
    /// with [`decide`], so a change here changes both (and the end-to-end
    /// test that compares them at every revision keeps them honest).
    #[test]
    fn the_rule() {
        use DecisionReason::*;
        use EntryAction::*;
        use ListMode::*;
        let table = [
            (Allowlist, Some(Add), true, Listed),
            (Allowlist, Some(Remove), false, Removed),
            (Allowlist, None, false, NotListed),
            (Denylist, Some(Add), false, Denylisted),
            (Denylist, Some(Remove), true, DenylistRemoved),
            (Denylist, None, true, NotDenylisted),
        ];
        for (mode, action, eligible, reason) in table {
            assert_eq!(decide(mode, action), (eligible, reason), "{mode:?} {action:?}");
            assert_eq!(DecisionReason::from_proto(reason.to_proto()), Some(reason));
        }
    }
}
