//! `ferry import`: verify a bundle and load it into a store.
//!
//! One pass over the volumes, read in place: payloads are hashed (SHA-256, SHA-1) while they are
//! copied into the content tree, metadata is staged, hash-checked, then parsed on all cores into
//! one open transaction. The transaction commits only after every volume and member checked
//! out, together with the import record. Killed at any point, nothing is visible and a re-run
//! finishes the job; payloads already copied are content-addressed and harmless until then.

use super::check::{MemberSink, OpenedBundle, authenticate, check_expiry, walk_bundle};
use super::error::{BundleError, Problem};
use super::manifest::{MemberEntry, MemberKind};
use super::metadata;
use super::minisign::PublicKey;
use super::pipe::BackgroundFileWriter;
use crate::catalog::Sha1Digest;
use crate::faults::crash_point;
use crate::store::{ImportRecord, IngestItem, IngestOptions, Store, StoreError, StoreResult, VerifiedFile};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub allow_expired: bool,
    /// Apply the approval policy the bundle carries (the importer's consent).
    pub apply_approvals: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    pub signer_key_id: String,
    /// `imported`, or `already-imported` (the same bundle again: nothing to do).
    pub outcome: String,
    pub revisions_added: u64,
    pub revisions_unchanged: u64,
    pub files_added: u64,
    pub bytes_read: u64,
    pub removed: u64,
    pub warnings: Vec<String>,
    /// What the automatic approval rules approved after the import.
    pub rules: Vec<crate::store::RuleOutcome>,
    /// What the bundle's approval policy did (only with `apply_approvals`).
    pub approval_policy: Option<super::approvals::PolicyOutcome>,
}

/// The keys a store trusts, plus those given on the command line.
pub fn trusted_keys(store: &Store, extra: &[PublicKey]) -> Result<Vec<PublicKey>, BundleError> {
    let mut keys: Vec<PublicKey> = extra.to_vec();
    for k in store.trusted_keys()? {
        let key =
            PublicKey::parse(&k.public_key).map_err(|e| BundleError::Invalid(format!("trusted key {} in the store: {e}", k.key_id)))?;
        if !keys.iter().any(|x| x.key_id == key.key_id) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The sequence rules of DESIGN.md §2.
pub fn check_sequence(store: &Store, bundle: &OpenedBundle) -> Result<(), BundleError> {
    let m = &bundle.manifest;
    let last = store.last_import(&m.channel)?;
    match (&last, m.base_sequence) {
        (None, None) => Ok(()),
        (None, Some(base)) => Err(Problem::sequence(format!(
            "delta bundle {} of channel {} builds on bundle {base}, but this store has imported nothing from {}: import the full bundle first, or ask for a full export (ferry export --full)",
            m.sequence, m.channel, m.channel
        ))
        .into()),
        (Some(last), _) if m.sequence <= last.sequence => Err(Problem::sequence(format!(
            "bundle {} of channel {} is not newer than the last import ({}, bundle id {}): a replayed or older bundle is refused",
            m.sequence, m.channel, last.sequence, last.bundle_id
        ))
        .into()),
        (Some(last), Some(base)) if base != last.sequence => Err(Problem::sequence(format!(
            "delta bundle {} of channel {} builds on bundle {base}, but the last import of {} is bundle {}: import bundles {}..{base} first, or ask for a full export",
            m.sequence,
            m.channel,
            m.channel,
            last.sequence,
            last.sequence + 1
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Stages members as the walk reads them.
struct ImportSink {
    staging: PathBuf,
    documents: SyncSender<StoreResult<IngestItem>>,
    /// Writes staged files on its own thread.
    writer: BackgroundFileWriter,
    /// The staging file of the member being read.
    open: Option<PathBuf>,
    staged: Vec<StagedPayload>,
}

/// A payload read and verified, waiting in the staging directory for the commit.
struct StagedPayload {
    path: PathBuf,
    sha1: Sha1Digest,
    sha256: crate::catalog::Sha256Digest,
    size: u64,
    extension: String,
}

impl ImportSink {
    fn staging_path(&self, member: &MemberEntry) -> PathBuf {
        self.staging.join(member.path.replace('/', "_"))
    }

    /// Sends the documents of a staged, hash-checked metadata member to the ingest pipeline.
    fn emit_documents(&mut self, member: &MemberEntry, path: &Path) -> Result<(), BundleError> {
        let mut input = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| BundleError::io(path, e))?);
        let declared = member.uncompressed_size.unwrap_or(0);
        let (mut total, mut count) = (0u64, 0u64);
        loop {
            let record = metadata::read_record(&mut input).map_err(|e| Problem::unsafe_entry(format!("metadata {}: {e}", member.path)))?;
            let Some((frame, size)) = record else { break };
            total += size;
            count += 1;
            if total > declared {
                return Err(Problem::unsafe_entry(format!(
                    "metadata {} expands beyond the {declared} bytes it declares: a decompression bomb; the bundle is refused",
                    member.path
                ))
                .into());
            }
            let item = IngestItem::compressed(format!("{} document {count}", member.path), frame, size);
            if self.documents.send(Ok(item)).is_err() {
                return Err(BundleError::Invalid("the ingest stopped".into()));
            }
        }
        if member.documents.is_some_and(|d| d != count) || total != declared {
            return Err(Problem::integrity(format!(
                "metadata {} holds {count} documents ({total} bytes), not what the manifest says",
                member.path
            ))
            .into());
        }
        Ok(())
    }
}

impl MemberSink for ImportSink {
    fn begin(&mut self, member: &MemberEntry, chunk: usize) -> Result<Option<&mut dyn Write>, BundleError> {
        let path = self.staging_path(member);
        if chunk == 0 || self.open.as_ref() != Some(&path) {
            // Later chunks of a member continue the file its first chunk started.
            self.writer.open(&path, chunk > 0).map_err(|e| BundleError::io(&path, e))?;
            self.open = Some(path);
        }
        Ok(Some(&mut self.writer as &mut dyn Write))
    }

    fn complete(&mut self, member: &MemberEntry, digests: &VerifiedFile) -> Result<(), BundleError> {
        let path = self.open.take().ok_or_else(|| BundleError::Invalid(format!("{}: completed without being begun", member.path)))?;
        // The writer thread finishes the file on its own; `finish` reports any write error
        // before anything is committed. No fsync per file: one file-system sync before the
        // commit covers them all.
        self.writer.close().map_err(|e| BundleError::io(&path, e))?;
        match member.kind {
            MemberKind::Metadata => {
                // The documents are read back now: wait for this file's bytes.
                let writer = std::mem::take(&mut self.writer);
                let failed: Vec<String> =
                    writer.finish().into_iter().filter_map(|(p, r)| r.err().map(|e| format!("{}: {e}", p.display()))).collect();
                if let Some(e) = failed.first() {
                    return Err(BundleError::Invalid(format!("staging failed: {e}")));
                }
                let result = self.emit_documents(member, &path);
                let _ = std::fs::remove_file(&path);
                result
            }
            MemberKind::Payload => {
                // Verified; it moves into the content tree only when the import commits.
                let ext = member.path.rsplit_once('/').and_then(|(_, f)| f.split_once('.')).map(|(_, e)| e).unwrap_or("");
                let sha1 = member
                    .sha1
                    .as_deref()
                    .and_then(|h| Sha1Digest::from_hex(h).ok())
                    .ok_or_else(|| Problem::unsafe_entry(format!("payload {} has no SHA-1", member.path)))?;
                self.staged.push(StagedPayload { path, sha1, sha256: digests.sha256, size: digests.size, extension: ext.to_string() });
                if self.staged.len() == 1 {
                    crash_point("import.first-payload-staged");
                }
                Ok(())
            }
            MemberKind::Approvals => {
                let _ = std::fs::remove_file(&path);
                Ok(())
            }
        }
    }

    fn abandon(&mut self, member: &MemberEntry) {
        if self.open.take().is_some() {
            let _ = self.writer.close();
        }
        let _ = std::fs::remove_file(self.staging_path(member));
    }
}

struct WalkOutcome {
    problems: Vec<Problem>,
    staged: Vec<StagedPayload>,
    bytes: u64,
}

/// For a store that does not exist yet: the checks that need no store (signature, trust, expiry,
/// a delta needs its base), so a refused bundle does not leave an empty store behind.
pub fn preflight_without_store(path: &Path, trusted: &[PublicKey], options: &ImportOptions) -> Result<(), BundleError> {
    if trusted.is_empty() {
        return Err(Problem::signature(
            "no key is trusted: pass --trust KEY.pub, or add the exporter's key with `ferry trust add KEY.pub`",
        )
        .into());
    }
    let bundle = authenticate(path, trusted)?;
    check_expiry(&bundle.manifest, chrono::Utc::now(), options.allow_expired)?;
    if let Some(base) = bundle.manifest.base_sequence {
        return Err(Problem::sequence(format!(
            "delta bundle {} of channel {} builds on bundle {base}, but this store has imported nothing from {}: import the full bundle first, or ask for a full export (ferry export --full)",
            bundle.manifest.sequence, bundle.manifest.channel, bundle.manifest.channel
        ))
        .into());
    }
    Ok(())
}

/// Verifies and imports the bundle at `path`. `progress(stage, done, total)`.
pub fn import(
    store: &mut Store,
    path: &Path,
    extra_trusted: &[PublicKey],
    options: &ImportOptions,
    progress: &mut (dyn FnMut(&str, u64, u64) + Send),
) -> Result<ImportReport, BundleError> {
    let trusted = trusted_keys(store, extra_trusted)?;
    if trusted.is_empty() {
        return Err(Problem::signature(
            "no key is trusted: pass --trust KEY.pub, or add the exporter's key with `ferry trust add KEY.pub`",
        )
        .into());
    }
    let bundle = authenticate(path, &trusted)?;
    let m = &bundle.manifest;
    let mut report = ImportReport {
        bundle: bundle.dir.clone(),
        bundle_id: m.bundle_id.clone(),
        channel: m.channel.clone(),
        sequence: m.sequence,
        base_sequence: m.base_sequence,
        signer_key_id: bundle.signer.to_string(),
        outcome: "imported".into(),
        revisions_added: 0,
        revisions_unchanged: 0,
        files_added: 0,
        bytes_read: 0,
        removed: m.removed.len() as u64,
        warnings: Vec::new(),
        rules: Vec::new(),
        approval_policy: None,
    };
    let staging = store.dir().join("tmp").join(format!("import-{}", m.bundle_id));
    if store.import_by_id(&m.bundle_id)?.is_some() {
        // A crash right after the commit may have left the staging directory behind.
        let _ = std::fs::remove_dir_all(&staging);
        report.outcome = "already-imported".into();
        report.removed = 0;
        // Consent may come with a second run: the policy applies then, but only from the
        // channel's newest bundle (an older one would undo later decisions) and unexpired.
        if options.apply_approvals {
            let newest = store.imports()?.iter().filter(|i| i.channel == m.channel).map(|i| i.sequence).max();
            if newest != Some(m.sequence) {
                report.warnings.push(format!(
                    "a newer bundle of channel {} was imported since (sequence {}); this bundle's approval policy stays unapplied",
                    m.channel,
                    newest.unwrap_or_default()
                ));
            } else {
                if let Some(w) = check_expiry(m, chrono::Utc::now(), options.allow_expired)? {
                    report.warnings.push(w);
                }
                apply_policy(store, &bundle.manifest, options, &mut report);
            }
        }
        return Ok(report);
    }
    if let Some(w) = check_expiry(m, chrono::Utc::now(), options.allow_expired)? {
        report.warnings.push(w);
    }
    check_sequence(store, &bundle)?;

    // Whatever an interrupted run staged is read again from the bundle.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| BundleError::io(&staging, e))?;
    let total_bytes: u64 = m.volumes.iter().map(|v| v.size).sum();
    let outcome: Arc<Mutex<Option<Result<WalkOutcome, BundleError>>>> = Arc::new(Mutex::new(None));
    let content = store.content().clone();
    let content = &content;
    let progress = Mutex::new(progress);
    let manifest_json = String::from_utf8_lossy(&bundle.manifest_bytes).into_owned();

    let staging_ref_for_sync = &staging;
    let ingested = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<StoreResult<IngestItem>>(256);
        let walker_outcome = Arc::clone(&outcome);
        let (bundle_ref, staging_ref, progress_ref) = (&bundle, &staging, &progress);
        scope.spawn(move || {
            let mut sink = ImportSink {
                staging: staging_ref.clone(),
                documents: tx,
                writer: BackgroundFileWriter::new(),
                open: None,
                staged: Vec::new(),
            };
            let mut bytes = 0u64;
            let result = walk_bundle(bundle_ref, &mut sink, true, false, false, &mut |done| {
                bytes = done;
                if let Ok(mut p) = progress_ref.lock() {
                    (*p)("reading volumes", done, total_bytes);
                }
            });
            let staged = std::mem::take(&mut sink.staged);
            let write_errors: Vec<String> = std::mem::take(&mut sink.writer)
                .finish()
                .into_iter()
                .filter_map(|(p, r)| r.err().map(|e| format!("{}: {e}", p.display())))
                .collect();
            let result = match (result, write_errors.first()) {
                (Ok(_), Some(e)) => Err(BundleError::Invalid(format!("staging a payload failed: {e}"))),
                (r, _) => r,
            };
            *walker_outcome.lock().expect("no panic holds the outcome") =
                Some(result.map(|problems| WalkOutcome { problems, staged, bytes }));
            // Dropping the sink closes the document stream: the ingest then finishes.
            drop(sink);
        });

        let mut before_commit = |batch: &mut crate::store::IngestBatch<'_>, _done: u64| -> StoreResult<()> {
            let guard = outcome.lock().expect("no panic holds the outcome");
            let Some(Ok(walk)) = guard.as_ref() else { return Err(StoreError::Aborted("the volumes did not check out".into())) };
            if !walk.problems.is_empty() {
                return Err(StoreError::Aborted("the volumes did not check out".into()));
            }
            sync_file_system(staging_ref_for_sync).map_err(|e| StoreError::io(staging_ref_for_sync, e))?;
            for p in &walk.staged {
                // The bytes matched their signed SHA-256; the update metadata must agree on what
                // the file is (its SHA-1 names it, its SHA-256 and size describe it).
                if let Some((sha256, size)) = batch.file_digests(&p.sha1)?
                    && (sha256.is_some_and(|s| s != p.sha256) || size != p.size)
                {
                    return Err(StoreError::Aborted(format!(
                        "payload {} does not match the metadata of its update (SHA-256 or size differ)",
                        p.sha1
                    )));
                }
                let target = content.path(&p.sha1, &p.extension);
                let folder = target.parent().expect("content paths have a folder");
                std::fs::create_dir_all(folder).map_err(|e| StoreError::io(folder, e))?;
                std::fs::rename(&p.path, &target).map_err(|e| StoreError::io(&target, e))?;
                batch.mark_present(&p.sha1)?;
            }
            for r in &bundle.manifest.removed {
                batch.record_removal(&r.update_id, &r.reason, &bundle.manifest.bundle_id)?;
            }
            let m = &bundle.manifest;
            batch.record_import(
                &ImportRecord {
                    bundle_id: m.bundle_id.clone(),
                    channel: m.channel.clone(),
                    sequence: m.sequence,
                    base_sequence: m.base_sequence,
                    signer_key_id: bundle.signer.to_string(),
                    created: m.created.clone(),
                    imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    revisions_added: batch.report().added,
                    files_added: walk.staged.len() as u64,
                    bytes: walk.bytes,
                },
                &manifest_json,
            )?;
            crash_point("import.before-commit");
            Ok(())
        };
        store.ingest_stream(rx.into_iter(), IngestOptions { commit_every: None, progress: None, before_commit: Some(&mut before_commit) })
    });

    let walk = outcome.lock().expect("no panic holds the outcome").take();
    let result = match (ingested, walk) {
        (_, Some(Err(e))) => Err(e),
        (_, Some(Ok(w))) if !w.problems.is_empty() => Err(BundleError::Problem(w.problems.into_iter().next().expect("not empty"))),
        (Err(StoreError::Oversized { document, message }), _) => {
            Err(Problem::unsafe_entry(format!("{document}: {message}; the bundle is refused")).into())
        }
        (Err(e), _) => Err(e.into()),
        (Ok(r), Some(Ok(w))) => {
            report.revisions_added = r.added;
            report.revisions_unchanged = r.unchanged;
            report.files_added = w.staged.len() as u64;
            report.bytes_read = w.bytes;
            Ok(report)
        }
        (Ok(_), None) => Err(BundleError::Invalid("the volume reader stopped without a result".into())),
    };
    crash_point("import.after-commit");
    let _ = std::fs::remove_dir_all(&staging);
    let mut report = result?;
    // The import is committed: the bundle's approval policy (with consent), then the automatic
    // approval rules, over what it brought.
    apply_policy(store, &bundle.manifest, options, &mut report);
    match store.apply_approval_rules() {
        Ok(outcomes) => report.rules = outcomes.into_iter().filter(|o| !o.approved.is_empty()).collect(),
        Err(e) => report.warnings.push(format!("the automatic approval rules did not run ({e}); run `ferry rules apply`")),
    }
    Ok(report)
}

/// The bundle's approval policy: applied with the importer's consent (`--apply-approvals`),
/// otherwise a warning that says it is there and how to apply it.
fn apply_policy(store: &mut Store, manifest: &super::manifest::Manifest, options: &ImportOptions, report: &mut ImportReport) {
    let Some(policy) = &manifest.approval_policy else { return };
    if !options.apply_approvals {
        report.warnings.push(format!(
            "the bundle carries an approval policy ({} rule(s), {} approval(s), {} decline(s)) signed by key {}; it was not applied: \
             import with --apply-approvals to apply it (see `ferry inspect`)",
            policy.rules.len(),
            policy.approve.len(),
            policy.decline.len(),
            report.signer_key_id
        ));
        return;
    }
    match super::approvals::apply(store, policy, &manifest.channel) {
        Ok(outcome) => {
            report.warnings.extend(outcome.warnings.iter().cloned());
            report.approval_policy = Some(outcome);
        }
        Err(e) => report.warnings.push(format!("the bundle's approval policy did not apply ({e}); import it again with --apply-approvals")),
    }
}

/// Flushes every staged payload to disk with one call (rather than one fsync per file).
fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let d = File::open(dir)?;
        // SAFETY: syncfs takes a file descriptor that stays open for the call.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        std::process::Command::new("sync").status().map(|_| ())
    }
}
