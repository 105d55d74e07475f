//! Automatic approval rules on PostgreSQL: as the SQLite backend keeps them (`sqlite/rules.rs`),
//! same results and refusals.

use super::PostgresStore;
use super::deployments::group_in;
use crate::admin::Action;
use crate::ids::UpdateId;
use crate::store::rules::*;
use crate::store::{CategoryIndex, StoreError, StoreResult, now_rfc3339};
use postgres::{GenericClient, Row};
use std::collections::{HashMap, HashSet};

const RULE_COLUMNS: &str = "SELECT r.rule_id, r.name, r.enabled, r.classifications, r.products, r.group_id, g.name, r.action, r.deadline_days
     FROM approval_rules r JOIN target_groups g ON g.group_id = r.group_id";

/// A rule's row; `None` for a deadline this ferry never writes (negative), which the caller
/// reports.
fn rule_from_row(r: &Row) -> Result<(ApprovalRule, Option<i32>), postgres::Error> {
    let list = |i: usize| -> Result<Vec<String>, postgres::Error> {
        let text: String = r.try_get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let deadline: Option<i32> = r.try_get(8)?;
    let rule_id: i32 = r.try_get(0)?;
    let rule = ApprovalRule {
        rule_id: i64::from(rule_id),
        name: r.try_get(1)?,
        enabled: r.try_get(2)?,
        classifications: list(3)?,
        products: list(4)?,
        group_id: r.try_get(5)?,
        group_name: r.try_get(6)?,
        action: r.try_get(7)?,
        deadline_days: deadline.and_then(|d| u32::try_from(d).ok()),
    };
    Ok((rule, deadline.filter(|d| *d < 0)))
}

/// The categories of the catalog (newest revisions), by UpdateID: their kind and title.
fn category_index_in(client: &mut impl GenericClient) -> Result<CategoryIndex, postgres::Error> {
    let rows = client.query(
        "SELECT update_id, COALESCE(category_kind, ''), title FROM revisions WHERE update_type = 'Category' AND is_latest",
        &[],
    )?;
    let by_id = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect::<Result<HashMap<_, _>, postgres::Error>>()?;
    Ok(CategoryIndex { by_id })
}

impl PostgresStore {
    /// A rule by name (case-insensitive) or id.
    fn approval_rule(&self, name_or_id: &str) -> StoreResult<ApprovalRule> {
        crate::store::rules::find_rule(self.approval_rules()?, name_or_id)
    }

    /// Refuses titles that match no category the store holds, unless it holds none yet.
    fn check_categories(&self, rule: &NewRule<'_>) -> StoreResult<()> {
        let categories =
            category_index_in(&mut *self.connection()?).map_err(self.fail("listing categories"))?;
        if categories.by_id.is_empty() {
            return Ok(());
        }
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
        Ok(())
    }
}

impl RuleStorage for PostgresStore {
    fn approval_rules(&self) -> StoreResult<Vec<ApprovalRule>> {
        let fail = || self.fail("listing approval rules");
        let rows = self
            .connection()?
            .query(&format!("{RULE_COLUMNS} ORDER BY r.rule_id"), &[])
            .map_err(fail())?;
        let mut rules = Vec::with_capacity(rows.len());
        for row in &rows {
            let (rule, bad_deadline) = rule_from_row(row).map_err(fail())?;
            if let Some(days) = bad_deadline {
                return Err(StoreError::Database {
                    database: self.url.to_string(),
                    context: "listing approval rules".into(),
                    source: crate::store::DatabaseError {
                        message: format!(
                            "rule {} has a negative deadline ({days} days)",
                            rule.rule_id
                        ),
                        busy: false,
                    },
                });
            }
            rules.push(rule);
        }
        Ok(rules)
    }

    fn add_approval_rule(&mut self, rule: &NewRule<'_>) -> StoreResult<ApprovalRule> {
        let name = crate::store::display_name(rule.name, "rule name")?;
        if rule.action == Action::Block {
            return Err(StoreError::Refused(format!(
                "a rule's action is Install or Uninstall, not {}",
                rule.action
            )));
        }
        let deadline_days = match rule.deadline_days.map(i32::try_from) {
            Some(Ok(days)) if days <= 3650 => Some(days),
            None => None,
            Some(_) => {
                return Err(StoreError::Refused(
                    "a rule's deadline is at most 3650 days after approval".into(),
                ));
            }
        };
        let group = group_in(&mut *self.connection()?, rule.group)
            .map_err(self.fail("reading a group"))?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no computer group {:?} (see `ferry groups list`)",
                    rule.group
                ))
            })?;
        self.check_categories(rule)?;
        let exists = self
            .connection()?
            .query_opt("SELECT 1 FROM approval_rules WHERE lower(name) = lower($1)", &[&name])
            .map_err(self.fail(format!("adding approval rule {name:?}")))?
            .is_some();
        if exists {
            return Err(StoreError::Refused(format!("a rule named {name:?} exists already")));
        }
        let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
        // Checked first, as an insert that conflicts takes a number from the identity all the
        // same; the unique index on lower(name) still refuses a second rule of the name that
        // another front end adds at the same moment.
        let added = self
            .connection()?
            .query_opt(
                "INSERT INTO approval_rules (name, classifications, products, group_id, action, deadline_days, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING rule_id, enabled",
                &[
                    &name,
                    &json(rule.classifications),
                    &json(rule.products),
                    &group.group_id,
                    &rule.action,
                    &deadline_days,
                    &now_rfc3339(),
                ],
            )
            .map_err(self.fail(format!("adding approval rule {name:?}")))?;
        let Some(row) = added else {
            return Err(StoreError::Refused(format!("a rule named {name:?} exists already")));
        };
        let rule_id: i32 = row.get(0);
        Ok(ApprovalRule {
            rule_id: i64::from(rule_id),
            name: name.to_string(),
            enabled: row.get(1),
            classifications: rule.classifications.to_vec(),
            products: rule.products.to_vec(),
            group_id: group.group_id,
            group_name: group.name,
            action: rule.action,
            deadline_days: rule.deadline_days,
        })
    }

    fn remove_approval_rule(&mut self, name_or_id: &str) -> StoreResult<ApprovalRule> {
        let rule = self.approval_rule(name_or_id)?;
        self.connection()?
            .execute("DELETE FROM approval_rules WHERE rule_id = $1", &[&(rule.rule_id as i32)])
            .map_err(self.fail(format!("removing rule {:?}", rule.name)))?;
        Ok(rule)
    }

    fn set_approval_rule_enabled(
        &mut self,
        name_or_id: &str,
        enabled: bool,
    ) -> StoreResult<ApprovalRule> {
        let rule = self.approval_rule(name_or_id)?;
        self.connection()?
            .execute(
                "UPDATE approval_rules SET enabled = $2 WHERE rule_id = $1",
                &[&(rule.rule_id as i32), &enabled],
            )
            .map_err(self.fail(format!("changing rule {:?}", rule.name)))?;
        Ok(ApprovalRule { enabled, ..rule })
    }

    fn prerequisite_options(&self, update_id: &UpdateId) -> StoreResult<Vec<PrerequisiteOption>> {
        let fail = || self.fail(format!("reading the prerequisites of {update_id}"));
        let rows = self
            .connection()?
            .query(
                "SELECT p.clause, p.update_id, o.update_type, o.creation_date, o.publication_state = 'Expired'
                 FROM prerequisites p
                 JOIN revisions r ON r.revision_id = p.revision_id
                 LEFT JOIN revisions o ON o.update_id = p.update_id AND o.is_latest
                 WHERE r.update_id = $1 AND r.is_latest AND NOT p.is_category
                 ORDER BY p.clause, p.update_id COLLATE \"C\"",
                &[update_id],
            )
            .map_err(fail())?;
        rows.iter()
            .map(|r| {
                let clause: i32 = r.try_get(0)?;
                Ok(PrerequisiteOption {
                    clause: i64::from(clause),
                    update_id: r.try_get(1)?,
                    update_type: r.try_get(2)?,
                    created: r.try_get(3)?,
                    expired: r.try_get::<_, Option<bool>>(4)?.unwrap_or(false),
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(fail())
    }

    fn superseded_update_ids(&self) -> StoreResult<HashSet<String>> {
        let fail = || self.fail("listing superseded updates");
        let rows = self
            .connection()?
            .query(
                "SELECT DISTINCT s.superseded_update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
                 WHERE r.is_latest AND EXISTS (SELECT 1 FROM revisions o WHERE o.update_id = s.superseded_update_id)",
                &[],
            )
            .map_err(fail())?;
        rows.iter().map(|r| r.try_get(0)).collect::<Result<_, postgres::Error>>().map_err(fail())
    }
}
