//! The SQLite side of the server: target groups, computers, approvals, declines, reported events.

use crate::ids::GroupId;
use crate::store::clients::*;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

pub(super) const APPROVAL_COLUMNS: &str = "approval_id, deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp";

pub(super) fn approval_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        approval_id: r.get(0)?,
        deployment_guid: r.get(1)?,
        update_id: r.get(2)?,
        group_id: r.get(3)?,
        action: r.get(4)?,
        deadline: r.get(5)?,
        admin: r.get(6)?,
        changed_at: r.get(7)?,
        changed_stamp: r.get(8)?,
    })
}

pub(super) fn next_stamp(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row("SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'deployment_stamp'), 0) + 1", [], |r| r.get(0))
}

pub(super) fn set_stamp(tx: &rusqlite::Transaction<'_>, stamp: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ('deployment_stamp', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [stamp.to_string()],
    )
    .map(|_| ())
}

impl ClientStorage for SqliteStore {
    fn groups(&self) -> StoreResult<Vec<TargetGroup>> {
        let mut stmt = self
            .conn
            .prepare("SELECT group_id, name, parent_id, is_builtin FROM target_groups ORDER BY is_builtin DESC, name")
            .map_err(|e| self.err("listing groups", e))?;
        stmt.query_map([], |r| {
            Ok(TargetGroup {
                group_id: r.get(0)?,
                name: r.get(1)?,
                parent_id: r.get(2)?,
                is_builtin: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err("listing groups", e))
    }

    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>> {
        super::groups::group_in(&self.conn, name_or_id).map_err(|e| self.err("reading a group", e))
    }

    fn computers(&self) -> StoreResult<Vec<ComputerRecord>> {
        let mut groups: std::collections::HashMap<String, Vec<GroupId>> =
            std::collections::HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT computer_id, group_id FROM computer_groups")
                .map_err(|e| self.err("listing computers", e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, GroupId>(1)?)))
                .map_err(|e| self.err("listing computers", e))?;
            for row in rows {
                let (c, g) = row.map_err(|e| self.err("listing computers", e))?;
                groups.entry(c).or_default().push(g);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT computer_id, dns_name, requested_groups, os_description, registered_at IS NOT NULL, first_seen_at, last_contact_at, last_sync_at, last_report_at
                 FROM computers ORDER BY dns_name",
            )
            .map_err(|e| self.err("listing computers", e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ComputerRecord {
                    computer_id: r.get(0)?,
                    dns_name: r.get(1)?,
                    requested_groups: r.get(2)?,
                    os_description: r.get(3)?,
                    registered: r.get(4)?,
                    groups: Vec::new(),
                    first_seen_at: r.get(5)?,
                    last_contact_at: r.get(6)?,
                    last_sync_at: r.get(7)?,
                    last_report_at: r.get(8)?,
                })
            })
            .map_err(|e| self.err("listing computers", e))?;
        let mut out = Vec::new();
        for row in rows {
            let mut c = row.map_err(|e| self.err("listing computers", e))?;
            c.groups = groups.remove(c.computer_id.as_str()).unwrap_or_default();
            out.push(c);
        }
        Ok(out)
    }

    fn computer(&self, computer_id: &str) -> StoreResult<Option<ComputerRecord>> {
        let groups: Vec<GroupId> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT group_id FROM computer_groups WHERE computer_id = ?1")
                .map_err(|e| self.err("reading a computer", e))?;
            stmt.query_map([computer_id], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err("reading a computer", e))?
        };
        self.conn
            .query_row(
                "SELECT computer_id, dns_name, requested_groups, os_description, registered_at IS NOT NULL, first_seen_at, last_contact_at, last_sync_at, last_report_at
                 FROM computers WHERE computer_id = ?1",
                [computer_id],
                |r| {
                    Ok(ComputerRecord {
                        computer_id: r.get(0)?,
                        dns_name: r.get(1)?,
                        requested_groups: r.get(2)?,
                        os_description: r.get(3)?,
                        registered: r.get(4)?,
                        groups: groups.clone(),
                        first_seen_at: r.get(5)?,
                        last_contact_at: r.get(6)?,
                        last_sync_at: r.get(7)?,
                        last_report_at: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err("reading a computer", e))
    }

    fn deployment_stamp(&self) -> StoreResult<i64> {
        Ok(self.setting("deployment_stamp")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn catalog_stamp(&self) -> StoreResult<i64> {
        Ok(self.setting("catalog_stamp")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn approvals(&self) -> StoreResult<Vec<Approval>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY approval_id"))
            .map_err(|e| self.err("listing approvals", e))?;
        stmt.query_map([], approval_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing approvals", e))
    }

    fn declines(&self) -> StoreResult<Vec<Decline>> {
        let mut stmt = self
            .conn
            .prepare("SELECT update_id, declined_at, changed_stamp FROM declined_updates")
            .map_err(|e| self.err("listing declines", e))?;
        stmt.query_map([], |r| {
            Ok(Decline { update_id: r.get(0)?, declined_at: r.get(1)?, changed_stamp: r.get(2)? })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err("listing declines", e))
    }

    fn approval_change_log(&self) -> StoreResult<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT changed_stamp, update_id FROM approval_changes")
            .map_err(|e| self.err("reading approval changes", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading approval changes", e))
    }

    fn apply_client_writes(&mut self, writes: &[ClientWrite]) -> StoreResult<()> {
        let db = self.db_path();
        let now = now_rfc3339();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(&db, "recording client activity", e))?;
        let fail = |e: rusqlite::Error| StoreError::sqlite(&db, "recording client activity", e);
        // Read once per batch: the batch is one transaction, so it cannot change in between.
        let mut contacts = Contacts {
            tx: &tx,
            now: &now,
            targeting: super::groups::targeting_in(&tx).map_err(fail)?,
            client_groups: tx
                .query_row(
                    "SELECT COUNT(*) FROM target_groups WHERE created_by_client = 1",
                    [],
                    |r| r.get(0),
                )
                .map_err(fail)?,
        };
        let plan = WritePlan::new(writes);
        for w in &plan.in_order {
            match w {
                RowWrite::Contact { computer_id, dns_name, requested_groups } => {
                    contacts.record(computer_id, dns_name, requested_groups).map_err(fail)?;
                }
                RowWrite::Register { computer_id, info, os_description } => {
                    // Kept as a JSON object (names sorted).
                    let info = serde_json::Value::Object(
                        info.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect(),
                    )
                    .to_string();
                    tx.prepare_cached(
                        "UPDATE computers SET info = ?2, os_description = ?3, registered_at = COALESCE(registered_at, ?4), last_contact_at = ?4 WHERE computer_id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![computer_id, info, os_description, now]))
                    .map_err(fail)?;
                }
                RowWrite::Downstream { server_id, name } => {
                    tx.prepare_cached(
                        "INSERT INTO downstream_servers (server_id, name, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)
                         ON CONFLICT (server_id) DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at",
                    )
                    .and_then(|mut s| s.execute(params![server_id, name, now]))
                    .map_err(fail)?;
                }
            }
        }
        record_activity(&tx, &now, &plan).map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn events(&self, computer_id: Option<&str>) -> StoreResult<Vec<EventRecord>> {
        let sql = "SELECT event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult, time_at_target, app_name,
                          replacement_strings, misc_data FROM events WHERE (?1 IS NULL OR computer_id = ?1) ORDER BY time_at_target DESC, rowid DESC";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err("reading events", e))?;
        stmt.query_map([computer_id], |r| {
            let rs: String = r.get::<_, Option<String>>(9)?.unwrap_or_default();
            let md: String = r.get::<_, Option<String>>(10)?.unwrap_or_default();
            Ok(EventRecord {
                event_instance_id: r.get(0)?,
                computer_id: r.get(1)?,
                event_id: r.get(2)?,
                source_id: r.get(3)?,
                update_id: r.get(4)?,
                revision_number: r.get(5)?,
                win32_hresult: r.get(6)?,
                time_at_target: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                app_name: r.get(8)?,
                replacement_strings: serde_json::from_str(&rs).unwrap_or_default(),
                misc_data: serde_json::from_str(&md).unwrap_or_default(),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err("reading events", e))
    }
}

/// The computers' contacts of one batch of client writes, in its transaction: the computer row
/// and, with client-side targeting, the groups it names.
struct Contacts<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    now: &'t str,
    targeting: crate::store::Targeting,
    /// Groups clients have created so far (bounded by `targeting.max_client_groups`).
    client_groups: u32,
}

impl Contacts<'_> {
    /// A computer made contact: its row, and its groups under client-side targeting (a
    /// computer without any waits in Unassigned Computers).
    fn record(
        &mut self,
        computer_id: &str,
        dns_name: &str,
        requested_groups: &[crate::store::GroupName],
    ) -> rusqlite::Result<()> {
        let names: Vec<&str> =
            requested_groups.iter().map(crate::store::GroupName::as_str).collect();
        let requested = (!names.is_empty()).then(|| names.join(";"));
        self.tx.prepare_cached(
            "INSERT INTO computers (computer_id, dns_name, requested_groups, first_seen_at, last_contact_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (computer_id) DO UPDATE SET dns_name = excluded.dns_name, requested_groups = excluded.requested_groups,
                 last_contact_at = excluded.last_contact_at",
        )
        .and_then(|mut s| s.execute(params![computer_id, dns_name, requested, self.now]))?;
        // Client-side targeting: the groups the client names (created on first use
        // if so configured); without any, the computer waits in Unassigned Computers.
        // Server-side targeting keeps what administrators chose.
        let requested = if self.targeting.mode == crate::store::TargetingMode::Client {
            names.as_slice()
        } else {
            &[]
        };
        let mut group_ids = Vec::new();
        for name in requested {
            let existing: Option<String> = self
                .tx
                .query_row(
                    "SELECT group_id FROM target_groups WHERE name = ?1 COLLATE NOCASE",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => id,
                None if !self.targeting.create_missing_groups => {
                    tracing::info!("{computer_id} asks for group {name:?}, which does not exist");
                    continue;
                }
                None if self.client_groups >= self.targeting.max_client_groups => {
                    tracing::warn!(
                        "{computer_id} asks for group {name:?}, which does not exist; clients have created {} groups, \
                         the most allowed (`ferry groups targeting --max-client-groups`), so it is not created",
                        self.client_groups
                    );
                    continue;
                }
                None => {
                    let id = crate::random::guid().to_string();
                    self.tx.execute(
                        "INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at, created_by_client) VALUES (?1, ?2, ?3, 0, ?4, 1)",
                        params![id, name, ALL_COMPUTERS, self.now],
                    )?;
                    self.client_groups += 1;
                    id
                }
            };
            group_ids.push(id);
        }
        let has_groups: bool = self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM computer_groups WHERE computer_id = ?1)",
            [computer_id],
            |r| r.get(0),
        )?;
        if !group_ids.is_empty() {
            self.tx.execute("DELETE FROM computer_groups WHERE computer_id = ?1", [computer_id])?;
            for g in &group_ids {
                self.tx.execute(
                    "INSERT OR IGNORE INTO computer_groups (computer_id, group_id) VALUES (?1, ?2)",
                    [computer_id, g],
                )?;
            }
        } else if !has_groups {
            self.tx.execute(
                "INSERT OR IGNORE INTO computer_groups (computer_id, group_id) VALUES (?1, ?2)",
                [computer_id, UNASSIGNED_COMPUTERS],
            )?;
        }
        Ok(())
    }
}

/// What a batch's syncs and reports add: sync and report times, the events, and each
/// reporting computer's newest events kept.
fn record_activity(
    tx: &rusqlite::Transaction<'_>,
    now: &str,
    plan: &WritePlan<'_>,
) -> rusqlite::Result<()> {
    for computer_id in &plan.synced {
        tx.prepare_cached(
            "UPDATE computers SET last_sync_at = ?2, last_contact_at = ?2 WHERE computer_id = ?1",
        )
        .and_then(|mut s| s.execute(params![computer_id, now]))?;
    }
    let mut added: HashMap<&str, i64> = HashMap::new();
    for e in &plan.events {
        let stored = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult,
                     time_at_target, received_at, app_name, replacement_strings, misc_data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.event_instance_id,
                    e.computer_id,
                    e.event_id,
                    e.source_id,
                    e.update_id,
                    e.revision_number,
                    e.win32_hresult,
                    e.time_at_target,
                    now,
                    e.app_name,
                    serde_json::to_string(&e.replacement_strings).unwrap_or_default(),
                    serde_json::to_string(&e.misc_data).unwrap_or_default(),
                ])
            })?;
        *added.entry(e.computer_id.as_str()).or_default() += stored as i64;
    }
    for computer_id in &plan.reported {
        tx.prepare_cached(
            "UPDATE computers SET last_report_at = ?2, last_contact_at = ?2 WHERE computer_id = ?1",
        )
        .and_then(|mut s| s.execute(params![computer_id, now]))?;
    }
    for computer_id in &plan.trimmed {
        let added = added.get(computer_id.as_str()).copied().unwrap_or(0);
        let at_most: Option<i64> = tx
            .prepare_cached(
                "UPDATE computers SET events_at_most = events_at_most + ?2 WHERE computer_id = ?1
                 RETURNING events_at_most",
            )
            .and_then(|mut s| s.query_row(params![computer_id, added], |r| r.get(0)).optional())?;
        if over_the_event_limit(at_most) {
            trim_events(tx, computer_id)?;
        }
    }
    Ok(())
}

/// Keeps a computer's newest events and counts them again. A client reports a few events a day;
/// one that sends a flood of made-up events cannot grow the store for ever.
fn trim_events(tx: &rusqlite::Transaction<'_>, computer_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM events WHERE rowid IN
             (SELECT rowid FROM events WHERE computer_id = ?1 ORDER BY rowid DESC LIMIT -1 OFFSET ?2)",
    )
    .and_then(|mut s| s.execute(params![computer_id, MAX_EVENTS_PER_COMPUTER as i64]))?;
    tx.prepare_cached(
        "UPDATE computers SET events_at_most = (SELECT COUNT(*) FROM events WHERE computer_id = ?1)
         WHERE computer_id = ?1",
    )
    .and_then(|mut s| s.execute(params![computer_id]))?;
    Ok(())
}
