//! Bulk loads through `Store::ingest_stream`: what they leave on disk.

use crate::util::synthetic_documents;
use ferry::store::{IngestItem, IngestOptions, Store};

/// Regression: a load that commits as it goes grew the write-ahead log by the size of the whole
/// load (SQLite starts the log over only when a checkpoint has caught up before a write begins),
/// and deleting that log at close cost as much as the background checkpoints had saved.
#[test]
fn a_batched_ingest_keeps_the_write_ahead_log_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_or_create(dir.path()).unwrap();
    let items = synthetic_documents(1000).into_iter().enumerate().map(|(i, (_, doc))| {
        Ok(IngestItem::new(format!("generated document {i}"), doc.into_bytes()))
    });
    let report = store
        .ingest_stream(
            Box::new(items),
            IngestOptions { commit_every: Some(10), ..Default::default() },
        )
        .unwrap();
    assert_eq!(report.added, 1000);

    // Measured with the store still open: closing it checkpoints and deletes the log.
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map(|m| m.len()).unwrap_or(0);
    let (database, log) = (size("ferry.db"), size("ferry.db-wal"));
    assert!(
        log < database / 2,
        "the write-ahead log is {log} bytes next to a {database}-byte database"
    );
    let updates = store.catalog_status().unwrap().updates;
    drop(store);
    assert_eq!(Store::open(dir.path()).unwrap().catalog_status().unwrap().updates, updates);
}
