//! Client activity (contacts, registrations, syncs, reported events) is written by one thread
//! in batched transactions: many clients at once cost one commit, not one each.
//!
//! A batch the store could not take for a while is written again, not dropped: while another
//! process holds SQLite's write lock (an import), and while the database cannot be reached
//! (PostgreSQL down or restarting). In the second case new writes are refused at once meanwhile
//! (the client gets a fault and reports again later) instead of queueing behind it.

use super::budget::Held;
use super::state::ComputerCache;
use crate::store::StoreLocation;
use crate::store::{ClientWrite, Store, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// The longest wait between attempts while the database cannot be reached (it doubles from
/// `RETRY_AFTER`).
const RETRY_AT_MOST: Duration = Duration::from_secs(5);

type Done = oneshot::Sender<Result<(), WriteError>>;

/// A queued write: what to write, who waits for it, and its share of the memory budget (events
/// can be large; they count until written).
type Job = (ClientWrite, Option<Done>, Option<Held>);

#[derive(Clone)]
pub struct ClientWriter {
    tx: Sender<Job>,
    synced: Arc<Mutex<SyncTimes>>,
    /// Set while the writer cannot reach the database; new writes are refused meanwhile.
    unreachable: Arc<AtomicBool>,
}

/// Why a write was not taken or not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The database cannot be reached: the write was refused (the client reports it again).
    #[error("the database cannot be reached: client activity waits to be written")]
    Unreachable,
    #[error("{0}")]
    Failed(String),
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
        let unreachable = Arc::new(AtomicBool::new(false));
        let writer = Writer { synced: synced.clone(), unreachable: unreachable.clone(), computers };
        std::thread::Builder::new()
            .name("ferry-client-writer".into())
            .spawn(move || writer.run(store, rx))
            .map_err(|e| StoreError::io(location.data(), e))?;
        let (weak, waker_synced) = (tx.downgrade(), synced.clone());
        std::thread::Builder::new()
            .name("ferry-sync-times".into())
            .spawn(move || wake_for_sync_times(&weak, &waker_synced))
            .map_err(|e| StoreError::io(location.data(), e))?;
        Ok(ClientWriter { tx, synced, unreachable })
    }

    /// `Err` while the database cannot be reached.
    fn reachable(&self) -> Result<(), WriteError> {
        match self.unreachable.load(Ordering::Relaxed) {
            true => Err(WriteError::Unreachable),
            false => Ok(()),
        }
    }

    /// Queues a write; returns once it is committed, or after `COMMIT_WAIT` with the write still
    /// queued (it commits when the store's write lock is free again, or the database back).
    /// Refused at once while the writer finds the database unreachable.
    pub async fn write(&self, w: ClientWrite) -> Result<(), WriteError> {
        self.reachable()?;
        let (done, wait) = oneshot::channel();
        let queued_and_written = async {
            self.tx.send((w, Some(done), None)).await.map_err(|_| stopped())?;
            wait.await.map_err(|_| stopped())?
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
    /// `COMMIT_WAIT`, or while the database is unreachable: the client reports again later.
    pub async fn write_counted(&self, w: ClientWrite, held: Held) -> Result<(), WriteError> {
        self.reachable()?;
        match tokio::time::timeout(COMMIT_WAIT, self.tx.send((w, None, Some(held)))).await {
            Ok(sent) => sent.map_err(|_| stopped()),
            Err(_) => Err(WriteError::Failed("the client activity queue is full".into())),
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

fn stopped() -> WriteError {
    WriteError::Failed("the writer stopped".into())
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

/// The writer thread's side.
struct Writer {
    synced: Arc<Mutex<SyncTimes>>,
    unreachable: Arc<AtomicBool>,
    computers: Arc<RwLock<ComputerCache>>,
}

impl Writer {
    /// Applies a batch, waiting for as long as another process holds the write lock or the
    /// database cannot be reached: client activity queued meanwhile is written after it, not
    /// lost. (Writing a batch again is harmless: rows are upserted, events kept once by their
    /// instance id, should a lost connection have hidden that a commit went through.)
    fn apply(&self, store: &mut Store, writes: &[ClientWrite]) -> Result<(), WriteError> {
        let (mut locked, mut unreachable_since) = (false, None::<std::time::Instant>);
        let mut wait = RETRY_AFTER;
        loop {
            match store.apply_client_writes(writes) {
                Err(e) if e.is_locked() => {
                    if !locked {
                        tracing::warn!(
                            "client activity waits: another process holds the store's write lock ({e})"
                        );
                        locked = true;
                    }
                    std::thread::sleep(RETRY_AFTER);
                }
                Err(e) if e.is_unavailable() => {
                    if unreachable_since.is_none() {
                        tracing::error!(
                            "client activity waits ({} writes, new ones refused meanwhile): {e}",
                            writes.len()
                        );
                        self.unreachable.store(true, Ordering::Relaxed);
                        unreachable_since = Some(std::time::Instant::now());
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_AT_MOST);
                }
                other => {
                    if let Some(since) = unreachable_since {
                        self.unreachable.store(false, Ordering::Relaxed);
                        tracing::warn!(
                            "the database is back after {:.1} s: client activity is written again",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    return other.map_err(|e| WriteError::Failed(e.to_string()));
                }
            }
        }
    }

    fn run(self, mut store: Store, mut rx: Receiver<Job>) {
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
            let times = std::mem::take(&mut *self.synced.lock().expect("sync times lock"));
            writes.extend(times.into_iter().map(|computer_id| ClientWrite::Synced { computer_id }));
            let result = self.apply(&mut store, &writes);
            match &result {
                Ok(()) => self.cache_contacts(&store, &writes),
                Err(e) => tracing::error!("recording client activity failed: {e}"),
            }
            // Dropping each job's `Held` gives its bytes back to the budget.
            for (done, _held) in waiting {
                if let Some(d) = done {
                    let _ = d.send(result.clone());
                }
            }
        }
    }

    /// Contacts may have changed group memberships (client-side targeting): the cache takes
    /// the computers' records again.
    fn cache_contacts(&self, store: &Store, writes: &[ClientWrite]) {
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
            let mut cache = self.computers.write().expect("computer cache lock");
            for c in records {
                cache.insert(c);
            }
        }
    }
}
