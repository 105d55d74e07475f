//! Copies the write-ahead log into the database while a bulk load is still writing.
//!
//! Without it the whole log of a large ingest is copied and flushed when the store closes: a
//! second of disk work for 30,000 revisions that nothing else overlaps. A second connection
//! checkpointing after each commit puts that disk work beside the parsing instead of after it.
//!
//! Copying is not enough to keep the log small: SQLite starts the log over only when a write
//! transaction begins after a checkpoint has copied everything, and a writer that begins its next
//! batch at once never sees that. So every few commits the writer waits for the checkpoint before
//! it goes on ([`CommitSignal::committed_and_caught_up`]); otherwise the log grows by the size
//! of the load and deleting it at close costs what the checkpoints saved.
//!
//! Invariant: the checkpointer only ever runs PASSIVE checkpoints; it never blocks the writer or
//! a reader, and its failures cost only speed (the checkpoint at close still runs).

use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// A checkpoint request; `Some` asks to be told when it is done.
type Request = Option<SyncSender<()>>;

/// The writer's side: tells the checkpointer that a transaction committed.
pub(crate) struct CommitSignal(SyncSender<Request>);

impl CommitSignal {
    /// Never blocks: a request already queued covers this commit's frames too.
    pub(crate) fn committed(&self) {
        match self.0.try_send(None) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Returns once everything committed so far is copied, so the next transaction starts the
    /// log over (a few tens of milliseconds: one batch's pages and two flushes).
    pub(crate) fn committed_and_caught_up(&self) {
        let (done, wait) = sync_channel(1);
        if self.0.send(Some(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// A signal for the writer and the loop for a background thread, which returns when the signal
/// is dropped. `None` when the database cannot be opened a second time (the load runs as before).
pub(crate) fn background_checkpointer(
    db: &Path,
) -> Option<(CommitSignal, impl FnOnce() + Send + use<>)> {
    let conn = Connection::open(db).ok()?;
    let (signal, requests) = sync_channel(1);
    Some((CommitSignal(signal), move || checkpoint_on_request(conn, requests)))
}

fn checkpoint_on_request(conn: Connection, requests: Receiver<Request>) {
    while let Ok(reply) = requests.recv() {
        // PASSIVE copies what no reader still needs and returns; busy or failed is harmless.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Some(done) = reply {
            let _ = done.send(());
        }
    }
}
