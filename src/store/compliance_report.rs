//! The compliance report: per computer and per update. (The SQL that reads and writes them is in
//! `sqlite/compliance_report.rs`.)

use crate::compliance::StateCounts;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ComputerCompliance {
    pub computer_id: String,
    pub name: String,
    pub groups: Vec<String>,
    pub last_contact_at: String,
    pub last_sync_at: Option<String>,
    pub last_report_at: Option<String>,
    pub counts: StateCounts,
    /// UpdateIDs needing attention: failed or needed (for `--status` filters and drill-down).
    pub failed: Vec<String>,
    pub needed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateCompliance {
    pub update_id: String,
    pub kb_article: Option<String>,
    pub title: Option<String>,
    pub classification: Option<String>,
    pub approval: &'static str,
    pub counts: StateCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub group: Option<String>,
    pub computers: Vec<ComputerCompliance>,
    /// Updates that are approved, or that some computer in scope needs, failed or has.
    pub updates: Vec<UpdateCompliance>,
}
