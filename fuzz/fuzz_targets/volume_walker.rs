//! Bundle volumes as `ferry import` and `ferry verify` walk them (`bundle::reader::walk`), and
//! the zip central-directory reader (`bundle::zip_volume`) on its own.
//!
//! Input: the first byte picks how to read (bit 0: tar or zip; bit 1: hash the whole volume;
//! bit 2: the visitor stops after the first entry), the rest is the volume file. The visitor
//! does what `check.rs` does with an entry: checks its name with `SafePath::from_bytes` and reads
//! a regular file's declared size of data (through a fixed buffer: memory must not grow with
//! declarations); `walk` reads the rest.
//! Run with `-rss_limit_mb=2048` and a timeout: a volume must not make the walk allocate or run
//! beyond what its size explains.

#![no_main]

use ferry::bundle::reader::{self, EntryKind, Visit, WalkError};
use ferry::bundle::safe_path::SafePath;
use ferry::bundle::volumes::VolumeFormat;
use ferry::bundle::zip_volume;
use libfuzzer_sys::fuzz_target;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// One scratch file per process, rewritten for every input. On Linux it is an unlinked file
/// reopened through /proc, so nothing is left behind however the process ends.
struct Scratch {
    file: File,
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

fn scratch() -> &'static Mutex<Scratch> {
    static SCRATCH: OnceLock<Mutex<Scratch>> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let file = tempfile::tempfile().expect("a temporary file");
            let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            if File::open(&path).is_ok() {
                return Mutex::new(Scratch { file, path, _dir: None });
            }
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("volume");
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).expect("the scratch file");
        Mutex::new(Scratch { file, path, _dir: Some(dir) })
    })
}

/// Reads at most `size` bytes of an entry through a fixed buffer; the count read.
fn read_entry(data: &mut dyn Read, size: u64) -> u64 {
    let mut buf = [0u8; 64 * 1024];
    let mut left = size;
    let mut total = 0u64;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        match data.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                assert!(n <= want, "read returned {n} bytes for a {want}-byte buffer");
                left -= n as u64;
                total += n as u64;
            }
        }
    }
    total
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, volume)) = data.split_first() else { return };
    let format = if mode & 1 == 0 { VolumeFormat::Tar } else { VolumeFormat::Zip };
    let hash_volume = mode & 2 != 0;
    let stop_after_first = mode & 4 != 0;

    let mut scratch = scratch().lock().unwrap_or_else(|e| e.into_inner());
    scratch.file.set_len(0).unwrap();
    scratch.file.seek(SeekFrom::Start(0)).unwrap();
    scratch.file.write_all(volume).unwrap();
    scratch.file.flush().unwrap();
    let path = scratch.path.clone();

    let mut entries = 0usize;
    let mut visit = |entry: reader::Entry<'_>| -> Result<Visit, ()> {
        entries += 1;
        if let Ok(p) = SafePath::from_bytes(&entry.raw_path) {
            assert!(p.as_str().as_bytes() == entry.raw_path.as_slice());
        }
        let _ = entry.kind.describe();
        // Regular files are read here, up to their declared size; what is left of any entry
        // (the rest of a file, the data of other kinds) `walk` reads itself, as it does for
        // `check.rs`, which refuses other kinds without reading them.
        if entry.kind == EntryKind::File {
            let read = read_entry(entry.data, entry.size);
            assert!(read <= entry.size);
        }
        Ok(if stop_after_first { Visit::Stop } else { Visit::Continue })
    };
    match reader::walk(&path, format, hash_volume, &mut visit) {
        Ok(digest) => {
            if hash_volume && !(stop_after_first && entries > 0) {
                assert_eq!(digest.size, volume.len() as u64, "the volume digest covers another length");
            }
        }
        Err(WalkError::Archive(e)) => {
            let _ = e.to_string();
        }
        Err(WalkError::Duplicate(_)) | Err(WalkError::Visitor(())) => {}
    }

    // The zip directory reader on its own, whatever the first byte said, and each entry's data.
    let mut file = File::open(&path).unwrap();
    if let Ok(list) = zip_volume::entries(&mut file) {
        assert!(list.len() <= volume.len() / 46, "{} entries in a {}-byte file", list.len(), volume.len());
        let mut reader = BufReader::new(file);
        for e in &list {
            if let Ok(mut data) = zip_volume::open_entry(&mut reader, e) {
                read_entry(&mut data, e.size);
            }
        }
    }
});
