//! What an ingest stores and reports. (The SQL that reads and writes them is in
//! `sqlite/ingest.rs`.)

use super::*;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        revision_id: i32,
    },
    /// The same revision with the same fragments was already stored: nothing changed.
    Unchanged {
        revision_id: i32,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReport {
    pub added: u64,
    pub unchanged: u64,
    pub document_bytes: u64,
}

/// What update metadata says about a payload file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedFile {
    pub sha256: Option<crate::catalog::Sha256Digest>,
    pub size: u64,
    pub extension: String,
}

impl IngestReport {
    pub(crate) fn add(&mut self, other: IngestReport) {
        self.added += other.added;
        self.unchanged += other.unchanged;
        self.document_bytes += other.document_bytes;
    }
}

/// Ingesting update documents.
pub trait IngestStorage {
    fn begin_ingest(&mut self) -> StoreResult<IngestBatch<'_>>;

    /// Ingests a stream of documents: a reader thread, one preparing worker per core (parse,
    /// derive, compress), and this thread writing them in their original order (so revision ids
    /// follow the stream).
    fn ingest_stream<I>(
        &mut self,
        documents: I,
        options: IngestOptions<'_>,
    ) -> StoreResult<IngestReport>
    where
        I: Iterator<Item = StoreResult<IngestItem>> + Send;
}
