//! `ferry verify`: everything `import` checks, offline, changing nothing, every problem reported.

use super::error::{BundleError, Problem};
use super::integrity::{MemberSink, WalkMode, authenticate, check_expiry, walk_bundle};
use super::manifest::{MemberEntry, MemberKind};
use super::minisign::PublicKey;
use crate::catalog::Guid;
use crate::store::VerifiedFile;
use serde::Serialize;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub bundle: PathBuf,
    pub channel: Option<String>,
    pub sequence: Option<u64>,
    pub base_sequence: Option<u64>,
    pub bundle_id: Option<String>,
    pub signer_key_id: Option<String>,
    pub created: Option<String>,
    pub expires: Option<String>,
    pub volumes: usize,
    pub members: usize,
    pub bytes_read: u64,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// 0, or the exit code of the first problem in verification order.
    pub fn exit_code(&self) -> u8 {
        self.problems.first().map(|p| p.exit_code).unwrap_or(0)
    }
}

/// Decompresses metadata records as they stream past, within their declared sizes.
#[derive(Default)]
struct MetadataChecker {
    /// Bytes received and not yet checked start at `checked` (removed once per write, not once
    /// per record: many small records in one write are linear, not quadratic).
    buffer: Vec<u8>,
    checked: usize,
    total: u64,
    documents: u64,
    declared: u64,
    error: Option<String>,
    /// Whether to parse each document, for `carried`.
    identify: bool,
    /// The locally published updates whose documents were read (when `identify`).
    carried: HashSet<Guid>,
}

impl MetadataChecker {
    fn drain(&mut self) {
        use super::metadata::{RECORD_HEADER, record_header};
        while self.error.is_none() && self.buffer.len() - self.checked >= RECORD_HEADER {
            let rest = &self.buffer[self.checked..];
            let (clen, size) =
                match record_header(rest[..RECORD_HEADER].try_into().expect("a header's bytes")) {
                    Ok(h) => h,
                    Err(e) => return self.error = Some(e.to_string()),
                };
            if rest.len() < RECORD_HEADER + clen {
                break;
            }
            self.total += size;
            self.documents += 1;
            if self.total > self.declared {
                return self.error = Some(format!(
                    "expands beyond the {} bytes it declares: a decompression bomb",
                    self.declared
                ));
            }
            match crate::store::decompress_document(
                &rest[RECORD_HEADER..RECORD_HEADER + clen],
                size,
                "a document",
            ) {
                Ok(document) => self.identify_published(&document),
                Err(e) => return self.error = Some(e.to_string()),
            }
            self.checked += RECORD_HEADER + clen;
        }
        self.buffer.drain(..self.checked);
        self.checked = 0;
    }
}

impl MetadataChecker {
    /// Notes the document's update if it is locally published, read as import reads it (the
    /// whole parse: one rule for both); one that does not parse is import's to refuse.
    fn identify_published(&mut self, document: &[u8]) {
        // An attribute's name is never escaped: a document without this one is not locally
        // published, and need not be parsed (the same answer, most documents skipped).
        if !self.identify || memchr::memmem::find(document, b"IsLocallyPublished").is_none() {
            return;
        }
        if let Ok(parsed) = crate::catalog::parse_update(document) {
            if parsed.update.is_locally_published() {
                self.carried.insert(parsed.update.identity.update_id);
            }
        }
    }
}

impl Write for MetadataChecker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_none() {
            self.buffer.extend_from_slice(buf);
            self.drain();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct VerifySink {
    metadata: Option<MetadataChecker>,
    members: usize,
    /// The manifest lists published updates: each document is parsed to find them.
    identify: bool,
    /// The locally published updates whose documents the bundle carries.
    carried: HashSet<Guid>,
}

impl MemberSink for VerifySink {
    fn begin(
        &mut self,
        member: &MemberEntry,
        chunk: usize,
    ) -> Result<Option<&mut dyn Write>, BundleError> {
        if member.kind != MemberKind::Metadata {
            return Ok(None);
        }
        if chunk == 0 {
            self.metadata = Some(MetadataChecker {
                declared: member.uncompressed_size.unwrap_or(0),
                identify: self.identify,
                ..Default::default()
            });
        }
        Ok(self.metadata.as_mut().map(|m| m as &mut dyn Write))
    }

    fn complete(&mut self, member: &MemberEntry, _: &VerifiedFile) -> Result<(), BundleError> {
        self.members += 1;
        if let Some(mut checker) = self.metadata.take() {
            self.carried.extend(std::mem::take(&mut checker.carried));
            if let Some(e) = checker.error {
                return Err(Problem::unsafe_entry(format!("metadata {}: {e}", member.path)).into());
            }
            if !checker.buffer.is_empty()
                || checker.total != checker.declared
                || member.documents.is_some_and(|d| d != checker.documents)
            {
                return Err(Problem::integrity(format!(
                    "metadata {} does not hold the documents the manifest declares",
                    member.path
                ))
                .into());
            }
        }
        Ok(())
    }

    fn abandon(&mut self, _: &MemberEntry) {
        self.metadata = None;
    }
}

pub fn verify(
    path: &Path,
    trusted: &[PublicKey],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, BundleError> {
    let mut report = VerifyReport {
        bundle: path.to_path_buf(),
        channel: None,
        sequence: None,
        base_sequence: None,
        bundle_id: None,
        signer_key_id: None,
        created: None,
        expires: None,
        volumes: 0,
        members: 0,
        bytes_read: 0,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if trusted.is_empty() {
        report.problems.push(Problem::signature(
            "no key is trusted: pass --trust KEY.pub (the exporter's public key)",
        ));
        return Ok(report);
    }
    let bundle = match authenticate(path, trusted) {
        Ok(b) => b,
        Err(BundleError::Problem(p)) => {
            report.problems.push(p);
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let m = &bundle.manifest;
    report.bundle = bundle.dir.clone();
    report.channel = Some(m.channel.to_string());
    report.sequence = Some(m.sequence.get());
    report.base_sequence = m.base_sequence.map(|s| s.get());
    report.bundle_id = Some(m.bundle_id.to_string());
    report.signer_key_id = Some(bundle.signer.to_string());
    report.created = Some(m.created.clone());
    report.expires = m.expires.clone();
    report.volumes = m.volumes.len();
    if let Err(p) = check_expiry(m, chrono::Utc::now(), false) {
        report.problems.push(p);
    }
    let total = m.volumes.iter().fold(0u64, |sum, v| sum.saturating_add(v.size));
    let mut sink = VerifySink { identify: !m.published.is_empty(), ..Default::default() };
    let mut read = 0;
    let problems = walk_bundle(&bundle, &mut sink, WalkMode::VERIFY, &mut |done| {
        read = done;
        progress(done, total);
    })?;
    let complete = problems.is_empty();
    report.problems.extend(problems);
    // As import refuses it: a signed listing of a published update the volumes do not carry
    // (as a locally published update).
    if let (true, Err(p)) = (complete, super::import::check_published(m, &sink.carried)) {
        report.problems.push(p);
    }
    report.members = sink.members;
    report.bytes_read = read;
    Ok(report)
}
