//! What `ferry check` found. (The SQL that reads and writes them is in `sqlite/consistency.rs`.)

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
