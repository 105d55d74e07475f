//! A bundle's approval policy, applied on the isolated side (`ferry import
//! --apply-approvals`): the rules, approvals and declines the connected side decided, through
//! the same rules as any administrator's change. The policy's format is the manifest's
//! (`bundle/approvals.rs`).

use super::{Action, AdminResult, AdminService, ErrorKind};
use crate::bundle::approvals::ApprovalPolicy;
use crate::store::{NewRule, Store, StoreError, StoreResult};
use serde::Serialize;

/// What applying a policy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyOutcome {
    pub groups_created: Vec<String>,
    pub rules_added: Vec<String>,
    pub approved: usize,
    pub declined: usize,
    pub warnings: Vec<String>,
}

/// The id of a group the policy names, made under All Computers when the store lacks it.
fn ensure_group(
    store: &mut Store,
    name: &str,
    out: &mut PolicyOutcome,
) -> StoreResult<crate::ids::GroupId> {
    let name = name.trim();
    if let Some(g) = store.group(name)? {
        return Ok(g.group_id);
    }
    let name = crate::store::GroupName::parse(name)?;
    let g = super::groups::create_group(store, &name, None).map_err(|e| e.into_store_error())?;
    out.groups_created.push(g.name.clone());
    Ok(g.group_id)
}

impl AdminService<'_> {
    /// Applies a bundle's approval policy (after its import committed): rules named after the
    /// channel, approvals and declines. What cannot apply is skipped with a warning.
    pub fn apply_policy(
        &mut self,
        policy: &ApprovalPolicy,
        channel: &str,
    ) -> AdminResult<PolicyOutcome> {
        let mut out = PolicyOutcome::default();
        self.policy_rules(policy, channel, &mut out)?;
        self.policy_approvals(policy, channel, &mut out)?;
        self.policy_declines(policy, channel, &mut out)?;
        Ok(out)
    }

    fn policy_rules(
        &mut self,
        policy: &ApprovalPolicy,
        channel: &str,
        out: &mut PolicyOutcome,
    ) -> AdminResult<()> {
        let store = &mut *self.store;
        let existing: std::collections::HashSet<String> =
            store.approval_rules()?.into_iter().map(|r| r.name.to_lowercase()).collect();
        for rule in &policy.rules {
            let name = format!(
                "{channel}: {}",
                rule.name.clone().unwrap_or_else(|| NewRule::default_name(
                    &rule.classifications,
                    &rule.products,
                    &rule.group
                ))
            );
            if existing.contains(&name.to_lowercase()) {
                continue;
            }
            let action = match Action::approvable(rule.action.as_deref()) {
                Ok(a) => a,
                Err(e) => {
                    out.warnings.push(format!("rule {name:?}: {e}; skipped"));
                    continue;
                }
            };
            if let Err(e) = ensure_group(store, &rule.group, out) {
                out.warnings.push(format!("rule {name:?}: group {:?}: {e}; skipped", rule.group));
                continue;
            }
            match store.add_approval_rule(&NewRule {
                name: &name,
                classifications: &rule.classifications,
                products: &rule.products,
                group: rule.group.trim(),
                action,
                deadline_days: rule.deadline_days,
            }) {
                Ok(r) => out.rules_added.push(r.name),
                Err(e @ (StoreError::Refused(_) | StoreError::NotFound(_))) => {
                    out.warnings.push(format!("rule {name:?}: {e}; skipped"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn policy_approvals(
        &mut self,
        policy: &ApprovalPolicy,
        channel: &str,
        out: &mut PolicyOutcome,
    ) -> AdminResult<()> {
        let now = chrono::Utc::now();
        for a in &policy.approve {
            let Ok(ids) = super::approvable_update_ids(self.store, std::slice::from_ref(&a.update))
            else {
                out.warnings.push(format!(
                    "approval of {}: this store does not hold that update; skipped",
                    a.update
                ));
                continue;
            };
            let action = match Action::approvable(a.action.as_deref()) {
                Ok(x) => x,
                Err(e) => {
                    out.warnings.push(format!("approval of {}: {e}; skipped", a.update));
                    continue;
                }
            };
            let deadline =
                match a.deadline.as_deref().map(|d| crate::admin::parse_new_deadline(d, now)) {
                    None => None,
                    Some(Ok(d)) => Some(d),
                    Some(Err(e)) => {
                        out.warnings.push(format!(
                            "approval of {}: {e}; approved without a deadline",
                            a.update
                        ));
                        None
                    }
                };
            let group = match ensure_group(self.store, &a.group, out) {
                Ok(g) => g,
                Err(e) => {
                    out.warnings.push(format!(
                        "approval of {}: group {:?}: {e}; skipped",
                        a.update, a.group
                    ));
                    continue;
                }
            };
            match self.approve_ids(
                &ids,
                &group,
                action,
                deadline.as_deref(),
                Some(&format!("bundle {channel}")),
            ) {
                Ok(done) => out.approved += done.len(),
                Err(e) if e.kind() == ErrorKind::Refused => {
                    out.warnings.push(format!("approval of {}: {e}; skipped", a.update))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn policy_declines(
        &mut self,
        policy: &ApprovalPolicy,
        channel: &str,
        out: &mut PolicyOutcome,
    ) -> AdminResult<()> {
        let mut declines = Vec::new();
        for id in &policy.decline {
            match super::approvable_update_ids(self.store, std::slice::from_ref(id)) {
                Ok(ids) => declines.extend(ids),
                Err(_) => out.warnings.push(format!(
                    "decline of {id}: this store does not hold that update; skipped"
                )),
            }
        }
        if !declines.is_empty() {
            out.declined = self.decline_ids(&declines, Some(&format!("bundle {channel}")))?;
        }
        Ok(())
    }
}
