//! Client activity (contacts, registrations, syncs, reported events) is written by one thread
//! in batched transactions: many clients at once cost one commit, not one each.

use super::state::ComputerCache;
use crate::store::{ClientWrite, Store, StoreError};
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio::sync::oneshot;

const QUEUE: usize = 4096;
const BATCH: usize = 512;

type Done = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct ClientWriter {
    tx: Sender<(ClientWrite, Option<Done>)>,
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

    /// Queues a write; returns once it is committed.
    pub async fn write(&self, w: ClientWrite) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx.send((w, Some(done))).await.map_err(|_| "the writer stopped".to_string())?;
        wait.await.map_err(|_| "the writer stopped".to_string())?
    }

    /// Queues a write without waiting (events, sync times). Dropped only if the queue is full.
    pub fn write_later(&self, w: ClientWrite) {
        if self.tx.try_send((w, None)).is_err() {
            tracing::warn!("client activity queue is full: a write was dropped");
        }
    }
}

fn run(mut store: Store, mut rx: Receiver<(ClientWrite, Option<Done>)>, computers: Arc<RwLock<ComputerCache>>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let writes: Vec<ClientWrite> = jobs.iter().map(|(w, _)| w.clone()).collect();
        let result = store.apply_client_writes(&writes).map_err(|e| e.to_string());
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
        for (_, done) in jobs {
            if let Some(d) = done {
                let _ = d.send(result.clone());
            }
        }
    }
}
