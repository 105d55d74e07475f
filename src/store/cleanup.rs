//! What a cleanup would do, planned before anything changes, and what it reads to plan. (The
//! rules are in `admin/cleanup.rs`, the SQL in `sqlite/cleanup.rs`.)

use super::*;
use crate::catalog::Sha1Digest;
use crate::ids::UpdateId;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    pub decline_superseded: bool,
    pub decline_expired: bool,
    pub unneeded_content: bool,
    /// Computers without contact for this many days.
    pub obsolete_computers_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedDecline {
    pub update_id: crate::ids::UpdateId,
    pub title: Option<String>,
    pub reason: DeclineReason,
}

/// Why cleanup declines an update. Written (text and JSON) as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclineReason {
    /// Microsoft withdrew it and no one approved it.
    Expired,
    /// An approved update supersedes it (and no computer needs it).
    SupersededBy { update_id: crate::ids::UpdateId },
}

impl std::fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeclineReason::Expired => f.write_str("expired and not approved"),
            DeclineReason::SupersededBy { update_id } => {
                write!(f, "superseded by approved update {update_id}")
            }
        }
    }
}

impl Serialize for DeclineReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    /// Relative to the content tree.
    pub path: String,
    pub size: u64,
    /// Listed in the store (`false`: a stray file nothing names).
    pub known: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedComputer {
    pub computer_id: crate::ids::ComputerId,
    pub name: String,
    pub last_contact_at: String,
}

/// What cleanup would do (or did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupPlan {
    pub declines: Vec<PlannedDecline>,
    pub files: Vec<PlannedFile>,
    pub bytes_freed: u64,
    pub computers: Vec<PlannedComputer>,
}

/// What cleanup reads to make its plan (the rules are `admin/cleanup.rs`).
pub trait CleanupStorage {
    /// (superseded UpdateID, superseding UpdateID) for every newest revision that supersedes.
    fn supersedences(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>>;

    /// (member UpdateID, bundle UpdateID) for every newest revision that bundles others.
    fn bundle_memberships(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>>;

    /// (file, UpdateID) for every file of a newest revision.
    fn files_of_newest_revisions(&self) -> StoreResult<Vec<(Sha1Digest, UpdateId)>>;

    /// Every file the store lists: SHA-1 → (extension, size).
    fn known_files(&self) -> StoreResult<HashMap<Sha1Digest, (String, u64)>>;
}
