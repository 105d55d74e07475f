//! Trusted keys, and the records of imports and exports. (The SQL that reads and writes them is in
//! `sqlite/bundles.rs`.)

use crate::store::FileSummary;
use serde::Serialize;

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
