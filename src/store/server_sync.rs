//! What a downstream server asks for and gets. (The SQL that reads and writes them is in
//! `sqlite/server_sync.rs`.)

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
    pub group_id: String,
}
