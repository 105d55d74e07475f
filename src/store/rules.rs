//! Automatic approval rules. (The SQL that reads and writes them is in `sqlite/rules.rs`.)

use crate::admin::Action;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    pub rule_id: i64,
    pub name: String,
    pub enabled: bool,
    /// Classification titles (as `updates list --classification` takes them) or GUIDs; empty: any.
    pub classifications: Vec<String>,
    /// Product titles (substring) or GUIDs; empty: any.
    pub products: Vec<String>,
    pub group_id: String,
    pub group_name: String,
    pub action: Action,
    pub deadline_days: Option<u32>,
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
