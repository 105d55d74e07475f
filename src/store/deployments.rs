//! Administration changes: one transaction under the next deployment stamp. (The SQL is in
//! `sqlite/deployments.rs`.)

use super::*;
use crate::admin::Action;
use crate::ids::{ComputerId, GroupId, UpdateId};

/// Administration changes: one transaction under the next deployment stamp. Callers use
/// [`Administer::administer`]; this is the form a backend implements.
pub trait DeploymentStorage {
    /// Runs `change` once in one transaction under the next deployment stamp. The stamp
    /// advances and the transaction commits only when `change` returns `Ok(true)`; otherwise
    /// (nothing changed, a refusal, an error) everything is rolled back.
    fn administer_rows(&mut self, what: &str, change: &mut RowsChange<'_>) -> StoreResult<()>;
}

/// An administration change over the rows: `Ok(true)` commits it.
pub type RowsChange<'a> = dyn FnMut(&dyn DeploymentRows) -> StoreResult<bool> + 'a;

/// [`DeploymentStorage`] with the change's own value and error.
pub trait Administer {
    /// Runs an administration change in one transaction under the next deployment stamp. An
    /// error from `change` (a refusal) rolls everything back. The stamp advances and the
    /// transaction commits only when `changed` says something did, so the running server
    /// reloads only then.
    fn administer<T, E: From<StoreError>>(
        &mut self,
        what: &str,
        change: impl FnOnce(&dyn DeploymentRows) -> Result<T, E>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, E>;
}

impl<S: DeploymentStorage + ?Sized> Administer for S {
    fn administer<T, E: From<StoreError>>(
        &mut self,
        what: &str,
        change: impl FnOnce(&dyn DeploymentRows) -> Result<T, E>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, E> {
        let (mut change, mut changed) = (Some(change), Some(changed));
        let mut outcome = None;
        self.administer_rows(what, &mut |rows| {
            let (change, changed) = (change.take(), changed.take());
            let result = change.expect("a change runs once")(rows);
            let commit = result.as_ref().is_ok_and(changed.expect("a change runs once"));
            outcome = Some(result);
            Ok(commit)
        })?;
        outcome.expect("administer_rows ran the change")
    }
}

/// The rows an administration change reads and writes, inside its transaction (see
/// [`DeploymentStorage::administer`]).
pub trait DeploymentRows {
    fn is_declined(&self, update_id: &UpdateId) -> StoreResult<bool>;

    /// Whether the update's newest revision is expired (withdrawn by Microsoft).
    fn is_expired(&self, update_id: &UpdateId) -> StoreResult<bool>;

    /// Approves an update for a group, replacing the group's approval of it if there is one.
    fn put_approval(
        &self,
        update_id: &UpdateId,
        group_id: &GroupId,
        action: Action,
        deadline: Option<&str>,
        admin: Option<&str>,
    ) -> StoreResult<Approval>;

    /// Removes a group's approval of an update; false when there was none.
    fn remove_approval(&self, update_id: &UpdateId, group_id: &GroupId) -> StoreResult<bool>;

    /// Declines an update: offered to no one, its approvals removed. False when it already was.
    fn decline(&self, update_id: &UpdateId, admin: Option<&str>) -> StoreResult<bool>;

    /// Makes a declined update approvable again; false when it was not declined.
    fn undecline(&self, update_id: &UpdateId) -> StoreResult<bool>;

    /// A group by name (case-insensitive) or GUID.
    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>>;

    /// The group a group is under (`None`: a root, or no such group).
    fn parent_of(&self, group_id: &str) -> StoreResult<Option<crate::ids::GroupId>>;

    fn subgroup_count(&self, group_id: &str) -> StoreResult<u64>;

    fn insert_group(&self, group: &TargetGroup) -> StoreResult<()>;

    fn set_parent(&self, group_id: &str, parent_id: &str) -> StoreResult<()>;

    /// Deletes a group with its approvals (logged as removed) and its rules; computers that
    /// were only in it go to Unassigned Computers.
    fn delete_group(&self, group: &TargetGroup) -> StoreResult<GroupRemoval>;

    fn computer_exists(&self, computer_id: &ComputerId) -> StoreResult<bool>;

    /// Puts a computer in a group, replacing its groups (`keep`: leaving only Unassigned
    /// Computers).
    fn place_computer(
        &self,
        computer_id: &ComputerId,
        group_id: &GroupId,
        keep: bool,
    ) -> StoreResult<()>;

    /// Forgets a computer with its memberships and events; false when there was none.
    fn forget_computer(&self, computer_id: &ComputerId) -> StoreResult<bool>;
}
