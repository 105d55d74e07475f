//! Automatic approval rules at work (WSUS's "Automatic Approvals"): classifications × products
//! → a group, applied after every import and on demand. The rules themselves are rows
//! (`store::ApprovalRule`).
//!
//! Invariant: a rule only adds approvals. It never approves a declined, expired or superseded
//! update, never touches an update that already has an approval for its group (an
//! administrator's decision wins), and records itself as the approval's author.

use super::{AdminResult, AdminService};
use crate::ids::UpdateId;
use crate::store::{ApprovalRule, ApprovalState, NewRule, UpdateFilter};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// What one rule approved in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    pub group: String,
    pub approved: Vec<UpdateId>,
}

impl AdminService<'_> {
    /// Runs every enabled rule over the catalog. Each rule's approvals are one transaction.
    pub fn apply_approval_rules(&mut self) -> AdminResult<Vec<RuleOutcome>> {
        let rules: Vec<ApprovalRule> =
            self.store.approval_rules()?.into_iter().filter(|r| r.enabled).collect();
        let mut outcomes = Vec::with_capacity(rules.len());
        for rule in rules {
            let wanted = self.wanted_by(&rule)?;
            if !wanted.is_empty() {
                let deadline = rule.deadline_days.map(|d| {
                    (chrono::Utc::now() + chrono::Duration::days(d.into()))
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                });
                let author = format!("rule: {}", rule.name);
                self.approve_ids(
                    &wanted,
                    &rule.group_id,
                    rule.action,
                    deadline.as_deref(),
                    Some(&author),
                )?;
            }
            outcomes.push(RuleOutcome {
                rule: rule.name,
                group: rule.group_name,
                approved: wanted,
            });
        }
        Ok(outcomes)
    }

    /// The updates a rule approves now: in its classifications and products, not declined,
    /// expired or superseded, and without an approval for its group.
    fn wanted_by(&self, rule: &ApprovalRule) -> AdminResult<Vec<UpdateId>> {
        let already: HashSet<UpdateId> = self
            .store
            .approvals()?
            .into_iter()
            .filter(|a| a.group_id == rule.group_id)
            .map(|a| a.update_id)
            .collect();
        let any = vec![String::new()];
        let classifications =
            if rule.classifications.is_empty() { &any } else { &rule.classifications };
        let products = if rule.products.is_empty() { &any } else { &rule.products };
        let mut wanted = BTreeSet::new();
        for c in classifications {
            for p in products {
                let filter = UpdateFilter {
                    classification: (!c.is_empty()).then(|| c.clone()),
                    product: (!p.is_empty()).then(|| p.clone()),
                    approval: Some(ApprovalState::AnyExceptDeclined),
                    ..Default::default()
                };
                for u in self.store.list_updates(&filter)? {
                    let expired = u.is_expired();
                    if !expired && !u.superseded && !already.contains(u.update_id.as_str()) {
                        wanted.insert(u.update_id);
                    }
                }
            }
        }
        Ok(wanted.into_iter().collect())
    }
}

/// A new automatic approval rule as an administrator states it.
#[derive(Debug, Clone)]
pub struct NewRuleRequest<'a> {
    /// A name; by default one made of what the rule selects.
    pub name: Option<&'a str>,
    pub classifications: &'a [String],
    pub products: &'a [String],
    pub group: &'a str,
    pub action: super::Action,
    pub deadline_days: Option<u32>,
}

impl AdminService<'_> {
    pub fn add_rule(&mut self, request: &NewRuleRequest<'_>) -> AdminResult<ApprovalRule> {
        let name = request.name.map(str::to_string).unwrap_or_else(|| {
            NewRule::default_name(request.classifications, request.products, request.group)
        });
        Ok(self.store.add_approval_rule(&NewRule {
            name: &name,
            classifications: request.classifications,
            products: request.products,
            group: request.group,
            action: request.action,
            deadline_days: request.deadline_days,
        })?)
    }

    pub fn set_rule_enabled(
        &mut self,
        name_or_id: &str,
        enabled: bool,
    ) -> AdminResult<ApprovalRule> {
        Ok(self.store.set_approval_rule_enabled(name_or_id, enabled)?)
    }

    pub fn remove_rule(&mut self, name_or_id: &str) -> AdminResult<ApprovalRule> {
        Ok(self.store.remove_approval_rule(name_or_id)?)
    }
}
