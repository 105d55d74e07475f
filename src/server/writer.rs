//! Client activity (contacts, registrations, syncs, reported events) is written by one thread
//! in batched transactions: many clients at once cost one commit, not one each.

use super::budget::Held;
use super::state::ComputerCache;
use crate::store::StoreLocation;
use crate::store::{ClientWrite, Store, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc::{Receiver, Sender, WeakSender, channel};
use tokio::sync::oneshot;

const QUEUE: usize = 4096;
const BATCH: usize = 512;
/// How long a request waits for its write to commit before answering anyway (the write stays
/// queued): an import holds the store's write lock for as long as it reads its volumes, and
/// clients must not hang on that.
const COMMIT_WAIT: Duration = Duration::from_secs(5);
/// Between attempts while another process holds the write lock.
const RETRY_AFTER: Duration = Duration::from_millis(500);

type Done = oneshot::Sender<Result<(), String>>;

/// A queued write: what to write, who waits for it, and its share of the memory budget (events
/// can be large; they count until written).
type Job = (ClientWrite, Option<Done>, Option<Held>);

#[derive(Clone)]
pub struct ClientWriter {
    tx: Sender<Job>,
    synced: Arc<Mutex<SyncTimes>>,
}

/// Computers that finished a SyncUpdates call since the last batch. A fleet's scans make tens of
/// thousands of calls a second; each computer's sync time is written once per batch, and the
/// writer is woken for them at most once every `SYNC_TIMES_EVERY`.
type SyncTimes = HashSet<crate::ids::ComputerId>;

/// How late a sync time may be written.
const SYNC_TIMES_EVERY: Duration = Duration::from_secs(1);

impl ClientWriter {
    pub fn start(
        location: &StoreLocation,
        computers: Arc<RwLock<ComputerCache>>,
    ) -> Result<ClientWriter, StoreError> {
        let store = Store::open_at(location)?;
        let (tx, rx) = channel(QUEUE);
        let synced = Arc::new(Mutex::new(SyncTimes::default()));
        let writer_synced = synced.clone();
        std::thread::Builder::new()
            .name("ferry-client-writer".into())
            .spawn(move || run(store, rx, &writer_synced, computers))
            .map_err(|e| StoreError::io(location.data(), e))?;
        let (weak, waker_synced) = (tx.downgrade(), synced.clone());
        std::thread::Builder::new()
            .name("ferry-sync-times".into())
            .spawn(move || wake_for_sync_times(&weak, &waker_synced))
            .map_err(|e| StoreError::io(location.data(), e))?;
        Ok(ClientWriter { tx, synced })
    }

    /// Queues a write; returns once it is committed, or after `COMMIT_WAIT` with the write still
    /// queued (it commits when the store's write lock is free again).
    pub async fn write(&self, w: ClientWrite) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        let queued_and_written = async {
            self.tx
                .send((w, Some(done), None))
                .await
                .map_err(|_| "the writer stopped".to_string())?;
            wait.await.map_err(|_| "the writer stopped".to_string())?
        };
        match tokio::time::timeout(COMMIT_WAIT, queued_and_written).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!(
                    "a client write waits for the store's write lock; answering without it"
                );
                Ok(())
            }
        }
    }

    /// Queues a write without waiting for it to commit, its bytes counted in the memory budget
    /// until it is written (reported events). `Err` when the queue has had no room for
    /// `COMMIT_WAIT`: the client reports again later.
    pub async fn write_counted(&self, w: ClientWrite, held: Held) -> Result<(), String> {
        match tokio::time::timeout(COMMIT_WAIT, self.tx.send((w, None, Some(held)))).await {
            Ok(sent) => sent.map_err(|_| "the writer stopped".to_string()),
            Err(_) => Err("the client activity queue is full".to_string()),
        }
    }

    /// Writes the sync times that wait and returns once they are committed (or after
    /// `COMMIT_WAIT`): for a server that stops.
    pub async fn flush(&self) {
        if let Some(wake) = waiting_sync(&self.synced) {
            let _ = self.write(wake).await;
        }
    }

    /// Records that a computer synced (written within `SYNC_TIMES_EVERY`).
    pub fn synced(&self, computer_id: &crate::ids::ComputerId) {
        let mut times = self.synced.lock().expect("sync times lock");
        if !times.contains(computer_id) {
            times.insert(computer_id.clone());
        }
    }
}

/// Wakes the writer when sync times wait, until the server stops.
fn wake_for_sync_times(tx: &WeakSender<Job>, synced: &Mutex<SyncTimes>) {
    loop {
        std::thread::sleep(SYNC_TIMES_EVERY);
        let Some(tx) = tx.upgrade() else { return };
        if let Some(wake) = waiting_sync(synced) {
            let _ = tx.try_send((wake, None, None));
        }
    }
}

/// A write of one waiting sync time, to wake the writer: it takes every waiting sync time with
/// any batch, so this one is written twice, which changes nothing.
fn waiting_sync(synced: &Mutex<SyncTimes>) -> Option<ClientWrite> {
    let computer_id = synced.lock().expect("sync times lock").iter().next().cloned()?;
    Some(ClientWrite::Synced { computer_id })
}

/// Applies a batch, waiting for as long as another process holds the write lock: client activity
/// queued meanwhile is written after it, not lost.
fn apply(store: &mut Store, writes: &[ClientWrite]) -> Result<(), String> {
    let mut waited = false;
    loop {
        match store.apply_client_writes(writes) {
            Err(e) if e.is_locked() => {
                if !waited {
                    tracing::warn!(
                        "client activity waits: another process holds the store's write lock ({e})"
                    );
                    waited = true;
                }
                std::thread::sleep(RETRY_AFTER);
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

fn run(
    mut store: Store,
    mut rx: Receiver<Job>,
    synced: &Mutex<SyncTimes>,
    computers: Arc<RwLock<ComputerCache>>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (mut writes, waiting): (Vec<ClientWrite>, Vec<_>) =
            jobs.into_iter().map(|(w, done, held)| (w, (done, held))).unzip();
        let times = std::mem::take(&mut *synced.lock().expect("sync times lock"));
        writes.extend(times.into_iter().map(|computer_id| ClientWrite::Synced { computer_id }));
        let result = apply(&mut store, &writes);
        if result.is_ok() {
            // Contacts may have changed group memberships (client-side targeting).
            let touched: Vec<&str> = writes
                .iter()
                .filter_map(|w| match w {
                    ClientWrite::Contact { computer_id, .. } => Some(computer_id.as_str()),
                    _ => None,
                })
                .collect();
            let records: Vec<_> =
                touched.iter().filter_map(|id| store.computer(id).ok().flatten()).collect();
            if !records.is_empty() {
                let mut cache = computers.write().expect("computer cache lock");
                for c in records {
                    cache.insert(c);
                }
            }
        } else if let Err(e) = &result {
            tracing::error!("recording client activity failed: {e}");
        }
        // Dropping each job's `Held` gives its bytes back to the budget.
        for (done, _held) in waiting {
            if let Some(d) = done {
                let _ = d.send(result.clone());
            }
        }
    }
}
