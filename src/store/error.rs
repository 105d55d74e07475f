use crate::catalog::{DocumentError, UpdateIdentity};
use std::path::{Path, PathBuf};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store at {}: create one with `ferry dev synth`, `ferry dev ingest` or `ferry import`, or point --data at an existing one", .0.display())]
    Missing(PathBuf),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("database {database}: {context}: {source}")]
    Database { database: String, context: String, source: DatabaseError },

    #[error(
        "database {database} has schema version {found}, newer than this ferry knows ({known}): use a newer ferry"
    )]
    TooNew { database: String, found: usize, known: usize },

    #[error(
        "cannot reach the database {database}: {message}; check that the server runs and accepts connections, and the URL (--database or FERRY_DATABASE_URL)"
    )]
    Unreachable { database: String, message: String },

    #[error(
        "no SQLite store at {}: --from names the data directory of the store to move (the one that holds {})",
        .0.display(), super::DATABASE_FILE
    )]
    NoSourceStore(PathBuf),

    #[error(
        "database {database} has schema version {found}, older than this ferry writes ({known}): run this ferry on it once \
         (any command that opens the store brings it up to date, e.g. `ferry --data DIR status`), then migrate"
    )]
    Outdated { database: String, found: usize, known: usize },

    #[error(
        "database {database} is not empty ({tables} hold rows): a store moves only into an empty database, \
         so that nothing there is overwritten or mixed; nothing was changed"
    )]
    NotEmpty { database: String, tables: String },

    #[error("{table}, row {row}, column {column}: {problem}; nothing was copied")]
    DoesNotFit { table: String, row: String, column: String, problem: String },

    #[error("{document}: {source}")]
    Document { document: String, source: DocumentError },

    #[error(
        "{document}: revision {identity} is already stored with different content; a published revision never changes, \
         so one of the two copies is wrong (the batch was rolled back, nothing stored changed)"
    )]
    ConflictingRevision { document: String, identity: UpdateIdentity },

    #[error("{0}")]
    ConflictingFile(Box<FileConflict>),

    #[error("revision ids are exhausted: more than 2^31 revisions were stored")]
    RevisionIdsExhausted,

    #[error("{0}")]
    NotFound(String),

    /// A change the rules forbid (a cycle in the group tree, a built-in group, a declined
    /// update); nothing was changed.
    #[error("{0}")]
    Refused(String),

    /// A compressed document does not decompress within its declared size (a decompression
    /// bomb, or a damaged frame).
    #[error("{document}: {message}")]
    Oversized { document: String, message: String },

    /// The caller stopped a transaction on purpose; it says why elsewhere.
    #[error("{0}")]
    Aborted(String),

    #[error(transparent)]
    Content(#[from] super::ContentError),
}

impl StoreError {
    /// Another connection holds the write lock (an import, a cleanup) past the busy timeout:
    /// the same work succeeds later.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Database { source: DatabaseError { busy: true, .. }, .. })
    }

    /// The database could not be reached, or the connection was lost on the way: the same
    /// work succeeds once it is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }

    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

/// A failure the database engine reported, in its words (no engine's type leaves the store).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DatabaseError {
    pub message: String,
    /// Another connection held the write lock past the busy timeout.
    pub busy: bool,
}

/// The same SHA-1 announced with another size or SHA-256 than the one stored.
#[derive(Debug)]
pub struct FileConflict {
    pub document: String,
    pub sha1: String,
    pub file_name: String,
    pub stored_size: u64,
    pub stored_sha256: String,
    pub size: u64,
    pub sha256: String,
}

impl std::fmt::Display for FileConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: file {} ({}) is already stored with size {} and SHA-256 {}, this document says size {} and SHA-256 {} \
             (the batch was rolled back)",
            self.document,
            self.sha1,
            self.file_name,
            self.stored_size,
            self.stored_sha256,
            self.size,
            self.sha256
        )
    }
}
