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

mod admin;
mod bundles;
mod cleanup;
mod clients;
mod compliance_report;
mod consistency;
mod content;
mod deployments;
mod error;
mod groups;
mod ingest;
mod query;
mod rules;
mod server_sync;
mod sqlite;

pub use admin::TokenStorage;
pub use bundles::ChannelStorage;
pub use bundles::{CatalogRevision, ChannelRows, ExportRecord, ImportRecord, TrustedKey};
pub use cleanup::CleanupStorage;
pub use cleanup::{
    CleanupOptions, CleanupPlan, DeclineReason, PlannedComputer, PlannedDecline, PlannedFile,
};
pub use clients::ClientStorage;
pub use clients::*;
pub use compliance_report::ComplianceStorage;
pub use compliance_report::{ComplianceReport, ComputerCompliance, UpdateCompliance};
pub use consistency::CheckStorage;
pub use consistency::{CheckProblem, CheckReport};
pub use content::{
    ContentError, ContentStore, ExpectedFile, FileHasher, HashingWriter, VerifiedFile, hash_reader,
};
pub use deployments::{DeploymentRows, DeploymentStorage};
pub use error::{DatabaseError, StoreError, StoreResult};
pub use groups::GroupStorage;
pub use groups::{
    DEFAULT_MAX_CLIENT_GROUPS, GroupInTree, GroupName, GroupRemoval, MAX_GROUPS_PER_CLIENT,
    Targeting, TargetingMode, display_name,
};
pub use ingest::IngestStorage;
pub use ingest::{
    AddOutcome, BeforeCommit, DescribedFile, IngestOptions, IngestReport, IngestRows,
};
pub use query::CatalogStorage;
pub use query::*;
pub use rules::RuleStorage;
pub use rules::{ApprovalRule, NewRule};
pub use server_sync::ServerSyncStorage;
pub use server_sync::{DownstreamDeployment, DownstreamFilter};
pub use sqlite::Store;
pub use sqlite::bundles::decompress_document;
pub use sqlite::ingest::{IngestItem, PreparedRevision, prepare_revision};

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

/// What the program needs from storage, cut by what it is for. `Store` (SQLite) implements
/// every part; a second backend implements the same.
pub trait Storage:
    TokenStorage
    + ChannelStorage
    + CleanupStorage
    + ClientStorage
    + ComplianceStorage
    + CheckStorage
    + DeploymentStorage
    + GroupStorage
    + IngestStorage
    + CatalogStorage
    + RuleStorage
    + ServerSyncStorage
{
}

impl<T> Storage for T where
    T: TokenStorage
        + ChannelStorage
        + CleanupStorage
        + ClientStorage
        + ComplianceStorage
        + CheckStorage
        + DeploymentStorage
        + GroupStorage
        + IngestStorage
        + CatalogStorage
        + RuleStorage
        + ServerSyncStorage
{
}

/// The storage traits by name, so that `use crate::store::prelude::*` puts a backend's methods
/// in scope.
pub mod prelude {
    pub use super::{
        CatalogStorage, ChannelRows, ChannelStorage, CheckStorage, CleanupStorage, ClientStorage,
        ComplianceStorage, DeploymentRows, DeploymentStorage, GroupStorage, IngestRows,
        IngestStorage, RuleStorage, ServerSyncStorage, Storage, TokenStorage,
    };
}
