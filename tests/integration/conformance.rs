//! Access to the real material in `../shared/conformance/` (never copied into this repository).
//!
//! The directory comes from `FERRY_CONFORMANCE` (default `../shared/conformance`). When CI sets
//! the variable and the directory is missing, tests fail; on a machine without the material they
//! print that they were skipped.

use std::path::PathBuf;

pub fn dir() -> Option<PathBuf> {
    let configured = std::env::var_os("FERRY_CONFORMANCE");
    let path = match &configured {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    };
    if path.join("README.md").is_file() {
        return Some(path);
    }
    if configured.is_some() {
        panic!("FERRY_CONFORMANCE={} is set but holds no conformance material", path.display());
    }
    eprintln!("skipped: no conformance material at {} (set FERRY_CONFORMANCE)", path.display());
    None
}

/// `conformance::dir()` or return from the test (skipped).
#[macro_export]
macro_rules! conformance_or_skip {
    () => {
        match $crate::conformance::dir() {
            Some(d) => d,
            None => return,
        }
    };
}

pub fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
