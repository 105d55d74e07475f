//! What a downstream server asks for and gets. (The SQL that reads and writes them is in
//! `sqlite/server_sync.rs`.)

use super::*;
use std::collections::{HashMap, HashSet};
/// A downstream's GetRevisionIdList filter, in store terms.
#[derive(Debug, Clone, Default)]
pub struct DownstreamFilter {
    /// Only revisions stored after this catalog stamp (absent: everything).
    pub since: Option<i64>,
    /// Categories and detectoids instead of software and drivers.
    pub get_config: bool,
    /// Lower-case GUIDs with Delta (true: only changes since the anchor).
    pub categories: Option<Vec<(String, bool)>>,
    pub classifications: Option<Vec<(String, bool)>>,
    /// Short names of the languages wanted (absent: every language); language-neutral updates
    /// always match.
    pub languages: Option<Vec<crate::catalog::Language>>,
}

/// One deployment (approval) as a replica downstream gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamDeployment {
    pub update_id: String,
    pub revision_number: i32,
    pub action: crate::admin::Action,
    pub deadline: Option<String>,
    pub admin: Option<String>,
    pub changed_at: String,
    pub deployment_guid: String,
    pub group_id: crate::ids::GroupId,
}

/// What an upstream serves to downstream servers, and what a sync from one stores.
pub trait ServerSyncStorage {
    /// Revisions a downstream should fetch (WSUS-PROTOCOL.md §4.7): newest revisions, plus the
    /// exact revisions that selected bundles name.
    fn revisions_for_downstream(&self, f: &DownstreamFilter) -> StoreResult<Vec<(String, i32)>>;

    /// The revision id of an update revision, if stored.
    /// A stored revision's id and the size of its full document.
    fn stored_revision(
        &self,
        update_id: &str,
        revision_number: i32,
    ) -> StoreResult<Option<(i32, u64)>>;

    /// Every (UpdateID, RevisionNumber) stored.
    fn stored_identities(&self) -> StoreResult<HashSet<(String, i32)>>;

    /// The files of a revision: SHA-1 and where the upstream said it can be fetched.
    fn revision_file_sources(
        &self,
        revision_id: i32,
    ) -> StoreResult<Vec<([u8; 20], Option<String>)>>;

    /// Records where files come from (the URLs an upstream's GetUpdateData gave), for files the
    /// store knows.
    fn set_file_sources(&mut self, sources: &[([u8; 20], String)]) -> StoreResult<()>;

    /// The extension of a file whose verified content is in the tree.
    fn present_file_extension(
        &self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<String>>;

    /// Where each file with a known source can be fetched.
    fn file_sources(&self) -> StoreResult<HashMap<[u8; 20], String>>;

    /// Marks files present after their content was verified and moved into place.
    fn mark_files_present(&mut self, sha1s: &[[u8; 20]]) -> StoreResult<()>;

    /// Approvals changed after `since` (a deployment stamp), and the deployment GUIDs removed.
    fn deployments_since(
        &self,
        since: i64,
    ) -> StoreResult<(Vec<DownstreamDeployment>, Vec<String>)>;

    /// Languages of the localized properties the store holds.
    fn languages(&self) -> StoreResult<Vec<String>>;

    /// Downstream servers: (server id, name, last seen).
    fn downstream_servers(&self) -> StoreResult<Vec<(String, String, String)>>;
}
