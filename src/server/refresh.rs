//! Keeps the in-memory snapshots in step with the store: approvals made with the CLI or on
//! another front end, and imported bundles, reach the running server within a second, without
//! a restart.
//!
//! On SQLite the store's change stamps are polled twice a second. On PostgreSQL every change is
//! announced (`store::ChangeFeed`, LISTEN/NOTIFY): a listener thread wakes the refresh when one
//! arrives, and when it (re)connects, since changes made meanwhile were not announced to it. A
//! slow poll remains for what a listener between connections misses; while it cannot listen,
//! the stamps are polled twice a second again. Announcements also name computers whose group
//! memberships another front end changed (client-side targeting): those are read again.

use super::snapshot::{Deployments, Snapshot};
use super::state::AppState;
use crate::store::{Announced, ChangeFeed, FeedEvent};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the stamps are read without an announcement: where there is none (SQLite) or
/// while the listener is not connected.
pub const POLL: Duration = Duration::from_millis(500);
/// How often they are read anyway while the listener is connected.
pub const FALLBACK_POLL: Duration = Duration::from_secs(10);

/// What wakes the refresh, and what the listener saw (for `/metrics`).
#[derive(Default)]
pub struct Changes {
    wake: tokio::sync::Notify,
    /// The store announces changes (it has a feed); whether its listener is connected now.
    announced: bool,
    listening: AtomicBool,
    /// Announcements received, and times the listener (re)connected.
    pub notifications: AtomicU64,
    pub connects: AtomicU64,
    /// Computers to read again before the next answer uses their groups.
    regrouped: Mutex<Announced>,
}

impl Changes {
    /// Follows `feed` on a thread of its own when there is one; it ends when the server drops
    /// its `Changes`.
    pub fn start(feed: Option<Box<dyn ChangeFeed>>) -> Arc<Changes> {
        let changes = Arc::new(Changes { announced: feed.is_some(), ..Changes::default() });
        if let Some(feed) = feed {
            let weak = Arc::downgrade(&changes);
            let started = std::thread::Builder::new()
                .name("ferry-changes".into())
                .spawn(move || listen(feed, &weak));
            if let Err(e) = started {
                tracing::error!("cannot start the change listener ({e}); polling instead");
            }
        }
        changes
    }

    /// Whether the store announces changes (there is a listener).
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// Whether the listener is connected now.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Computers named since the last refresh took them.
    fn take_regrouped(&self) -> Announced {
        std::mem::take(&mut *self.regrouped.lock().expect("regrouped lock"))
    }

    /// Computers to read again: named by an announcement, or not read after all.
    fn regrouped(&self, named: Announced) {
        let mut pending = self.regrouped.lock().expect("regrouped lock");
        pending.every_computer |= named.every_computer;
        pending.add_regrouped(named.regrouped);
    }

    /// How long the refresh waits for an announcement before reading the stamps anyway.
    fn poll_every(&self) -> Duration {
        if self.announced && self.listening() { FALLBACK_POLL } else { POLL }
    }
}

/// The listener: wakes the refresh on every announcement and on every (re)connection.
fn listen(mut feed: Box<dyn ChangeFeed>, changes: &Weak<Changes>) {
    let mut lost = false;
    loop {
        let event = feed.next(FALLBACK_POLL);
        let Some(changes) = changes.upgrade() else { return };
        match event {
            FeedEvent::Changed(announced) => {
                changes.notifications.fetch_add(announced.count, Ordering::Relaxed);
                changes.regrouped(announced);
                changes.wake.notify_one();
            }
            FeedEvent::Quiet => {}
            FeedEvent::Listening => {
                if lost {
                    tracing::warn!("listening for changes again");
                    lost = false;
                }
                changes.connects.fetch_add(1, Ordering::Relaxed);
                changes.listening.store(true, Ordering::Relaxed);
                // Memberships changed meanwhile were not announced to it.
                changes.regrouped(Announced { every_computer: true, ..Announced::default() });
                changes.wake.notify_one();
            }
            FeedEvent::Lost { error, retry_in } => {
                changes.listening.store(false, Ordering::Relaxed);
                if !lost {
                    tracing::warn!(
                        "{error}; polling the store until listening again (next try in {retry_in:?})"
                    );
                    lost = true;
                    // The refresh waits for the slow poll: woken, it reads the store and
                    // polls quickly from then on.
                    changes.wake.notify_one();
                }
            }
        }
    }
}

/// Reloads what changed since the last look. Returns whether anything was swapped.
pub fn refresh_once(state: &AppState) -> Result<bool, crate::store::StoreError> {
    // Taken first: one named while the store is read is read at the next refresh.
    let regrouped = state.changes.take_regrouped();
    let read = read_changes(state, &regrouped);
    if read.is_err() {
        state.changes.regrouped(regrouped);
    }
    read
}

fn read_changes(state: &AppState, regrouped: &Announced) -> Result<bool, crate::store::StoreError> {
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
    } else if regrouped.every_computer {
        let computers = state.pool.with(|s| s.computers())?;
        state.computers.write().expect("computer cache lock").reload(computers);
    } else if !regrouped.regrouped.is_empty() {
        let mut ids: Vec<&str> = regrouped.regrouped.iter().map(|c| c.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let records: Vec<Option<_>> =
            state.pool.with(|s| ids.iter().map(|id| s.computer(id)).collect())?;
        let mut cache = state.computers.write().expect("computer cache lock");
        for record in records.into_iter().flatten() {
            cache.insert(record);
        }
    }
    Ok(changed)
}

/// Reads the store's change stamps when a change is announced, or after a while without one,
/// until the runtime stops.
pub async fn watch(state: Arc<AppState>) {
    let mut failing = false;
    loop {
        let every = state.changes.poll_every();
        tokio::select! {
            () = state.changes.wake.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
        let s = state.clone();
        match tokio::task::spawn_blocking(move || refresh_once(&s)).await {
            Ok(Ok(_)) => failing = false,
            Ok(Err(e)) if !failing => {
                tracing::warn!("reading the store for changes failed: {e}");
                failing = true;
            }
            Ok(Err(e)) => tracing::debug!("reading the store for changes failed: {e}"),
            Err(e) => tracing::error!("the refresh task failed: {e}"),
        }
    }
}
