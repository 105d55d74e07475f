//! The admin API's JSON: every request body, query and answer shape it reads or writes, and
//! nowhere else. Store and admin types that serialize as they are (updates, groups, rules,
//! reports, plans) appear inside these shapes unchanged.

use crate::admin::RuleOutcome;
use crate::store::{Approval, CatalogStatus, CleanupPlan, Targeting};
use serde::{Deserialize, Serialize};

// ---- requests ----

/// `POST /updates/{approve,unapprove,decline,undecline}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateChange {
    pub ids: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// `install` (default) or `uninstall`.
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub deadline: Option<String>,
}

/// `POST /groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
}

/// `POST /groups/{name}/move`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveGroup {
    pub parent: String,
}

/// `POST /computers/move`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveComputers {
    pub computers: Vec<String>,
    pub group: String,
    #[serde(default)]
    pub keep: bool,
}

/// `POST /rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub classifications: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    pub group: String,
    /// `install` (default) or `uninstall`.
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub deadline_days: Option<u32>,
}

/// `PUT /targeting`: what is not given stays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetingChange {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub create_missing_groups: Option<bool>,
    #[serde(default)]
    pub max_client_groups: Option<u32>,
}

/// `POST /cleanup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub decline_superseded: bool,
    #[serde(default)]
    pub decline_expired: bool,
    #[serde(default)]
    pub unneeded_content: bool,
    #[serde(default)]
    pub obsolete_computers: Option<u32>,
}

/// `GET /updates?...`: empty values count as absent.
#[derive(Debug, Default, Deserialize)]
pub struct UpdatesQuery {
    pub search: Option<String>,
    pub classification: Option<String>,
    pub product: Option<String>,
    /// `approved`, `unapproved`, `declined` or `any-except-declined`.
    pub approval: Option<String>,
}

/// `GET /computers?...` and `GET /report?...`.
#[derive(Debug, Default, Deserialize)]
pub struct GroupQuery {
    pub group: Option<String>,
    /// Part of a computer's DNS name.
    pub name: Option<String>,
}

// ---- answers ----

#[derive(Debug, Serialize)]
pub struct Index {
    pub api: &'static str,
    pub see: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub catalog: CatalogStatus,
    pub computers: usize,
    pub groups: usize,
    pub approvals: usize,
    pub imports: usize,
    pub targeting: Targeting,
}

#[derive(Debug, Serialize)]
pub struct Approved {
    /// Updates asked for.
    pub approved: usize,
    /// UpdateIDs approved along with them because they need them first.
    pub prerequisites: Vec<crate::ids::UpdateId>,
    pub group: String,
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Serialize)]
pub struct Unapproved {
    pub removed: usize,
    pub group: String,
}

#[derive(Debug, Serialize)]
pub struct Declined {
    pub declined: usize,
}

#[derive(Debug, Serialize)]
pub struct Undeclined {
    pub undeclined: usize,
}

#[derive(Debug, Serialize)]
pub struct Moved {
    pub moved: usize,
    pub group: String,
}

#[derive(Debug, Serialize)]
pub struct Removed {
    pub removed: usize,
}

/// A classification or product.
#[derive(Debug, Serialize)]
pub struct Category {
    pub id: String,
    pub title: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CleanupDone {
    pub dry_run: bool,
    pub plan: CleanupPlan,
}

pub type RulesApplied = Vec<RuleOutcome>;
