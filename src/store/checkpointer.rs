//! Copies the write-ahead log into the database while a bulk load is still writing.
//!
//! Without it the whole log of a large ingest is copied and flushed when the store closes: a
//! second of disk work for 30,000 revisions that nothing else overlaps. A second connection
//! checkpointing after each commit puts that disk work beside the parsing instead of after it.
//!
//! Invariant: the checkpointer only ever runs PASSIVE checkpoints; it never waits for or blocks
//! the writer or a reader, and its failures cost only speed (the checkpoint at close still runs).

use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Tells the checkpointer that a transaction committed; cheap, never blocks.
pub(crate) struct CommitSignal(SyncSender<()>);

impl CommitSignal {
    pub(crate) fn committed(&self) {
        // A full channel already holds a request that this commit's frames will be part of.
        match self.0.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// A signal for the writer and the loop for a background thread, which returns when the signal
/// is dropped. `None` when the database cannot be opened a second time (the load runs as before).
pub(crate) fn background_checkpointer(db: &Path) -> Option<(CommitSignal, impl FnOnce() + Send + use<>)> {
    let conn = Connection::open(db).ok()?;
    let (signal, requests) = sync_channel(1);
    Some((CommitSignal(signal), move || checkpoint_on_request(conn, requests)))
}

fn checkpoint_on_request(conn: Connection, requests: Receiver<()>) {
    while requests.recv().is_ok() {
        // PASSIVE copies what no reader still needs and returns; busy or failed is harmless.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}
