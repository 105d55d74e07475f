//! The SQLite side of target groups: the group tree and its members as read, and the targeting
//! settings. (Changes to the tree go through `DeploymentRows`, `deployments.rs`, under the rules
//! of `admin/groups.rs`.)

use crate::ids::GroupId;
use crate::store::groups::*;
use crate::store::prelude::*;
use crate::store::{ALL_COMPUTERS, ComputerRecord, TargetGroup};
use crate::store::{SqliteStore, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};

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
        let parents: std::collections::HashMap<GroupId, GroupId> = self
            .groups()?
            .into_iter()
            .filter_map(|t| t.parent_id.map(|p| (t.group_id, p)))
            .collect();
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
}
