//! Reading a bundle's volumes in place (read-only media works): every entry of a volume in
//! order, with the volume's own SHA-256 computed on the same pass (tar) so each byte is read once.

use super::pipe::HashingFileReader;
use super::volumes::VolumeFormat;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    HardLink,
    Device,
    Other,
}

impl EntryKind {
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "regular file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symbolic link",
            EntryKind::HardLink => "hard link",
            EntryKind::Device => "device or FIFO",
            EntryKind::Other => "special entry",
        }
    }
}

/// One archive entry: its raw name (not yet validated), type and declared size, and its bytes.
pub struct Entry<'a> {
    pub raw_path: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    pub data: &'a mut dyn Read,
}

/// What `walk` tells the visitor to do next.
pub enum Visit {
    Continue,
    /// Stop reading this volume (the caller has seen enough).
    Stop,
}

/// Size and SHA-256 of a whole volume file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDigest {
    pub size: u64,
    pub sha256: String,
}

/// Errors from `walk`: the archive itself is broken, it names one entry twice in a way found
/// before any entry is read (a zip directory), or the visitor stopped with its own error.
pub enum WalkError<E> {
    Archive(io::Error),
    Duplicate(Vec<u8>),
    Visitor(E),
}

/// Walks every entry of the volume at `path`, then returns the volume's size and SHA-256 (an
/// empty SHA-256 unless `hash_volume`). The visitor must read an entry's data (or not: unread
/// data is skipped and still hashed).
pub fn walk<E>(
    path: &Path,
    format: VolumeFormat,
    hash_volume: bool,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<Visit, E>,
) -> Result<VolumeDigest, WalkError<E>> {
    match format {
        VolumeFormat::Tar => walk_tar(path, hash_volume, visit),
        VolumeFormat::Zip => walk_zip(path, hash_volume, visit),
    }
}

fn walk_tar<E>(
    path: &Path,
    hash_volume: bool,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<Visit, E>,
) -> Result<VolumeDigest, WalkError<E>> {
    let file = File::open(path).map_err(WalkError::Archive)?;
    // A background thread reads ahead (and hashes the volume) while entries are processed here.
    let reader = HashingFileReader::reading_ahead(file, hash_volume);
    let mut archive = tar::Archive::new(reader);
    // Raw: GNU long names and PAX headers come as entries of their own (refused as special
    // entries) instead of being read whole into memory before any check sees them. Ferry's
    // volumes never need them: member paths fit the 100-byte name field.
    let entries = archive.entries().map_err(WalkError::Archive)?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(WalkError::Archive)?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                EntryKind::Device
            }
            _ => EntryKind::Other,
        };
        let size = header.size().map_err(WalkError::Archive)?;
        let raw_path = entry.path_bytes().into_owned();
        match visit(Entry { raw_path, kind, size, data: &mut entry }).map_err(WalkError::Visitor)? {
            Visit::Continue => {}
            Visit::Stop => return Ok(VolumeDigest { size: 0, sha256: String::new() }),
        }
        // What the visitor left unread, the archive skips on its way to the next header, through
        // the same hashing reader. (Draining the entry instead read what a header declares: a
        // sparse entry declaring a petabyte of zeros kept `verify` busy for ever.)
    }
    let (sha256, size) = archive.into_inner().finish().map_err(WalkError::Archive)?;
    Ok(VolumeDigest { size, sha256: if hash_volume { hex::encode(sha256) } else { String::new() } })
}

fn walk_zip<E>(
    path: &Path,
    hash_volume: bool,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<Visit, E>,
) -> Result<VolumeDigest, WalkError<E>> {
    use super::zip_volume::{self, ZipProblem};
    let problem = |p: ZipProblem| match p {
        ZipProblem::Damaged(e) => WalkError::Archive(e),
        ZipProblem::Duplicate(name) => WalkError::Duplicate(name),
    };
    // The directory first (it is at the end), so a duplicate is refused before any data is read.
    let mut file = File::open(path).map_err(WalkError::Archive)?;
    let entries = zip_volume::entries(&mut file).map_err(problem)?;
    let digest = if hash_volume {
        let mut whole =
            BufReader::with_capacity(1 << 20, File::open(path).map_err(WalkError::Archive)?);
        let d = crate::store::hash_reader(&mut whole).map_err(WalkError::Archive)?;
        VolumeDigest { size: d.size, sha256: d.sha256.to_hex_lower() }
    } else {
        VolumeDigest { size: 0, sha256: String::new() }
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    for e in &entries {
        let kind = match e.unix_mode.map(|m| m & 0o170000) {
            _ if e.name.ends_with(b"/") => EntryKind::Directory,
            Some(0o120000) => EntryKind::Symlink,
            Some(0o040000) => EntryKind::Directory,
            Some(0o100000) | Some(0) | None => EntryKind::File,
            Some(_) => EntryKind::Device,
        };
        let mut data = zip_volume::open_entry(&mut reader, e).map_err(problem)?;
        match visit(Entry { raw_path: e.name.clone(), kind, size: e.size, data: &mut data })
            .map_err(WalkError::Visitor)?
        {
            Visit::Continue => {}
            Visit::Stop => break,
        }
    }
    Ok(digest)
}
