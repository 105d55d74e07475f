//! The storage side of administration changes: one transaction under the next deployment stamp,
//! and the rows it may read and write. The rules that decide what may change live in `admin/`;
//! they run inside [`SqliteStore::administer`], so a rule's check and the write it allows are one
//! transaction.
//!
//! Invariant: every change of approvals or declines is logged in `approval_changes` under the
//! stamp of its transaction, and the stamp advances only when something changed.

use super::clients::{APPROVAL_COLUMNS, approval_from_row, next_stamp, set_stamp};
use super::groups::group_in;
use crate::admin::Action;
use crate::ids::{ComputerId, GroupId, UpdateId};
use crate::store::{Approval, GroupRemoval, TargetGroup, UNASSIGNED_COMPUTERS};
use crate::store::{DeploymentRows, DeploymentStorage, RowsChange};
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

impl ToSql for Action {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// An action the store holds that this ferry does not know (written by hand, or by a newer
/// ferry) offers nothing: read as Block, as it always was, never as a failure to serve.
impl FromSql for Action {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Action> {
        let name = value.as_str()?;
        Ok(Action::from_name(name).unwrap_or_else(|| {
            tracing::warn!("approval action {name:?} is unknown: read as Block");
            Action::Block
        }))
    }
}

/// An administration change under way in SQLite: [`DeploymentRows`] inside one transaction.
pub struct DeploymentTx<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    stamp: i64,
    now: String,
    db: &'t Path,
}

impl DeploymentTx<'_> {
    fn fail(&self, what: String) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::sqlite(self.db, what, e)
    }

    fn log(
        &self,
        deployment_guid: &str,
        update_id: &str,
        group_id: &str,
        change: &str,
    ) -> rusqlite::Result<usize> {
        self.tx.execute(
            "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.stamp, deployment_guid, update_id, group_id, change],
        )
    }
}

impl DeploymentRows for DeploymentTx<'_> {
    fn is_declined(&self, update_id: &UpdateId) -> StoreResult<bool> {
        let found = self
            .tx
            .query_row("SELECT 1 FROM declined_updates WHERE update_id = ?1", [update_id], |_| {
                Ok(())
            })
            .optional();
        Ok(found.map_err(self.fail(format!("reading whether {update_id} is declined")))?.is_some())
    }

    fn is_expired(&self, update_id: &UpdateId) -> StoreResult<bool> {
        let found = self
            .tx
            .query_row(
                "SELECT 1 FROM revisions WHERE update_id = ?1 AND is_latest = 1 AND publication_state = 'Expired'",
                [update_id],
                |_| Ok(()),
            )
            .optional();
        Ok(found.map_err(self.fail(format!("reading whether {update_id} is expired")))?.is_some())
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
        self.tx
            .execute(
                "INSERT INTO approvals (deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (update_id, group_id) DO UPDATE SET action = excluded.action, deadline = excluded.deadline, admin = excluded.admin,
                     changed_at = excluded.changed_at, changed_stamp = excluded.changed_stamp",
                params![crate::random::guid().to_string(), update_id, group_id, action, deadline, admin, self.now, self.stamp],
            )
            .map_err(fail())?;
        let approval = self
            .tx
            .query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE update_id = ?1 AND group_id = ?2"),
                params![update_id, group_id],
                approval_from_row,
            )
            .map_err(fail())?;
        self.log(&approval.deployment_guid, update_id, group_id, "approved").map_err(fail())?;
        Ok(approval)
    }

    fn remove_approval(&self, update_id: &UpdateId, group_id: &GroupId) -> StoreResult<bool> {
        let fail = || self.fail(format!("removing the approval of {update_id}"));
        let guid: Option<String> = self
            .tx
            .query_row(
                "SELECT deployment_guid FROM approvals WHERE update_id = ?1 AND group_id = ?2",
                params![update_id, group_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail())?;
        let Some(guid) = guid else { return Ok(false) };
        self.tx
            .execute(
                "DELETE FROM approvals WHERE update_id = ?1 AND group_id = ?2",
                params![update_id, group_id],
            )
            .map_err(fail())?;
        self.log(&guid, update_id, group_id, "removed").map_err(fail())?;
        Ok(true)
    }

    fn decline(&self, update_id: &UpdateId, admin: Option<&str>) -> StoreResult<bool> {
        let fail = || self.fail(format!("declining {update_id}"));
        let added = self
            .tx
            .execute(
                "INSERT OR IGNORE INTO declined_updates (update_id, declined_at, admin, changed_stamp) VALUES (?1, ?2, ?3, ?4)",
                params![update_id, self.now, admin, self.stamp],
            )
            .map_err(fail())?;
        if added == 0 {
            return Ok(false);
        }
        self.tx
            .execute(
                "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change)
                 SELECT ?2, deployment_guid, update_id, group_id, 'removed' FROM approvals WHERE update_id = ?1",
                params![update_id, self.stamp],
            )
            .map_err(fail())?;
        self.tx
            .execute("DELETE FROM approvals WHERE update_id = ?1", [update_id])
            .map_err(fail())?;
        self.log("", update_id, "", "declined").map_err(fail())?;
        Ok(true)
    }

    fn undecline(&self, update_id: &UpdateId) -> StoreResult<bool> {
        let fail = || self.fail(format!("undeclining {update_id}"));
        if self
            .tx
            .execute("DELETE FROM declined_updates WHERE update_id = ?1", [update_id])
            .map_err(fail())?
            == 0
        {
            return Ok(false);
        }
        self.log("", update_id, "", "undeclined").map_err(fail())?;
        Ok(true)
    }

    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>> {
        group_in(self.tx, name_or_id).map_err(self.fail(format!("reading group {name_or_id:?}")))
    }

    fn parent_of(&self, group_id: &str) -> StoreResult<Option<crate::ids::GroupId>> {
        let parent = self
            .tx
            .query_row("SELECT parent_id FROM target_groups WHERE group_id = ?1", [group_id], |r| {
                r.get(0)
            })
            .optional();
        Ok(parent.map_err(self.fail(format!("reading the parent of group {group_id}")))?.flatten())
    }

    fn subgroup_count(&self, group_id: &str) -> StoreResult<u64> {
        let count: i64 = self
            .tx
            .query_row("SELECT count(*) FROM target_groups WHERE parent_id = ?1", [group_id], |r| {
                r.get(0)
            })
            .map_err(self.fail(format!("counting the subgroups of {group_id}")))?;
        Ok(count as u64)
    }

    fn insert_group(&self, group: &TargetGroup) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![group.group_id, group.name, group.parent_id, group.is_builtin, self.now],
            )
            .map_err(self.fail(format!("creating group {:?}", group.name)))?;
        Ok(())
    }

    fn set_parent(&self, group_id: &str, parent_id: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "UPDATE target_groups SET parent_id = ?2 WHERE group_id = ?1",
                [group_id, parent_id],
            )
            .map_err(self.fail(format!("moving group {group_id}")))?;
        Ok(())
    }

    fn delete_group(&self, group: &TargetGroup) -> StoreResult<GroupRemoval> {
        let (id, tx) = (&group.group_id, self.tx);
        let fail = || self.fail(format!("removing group {:?}", group.name));
        let approvals_removed = tx
            .execute(
                "INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change)
                 SELECT ?2, deployment_guid, update_id, group_id, 'removed' FROM approvals WHERE group_id = ?1",
                params![id, self.stamp],
            )
            .map_err(fail())?;
        tx.execute("DELETE FROM approvals WHERE group_id = ?1", [id]).map_err(fail())?;
        let rules_removed =
            tx.execute("DELETE FROM approval_rules WHERE group_id = ?1", [id]).map_err(fail())?;
        let computers_unassigned = tx
            .execute(
                "INSERT OR IGNORE INTO computer_groups (computer_id, group_id)
                 SELECT computer_id, ?2 FROM computer_groups cg WHERE group_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM computer_groups o WHERE o.computer_id = cg.computer_id AND o.group_id <> ?1)",
                params![id, UNASSIGNED_COMPUTERS],
            )
            .map_err(fail())?;
        tx.execute("DELETE FROM computer_groups WHERE group_id = ?1", [id]).map_err(fail())?;
        tx.execute("DELETE FROM target_groups WHERE group_id = ?1", [id]).map_err(fail())?;
        Ok(GroupRemoval {
            group: group.name.clone(),
            computers_unassigned,
            approvals_removed,
            rules_removed,
        })
    }

    fn computer_exists(&self, computer_id: &ComputerId) -> StoreResult<bool> {
        self.tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM computers WHERE computer_id = ?1)",
                [computer_id],
                |r| r.get(0),
            )
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
            self.tx
                .execute(
                    "DELETE FROM computer_groups WHERE computer_id = ?1 AND group_id = ?2",
                    [computer_id, UNASSIGNED_COMPUTERS],
                )
                .map_err(fail())?;
        } else {
            self.tx
                .execute("DELETE FROM computer_groups WHERE computer_id = ?1", [computer_id])
                .map_err(fail())?;
        }
        self.tx
            .execute(
                "INSERT OR IGNORE INTO computer_groups (computer_id, group_id) VALUES (?1, ?2)",
                params![computer_id, group_id],
            )
            .map_err(fail())?;
        Ok(())
    }

    fn forget_computer(&self, computer_id: &ComputerId) -> StoreResult<bool> {
        let fail = || self.fail(format!("removing computer {computer_id}"));
        for sql in [
            "DELETE FROM computer_groups WHERE computer_id = ?1",
            "DELETE FROM events WHERE computer_id = ?1",
        ] {
            self.tx.execute(sql, [computer_id]).map_err(fail())?;
        }
        let removed = self
            .tx
            .execute("DELETE FROM computers WHERE computer_id = ?1", [computer_id])
            .map_err(fail())?;
        Ok(removed > 0)
    }
}

impl SqliteStore {
    /// One transaction under the next deployment stamp, over the SQLite rows themselves.
    fn transact<T, E: From<StoreError>>(
        &mut self,
        what: &str,
        change: impl FnOnce(&DeploymentTx<'_>) -> Result<T, E>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, E> {
        let db = self.db_path();
        let fail = |e| StoreError::sqlite(&db, what, e);
        // IMMEDIATE: the rule's reads and the write it allows see one state of the store.
        let immediate = rusqlite::TransactionBehavior::Immediate;
        let tx = self.conn.transaction_with_behavior(immediate).map_err(fail)?;
        let stamp = next_stamp(&tx).map_err(fail)?;
        let value = change(&DeploymentTx { tx: &tx, stamp, now: now_rfc3339(), db: &db })?;
        if changed(&value) {
            set_stamp(&tx, stamp).map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
        Ok(value)
    }
}

impl DeploymentStorage for SqliteStore {
    fn administer_rows(&mut self, what: &str, change: &mut RowsChange<'_>) -> StoreResult<()> {
        self.transact(what, |tx| change(tx), |commit| *commit).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;

    /// Found by review: an approval action the store holds that this ferry does not know made
    /// every read of approvals fail (and `serve` with it); it offers nothing instead.
    #[test]
    fn an_unknown_stored_action_reads_as_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open_or_create(dir.path()).unwrap();
        let (update, group) = (
            UpdateId::parse("0b1b2b3b-0000-4000-8000-000000000001").unwrap(),
            GroupId::all_computers(),
        );
        store
            .administer(
                "test",
                |tx| tx.put_approval(&update, &group, Action::Install, None, None),
                |_| true,
            )
            .unwrap();
        store.conn.execute("UPDATE approvals SET action = 'PreDeploymentCheck'", []).unwrap();
        let approvals = store.approvals().unwrap();
        assert_eq!(approvals.iter().map(|a| a.action).collect::<Vec<_>>(), [Action::Block]);
    }
}
