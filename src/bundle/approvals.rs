//! Approvals that travel: an export profile's approval policy (rules, explicit approvals and
//! declines decided on the connected side) goes into the signed manifest, and the isolated side
//! applies it on import when it opts in (`ferry import --apply-approvals`). WSUS export drops
//! approvals; this carries them, signed with the bundle.
//!
//! Invariant: a policy is applied only with the importer's consent, only from a bundle whose
//! signature and trust checked out, and only after the import committed. What cannot apply (an
//! update the store does not hold, a declined one, a deadline that passed on the way) is skipped
//! with a warning, never half-applied.

use crate::admin::Action;
use crate::store::{Store, StoreError};
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
        let approvable = |typed: &[String]| {
            crate::admin::approvable_update_ids(cache, typed).map_err(|e| e.into_store_error())
        };
        for r in &self.rules {
            Action::approvable(r.action.as_deref()).map_err(refused)?;
        }
        for a in &self.approve {
            Action::approvable(a.action.as_deref()).map_err(refused)?;
            for id in approvable(std::slice::from_ref(&a.update))? {
                out.approve.push(PolicyApproval { update: id.into(), ..a.clone() });
            }
        }
        out.decline = approvable(&self.decline)?.into_iter().map(String::from).collect();
        if self.from_cache {
            let names: std::collections::HashMap<crate::ids::GroupId, String> =
                cache.groups()?.into_iter().map(|g| (g.group_id, g.name)).collect();
            for a in cache.approvals()? {
                if a.action == Action::Block {
                    continue;
                }
                out.approve.push(PolicyApproval {
                    update: a.update_id.into(),
                    group: names.get(&a.group_id).cloned().unwrap_or_else(all_computers),
                    action: Some(a.action.policy_name()),
                    deadline: a.deadline,
                });
            }
            out.decline.extend(cache.declines()?.into_iter().map(|d| d.update_id.into()));
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
        cache
            .approvals()?
            .into_iter()
            .filter(|a| a.action == Action::Install)
            .map(|a| a.update_id.into()),
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
