//! What `ferry check` found. (The SQL that reads and writes them is in `sqlite/consistency.rs`.)

use super::*;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckProblem {
    /// What is affected: the database, a revision, a content file.
    pub subject: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub revisions_checked: u64,
    pub documents_reparsed: u64,
    pub files_checked: u64,
    pub bytes_hashed: u64,
    pub problems: Vec<CheckProblem>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn problem(&mut self, subject: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(CheckProblem { subject: subject.into(), problem: problem.into() });
    }
}

/// `ferry check`.
pub trait CheckStorage {
    /// Checks database integrity and catalog invariants; with `deep`, also re-parses every
    /// document against its stored fragments and re-hashes every content file against both
    /// digests. `progress` is called with (bytes done, bytes total) while hashing.
    fn check(&self, deep: bool, progress: &mut dyn FnMut(u64, u64)) -> StoreResult<CheckReport>;
}
