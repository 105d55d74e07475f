//! Automatic approval rules (WSUS's "Automatic Approvals"): classifications × products → a group,
//! with an action and an optional deadline, applied after every import and on demand.
//!
//! Invariant: a rule only adds approvals. It never approves a declined, expired or superseded
//! update, never touches an update that already has an approval for its group (an
//! administrator's decision wins), and records itself as the approval's author.

use crate::admin::Action;
use crate::ids::UpdateId;
use crate::store::TargetGroup;
use crate::store::prelude::*;
use crate::store::rules::*;
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;

/// The prerequisite clauses of an update that name updates, each option with its newest
/// revision. (`+p.is_category` keeps SQLite from starting at `prerequisites_categories`, which
/// walks every prerequisite of the catalog instead of one update's.)
pub(crate) const PREREQUISITE_OPTIONS: &str =
    "SELECT p.clause, p.update_id, o.update_type, o.creation_date, o.publication_state = 'Expired'
     FROM prerequisites p
     JOIN revisions r ON r.revision_id = p.revision_id
     LEFT JOIN revisions o ON o.update_id = p.update_id AND o.is_latest = 1
     WHERE r.update_id = ?1 AND r.is_latest = 1 AND +p.is_category = 0 ORDER BY p.clause";

impl SqliteStore {
    /// A rule by name (case-insensitive) or id.
    fn approval_rule(&self, name_or_id: &str) -> StoreResult<ApprovalRule> {
        crate::store::rules::find_rule(self.approval_rules()?, name_or_id)
    }
}

impl RuleStorage for SqliteStore {
    fn approval_rules(&self) -> StoreResult<Vec<ApprovalRule>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.rule_id, r.name, r.enabled, r.classifications, r.products, r.group_id, g.name, r.action, r.deadline_days
                 FROM approval_rules r JOIN target_groups g ON g.group_id = r.group_id ORDER BY r.rule_id",
            )
            .map_err(|e| self.err("listing approval rules", e))?;
        let rows = stmt
            .query_map([], |r| {
                let list = |i: usize| -> rusqlite::Result<Vec<String>> {
                    let text: String = r.get(i)?;
                    Ok(serde_json::from_str(&text).unwrap_or_default())
                };
                Ok(ApprovalRule {
                    rule_id: r.get(0)?,
                    name: r.get(1)?,
                    enabled: r.get(2)?,
                    classifications: list(3)?,
                    products: list(4)?,
                    group_id: r.get(5)?,
                    group_name: r.get(6)?,
                    action: r.get(7)?,
                    deadline_days: r.get(8)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing approval rules", e))?;
        Ok(rows)
    }

    fn add_approval_rule(&mut self, rule: &NewRule<'_>) -> StoreResult<ApprovalRule> {
        let name = crate::store::display_name(rule.name, "rule name")?;
        if rule.action == Action::Block {
            return Err(StoreError::Refused(format!(
                "a rule's action is Install or Uninstall, not {}",
                rule.action
            )));
        }
        if rule.deadline_days.is_some_and(|d| d > 3650) {
            return Err(StoreError::Refused(
                "a rule's deadline is at most 3650 days after approval".into(),
            ));
        }
        let group: TargetGroup = self.group(rule.group)?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no computer group {:?} (see `ferry groups list`)",
                rule.group
            ))
        })?;
        let categories = self.category_index()?;
        if !categories.by_id.is_empty() {
            for (kind, list) in
                [("UpdateClassification", rule.classifications), ("Product", rule.products)]
            {
                for wanted in list {
                    if categories.matching(kind, wanted).is_empty() {
                        let what = if kind == "Product" { "product" } else { "classification" };
                        return Err(StoreError::NotFound(format!(
                            "no {what} matches {wanted:?} in this store (see `ferry updates list --all`); nothing was changed"
                        )));
                    }
                }
            }
        }
        let exists = self
            .conn
            .query_row(
                "SELECT 1 FROM approval_rules WHERE name = ?1 COLLATE NOCASE",
                [name],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.err("adding an approval rule", e))?
            .is_some();
        if exists {
            return Err(StoreError::Refused(format!("a rule named {name:?} exists already")));
        }
        let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
        self.conn
            .execute(
                "INSERT INTO approval_rules (name, classifications, products, group_id, action, deadline_days, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    name,
                    json(rule.classifications),
                    json(rule.products),
                    group.group_id,
                    rule.action,
                    rule.deadline_days,
                    now_rfc3339()
                ],
            )
            .map_err(|e| self.err("adding an approval rule", e))?;
        let id = self.conn.last_insert_rowid();
        Ok(self
            .approval_rules()?
            .into_iter()
            .find(|r| r.rule_id == id)
            .expect("the rule was just added"))
    }

    fn remove_approval_rule(&mut self, name_or_id: &str) -> StoreResult<ApprovalRule> {
        let rule = self.approval_rule(name_or_id)?;
        self.conn
            .execute("DELETE FROM approval_rules WHERE rule_id = ?1", [rule.rule_id])
            .map_err(|e| self.err("removing a rule", e))?;
        Ok(rule)
    }

    fn set_approval_rule_enabled(
        &mut self,
        name_or_id: &str,
        enabled: bool,
    ) -> StoreResult<ApprovalRule> {
        let rule = self.approval_rule(name_or_id)?;
        self.conn
            .execute(
                "UPDATE approval_rules SET enabled = ?2 WHERE rule_id = ?1",
                params![rule.rule_id, enabled],
            )
            .map_err(|e| self.err("changing a rule", e))?;
        Ok(ApprovalRule { enabled, ..rule })
    }

    fn prerequisite_options(&self, update_id: &UpdateId) -> StoreResult<Vec<PrerequisiteOption>> {
        let what = || format!("reading the prerequisites of {update_id}");
        let mut stmt =
            self.conn.prepare_cached(PREREQUISITE_OPTIONS).map_err(|e| self.err(what(), e))?;
        stmt.query_map([update_id], |r| {
            Ok(PrerequisiteOption {
                clause: r.get(0)?,
                update_id: r.get(1)?,
                update_type: r.get(2)?,
                created: r.get(3)?,
                expired: r.get::<_, Option<bool>>(4)?.unwrap_or(false),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(what(), e))
    }

    fn superseded_update_ids(&self) -> StoreResult<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT s.superseded_update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
                 WHERE r.is_latest = 1 AND EXISTS (SELECT 1 FROM revisions o WHERE o.update_id = s.superseded_update_id)",
            )
            .map_err(|e| self.err("listing superseded updates", e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing superseded updates", e))
    }
}
