//! The SQLite side of target groups: a group and the targeting settings as read inside a
//! transaction. (Changes to the tree go through `DeploymentRows`, `deployments.rs`, under the
//! rules of `admin/groups.rs`, which also builds the tree and its members from the rows.)

use crate::store::TargetGroup;
use crate::store::groups::*;
use rusqlite::{Connection, OptionalExtension};

/// The targeting settings, read through a connection or inside a transaction.
pub(super) fn targeting_in(conn: &Connection) -> rusqlite::Result<Targeting> {
    Targeting::from_settings(|key| {
        conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()
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
