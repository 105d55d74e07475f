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

/// A newest software or driver revision a downstream may get: (revision id, UpdateID, revision
/// number, changed stamp, is a bundle, languages).
pub(crate) type Candidate = (i32, String, i32, i64, bool, Option<String>);

impl DownstreamFilter {
    /// Whether a revision in `languages` (space-separated short names; none: neutral) is wanted.
    pub(crate) fn wants_languages(&self, languages: &Option<String>) -> bool {
        match (&self.languages, languages) {
            (Some(wanted), Some(l)) => crate::catalog::language::wanted_by(
                &l.split(' ').map(str::to_string).collect::<Vec<_>>(),
                wanted,
            ),
            _ => true,
        }
    }

    /// The candidates (already of wanted languages) the filter selects: (revision id, UpdateID,
    /// revision number, is a bundle). `memberships` gives each revision's category
    /// prerequisites, read only when both category lists are given.
    pub(crate) fn select(
        &self,
        candidates: Vec<Candidate>,
        memberships: impl FnOnce() -> StoreResult<HashMap<i32, Vec<String>>>,
    ) -> StoreResult<Vec<(i32, String, i32, bool)>> {
        let since = self.since.unwrap_or(-1);
        Ok(match (&self.categories, &self.classifications) {
            (None, None) => candidates
                .into_iter()
                .filter(|c| c.3 > since)
                .map(|(id, u, n, _, b, _)| (id, u, n, b))
                .collect(),
            (Some(products), Some(classes)) if !products.is_empty() && !classes.is_empty() => {
                let memberships = memberships()?;
                let product_delta: HashMap<&str, bool> =
                    products.iter().map(|(g, d)| (g.as_str(), *d)).collect();
                let class_delta: HashMap<&str, bool> =
                    classes.iter().map(|(g, d)| (g.as_str(), *d)).collect();
                let delta = |cats: &[String], deltas: &HashMap<&str, bool>| {
                    cats.iter()
                        .filter_map(|c| deltas.get(c.as_str()))
                        .copied()
                        .reduce(|a, b| a && b)
                };
                candidates
                    .into_iter()
                    .filter(|(id, _, _, stamp, ..)| {
                        let Some(cats) = memberships.get(id) else { return false };
                        match (delta(cats, &product_delta), delta(cats, &class_delta)) {
                            // Delta false on either side: newly in the filter, so everything.
                            (Some(p), Some(c)) => !(p && c) || *stamp > since,
                            _ => false,
                        }
                    })
                    .map(|(id, u, n, _, b, _)| (id, u, n, b))
                    .collect()
            }
            // One list alone, or an empty one, matches nothing (as on WSUS).
            _ => Vec::new(),
        })
    }
}
