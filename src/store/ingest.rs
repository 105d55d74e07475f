//! What an ingest stores and reports. (The SQL that reads and writes them is in
//! `sqlite/ingest.rs`.)

use super::*;
use crate::catalog::ParsedUpdate;
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

/// How [`IngestStorage::ingest_stream`] commits and reports.
#[derive(Default)]
pub struct IngestOptions<'a> {
    /// A transaction per that many documents (what was committed stays when a later document
    /// fails); `None`: one transaction for everything (all or nothing).
    pub commit_every: Option<usize>,
    /// (documents done, bytes done), after each document.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// Runs inside each transaction just before it commits, with the number of documents done
    /// (for progress markers that must agree with the data).
    pub before_commit: Option<&'a mut BeforeCommit<'a>>,
    /// Called with each document's update as the writer takes it (before `before_commit` of
    /// its transaction): which updates the stream brought.
    pub on_document: Option<&'a mut dyn FnMut(&crate::catalog::Update)>,
}

/// See [`IngestOptions::before_commit`].
pub type BeforeCommit<'a> = dyn FnMut(&mut dyn IngestRows, u64) -> StoreResult<()> + 'a;

/// The documents of an ingest, in order (read on a thread of their own).
pub type Documents<'a> = Box<dyn Iterator<Item = StoreResult<IngestItem>> + Send + 'a>;

/// Ingesting update documents.
pub trait IngestStorage {
    fn begin_ingest(&mut self) -> StoreResult<Box<dyn IngestRows + '_>>;

    /// Ingests a stream of documents: a reader thread, one preparing worker per core (parse,
    /// derive, compress), and this thread writing them in their original order (so revision ids
    /// follow the stream).
    fn ingest_stream(
        &mut self,
        documents: Documents<'_>,
        options: IngestOptions<'_>,
    ) -> StoreResult<IngestReport>;
}

/// One ingest under way: documents and files added inside one transaction, committed together
/// (dropped without `commit`: rolled back). See [`IngestStorage::begin_ingest`].
pub trait IngestRows: ChannelRows {
    /// The catalog stamp this batch gives the revisions it adds.
    fn stamp(&self) -> i64;

    /// Parses and stores one document; `source` names it in errors (a file, a bundle member...).
    fn add_document(&mut self, source: &str, document: &[u8]) -> StoreResult<AddOutcome> {
        let prepared = super::documents::prepare_revision(source, document)?;
        self.add_prepared(&prepared)
    }

    /// Stores many documents in order, parsing and compressing them on all cores. Stops at the
    /// first bad document (the caller drops the batch, which rolls it back).
    fn add_documents(&mut self, documents: &[(String, Vec<u8>)]) -> StoreResult<Vec<AddOutcome>> {
        use rayon::prelude::*;
        let prepared: Vec<StoreResult<PreparedRevision>> = documents
            .par_iter()
            .map(|(source, doc)| super::documents::prepare_revision(source, doc))
            .collect();
        prepared.into_iter().map(|p| p.and_then(|p| self.add_prepared(&p))).collect()
    }

    /// Stores a document parsed by the caller.
    fn add_parsed(
        &mut self,
        source: &str,
        document: &[u8],
        parsed: ParsedUpdate,
    ) -> StoreResult<AddOutcome> {
        self.add_prepared(&super::documents::prepare_parsed(source, document, parsed))
    }

    fn add_prepared(&mut self, prepared: &PreparedRevision) -> StoreResult<AddOutcome>;

    /// What the metadata says a file is (SHA-256, size, extension), if any revision names it.
    fn described_file(
        &mut self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<DescribedFile>>;

    /// Records that a payload is verified in the content tree (same transaction as the metadata).
    fn mark_present(&mut self, sha1: &crate::catalog::Sha1Digest) -> StoreResult<()>;

    /// Records an update published here (`ferry publish`), in the same transaction as its
    /// documents; publishing it again (a revision) keeps when it was first published.
    fn record_published(&mut self, record: &super::PublishedRecord) -> StoreResult<()>;

    /// Writes a setting in the same transaction (progress markers that must agree with the data).
    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()>;

    fn setting(&self, key: &str) -> StoreResult<Option<String>>;

    fn report(&self) -> IngestReport;

    fn commit(self: Box<Self>) -> StoreResult<IngestReport>;
}
