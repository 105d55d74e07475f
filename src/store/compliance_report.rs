//! The compliance report: per computer and per update. (The SQL that reads and writes them is in
//! `sqlite/compliance_report.rs`.)

use super::*;
use crate::compliance::{ComputerStatus, StateCounts};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct ComputerCompliance {
    pub computer_id: crate::ids::ComputerId,
    pub name: String,
    pub groups: Vec<String>,
    pub last_contact_at: String,
    pub last_sync_at: Option<String>,
    pub last_report_at: Option<String>,
    pub counts: StateCounts,
    /// UpdateIDs needing attention: failed or needed (for `--status` filters and drill-down).
    pub failed: Vec<crate::ids::UpdateId>,
    pub needed: Vec<crate::ids::UpdateId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateCompliance {
    pub update_id: crate::ids::UpdateId,
    pub kb_article: Option<String>,
    pub title: Option<String>,
    pub classification: Option<String>,
    pub approval: ApprovalStatus,
    pub counts: StateCounts,
    /// The vendor and product of an update published here (`ferry publish`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PublishedBy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedBy {
    pub vendor: String,
    pub product: String,
}

impl PublishedBy {
    /// "Vendor / Product", as reports and the console show it.
    pub fn label(&self) -> String {
        format!("{} / {}", self.vendor, self.product)
    }
}

impl UpdateCompliance {
    /// The title as reports show it: with vendor and product for an update published here.
    pub fn shown_title(&self) -> String {
        let title = self.title.clone().unwrap_or_default();
        match &self.published {
            Some(p) => format!("{title} ({})", p.label()),
            None => title,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub group: Option<String>,
    pub computers: Vec<ComputerCompliance>,
    /// Updates that are approved, or that some computer in scope needs, failed or has.
    pub updates: Vec<UpdateCompliance>,
}

/// What compliance is computed from.
pub trait ComplianceStorage {
    /// Every computer's status from its events, one computer at a time (memory holds one
    /// computer's events, not the table's).
    fn computer_statuses(&self) -> StoreResult<HashMap<String, ComputerStatus>>;

    /// When each update's newest revision reached the store (server time).
    fn arrival_times(&self) -> StoreResult<HashMap<String, String>>;
}
