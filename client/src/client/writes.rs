//! The write calls.

use eligibility::{Country, ListId, Timestamp, proto::v1 as pb};

use super::Client;
use crate::{
    error::Result,
    types::{self, *},
};

impl Client {
    /// Creates a list.
    pub async fn create_list(&self, list: &NewList, opts: &WriteOptions) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .create_list(pb::CreateListRequest {
                list: Some(pb::List {
                    id: list.id.to_string(),
                    title: list.title.clone(),
                    description: list.description.clone(),
                    authority: list.authority.clone(),
                    mode: list.mode.to_proto(),
                    ..Default::default()
                }),
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Updates a list's metadata; `None` fields are kept.
    pub async fn update_list(
        &self,
        list: &ListId,
        title: Option<String>,
        description: Option<String>,
        authority: Option<String>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .update_list(pb::UpdateListRequest {
                list_id: list.to_string(),
                title,
                description,
                authority,
                options: Some(opts.to_proto()),
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Records one changeset of entry changes, effective at `effective_at`
    /// (default: commit time).
    pub async fn apply(
        &self,
        changes: &[EntryChange],
        effective_at: Option<Timestamp>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .apply(pb::ApplyRequest {
                changes: changes
                    .iter()
                    .map(|c| pb::EntryChange {
                        list_id: c.list.to_string(),
                        country: c.country.to_string(),
                        action: c.action.to_proto(),
                        conditions: c.conditions.clone(),
                    })
                    .collect(),
                effective_at: effective_at.map(Into::into),
                options: Some(opts.to_proto()),
                validate_only: opts.validate_only,
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }

    /// Makes `list`'s membership exactly `members` (country, conditions);
    /// the server records the needed adds and removes as one changeset.
    pub async fn replace_members(
        &self,
        list: &ListId,
        members: &[(Country, String)],
        effective_at: Option<Timestamp>,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome> {
        let r = self
            .admin
            .clone()
            .replace_members(pb::ReplaceMembersRequest {
                list_id: list.to_string(),
                members: members
                    .iter()
                    .map(|(c, cond)| pb::Member { country: c.to_string(), conditions: cond.clone() })
                    .collect(),
                effective_at: effective_at.map(Into::into),
                options: Some(opts.to_proto()),
                validate_only: opts.validate_only,
            })
            .await?
            .into_inner();
        types::write_outcome(r)
    }
}
