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
mod documents;
mod engine;
mod error;
mod groups;
mod ingest;
pub mod migrate;
pub mod postgres;
mod published;
mod query;
mod rules;
mod server_sync;
mod settings;
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
pub use compliance_report::{ComplianceReport, ComputerCompliance, PublishedBy, UpdateCompliance};
pub use consistency::CheckStorage;
pub use consistency::{CheckProblem, CheckReport};
pub use content::{
    ContentError, ContentStore, ExpectedFile, FileHasher, HashingWriter, PayloadOnDisk,
    VerifiedFile, hash_reader,
};
pub use deployments::{Administer, DeploymentRows, DeploymentStorage, RowsChange};
pub use documents::{
    IngestItem, PreparedRevision, decompress_document, document_in_languages, prepare_revision,
};
pub use engine::{Announced, ChangeFeed, FeedEvent, PoolFigures};
pub use error::{DatabaseError, StoreError, StoreResult};
pub use groups::TargetingStorage;
pub use groups::{
    DEFAULT_MAX_CLIENT_GROUPS, GroupInTree, GroupName, GroupRemoval, MAX_GROUPS_PER_CLIENT,
    Targeting, TargetingMode, display_name,
};
pub use ingest::IngestStorage;
pub use ingest::{
    AddOutcome, BeforeCommit, DescribedFile, Documents, IngestOptions, IngestReport, IngestRows,
};
pub use published::{InstallerKind, PublishedRecord, PublishedStorage};
pub use query::CatalogStorage;
pub use query::*;
pub use rules::RuleStorage;
pub use rules::{ApprovalRule, NewRule, PrerequisiteOption};
pub use server_sync::ServerSyncStorage;
pub use server_sync::{DownstreamDeployment, DownstreamFilter};
pub use settings::{IdentityStorage, SettingStorage};

use self::postgres::{DatabaseUrl, PostgresStore};
use sqlite::SqliteStore;
use std::path::{Path, PathBuf};

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

/// What the program needs from storage, cut by what it is for. Each backend implements every
/// part; the rest of the program holds a [`Store`] and calls these through it.
pub trait Storage:
    TokenStorage
    + ChannelStorage
    + CleanupStorage
    + ClientStorage
    + ComplianceStorage
    + CheckStorage
    + DeploymentStorage
    + TargetingStorage
    + IngestStorage
    + CatalogStorage
    + RuleStorage
    + ServerSyncStorage
    + SettingStorage
    + IdentityStorage
    + PublishedStorage
    + Send
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
        + TargetingStorage
        + IngestStorage
        + CatalogStorage
        + RuleStorage
        + ServerSyncStorage
        + SettingStorage
        + IdentityStorage
        + PublishedStorage
        + Send
{
}

/// The storage traits by name. Through a [`Store`] their methods need no import (they are the
/// methods of `dyn Storage`); a backend's own code and [`Administer`] need them in scope.
pub mod prelude {
    pub use super::{
        Administer, CatalogStorage, ChannelRows, ChannelStorage, CheckStorage, CleanupStorage,
        ClientStorage, ComplianceStorage, DeploymentRows, DeploymentStorage, IdentityStorage,
        IngestRows, IngestStorage, RuleStorage, ServerSyncStorage, SettingStorage, Storage,
        TargetingStorage, TokenStorage,
    };
}

/// One open store: its backend's connection and the content tree. Cheap to open; open one per
/// thread. Every storage call goes through the [`Storage`] traits it dereferences to.
pub struct Store {
    backend: Backend,
}

/// The engines a store can live in.
enum Backend {
    Sqlite(SqliteStore),
    /// Always with its content tree (made only by [`Store::on_postgres`]).
    Postgres(Box<PostgresStore>),
}

/// Where a store lives: `--data DIR` and, with `--database URL`, a PostgreSQL database. Without
/// a database the SQLite database is `DIR/ferry.db`; either way the content tree is
/// `DIR/content/`.
#[derive(Clone, Debug)]
pub struct StoreLocation {
    data: PathBuf,
    database: Option<DatabaseUrl>,
}

impl StoreLocation {
    pub fn new(data: PathBuf, database: Option<DatabaseUrl>) -> StoreLocation {
        StoreLocation { data, database }
    }

    /// The SQLite store in `data`.
    pub fn sqlite(data: &Path) -> StoreLocation {
        StoreLocation { data: data.to_path_buf(), database: None }
    }

    /// The data directory: the content tree, and the SQLite database when there is no URL.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The PostgreSQL database, when the store is on one.
    pub fn database(&self) -> Option<&DatabaseUrl> {
        self.database.as_ref()
    }

    /// Whether a store may already be there: a SQLite database file exists; a PostgreSQL
    /// database always may (its administrator created it).
    pub fn may_exist(&self) -> bool {
        self.database.is_some() || self.data.join(DATABASE_FILE).exists()
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.database {
            None => write!(f, "{}", self.data.display()),
            Some(url) => write!(f, "{url} (content in {})", self.data.display()),
        }
    }
}

impl Store {
    /// Opens the store at `location`, creating it (and its schema) when it does not exist yet.
    /// On PostgreSQL, every store of one database in this process shares one connection pool.
    pub fn open_or_create_at(location: &StoreLocation) -> StoreResult<Store> {
        match &location.database {
            None => Store::open_or_create(&location.data),
            Some(url) => Store::on_shared_postgres(url, &location.data),
        }
    }

    /// Opens an existing store at `location`; a missing SQLite store is an error that says how
    /// to create it. A PostgreSQL database gets its schema when it has none.
    pub fn open_at(location: &StoreLocation) -> StoreResult<Store> {
        match &location.database {
            None => Store::open(&location.data),
            Some(url) => Store::on_shared_postgres(url, &location.data),
        }
    }

    fn on_shared_postgres(url: &DatabaseUrl, data: &Path) -> StoreResult<Store> {
        let store = PostgresStore::shared(url)?.with_content_in(data);
        Ok(Store { backend: Backend::Postgres(Box::new(store)) })
    }

    /// Opens the SQLite store in `dir`, creating it (and its schema) when it does not exist yet.
    pub fn open_or_create(dir: &Path) -> StoreResult<Store> {
        Ok(Store { backend: Backend::Sqlite(SqliteStore::open_or_create(dir)?) })
    }

    /// Opens the existing SQLite store in `dir`; a missing one is an error that says how to
    /// create it.
    pub fn open(dir: &Path) -> StoreResult<Store> {
        Ok(Store { backend: Backend::Sqlite(SqliteStore::open(dir)?) })
    }

    /// A store on PostgreSQL on a connection pool of its own (the schema brought up to date, a
    /// newer one refused), its content tree in `data` (`data/content/...`, as beside a SQLite
    /// database).
    pub fn on_postgres(url: &DatabaseUrl, data: &Path) -> StoreResult<Store> {
        let store = PostgresStore::connect(url)?.with_content_in(data);
        Ok(Store { backend: Backend::Postgres(Box::new(store)) })
    }

    /// A listener for the changes the store announces, when its engine announces them
    /// (PostgreSQL); `None` where changes are found by polling the stamps (SQLite).
    pub fn change_feed(&self) -> Option<Box<dyn ChangeFeed>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(Box::new(s.change_feed())),
        }
    }

    /// The figures of the connection pool the store is on, when it is on one (PostgreSQL).
    pub fn pool_figures(&self) -> Option<PoolFigures> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(s.pool_figures()),
        }
    }

    /// The content tree (payloads and staging) beside the database.
    pub fn content(&self) -> &ContentStore {
        match &self.backend {
            Backend::Sqlite(s) => s.content(),
            Backend::Postgres(s) => {
                s.content().expect("made by on_postgres, with its content tree")
            }
        }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Storage;

    fn deref(&self) -> &Self::Target {
        match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(s) => &**s,
        }
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(s) => &mut **s,
        }
    }
}

#[cfg(test)]
impl Store {
    /// Test setup only: marks an update's newest revision as Microsoft withdrawing it.
    pub(crate) fn expire_for_test(&self, update_id: &str) {
        match &self.backend {
            Backend::Sqlite(s) => s.expire_for_test(update_id),
            Backend::Postgres(_) => unreachable!("unit tests make SQLite stores"),
        }
    }

    /// Test setup only: `update_id`'s newest revision needs `needed` installed first.
    pub(crate) fn require_for_test(&self, update_id: &str, needed: &str) {
        match &self.backend {
            Backend::Sqlite(s) => s.require_for_test(update_id, needed),
            Backend::Postgres(_) => unreachable!("unit tests make SQLite stores"),
        }
    }
}
