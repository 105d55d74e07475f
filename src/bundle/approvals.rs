//! Approvals that travel: an export profile's approval policy (rules, explicit approvals and
//! declines decided on the connected side) goes into the signed manifest, and the isolated side
//! applies it on import when it opts in (`ferry import --apply-approvals`). WSUS export drops
//! approvals; this carries them, signed with the bundle.
//!
//! Invariant: a policy is applied only with the importer's consent, only from a bundle whose
//! signature and trust checked out, and only after the import committed. What cannot apply (an
//! update the store does not hold, a declined one, a deadline that passed on the way) is skipped
//! with a warning, never half-applied.

use crate::admin::{Action, AdminService, ErrorKind};
use crate::store::prelude::*;
use crate::store::{NewRule, Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Automatic approval rules for the isolated side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,
    /// Explicit approvals (UpdateIDs in the manifest; KB numbers allowed in a profile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approve: Vec<PolicyApproval>,
    /// Updates to decline (UpdateIDs in the manifest; KB numbers allowed in a profile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decline: Vec<String>,
    /// Profile only: also carry the approvals and declines made in the cache store
    /// (`ferry updates approve --data CACHE ...` on the connected side).
    #[serde(default, skip_serializing)]
    pub from_cache: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub classifications: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    pub group: String,
    /// `install` (default) or `uninstall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyApproval {
    pub update: String,
    #[serde(default = "all_computers")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// RFC 3339 or `2026-12-31`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

fn all_computers() -> String {
    "All Computers".into()
}

/// Rules a policy may carry: a site has a handful; each is applied over the whole catalog.
pub const MAX_POLICY_RULES: usize = 256;

impl ApprovalPolicy {
    /// The checks that need no store, for a policy read from a signed manifest: how many rules,
    /// and names of rules and groups that a store would accept.
    pub fn check(&self) -> Result<(), String> {
        if self.rules.len() > MAX_POLICY_RULES {
            return Err(format!(
                "{} rules, more than the {MAX_POLICY_RULES} a policy may carry",
                self.rules.len()
            ));
        }
        let names = self.rules.iter().filter_map(|r| r.name.as_deref().map(|n| (n, "rule name")));
        let groups = self
            .rules
            .iter()
            .map(|r| r.group.as_str())
            .chain(self.approve.iter().map(|a| a.group.as_str()));
        for (name, what) in names.chain(groups.map(|g| (g, "group name"))) {
            crate::store::display_name(name, what).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.approve.is_empty() && self.decline.is_empty()
    }

    /// The policy as it travels: updates named by UpdateID (resolved in the cache), the cache's
    /// own decisions added when `from_cache` says so. Anything unresolvable stops the export.
    pub fn for_bundle(&self, cache: &Store) -> Result<ApprovalPolicy, StoreError> {
        let mut out = ApprovalPolicy { rules: self.rules.clone(), ..Default::default() };
        let refused = |e: crate::admin::Refusal| StoreError::Refused(e.to_string());
        for r in &self.rules {
            Action::approvable(r.action.as_deref()).map_err(refused)?;
        }
        for a in &self.approve {
            Action::approvable(a.action.as_deref()).map_err(refused)?;
            for id in cache.approvable_update_ids(std::slice::from_ref(&a.update))? {
                out.approve.push(PolicyApproval { update: id, ..a.clone() });
            }
        }
        out.decline = cache.approvable_update_ids(&self.decline)?;
        if self.from_cache {
            let names: std::collections::HashMap<String, String> =
                cache.groups()?.into_iter().map(|g| (g.group_id, g.name)).collect();
            for a in cache.approvals()? {
                if a.action == Action::Block {
                    continue;
                }
                out.approve.push(PolicyApproval {
                    update: a.update_id,
                    group: names.get(&a.group_id).cloned().unwrap_or_else(all_computers),
                    action: Some(a.action.policy_name()),
                    deadline: a.deadline,
                });
            }
            out.decline.extend(cache.declines()?.into_iter().map(|d| d.update_id));
        }
        out.decline.sort();
        out.decline.dedup();
        out.check().map_err(StoreError::Refused)?;
        Ok(out)
    }
}

/// What counts as approved for `payloads = "approved"` (see `select::Approved`): approvals for
/// install in the cache, and the profile's policy (its explicit approvals and its rules). Empty
/// for the other payload policies, which do not ask.
pub fn approved_for_payloads(
    cache: &Store,
    profile: &super::profile::Profile,
) -> Result<super::select::Approved, StoreError> {
    let mut out = super::select::Approved::default();
    if profile.payloads != super::profile::PayloadPolicy::Approved {
        return Ok(out);
    }
    out.update_ids.extend(
        cache.approvals()?.into_iter().filter(|a| a.action == Action::Install).map(|a| a.update_id),
    );
    if let Some(policy) = &profile.approvals {
        let installs = |action: Option<&str>| Action::approvable(action) == Ok(Action::Install);
        let travelling = policy.for_bundle(cache)?;
        out.update_ids.extend(
            travelling
                .approve
                .into_iter()
                .filter(|a| installs(a.action.as_deref()))
                .map(|a| a.update),
        );
        out.rules = policy
            .rules
            .iter()
            .filter(|r| installs(r.action.as_deref()))
            .map(|r| (r.classifications.clone(), r.products.clone()))
            .collect();
    }
    Ok(out)
}

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
) -> Result<String, StoreError> {
    let name = name.trim();
    if let Some(g) = store.group(name)? {
        return Ok(g.group_id);
    }
    let g = store.create_group(name, None)?;
    out.groups_created.push(g.name.clone());
    Ok(g.group_id)
}

/// Applies a bundle's policy to the store (after its import committed).
pub fn apply(
    store: &mut Store,
    policy: &ApprovalPolicy,
    channel: &str,
) -> Result<PolicyOutcome, StoreError> {
    let mut out = PolicyOutcome::default();
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
        if let Err(e) = ensure_group(store, &rule.group, &mut out) {
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
            Err(e) => return Err(e),
        }
    }
    let now = chrono::Utc::now();
    for a in &policy.approve {
        let Ok(ids) = store.approvable_update_ids(std::slice::from_ref(&a.update)) else {
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
        let deadline = match a.deadline.as_deref().map(|d| crate::admin::parse_new_deadline(d, now))
        {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                out.warnings
                    .push(format!("approval of {}: {e}; approved without a deadline", a.update));
                None
            }
        };
        let group = match ensure_group(store, &a.group, &mut out) {
            Ok(g) => g,
            Err(e) => {
                out.warnings
                    .push(format!("approval of {}: group {:?}: {e}; skipped", a.update, a.group));
                continue;
            }
        };
        match AdminService::new(store).approve_ids(
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
            Err(e) => return Err(e.into_store_error()),
        }
    }
    let mut declines = Vec::new();
    for id in &policy.decline {
        match store.approvable_update_ids(std::slice::from_ref(id)) {
            Ok(ids) => declines.extend(ids),
            Err(_) => out
                .warnings
                .push(format!("decline of {id}: this store does not hold that update; skipped")),
        }
    }
    if !declines.is_empty() {
        out.declined = AdminService::new(store)
            .decline_ids(&declines, Some(&format!("bundle {channel}")))
            .map_err(|e| e.into_store_error())?;
    }
    Ok(out)
}
