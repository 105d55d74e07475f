use crate::catalog::{DocumentError, UpdateIdentity};
use std::path::{Path, PathBuf};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store at {}: create one with `ferry dev synth`, `ferry dev ingest` or `ferry import`, or point --data at an existing one", .0.display())]
    Missing(PathBuf),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("database {}: {context}: {source}", path.display())]
    Sqlite { path: PathBuf, context: String, source: rusqlite::Error },

    #[error("database {} has schema version {found}, newer than this ferry knows ({known}): use a newer ferry", path.display())]
    TooNew { path: PathBuf, found: usize, known: usize },

    #[error("{document}: {source}")]
    Document { document: String, source: DocumentError },

    #[error(
        "{document}: revision {identity} is already stored with different content; a published revision never changes, \
         so one of the two copies is wrong (the batch was rolled back, nothing stored changed)"
    )]
    ConflictingRevision { document: String, identity: UpdateIdentity },

    #[error(
        "{document}: file {sha1} ({file_name}) is already stored with size {stored_size} and SHA-256 {stored_sha256}, \
         this document says size {size} and SHA-256 {sha256} (the batch was rolled back)"
    )]
    ConflictingFile {
        document: String,
        sha1: String,
        file_name: String,
        stored_size: u64,
        stored_sha256: String,
        size: u64,
        sha256: String,
    },

    #[error("revision ids are exhausted: more than 2^31 revisions were stored")]
    RevisionIdsExhausted,

    #[error("{0}")]
    NotFound(String),

    #[error(transparent)]
    Content(#[from] super::ContentError),
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_path_buf(), source }
    }

    pub fn sqlite(path: &Path, context: impl Into<String>, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: path.to_path_buf(), context: context.into(), source }
    }
}
