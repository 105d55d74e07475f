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

/// Regression: an ingest batch read the catalog stamp in a deferred transaction, so a client
/// write the server committed before the batch's first write failed the import at once with
/// "database is locked" (SQLite cannot move a read snapshot up to a write, and does not wait).
/// The batch holds the write lock from its start now; the other writer waits for it (on
/// PostgreSQL neither waits).
#[test]
fn a_write_between_an_ingest_batch_start_and_its_first_row_waits_instead_of_failing_it() {
    let dir = tempfile::tempdir().unwrap();
    let at = crate::util::location(dir.path());
    let mut store = Store::open_or_create_at(&at).unwrap();
    let other = Store::open_at(&at).unwrap();
    let (_, document) = synthetic_documents(1).pop().unwrap();
    let mut rows = store.begin_ingest().unwrap();
    let writer = std::thread::spawn(move || other.set_setting("test.meanwhile", "written"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    rows.add_document("generated document", document.as_bytes()).unwrap();
    rows.commit().unwrap();
    writer.join().unwrap().unwrap();
    let reopened = Store::open_at(&at).unwrap();
    assert_eq!(reopened.setting("test.meanwhile").unwrap().as_deref(), Some("written"));
    assert_eq!(reopened.catalog_status().unwrap().revisions, 1);
}
