//! Client activity (contacts, registrations, syncs, reported events) is written by one thread
//! in batched transactions: many clients at once cost one commit, not one each.

use super::budget::Held;
use super::state::ComputerCache;
use crate::store::{ClientWrite, Store, StoreError};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc::{Receiver, Sender, channel};
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
}

impl ClientWriter {
    pub fn start(dir: &Path, computers: Arc<RwLock<ComputerCache>>) -> Result<ClientWriter, StoreError> {
        let store = Store::open(dir)?;
        let (tx, rx) = channel(QUEUE);
        std::thread::Builder::new()
            .name("ferry-client-writer".into())
            .spawn(move || run(store, rx, computers))
            .map_err(|e| StoreError::io(dir, e))?;
        Ok(ClientWriter { tx })
    }

    /// Queues a write; returns once it is committed, or after `COMMIT_WAIT` with the write still
    /// queued (it commits when the store's write lock is free again).
    pub async fn write(&self, w: ClientWrite) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        let queued_and_written = async {
            self.tx.send((w, Some(done), None)).await.map_err(|_| "the writer stopped".to_string())?;
            wait.await.map_err(|_| "the writer stopped".to_string())?
        };
        match tokio::time::timeout(COMMIT_WAIT, queued_and_written).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!("a client write waits for the store's write lock; answering without it");
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

    /// Queues a small write without waiting (sync times). Dropped only if the queue is full.
    pub fn write_later(&self, w: ClientWrite) {
        if self.tx.try_send((w, None, None)).is_err() {
            tracing::warn!("client activity queue is full: a write was dropped");
        }
    }
}

/// Applies a batch, waiting for as long as another process holds the write lock: client activity
/// queued meanwhile is written after it, not lost.
fn apply(store: &mut Store, writes: &[ClientWrite]) -> Result<(), String> {
    let mut waited = false;
    loop {
        match store.apply_client_writes(writes) {
            Err(e) if e.is_locked() => {
                if !waited {
                    tracing::warn!("client activity waits: another process holds the store's write lock ({e})");
                    waited = true;
                }
                std::thread::sleep(RETRY_AFTER);
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

fn run(mut store: Store, mut rx: Receiver<Job>, computers: Arc<RwLock<ComputerCache>>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (writes, waiting): (Vec<ClientWrite>, Vec<_>) = jobs.into_iter().map(|(w, done, held)| (w, (done, held))).unzip();
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
            let records: Vec<_> = touched.iter().filter_map(|id| store.computer(id).ok().flatten()).collect();
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
