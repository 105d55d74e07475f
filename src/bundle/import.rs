//! `ferry import`: verify a bundle and load it into a store.
//!
//! One pass over the volumes, read in place: payloads are hashed while they are staged in
//! `tmp/import-<bundle id>/`, metadata is hash-checked, then parsed on all cores into one open
//! transaction. Just before it commits, every staged payload is checked against the update
//! metadata, and only when all of them agree do they move into the content tree; the transaction
//! then commits together with the import record. Killed at any point, nothing is visible and a
//! re-run finishes the job; a refused import leaves the content tree as it found it.

use super::error::{BundleError, Problem};
use super::integrity::{MemberSink, OpenedBundle, authenticate, check_expiry, walk_bundle};
use super::manifest::{Manifest, MemberEntry, MemberKind};
use super::metadata;
use super::minisign::PublicKey;
use super::pipe::BackgroundFileWriter;
use crate::catalog::{Guid, Sha1Digest, Sha256Digest};
use crate::faults::crash_point;
use crate::store::{
    ContentStore, ImportRecord, IngestItem, IngestOptions, IngestReport, IngestRows, Store,
    StoreError, StoreLocation, StoreResult, VerifiedFile,
};
use serde::Serialize;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::SyncSender;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub allow_expired: bool,
    /// Apply the approval policy the bundle carries (the importer's consent).
    pub apply_approvals: bool,
}

/// What an import did with the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportOutcome {
    Imported,
    /// The same bundle again: nothing to do.
    AlreadyImported,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    pub signer_key_id: String,
    pub outcome: ImportOutcome,
    pub revisions_added: u64,
    pub revisions_unchanged: u64,
    pub files_added: u64,
    pub bytes_read: u64,
    pub removed: u64,
    pub warnings: Vec<String>,
    /// What the automatic approval rules approved after the import.
    pub rules: Vec<crate::admin::RuleOutcome>,
    /// What the bundle's approval policy did (only with `apply_approvals`).
    pub approval_policy: Option<crate::admin::PolicyOutcome>,
}

impl ImportReport {
    fn new(bundle: &OpenedBundle) -> ImportReport {
        let m = &bundle.manifest;
        ImportReport {
            bundle: bundle.dir.clone(),
            bundle_id: m.bundle_id.to_string(),
            channel: m.channel.to_string(),
            sequence: m.sequence.get(),
            base_sequence: m.base_sequence.map(|s| s.get()),
            signer_key_id: bundle.signer.to_string(),
            outcome: ImportOutcome::Imported,
            revisions_added: 0,
            revisions_unchanged: 0,
            files_added: 0,
            bytes_read: 0,
            removed: m.removed.len() as u64,
            warnings: Vec::new(),
            rules: Vec::new(),
            approval_policy: None,
        }
    }
}

/// The keys a store trusts, plus those given on the command line.
pub fn trusted_keys(store: &Store, extra: &[PublicKey]) -> Result<Vec<PublicKey>, BundleError> {
    let mut keys: Vec<PublicKey> = extra.to_vec();
    for k in store.trusted_keys()? {
        let key = PublicKey::parse(&k.public_key).map_err(|e| {
            BundleError::Invalid(format!("trusted key {} in the store: {e}", k.key_id))
        })?;
        if !keys.iter().any(|x| x.key_id == key.key_id) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn no_trusted_key() -> BundleError {
    Problem::signature("no key is trusted: pass --trust KEY.pub, or add the exporter's key with `ferry trust add KEY.pub`").into()
}

fn needs_base(m: &Manifest) -> Option<BundleError> {
    let base = m.base_sequence?;
    Some(
        Problem::sequence(format!(
            "delta bundle {} of channel {} builds on bundle {base}, but this store has imported nothing from {}: import the full bundle first, or ask for a full export (ferry export --full)",
            m.sequence, m.channel, m.channel
        ))
        .into(),
    )
}

/// The sequence rules of DESIGN.md §2.
pub fn check_sequence(store: &Store, bundle: &OpenedBundle) -> Result<(), BundleError> {
    let m = &bundle.manifest;
    let Some(last) = store.last_import(m.channel.as_str())? else {
        return needs_base(m).map_or(Ok(()), Err);
    };
    if m.sequence.get() <= last.sequence {
        return Err(Problem::sequence(format!(
            "bundle {} of channel {} is not newer than the last import ({}, bundle id {}): a replayed or older bundle is refused",
            m.sequence, m.channel, last.sequence, last.bundle_id
        ))
        .into());
    }
    match m.base_sequence {
        Some(base) if base.get() != last.sequence => Err(Problem::sequence(format!(
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

/// Imports into the store at `location`, creating it when there is none. A SQLite store this
/// call created is removed again when the import is refused, so a refused bundle leaves nothing
/// behind (on PostgreSQL the import's one transaction is rolled back, and a data directory the
/// import made for the content tree goes again).
pub fn import_into(
    location: &StoreLocation,
    path: &Path,
    extra_trusted: &[PublicKey],
    options: &ImportOptions,
    progress: &mut (dyn FnMut(&str, u64, u64) + Send),
) -> Result<ImportReport, BundleError> {
    if location.may_exist() {
        let made = MadeFolders::before(location.data());
        let result = Store::open_at(location)
            .map_err(BundleError::from)
            .and_then(|mut store| import(&mut store, path, extra_trusted, options, progress));
        if result.is_err() {
            made.remove_if_empty();
        }
        return result;
    }
    // The checks that need no store come first: most refusals never create one.
    if extra_trusted.is_empty() {
        return Err(no_trusted_key());
    }
    let bundle = authenticate(path, extra_trusted)?;
    check_expiry(&bundle.manifest, chrono::Utc::now(), options.allow_expired)?;
    if let Some(e) = needs_base(&bundle.manifest) {
        return Err(e);
    }
    let data = location.data();
    let created_dir = !data.exists();
    let result = Store::open_or_create_at(location)
        .map_err(BundleError::from)
        .and_then(|mut store| import(&mut store, path, extra_trusted, options, progress));
    if result.is_err() {
        remove_new_store(data, created_dir);
    }
    result
}

/// The folders of a store's content tree that did not exist before an import: on PostgreSQL,
/// where the data directory holds only them, a refused import removes those it made.
struct MadeFolders(Vec<PathBuf>);

impl MadeFolders {
    fn before(data: &Path) -> MadeFolders {
        let content = ContentStore::in_data_dir(data);
        let folders = [content.staging_dir(), content.root().to_path_buf(), data.to_path_buf()];
        MadeFolders(folders.into_iter().filter(|f| !f.exists()).collect())
    }

    /// Only the empty ones, innermost first: another front end on the database may have put
    /// content there meanwhile.
    fn remove_if_empty(&self) {
        for folder in &self.0 {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

/// Removes what `Store::open_or_create` made in `data` (everything, when it made `data` too).
fn remove_new_store(data: &Path, created_dir: bool) {
    if created_dir {
        let _ = std::fs::remove_dir_all(data);
        return;
    }
    crate::store::remove_files(data);
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
        return Err(no_trusted_key());
    }
    let bundle = authenticate(path, &trusted)?;
    let m = &bundle.manifest;
    let mut report = ImportReport::new(&bundle);
    let staging = store.content().staging_dir().join(format!("import-{}", m.bundle_id));
    if store.import_by_id(&m.bundle_id.to_string())?.is_some() {
        // A crash right after the commit may have left the staging directory behind.
        let _ = std::fs::remove_dir_all(&staging);
        return already_imported(store, &bundle, options, report);
    }
    if let Some(w) = check_expiry(m, chrono::Utc::now(), options.allow_expired)? {
        report.warnings.push(w);
    }
    check_sequence(store, &bundle)?;
    let previous = super::held::channel_selections(store)?.remove(m.channel.as_str());
    report.warnings.extend(super::held::selection_changes(previous.as_ref(), &m.selection));

    // Whatever an interrupted run staged is read again from the bundle.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| BundleError::io(&staging, e))?;
    let result = walk_and_ingest(store, &bundle, &staging, progress);
    crash_point("import.after-commit");
    let _ = std::fs::remove_dir_all(&staging);
    let (ingested, walk) = result?;
    report.revisions_added = ingested.added;
    report.revisions_unchanged = ingested.unchanged;
    report.files_added = walk.staged.len() as u64;
    report.bytes_read = walk.bytes;
    // The import is committed: the bundle's approval policy (with consent), then the automatic
    // approval rules, over what it brought.
    apply_policy(store, &bundle.manifest, options, &mut report);
    match crate::admin::AdminService::new(store).apply_approval_rules() {
        Ok(outcomes) => {
            report.rules = outcomes.into_iter().filter(|o| !o.approved.is_empty()).collect()
        }
        Err(e) => report.warnings.push(format!(
            "the automatic approval rules did not run ({e}); run `ferry rules apply`"
        )),
    }
    Ok(report)
}

/// The same bundle again. Consent may come with a second run: the policy applies then, but only
/// from the channel's newest bundle (an older one would undo later decisions) and unexpired.
fn already_imported(
    store: &mut Store,
    bundle: &OpenedBundle,
    options: &ImportOptions,
    mut report: ImportReport,
) -> Result<ImportReport, BundleError> {
    let m = &bundle.manifest;
    report.outcome = ImportOutcome::AlreadyImported;
    report.removed = 0;
    if !options.apply_approvals {
        return Ok(report);
    }
    let newest =
        store.imports()?.iter().filter(|i| m.channel == *i.channel).map(|i| i.sequence).max();
    if newest != Some(m.sequence.get()) {
        report.warnings.push(format!(
            "a newer bundle of channel {} was imported since (sequence {}); this bundle's approval policy stays unapplied",
            m.channel,
            newest.unwrap_or_default()
        ));
        return Ok(report);
    }
    if let Some(w) = check_expiry(m, chrono::Utc::now(), options.allow_expired)? {
        report.warnings.push(w);
    }
    apply_policy(store, m, options, &mut report);
    Ok(report)
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
    /// The ingest stopped taking documents: its own error says why.
    ingest_stopped: bool,
    /// The SHA-1 of each staged file, as the writer hashed it.
    written: std::collections::HashMap<PathBuf, Sha1Digest>,
}

/// A payload read and verified against its signed SHA-256, waiting in the staging directory
/// for the commit.
struct StagedPayload {
    path: PathBuf,
    member: String,
    /// The SHA-1 its name says, and the one its bytes have (hashed while staged).
    sha1: Sha1Digest,
    written_sha1: Option<Sha1Digest>,
    sha256: Sha256Digest,
    size: u64,
    extension: String,
}

impl ImportSink {
    fn staging_path(&self, member: &MemberEntry) -> PathBuf {
        // A SafePath holds only [A-Za-z0-9._-] and '/', never '~': one flat name per member, and
        // no two members share one (with '_', `content/A5/X` and `content_A5_X` did).
        self.staging.join(member.path.as_str().replace('/', "~"))
    }

    /// Sends the documents of a staged, hash-checked metadata member to the ingest pipeline.
    fn emit_documents(&mut self, member: &MemberEntry, path: &Path) -> Result<(), BundleError> {
        let mut input = BufReader::with_capacity(
            1 << 20,
            File::open(path).map_err(|e| BundleError::io(path, e))?,
        );
        let declared = member.uncompressed_size.unwrap_or(0);
        let (mut total, mut count) = (0u64, 0u64);
        loop {
            let record = metadata::read_record(&mut input)
                .map_err(|e| Problem::unsafe_entry(format!("metadata {}: {e}", member.path)))?;
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
            let item =
                IngestItem::compressed(format!("{} document {count}", member.path), frame, size);
            if self.documents.send(Ok(item)).is_err() {
                self.ingest_stopped = true;
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

    /// Waits for the writer thread to finish every staged file; the first write error, if any.
    fn finish_writes(&mut self) -> Result<(), BundleError> {
        let writer = std::mem::take(&mut self.writer);
        for (path, outcome) in writer.finish() {
            match outcome {
                // A file continued later is reported again, whole: the last report counts.
                Ok(file) => drop(self.written.insert(path, file.sha1)),
                Err(e) => {
                    return Err(BundleError::Invalid(format!(
                        "staging failed: {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

impl MemberSink for ImportSink {
    fn begin(
        &mut self,
        member: &MemberEntry,
        chunk: usize,
    ) -> Result<Option<&mut dyn Write>, BundleError> {
        let path = self.staging_path(member);
        if chunk == 0 || self.open.as_ref() != Some(&path) {
            // Later chunks of a member continue the file its first chunk started.
            self.writer.open(&path, chunk > 0).map_err(|e| BundleError::io(&path, e))?;
            self.open = Some(path);
        }
        Ok(Some(&mut self.writer as &mut dyn Write))
    }

    fn complete(
        &mut self,
        member: &MemberEntry,
        digests: &VerifiedFile,
    ) -> Result<(), BundleError> {
        let path = self.open.take().ok_or_else(|| {
            BundleError::Invalid(format!("{}: completed without being begun", member.path))
        })?;
        // The writer thread finishes the file on its own; `finish` reports any write error
        // before anything is committed. No fsync per file: one file-system sync before the
        // commit covers them all.
        self.writer.close().map_err(|e| BundleError::io(&path, e))?;
        match member.kind {
            MemberKind::Metadata => {
                // The documents are read back now: wait for this file's bytes.
                self.finish_writes()?;
                let result = self.emit_documents(member, &path);
                let _ = std::fs::remove_file(&path);
                result
            }
            MemberKind::Payload => {
                // The walk's plan admitted only payloads named content/XX/<SHA1>.<ext>.
                let (sha1, extension) = member.payload_name().ok_or_else(|| {
                    Problem::unsafe_entry(format!(
                        "payload {} is not named content/XX/<its SHA-1>.<ext>",
                        member.path
                    ))
                })?;
                self.staged.push(StagedPayload {
                    path,
                    member: member.path.to_string(),
                    sha1,
                    written_sha1: None,
                    sha256: digests.sha256,
                    size: digests.size,
                    extension: extension.to_string(),
                });
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

/// How the volume walk ended.
enum Walked {
    Done(WalkOutcome),
    Failed(BundleError),
    /// The walk stopped because the ingest stopped taking documents; the ingest says why.
    IngestStopped,
}

/// Reads every volume on one thread while the ingest parses and writes on the others; commits
/// only when the walk found nothing wrong and every payload agrees with the metadata.
fn walk_and_ingest(
    store: &mut Store,
    bundle: &OpenedBundle,
    staging: &Path,
    progress: &mut (dyn FnMut(&str, u64, u64) + Send),
) -> Result<(IngestReport, WalkOutcome), BundleError> {
    let total_bytes =
        bundle.manifest.volumes.iter().fold(0u64, |sum, v| sum.saturating_add(v.size));
    let walked: Mutex<Option<Walked>> = Mutex::new(None);
    let refusal: Mutex<Option<Problem>> = Mutex::new(None);
    let moved: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let carried: Mutex<HashSet<Guid>> = Mutex::new(HashSet::new());
    let content = store.content().clone();
    let progress = Mutex::new(progress);
    let ingested = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<StoreResult<IngestItem>>(256);
        let (walked_ref, progress_ref) = (&walked, &progress);
        scope.spawn(move || {
            let mut report = |done| {
                if let Ok(mut p) = progress_ref.lock() {
                    (*p)("reading volumes", done, total_bytes);
                }
            };
            walk_volumes(bundle, staging, tx, &mut report, walked_ref);
        });

        let mut before_commit = |batch: &mut dyn IngestRows, _done: u64| -> StoreResult<()> {
            let guard = walked.lock().expect("no panic holds the walk outcome");
            let Some(Walked::Done(walk)) = guard.as_ref() else {
                return Err(StoreError::Aborted("the volumes did not check out".into()));
            };
            if !walk.problems.is_empty() {
                return Err(StoreError::Aborted("the volumes did not check out".into()));
            }
            let carried = carried.lock().expect("no panic holds the carried updates");
            if let Err(p) = check_published(&bundle.manifest, &carried) {
                *refusal.lock().expect("no panic holds the refusal") = Some(p);
                return Err(StoreError::Aborted("a published update is not in the bundle".into()));
            }
            let targets = match check_payloads(batch, &content, &walk.staged) {
                Ok(targets) => targets,
                Err(Stop::Refused(p)) => {
                    *refusal.lock().expect("no panic holds the refusal") = Some(p);
                    return Err(StoreError::Aborted(
                        "a payload does not agree with the metadata".into(),
                    ));
                }
                Err(Stop::Store(e)) => return Err(e),
            };
            sync_file_system(staging).map_err(|e| StoreError::io(staging, e))?;
            move_payloads(
                batch,
                &content,
                &walk.staged,
                &targets,
                &mut moved.lock().expect("no panic holds the moved list"),
            )?;
            record_import(batch, bundle, walk)?;
            crash_point("import.before-commit");
            Ok(())
        };
        store.ingest_stream(
            Box::new(rx.into_iter()),
            IngestOptions {
                commit_every: None,
                progress: None,
                before_commit: Some(&mut before_commit),
                on_document: Some(&mut |update: &crate::catalog::Update| {
                    if update.is_locally_published() {
                        let mut carried =
                            carried.lock().expect("no panic holds the carried updates");
                        carried.insert(update.identity.update_id);
                    }
                }),
            },
        )
    });

    let walked = walked.into_inner().expect("no panic holds the walk outcome");
    let result =
        settle(ingested, walked, refusal.into_inner().expect("no panic holds the refusal"));
    if result.is_err() {
        // The transaction rolled back: files it had moved into the content tree go too.
        for target in moved.into_inner().expect("no panic holds the moved list") {
            let _ = std::fs::remove_file(target);
        }
    }
    result
}

/// Walks the volumes (on its own thread): documents go to the ingest through `documents`,
/// payloads to `staging`, and the outcome to `walked`. Only then does the document stream
/// close (the sink drops as this returns), so the ingest's commit always finds the outcome.
fn walk_volumes(
    bundle: &OpenedBundle,
    staging: &Path,
    documents: std::sync::mpsc::SyncSender<StoreResult<IngestItem>>,
    progress: &mut dyn FnMut(u64),
    walked: &Mutex<Option<Walked>>,
) {
    let mut sink = ImportSink {
        staging: staging.to_path_buf(),
        documents,
        writer: BackgroundFileWriter::new(),
        open: None,
        staged: Vec::new(),
        ingest_stopped: false,
        written: std::collections::HashMap::new(),
    };
    let mut bytes = 0u64;
    let mut report = |done| {
        bytes = done;
        progress(done);
    };
    let result = walk_bundle(bundle, &mut sink, super::integrity::WalkMode::IMPORT, &mut report);
    let result = result.and_then(|problems| sink.finish_writes().map(|()| problems));
    let outcome = match result {
        Ok(problems) => {
            let mut staged = std::mem::take(&mut sink.staged);
            for p in &mut staged {
                p.written_sha1 = sink.written.get(&p.path).copied();
            }
            Walked::Done(WalkOutcome { problems, staged, bytes })
        }
        Err(_) if sink.ingest_stopped => Walked::IngestStopped,
        Err(e) => Walked::Failed(e),
    };
    *walked.lock().expect("no panic holds the walk outcome") = Some(outcome);
    drop(sink);
}

/// One result from the ingest's and the walk's: the walk's problems first (they say which
/// volume), then a refusal of the commit, then the ingest's own error.
fn settle(
    ingested: StoreResult<IngestReport>,
    walked: Option<Walked>,
    refusal: Option<Problem>,
) -> Result<(IngestReport, WalkOutcome), BundleError> {
    match (ingested, walked) {
        (_, Some(Walked::Failed(e))) => Err(e),
        (_, Some(Walked::Done(w))) if !w.problems.is_empty() => {
            Err(BundleError::Problem(w.problems.into_iter().next().expect("not empty")))
        }
        (Err(_), _) if refusal.is_some() => Err(refusal.expect("checked").into()),
        (Err(e), _) => Err(ingest_error(e)),
        (Ok(r), Some(Walked::Done(w))) => Ok((r, w)),
        (Ok(_), _) => {
            Err(BundleError::Invalid("the volume reader stopped without a result".into()))
        }
    }
}

/// An ingest error, as a bundle problem where the bundle's content caused it.
fn ingest_error(e: StoreError) -> BundleError {
    match e {
        StoreError::Oversized { document, message } => {
            Problem::unsafe_entry(format!("{document}: {message}; the bundle is refused")).into()
        }
        StoreError::Document { document, source } => Problem::unsafe_entry(format!(
            "{document}: {source}; the bundle is refused (its signer sent a document this ferry does not accept: ask for a new export)"
        ))
        .into(),
        other => other.into(),
    }
}

/// Why payloads cannot be committed.
enum Stop {
    /// The bundle contradicts itself: refused with its exit code.
    Refused(Problem),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

/// Checks every staged payload against what the update metadata (in this transaction) says the
/// file is, before any of them moves: its size, its SHA-256, its SHA-1 (its name), and the
/// extension it is served under. Returns each one's place in the
/// content tree.
fn check_payloads(
    batch: &mut dyn IngestRows,
    content: &ContentStore,
    staged: &[StagedPayload],
) -> Result<Vec<PathBuf>, Stop> {
    let mut targets = Vec::with_capacity(staged.len());
    for p in staged {
        let Some(described) = batch.described_file(&p.sha1)? else {
            return Err(Stop::Refused(Problem::unsafe_entry(format!(
                "payload {} is not a file of any update in the bundle or the store; the bundle is refused",
                p.member
            ))));
        };
        if !described.extension.eq_ignore_ascii_case(&p.extension) {
            return Err(Stop::Refused(Problem::unsafe_entry(format!(
                "payload {} is stored as .{}, but its update names the file .{}; the bundle is refused",
                p.member, p.extension, described.extension
            ))));
        }
        let sha256_differs = described.sha256.is_some_and(|s| s != p.sha256);
        // The signed SHA-256 pins the bytes; the SHA-1 names the file, and the metadata agrees on
        // the name: the bytes must have it too.
        let sha1_differs = p.written_sha1 != Some(p.sha1);
        if described.size != p.size || sha256_differs || sha1_differs {
            return Err(Stop::Refused(Problem::integrity(format!(
                "payload {} does not match the metadata of its update (size or digest differ): the bundle contradicts itself; ask the exporter for a new bundle",
                p.member
            ))));
        }
        targets.push(content.path(&p.sha1, &described.extension));
    }
    Ok(targets)
}

/// Moves checked payloads into the content tree and marks them present (same transaction).
/// `moved` collects the files that were not there before, for removal if the commit fails.
fn move_payloads(
    batch: &mut dyn IngestRows,
    content: &ContentStore,
    staged: &[StagedPayload],
    targets: &[PathBuf],
    moved: &mut Vec<PathBuf>,
) -> StoreResult<()> {
    for (p, target) in staged.iter().zip(targets) {
        let existed = content.place(&p.path, target)?;
        if !existed {
            moved.push(target.clone());
        }
        batch.mark_present(&p.sha1)?;
    }
    Ok(())
}

/// Refuses a manifest listing a published update twice, or one whose document the bundle does
/// not carry as a locally published update (`carried`: the ids of those it does): no ferry
/// writes such a manifest (11), and nothing is recorded.
pub(super) fn check_published(manifest: &Manifest, carried: &HashSet<Guid>) -> Result<(), Problem> {
    let mut listed = HashSet::new();
    if let Some(p) = manifest.published.iter().find(|p| !listed.insert(p.update_id.guid())) {
        return Err(Problem::integrity(format!(
            "the manifest lists published update {} twice: the bundle is damaged or forged and is refused; ask the exporter for a new bundle",
            p.update_id
        )));
    }
    match manifest.published.iter().find(|p| !carried.contains(&p.update_id.guid())) {
        Some(p) => Err(Problem::integrity(format!(
            "the manifest lists published update {} ({} / {}), but the bundle does not carry its document as a locally published update: the bundle is damaged or forged and is refused; ask the exporter for a new bundle",
            p.update_id,
            p.vendor.as_str(),
            p.product.as_str()
        ))),
        None => Ok(()),
    }
}

/// The import record, the bundle's removals and its published updates, in the committing
/// transaction.
fn record_import(
    batch: &mut dyn IngestRows,
    bundle: &OpenedBundle,
    walk: &WalkOutcome,
) -> StoreResult<()> {
    let m = &bundle.manifest;
    let bundle_id = m.bundle_id.to_string();
    for r in &m.removed {
        batch.record_removal(&r.update_id.to_string(), &r.reason, &bundle_id)?;
    }
    for p in &m.published {
        batch.record_published(&p.record())?;
    }
    let record = ImportRecord {
        bundle_id,
        channel: m.channel.to_string(),
        sequence: m.sequence.get(),
        base_sequence: m.base_sequence.map(|s| s.get()),
        signer_key_id: bundle.signer.to_string(),
        created: m.created.clone(),
        imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        revisions_added: batch.report().added,
        files_added: walk.staged.len() as u64,
        bytes: walk.bytes,
    };
    batch.record_import(&record, &String::from_utf8_lossy(&bundle.manifest_bytes))
}

/// The bundle's approval policy: applied with the importer's consent (`--apply-approvals`),
/// otherwise a warning that says it is there and how to apply it.
fn apply_policy(
    store: &mut Store,
    manifest: &Manifest,
    options: &ImportOptions,
    report: &mut ImportReport,
) {
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
    match crate::admin::AdminService::new(store).apply_policy(policy, manifest.channel.as_str()) {
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
