//! `SafePath`: the only way a path from a bundle reaches the file system.
//!
//! Invariant: a `SafePath` is relative, made of 1 to 4 components of `[A-Za-z0-9._-]` that are
//! not `.` or `..`, at most 100 bytes: no absolute paths, drive letters, UNC paths, backslashes,
//! traversal or odd characters, whatever the volume says. Joining it under a directory cannot
//! leave that directory.

use std::fmt;
use std::path::{Path, PathBuf};

pub const MAX_PATH_BYTES: usize = 100;
const MAX_COMPONENTS: usize = 4;

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct SafePath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path:?}: {reason}")]
pub struct UnsafePath {
    pub path: String,
    pub reason: &'static str,
}

impl SafePath {
    pub fn new(path: &str) -> Result<SafePath, UnsafePath> {
        let fail = |reason| Err(UnsafePath { path: path.chars().take(200).collect(), reason });
        if path.is_empty() {
            return fail("empty");
        }
        if path.len() > MAX_PATH_BYTES {
            return fail("longer than 100 bytes");
        }
        if path.starts_with('/') {
            return fail("absolute path");
        }
        if path.contains('\\') {
            return fail("backslash (Windows or UNC path)");
        }
        if path.contains(':') {
            return fail("colon (drive letter or stream name)");
        }
        let components: Vec<&str> = path.split('/').collect();
        if components.len() > MAX_COMPONENTS {
            return fail("nested too deep");
        }
        for c in &components {
            if c.is_empty() {
                return fail("empty component (// or trailing /)");
            }
            if *c == "." || *c == ".." {
                return fail("'.' or '..' component (path traversal)");
            }
            if !c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return fail("characters other than letters, digits, '.', '_' and '-'");
            }
        }
        Ok(SafePath(path.to_string()))
    }

    /// From raw archive bytes (which may not even be UTF-8).
    pub fn from_bytes(bytes: &[u8]) -> Result<SafePath, UnsafePath> {
        match std::str::from_utf8(bytes) {
            Ok(s) => SafePath::new(s),
            Err(_) => Err(UnsafePath {
                path: String::from_utf8_lossy(bytes).into_owned(),
                reason: "not UTF-8",
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `root/self`, which is always inside `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        self.0.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
    }
}

impl TryFrom<String> for SafePath {
    type Error = UnsafePath;
    fn try_from(s: String) -> Result<SafePath, UnsafePath> {
        SafePath::new(&s)
    }
}

impl From<SafePath> for String {
    fn from(p: SafePath) -> String {
        p.0
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_layout_paths_are_safe() {
        for ok in [
            "manifest.json",
            "metadata/revisions-0001.zst",
            "content/CD/87F5BD0469585006AA5D3A77D1C662FD2895DDCD.exe",
            "content/CD/X.wim.part0002",
        ] {
            SafePath::new(ok).unwrap();
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "C:\\Windows\\x",
            "C:/x",
            "\\\\server\\share\\x",
            "//server/share",
            "a//b",
            "a/",
            "con tent/x",
            "a/b/c/d/e",
            "x\u{0}y",
            "é",
        ] {
            assert!(SafePath::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(SafePath::from_bytes(&[0xff, b'a']).is_err());
        assert!(SafePath::new(&"a".repeat(101)).is_err());
    }

    #[test]
    fn joining_stays_inside() {
        let p = SafePath::new("content/AB/FILE.cab").unwrap();
        assert_eq!(p.under(Path::new("/data")), PathBuf::from("/data/content/AB/FILE.cab"));
    }
}
