//! Writing a bundle's volumes: standalone tar (or zip) archives of whole members, each under the
//! volume size, members larger than a volume split into chunks; every byte hashed on the way.

use super::manifest::{ChunkEntry, MemberEntry, MemberKind, VolumeEntry};
use super::pipe::HashingFileWriter;
use super::safe_path::SafePath;
use crate::store::{FileHasher, VerifiedFile};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeFormat {
    Tar,
    Zip,
}

impl VolumeFormat {
    pub fn extension(self) -> &'static str {
        match self {
            VolumeFormat::Tar => "tar",
            VolumeFormat::Zip => "zip",
        }
    }

    pub fn of_file(name: &str) -> Option<VolumeFormat> {
        if name.ends_with(".tar") {
            Some(VolumeFormat::Tar)
        } else if name.ends_with(".zip") {
            Some(VolumeFormat::Zip)
        } else {
            None
        }
    }
}

/// Below this a volume cannot hold a useful chunk.
pub const MIN_VOLUME_SIZE: u64 = 1 << 20;
const TAR_BLOCK: u64 = 512;
const TAR_TRAILER: u64 = 2 * TAR_BLOCK;
/// Zip bookkeeping per entry beyond the name (local header, data descriptor, central directory
/// entry, ZIP64 extras), and for the end records: generous upper bounds.
const ZIP_ENTRY_OVERHEAD: u64 = 30 + 24 + 46 + 64;
const ZIP_TRAILER: u64 = 22 + 56 + 20 + 64;
const COPY_BUFFER: usize = 1 << 20;

/// How every zip entry is stored (no compression: payloads are compressed already).
fn stored_entry(size: u64) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(size >= u32::MAX as u64)
        .unix_permissions(0o644)
}

/// Writes `size` zero bytes (a dry run's stand-in for content; the zip writer needs the bytes
/// to count its records as the real run does).
fn copy_zeros(w: &mut dyn Write, size: u64) -> io::Result<()> {
    let zeros = [0u8; 64 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

pub fn volume_name(index: u32, format: VolumeFormat) -> String {
    format!("vol-{index:04}.{}", format.extension())
}

#[allow(clippy::large_enum_variant)] // one per writer, never moved in a loop
enum Sink {
    Tar(HashingFileWriter),
    Zip(zip::ZipWriter<BufWriter<File>>),
    /// A dry run: tar entries are only counted; zip entries go through the zip writer into a
    /// counter, so sizes are the real writer's to the byte.
    CountTar(u64),
    CountZip(zip::ZipWriter<CountingSink>),
}

/// A seekable writer that keeps no bytes, only the length a file would have.
#[derive(Default)]
pub struct CountingSink {
    position: u64,
    length: u64,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.position += buf.len() as u64;
        self.length = self.length.max(self.position);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Seek for CountingSink {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.length.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

struct OpenVolume {
    index: u32,
    path: PathBuf,
    used: u64,
    sink: Sink,
}

/// A member's content as it passes into the volumes: its SHA-256 (the manifest's, and the one a
/// payload is checked against), and its SHA-1 when asked for (else zeros).
pub struct WrittenMember {
    pub entry: MemberEntry,
    pub digests: VerifiedFile,
}

pub struct VolumeWriter {
    /// None: a dry run, which lays the volumes out without writing or reading anything.
    dir: Option<PathBuf>,
    format: VolumeFormat,
    limit: u64,
    mtime: u64,
    current: Option<OpenVolume>,
    volumes: Vec<VolumeEntry>,
}

impl VolumeWriter {
    pub fn new(
        dir: &Path,
        format: VolumeFormat,
        limit: u64,
        mtime: u64,
    ) -> io::Result<VolumeWriter> {
        if limit < MIN_VOLUME_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("volume size {limit} is below the minimum of {MIN_VOLUME_SIZE} bytes"),
            ));
        }
        Ok(VolumeWriter {
            dir: Some(dir.to_path_buf()),
            format,
            limit,
            mtime,
            current: None,
            volumes: Vec::new(),
        })
    }

    /// A writer that computes what `new` would write (volumes, their sizes, where each member
    /// goes) without writing: sources are never read and digests stay empty.
    pub fn dry_run(format: VolumeFormat, limit: u64) -> io::Result<VolumeWriter> {
        let mut w = VolumeWriter::new(Path::new(""), format, limit, 0)?;
        w.dir = None;
        Ok(w)
    }

    fn entry_cost(&self, path: &str, size: u64) -> u64 {
        match self.format {
            VolumeFormat::Tar => TAR_BLOCK + size.div_ceil(TAR_BLOCK) * TAR_BLOCK,
            VolumeFormat::Zip => size + 2 * path.len() as u64 + ZIP_ENTRY_OVERHEAD,
        }
    }

    fn trailer(&self) -> u64 {
        match self.format {
            VolumeFormat::Tar => TAR_TRAILER,
            VolumeFormat::Zip => ZIP_TRAILER,
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dir.is_none()
    }

    /// Largest member (or chunk) an empty volume can hold.
    fn chunk_capacity(&self, path: &str) -> u64 {
        match self.format {
            VolumeFormat::Tar => ((self.limit - TAR_TRAILER - TAR_BLOCK) / TAR_BLOCK) * TAR_BLOCK,
            VolumeFormat::Zip => {
                self.limit - ZIP_TRAILER - 2 * path.len() as u64 - ZIP_ENTRY_OVERHEAD
            }
        }
    }

    fn open_volume(&mut self) -> io::Result<()> {
        self.close_volume()?;
        let index = self.volumes.len() as u32 + 1;
        let path =
            self.dir.as_ref().map(|d| d.join(volume_name(index, self.format))).unwrap_or_default();
        let sink = match (&self.dir, self.format) {
            (None, VolumeFormat::Tar) => Sink::CountTar(0),
            (None, VolumeFormat::Zip) => {
                Sink::CountZip(zip::ZipWriter::new(CountingSink::default()))
            }
            (Some(_), VolumeFormat::Tar) => Sink::Tar(HashingFileWriter::new(File::create(&path)?)),
            (Some(_), VolumeFormat::Zip) => Sink::Zip(zip::ZipWriter::new(
                BufWriter::with_capacity(COPY_BUFFER, File::create(&path)?),
            )),
        };
        self.current = Some(OpenVolume { index, path, used: 0, sink });
        Ok(())
    }

    fn close_volume(&mut self) -> io::Result<()> {
        let Some(v) = self.current.take() else { return Ok(()) };
        let (size, sha256) = match v.sink {
            Sink::Tar(mut w) => {
                w.write_all(&[0u8; TAR_TRAILER as usize])?;
                let (file, sha256, size) = w.finish()?;
                file.sync_all()?;
                (size, hex::encode(sha256))
            }
            Sink::Zip(z) => {
                let file = z.finish().map_err(io::Error::other)?;
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                // Zip needs seeking to write, so its volume hash is a second read.
                let mut f = File::open(&v.path)?;
                let d = crate::store::hash_reader(&mut f)?;
                (d.size, d.sha256.to_hex_lower())
            }
            Sink::CountTar(used) => (used + TAR_TRAILER, String::new()),
            Sink::CountZip(z) => (z.finish().map_err(io::Error::other)?.length, String::new()),
        };
        self.volumes.push(VolumeEntry { name: volume_name(v.index, self.format), size, sha256 });
        Ok(())
    }

    /// Makes room for an entry of `cost`: a new volume when the open one cannot hold it.
    fn reserve(&mut self, cost: u64) -> io::Result<u32> {
        let fits =
            self.current.as_ref().is_some_and(|v| v.used + cost + self.trailer() <= self.limit);
        if !fits {
            self.open_volume()?;
        }
        let v = self.current.as_mut().expect("a volume is open");
        v.used += cost;
        Ok(v.index)
    }

    /// Starts a new volume (unless the open one is still empty) for a chunk that fills one.
    fn reserve_fresh(&mut self, cost: u64) -> io::Result<u32> {
        if self.current.as_ref().is_none_or(|v| v.used > 0) {
            self.open_volume()?;
        }
        let v = self.current.as_mut().expect("a volume is open");
        v.used = cost;
        Ok(v.index)
    }

    /// Writes one archive entry of exactly `size` bytes from `source`; returns its SHA-256.
    /// With `chunk`, also hashes the entry alone (a chunk's own SHA-256); otherwise the member
    /// hasher's SHA-256 is the entry's.
    fn write_entry(
        &mut self,
        path: &str,
        size: u64,
        source: &mut dyn Read,
        member_hasher: &mut FileHasher,
        chunk: bool,
    ) -> io::Result<Option<String>> {
        let mtime = self.mtime;
        let v = self.current.as_mut().expect("reserve opened a volume");
        let mut entry_hash = chunk.then(Sha256::new);
        let mut seen = |bytes: &[u8]| {
            if let Some(h) = entry_hash.as_mut() {
                h.update(bytes);
            }
            member_hasher.update(bytes);
        };
        let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{path}: {e}"));
        match &mut v.sink {
            Sink::CountTar(used) => *used += TAR_BLOCK + size.div_ceil(TAR_BLOCK) * TAR_BLOCK,
            Sink::CountZip(z) => {
                z.start_file(path, stored_entry(size)).map_err(io::Error::other)?;
                copy_zeros(z, size)?;
            }
            Sink::Tar(w) => {
                let mut header = tar::Header::new_gnu();
                header.set_path(path)?;
                header.set_size(size);
                header.set_mode(0o644);
                header.set_mtime(mtime);
                header.set_uid(0);
                header.set_gid(0);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_cksum();
                w.write_all(header.as_bytes())?;
                w.write_from(source, size, &mut seen).map_err(with_path)?;
                let pad = (size.div_ceil(TAR_BLOCK) * TAR_BLOCK - size) as usize;
                w.write_all(&[0u8; TAR_BLOCK as usize][..pad])?;
            }
            Sink::Zip(z) => {
                z.start_file(path, stored_entry(size)).map_err(io::Error::other)?;
                copy_exactly(source, size, z, &mut seen).map_err(with_path)?;
            }
        }
        Ok(entry_hash.map(|h| hex::encode(h.finalize())))
    }

    /// Adds a member of `size` bytes read from `source`, chunked when no volume can hold it. The
    /// digests are the member's SHA-256 (the manifest's, and a payload's to check against its
    /// metadata) and its size.
    pub fn add_member(
        &mut self,
        path: &SafePath,
        kind: MemberKind,
        size: u64,
        source: &mut dyn Read,
    ) -> io::Result<WrittenMember> {
        self.add_hashed(path, kind, size, source, FileHasher::sha256_only())
    }

    /// [`add_member`](Self::add_member) that also computes the SHA-1, for a payload whose metadata
    /// has no SHA-256 to check it against.
    pub fn add_member_with_sha1(
        &mut self,
        path: &SafePath,
        kind: MemberKind,
        size: u64,
        source: &mut dyn Read,
    ) -> io::Result<WrittenMember> {
        self.add_hashed(path, kind, size, source, FileHasher::default())
    }

    fn add_hashed(
        &mut self,
        path: &SafePath,
        kind: MemberKind,
        size: u64,
        source: &mut dyn Read,
        mut hasher: FileHasher,
    ) -> io::Result<WrittenMember> {
        let capacity = self.chunk_capacity(path.as_str());
        let mut chunks = Vec::new();
        let mut volume = None;
        if size <= capacity {
            volume = Some(self.reserve(self.entry_cost(path.as_str(), size))?);
            self.write_entry(path.as_str(), size, source, &mut hasher, false)?;
        } else {
            let mut left = size;
            while left > 0 {
                let chunk_path = SafePath::new(&format!("{}.part{:04}", path, chunks.len() + 1))
                    .map_err(io::Error::other)?;
                let chunk_size = left.min(self.chunk_capacity(chunk_path.as_str()));
                let volume =
                    self.reserve_fresh(self.entry_cost(chunk_path.as_str(), chunk_size))?;
                let sha256 = self
                    .write_entry(chunk_path.as_str(), chunk_size, source, &mut hasher, true)?
                    .expect("chunks are hashed alone");
                chunks.push(ChunkEntry { path: chunk_path, size: chunk_size, sha256, volume });
                left -= chunk_size;
            }
        }
        let digests = hasher.finish();
        let entry = MemberEntry {
            path: path.clone(),
            kind,
            size,
            sha256: digests.sha256.to_hex_lower(),
            volume,
            sha1: None,
            uncompressed_size: None,
            documents: None,
            chunks,
        };
        Ok(WrittenMember { entry, digests })
    }

    /// Closes the last volume; returns every volume with its size and SHA-256.
    pub fn finish(mut self) -> io::Result<Vec<VolumeEntry>> {
        self.close_volume()?;
        Ok(self.volumes)
    }
}

/// Copies exactly `len` bytes from `source` to `sink`, showing each piece to `seen` on the way.
fn copy_exactly(
    source: &mut dyn Read,
    len: u64,
    sink: &mut dyn Write,
    seen: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUFFER.min(len.max(1) as usize)];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match source.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the source ended {left} bytes early"),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        seen(&buf[..n]);
        sink.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Sha1;

    #[test]
    fn members_volumes_and_chunks_carry_the_digests_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let small: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let large: Vec<u8> =
            (0..(2 * MIN_VOLUME_SIZE as u32 + 777)).map(|i| (i * 7 % 253) as u8).collect();
        let mut w = VolumeWriter::new(dir.path(), VolumeFormat::Tar, MIN_VOLUME_SIZE, 0).unwrap();
        let path = |p: &str| SafePath::new(p).unwrap();
        let a = w
            .add_member(
                &path("content/a"),
                MemberKind::Payload,
                small.len() as u64,
                &mut &small[..],
            )
            .unwrap();
        let b = w
            .add_member_with_sha1(
                &path("content/b"),
                MemberKind::Payload,
                large.len() as u64,
                &mut &large[..],
            )
            .unwrap();
        let volumes = w.finish().unwrap();

        assert_eq!(a.digests.sha256.0[..], Sha256::digest(&small)[..]);
        assert_eq!(a.entry.sha256, hex::encode(Sha256::digest(&small)));
        assert_eq!(a.digests.sha1.0, [0; 20], "SHA-1 only when asked for");
        assert_eq!(b.digests.sha1.0[..], Sha1::digest(&large)[..]);
        assert_eq!(b.entry.sha256, hex::encode(Sha256::digest(&large)));
        assert!(b.entry.chunks.len() > 1);
        let mut offset = 0;
        for c in &b.entry.chunks {
            let bytes = &large[offset..offset + c.size as usize];
            assert_eq!(c.sha256, hex::encode(Sha256::digest(bytes)));
            offset += c.size as usize;
        }
        assert_eq!(offset, large.len());
        for v in &volumes {
            let bytes = std::fs::read(dir.path().join(&v.name)).unwrap();
            assert_eq!(
                (v.size, v.sha256.as_str()),
                (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)).as_str())
            );
        }
    }

    #[test]
    fn a_source_shorter_than_declared_is_an_error_naming_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = VolumeWriter::new(dir.path(), VolumeFormat::Tar, MIN_VOLUME_SIZE, 0).unwrap();
        let err = w
            .add_member(
                &SafePath::new("content/short").unwrap(),
                MemberKind::Payload,
                100,
                &mut &[1u8; 60][..],
            )
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("content/short") && err.to_string().contains("40 bytes early"),
            "{err}"
        );
    }
}
