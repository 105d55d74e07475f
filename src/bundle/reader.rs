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

/// Errors from `walk`: the archive itself is broken, or the visitor stopped with its own error.
pub enum WalkError<E> {
    Archive(io::Error),
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
        VolumeFormat::Zip => walk_zip(path, visit),
    }
}

fn walk_tar<E>(path: &Path, hash_volume: bool, visit: &mut dyn FnMut(Entry<'_>) -> Result<Visit, E>) -> Result<VolumeDigest, WalkError<E>> {
    let file = File::open(path).map_err(WalkError::Archive)?;
    // A background thread reads ahead (and hashes the volume) while entries are processed here.
    let reader = HashingFileReader::reading_ahead(file, hash_volume);
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(WalkError::Archive)?;
    for entry in entries {
        let mut entry = entry.map_err(WalkError::Archive)?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => EntryKind::Device,
            _ => EntryKind::Other,
        };
        let size = header.size().map_err(WalkError::Archive)?;
        let raw_path = entry.path_bytes().into_owned();
        match visit(Entry { raw_path, kind, size, data: &mut entry }).map_err(WalkError::Visitor)? {
            Visit::Continue => {}
            Visit::Stop => return Ok(VolumeDigest { size: 0, sha256: String::new() }),
        }
        // Whatever the visitor left unread is read (and hashed) here.
        io::copy(&mut entry, &mut io::sink()).map_err(WalkError::Archive)?;
    }
    let (sha256, size) = archive.into_inner().finish().map_err(WalkError::Archive)?;
    Ok(VolumeDigest { size, sha256: if hash_volume { hex::encode(sha256) } else { String::new() } })
}

fn walk_zip<E>(path: &Path, visit: &mut dyn FnMut(Entry<'_>) -> Result<Visit, E>) -> Result<VolumeDigest, WalkError<E>> {
    // Zip keeps its directory at the end: hash the whole file first, then read entries.
    let mut file = File::open(path).map_err(WalkError::Archive)?;
    let digest = crate::store::hash_reader(&mut BufReader::with_capacity(1 << 20, &mut file)).map_err(WalkError::Archive)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path).map_err(WalkError::Archive)?))
        .map_err(|e| WalkError::Archive(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| WalkError::Archive(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
        let kind = if entry.is_dir() {
            EntryKind::Directory
        } else if entry.is_symlink() {
            EntryKind::Symlink
        } else if entry.unix_mode().is_some_and(|m| m & 0o170000 != 0o100000 && m & 0o170000 != 0) {
            EntryKind::Device
        } else {
            EntryKind::File
        };
        let raw_path = entry.name_raw().to_vec();
        let size = entry.size();
        match visit(Entry { raw_path, kind, size, data: &mut entry }).map_err(WalkError::Visitor)? {
            Visit::Continue => {}
            Visit::Stop => break,
        }
    }
    Ok(VolumeDigest { size: digest.size, sha256: digest.sha256.to_hex_lower() })
}
