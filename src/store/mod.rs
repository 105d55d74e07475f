//! The store: a SQLite database (`ferry.db`, WAL) and the content tree beside it.
//!
//! ```text
//! DIR/ferry.db                                  catalog, approvals, computers, channel state
//! DIR/content/<XX>/<SHA1 upper hex>.<ext>       payloads, the WsusContent layout
//! ```
//!
//! `sqlite/` is the database backend: all SQL and every type of the SQLite driver are there. This module
//! holds what is not the engine's: the errors (no engine type in them), the content tree, and
//! the re-exported row types.
//!
//! Invariant: every other module reaches the database through this module's types; no SQL
//! lives elsewhere, so a second backend (PostgreSQL) can be added behind the same API
//! (`sqlite_stays_in_its_backend`).
//! Invariant: a revision id, once assigned, never changes and is never reused.

mod content;
mod error;
mod sqlite;

pub use content::{
    ContentError, ContentStore, ExpectedFile, FileHasher, HashingWriter, VerifiedFile, hash_reader,
};
pub use error::{DatabaseError, StoreError, StoreResult};
pub use sqlite::Store;
pub use sqlite::bundles::{
    CatalogRevision, ExportRecord, ImportRecord, TrustedKey, decompress_document,
};
pub use sqlite::cleanup::{
    CleanupOptions, CleanupPlan, PlannedComputer, PlannedDecline, PlannedFile,
};
pub use sqlite::clients::*;
pub use sqlite::compliance_report::{ComplianceReport, ComputerCompliance, UpdateCompliance};
pub use sqlite::consistency::{CheckProblem, CheckReport};
pub use sqlite::deployments::DeploymentTx;
pub use sqlite::groups::{
    DEFAULT_MAX_CLIENT_GROUPS, GroupInTree, GroupName, GroupRemoval, MAX_GROUPS_PER_CLIENT,
    Targeting, TargetingMode, display_name,
};
pub use sqlite::ingest::{
    AddOutcome, DescribedFile, IngestBatch, IngestItem, IngestOptions, IngestReport,
    PreparedRevision, prepare_revision,
};
pub use sqlite::query::*;
pub use sqlite::rules::{ApprovalRule, NewRule};
pub use sqlite::server_sync::{DownstreamDeployment, DownstreamFilter};

use std::path::Path;

pub const DATABASE_FILE: &str = "ferry.db";

/// Removes a store that `Store::open_or_create` made in `data` and nothing else: the database
/// files, and the content folders if they are empty (anything in them was not ours).
pub fn remove_files(data: &Path) {
    for file in
        [DATABASE_FILE.to_string(), format!("{DATABASE_FILE}-wal"), format!("{DATABASE_FILE}-shm")]
    {
        let _ = std::fs::remove_file(data.join(file));
    }
    ContentStore::in_data_dir(data).remove_if_empty();
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
