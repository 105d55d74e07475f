//! Target groups and computer membership: the group tree under All Computers, server-side
//! targeting (an administrator places computers), and the client-side targeting settings.
//!
//! Invariant: every change here advances the deployment stamp in its own transaction, so the
//! running server reloads group parents and memberships with the approvals (`server/refresh.rs`).
//! Invariant: the tree stays a tree: built-in groups never move or go, and a group never moves
//! under itself or one of its descendants.

use crate::store::groups::*;
use crate::store::prelude::*;
use crate::store::{ALL_COMPUTERS, ComputerRecord, TargetGroup, UNASSIGNED_COMPUTERS};
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::{Connection, OptionalExtension, params};

const MODE_KEY: &str = "targeting.mode";
const CREATE_KEY: &str = "targeting.create_missing_groups";
const MAX_CLIENT_GROUPS_KEY: &str = "targeting.max_client_groups";

/// The targeting settings, read through a connection or inside a transaction.
pub(super) fn targeting_in(conn: &Connection) -> rusqlite::Result<Targeting> {
    let get = |key: &str| {
        conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    };
    Ok(Targeting {
        mode: if get(MODE_KEY)?.as_deref() == Some("server") {
            TargetingMode::Server
        } else {
            TargetingMode::Client
        },
        create_missing_groups: get(CREATE_KEY)?.as_deref() != Some("false"),
        max_client_groups: get(MAX_CLIENT_GROUPS_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_CLIENT_GROUPS),
    })
}

fn refused(message: String) -> StoreError {
    StoreError::Refused(message)
}

/// A group by name (case-insensitive) or GUID, through a connection or inside a transaction.
pub(super) fn group_in(
    conn: &Connection,
    name_or_id: &str,
) -> rusqlite::Result<Option<TargetGroup>> {
    conn.query_row(
        "SELECT group_id, name, parent_id, is_builtin FROM target_groups WHERE name = ?1 COLLATE NOCASE OR group_id = lower(?1)",
        [name_or_id],
        |r| Ok(TargetGroup { group_id: r.get(0)?, name: r.get(1)?, parent_id: r.get(2)?, is_builtin: r.get(3)? }),
    )
    .optional()
}

impl GroupStorage for SqliteStore {
    fn group_tree(&self) -> StoreResult<Vec<GroupInTree>> {
        let groups = self.groups()?;
        let mut children: std::collections::HashMap<Option<&str>, Vec<&TargetGroup>> =
            std::collections::HashMap::new();
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

    fn computers_in_group(&self, group: &str) -> StoreResult<Vec<ComputerRecord>> {
        let g = self.group(group)?.ok_or_else(|| {
            StoreError::NotFound(format!("no computer group {group:?} (see `ferry groups list`)"))
        })?;
        let computers = self.computers()?;
        if g.group_id == ALL_COMPUTERS {
            return Ok(computers);
        }
        let parents: std::collections::HashMap<String, String> = self
            .groups()?
            .into_iter()
            .filter_map(|t| t.parent_id.map(|p| (t.group_id, p)))
            .collect();
        // Walk up from each of a computer's groups: the group asked for, or one above it.
        let inside = |start: &String| {
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

    fn targeting(&self) -> StoreResult<Targeting> {
        targeting_in(&self.conn).map_err(|e| self.err("reading the targeting settings", e))
    }

    fn set_targeting(&mut self, targeting: Targeting) -> StoreResult<()> {
        self.set_setting(
            MODE_KEY,
            if targeting.mode == TargetingMode::Server { "server" } else { "client" },
        )?;
        self.set_setting(
            CREATE_KEY,
            if targeting.create_missing_groups { "true" } else { "false" },
        )?;
        self.set_setting(MAX_CLIENT_GROUPS_KEY, &targeting.max_client_groups.to_string())
    }

    fn create_group(&mut self, name: &str, parent: Option<&str>) -> StoreResult<TargetGroup> {
        let name = GroupName::parse(name)?;
        let name = name.as_str();
        self.deployment_change(
            "creating a group",
            |tx, _| {
                if group_in(tx, name)?.is_some() {
                    return Ok(Err(refused(format!("a group named {name:?} exists already"))));
                }
                let parent = match parent {
                    None => ALL_COMPUTERS.to_string(),
                    Some(p) => match group_in(tx, p)? {
                        Some(g) if g.group_id == UNASSIGNED_COMPUTERS => {
                            return Ok(Err(refused("Unassigned Computers cannot have subgroups (as on WSUS)".into())));
                        }
                        Some(g) => g.group_id,
                        None => return Ok(Err(StoreError::NotFound(format!("no computer group {p:?} to create {name:?} under")))),
                    },
                };
                let id = crate::random::guid().to_string();
                tx.execute(
                    "INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
                    params![id, name, parent, now_rfc3339()],
                )?;
                Ok(Ok(TargetGroup { group_id: id, name: name.to_string(), parent_id: Some(parent), is_builtin: false }))
            },
            |_| true,
        )
    }

    fn move_group(&mut self, name_or_id: &str, new_parent: &str) -> StoreResult<TargetGroup> {
        self.deployment_change(
            "moving a group",
            |tx, _| {
                let Some(group) = group_in(tx, name_or_id)? else {
                    return Ok(Err(StoreError::NotFound(format!(
                        "no computer group {name_or_id:?}"
                    ))));
                };
                let Some(parent) = group_in(tx, new_parent)? else {
                    return Ok(Err(StoreError::NotFound(format!(
                        "no computer group {new_parent:?}"
                    ))));
                };
                if group.is_builtin {
                    return Ok(Err(refused(format!(
                        "{} is built in and stays where it is",
                        group.name
                    ))));
                }
                if parent.group_id == UNASSIGNED_COMPUTERS {
                    return Ok(Err(refused(
                        "Unassigned Computers cannot have subgroups (as on WSUS)".into(),
                    )));
                }
                // Walk up from the new parent: meeting the group itself means a cycle.
                let mut cursor = Some(parent.group_id.clone());
                while let Some(id) = cursor {
                    if id == group.group_id {
                        return Ok(Err(refused(format!(
                            "{} cannot move under {}: {} is inside {} (nothing was changed)",
                            group.name, parent.name, parent.name, group.name
                        ))));
                    }
                    cursor = tx
                        .query_row(
                            "SELECT parent_id FROM target_groups WHERE group_id = ?1",
                            [&id],
                            |r| r.get(0),
                        )
                        .optional()?
                        .flatten();
                }
                tx.execute(
                    "UPDATE target_groups SET parent_id = ?2 WHERE group_id = ?1",
                    [&group.group_id, &parent.group_id],
                )?;
                Ok(Ok(TargetGroup { parent_id: Some(parent.group_id), ..group }))
            },
            |_| true,
        )
    }

    fn remove_group(&mut self, name_or_id: &str) -> StoreResult<GroupRemoval> {
        self.deployment_change(
            "removing a group",
            |tx, stamp| {
                let Some(group) = group_in(tx, name_or_id)? else {
                    return Ok(Err(StoreError::NotFound(format!("no computer group {name_or_id:?}"))));
                };
                if group.is_builtin {
                    return Ok(Err(refused(format!("{} is built in and cannot be removed", group.name))));
                }
                let children: i64 =
                    tx.query_row("SELECT count(*) FROM target_groups WHERE parent_id = ?1", [&group.group_id], |r| r.get(0))?;
                if children > 0 {
                    return Ok(Err(refused(format!(
                        "{} has {children} subgroup(s): move or remove them first (nothing was changed)",
                        group.name
                    ))));
                }
                let approvals_removed = tx.execute(
                    "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change)
                 SELECT ?2, deployment_guid, update_id, group_id, 'removed' FROM approvals WHERE group_id = ?1",
                    params![group.group_id, stamp],
                )?;
                tx.execute("DELETE FROM approvals WHERE group_id = ?1", [&group.group_id])?;
                let rules_removed = tx.execute("DELETE FROM approval_rules WHERE group_id = ?1", [&group.group_id])?;
                let computers_unassigned = tx.execute(
                    "INSERT OR IGNORE INTO computer_groups (computer_id, group_id)
                 SELECT computer_id, ?2 FROM computer_groups cg WHERE group_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM computer_groups o WHERE o.computer_id = cg.computer_id AND o.group_id <> ?1)",
                    params![group.group_id, UNASSIGNED_COMPUTERS],
                )?;
                tx.execute("DELETE FROM computer_groups WHERE group_id = ?1", [&group.group_id])?;
                tx.execute("DELETE FROM target_groups WHERE group_id = ?1", [&group.group_id])?;
                Ok(Ok(GroupRemoval { group: group.name, computers_unassigned, approvals_removed, rules_removed }))
            },
            |_| true,
        )
    }

    fn find_computers(&self, name_or_id: &str) -> StoreResult<Vec<ComputerRecord>> {
        let wanted = name_or_id.trim().to_ascii_lowercase();
        Ok(self
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

    fn assign_computers(
        &mut self,
        computer_ids: &[String],
        group: &str,
        keep: bool,
    ) -> StoreResult<TargetGroup> {
        self.deployment_change(
            "placing computers",
            |tx, _| {
                let Some(group) = group_in(tx, group)? else {
                    return Ok(Err(StoreError::NotFound(format!("no computer group {group:?}"))));
                };
                if group.group_id == ALL_COMPUTERS {
                    return Ok(Err(refused("every computer is in All Computers already; name a group under it".into())));
                }
                for id in computer_ids {
                    let exists: bool =
                        tx.query_row("SELECT EXISTS (SELECT 1 FROM computers WHERE computer_id = ?1)", [id], |r| r.get(0))?;
                    if !exists {
                        return Ok(Err(StoreError::NotFound(format!("no computer {id} (nothing was changed)"))));
                    }
                    if keep {
                        tx.execute(
                            "DELETE FROM computer_groups WHERE computer_id = ?1 AND group_id = ?2",
                            [id.as_str(), UNASSIGNED_COMPUTERS],
                        )?;
                    } else {
                        tx.execute("DELETE FROM computer_groups WHERE computer_id = ?1", [id])?;
                    }
                    tx.execute("INSERT OR IGNORE INTO computer_groups (computer_id, group_id) VALUES (?1, ?2)", [id, &group.group_id])?;
                }
                Ok(Ok(group))
            },
            |_| true,
        )
    }

    fn remove_computers(&mut self, computer_ids: &[String]) -> StoreResult<usize> {
        self.deployment_change(
            "removing computers",
            |tx, _| {
                let mut removed = 0;
                for id in computer_ids {
                    tx.execute("DELETE FROM computer_groups WHERE computer_id = ?1", [id])?;
                    tx.execute("DELETE FROM events WHERE computer_id = ?1", [id])?;
                    removed += tx.execute("DELETE FROM computers WHERE computer_id = ?1", [id])?;
                }
                Ok(Ok(removed))
            },
            |_| true,
        )
    }
}
