//! Checking a bundle: signature and trust, expiry, then every volume and every member, read in
//! place. `verify` collects every problem; `import` stops at the first and stages what it read.

use super::error::{BundleError, Problem};
use super::manifest::{
    MANIFEST_FILE, Manifest, ManifestJsonError, MemberEntry, MemberKind, SIGNATURE_FILE,
    VolumeEntry,
};
use super::minisign::{KeyId, PublicKey, Signature, SignatureError};
use super::reader::{self, Entry, EntryKind, Visit, WalkError};
use super::safe_path::SafePath;
use super::volumes::{VolumeFormat, volume_name};
use crate::store::{FileHasher, VerifiedFile};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The manifest of a bigger bundle would not be a bundle Ferry wrote.
pub const MAX_MANIFEST_BYTES: u64 = 512 << 20;
/// Metadata compresses about tenfold; a declared ratio far beyond that is a bomb.
const MAX_METADATA_RATIO: u64 = 1000;

/// A bundle whose manifest was read and whose signature checked out.
pub struct OpenedBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub signer: KeyId,
    pub format: VolumeFormat,
}

fn bundle_dir(path: &Path) -> PathBuf {
    if path.file_name().is_some_and(|n| n == MANIFEST_FILE) {
        path.parent().unwrap_or(path).to_path_buf()
    } else {
        path.to_path_buf()
    }
}

/// The bytes of one of a bundle's own files: a regular file of at most `limit` bytes. A link to
/// a device or a FIFO (possible on any medium) would otherwise be read for ever or block.
fn read_bundle_file(path: &Path, limit: u64) -> Result<Vec<u8>, BundleFileProblem> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|_| BundleFileProblem::Missing)?;
    if !meta.is_file() {
        return Err(BundleFileProblem::NotAFile);
    }
    if meta.len() > limit {
        return Err(BundleFileProblem::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    let file = std::fs::File::open(path).map_err(BundleFileProblem::Io)?;
    file.take(limit + 1).read_to_end(&mut bytes).map_err(BundleFileProblem::Io)?;
    if bytes.len() as u64 > limit {
        return Err(BundleFileProblem::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

enum BundleFileProblem {
    Missing,
    NotAFile,
    TooLarge(u64),
    Io(std::io::Error),
}

/// `manifest.json` of the bundle at `path` (its directory, or the manifest itself): the
/// directory and the bytes.
fn read_manifest_bytes(path: &Path) -> Result<(PathBuf, Vec<u8>), BundleError> {
    let dir = bundle_dir(path);
    let manifest_path = dir.join(MANIFEST_FILE);
    match read_bundle_file(&manifest_path, MAX_MANIFEST_BYTES) {
        Ok(bytes) => Ok((dir, bytes)),
        Err(BundleFileProblem::Missing) => Err(Problem::integrity(format!(
            "{}: no {MANIFEST_FILE}: is this a bundle directory?",
            dir.display()
        ))
        .into()),
        Err(BundleFileProblem::NotAFile) => Err(Problem::unsafe_entry(format!(
            "{}: not a regular file (a device, a FIFO or a link to one)",
            manifest_path.display()
        ))
        .into()),
        Err(BundleFileProblem::TooLarge(n)) => Err(Problem::unsafe_entry(format!(
            "{}: {n} bytes, larger than any manifest Ferry writes",
            manifest_path.display()
        ))
        .into()),
        Err(BundleFileProblem::Io(e)) => Err(BundleError::io(&manifest_path, e)),
    }
}

/// Reads `manifest.json` without checking anything (for `inspect`).
pub fn read_manifest(path: &Path) -> Result<(PathBuf, Manifest, Vec<u8>), BundleError> {
    let (dir, bytes) = read_manifest_bytes(path)?;
    let manifest = Manifest::from_json_unchecked(&bytes).map_err(|e| {
        Problem::integrity(format!(
            "{}: not a bundle manifest: {e}",
            dir.join(MANIFEST_FILE).display()
        ))
    })?;
    Ok((dir, manifest, bytes))
}

/// Checks the signature over `manifest.json` against the trusted keys, then reads the manifest.
pub fn authenticate(path: &Path, trusted: &[PublicKey]) -> Result<OpenedBundle, BundleError> {
    let (dir, bytes) = read_manifest_bytes(path)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let sig_path = dir.join(SIGNATURE_FILE);
    // A minisign signature file is a few hundred bytes.
    let sig_text = match read_bundle_file(&sig_path, 64 << 10) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(BundleFileProblem::Missing) => {
            return Err(Problem::signature(format!(
                "{}: the bundle is not signed ({SIGNATURE_FILE} is missing); never import an unsigned bundle: ask the exporter for the complete bundle",
                dir.display()
            ))
            .into());
        }
        Err(_) => {
            return Err(Problem::signature(format!(
                "{}: not a signature file",
                sig_path.display()
            ))
            .into());
        }
    };
    let signature = Signature::parse(&sig_text)
        .map_err(|e| Problem::signature(format!("{}: {e}", sig_path.display())))?;
    let Some(key) = trusted.iter().find(|k| k.key_id == signature.key_id) else {
        let known: Vec<String> = trusted.iter().map(|k| k.key_id.to_string()).collect();
        return Err(Problem::signature(format!(
            "{}: signed by key {}, which is not trusted here (trusted: {}); if the exporter confirms that key id, add its .pub with `ferry trust add` or --trust",
            dir.display(),
            signature.key_id,
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
        .into());
    };
    signature.verify(key, &bytes).map_err(|e| match e {
        SignatureError::Invalid => Problem::signature(format!(
            "{}: {MANIFEST_FILE} was changed after it was signed by key {}: do not import it; get the bundle again",
            dir.display(),
            key.key_id
        )),
        other => Problem::signature(format!("{}: {other}", sig_path.display())),
    })?;
    let manifest = parse_signed_manifest(&bytes, &manifest_path)?;
    if signature.trusted_comment != manifest.trusted_comment() {
        return Err(Problem::signature(format!(
            "{}: the signature's trusted comment ({:?}) names another bundle than the manifest: the signature was moved from another bundle",
            dir.display(),
            signature.trusted_comment
        ))
        .into());
    }
    if manifest.signer_key_id != signature.key_id.to_string() {
        return Err(Problem::signature(format!(
            "{}: the manifest names signer {} but key {} signed it",
            dir.display(),
            manifest.signer_key_id,
            signature.key_id
        ))
        .into());
    }
    let format = manifest
        .volumes
        .first()
        .and_then(|v| VolumeFormat::of_file(&v.name))
        .unwrap_or(VolumeFormat::Tar);
    Ok(OpenedBundle { dir, manifest, manifest_bytes: bytes, signer: signature.key_id, format })
}

/// Reads a manifest whose signature checked out. Its format comes first (a newer format is for a
/// newer ferry); then every value that becomes a path, a row or a sequence number must have the
/// shape its type allows (`names.rs`, `SafePath`): a signed manifest that breaks one of those
/// rules is refused as unsafe, whoever signed it.
fn parse_signed_manifest(bytes: &[u8], path: &Path) -> Result<Manifest, Problem> {
    let manifest = Manifest::from_json(bytes).map_err(|e| match e {
        ManifestJsonError::Impossible(_) => Problem::unsafe_entry(format!(
            "{}: signed by a trusted key, but {e}: never import this bundle; tell whoever holds the key",
            path.display()
        )),
        ManifestJsonError::OtherFormat { .. } => {
            Problem::integrity(format!("{}: {e}", path.display()))
        }
        ManifestJsonError::Unreadable(_) => {
            Problem::integrity(format!("{}: signed, but {e}", path.display()))
        }
    })?;
    if let Some(policy) = &manifest.approval_policy {
        policy.check().map_err(|e| {
            Problem::unsafe_entry(format!(
                "{}: the approval policy: {e}; never import this bundle",
                path.display()
            ))
        })?;
    }
    Ok(manifest)
}

/// Refuses an expired bundle unless `allow_expired`; returns a warning when it is allowed.
pub fn check_expiry(
    manifest: &Manifest,
    now: chrono::DateTime<chrono::Utc>,
    allow_expired: bool,
) -> Result<Option<String>, Problem> {
    let Some(expires) = &manifest.expires else { return Ok(None) };
    let at = chrono::DateTime::parse_from_rfc3339(expires)
        .map_err(|_| Problem::integrity(format!("expiry {expires:?} is not a date")))?;
    if at.with_timezone(&chrono::Utc) > now {
        return Ok(None);
    }
    let message = format!(
        "bundle {} of channel {} expired on {expires}",
        manifest.sequence, manifest.channel
    );
    if allow_expired {
        Ok(Some(format!("{message}; importing anyway because of --allow-expired")))
    } else {
        Err(Problem::sequence(format!(
            "{message}: ask for a fresh export, or import with --allow-expired if you accept stale updates"
        )))
    }
}

/// Receives the members a walk reads. `verify` only hashes; `import` stages them.
pub trait MemberSink {
    /// A member (or its chunk `chunk`, from 0) starts: where its bytes go, if anywhere.
    fn begin(
        &mut self,
        member: &MemberEntry,
        chunk: usize,
    ) -> Result<Option<&mut dyn Write>, BundleError>;
    /// The whole member was read and matches its hashes.
    fn complete(&mut self, member: &MemberEntry, digests: &VerifiedFile)
    -> Result<(), BundleError>;
    /// The member turned out bad: discard whatever was begun.
    fn abandon(&mut self, member: &MemberEntry);
}

/// Hashes only.
pub struct NullSink;

impl MemberSink for NullSink {
    fn begin(&mut self, _: &MemberEntry, _: usize) -> Result<Option<&mut dyn Write>, BundleError> {
        Ok(None)
    }
    fn complete(&mut self, _: &MemberEntry, _: &VerifiedFile) -> Result<(), BundleError> {
        Ok(())
    }
    fn abandon(&mut self, _: &MemberEntry) {}
}

/// Where an archive entry belongs according to the manifest.
#[derive(Clone)]
struct Expected {
    member: usize,
    chunk: Option<usize>,
    volume: u32,
    size: u64,
    sha256: String,
}

/// Whether `path` is one file directly in `folder` (the bundle layout: a kind of member, a folder).
fn in_folder(path: &SafePath, folder: &str) -> bool {
    path.as_str().strip_prefix(folder).is_some_and(|name| !name.contains('/'))
}

/// Checks the manifest's own lists before any volume is read: safe, unique paths; payloads named
/// by their SHA-1; volumes named in order; sane metadata sizes.
fn plan(manifest: &Manifest, format: VolumeFormat) -> Result<HashMap<String, Expected>, Problem> {
    for (i, v) in manifest.volumes.iter().enumerate() {
        let expected = volume_name(i as u32 + 1, format);
        if v.name != expected {
            return Err(Problem::unsafe_entry(format!(
                "the manifest lists volume {:?} where {expected} belongs",
                v.name
            )));
        }
    }
    let n = manifest.volumes.len() as u32;
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut add = |path: &SafePath, e: Expected| -> Result<(), Problem> {
        if e.volume == 0 || e.volume > n {
            return Err(Problem::integrity(format!(
                "the manifest puts {path} in volume {}, but the bundle has {n} volumes",
                e.volume
            )));
        }
        if expected.insert(path.as_str().to_string(), e).is_some() {
            return Err(Problem::unsafe_entry(format!("the manifest lists {path} twice")));
        }
        Ok(())
    };
    for (i, m) in manifest.members.iter().enumerate() {
        match m.kind {
            MemberKind::Payload => {
                if m.payload_name().is_none() {
                    return Err(Problem::unsafe_entry(format!(
                        "payload {} is not named content/XX/<its SHA-1>.<ext>",
                        m.path
                    )));
                }
            }
            MemberKind::Metadata => {
                if !in_folder(&m.path, "metadata/") {
                    return Err(Problem::unsafe_entry(format!(
                        "metadata {} is not in metadata/",
                        m.path
                    )));
                }
                let declared = m.uncompressed_size.unwrap_or(u64::MAX);
                if declared > m.size.saturating_mul(MAX_METADATA_RATIO) {
                    return Err(Problem::unsafe_entry(format!(
                        "metadata {} declares {declared} bytes from {}: a decompression bomb",
                        m.path, m.size
                    )));
                }
            }
            MemberKind::Approvals => {
                if !in_folder(&m.path, "approvals/") {
                    return Err(Problem::unsafe_entry(format!(
                        "approvals {} are not in approvals/",
                        m.path
                    )));
                }
            }
        }
        if m.chunks.is_empty() {
            let volume = m.volume.ok_or_else(|| {
                Problem::integrity(format!("the manifest gives {} no volume", m.path))
            })?;
            add(
                &m.path,
                Expected { member: i, chunk: None, volume, size: m.size, sha256: m.sha256.clone() },
            )?;
        } else {
            let total = m.chunks.iter().try_fold(0u64, |sum, c| sum.checked_add(c.size));
            if total != Some(m.size) {
                return Err(Problem::integrity(format!(
                    "the chunks of {} do not add up to its {} bytes",
                    m.path, m.size
                )));
            }
            for (k, c) in m.chunks.iter().enumerate() {
                add(
                    &c.path,
                    Expected {
                        member: i,
                        chunk: Some(k),
                        volume: c.volume,
                        size: c.size,
                        sha256: c.sha256.clone(),
                    },
                )?;
            }
        }
    }
    Ok(expected)
}

/// What a walk checks beyond every member's signed SHA-256, and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkMode {
    /// Stop at the first problem (import) rather than collect them all (verify).
    pub stop_at_first: bool,
    /// Also hash payloads with SHA-1 and check the name the manifest gives them. Without it, the
    /// caller checks the manifest's SHA-1 against the metadata instead (the SHA-256, signed,
    /// already pins every byte).
    pub payload_sha1: bool,
    /// Check each volume's SHA-256 too, so a courier learns which volume to copy again. Import
    /// leaves it out: every member's signed SHA-256 is checked and every entry is accounted
    /// for, so the volume hash adds no protection, only a third of the CPU.
    pub volume_hashes: bool,
}

impl WalkMode {
    pub const IMPORT: WalkMode =
        WalkMode { stop_at_first: true, payload_sha1: false, volume_hashes: false };
    pub const VERIFY: WalkMode =
        WalkMode { stop_at_first: false, payload_sha1: true, volume_hashes: true };
}

/// Walks every volume, checking every entry against the manifest and feeding members to `sink`.
/// Returns the problems found (all of them, or the first, as `mode` says); `progress(bytes read)`.
pub fn walk_bundle(
    bundle: &OpenedBundle,
    sink: &mut dyn MemberSink,
    mode: WalkMode,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<Problem>, BundleError> {
    let expected = match plan(&bundle.manifest, bundle.format) {
        Ok(e) => e,
        Err(p) => return Ok(vec![p]),
    };
    let mut walk = Walk {
        bundle,
        expected,
        mode,
        problems: Vec::new(),
        pending: Vec::new(),
        seen: HashSet::new(),
        partial: HashMap::new(),
        bytes_read: 0,
        unreadable: HashSet::new(),
    };
    walk.stray_files();
    if walk.stopped() {
        return Ok(walk.problems);
    }
    for (vi, volume) in bundle.manifest.volumes.iter().enumerate() {
        walk.volume(vi as u32 + 1, volume, sink, progress)?;
        if walk.stopped() {
            return Ok(walk.problems);
        }
    }
    walk.missing_members();
    Ok(walk.problems)
}

/// One walk over a bundle's volumes: what it expects, what it has seen and what it found wrong.
struct Walk<'b> {
    bundle: &'b OpenedBundle,
    /// Every entry the manifest declares, by path.
    expected: HashMap<String, Expected>,
    mode: WalkMode,
    problems: Vec<Problem>,
    /// Problems of the volume being read, reported after it.
    pending: Vec<Problem>,
    /// Entries read so far.
    seen: HashSet<String>,
    /// Members read in part (chunked): their hasher and the next chunk expected.
    partial: HashMap<usize, (FileHasher, usize)>,
    bytes_read: u64,
    /// Volumes with a problem of their own: their missing members are not listed one by one.
    unreadable: HashSet<u32>,
}

/// Where an entry's bytes go while they are read: the member's hash, the chunk's hash (chunked
/// members), the sink's writer (staging), if any.
struct Destinations<'a> {
    member: &'a mut FileHasher,
    chunk: Option<&'a mut Sha256>,
    writer: Option<&'a mut dyn Write>,
}

impl Walk<'_> {
    /// Import stops at the first problem; verify collects them all.
    fn stopped(&self) -> bool {
        self.mode.stop_at_first && !self.problems.is_empty()
    }

    fn volume_count(&self) -> usize {
        self.bundle.manifest.volumes.len()
    }

    /// Files in the bundle directory the manifest does not list.
    fn stray_files(&mut self) {
        let manifest = &self.bundle.manifest;
        let listed: HashSet<&str> = manifest
            .volumes
            .iter()
            .map(|v| v.name.as_str())
            .chain([MANIFEST_FILE, SIGNATURE_FILE])
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.bundle.dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !listed.contains(name.as_str()) {
                self.problems.push(Problem::integrity(format!(
                    "{name} is in the bundle directory but not in the manifest: remove it, or get the bundle again if a volume was renamed"
                )));
            }
        }
    }

    /// Reads volume `number`: every entry checked against the manifest and handed to `sink`,
    /// then (with `volume_hashes`) the whole volume's hash.
    fn volume(
        &mut self,
        number: u32,
        volume: &VolumeEntry,
        sink: &mut dyn MemberSink,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), BundleError> {
        let bundle = self.bundle;
        let path = bundle.dir.join(&volume.name);
        let what = format!("volume {number} of {} ({})", self.volume_count(), volume.name);
        if let Some(p) = volume_file_problem(&path, volume, &what) {
            self.problems.push(p);
            self.unreadable.insert(number);
            return Ok(());
        }
        let problems_before = self.problems.len();
        let volume_hashes = self.mode.volume_hashes;
        let mut visit = |entry: Entry<'_>| self.entry(entry, number, &what, sink, progress);
        let digest = reader::walk(&path, bundle.format, volume_hashes, &mut visit);
        self.problems.append(&mut self.pending);
        match digest {
            Ok(d) => {
                if volume_hashes
                    && (self.problems.is_empty() || !self.mode.stop_at_first)
                    && d.sha256 != volume.sha256
                {
                    self.problems.push(Problem::integrity(format!(
                        "{what} does not match its hash: copy it again from the export host"
                    )));
                }
            }
            Err(WalkError::Visitor(e)) => return Err(e),
            Err(WalkError::Duplicate(name)) => {
                let name = String::from_utf8_lossy(&name[..name.len().min(200)]);
                self.problems.push(Problem::unsafe_entry(format!(
                    "{what}: entry {name:?} appears twice: never extract this bundle"
                )));
            }
            Err(WalkError::Archive(e)) => {
                self.problems.push(Problem::integrity(format!(
                    "{what} is damaged ({e}): copy it again from the export host"
                )));
            }
        }
        if self.problems.len() > problems_before {
            self.unreadable.insert(number);
        }
        Ok(())
    }

    /// One entry of a volume: admitted (the manifest declares it, here, once, at its size),
    /// then read into its member. A problem is noted and the walk goes on (verify) or stops
    /// (import).
    fn entry(
        &mut self,
        entry: Entry<'_>,
        number: u32,
        what: &str,
        sink: &mut dyn MemberSink,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Visit, BundleError> {
        let verdict = match self.admit(&entry, number, what) {
            Ok((path, expected)) => self.take(entry, &path, &expected, what, sink, progress)?,
            Err(p) => Err(p),
        };
        match verdict {
            Ok(()) => Ok(Visit::Continue),
            Err(p) => {
                self.pending.push(p);
                Ok(if self.mode.stop_at_first { Visit::Stop } else { Visit::Continue })
            }
        }
    }

    /// Whether an entry may be read: a safe path of a regular file that the manifest declares
    /// in this volume, not seen before, of the declared size.
    fn admit(
        &mut self,
        entry: &Entry<'_>,
        number: u32,
        what: &str,
    ) -> Result<(SafePath, Expected), Problem> {
        // For messages only, and never longer than a line.
        let name = String::from_utf8_lossy(&entry.raw_path[..entry.raw_path.len().min(200)]);
        let path = SafePath::from_bytes(&entry.raw_path).map_err(|u| {
            Problem::unsafe_entry(format!(
                "{what}: entry {name:?} is unsafe ({}): never extract this bundle",
                u.reason
            ))
        })?;
        if entry.kind != EntryKind::File {
            return Err(Problem::unsafe_entry(format!(
                "{what}: entry {path} is a {}; bundles hold regular files only",
                entry.kind.describe()
            )));
        }
        let Some(exp) = self.expected.get(path.as_str()) else {
            return Err(Problem::unsafe_entry(format!(
                "{what}: entry {path} is not listed in the manifest"
            )));
        };
        if !self.seen.insert(path.to_string()) {
            return Err(Problem::unsafe_entry(format!("{what}: entry {path} appears twice")));
        }
        if exp.volume != number {
            return Err(Problem::integrity(format!(
                "{what}: entry {path} belongs in volume {}",
                exp.volume
            )));
        }
        if entry.size > exp.size {
            return Err(Problem::unsafe_entry(format!(
                "{what}: entry {path} is {} bytes, more than the {} its declaration allows",
                entry.size, exp.size
            )));
        }
        if entry.size < exp.size {
            return Err(Problem::integrity(format!(
                "{what}: entry {path} is {} bytes, the manifest says {}: copy the volume again",
                entry.size, exp.size
            )));
        }
        Ok((path, exp.clone()))
    }

    /// Reads an admitted entry into its member (a whole member, or one chunk of it) and, at the
    /// member's end, checks its hashes and completes it in `sink`. `Ok(Err(_))`: the member is
    /// bad and abandoned.
    fn take(
        &mut self,
        entry: Entry<'_>,
        path: &SafePath,
        exp: &Expected,
        what: &str,
        sink: &mut dyn MemberSink,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Result<(), Problem>, BundleError> {
        let bundle = self.bundle;
        let member = &bundle.manifest.members[exp.member];
        let chunk = exp.chunk.unwrap_or(0);
        let with_sha1 = self.mode.payload_sha1 && member.kind == MemberKind::Payload;
        let fresh = || if with_sha1 { FileHasher::default() } else { FileHasher::sha256_only() };
        let (mut hasher, next_chunk) =
            self.partial.remove(&exp.member).unwrap_or_else(|| (fresh(), 0));
        if chunk != next_chunk {
            sink.abandon(member);
            return Ok(Err(Problem::integrity(format!("{what}: chunk {path} comes out of order"))));
        }
        let mut chunk_hash = exp.chunk.map(|_| Sha256::new());
        let writer = sink.begin(member, chunk)?;
        let into = Destinations { member: &mut hasher, chunk: chunk_hash.as_mut(), writer };
        if let Err(p) = self.copy(entry, path, what, into, progress)? {
            sink.abandon(member);
            return Ok(Err(p));
        }
        let number = exp.volume;
        if let Some(h) = chunk_hash {
            if hex::encode(h.finalize()) != exp.sha256 {
                sink.abandon(member);
                return Ok(Err(Problem::integrity(format!(
                    "{what}: chunk {path} does not match its hash: copy volume {number} again from the export host"
                ))));
            }
            if chunk + 1 < member.chunks.len() {
                self.partial.insert(exp.member, (hasher, chunk + 1));
                return Ok(Ok(()));
            }
        }
        let digests = hasher.finish();
        let sha1_ok = !with_sha1
            || member
                .sha1
                .as_ref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&digests.sha1.to_hex_lower()));
        if digests.sha256.to_hex_lower() != member.sha256 || !sha1_ok {
            sink.abandon(member);
            return Ok(Err(Problem::integrity(format!(
                "{what}: member {} does not match its hash: copy volume {number} again from the export host",
                member.path
            ))));
        }
        match sink.complete(member, &digests) {
            Ok(()) => Ok(Ok(())),
            Err(BundleError::Problem(p)) => Ok(Err(p)),
            Err(other) => Err(other),
        }
    }

    /// Copies an entry's declared bytes to where they go. `Ok(Err(_))`: the volume ended early
    /// or could not be read.
    fn copy(
        &mut self,
        entry: Entry<'_>,
        path: &SafePath,
        what: &str,
        into: Destinations<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Result<(), Problem>, BundleError> {
        let Destinations { member, mut chunk, mut writer } = into;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = entry.size;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let got = match entry.data.read(&mut buf[..want]) {
                Ok(0) => {
                    return Ok(Err(Problem::integrity(format!(
                        "{what}: entry {path} ends early: the volume is damaged; copy it again"
                    ))));
                }
                Ok(g) => g,
                Err(e) => {
                    return Ok(Err(Problem::integrity(format!(
                        "{what}: reading {path}: {e}: copy the volume again"
                    ))));
                }
            };
            member.update(&buf[..got]);
            if let Some(h) = chunk.as_mut() {
                h.update(&buf[..got]);
            }
            if let Some(w) = writer.as_mut() {
                w.write_all(&buf[..got])
                    .map_err(|e| BundleError::Invalid(format!("staging {path}: {e}")))?;
            }
            left -= got as u64;
            self.bytes_read += got as u64;
            progress(self.bytes_read);
        }
        Ok(Ok(()))
    }

    /// Members the manifest declares that no volume held (volumes that could not be read at all
    /// were reported already).
    fn missing_members(&mut self) {
        let n = self.volume_count();
        let mut missing: Vec<(&String, &Expected)> =
            self.expected.iter().filter(|(p, _)| !self.seen.contains(*p)).collect();
        missing.sort_unstable_by_key(|(p, e)| (e.volume, *p));
        for (path, e) in missing {
            if self.unreadable.contains(&e.volume) {
                continue;
            }
            self.problems.push(Problem::integrity(format!(
                "member {path} is missing from volume {} of {n}: copy that volume again from the export host",
                e.volume
            )));
            if self.mode.stop_at_first {
                break;
            }
        }
    }
}

/// What is wrong with a volume's file before it is opened: missing, not a regular file, or not
/// the size the manifest says.
fn volume_file_problem(
    path: &std::path::Path,
    volume: &VolumeEntry,
    what: &str,
) -> Option<Problem> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Some(Problem::integrity(format!(
            "{what} is missing: copy it from the export host"
        )));
    };
    if !meta.is_file() {
        return Some(Problem::unsafe_entry(format!(
            "{what} is not a regular file (a device, a FIFO or a link to one)"
        )));
    }
    (meta.len() != volume.size).then(|| {
        Problem::integrity(format!(
            "{what} is {} bytes, the manifest says {}: it is truncated or incompletely copied; copy it again from the export host",
            meta.len(),
            volume.size
        ))
    })
}
