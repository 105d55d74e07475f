//! What can go wrong with a bundle, and the exit code each problem maps to (DESIGN.md §1).

use crate::store::StoreError;

/// Exit codes of `verify` and `import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum ProblemKind {
    /// 10: signature missing, invalid, or from an untrusted key.
    Signature,
    /// 11: a volume or member missing, truncated or not matching its hash.
    Integrity,
    /// 12: sequence refused (replay, rollback, delta on a missing base) or expired.
    Sequence,
    /// 13: unsafe entry (path traversal, absolute path, link, device, duplicate, oversize).
    Unsafe,
}

impl ProblemKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ProblemKind::Signature => 10,
            ProblemKind::Integrity => 11,
            ProblemKind::Sequence => 12,
            ProblemKind::Unsafe => 13,
        }
    }
}

/// One thing wrong with a bundle, said so a courier or an administrator knows what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub kind: ProblemKind,
    pub exit_code: u8,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem { kind, exit_code: kind.exit_code(), message: message.into() }
    }
    pub fn signature(m: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Signature, m)
    }
    pub fn integrity(m: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Integrity, m)
    }
    pub fn sequence(m: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Sequence, m)
    }
    pub fn unsafe_entry(m: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Unsafe, m)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

impl BundleError {
    /// 10-13 for bundle problems, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BundleError::Problem(p) => p.exit_code,
            _ => 1,
        }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> BundleError {
        BundleError::Io { path: path.to_path_buf(), source }
    }
}
