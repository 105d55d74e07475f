//! Automatic approval rules. (The SQL that reads and writes them is in `sqlite/rules.rs`.)

use super::*;
use crate::admin::Action;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    pub rule_id: i64,
    pub name: String,
    pub enabled: bool,
    /// Classification titles (as `updates list --classification` takes them) or GUIDs; empty: any.
    pub classifications: Vec<String>,
    /// Product titles (substring) or GUIDs; empty: any.
    pub products: Vec<String>,
    pub group_id: crate::ids::GroupId,
    pub group_name: String,
    pub action: Action,
    pub deadline_days: Option<u32>,
}

/// One option of a prerequisite clause: an update, with its newest revision's type, date and
/// state (none when the store does not hold it).
#[derive(Debug, Clone)]
pub struct PrerequisiteOption {
    pub clause: i64,
    pub update_id: crate::ids::UpdateId,
    pub update_type: Option<String>,
    pub created: Option<String>,
    pub expired: bool,
}

/// A new rule, as an administrator states it.
#[derive(Debug, Clone)]
pub struct NewRule<'a> {
    pub name: &'a str,
    pub classifications: &'a [String],
    pub products: &'a [String],
    pub group: &'a str,
    pub action: Action,
    pub deadline_days: Option<u32>,
}

impl NewRule<'_> {
    /// The name a rule gets when its author gives none: `Security Updates / Windows 11 -> Pilot`.
    pub fn default_name(classifications: &[String], products: &[String], group: &str) -> String {
        let part = |v: &[String]| if v.is_empty() { "any".to_string() } else { v.join("+") };
        format!("{} / {} -> {group}", part(classifications), part(products))
    }
}

/// Automatic approval rules, and the prerequisites an update needs.
pub trait RuleStorage {
    fn approval_rules(&self) -> StoreResult<Vec<ApprovalRule>>;

    /// Adds a rule. Titles that match no category the store holds are refused (a typo would
    /// make a rule that never fires), unless the store holds no categories yet.
    fn add_approval_rule(&mut self, rule: &NewRule<'_>) -> StoreResult<ApprovalRule>;

    /// Removes a rule by name or id; approvals it made stay.
    fn remove_approval_rule(&mut self, name_or_id: &str) -> StoreResult<ApprovalRule>;

    fn set_approval_rule_enabled(
        &mut self,
        name_or_id: &str,
        enabled: bool,
    ) -> StoreResult<ApprovalRule>;

    /// The options of an update's prerequisite clauses that name updates (not categories),
    /// each with its newest revision, in clause order.
    fn prerequisite_options(
        &self,
        update_id: &crate::ids::UpdateId,
    ) -> StoreResult<Vec<PrerequisiteOption>>;

    /// UpdateIDs that a newest revision in the catalog supersedes.
    fn superseded_update_ids(&self) -> StoreResult<HashSet<String>>;
}

/// A rule by name (case-insensitive) or id, among `rules`.
pub(crate) fn find_rule(rules: Vec<ApprovalRule>, name_or_id: &str) -> StoreResult<ApprovalRule> {
    rules
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case(name_or_id) || r.rule_id.to_string() == name_or_id)
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "no approval rule {name_or_id:?} (see `ferry rules list`)"
            ))
        })
}
