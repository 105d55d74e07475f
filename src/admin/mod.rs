//! Administration: the one place its rules live. The CLI, the API, the console, `ferry demo`
//! and a bundle's approval policy all change approvals through [`AdminService`]; the store keeps
//! the rows (`store::DeploymentRows`), and each rule's check runs in the transaction of the write
//! it allows.
//!
//! Invariant: a refused change changes nothing (one transaction per request, rolled back on
//! any refusal), and every refusal is a [`Refusal`] or a missing group or computer, in the same
//! words in every front end.

mod cleanup;
mod compliance;
mod groups;
mod policy;
mod rules;
pub mod types;

pub use compliance::{compliance_report, published_by};
pub use groups::{TargetingChange, computers_in_group, find_computers, group_tree};
pub use policy::PolicyOutcome;
pub use rules::{NewRuleRequest, RuleOutcome};
pub use types::{Action, Refusal};

use crate::ids::{GroupId, UpdateId};
use crate::store::PrerequisiteOption;
use crate::store::prelude::*;
use crate::store::{Approval, Store, StoreError, TargetGroup};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no computer group {name:?}; the groups are: {}", known.join(", "))]
    NoSuchGroup { name: String, known: Vec<String> },
    #[error("no computer {name:?} (nothing was changed)")]
    NoSuchComputer { name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an error means to the one who asked: front ends choose their status or exit code by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The rules forbid it, or the request names something wrongly; nothing was changed.
    Refused,
    /// It names something that is not there.
    NotFound,
    /// Storage failed.
    Failed,
}

impl AdminError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AdminError::Refused(_) | AdminError::Store(StoreError::Refused(_)) => {
                ErrorKind::Refused
            }
            AdminError::NoSuchGroup { .. }
            | AdminError::NoSuchComputer { .. }
            | AdminError::Store(StoreError::NotFound(_)) => ErrorKind::NotFound,
            AdminError::Store(_) => ErrorKind::Failed,
        }
    }
}

impl AdminError {
    /// For callers that report store errors (an import, an export): refusals keep their words.
    pub fn into_store_error(self) -> StoreError {
        match self {
            AdminError::Store(e) => e,
            e @ AdminError::Refused(_) => StoreError::Refused(e.to_string()),
            e @ (AdminError::NoSuchGroup { .. } | AdminError::NoSuchComputer { .. }) => {
                StoreError::NotFound(e.to_string())
            }
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// Groups a "no such group" refusal names.
const KNOWN_GROUPS_NAMED: usize = 20;

/// An approval as an administrator asks for it.
#[derive(Debug, Clone)]
pub struct Approve<'a> {
    /// UpdateIDs, KB numbers or `UpdateID/revision`, as typed.
    pub updates: &'a [String],
    /// Group name or id.
    pub group: &'a str,
    pub action: Action,
    /// RFC 3339 or `2026-12-31`, in the future.
    pub deadline: Option<&'a str>,
    /// Who approves, as the approval records it.
    pub admin: Option<&'a str>,
    /// Also approve what the updates need installed first, as WSUS offers it (install only).
    pub with_prerequisites: bool,
}

/// What an approval did.
#[derive(Debug, Clone)]
pub struct Approved {
    pub group: TargetGroup,
    /// The updates asked for, resolved to UpdateIDs.
    pub requested: Vec<UpdateId>,
    /// Prerequisites approved along with them.
    pub prerequisites: Vec<UpdateId>,
    /// The deadline as stored.
    pub deadline: Option<String>,
    pub approvals: Vec<Approval>,
}

/// The administration of one store.
pub struct AdminService<'s> {
    store: &'s mut Store,
}

impl<'s> AdminService<'s> {
    pub fn new(store: &'s mut Store) -> AdminService<'s> {
        AdminService { store }
    }

    /// A group by name (case-insensitive) or id; a missing one is named with the groups there are.
    pub fn group(&self, name_or_id: &str) -> AdminResult<TargetGroup> {
        let missing =
            || AdminError::NoSuchGroup { name: name_or_id.to_string(), known: Vec::new() };
        let group = self.store.group(name_or_id)?.ok_or_else(missing);
        group.map_err(|e| self.name_known_groups(e))
    }

    /// Fills in the groups there are when `e` is a missing group without them.
    fn name_known_groups(&self, e: AdminError) -> AdminError {
        let AdminError::NoSuchGroup { name, known } = e else { return e };
        if !known.is_empty() {
            return AdminError::NoSuchGroup { name, known };
        }
        // The first few: the words go into API answers and the console's redirects.
        let groups = match self.store.groups() {
            Ok(groups) => groups,
            Err(e) => return e.into(),
        };
        let mut known: Vec<String> =
            groups.iter().take(KNOWN_GROUPS_NAMED).map(|g| g.name.clone()).collect();
        if groups.len() > KNOWN_GROUPS_NAMED {
            known.push(format!(
                "and {} more (`ferry groups list`)",
                groups.len() - KNOWN_GROUPS_NAMED
            ));
        }
        AdminError::NoSuchGroup { name, known }
    }

    /// The UpdateIDs that `typed` names (all or nothing); at least one.
    pub fn updates(&self, typed: &[String]) -> AdminResult<Vec<UpdateId>> {
        if typed.is_empty() {
            return Err(Refusal::NoUpdatesNamed.into());
        }
        approvable_update_ids(self.store, typed)
    }

    /// Approves updates for a group, all or none: declined updates are refused, and expired ones
    /// for install; prerequisites come along when asked.
    pub fn approve(&mut self, request: &Approve<'_>) -> AdminResult<Approved> {
        // What needs no store first, then the group, then the updates (as the CLI always did).
        if request.updates.is_empty() {
            return Err(Refusal::NoUpdatesNamed.into());
        }
        let group = self.group(request.group)?;
        let deadline =
            request.deadline.map(|d| parse_new_deadline(d, chrono::Utc::now())).transpose()?;
        let requested = self.updates(request.updates)?;
        let prerequisites = if request.action == Action::Install && request.with_prerequisites {
            unapproved_prerequisites(self.store, &requested, &group.group_id)?
        } else {
            Vec::new()
        };
        let all: Vec<UpdateId> = requested.iter().chain(&prerequisites).cloned().collect();
        let approvals = self.approve_ids(
            &all,
            &group.group_id,
            request.action,
            deadline.as_deref(),
            request.admin,
        )?;
        Ok(Approved { group, requested, prerequisites, deadline, approvals })
    }

    /// Approves resolved UpdateIDs for a group id in one transaction (the rule for every path
    /// that approves: administrators, automatic rules, a bundle's policy).
    pub fn approve_ids(
        &mut self,
        ids: &[UpdateId],
        group_id: &GroupId,
        action: Action,
        deadline: Option<&str>,
        admin: Option<&str>,
    ) -> AdminResult<Vec<Approval>> {
        self.store.administer(
            "approving",
            |tx| {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if tx.is_declined(id)? {
                        return Err(Refusal::Declined { update: id.clone() }.into());
                    }
                    if action != Action::Uninstall && tx.is_expired(id)? {
                        return Err(Refusal::Expired { update: id.clone() }.into());
                    }
                    out.push(tx.put_approval(id, group_id, action, deadline, admin)?);
                }
                Ok(out)
            },
            |approvals: &Vec<Approval>| !approvals.is_empty(),
        )
    }

    /// Removes a group's approvals of updates; returns the group and how many there were.
    pub fn unapprove(
        &mut self,
        updates: &[String],
        group: &str,
    ) -> AdminResult<(TargetGroup, usize)> {
        if updates.is_empty() {
            return Err(Refusal::NoUpdatesNamed.into());
        }
        let group = self.group(group)?;
        let ids = self.updates(updates)?;
        let removed = self.store.administer(
            "removing approvals",
            |tx| count(&ids, |id| tx.remove_approval(id, &group.group_id)),
            |n| *n > 0,
        )?;
        Ok((group, removed))
    }

    /// Declines updates: offered to no one, their approvals removed. Returns how many were not
    /// declined before.
    pub fn decline(&mut self, updates: &[String], admin: Option<&str>) -> AdminResult<usize> {
        let ids = self.updates(updates)?;
        self.decline_ids(&ids, admin)
    }

    /// Declines resolved UpdateIDs in one transaction.
    pub fn decline_ids(&mut self, ids: &[UpdateId], admin: Option<&str>) -> AdminResult<usize> {
        self.store.administer("declining", |tx| count(ids, |id| tx.decline(id, admin)), |n| *n > 0)
    }

    /// Makes declined updates approvable again (WSUS: Approve → Not approved).
    pub fn undecline(&mut self, updates: &[String]) -> AdminResult<usize> {
        let ids = self.updates(updates)?;
        self.store.administer("undeclining", |tx| count(&ids, |id| tx.undecline(id)), |n| *n > 0)
    }

    /// The store underneath, for tests to look at what a rule did.
    #[cfg(test)]
    pub(crate) fn store(&mut self) -> &mut Store {
        self.store
    }
}

/// How many of `ids` `change` changed.
fn count(
    ids: &[UpdateId],
    mut change: impl FnMut(&UpdateId) -> Result<bool, StoreError>,
) -> AdminResult<usize> {
    let mut n = 0;
    for id in ids {
        n += usize::from(change(id)?);
    }
    Ok(n)
}

#[cfg(test)]
mod tests;

/// The UpdateIDs that `typed` names, in order and each once (all or nothing): each text names
/// one update (by UpdateID, `UpdateID/revision`, KB number or `#revision`), and only software and
/// driver updates are approved (categories, classifications and products are not).
pub fn approvable_update_ids(store: &Store, typed: &[String]) -> AdminResult<Vec<UpdateId>> {
    let mut out: Vec<UpdateId> = Vec::new();
    for given in typed {
        let revisions = store.resolve_update(given)?;
        let [revision] = revisions[..] else {
            let matches = revisions.len();
            return Err(Refusal::AmbiguousUpdate { given: given.clone(), matches }.into());
        };
        let s = store.update_summary(revision)?;
        if !matches!(s.update_type.as_str(), "Software" | "Driver") {
            let kind = s.category_kind.unwrap_or(s.update_type);
            return Err(Refusal::NotApprovable { given: given.clone(), kind }.into());
        }
        if !out.contains(&s.update_id) {
            out.push(s.update_id);
        }
    }
    Ok(out)
}

/// The software updates that `update_ids` need installed first (prerequisite clauses that name
/// updates rather than categories) and that no approval for install in `group_id` covers: for
/// each unmet clause its newest approvable option, recursively. Clauses a client settles itself
/// (detectoids, updates the store lacks) need nothing.
pub fn unapproved_prerequisites(
    store: &Store,
    update_ids: &[UpdateId],
    group_id: &str,
) -> AdminResult<Vec<UpdateId>> {
    let approved: HashSet<UpdateId> = store
        .approvals()?
        .into_iter()
        .filter(|a| a.group_id == group_id && a.action == Action::Install)
        .map(|a| a.update_id)
        .collect();
    let declined: HashSet<UpdateId> = store.declines()?.into_iter().map(|d| d.update_id).collect();
    let mut covered: HashSet<UpdateId> = update_ids.iter().cloned().collect();
    let mut queue: Vec<UpdateId> = update_ids.to_vec();
    let mut out = Vec::new();
    while let Some(id) = queue.pop() {
        let mut clauses: BTreeMap<i64, Vec<PrerequisiteOption>> = BTreeMap::new();
        for option in store.prerequisite_options(&id)? {
            clauses.entry(option.clause).or_default().push(option);
        }
        for options in clauses.values() {
            let settled_by_client = options
                .iter()
                .any(|o| !matches!(o.update_type.as_deref(), Some("Software" | "Driver")));
            let met = options.iter().any(|o| {
                approved.contains(o.update_id.as_str()) || covered.contains(o.update_id.as_str())
            });
            if settled_by_client || met {
                continue;
            }
            let newest = options
                .iter()
                .filter(|o| !declined.contains(o.update_id.as_str()) && !o.expired)
                .max_by(|a, b| a.created.cmp(&b.created));
            if let Some(option) = newest {
                covered.insert(option.update_id.clone());
                out.push(option.update_id.clone());
                queue.push(option.update_id.clone());
            }
        }
    }
    Ok(out)
}

/// An installation deadline as administrators write it (`2026-12-01`, `2026-12-01T18:00` in UTC,
/// or RFC 3339) → `2026-12-01T18:00:00Z`; it must lie after `now`.
pub fn parse_new_deadline(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::StoreResult<String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let t = text.trim();
    let at = if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        d.with_timezone(&Utc)
    } else if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
    {
        Utc.from_utc_datetime(&d)
    } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
    } else {
        return Err(crate::store::StoreError::Refused(format!(
            "deadline {text:?}: use 2026-12-01, 2026-12-01T18:00 (UTC) or an RFC 3339 time"
        )));
    };
    if at <= now {
        return Err(crate::store::StoreError::Refused(format!(
            "the deadline {} is in the past (now {}); nothing was changed",
            at.format("%Y-%m-%dT%H:%M:%SZ"),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        )));
    }
    Ok(at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
