//! Groups, the computers in them and how computers get their groups (targeting), as every
//! front end asks for them.
//!
//! Invariant: the tree stays a tree: built-in groups never move or go, Unassigned Computers has
//! no subgroups, and a group never moves under itself or one of its descendants. Each rule's
//! check and the change it allows are one transaction under the next deployment stamp, so the
//! running server reloads group parents and memberships with the approvals.

use super::{AdminError, AdminResult, AdminService, Refusal};
use crate::ids::ComputerId;
use crate::ids::GroupId;
use crate::store::prelude::*;
use crate::store::{
    ALL_COMPUTERS, ComputerRecord, GroupInTree, GroupName, GroupRemoval, Store, StoreError,
    StoreResult, TargetGroup, Targeting, TargetingMode, UNASSIGNED_COMPUTERS,
};
use std::collections::HashMap;

/// The most groups clients may create (`--max-client-groups`): far above any site's real
/// groups, and a bound on what unauthenticated clients can add.
pub const MOST_CLIENT_GROUPS: u32 = 1000;

/// A change of the targeting settings; what is not given stays.
#[derive(Debug, Clone, Default)]
pub struct TargetingChange<'a> {
    /// `client` or `server`.
    pub mode: Option<&'a str>,
    pub create_missing_groups: Option<bool>,
    pub max_client_groups: Option<u32>,
}

impl AdminService<'_> {
    /// A group under `parent` (default All Computers).
    pub fn create_group(&mut self, name: &str, parent: Option<&str>) -> AdminResult<TargetGroup> {
        let name = GroupName::parse(name)?;
        create_group(self.store, &name, parent).map_err(|e| self.name_known_groups(e))
    }

    /// Moves a group (with its subgroups) under another one.
    pub fn move_group(&mut self, name_or_id: &str, new_parent: &str) -> AdminResult<TargetGroup> {
        let moved = self.store.administer(
            "moving a group",
            |rows| {
                let group = group_in(rows, name_or_id)?;
                let parent = group_in(rows, new_parent)?;
                if group.is_builtin {
                    return Err(Refusal::BuiltInStays { group: group.name }.into());
                }
                if parent.group_id == UNASSIGNED_COMPUTERS {
                    return Err(Refusal::NoSubgroupsOfUnassigned.into());
                }
                // Walk up from the new parent: meeting the group itself means a cycle. A group
                // met twice is a cycle already stored (written by hand): refused, not followed.
                let mut cursor = Some(parent.group_id.clone());
                let mut seen = std::collections::HashSet::new();
                while let Some(id) = cursor {
                    if id == group.group_id {
                        let (group, parent) = (group.name, parent.name);
                        return Err(Refusal::GroupInsideItself { group, parent }.into());
                    }
                    if !seen.insert(id.clone()) {
                        return Err(StoreError::Refused(format!(
                            "the stored group tree has a cycle through {id}; nothing was moved (run ferry check)"
                        ))
                        .into());
                    }
                    cursor = rows.parent_of(&id)?;
                }
                rows.set_parent(&group.group_id, &parent.group_id)?;
                Ok(TargetGroup { parent_id: Some(parent.group_id), ..group })
            },
            |_| true,
        );
        moved.map_err(|e| self.name_known_groups(e))
    }

    /// Removes a group that has no subgroups: its approvals and rules go, and computers that
    /// were only in it wait in Unassigned Computers.
    pub fn remove_group(&mut self, name_or_id: &str) -> AdminResult<GroupRemoval> {
        let removed = self.store.administer(
            "removing a group",
            |rows| {
                let group = group_in(rows, name_or_id)?;
                if group.is_builtin {
                    return Err(Refusal::BuiltInCannotBeRemoved { group: group.name }.into());
                }
                let count = rows.subgroup_count(&group.group_id)?;
                if count > 0 {
                    return Err(Refusal::HasSubgroups { group: group.name, count }.into());
                }
                Ok(rows.delete_group(&group)?)
            },
            |_| true,
        );
        removed.map_err(|e| self.name_known_groups(e))
    }

    /// The SusClientIds of computers named by DNS name or id: each name exactly one computer,
    /// or nothing changes.
    pub fn computer_ids(&self, names: &[String]) -> AdminResult<Vec<ComputerId>> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            match find_computers(self.store, name)?.as_slice() {
                [c] => ids.push(c.computer_id.clone()),
                [] => return Err(AdminError::NoSuchComputer { name: name.clone() }),
                many => {
                    let ids = many.iter().map(|c| c.computer_id.to_string()).collect();
                    return Err(Refusal::AmbiguousComputer { name: name.clone(), ids }.into());
                }
            }
        }
        Ok(ids)
    }

    /// Places computers in a group (server-side targeting), also keeping their other groups
    /// when `keep`. Returns the group and how many computers moved.
    pub fn move_computers(
        &mut self,
        names: &[String],
        group: &str,
        keep: bool,
    ) -> AdminResult<(TargetGroup, usize)> {
        let ids = self.computer_ids(names)?;
        let placed = self.store.administer(
            "placing computers",
            |rows| {
                let group = group_in(rows, group)?;
                if group.group_id == ALL_COMPUTERS {
                    return Err(Refusal::AllComputersHoldsEveryone.into());
                }
                for id in &ids {
                    if !rows.computer_exists(id)? {
                        return Err(AdminError::NoSuchComputer { name: id.to_string() });
                    }
                    rows.place_computer(id, &group.group_id, keep)?;
                }
                Ok(group)
            },
            |_| true,
        );
        Ok((placed.map_err(|e| self.name_known_groups(e))?, ids.len()))
    }

    /// Forgets computers (Remove-WsusComputer); returns how many there were.
    pub fn remove_computers(&mut self, names: &[String]) -> AdminResult<usize> {
        let ids = self.computer_ids(names)?;
        forget_computers(self.store, &ids)
    }

    /// Client-side targeting with group creation on: groups are rows that any client can add by
    /// naming them, so their number has a ceiling far above a site's real groups.
    pub fn set_targeting(&mut self, change: &TargetingChange<'_>) -> AdminResult<Targeting> {
        let now = self.store.targeting()?;
        let mode = match change.mode {
            None => now.mode,
            Some(m) if m.eq_ignore_ascii_case("client") => TargetingMode::Client,
            Some(m) if m.eq_ignore_ascii_case("server") => TargetingMode::Server,
            Some(other) => {
                return Err(Refusal::NotATargetingMode { given: other.to_string() }.into());
            }
        };
        let max_client_groups = change.max_client_groups.unwrap_or(now.max_client_groups);
        if max_client_groups > MOST_CLIENT_GROUPS {
            let given = max_client_groups;
            return Err(Refusal::TooManyClientGroups { given, most: MOST_CLIENT_GROUPS }.into());
        }
        let targeting = Targeting {
            mode,
            create_missing_groups: change
                .create_missing_groups
                .unwrap_or(now.create_missing_groups),
            max_client_groups,
        };
        self.store.set_targeting(targeting)?;
        Ok(targeting)
    }
}

/// The rule for every path that creates a group (administrators, a bundle's policy).
pub(super) fn create_group(
    store: &mut Store,
    name: &GroupName,
    parent: Option<&str>,
) -> AdminResult<TargetGroup> {
    let name = name.as_str();
    store.administer(
        "creating a group",
        |rows| {
            if rows.group(name)?.is_some() {
                return Err(Refusal::GroupExists { name: name.to_string() }.into());
            }
            let parent = group_in(rows, parent.unwrap_or(ALL_COMPUTERS))?;
            if parent.group_id == UNASSIGNED_COMPUTERS {
                return Err(Refusal::NoSubgroupsOfUnassigned.into());
            }
            let group = TargetGroup {
                group_id: crate::ids::GroupId::new_random(),
                name: name.to_string(),
                parent_id: Some(parent.group_id),
                is_builtin: false,
            };
            rows.insert_group(&group)?;
            Ok(group)
        },
        |_| true,
    )
}

/// Forgets computers by SusClientId, with their memberships and reported events, in one
/// transaction. A computer that contacts the server again comes back as new.
pub(super) fn forget_computers(store: &mut Store, ids: &[ComputerId]) -> AdminResult<usize> {
    store.administer(
        "removing computers",
        |rows| ids.iter().try_fold(0, |n, id| Ok(n + usize::from(rows.forget_computer(id)?))),
        |_| true,
    )
}

/// A group inside a change; a missing one is [`AdminError::NoSuchGroup`], its list of groups
/// filled in by [`AdminService::name_known_groups`] once the transaction is over.
fn group_in(rows: &dyn DeploymentRows, name_or_id: &str) -> AdminResult<TargetGroup> {
    rows.group(name_or_id)?
        .ok_or_else(|| AdminError::NoSuchGroup { name: name_or_id.to_string(), known: Vec::new() })
}

/// Groups in tree order: parents before children, built-in groups first, then by name; each
/// with its path from All Computers and its depth.
pub fn group_tree(store: &Store) -> StoreResult<Vec<GroupInTree>> {
    let groups = store.groups()?;
    let mut children: HashMap<Option<&str>, Vec<&TargetGroup>> = HashMap::new();
    for g in &groups {
        children.entry(g.parent_id.as_deref()).or_default().push(g);
    }
    for list in children.values_mut() {
        list.sort_by_key(|g| (!g.is_builtin, g.name.to_lowercase()));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut stack: Vec<(&TargetGroup, String, usize)> = children
        .get(&None)
        .map(|r| r.iter().rev().map(|g| (*g, g.name.clone(), 0)).collect())
        .unwrap_or_default();
    while let Some((g, path, depth)) = stack.pop() {
        if let Some(kids) = children.get(&Some(g.group_id.as_str())) {
            for k in kids.iter().rev() {
                stack.push((k, format!("{path}/{}", k.name), depth + 1));
            }
        }
        out.push(GroupInTree { group: g.clone(), path, depth });
    }
    Ok(out)
}

/// The computers in a group (by name or GUID) or in any group under it.
pub fn computers_in_group(store: &Store, group: &str) -> StoreResult<Vec<ComputerRecord>> {
    let g = store.group(group)?.ok_or_else(|| {
        StoreError::NotFound(format!("no computer group {group:?} (see `ferry groups list`)"))
    })?;
    let computers = store.computers()?;
    if g.group_id == ALL_COMPUTERS {
        return Ok(computers);
    }
    let parents: HashMap<GroupId, GroupId> =
        store.groups()?.into_iter().filter_map(|t| t.parent_id.map(|p| (t.group_id, p))).collect();
    // Walk up from each of a computer's groups: the group asked for, or one above it.
    let inside = |start: &GroupId| {
        let mut id = start;
        for _ in 0..=parents.len() {
            if *id == g.group_id {
                return true;
            }
            match parents.get(id) {
                Some(p) => id = p,
                None => return false,
            }
        }
        false
    };
    Ok(computers.into_iter().filter(|c| c.groups.iter().any(inside)).collect())
}

/// Computers by SusClientId, exact DNS name or DNS name prefix (`pc01` finds
/// `pc01.plant.example`), case-insensitive.
pub fn find_computers(store: &Store, name_or_id: &str) -> StoreResult<Vec<ComputerRecord>> {
    let wanted = name_or_id.trim().to_ascii_lowercase();
    Ok(store
        .computers()?
        .into_iter()
        .filter(|c| {
            let dns = c.dns_name.to_ascii_lowercase();
            c.computer_id == wanted
                || dns == wanted
                || dns.split('.').next() == Some(wanted.as_str())
        })
        .collect())
}
