//! What a cleanup would do, planned before anything changes. (The SQL that reads and writes them is
//! in `sqlite/cleanup.rs`.)

use super::*;
use serde::Serialize;

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
    pub update_id: String,
    pub title: Option<String>,
    pub reason: DeclineReason,
}

/// Why cleanup declines an update. Written (text and JSON) as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclineReason {
    /// Microsoft withdrew it and no one approved it.
    Expired,
    /// An approved update supersedes it (and no computer needs it).
    SupersededBy { update_id: String },
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
    pub computer_id: String,
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

/// Cleanup: a plan, then small transactions.
pub trait CleanupStorage {
    /// Decides what to clean, changing nothing.
    fn plan_cleanup(
        &self,
        options: &CleanupOptions,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<CleanupPlan>;

    /// Carries out a plan from `plan_cleanup`, in small steps.
    fn run_cleanup(&mut self, plan: &CleanupPlan) -> StoreResult<()>;
}
