//! Trusted keys, and the records of imports and exports. (The SQL that reads and writes them is in
//! `sqlite/bundles.rs`.)

use super::*;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, Serialize)]
pub struct TrustedKey {
    pub key_id: String,
    pub public_key: String,
    pub comment: Option<String>,
    pub added_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportRecord {
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    pub signer_key_id: String,
    pub created: String,
    pub imported_at: String,
    pub revisions_added: u64,
    pub files_added: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportRecord {
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    pub base_sequence: Option<u64>,
    pub created: String,
    pub path: String,
}

/// What an export needs to know about one stored revision.
#[derive(Debug, Clone)]
pub struct CatalogRevision {
    pub revision_id: i32,
    pub update_id: String,
    pub revision_number: i32,
    pub update_type: String,
    pub category_kind: Option<String>,
    pub is_latest: bool,
    pub is_bundle: bool,
    pub explicitly_deployable: bool,
    pub expired: bool,
    pub title: Option<String>,
    pub kb_article: Option<String>,
    pub msrc_severity: Option<String>,
    pub document_size: u64,
    /// `Properties/Language` (lower case); empty for language-neutral updates.
    pub languages: Vec<String>,
    /// Every UpdateID its prerequisites name (categories included).
    pub prerequisites: Vec<String>,
    /// The same, as the AND of OR-clauses the document states.
    pub prerequisite_clauses: Vec<Vec<String>>,
    /// When this store first stored the revision (RFC 3339).
    pub ingested_at: String,
    pub core_size: u64,
    pub bundle_members: Vec<(String, i32)>,
    pub superseded: Vec<String>,
    pub files: Vec<FileSummary>,
}

/// Channel state: trusted keys, imports and exports, and the catalog as bundles carry it.
pub trait ChannelStorage {
    fn add_trusted_key(
        &self,
        key_id: &str,
        public_key: &str,
        comment: Option<&str>,
    ) -> StoreResult<bool>;

    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>>;

    fn remove_trusted_key(&self, key_id: &str) -> StoreResult<bool>;

    fn import_by_id(&self, bundle_id: &str) -> StoreResult<Option<ImportRecord>>;

    /// The newest import of `channel` (highest sequence).
    fn last_import(&self, channel: &str) -> StoreResult<Option<ImportRecord>>;

    fn imports(&self) -> StoreResult<Vec<ImportRecord>>;

    fn import_manifest(&self, bundle_id: &str) -> StoreResult<Option<String>>;

    fn removed_update_ids(&self) -> StoreResult<HashSet<String>>;

    /// Bundles of `channel` from its newest full bundle on, oldest first (what a delta builds on).
    fn export_chain(&self, channel: &str) -> StoreResult<Vec<ExportRecord>>;

    /// Bundles of `channel` recorded but not confirmed: an export stopped between recording its
    /// bundle and giving the directory its final name, or just after.
    fn pending_exports(&self, channel: &str) -> StoreResult<Vec<ExportRecord>>;

    /// The highest sequence `channel` confirmed (0: none yet).
    fn last_export_sequence(&self, channel: &str) -> StoreResult<u64>;

    /// Items of `kind` carried by the confirmed bundles of `channel` with sequence ≥ `from_sequence`.
    fn carried(
        &self,
        channel: &str,
        kind: &str,
        from_sequence: u64,
    ) -> StoreResult<HashSet<String>>;

    /// Records a written bundle and what it carried, in one transaction, as pending: the export
    /// confirms it once the bundle directory has its final name.
    fn record_pending_export(
        &mut self,
        record: &ExportRecord,
        carried: &[(&str, Vec<String>)],
    ) -> StoreResult<()>;

    /// The bundle is out under its final name: it counts for the channel from now on.
    fn confirm_export(&self, channel: &str, sequence: u64) -> StoreResult<()>;

    /// Forgets a pending bundle that never got its final name, and what it carried.
    fn discard_pending_export(&mut self, channel: &str, sequence: u64) -> StoreResult<()>;

    /// Every stored revision with its relationships and files, for export selection.
    fn catalog_revisions(&self) -> StoreResult<Vec<CatalogRevision>>;

    /// Core fragments of every revision whose fragment is at most `max_size` bytes, for serving
    /// from memory.
    fn for_each_small_core(
        &self,
        max_size: u64,
        visit: &mut dyn FnMut(i32, String),
    ) -> StoreResult<()>;

    /// The stored (zstd) document of a revision and its uncompressed size, as bundles carry it.
    fn compressed_document(&self, revision_id: i32) -> StoreResult<(Vec<u8>, u64)>;
}

/// What an import records inside its ingest transaction.
pub trait ChannelRows {
    /// Records a completed import (same transaction as its metadata).
    fn record_import(&mut self, record: &ImportRecord, manifest_json: &str) -> StoreResult<()>;

    /// Withdraws an update (expired upstream or no longer carried): clients are not offered it.
    fn record_removal(&mut self, update_id: &str, reason: &str, bundle_id: &str)
    -> StoreResult<()>;
}
