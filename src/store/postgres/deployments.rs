//! Administration changes on PostgreSQL: one READ COMMITTED transaction per change, under the
//! next deployment stamp, with the rows it may read and write. Behaves as the SQLite backend's
//! `sqlite/deployments.rs` does (same results, same refusals).
//!
//! Invariant: every change of approvals or declines is logged in `approval_changes` under the
//! stamp of its transaction, and the stamp advances only when something changed.
//! Invariant: front ends on one database never share a stamp or lose a change: a change locks
//! the stamp's settings row first and holds it to its end, so changes run one after the other.

use super::{PostgresStore, database_error};
use crate::admin::Action;
use crate::ids::{ComputerId, GroupId, UpdateId};
use crate::store::{Approval, GroupRemoval, TargetGroup, UNASSIGNED_COMPUTERS};
use crate::store::{DeploymentRows, DeploymentStorage, RowsChange};
use crate::store::{StoreError, StoreResult, now_rfc3339};
use postgres::types::ToSql;
use postgres::{GenericClient, IsolationLevel, Row, Transaction};
use std::cell::RefCell;

/// The settings key of the deployment stamp (`ClientStorage::deployment_stamp` reads it).
const STAMP_KEY: &str = "deployment_stamp";

pub(super) const APPROVAL_COLUMNS: &str = "approval_id, deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp";

pub(super) fn approval_from_row(r: &Row) -> Result<Approval, postgres::Error> {
    Ok(Approval {
        approval_id: r.try_get(0)?,
        deployment_guid: r.try_get(1)?,
        update_id: r.try_get(2)?,
        group_id: r.try_get(3)?,
        action: r.try_get(4)?,
        deadline: r.try_get(5)?,
        admin: r.try_get(6)?,
        changed_at: r.try_get(7)?,
        changed_stamp: r.try_get(8)?,
    })
}

/// A group by name (case-insensitive, as the unique index on `lower(name)` compares them) or
/// GUID, through a connection or inside a transaction. Should a group's name be another
/// group's GUID, the GUID wins.
pub(super) fn group_in(
    client: &mut impl GenericClient,
    name_or_id: &str,
) -> Result<Option<TargetGroup>, postgres::Error> {
    let row = client.query_opt(
        "SELECT group_id, name, parent_id, is_builtin FROM target_groups
         WHERE lower(name) = lower($1) OR group_id = lower($1)
         ORDER BY group_id = lower($1) DESC LIMIT 1",
        &[&name_or_id],
    )?;
    row.map(|r| {
        Ok(TargetGroup {
            group_id: r.try_get(0)?,
            name: r.try_get(1)?,
            parent_id: r.try_get(2)?,
            is_builtin: r.try_get(3)?,
        })
    })
    .transpose()
}

/// Locks the stamp's row (creating it at 0 when there is none) until the transaction ends,
/// and returns the stamp the change under way gets. `DO UPDATE` (a no-op) rather than `DO
/// NOTHING`: it locks the row, waits for a change holding it, and returns what that one stored.
fn lock_next_stamp(tx: &mut Transaction<'_>) -> Result<i64, postgres::Error> {
    let row = tx.query_one(
        "INSERT INTO settings (key, value) VALUES ($1, '0')
         ON CONFLICT (key) DO UPDATE SET value = settings.value RETURNING value",
        &[&STAMP_KEY],
    )?;
    let value: String = row.try_get(0)?;
    // As SQLite's CAST and `ClientStorage::deployment_stamp`: a damaged value counts as 0.
    Ok(value.trim().parse::<i64>().unwrap_or(0) + 1)
}

/// An administration change under way in PostgreSQL: [`DeploymentRows`] inside one
/// transaction. (`DeploymentRows` takes `&self`; the transaction needs `&mut`.)
pub struct PgDeploymentTx<'c> {
    tx: RefCell<Transaction<'c>>,
    stamp: i64,
    now: String,
    database: String,
}

impl PgDeploymentTx<'_> {
    fn fail(&self, what: String) -> impl FnOnce(postgres::Error) -> StoreError + '_ {
        move |e| database_error(&self.database, &what, &e)
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        self.tx.borrow_mut().execute(sql, params)
    }

    fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        self.tx.borrow_mut().query_opt(sql, params)
    }

    fn exists(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<bool, postgres::Error> {
        self.query_opt(sql, params).map(|row| row.is_some())
    }

    fn log(
        &self,
        deployment_guid: &str,
        update_id: &str,
        group_id: &str,
        change: &str,
    ) -> Result<u64, postgres::Error> {
        self.execute(
            "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change) VALUES ($1, $2, $3, $4, $5)",
            &[&self.stamp, &deployment_guid, &update_id, &group_id, &change],
        )
    }

    /// Logs the removal of every approval that matches `filter` (`update_id` or `group_id`
    /// equal to `$1`); returns how many there were.
    fn log_removals(&self, filter: &str, value: &str) -> Result<u64, postgres::Error> {
        self.execute(
            &format!(
                "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change)
                 SELECT $2, deployment_guid, update_id, group_id, 'removed' FROM approvals WHERE {filter} = $1"
            ),
            &[&value, &self.stamp],
        )
    }
}

impl DeploymentRows for PgDeploymentTx<'_> {
    fn is_declined(&self, update_id: &UpdateId) -> StoreResult<bool> {
        self.exists("SELECT 1 FROM declined_updates WHERE update_id = $1", &[update_id])
            .map_err(self.fail(format!("reading whether {update_id} is declined")))
    }

    fn is_expired(&self, update_id: &UpdateId) -> StoreResult<bool> {
        self.exists(
            "SELECT 1 FROM revisions WHERE update_id = $1 AND is_latest AND publication_state = 'Expired'",
            &[update_id],
        )
        .map_err(self.fail(format!("reading whether {update_id} is expired")))
    }

    fn put_approval(
        &self,
        update_id: &UpdateId,
        group_id: &GroupId,
        action: Action,
        deadline: Option<&str>,
        admin: Option<&str>,
    ) -> StoreResult<Approval> {
        let fail = || self.fail(format!("approving {update_id}"));
        // An upsert, as in SQLite: a replacement keeps the approval's id and deployment GUID
        // (and takes a number from the identity all the same, as SQLite's AUTOINCREMENT does).
        let row = self
            .tx
            .borrow_mut()
            .query_one(
                &format!(
                    "INSERT INTO approvals (deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (update_id, group_id) DO UPDATE SET action = excluded.action, deadline = excluded.deadline,
                         admin = excluded.admin, changed_at = excluded.changed_at, changed_stamp = excluded.changed_stamp
                     RETURNING {APPROVAL_COLUMNS}"
                ),
                &[
                    &crate::random::guid().to_string(),
                    update_id,
                    group_id,
                    &action,
                    &deadline,
                    &admin,
                    &self.now,
                    &self.stamp,
                ],
            )
            .map_err(fail())?;
        let approval = approval_from_row(&row).map_err(fail())?;
        self.log(&approval.deployment_guid, update_id.as_str(), group_id.as_str(), "approved")
            .map_err(fail())?;
        Ok(approval)
    }

    fn remove_approval(&self, update_id: &UpdateId, group_id: &GroupId) -> StoreResult<bool> {
        let fail = || self.fail(format!("removing the approval of {update_id}"));
        let removed = self
            .query_opt(
                "DELETE FROM approvals WHERE update_id = $1 AND group_id = $2 RETURNING deployment_guid",
                &[update_id, group_id],
            )
            .map_err(fail())?;
        let Some(row) = removed else { return Ok(false) };
        let guid: String = row.try_get(0).map_err(fail())?;
        self.log(&guid, update_id.as_str(), group_id.as_str(), "removed").map_err(fail())?;
        Ok(true)
    }

    fn decline(&self, update_id: &UpdateId, admin: Option<&str>) -> StoreResult<bool> {
        let fail = || self.fail(format!("declining {update_id}"));
        let added = self
            .execute(
                "INSERT INTO declined_updates (update_id, declined_at, admin, changed_stamp) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (update_id) DO NOTHING",
                &[update_id, &self.now, &admin, &self.stamp],
            )
            .map_err(fail())?;
        if added == 0 {
            return Ok(false);
        }
        self.log_removals("update_id", update_id.as_str()).map_err(fail())?;
        self.execute("DELETE FROM approvals WHERE update_id = $1", &[update_id]).map_err(fail())?;
        self.log("", update_id.as_str(), "", "declined").map_err(fail())?;
        Ok(true)
    }

    fn undecline(&self, update_id: &UpdateId) -> StoreResult<bool> {
        let fail = || self.fail(format!("undeclining {update_id}"));
        let removed = self
            .execute("DELETE FROM declined_updates WHERE update_id = $1", &[update_id])
            .map_err(fail())?;
        if removed == 0 {
            return Ok(false);
        }
        self.log("", update_id.as_str(), "", "undeclined").map_err(fail())?;
        Ok(true)
    }

    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>> {
        group_in(&mut *self.tx.borrow_mut(), name_or_id)
            .map_err(self.fail(format!("reading group {name_or_id:?}")))
    }

    fn parent_of(&self, group_id: &str) -> StoreResult<Option<GroupId>> {
        let fail = || self.fail(format!("reading the parent of group {group_id}"));
        let row = self
            .query_opt("SELECT parent_id FROM target_groups WHERE group_id = $1", &[&group_id])
            .map_err(fail())?;
        Ok(row.map(|r| r.try_get(0)).transpose().map_err(fail())?.flatten())
    }

    fn subgroup_count(&self, group_id: &str) -> StoreResult<u64> {
        let fail = || self.fail(format!("counting the subgroups of {group_id}"));
        let row = self
            .tx
            .borrow_mut()
            .query_one("SELECT count(*) FROM target_groups WHERE parent_id = $1", &[&group_id])
            .map_err(fail())?;
        let count: i64 = row.try_get(0).map_err(fail())?;
        Ok(count as u64)
    }

    fn insert_group(&self, group: &TargetGroup) -> StoreResult<()> {
        self.execute(
            "INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&group.group_id, &group.name, &group.parent_id, &group.is_builtin, &self.now],
        )
        .map_err(self.fail(format!("creating group {:?}", group.name)))?;
        Ok(())
    }

    fn set_parent(&self, group_id: &str, parent_id: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE target_groups SET parent_id = $2 WHERE group_id = $1",
            &[&group_id, &parent_id],
        )
        .map_err(self.fail(format!("moving group {group_id}")))?;
        Ok(())
    }

    fn delete_group(&self, group: &TargetGroup) -> StoreResult<GroupRemoval> {
        let id = group.group_id.as_str();
        let fail = || self.fail(format!("removing group {:?}", group.name));
        let approvals_removed = self.log_removals("group_id", id).map_err(fail())?;
        self.execute("DELETE FROM approvals WHERE group_id = $1", &[&id]).map_err(fail())?;
        let rules_removed = self
            .execute("DELETE FROM approval_rules WHERE group_id = $1", &[&id])
            .map_err(fail())?;
        let computers_unassigned = self
            .execute(
                "INSERT INTO computer_groups (computer_id, group_id)
                 SELECT computer_id, $2 FROM computer_groups cg WHERE group_id = $1
                   AND NOT EXISTS (SELECT 1 FROM computer_groups o WHERE o.computer_id = cg.computer_id AND o.group_id <> $1)
                 ON CONFLICT DO NOTHING",
                &[&id, &UNASSIGNED_COMPUTERS],
            )
            .map_err(fail())?;
        self.execute("DELETE FROM computer_groups WHERE group_id = $1", &[&id]).map_err(fail())?;
        self.execute("DELETE FROM target_groups WHERE group_id = $1", &[&id]).map_err(fail())?;
        let count = |n: u64| usize::try_from(n).expect("a count of rows fits in usize");
        Ok(GroupRemoval {
            group: group.name.clone(),
            computers_unassigned: count(computers_unassigned),
            approvals_removed: count(approvals_removed),
            rules_removed: count(rules_removed),
        })
    }

    fn computer_exists(&self, computer_id: &ComputerId) -> StoreResult<bool> {
        self.exists("SELECT 1 FROM computers WHERE computer_id = $1", &[computer_id])
            .map_err(self.fail(format!("reading computer {computer_id}")))
    }

    fn place_computer(
        &self,
        computer_id: &ComputerId,
        group_id: &GroupId,
        keep: bool,
    ) -> StoreResult<()> {
        let fail = || self.fail(format!("placing computer {computer_id}"));
        if keep {
            self.execute(
                "DELETE FROM computer_groups WHERE computer_id = $1 AND group_id = $2",
                &[computer_id, &UNASSIGNED_COMPUTERS],
            )
        } else {
            self.execute("DELETE FROM computer_groups WHERE computer_id = $1", &[computer_id])
        }
        .map_err(fail())?;
        self.execute(
            "INSERT INTO computer_groups (computer_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[computer_id, group_id],
        )
        .map_err(fail())?;
        Ok(())
    }

    fn forget_computer(&self, computer_id: &ComputerId) -> StoreResult<bool> {
        let fail = || self.fail(format!("removing computer {computer_id}"));
        for sql in [
            "DELETE FROM computer_groups WHERE computer_id = $1",
            "DELETE FROM events WHERE computer_id = $1",
        ] {
            self.execute(sql, &[computer_id]).map_err(fail())?;
        }
        let removed = self
            .execute("DELETE FROM computers WHERE computer_id = $1", &[computer_id])
            .map_err(fail())?;
        Ok(removed > 0)
    }
}

impl DeploymentStorage for PostgresStore {
    /// One READ COMMITTED transaction: the stamp's row, locked first, keeps every other
    /// change (from any front end) waiting until this one commits or rolls back, so a rule's
    /// reads and the write it allows see one state of what changes make.
    fn administer_rows(&mut self, what: &str, change: &mut RowsChange<'_>) -> StoreResult<()> {
        let mut connection = self.connection()?;
        let mut tx = connection
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .map_err(self.fail(format!("{what}: starting the transaction")))?;
        let stamp = lock_next_stamp(&mut tx)
            .map_err(self.fail(format!("{what}: reading the deployment stamp")))?;
        let rows = PgDeploymentTx {
            tx: RefCell::new(tx),
            stamp,
            now: now_rfc3339(),
            database: self.url.to_string(),
        };
        if !change(&rows)? {
            return Ok(()); // dropping the transaction rolls it back
        }
        let mut tx = rows.tx.into_inner();
        tx.execute(
            "UPDATE settings SET value = $2 WHERE key = $1",
            &[&STAMP_KEY, &stamp.to_string()],
        )
        .map_err(self.fail(format!("{what}: advancing the deployment stamp to {stamp}")))?;
        super::changes::announce(&mut tx, super::changes::Change::Deployments)
            .map_err(self.fail(format!("{what}: announcing the change")))?;
        tx.commit().map_err(self.fail(format!("{what}: committing")))
    }
}
