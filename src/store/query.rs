//! What catalog queries answer: updates, files, fragments, categories, the catalog status. (The SQL
//! that reads and writes them is in `sqlite/query.rs`.)

use super::*;
use crate::catalog::{Guid, Sha1Digest, Sha256Digest};
use serde::Serialize;
use std::collections::HashMap;

/// One revision as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateSummary {
    pub revision_id: i32,
    pub update_id: crate::ids::UpdateId,
    pub revision_number: i32,
    pub update_type: String,
    pub category_kind: Option<String>,
    pub title: Option<String>,
    pub kb_article: Option<String>,
    pub msrc_severity: Option<String>,
    pub publication_state: Option<String>,
    pub is_bundle: bool,
    pub creation_date: Option<String>,
    pub classification: Option<String>,
    pub products: Vec<String>,
    pub approval: ApprovalStatus,
    /// A newer update in the store supersedes it (listings only).
    pub superseded: bool,
}

/// Get-WsusUpdate's `-Approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Approved,
    Unapproved,
    Declined,
    AnyExceptDeclined,
}

/// Where an update stands, as WSUS shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApprovalStatus {
    /// Approved (to install or uninstall) for some group.
    Approved,
    NotApproved,
    Declined,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::NotApproved => "NotApproved",
            ApprovalStatus::Declined => "Declined",
        }
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UpdateSummary {
    /// Whether its newest revision is expired: clients are no longer offered it.
    pub fn is_expired(&self) -> bool {
        self.publication_state.as_deref() == Some("Expired")
    }
}

impl ApprovalState {
    /// Whether an update in this state is listed under `-Approval`. Expired updates cannot be
    /// approved for install: they are not in the list to approve from.
    pub fn admits(self, u: &UpdateSummary) -> bool {
        let expired = u.is_expired();
        match self {
            ApprovalState::Approved => u.approval == ApprovalStatus::Approved,
            ApprovalState::Unapproved => u.approval == ApprovalStatus::NotApproved && !expired,
            ApprovalState::Declined => u.approval == ApprovalStatus::Declined,
            ApprovalState::AnyExceptDeclined => u.approval != ApprovalStatus::Declined,
        }
    }
}

/// What to list. Defaults: the newest revision of every software and driver update an
/// administrator would approve (not categories, detectoids or bundle members).
#[derive(Debug, Clone, Default)]
pub struct UpdateFilter {
    /// Also categories, detectoids and bundle members.
    pub all: bool,
    /// Case-insensitive substring of the title, or a KB number.
    pub text: Option<String>,
    /// Classification title (case-insensitive, prefix match: "security" finds "Security Updates") or GUID.
    pub classification: Option<String>,
    /// Product title (case-insensitive substring) or GUID.
    pub product: Option<String>,
    pub approval: Option<ApprovalState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub file_name: String,
    pub size: u64,
    pub sha1: Sha1Digest,
    pub sha256: Option<Sha256Digest>,
    pub extension: String,
    pub patching_type: Option<String>,
    pub present: bool,
    /// `XX/SHA1.ext` under the content root and `/Content/`.
    pub content_path: String,
}

impl FileSummary {
    /// An express installation file (`PatchingType="Express"`: `.psf` and its delta manifests),
    /// which clients fetch in ranges instead of the full file.
    pub fn is_express(&self) -> bool {
        self.patching_type.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("Express"))
    }

    pub fn expected(&self) -> ExpectedFile {
        ExpectedFile {
            sha1: self.sha1,
            sha256: self.sha256,
            size: self.size,
            extension: self.extension.clone(),
            file_name: self.file_name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PrerequisiteGroup {
    pub is_category: bool,
    pub update_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateDetail {
    #[serde(flatten)]
    pub summary: UpdateSummary,
    pub description: Option<String>,
    pub security_bulletin: Option<String>,
    pub handler: Option<String>,
    pub languages: Vec<String>,
    pub prerequisites: Vec<PrerequisiteGroup>,
    pub bundled_updates: Vec<String>,
    pub bundled_in: Vec<String>,
    pub supersedes: Vec<String>,
    pub superseded_by: Vec<String>,
    pub files: Vec<FileSummary>,
    pub core_size: u64,
    pub document_size: u64,
    pub other_revisions: Vec<i32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CatalogStatus {
    pub revisions: u64,
    pub updates: u64,
    pub by_type: Vec<(String, u64)>,
    pub categories_by_kind: Vec<(String, u64)>,
    pub bundles: u64,
    pub expired: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub files_present: u64,
    pub present_bytes: u64,
    pub document_bytes: u64,
    pub catalog_stamp: i64,
}

/// The fragment kinds a client can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentKind {
    Core,
    Extended,
    Localized(String),
}

/// Titles and kinds of the newest revision of every category.
#[derive(Debug, Clone, Default)]
pub struct CategoryIndex {
    pub by_id: HashMap<String, (String, Option<String>)>,
}

impl CategoryIndex {
    pub fn kind(&self, update_id: &str) -> Option<&str> {
        self.by_id.get(update_id).map(|(k, _)| k.as_str())
    }

    pub fn title(&self, update_id: &str) -> Option<&str> {
        self.by_id.get(update_id).and_then(|(_, t)| t.as_deref())
    }

    /// Resolves a classification or product given by GUID or by (part of its) title.
    pub fn matching(&self, kind: &str, wanted: &str) -> Vec<String> {
        if let Ok(g) = Guid::parse(wanted) {
            return vec![g.to_string()];
        }
        let w = wanted.to_lowercase();
        let mut ids: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, (k, t))| {
                k == kind && t.as_ref().is_some_and(|t| t.to_lowercase().contains(&w))
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Reading the catalog.
pub trait CatalogStorage {
    fn category_index(&self) -> StoreResult<CategoryIndex>;

    /// Lists the newest revisions matching `filter`, ordered by creation date (newest first).
    fn list_updates(&self, filter: &UpdateFilter) -> StoreResult<Vec<UpdateSummary>>;

    /// Resolves `UpdateID`, `UpdateID/revision`, a KB number (`5026368` or `KB5026368`) or a
    /// revision id prefixed with `#` to revision ids (newest revisions unless a revision is named).
    fn resolve_update(&self, id: &str) -> StoreResult<Vec<i32>>;

    fn update_summary(&self, revision_id: i32) -> StoreResult<UpdateSummary>;

    fn update_detail(&self, revision_id: i32) -> StoreResult<UpdateDetail>;

    fn revision_files(&self, revision_id: i32) -> StoreResult<Vec<FileSummary>>;

    /// Every file record, for content checks and packaging.
    fn all_files(&self) -> StoreResult<Vec<FileSummary>>;

    /// A fragment exactly as clients get it; `None` when the revision has none of that kind
    /// (e.g. no localized properties in that language).
    fn fragment(&self, revision_id: i32, kind: &FragmentKind) -> StoreResult<Option<String>>;

    /// The languages of a revision's localized properties, and its default language.
    fn revision_languages(&self, revision_id: i32) -> StoreResult<(Vec<String>, Option<String>)>;

    /// The full update document as it was received.
    fn document(&self, revision_id: i32) -> StoreResult<Vec<u8>>;

    fn catalog_status(&self) -> StoreResult<CatalogStatus>;

    /// How many revisions a computer may be offered in the software pass of a scan: the newest
    /// revision of every category, detectoid and software update that is neither expired,
    /// declined nor removed (the server's offers, less the group-specific blocks).
    fn offerable_revisions(&self) -> StoreResult<u64>;

    /// Records that verified content for `sha1` is in the tree.
    fn mark_file_present(&self, sha1: &Sha1Digest, present: bool) -> StoreResult<()>;
}

/// Adds to each bundle member the categories of the bundles that hold it: `edges` are
/// (member revision id, bundle revision id).
pub(crate) fn inherit_bundle_memberships(
    map: &mut HashMap<i32, Vec<String>>,
    edges: &[(i32, i32)],
) {
    for (member, bundle) in edges {
        if let Some(cats) = map.get(bundle).cloned() {
            let entry = map.entry(*member).or_default();
            for c in cats {
                if !entry.contains(&c) {
                    entry.push(c);
                }
            }
        }
    }
}

/// Fills in each summary's classification (its first) and products from its category
/// memberships.
pub(crate) fn decorate(
    list: &mut [UpdateSummary],
    categories: &CategoryIndex,
    memberships: &HashMap<i32, Vec<String>>,
) {
    for s in list {
        let Some(cats) = memberships.get(&s.revision_id) else { continue };
        for c in cats {
            match categories.kind(c) {
                Some("UpdateClassification") if s.classification.is_none() => {
                    s.classification = categories.title(c).map(str::to_string)
                }
                Some("Product") => s.products.extend(categories.title(c).map(str::to_string)),
                _ => {}
            }
        }
    }
}

/// Marks each listed update's approval and supersedence, then keeps those `filter` admits.
/// `state` is every approval, every decline and the superseded UpdateIDs.
pub(crate) fn mark_and_filter(
    list: &mut Vec<UpdateSummary>,
    filter: &UpdateFilter,
    categories: &CategoryIndex,
    memberships: &HashMap<i32, Vec<String>>,
    state: (&[Approval], &[Decline], &std::collections::HashSet<String>),
) {
    let (approvals, declines, superseded) = state;
    let approved: std::collections::HashSet<&str> = approvals
        .iter()
        .filter(|a| a.action != crate::admin::Action::Block)
        .map(|a| a.update_id.as_str())
        .collect();
    let declined: std::collections::HashSet<&str> =
        declines.iter().map(|d| d.update_id.as_str()).collect();
    for s in list.iter_mut() {
        s.superseded = superseded.contains(s.update_id.as_str());
        s.approval = if declined.contains(s.update_id.as_str()) {
            ApprovalStatus::Declined
        } else if approved.contains(s.update_id.as_str()) {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::NotApproved
        };
    }
    let classification_ids = filter.classification.as_deref().map(|c| {
        let mut ids = categories.matching("UpdateClassification", c);
        // "security" should find "Security Updates" but not match inside other words only.
        ids.retain(|id| {
            categories.title(id).is_none_or(|t| t.to_lowercase().starts_with(&c.to_lowercase()))
                || Guid::parse(c).is_ok()
        });
        ids
    });
    let product_ids = filter.product.as_deref().map(|p| categories.matching("Product", p));
    let text = filter
        .text
        .as_deref()
        .map(|t| t.trim_start_matches("KB").trim_start_matches("kb").to_lowercase());
    list.retain(|s| {
        let cats = memberships.get(&s.revision_id);
        let in_any = |ids: &Vec<String>| cats.is_some_and(|c| c.iter().any(|x| ids.contains(x)));
        filter.approval.is_none_or(|a| a.admits(s))
            && classification_ids.as_ref().is_none_or(in_any)
            && product_ids.as_ref().is_none_or(in_any)
            && text.as_ref().is_none_or(|t| {
                s.kb_article.as_deref() == Some(t.as_str())
                    || s.title
                        .as_ref()
                        .is_some_and(|title| title.to_lowercase().contains(t.as_str()))
            })
    });
}
/// How an administrator names an update (`resolve_update`): the rule for reading it, the same
/// whichever engine looks it up.
pub(crate) enum UpdateRef<'a> {
    /// `UpdateID/revision`.
    Revision(String, i32),
    /// `UpdateID`: its newest revision.
    Latest(String),
    /// `#revision-id`.
    RevisionId(i32),
    /// `5026368` or `KB5026368`: the newest revisions with that KB number.
    Kb(&'a str),
}

impl<'a> UpdateRef<'a> {
    pub(crate) fn parse(id: &'a str) -> StoreResult<UpdateRef<'a>> {
        if let Some((guid, rev)) = id.split_once('/') {
            let guid = Guid::parse(guid).map_err(|e| StoreError::NotFound(e.to_string()))?;
            let rev: i32 = rev.parse().map_err(|_| {
                StoreError::NotFound(format!(
                    "{id}: the revision number after '/' must be an integer"
                ))
            })?;
            Ok(UpdateRef::Revision(guid.to_string(), rev))
        } else if let Ok(guid) = Guid::parse(id) {
            Ok(UpdateRef::Latest(guid.to_string()))
        } else if let Some(rid) = id.strip_prefix('#') {
            let rid: i32 = rid.parse().map_err(|_| {
                StoreError::NotFound(format!("{id}: a revision id after '#' must be an integer"))
            })?;
            Ok(UpdateRef::RevisionId(rid))
        } else {
            Ok(UpdateRef::Kb(kb_number(id)?))
        }
    }
}

/// What `resolve_update` found for `id`: an error that says so when nothing.
pub(crate) fn found_updates(id: &str, found: Vec<i32>) -> StoreResult<Vec<i32>> {
    if found.is_empty() {
        return Err(StoreError::NotFound(format!(
            "no update {id} in the store (see `ferry updates list`)"
        )));
    }
    Ok(found)
}

/// A KB number (`5026368` or `KB5026368`) without its `KB`; anything else is the error
/// `resolve_update` gives for an identifier it cannot read.
pub(crate) fn kb_number(id: &str) -> Result<&str, StoreError> {
    let kb = id.strip_prefix("KB").or_else(|| id.strip_prefix("kb")).unwrap_or(id);
    if kb.is_empty() || !kb.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::NotFound(format!(
            "{id:?} is neither an UpdateID, UpdateID/revision, #revision-id nor a KB number"
        )));
    }
    Ok(kb)
}
