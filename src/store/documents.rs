//! Documents as the store keeps them, whatever the engine: compressed (zstd, with the one
//! decompressor that has a size limit), and prepared for storing (parsed, fragments derived and
//! compressed) on any thread, in the stream's order.

use crate::catalog::Sha1Digest;
use crate::catalog::{ParsedUpdate, Update, UpdateIdentity, parse_update};
use crate::store::{Documents, Store, StoreError, StoreResult};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};

/// zstd level for stored documents and fragments: fast enough to stay behind parsing.
const COMPRESSION_LEVEL: i32 = 1;

pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    thread_local! {
        // A compression context is costly to build; each thread keeps one.
        static COMPRESSOR: std::cell::RefCell<zstd::bulk::Compressor<'static>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(COMPRESSION_LEVEL).expect("a zstd context"));
    }
    COMPRESSOR.with(|c| c.borrow_mut().compress(bytes).expect("compressing to memory cannot fail"))
}

/// Decompresses what the store keeps (documents, fragments): never more than a document may be.
pub(crate) fn decompress(bytes: &[u8], what: &str) -> std::io::Result<Vec<u8>> {
    decompress_at_most(
        bytes,
        crate::catalog::MAX_DOCUMENT_BYTES,
        bytes.len().saturating_mul(4),
        what,
    )
}

/// The one zstd decompressor: at most `limit` bytes come out, and more is an error (a
/// decompression bomb, or damage), found after `limit + 1` bytes at the most. `expected`:
/// the room to start with.
pub(crate) fn decompress_at_most(
    bytes: &[u8],
    limit: usize,
    expected: usize,
    what: &str,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut out = Vec::with_capacity(expected.min(limit));
    let decoder = zstd::stream::read::Decoder::with_buffer(bytes)
        .map_err(|e| invalid(format!("{what}: {e}")))?;
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("{what}: does not decompress: {e}")))?;
    if out.len() > limit {
        return Err(invalid(format!("{what}: decompresses to more than {limit} bytes")));
    }
    Ok(out)
}

/// A stored document as it travels to a site that keeps `languages`: without the localized
/// properties and EULAs of other languages (`catalog::language::strip_languages`), compressed,
/// with its uncompressed size.
pub fn document_in_languages(
    store: &Store,
    revision_id: i32,
    languages: &[crate::catalog::Language],
) -> StoreResult<(Vec<u8>, u64)> {
    let (compressed, size) = store.compressed_document(revision_id)?;
    if languages.iter().any(crate::catalog::Language::is_all) {
        return Ok((compressed, size));
    }
    let what = format!("the stored document of revision #{revision_id}");
    let document = decompress_document(&compressed, size, &what)
        .map_err(|e| StoreError::Oversized { document: what.clone(), message: e.to_string() })?;
    let parsed = crate::catalog::parse_update(&document)
        .map_err(|e| StoreError::Document { document: what, source: e })?;
    match crate::catalog::language::strip_languages(&document, &parsed.update, languages) {
        Some(stripped) => Ok((compress(&stripped), stripped.len() as u64)),
        None => Ok((compressed, size)),
    }
}

/// Checks a compressed document decompresses to exactly `size` bytes (no more: bombs stop at
/// the declared size).
pub fn decompress_document(compressed: &[u8], size: u64, what: &str) -> std::io::Result<Vec<u8>> {
    if size > crate::catalog::MAX_DOCUMENT_BYTES as u64 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}: declares {size} bytes, above the document limit"),
        ));
    }
    let out = decompress_at_most(compressed, size as usize, size as usize, what)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{e} (declared {size} bytes)")))?;
    if out.len() as u64 != size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}: decompresses to {} bytes, declared {size}", out.len()),
        ));
    }
    Ok(out)
}

/// One document to ingest, and the payloads verified in the content tree along with it.
pub struct IngestItem {
    /// Names the document in errors (a file, a bundle member, a generated item).
    pub source: String,
    pub document: Vec<u8>,
    /// `Some(size)`: `document` is a zstd frame of a `size`-byte document (decompressed by the
    /// preparing workers, never beyond `size`).
    pub compressed_size: Option<u64>,
    /// Files whose verified content is in place: marked present in the same transaction.
    pub present_files: Vec<crate::catalog::Sha1Digest>,
}

impl IngestItem {
    pub fn new(source: impl Into<String>, document: Vec<u8>) -> Self {
        IngestItem {
            source: source.into(),
            document,
            compressed_size: None,
            present_files: Vec::new(),
        }
    }

    pub fn compressed(source: impl Into<String>, frame: Vec<u8>, size: u64) -> Self {
        IngestItem {
            source: source.into(),
            document: frame,
            compressed_size: Some(size),
            present_files: Vec::new(),
        }
    }

    pub(in crate::store) fn prepare(
        self,
    ) -> StoreResult<(PreparedRevision, Vec<crate::catalog::Sha1Digest>)> {
        let document = match self.compressed_size {
            None => self.document,
            Some(size) => decompress_document(&self.document, size, &self.source).map_err(|e| {
                StoreError::Oversized { document: self.source.clone(), message: e.to_string() }
            })?,
        };
        Ok((prepare_revision(&self.source, &document)?, self.present_files))
    }
}

/// A document parsed, its fragments derived and compressed: everything but the database work,
/// so it can run on any thread.
pub struct PreparedRevision {
    pub(in crate::store) source: String,
    pub(in crate::store) update: Update,
    pub(in crate::store) localized: Vec<(String, String)>,
    pub(in crate::store) digest: [u8; 16],
    pub(in crate::store) document_len: usize,
    pub(in crate::store) core_len: usize,
    pub(in crate::store) document: Vec<u8>,
    pub(in crate::store) core: Vec<u8>,
    pub(in crate::store) extended: Vec<u8>,
}

impl PreparedRevision {
    /// Whether stored Core and Extended fragments read the same as this revision's: equal
    /// bytes, or equal once decompressed (another zstd build may compress differently).
    pub(in crate::store) fn fragments_match(
        &self,
        core: &[u8],
        extended: &[u8],
    ) -> StoreResult<bool> {
        let what = format!("the fragments of {}", self.update.identity);
        let same = |stored: &[u8], prepared: &[u8]| -> StoreResult<bool> {
            let io = |e| StoreError::io(std::path::Path::new(&what), e);
            Ok(stored == prepared
                || decompress(stored, &what).map_err(io)?
                    == decompress(prepared, &what).map_err(io)?)
        };
        Ok(same(core, &self.core)? && same(extended, &self.extended)?)
    }

    pub fn identity(&self) -> UpdateIdentity {
        self.update.identity
    }

    pub fn update(&self) -> &Update {
        &self.update
    }
}

/// Parses and compresses one document; `source` names it in errors (a file, a bundle member...).
pub fn prepare_revision(source: &str, document: &[u8]) -> StoreResult<PreparedRevision> {
    let parsed = parse_update(document)
        .map_err(|e| StoreError::Document { document: source.to_string(), source: e })?;
    Ok(prepare_parsed(source, document, parsed))
}

pub(in crate::store) fn prepare_parsed(
    source: &str,
    document: &[u8],
    parsed: ParsedUpdate,
) -> PreparedRevision {
    let digest = fragments_digest(&parsed);
    let ParsedUpdate { update, fragments } = parsed;
    PreparedRevision {
        source: source.to_string(),
        update,
        digest,
        document_len: document.len(),
        core_len: fragments.core.len(),
        document: compress(document),
        core: compress(fragments.core.as_bytes()),
        extended: compress(fragments.extended.as_bytes()),
        localized: fragments.localized,
    }
}

/// A digest of everything a client sees of a revision; two copies of a revision must agree on it.
/// (XXH3-128: this tells honest copies apart, it is not a security boundary; signatures are.)
pub fn fragments_digest(parsed: &ParsedUpdate) -> [u8; 16] {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let f = &parsed.fragments;
    for part in [&f.core, &f.extended] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for (lang, frag) in &f.localized {
        h.update(&(lang.len() as u64).to_le_bytes());
        h.update(lang.as_bytes());
        h.update(&(frag.len() as u64).to_le_bytes());
        h.update(frag.as_bytes());
    }
    h.digest128().to_le_bytes()
}

/// Documents travel between the threads in batches of about this many bytes (or
/// [`BATCH_DOCUMENTS`]), so the median document, a few kilobytes, does not pay a channel hand-off
/// and a thread wake-up of its own.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_DOCUMENTS: usize = 64;
/// Raw batches queued for the preparing workers (bounds memory: documents are big).
const BATCHES_IN_FLIGHT: usize = 8;
/// Prepared (compressed, about a tenth of the size) batches queued for the writer: a deep queue
/// lets the writer and the workers absorb each other's slow stretches (a run of CBS manifests is
/// slow to prepare, a run of small updates with many relationships slow to write).
const PREPARED_BATCHES_AHEAD: usize = 64;

/// A document prepared for storing, and the payload files verified along with it.
pub(in crate::store) type Prepared = StoreResult<(PreparedRevision, Vec<Sha1Digest>)>;

/// Prepares a stream's documents on a reader thread and one worker per core (parse, derive,
/// compress), and yields them in the stream's order (so revision ids follow the stream), each
/// with whether it ends a batch (a moment to report progress). Reading stops after the first
/// document that fails to read; dropping the iterator stops the threads.
pub(in crate::store) fn prepare_in_order<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    documents: Documents<'env>,
) -> InOrder {
    // Batch n carries documents first..first + len of the stream.
    let (work_tx, work_rx) =
        mpsc::sync_channel::<(u64, Vec<StoreResult<IngestItem>>)>(BATCHES_IN_FLIGHT);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<Prepared>)>(PREPARED_BATCHES_AHEAD);
    scope.spawn(move || read_in_batches(documents, work_tx));
    let work_rx = Arc::new(Mutex::new(work_rx));
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    for _ in 0..workers {
        let (work_rx, done_tx) = (Arc::clone(&work_rx), done_tx.clone());
        scope.spawn(move || {
            loop {
                let next = work_rx.lock().expect("no worker panics while holding the queue").recv();
                let Ok((first, items)) = next else { return };
                let prepared =
                    items.into_iter().map(|item| item.and_then(IngestItem::prepare)).collect();
                if done_tx.send((first, prepared)).is_err() {
                    return;
                }
            }
        });
    }
    InOrder { done: done_rx, waiting: BTreeMap::new(), current: Vec::new().into_iter(), next: 0 }
}

/// The reader thread of [`prepare_in_order`].
fn read_in_batches(
    documents: Documents<'_>,
    work: mpsc::SyncSender<(u64, Vec<StoreResult<IngestItem>>)>,
) {
    let (mut batch, mut batch_bytes, mut first) = (Vec::new(), 0usize, 0u64);
    for item in documents {
        let failed = item.is_err();
        batch_bytes += item.as_ref().map_or(0, |i| i.document.len());
        batch.push(item);
        if failed || batch_bytes >= BATCH_BYTES || batch.len() >= BATCH_DOCUMENTS {
            let len = batch.len() as u64;
            if work.send((first, std::mem::take(&mut batch))).is_err() || failed {
                return;
            }
            (first, batch_bytes) = (first + len, 0);
        }
    }
    if !batch.is_empty() {
        let _ = work.send((first, batch));
    }
}

/// See [`prepare_in_order`].
pub(in crate::store) struct InOrder {
    done: mpsc::Receiver<(u64, Vec<Prepared>)>,
    /// Batches prepared ahead of their turn, by the position of their first document.
    waiting: BTreeMap<u64, Vec<Prepared>>,
    current: std::vec::IntoIter<Prepared>,
    /// The position of the next batch to hand out.
    next: u64,
}

impl Iterator for InOrder {
    type Item = (Prepared, bool);

    fn next(&mut self) -> Option<(Prepared, bool)> {
        loop {
            if let Some(prepared) = self.current.next() {
                return Some((prepared, self.current.len() == 0));
            }
            if let Some(batch) = self.waiting.remove(&self.next) {
                self.next += batch.len() as u64;
                self.current = batch.into_iter();
                continue;
            }
            let (first, batch) = self.done.recv().ok()?;
            self.waiting.insert(first, batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decompressor_stops_at_its_limit() {
        let limit = 1 << 20;
        let exactly = zstd::encode_all(&vec![0u8; limit][..], 3).unwrap();
        assert_eq!(decompress_at_most(&exactly, limit, 0, "exact").unwrap().len(), limit);
        let bomb = zstd::encode_all(&vec![0u8; 64 * limit][..], 19).unwrap();
        let err = decompress_at_most(&bomb, limit, 0, "a bomb").unwrap_err().to_string();
        assert!(err.contains("a bomb") && err.contains("more than 1048576 bytes"), "{err}");
        let mut two_frames = zstd::encode_all(&b"one "[..], 3).unwrap();
        two_frames.extend(zstd::encode_all(&b"two"[..], 3).unwrap());
        assert_eq!(decompress_at_most(&two_frames, limit, 0, "frames").unwrap(), b"one two");
        let mut damaged = exactly.clone();
        damaged.truncate(damaged.len() / 2);
        assert!(
            decompress_at_most(&damaged, limit, 0, "damaged")
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
        assert!(decompress_at_most(b"not zstd", limit, 0, "garbage").is_err());
    }
}
