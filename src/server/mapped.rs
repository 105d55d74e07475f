//! Payload files mapped into memory, so that a ranged GET hands the kernel the page-cache pages
//! directly (one copy into the socket, as `sendfile` would do) instead of reading them into a
//! buffer first. Mappings of recently served files are kept.

use bytes::Bytes;
use memmap2::{Advice, Mmap};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct MappedFile {
    /// `None` for an empty file (which cannot be mapped).
    map: Option<Mmap>,
    pub size: u64,
    /// HTTP date of the file's modification time.
    pub modified: String,
}

impl MappedFile {
    fn open(path: &Path) -> std::io::Result<MappedFile> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not a file"));
        }
        let modified = meta.modified().map(httpdate::fmt_http_date).unwrap_or_default();
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: files under the store are written once, under a temporary name, and moved
            // into place; they are never modified or truncated in place, and unlinking one
            // leaves existing mappings intact. Served files outside the store (selfupdate) are
            // an administrator's copies with the same rule.
            Some(unsafe { Mmap::map(&file)? })
        };
        Ok(MappedFile { map, size: meta.len(), modified })
    }

    /// `len` bytes from `offset` (within the file), sharing the mapping.
    pub fn bytes(self: &Arc<Self>, offset: u64, len: u64) -> Bytes {
        if len == 0 {
            return Bytes::new();
        }
        Bytes::from_owner(MappedRange {
            file: self.clone(),
            start: offset as usize,
            end: (offset + len) as usize,
        })
    }

    /// Whether every page of the range is in the page cache (then sending it never waits for
    /// the disk).
    pub fn resident(&self, offset: u64, len: u64) -> bool {
        let Some(map) = &self.map else { return true };
        let page = page_size();
        let start = (offset as usize / page) * page;
        let end = ((offset + len) as usize).min(map.len());
        let pages = (end - start).div_ceil(page);
        let mut flags = vec![0u8; pages];
        // SAFETY: the range lies within the mapping and starts on a page boundary; `flags` has
        // one byte per page of it.
        let ok = unsafe {
            libc::mincore(
                map.as_ptr().add(start) as *mut libc::c_void,
                end - start,
                flags.as_mut_ptr(),
            )
        } == 0;
        ok && flags.iter().all(|f| f & 1 == 1)
    }

    /// Reads the range into memory ahead of sending (call on a blocking thread): a page fault on
    /// a cold file must not stall the threads that serve everyone else.
    pub fn prefetch(&self, offset: u64, len: u64) {
        if let Some(map) = &self.map {
            // Older kernels lack MADV_POPULATE_READ; the send then faults the pages in itself.
            let _ = map.advise_range(Advice::PopulateRead, offset as usize, len as usize);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

struct MappedRange {
    file: Arc<MappedFile>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        match &self.file.map {
            Some(m) => &m[self.start..self.end],
            None => &[],
        }
    }
}

/// Mappings by path, the most recently used kept.
#[derive(Default)]
pub struct MappedFiles {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_path: HashMap<PathBuf, Arc<MappedFile>>,
    order: VecDeque<PathBuf>,
}

const KEPT: usize = 256;

impl MappedFiles {
    pub fn get(&self, path: &Path) -> std::io::Result<Arc<MappedFile>> {
        if let Some(f) = self.inner.lock().expect("mapped files lock").by_path.get(path) {
            return Ok(f.clone());
        }
        let file = Arc::new(MappedFile::open(path)?);
        let mut kept = self.inner.lock().expect("mapped files lock");
        if kept.by_path.insert(path.to_path_buf(), file.clone()).is_none() {
            kept.order.push_back(path.to_path_buf());
        }
        while kept.order.len() > KEPT {
            if let Some(old) = kept.order.pop_front() {
                kept.by_path.remove(&old);
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_share_the_mapping_and_empty_files_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.cab");
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let files = MappedFiles::default();
        let f = files.get(&path).unwrap();
        assert_eq!(f.size, 20_000);
        assert_eq!(&f.bytes(5000, 100)[..], &data[5000..5100]);
        f.prefetch(0, 20_000);
        assert!(f.resident(4097, 10_000), "just read, so in the page cache");
        assert!(Arc::ptr_eq(&f, &files.get(&path).unwrap()), "kept");
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let e = files.get(&dir.path().join("empty")).unwrap();
        assert_eq!((e.size, e.bytes(0, 0).len()), (0, 0));
        assert!(files.get(&dir.path().join("missing")).is_err());
    }
}
