//! The content tree: payload files under `content/<XX>/<SHA1 upper hex>.<ext>`, the WsusContent
//! layout, so any static web server or copy tool can serve or move it.
//!
//! Invariant: a file appears under its final name only after its size, SHA-1 and SHA-256 were
//! checked; writes go to `tmp/` in the store and are renamed into place.

use crate::catalog::{Sha1Digest, Sha256Digest};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("{file_name} ({}): {what} is {actual}, the metadata says {expected}", path.display())]
    Mismatch {
        file_name: String,
        path: PathBuf,
        what: &'static str,
        expected: String,
        actual: String,
    },

    #[error("{file_name}: missing from the content tree ({})", path.display())]
    Missing { file_name: String, path: PathBuf },
}

/// What the metadata says a payload file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFile {
    pub sha1: Sha1Digest,
    pub sha256: Option<Sha256Digest>,
    pub size: u64,
    pub extension: String,
    pub file_name: String,
}

/// A file found in the content tree under a content name (see [`ContentStore::payload_files`]).
pub struct PayloadOnDisk {
    pub sha1: Sha1Digest,
    /// `XX/<name>`, relative to the content root.
    pub relative: String,
    pub metadata: std::fs::Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedFile {
    pub sha1: Sha1Digest,
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// SHA-1 and SHA-256 of one stream, computed together (or SHA-256 alone, when the SHA-1 is
/// known to be implied by the SHA-256 of signed data).
#[derive(Clone, Default)]
pub struct FileHasher {
    sha1: Option<Sha1>,
    sha256: Sha256,
    len: u64,
    without_sha1: bool,
}

impl FileHasher {
    pub fn sha256_only() -> FileHasher {
        FileHasher { without_sha1: true, ..Default::default() }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if !self.without_sha1 {
            self.sha1.get_or_insert_with(Sha1::default).update(bytes);
        }
        self.sha256.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// With `sha256_only`, `sha1` is all zeros.
    pub fn finish(self) -> VerifiedFile {
        let sha1 = if self.without_sha1 {
            [0; 20]
        } else {
            self.sha1.unwrap_or_default().finalize().into()
        };
        VerifiedFile {
            sha1: Sha1Digest(sha1),
            sha256: Sha256Digest(self.sha256.finalize().into()),
            size: self.len,
        }
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: FileHasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: FileHasher::default() }
    }

    pub fn finish(self) -> (W, VerifiedFile) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl VerifiedFile {
    /// Compares with the metadata; the first difference is the error.
    pub fn check(&self, expected: &ExpectedFile, path: &Path) -> Result<(), ContentError> {
        let mismatch = |what, e: String, a: String| ContentError::Mismatch {
            file_name: expected.file_name.clone(),
            path: path.to_path_buf(),
            what,
            expected: e,
            actual: a,
        };
        if self.size != expected.size {
            return Err(mismatch(
                "size",
                format!("{} bytes", expected.size),
                format!("{} bytes", self.size),
            ));
        }
        if self.sha1 != expected.sha1 {
            return Err(mismatch("SHA-1", expected.sha1.to_hex_upper(), self.sha1.to_hex_upper()));
        }
        if let Some(sha256) = expected.sha256
            && self.sha256 != sha256
        {
            return Err(mismatch("SHA-256", sha256.to_hex_lower(), self.sha256.to_hex_lower()));
        }
        Ok(())
    }
}

pub const COPY_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// The content tree's folder in a data directory, and its staging folder beside it.
const CONTENT_DIR: &str = "content";
const STAGING_DIR: &str = "tmp";

impl ContentStore {
    pub fn new(root: PathBuf) -> Self {
        ContentStore { root }
    }

    /// The content tree of the store in `data`: the one place that names its folders.
    pub fn in_data_dir(data: &Path) -> Self {
        ContentStore::new(data.join(CONTENT_DIR))
    }

    /// Removes the tree's folders if they are empty (a store that was created and then given
    /// up); anything in them stays.
    pub fn remove_if_empty(&self) {
        let _ = std::fs::remove_dir(self.staging_dir());
        let _ = std::fs::remove_dir(&self.root);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `XX/SHA1.ext`, relative to the content root (and to `/Content/` in URLs).
    pub fn relative_path(sha1: &Sha1Digest, extension: &str) -> String {
        if extension.is_empty() {
            format!("{}/{}", sha1.content_folder(), sha1.to_hex_upper())
        } else {
            format!("{}/{}.{}", sha1.content_folder(), sha1.to_hex_upper(), extension)
        }
    }

    pub fn path(&self, sha1: &Sha1Digest, extension: &str) -> PathBuf {
        self.root.join(Self::relative_path(sha1, extension))
    }

    /// Every file in the tree named as content (`XX/<SHA1>.<ext>`), found by walking its two
    /// levels; other names and symbolic links are passed over.
    pub fn payload_files(&self) -> impl Iterator<Item = PayloadOnDisk> + use<> {
        let content_folder = |name: &std::ffi::OsStr| {
            name.len() == 2 && name.as_encoded_bytes().iter().all(u8::is_ascii_hexdigit)
        };
        // (Not `min_depth`: the entries it skips never reach `filter_entry`.)
        walkdir::WalkDir::new(&self.root)
            .max_depth(2)
            .follow_links(false)
            .into_iter()
            .filter_entry(move |e| e.depth() != 1 || content_folder(e.file_name()))
            .filter_map(Result::ok)
            .filter(|e| e.depth() == 2 && e.file_type().is_file())
            .filter_map(|e| {
                let folder = e.path().parent()?.file_name()?.to_str()?.to_string();
                let name = e.file_name().to_str()?.to_string();
                let hex = name.split('.').next().filter(|h| h.len() == 40)?;
                let sha1 = Sha1Digest::from_hex(hex).ok()?;
                let metadata = e.metadata().ok()?;
                Some(PayloadOnDisk { sha1, relative: format!("{folder}/{name}"), metadata })
            })
    }

    /// Scratch space inside the store (same file system, so renames are atomic).
    pub fn staging_dir(&self) -> PathBuf {
        self.root.with_file_name(STAGING_DIR)
    }

    /// Takes the lock `name` of this store, shared by every process that uses this content
    /// tree (an exclusive `flock` on `name.lock` in the staging directory), held until the
    /// returned file is dropped. Without `wait`, `None` when another process holds it.
    pub fn lock(&self, name: &str, wait: bool) -> Result<Option<File>, ContentError> {
        let dir = self.staging_dir();
        std::fs::create_dir_all(&dir).map_err(Self::io(&dir))?;
        let path = dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let how = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
            // SAFETY: flock on a descriptor this function owns and returns.
            if unsafe { libc::flock(file.as_raw_fd(), how) } != 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(None);
                }
                return Err(ContentError::Io { path, source: e });
            }
        }
        Ok(Some(file))
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
        move |source| ContentError::Io { path: path.to_path_buf(), source }
    }

    /// Renames a file staged in this store (same file system, so the rename is atomic) to
    /// `target` in the tree, making its folder; says whether a file was there already (the
    /// rename replaced it).
    pub fn place(&self, staged: &Path, target: &Path) -> Result<bool, ContentError> {
        let folder = target.parent().expect("content paths have a folder");
        std::fs::create_dir_all(folder).map_err(Self::io(folder))?;
        let existed = target.exists();
        std::fs::rename(staged, target).map_err(Self::io(target))?;
        Ok(existed)
    }

    /// Copies `source` into the tree while hashing it; the file gets its final name only if it
    /// matches `expected`. An existing verified file is replaced atomically.
    pub fn store_from_reader(
        &self,
        expected: &ExpectedFile,
        mut source: impl Read,
    ) -> Result<VerifiedFile, ContentError> {
        let staging = self.staging_dir();
        std::fs::create_dir_all(&staging).map_err(Self::io(&staging))?;
        let temp =
            staging.join(format!("{}.{}.part", expected.sha1.to_hex_upper(), std::process::id()));
        let result = (|| {
            let file = File::create(&temp).map_err(Self::io(&temp))?;
            let mut writer = HashingWriter::new(io::BufWriter::with_capacity(COPY_BUFFER, file));
            let mut buf = vec![0u8; COPY_BUFFER];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ContentError::Io { path: temp.clone(), source: e }),
                };
                writer.write_all(&buf[..n]).map_err(Self::io(&temp))?;
                if writer.hasher.len() > expected.size {
                    break;
                }
            }
            let (file, verified) = writer.finish();
            let file = file
                .into_inner()
                .map_err(|e| ContentError::Io { path: temp.clone(), source: e.into_error() })?;
            verified.check(expected, &temp)?;
            file.sync_data().map_err(Self::io(&temp))?;
            self.place(&temp, &self.path(&expected.sha1, &expected.extension))?;
            Ok(verified)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Copies `source` into the tree under the name its own SHA-1 gives it (for content this
    /// program produces, such as generated catalogs).
    pub fn store_by_content(
        &self,
        extension: &str,
        mut source: impl Read,
    ) -> Result<VerifiedFile, ContentError> {
        let staging = self.staging_dir();
        std::fs::create_dir_all(&staging).map_err(Self::io(&staging))?;
        let temp = staging.join(
            format!("new.{}.{:?}.part", std::process::id(), std::thread::current().id())
                .replace(['(', ')'], ""),
        );
        let result = (|| {
            let file = File::create(&temp).map_err(Self::io(&temp))?;
            let mut writer = HashingWriter::new(io::BufWriter::with_capacity(COPY_BUFFER, file));
            io::copy(&mut source, &mut writer).map_err(Self::io(&temp))?;
            let (file, verified) = writer.finish();
            file.into_inner()
                .map_err(|e| ContentError::Io { path: temp.clone(), source: e.into_error() })?;
            self.place(&temp, &self.path(&verified.sha1, extension))?;
            Ok(verified)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Re-hashes a stored file against its metadata.
    pub fn verify(&self, expected: &ExpectedFile) -> Result<VerifiedFile, ContentError> {
        let path = self.path(&expected.sha1, &expected.extension);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContentError::Missing { file_name: expected.file_name.clone(), path });
            }
            Err(e) => return Err(ContentError::Io { path, source: e }),
        };
        let verified = hash_reader(&mut file).map_err(Self::io(&path))?;
        verified.check(expected, &path)?;
        Ok(verified)
    }

    /// True when a file of the right size is in place (a cheap check; `verify` re-hashes).
    pub fn has(&self, expected: &ExpectedFile) -> bool {
        std::fs::metadata(self.path(&expected.sha1, &expected.extension))
            .is_ok_and(|m| m.is_file() && m.len() == expected.size)
    }
}

/// Hashes a whole stream with both digests.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<VerifiedFile> {
    let mut hasher = FileHasher::default();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `XX/<40 hex>[.ext]` regular files are content; the walk does not follow links
    /// out of the tree nor descend below the folders.
    #[test]
    fn payload_files_are_the_files_named_as_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::in_data_dir(dir.path());
        let hex = "0123456789ABCDEF0123456789ABCDEF012345AB";
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("AB")).unwrap();
        std::fs::write(outside.join(format!("AB/{hex}.cab")), b"x").unwrap();
        let files = [
            (format!("AB/{hex}.cab"), true),
            (format!("AB/{hex}"), true),
            (format!("ab/{hex}.exe"), true),
            ("AB/not-a-digest.cab".to_string(), false),
            (format!("ABC/{hex}.cab"), false),
            (format!("zz/{hex}.cab"), false),
            (format!("AB/deeper/{hex}.cab"), false),
            (format!("{hex}.cab"), false),
        ];
        for (path, _) in &files {
            let path = store.root().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"payload").unwrap();
        }
        std::os::unix::fs::symlink(outside.join("AB"), store.root().join("CD")).unwrap();
        std::os::unix::fs::symlink(
            outside.join(format!("AB/{hex}.cab")),
            store.root().join(format!("AB/{}.cab", hex.replace('0', "F"))),
        )
        .unwrap();
        let mut found: Vec<String> = store.payload_files().map(|f| f.relative).collect();
        found.sort();
        let mut expected: Vec<String> =
            files.iter().filter(|(_, content)| *content).map(|(p, _)| p.clone()).collect();
        expected.sort();
        assert_eq!(found, expected);
        assert!(store.payload_files().all(|f| f.metadata.len() == 7));
    }

    fn expected_for(bytes: &[u8]) -> ExpectedFile {
        let v = hash_reader(&mut &bytes[..]).unwrap();
        ExpectedFile {
            sha1: v.sha1,
            sha256: Some(v.sha256),
            size: v.size,
            extension: "cab".into(),
            file_name: "x.cab".into(),
        }
    }

    #[test]
    fn verified_file_lands_under_its_wsus_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::in_data_dir(dir.path());
        let e = expected_for(b"payload");
        store.store_from_reader(&e, &b"payload"[..]).unwrap();
        let path = store.path(&e.sha1, "cab");
        assert!(path.to_string_lossy().ends_with(&format!(
            "content/{}/{}.cab",
            e.sha1.content_folder(),
            e.sha1.to_hex_upper()
        )));
        assert_eq!(std::fs::read(path).unwrap(), b"payload");
        store.verify(&e).unwrap();
    }

    #[test]
    fn mismatching_bytes_never_reach_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::in_data_dir(dir.path());
        let e = expected_for(b"payload");
        let err = store.store_from_reader(&e, &b"paylaod"[..]).unwrap_err();
        assert!(matches!(err, ContentError::Mismatch { what: "SHA-1", .. }), "{err}");
        assert!(!store.path(&e.sha1, "cab").exists());
        assert_eq!(
            std::fs::read_dir(store.staging_dir()).unwrap().count(),
            0,
            "the partial file is removed"
        );
        let longer = store.store_from_reader(&e, &b"payload and more"[..]).unwrap_err();
        assert!(matches!(longer, ContentError::Mismatch { what: "size", .. }));
    }
}
