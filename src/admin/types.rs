//! The administration's domain values: what an approval does, and why a change was refused.
//! Compared as values everywhere; written as text only by the wire formats and storage.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an approval tells a computer to do with an update (WSUS's `UpdateApprovalAction`).
/// `Block` is WSUS's explicit "not approved" for a group below an approved parent; it arrives
/// from an upstream WSUS and is never chosen by an administrator here.
///
/// Ordered as WSUS ranks approvals of groups equally deep: Install wins over Uninstall over Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    Install,
    Uninstall,
    Block,
}

impl Action {
    /// The name WSUS and the store use: `Install`, `Uninstall`, `Block`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Install => "Install",
            Action::Uninstall => "Uninstall",
            Action::Block => "Block",
        }
    }

    /// A stored or wire name, exactly as [`Action::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<Action> {
        [Action::Install, Action::Uninstall, Action::Block].into_iter().find(|a| a.as_str() == name)
    }

    /// What an administrator may ask for (CLI, API, console, a bundle's policy): `install` (also
    /// when nothing is said) or `uninstall`, in any case.
    pub fn approvable(name: Option<&str>) -> Result<Action, Refusal> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None | Some("install") => Ok(Action::Install),
            Some("uninstall") => Ok(Action::Uninstall),
            Some(_) => {
                Err(Refusal::NotAnApprovalAction { given: name.unwrap_or_default().to_string() })
            }
        }
    }

    /// The lower-case name a policy or the API writes.
    pub fn policy_name(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an administration change was refused. Nothing was changed; the words say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("update {update} is declined: undecline it before approving it (nothing was changed)")]
    Declined { update: crate::ids::UpdateId },
    #[error(
        "update {update} is expired: Microsoft withdrew it, so it cannot be approved for install (nothing was changed)"
    )]
    Expired { update: crate::ids::UpdateId },
    #[error("action {given:?}: use install or uninstall")]
    NotAnApprovalAction { given: String },
    #[error("no updates named: give at least one update id or KB number")]
    NoUpdatesNamed,
    #[error("{name:?} matches {} computers ({}): name one by SusClientId (nothing was changed)", ids.len(), ids.join(", "))]
    AmbiguousComputer { name: String, ids: Vec<String> },
    #[error("targeting mode {given:?}: use client or server")]
    NotATargetingMode { given: String },
    #[error(
        "at most {most} groups may be created by clients (asked for {given}): every one is a row any client can add by naming it (nothing was changed)"
    )]
    TooManyClientGroups { given: u32, most: u32 },
    #[error("{given} matches {matches} updates; name each by UpdateID (nothing was changed)")]
    AmbiguousUpdate { given: String, matches: usize },
    #[error(
        "{given} is a {kind}: only software and driver updates are approved (nothing was changed)"
    )]
    NotApprovable { given: String, kind: String },
    #[error("a group named {name:?} exists already")]
    GroupExists { name: String },
    #[error("Unassigned Computers cannot have subgroups (as on WSUS)")]
    NoSubgroupsOfUnassigned,
    #[error("{group} is built in and stays where it is")]
    BuiltInStays { group: String },
    #[error("{group} is built in and cannot be removed")]
    BuiltInCannotBeRemoved { group: String },
    #[error("{group} cannot move under {parent}: {parent} is inside {group} (nothing was changed)")]
    GroupInsideItself { group: String, parent: String },
    #[error("{group} has {count} subgroup(s): move or remove them first (nothing was changed)")]
    HasSubgroups { group: String, count: u64 },
    #[error("every computer is in All Computers already; name a group under it")]
    AllComputersHoldsEveryone,
    #[error(
        "obsolete computers: {given} days; use {} to {} (WSUS uses 30)",
        super::cleanup::OBSOLETE_DAYS.start(),
        super::cleanup::OBSOLETE_DAYS.end()
    )]
    ObsoleteComputerDays { given: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_what_they_write_and_only_install_or_uninstall_is_approvable() {
        for a in [Action::Install, Action::Uninstall, Action::Block] {
            assert_eq!(Action::from_name(a.as_str()), Some(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        assert_eq!(Action::from_name("install"), None, "stored names are exact");
        let cases: [(Option<&str>, Result<Action, ()>); 7] = [
            (None, Ok(Action::Install)),
            (Some("install"), Ok(Action::Install)),
            (Some("INSTALL"), Ok(Action::Install)),
            (Some("Uninstall"), Ok(Action::Uninstall)),
            (Some("block"), Err(())),
            (Some(""), Err(())),
            (Some("install "), Err(())),
        ];
        for (given, expected) in cases {
            assert_eq!(Action::approvable(given).map_err(|_| ()), expected, "{given:?}");
        }
        assert_eq!(
            Action::approvable(Some("block")).unwrap_err().to_string(),
            "action \"block\": use install or uninstall"
        );
    }
}
