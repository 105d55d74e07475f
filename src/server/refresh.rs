//! Keeps the in-memory snapshots in step with the store: approvals made with the CLI and
//! imported bundles reach the running server within a second, without a restart.

use super::snapshot::{Deployments, Snapshot};
use super::state::AppState;
use std::sync::Arc;
use std::time::Duration;

pub const POLL: Duration = Duration::from_millis(500);

/// Reloads what changed since the last look. Returns whether anything was swapped.
pub fn refresh_once(state: &AppState) -> Result<bool, crate::store::StoreError> {
    let (catalog_stamp, deployment_stamp) =
        state.pool.with(|s| Ok((s.catalog_stamp()?, s.deployment_stamp()?)))?;
    let mut changed = false;
    if catalog_stamp != state.catalog().stamp {
        let catalog = state.pool.with(|s| Snapshot::load(s))?;
        tracing::info!(revisions = catalog.revs.len(), "catalog reloaded");
        *state.catalog.write().expect("catalog lock") = Arc::new(catalog);
        super::release_freed_memory();
        changed = true;
    }
    if deployment_stamp != state.deployments().stamp {
        let (deployments, computers) =
            state.pool.with(|s| Ok((Deployments::load(s)?, s.computers()?)))?;
        *state.deployments.write().expect("deployments lock") = Arc::new(deployments);
        // Group moves and removals advance the same stamp.
        state.computers.write().expect("computer cache lock").reload(computers);
        changed = true;
    }
    Ok(changed)
}

/// Polls the store's change stamps until the runtime stops.
pub async fn watch(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(POLL).await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || refresh_once(&s)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("reading the store for changes failed: {e}"),
            Err(e) => tracing::error!("the refresh task failed: {e}"),
        }
    }
}
