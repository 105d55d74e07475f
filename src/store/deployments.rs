//! Administration changes: one transaction under the next deployment stamp. (The SQL is in
//! `sqlite/deployments.rs`.)

use super::*;

/// Administration changes: one transaction under the next deployment stamp.
pub trait DeploymentStorage {
    /// Runs an administration change in one transaction under the next deployment stamp. An
    /// error from `change` (a refusal) rolls everything back. The stamp advances and the
    /// transaction commits only when `changed` says something did, so the running server
    /// reloads only then.
    fn administer<T, E: From<StoreError>>(
        &mut self,
        what: &str,
        change: impl FnOnce(&DeploymentTx<'_>) -> Result<T, E>,
        changed: impl FnOnce(&T) -> bool,
    ) -> Result<T, E>;
}
