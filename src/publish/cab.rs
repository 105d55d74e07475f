//! The CAB that carries an installer to the clients, with its Authenticode signature.
//!
//! One folder, one file, stored uncompressed (installers are compressed already), in blocks of
//! 32 KiB. The header carries the 20-byte per-cabinet reserve Authenticode uses (its second
//! structure locates the signature), and the signature is appended after the cabinet, padded to
//! 8 bytes, as signtool and osslsigncode place it. Every size is known before the first byte is
//! written, the signature's length too (`authenticode::signed_len`), so the CAB is written in
//! one pass: the installer is read in blocks and never held in memory, and the Authenticode
//! digest and the whole file's SHA-1 and SHA-256 are computed on the way.
//!
//! Layout (little-endian): CFHEADER with reserve (60 bytes), CFFOLDER (8), CFFILE (16 + name +
//! NUL), then CFDATA blocks (8-byte header + data), then the signature.

use super::authenticode;
use super::signing::{PublishingIdentity, SigningError};
use crate::units::format_size;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The most a CFDATA block holds uncompressed.
pub const BLOCK_BYTES: usize = 32 * 1024;
/// The most one folder holds: 65535 blocks (CFFOLDER.cCFData is 16 bits) of 32 KiB.
pub const MAX_MEMBER_BYTES: u64 = 65_535 * BLOCK_BYTES as u64;
/// The most a cabinet may be, signature included (MS-CAB; readers hold it in a signed 32 bits).
pub const MAX_CABINET_BYTES: u64 = 0x7FFF_FFFF;
/// CFHEADER (36) + cbCFHeader, cbCFFolder, cbCFData (4) + the reserve (20).
pub const HEADER_BYTES: usize = 60;
const FOLDER_BYTES: usize = 8;
const FILE_FIXED_BYTES: usize = 16;
const DATA_HEADER_BYTES: usize = 8;
/// The per-cabinet reserve: two 16-bit lengths (no vendor data; a 16-byte signature locator),
/// the signature's offset and size, and 8 zero bytes.
const RESERVE_BYTES: u16 = 20;
const FLAG_RESERVE_PRESENT: u16 = 0x0004;
const ATTRIBUTE_ARCHIVE: u16 = 0x20;
const ATTRIBUTE_NAME_IS_UTF8: u16 = 0x80;
/// The longest file name a CFFILE holds (without its NUL).
pub const MAX_NAME_BYTES: usize = 255;

/// The header bytes the Authenticode digest covers; after them it covers everything from
/// `HEADER_BYTES` to the signature. Left out: the header checksum field (4..8), the set index
/// (34..36, zero here, which Windows hashes and osslsigncode does not), the reserve sizes and
/// the signature's place (36..56). 56..60 are zero filler (osslsigncode hashes them, Windows
/// hashes four zero bytes in their place: the same bytes).
pub const AUTHENTICODE_HEADER_RANGES: [Range<usize>; 3] = [0..4, 8..34, 56..60];

/// Why a CAB was not written. Nothing is left behind at the destination in any case.
#[derive(Debug, thiserror::Error)]
pub enum CabError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "{}: {size} bytes ({}) is more than a signed CAB can carry: at most {max} bytes ({}) with this name and certificate (a CAB folder holds 65535 blocks of 32 KiB and a cabinet at most 2 GiB); Windows Update cannot deliver it as one update file",
        path.display(), format_size(*size), format_size(*max)
    )]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{}: {reason}", path.display())]
    NotAFile { path: PathBuf, reason: String },
    #[error("{}: the name \"{name}\" cannot be a CAB member: {reason}", path.display())]
    Name { path: PathBuf, name: String, reason: String },
    #[error("{} changed while it was being read ({reason}); publish it again once nothing writes to it", path.display())]
    Changed { path: PathBuf, reason: String },
    #[error(transparent)]
    Signing(#[from] SigningError),
}

/// A signed CAB as the update document describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCab {
    pub path: PathBuf,
    /// The CAB's own file name (the destination's last component).
    pub file_name: String,
    /// The whole file, signature included.
    pub size: u64,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
}

/// Why a member does not fit (the pure part of `CabError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayoutError {
    TooLarge { max: u64 },
    Empty,
    Name(String),
}

/// Where everything goes in a CAB of one uncompressed member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    member_bytes: u64,
    name: Vec<u8>,
    name_is_utf8: bool,
    blocks: u16,
    /// The signature's DER, padded to a multiple of 8.
    signature_bytes: u32,
}

impl Layout {
    pub(crate) fn new(
        member_bytes: u64,
        name: &str,
        signature_bytes: u64,
    ) -> Result<Self, LayoutError> {
        check_name(name).map_err(LayoutError::Name)?;
        if member_bytes == 0 {
            return Err(LayoutError::Empty);
        }
        let max = max_member_bytes(name.len(), signature_bytes);
        if member_bytes > max {
            return Err(LayoutError::TooLarge { max });
        }
        Ok(Self {
            member_bytes,
            name: name.as_bytes().to_vec(),
            name_is_utf8: !name.is_ascii(),
            blocks: u16::try_from(member_bytes.div_ceil(BLOCK_BYTES as u64)).expect("checked"),
            signature_bytes: u32::try_from(signature_bytes).expect("checked"),
        })
    }

    /// Where the first CFDATA starts: after the header, the folder and the file entry.
    pub(crate) fn data_offset(&self) -> u64 {
        (HEADER_BYTES + FOLDER_BYTES + FILE_FIXED_BYTES + self.name.len() + 1) as u64
    }

    /// The cabinet without its signature, which is also where the signature starts.
    pub(crate) fn cabinet_bytes(&self) -> u64 {
        cabinet_bytes(self.name.len(), self.member_bytes)
    }

    /// The whole file.
    pub(crate) fn file_bytes(&self) -> u64 {
        self.cabinet_bytes() + u64::from(self.signature_bytes)
    }

    /// How many bytes of the member block `index` holds.
    pub(crate) fn block_len(&self, index: u16) -> usize {
        let start = u64::from(index) * BLOCK_BYTES as u64;
        (self.member_bytes - start).min(BLOCK_BYTES as u64) as usize
    }

    /// Everything before the first CFDATA: CFHEADER with its reserve, CFFOLDER, CFFILE.
    pub(crate) fn head(&self, date: u16, time: u16) -> Vec<u8> {
        let cabinet = u32::try_from(self.cabinet_bytes()).expect("checked in new");
        let mut h = Vec::with_capacity(self.data_offset() as usize);
        h.extend_from_slice(b"MSCF");
        put32(&mut h, 0); // reserved1: the header checksum, unused
        put32(&mut h, cabinet); // cbCabinet: the cabinet without the signature
        put32(&mut h, 0); // reserved2
        put32(&mut h, (HEADER_BYTES + FOLDER_BYTES) as u32); // coffFiles
        put32(&mut h, 0); // reserved3
        h.extend_from_slice(&[3, 1]); // versionMinor, versionMajor
        put16(&mut h, 1); // cFolders
        put16(&mut h, 1); // cFiles
        put16(&mut h, FLAG_RESERVE_PRESENT);
        put16(&mut h, 0); // setID
        put16(&mut h, 0); // iCabinet
        put16(&mut h, RESERVE_BYTES); // cbCFHeader
        h.extend_from_slice(&[0, 0]); // cbCFFolder, cbCFData: no per-folder or per-block reserve
        put16(&mut h, 0); // reserve: length of structure 1 (none)
        put16(&mut h, 16); // reserve: length of structure 2, the signature locator
        put32(&mut h, cabinet); // the signature's offset
        put32(&mut h, self.signature_bytes); // its size, padding included
        h.extend_from_slice(&[0; 8]);
        debug_assert_eq!(h.len(), HEADER_BYTES);
        put32(&mut h, u32::try_from(self.data_offset()).expect("small")); // coffCabStart
        put16(&mut h, self.blocks); // cCFData
        put16(&mut h, 0); // typeCompress: none
        put32(&mut h, u32::try_from(self.member_bytes).expect("checked in new")); // cbFile
        put32(&mut h, 0); // uoffFolderStart
        put16(&mut h, 0); // iFolder
        put16(&mut h, date);
        put16(&mut h, time);
        let utf8 = if self.name_is_utf8 { ATTRIBUTE_NAME_IS_UTF8 } else { 0 };
        put16(&mut h, ATTRIBUTE_ARCHIVE | utf8);
        h.extend_from_slice(&self.name);
        h.push(0);
        h
    }
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn cabinet_bytes(name_bytes: usize, member_bytes: u64) -> u64 {
    let fixed = (HEADER_BYTES + FOLDER_BYTES + FILE_FIXED_BYTES + name_bytes + 1) as u64;
    fixed + member_bytes.div_ceil(BLOCK_BYTES as u64) * DATA_HEADER_BYTES as u64 + member_bytes
}

/// The largest member a signed CAB holds with a name of `name_bytes` and a signature of
/// `signature_bytes`: at most `MAX_MEMBER_BYTES`, and the whole file at most
/// `MAX_CABINET_BYTES`.
pub(crate) fn max_member_bytes(name_bytes: usize, signature_bytes: u64) -> u64 {
    let fits = |m: u64| cabinet_bytes(name_bytes, m) + signature_bytes <= MAX_CABINET_BYTES;
    let (mut low, mut high) = (0, MAX_MEMBER_BYTES);
    if fits(high) {
        return high;
    }
    // fits(low) holds and fits(high) does not; the size grows with the member.
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if fits(mid) { low = mid } else { high = mid }
    }
    low
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "it is {} bytes long; a CAB holds names of at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '\0' | '/' | '\\') || c.is_control()) {
        return Err(format!("it contains {c:?}"));
    }
    Ok(())
}

/// The CFDATA checksum (MS-CAB): the data's little-endian 32-bit words XORed, the 1 to 3 bytes
/// left over taken first byte highest, then the block's sizes (`cbData | cbUncomp << 16`, one
/// word) XORed in.
pub(crate) fn block_checksum(data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(4);
    let mut sum = 0u32;
    for word in &mut words {
        sum ^= u32::from_le_bytes(word.try_into().expect("4 bytes"));
    }
    let tail = words.remainder().iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let len = data.len() as u32;
    sum ^ tail ^ (len | len << 16)
}

/// A block's CFDATA header: checksum, stored size, uncompressed size.
fn block_header(data: &[u8]) -> [u8; DATA_HEADER_BYTES] {
    let len = u16::try_from(data.len()).expect("a block is at most 32 KiB");
    let mut header = [0; DATA_HEADER_BYTES];
    header[..4].copy_from_slice(&block_checksum(data).to_le_bytes());
    header[4..6].copy_from_slice(&len.to_le_bytes());
    header[6..8].copy_from_slice(&len.to_le_bytes());
    header
}

/// MS-DOS date and time (UTC), clamped to what they can say (1980 to 2107).
pub(crate) fn dos_date_time(time: SystemTime) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::<chrono::Utc>::from(time);
    match t.year() {
        ..1980 => (1 << 5 | 1, 0),
        2108.. => (127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29),
        year => (
            ((year - 1980) as u16) << 9 | (t.month() as u16) << 5 | t.day() as u16,
            (t.hour() as u16) << 11 | (t.minute() as u16) << 5 | (t.second() as u16 / 2),
        ),
    }
}

/// The largest installer a CAB signed by `identity` holds as `member_name` (a little under
/// 2 GiB), for callers that refuse an installer before they do anything else.
pub fn max_installer_bytes(
    member_name: &str,
    identity: &PublishingIdentity,
) -> Result<u64, CabError> {
    let signature_bytes = authenticode::signed_len(identity)?.next_multiple_of(8) as u64;
    Ok(max_member_bytes(member_name.len(), signature_bytes))
}

/// Writes `installer` as the one member of a CAB named `member_name`, signed by `identity`, to
/// `destination` (written beside it under a temporary name and renamed into place, replacing a
/// file of that name). The member's date is the installer's modification time.
///
/// Refused before anything is written: an installer the CAB format cannot hold (see
/// `max_member_bytes`), an empty one, a name a CAB cannot hold.
pub fn write_signed_cab(
    installer: &Path,
    member_name: &str,
    destination: &Path,
    identity: &PublishingIdentity,
) -> Result<SignedCab, CabError> {
    let source = open_installer(installer)?;
    write_signed_cab_from(&source, installer, member_name, destination, identity)
}

/// Opens an installer to sign: a regular file (a FIFO or device is refused at once, never
/// waited on). Reading what it says and signing it from this one handle signs what was read,
/// even if the path is replaced meanwhile.
pub fn open_installer(installer: &Path) -> Result<File, CabError> {
    let read_error = |source| CabError::Read { path: installer.to_path_buf(), source };
    let source = match super::open_regular(installer) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(CabError::NotAFile {
                path: installer.to_path_buf(),
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(read_error(e)),
    };
    if !source.metadata().map_err(read_error)?.is_file() {
        return Err(CabError::NotAFile {
            path: installer.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    Ok(source)
}

/// [`write_signed_cab`] from an installer opened by [`open_installer`] (`installer` names it),
/// read from its start.
pub fn write_signed_cab_from(
    mut source: &File,
    installer: &Path,
    member_name: &str,
    destination: &Path,
    identity: &PublishingIdentity,
) -> Result<SignedCab, CabError> {
    let read_error = |source| CabError::Read { path: installer.to_path_buf(), source };
    let write_error = |source| CabError::Write { path: destination.to_path_buf(), source };
    source.seek(std::io::SeekFrom::Start(0)).map_err(read_error)?;
    let metadata = source.metadata().map_err(read_error)?;
    let file_name = destination
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CabError::NotAFile {
            path: destination.to_path_buf(),
            reason: "the CAB needs a UTF-8 file name".into(),
        })?
        .to_string();
    let signature_bytes = authenticode::signed_len(identity)?.next_multiple_of(8) as u64;
    let layout =
        Layout::new(metadata.len(), member_name, signature_bytes).map_err(|e| match e {
            LayoutError::TooLarge { max } => {
                CabError::TooLarge { path: installer.to_path_buf(), size: metadata.len(), max }
            }
            LayoutError::Empty => CabError::NotAFile {
                path: installer.to_path_buf(),
                reason: "the installer is empty".into(),
            },
            LayoutError::Name(reason) => {
                CabError::Name { path: installer.to_path_buf(), name: member_name.into(), reason }
            }
        })?;
    let (date, time) = dos_date_time(metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH));
    let directory = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut partial = tempfile::Builder::new()
        .prefix(".ferry-cab-")
        .suffix(".partial")
        .tempfile_in(directory)
        .map_err(write_error)?;
    let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, partial.as_file_mut()));
    let digest = write_cabinet(&layout, (date, time), (source, installer), destination, &mut out)?;
    let signature = authenticode::sign(identity, &digest)?;
    let padded = signature.len().next_multiple_of(8);
    if padded as u64 != signature_bytes {
        return Err(CabError::Signing(SigningError::Sign {
            subject: identity.subject(),
            reason: format!("the signature is {padded} bytes, {signature_bytes} were reserved"),
        }));
    }
    out.write_all(&signature).map_err(write_error)?;
    out.write_all(&vec![0; padded - signature.len()]).map_err(write_error)?;
    let (writer, size, sha1, sha256) = out.finish();
    writer
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?
        .sync_all()
        .map_err(write_error)?;
    debug_assert_eq!(size, layout.file_bytes());
    // A temporary file is private (0600); a CAB is for every client to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        partial.as_file().set_permissions(readable).map_err(write_error)?;
    }
    partial.persist(destination).map_err(|e| write_error(e.error))?;
    Ok(SignedCab { path: destination.to_path_buf(), file_name, size, sha1, sha256 })
}

/// Writes the cabinet up to its signature, the installer read block by block, and returns its
/// Authenticode digest.
fn write_cabinet<W: Write>(
    layout: &Layout,
    (date, time): (u16, u16),
    (mut source, installer): (&File, &Path),
    destination: &Path,
    out: &mut Hashing<W>,
) -> Result<[u8; 32], CabError> {
    let write_error = |source| CabError::Write { path: destination.to_path_buf(), source };
    let changed =
        |reason: &str| CabError::Changed { path: installer.to_path_buf(), reason: reason.into() };
    let head = layout.head(date, time);
    let mut authenticode = Sha256::new();
    for range in AUTHENTICODE_HEADER_RANGES {
        authenticode.update(&head[range]);
    }
    authenticode.update(&head[HEADER_BYTES..]);
    out.write_all(&head).map_err(write_error)?;
    let mut block = vec![0u8; BLOCK_BYTES];
    for index in 0..layout.blocks {
        let data = &mut block[..layout.block_len(index)];
        source.read_exact(data).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => changed("it became shorter"),
            _ => CabError::Read { path: installer.to_path_buf(), source: e },
        })?;
        let header = block_header(data);
        authenticode.update(header);
        authenticode.update(&*data);
        out.write_all(&header).map_err(write_error)?;
        out.write_all(data).map_err(write_error)?;
    }
    let extra = source
        .read(&mut block[..1])
        .map_err(|e| CabError::Read { path: installer.to_path_buf(), source: e })?;
    if extra != 0 {
        return Err(changed("it became longer"));
    }
    Ok(authenticode.finalize().into())
}

/// A writer that counts and hashes (SHA-1, SHA-256) what goes through it.
struct Hashing<W> {
    inner: W,
    bytes: u64,
    sha1: Sha1,
    sha256: Sha256,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self { inner, bytes: 0, sha1: Sha1::new(), sha256: Sha256::new() }
    }

    fn finish(self) -> (W, u64, [u8; 20], [u8; 32]) {
        (self.inner, self.bytes, self.sha1.finalize().into(), self.sha256.finalize().into())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha1.update(&buf[..n]);
        self.sha256.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The Authenticode digest of an unsigned cabinet held in memory (`write_signed_cab` computes
/// the same while it writes): SHA-256 over `AUTHENTICODE_HEADER_RANGES`, then everything after
/// the header.
pub fn authenticode_digest(cabinet: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    for range in AUTHENTICODE_HEADER_RANGES {
        digest.update(&cabinet[range]);
    }
    digest.update(&cabinet[HEADER_BYTES..]);
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Duration;

    #[test]
    fn block_checksums_are_ms_cab_checksums() {
        // (data, checksum): words little-endian, the tail first byte highest, then the sizes.
        let cases: [(&[u8], u32); 5] = [
            (b"", 0),
            (b"\x01", 0x0001_0000),
            (b"\x01\x02\x03\x04", 0x0407_0205),
            (b"\x01\x02\x03\x04\x05\x06\x07", 0x0401_0401),
            (b"hello, cabinet", 0x612b_4e1c),
        ];
        for (data, expected) in cases {
            assert_eq!(block_checksum(data), expected, "{data:?}");
        }
        let full: Vec<u8> = (0..=255u8).cycle().take(BLOCK_BYTES).collect();
        assert_eq!(block_checksum(&full), 0x8000_8000);
    }

    #[test]
    fn the_head_is_laid_out_as_signed_cabs_are() {
        let layout = Layout::new(5, "a.msi", 1024).unwrap();
        let expected = concat!(
            "4d534346",
            "00000000",
            "67000000",
            "00000000",
            "44000000",
            "00000000", // sizes
            "0301",
            "0100",
            "0100",
            "0400",
            "0000",
            "0000", // version, 1 folder, 1 file, reserve
            "1400",
            "00",
            "00", // 20 bytes of cabinet reserve, none per folder or block
            "0000",
            "1000",
            "67000000",
            "00040000",
            "0000000000000000", // signature at 103, 1024
            "5a000000",
            "0100",
            "0000", // CFFOLDER: data at 90, one block, stored
            "05000000",
            "00000000",
            "0000",
            "855d",
            "d541",
            "2000",
            "612e6d736900", // CFFILE
        );
        assert_eq!(hex::encode(layout.head(0x5d85, 0x41d5)), expected);
        assert_eq!(
            (layout.data_offset(), layout.cabinet_bytes(), layout.file_bytes()),
            (90, 103, 1127)
        );
    }

    #[test]
    fn a_non_ascii_name_is_marked_utf8() {
        let layout = Layout::new(1, "été.msi", 8).unwrap();
        let head = layout.head(0, 0);
        assert_eq!(&head[HEADER_BYTES + FOLDER_BYTES + 14..][..2], &0xa0u16.to_le_bytes());
    }

    #[test]
    fn blocks_are_32_kib_but_the_last() {
        let layout = Layout::new(2 * BLOCK_BYTES as u64 + 3, "x", 8).unwrap();
        assert_eq!(layout.blocks, 3);
        assert_eq!(
            (layout.block_len(0), layout.block_len(1), layout.block_len(2)),
            (BLOCK_BYTES, BLOCK_BYTES, 3)
        );
    }

    #[test]
    fn what_a_cab_cannot_hold_is_refused() {
        // 90 bytes of head, 8 per block, the member and a 2048-byte signature in 2^31 - 1.
        let max = max_member_bytes(5, 2048);
        assert_eq!(max, 2_146_957_349);
        assert!(Layout::new(max, "a.msi", 2048).is_ok());
        assert_eq!(Layout::new(max + 1, "a.msi", 2048), Err(LayoutError::TooLarge { max }));
        assert_eq!(Layout::new(4 << 30, "a.msi", 2048), Err(LayoutError::TooLarge { max }));
        assert_eq!(Layout::new(0, "a.msi", 2048), Err(LayoutError::Empty));
        for name in ["", "a/b.msi", "a\\b.msi", "a\0b", &"x".repeat(256)] {
            assert!(matches!(Layout::new(1, name, 8), Err(LayoutError::Name(_))), "{name:?}");
        }
        assert!(Layout::new(1, &"x".repeat(255), 8).is_ok());
    }

    #[test]
    fn the_digest_leaves_out_the_checksum_the_set_index_and_the_signature_locator() {
        let bytes: Vec<u8> = (0..100).collect();
        // SHA-256 of bytes 0..4, 8..34, 56..60 and 60..100.
        let expected = "a7d0a69994b3654c961f395fe2b3b29b6e9f6c60e7352f6346f2b709e3de7569";
        assert_eq!(hex::encode(authenticode_digest(&bytes)), expected);
        for (offset, covered) in [
            (0, true),
            (4, false),
            (7, false),
            (8, true),
            (33, true),
            (34, false),
            (35, false),
            (36, false),
            (55, false),
            (56, true),
            (59, true),
            (60, true),
            (99, true),
        ] {
            let mut changed = bytes.clone();
            changed[offset] ^= 1;
            assert_eq!(
                authenticode_digest(&changed) != authenticode_digest(&bytes),
                covered,
                "byte {offset}"
            );
        }
    }

    #[test]
    fn dos_times_are_clamped_to_what_they_can_say() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(dos_date_time(at(1_796_458_482)), (0x5d85, 0x41d5)); // 2026-12-05 08:14:42
        assert_eq!(dos_date_time(at(0)), (0x21, 0)); // 1980-01-01
        assert_eq!(dos_date_time(at(5_000_000_000)), (0xff9f, 0xbf7d)); // 2107-12-31 23:59:58
    }

    #[test]
    fn the_cab_crate_reads_the_layout_back() {
        let member: Vec<u8> = (0..BLOCK_BYTES as u32 + 1000).map(|i| (i * 7 % 251) as u8).collect();
        let layout = Layout::new(member.len() as u64, "setup.msi", 16).unwrap();
        let mut cab = layout.head(0x5d85, 0x41d5);
        for (index, block) in member.chunks(BLOCK_BYTES).enumerate() {
            assert_eq!(block.len(), layout.block_len(index as u16));
            cab.extend_from_slice(&block_header(block));
            cab.extend_from_slice(block);
        }
        assert_eq!(cab.len() as u64, layout.cabinet_bytes());
        cab.extend_from_slice(&[0; 16]);
        let mut cabinet = cab::Cabinet::new(Cursor::new(cab)).unwrap();
        let entry = cabinet.get_file_entry("setup.msi").unwrap();
        assert_eq!(entry.uncompressed_size() as usize, member.len());
        let mut back = Vec::new();
        cabinet.read_file("setup.msi").unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, member, "and every block's checksum held");
    }
}
