//! `ferry export`, the packaging half: select from the cache store, carry what the channel has
//! not carried yet, write volumes, sign the manifest.
//!
//! Invariant: a bundle directory appears under its final name only when complete and signed;
//! until then it is `<name>.partial`. Channel state advances only after that rename.

use super::error::BundleError;
use super::manifest::*;
use super::metadata;
use super::minisign::SecretKey;
use super::names::{BundleId, ChannelName, Sequence};
use super::profile::Profile;
use super::safe_path::SafePath;
use super::select::{LeftBehind, PublishedName, Selected, select};
use super::volumes::{VolumeFormat, VolumeWriter};
use crate::catalog::Guid;
use crate::faults::crash_point;
use crate::store::{
    CatalogRevision, ExportRecord, FileSummary, PublishedRecord, Store, StoreError,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Metadata members are cut at about this size so a volume holds whole members.
const METADATA_MEMBER_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub full: bool,
    pub volume_size: u64,
    pub format: VolumeFormat,
    /// Overrides the profile's expiry.
    pub expires_secs: Option<u64>,
    pub upstream_url: Option<String>,
    pub upstream_anchor: Option<String>,
    /// What the operator says of a bundle an earlier, interrupted export recorded but that is
    /// neither in its directory nor half-written beside it (moved away or deleted).
    pub pending: PendingChoice,
}

/// The outcome of an interrupted export that only the operator knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PendingChoice {
    /// Stop and ask (the default): guessing wrong loses updates or breaks the chain.
    #[default]
    Ask,
    /// The bundle was complete and went to the isolated side: it counts.
    Carried,
    /// The bundle never left: write it again.
    Lost,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            full: false,
            volume_size: 4000 << 20,
            format: VolumeFormat::Tar,
            expires_secs: None,
            upstream_url: None,
            upstream_anchor: None,
            pending: PendingChoice::Ask,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// What became of bundles an interrupted export had recorded.
    pub notes: Vec<String>,
}

/// Progress of an export: what is happening and bytes done of bytes to do.
pub type ExportProgress<'a> = dyn FnMut(&str, u64, u64) + 'a;

/// What the next bundle of a channel carries, decided from the cache store and the profile,
/// before anything is written: the same for a dry run and a real export.
pub struct Plan {
    pub catalog: Vec<CatalogRevision>,
    pub selected: Selected,
    pub sequence: Sequence,
    pub base_sequence: Option<Sequence>,
    /// Revisions (indices into `catalog`) the chain has not carried yet.
    pub to_carry: Vec<usize>,
    /// Payload files the chain has not carried yet, with one revision that needs each.
    pub payloads: Vec<(FileSummary, usize)>,
    pub removed: Vec<Removal>,
    /// Localized properties and EULAs travel in these languages only.
    pub languages: Vec<crate::catalog::Language>,
    /// The published updates among the revisions to carry (`published = true`).
    pub published: Vec<PublishedEntry>,
}

fn key_of(r: &CatalogRevision) -> String {
    format!("{}/{}", r.update_id, r.revision_number)
}

/// Plans the next bundle of the profile's channel from the channel state as it stands.
pub fn plan(
    cache: &Store,
    profile: &Profile,
    options: &ExportOptions,
) -> Result<Plan, BundleError> {
    let catalog = cache.catalog_revisions()?;
    let approved = super::approvals::approved_for_payloads(cache, profile)
        .map_err(|e| BundleError::Invalid(format!("{}: {e}", profile.channel)))?;
    let records = published_records(cache, profile)?;
    let names: Vec<PublishedName> = (records.iter())
        .map(|r| PublishedName {
            update_id: r.update_id.as_str(),
            vendor: &r.vendor,
            product: &r.product,
        })
        .collect();
    let selected =
        select(&catalog, profile, &approved, &names).map_err(|e| BundleError::Invalid(e.0))?;
    let channel = &profile.channel;

    // Channel state: a delta carries what the chain since the last full bundle has not.
    let chain = cache.export_chain(channel.as_str())?;
    let is_delta = !options.full && !chain.is_empty();
    let base_sequence = if is_delta {
        chain.last().map(|b| stored_sequence(channel, b.sequence)).transpose()?
    } else {
        None
    };
    let sequence = stored_sequence(channel, cache.last_export_sequence(channel.as_str())? + 1)?;
    let from = chain.first().map(|b| b.sequence).unwrap_or(u64::MAX);
    let (carried_revisions, carried_files, removed_before) = if is_delta {
        let carried = |kind| cache.carried(channel.as_str(), kind, from);
        (carried("revision")?, carried("file")?, carried("removal")?)
    } else {
        Default::default()
    };
    let to_carry: Vec<usize> = selected
        .revisions
        .iter()
        .copied()
        .filter(|&i| !carried_revisions.contains(&key_of(&catalog[i])))
        .collect();
    let payloads: Vec<_> = selected
        .payloads
        .iter()
        .filter(|(f, _)| !carried_files.contains(&f.sha1.to_hex_upper()))
        .cloned()
        .collect();
    let removed = removals(&catalog, &selected, &carried_revisions, &removed_before);
    let published = published_entries(&catalog, &to_carry, &records, &selected.published)?;
    Ok(Plan {
        catalog,
        selected,
        sequence,
        base_sequence,
        to_carry,
        payloads,
        removed,
        languages: profile.languages.clone(),
        published,
    })
}

/// The cache's published updates; a name of the profile's `[published]` table that matches
/// none is warned about (a typo carries nothing).
fn published_records(
    cache: &Store,
    profile: &Profile,
) -> Result<Vec<PublishedRecord>, BundleError> {
    let all = cache.published()?;
    let names: Vec<(&str, &str)> =
        all.iter().map(|r| (r.vendor.as_str(), r.product.as_str())).collect();
    for name in profile.published.unmatched(&names) {
        tracing::warn!(
            "profile of channel {}: [published] names {name:?}, which is no vendor or product published here (`ferry publish list`)",
            profile.channel
        );
    }
    Ok(all)
}

/// The published updates the profile carries (`selected`) whose revisions the bundle carries
/// (a delta carries one again only with a new revision), as the manifest lists them.
fn published_entries(
    catalog: &[CatalogRevision],
    to_carry: &[usize],
    records: &[PublishedRecord],
    selected: &HashSet<String>,
) -> Result<Vec<PublishedEntry>, BundleError> {
    let carried: HashSet<&str> = to_carry.iter().map(|&i| catalog[i].update_id.as_str()).collect();
    records
        .iter()
        .filter(|r| carried.contains(r.update_id.as_str()) && selected.contains(r.update_id.as_str()))
        .map(|r| {
            PublishedEntry::from_record(r).ok_or_else(|| {
                BundleError::Invalid(format!(
                    "published update {}: its vendor, product, installer name, version or date is not one a manifest can hold",
                    r.update_id
                ))
            })
        })
        .collect()
}

/// What the next bundle would hold, from `ferry export --dry-run`: the same plan and the same
/// volume layout as the export, without writing or reading payloads. Its figures equal the
/// export's to the byte (tested).
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub channel: String,
    /// `full` or `delta`.
    pub kind: &'static str,
    pub sequence: u64,
    pub base_sequence: Option<u64>,
    /// Software and driver updates the filter chose (as `summary.software_updates`).
    pub updates: u64,
    pub revisions: u64,
    pub by_classification: BTreeMap<String, u64>,
    pub by_product: BTreeMap<String, u64>,
    pub payload_files: u64,
    pub payload_bytes: u64,
    /// Payload files the bundle needs that the cache does not hold yet (a sync downloads them).
    pub payload_files_missing: u64,
    pub metadata_bytes: u64,
    /// Bytes of all volumes (the manifest and signature add a few kilobytes).
    pub total_bytes: u64,
    pub volumes: u64,
    pub volume_bytes: Vec<u64>,
    pub volume_size: u64,
    pub removed: u64,
    /// Updates published in the cache that travel (`published = true`; counted in `updates`).
    pub published: u64,
    /// What each setting of the profile left behind.
    pub left_behind: LeftBehind,
    pub notes: Vec<String>,
}

/// Plans the next bundle and lays out its volumes without writing anything.
pub fn dry_run(
    cache: &Store,
    profile: &Profile,
    options: &ExportOptions,
) -> Result<DryRun, BundleError> {
    let plan = plan(cache, profile, options)?;
    let notes = cache
        .pending_exports(profile.channel.as_str())?
        .into_iter()
        .map(|p| {
            format!("bundle {} ({}) of an interrupted export is not settled yet; the figures assume it did not count", p.sequence, p.path)
        })
        .collect();
    let mut volumes = VolumeWriter::dry_run(options.format, options.volume_size)
        .map_err(|e| BundleError::Invalid(e.to_string()))?;
    let mut quiet = |_: &str, _: u64, _: u64| {};
    let mut members = pack_metadata(cache, &plan, &mut volumes, &mut quiet)?;
    members.extend(pack_payloads(cache, &plan, &mut volumes, &mut quiet)?);
    let volume_list = volumes.finish().map_err(|e| BundleError::Invalid(e.to_string()))?;
    let summary = summarize(
        &plan.catalog,
        &plan.selected,
        &plan.to_carry,
        &plan.payloads,
        &members,
        &volume_list,
    );
    let mut by_product = BTreeMap::new();
    for u in update_entries(&plan.catalog, &plan.selected, &plan.to_carry) {
        for p in u.products {
            *by_product.entry(p).or_insert(0) += 1;
        }
    }
    Ok(DryRun {
        channel: profile.channel.to_string(),
        kind: if plan.base_sequence.is_some() { "delta" } else { "full" },
        sequence: plan.sequence.get(),
        base_sequence: plan.base_sequence.map(Sequence::get),
        updates: summary.software_updates,
        revisions: summary.revisions,
        by_classification: summary.by_classification,
        by_product,
        payload_files: summary.payload_files,
        payload_bytes: summary.payload_bytes,
        payload_files_missing: plan.payloads.iter().filter(|(f, _)| !f.present).count() as u64,
        metadata_bytes: summary.metadata_bytes,
        total_bytes: summary.total_bytes,
        volumes: volume_list.len() as u64,
        volume_bytes: volume_list.iter().map(|v| v.size).collect(),
        volume_size: options.volume_size,
        removed: plan.removed.len() as u64,
        published: plan.published.len() as u64,
        left_behind: plan.selected.left_behind,
        notes,
    })
}

pub fn export(
    cache: &mut Store,
    profile: &Profile,
    key: &SecretKey,
    out: &Path,
    options: &ExportOptions,
    progress: &mut ExportProgress<'_>,
) -> Result<ExportReport, BundleError> {
    let channel = &profile.channel;
    let _lock = lock_channel(cache, channel)?;
    let notes = settle_pending_exports(cache, channel, options.pending)?;
    let plan = plan(cache, profile, options)?;
    let (catalog, sequence) = (&plan.catalog, plan.sequence);

    let missing: Vec<String> = plan
        .payloads
        .iter()
        .filter(|(f, _)| !f.present)
        .take(5)
        .map(|(f, i)| format!("{} of {}", f.file_name, describe(&catalog[*i])))
        .collect();
    if !missing.is_empty() {
        let count = plan.payloads.iter().filter(|(f, _)| !f.present).count();
        return Err(BundleError::Invalid(format!(
            "{count} payload file(s) the profile selects are not in the cache (e.g. {}): sync with downloads first, or set payloads = \"none\" in {}",
            missing.join("; "),
            profile.channel
        )));
    }

    std::fs::create_dir_all(out).map_err(|e| BundleError::io(out, e))?;
    // Recorded in the channel state as an absolute path: the next export may run elsewhere.
    let out = &std::fs::canonicalize(out).map_err(|e| BundleError::io(out, e))?;
    let name = directory_name(channel, sequence);
    let final_dir = out.join(&name);
    if final_dir.exists() {
        return Err(BundleError::Invalid(format!(
            "{} already exists, but channel {channel} has no record of bundle {sequence}: if it went to the isolated side, \
             the channel state of this cache is not the one that wrote it; otherwise move it away and export again",
            final_dir.display()
        )));
    }
    let partial = out.join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| BundleError::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| BundleError::io(&partial, e))?;
    let manifest = match write_bundle(cache, &plan, profile, key, &partial, options, progress) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };

    // Recorded (pending) before the rename, confirmed after: killed anywhere in between, the
    // next export of the channel finds out which of the two happened (`settle_pending_exports`).
    let record = ExportRecord {
        channel: channel.to_string(),
        sequence: sequence.get(),
        bundle_id: manifest.bundle_id.to_string(),
        base_sequence: plan.base_sequence.map(Sequence::get),
        created: manifest.created.clone(),
        path: final_dir.display().to_string(),
    };
    let carried = [
        ("revision", plan.to_carry.iter().map(|&i| key_of(&catalog[i])).collect::<Vec<_>>()),
        ("file", plan.payloads.iter().map(|(f, _)| f.sha1.to_hex_upper()).collect()),
        ("removal", manifest.removed.iter().map(|r| r.update_id.to_string()).collect()),
    ];
    cache.record_pending_export(&record, &carried)?;
    crash_point("export.recorded");
    std::fs::rename(&partial, &final_dir).map_err(|e| BundleError::io(&final_dir, e))?;
    crash_point("export.renamed");
    cache.confirm_export(channel.as_str(), sequence.get())?;
    Ok(ExportReport { dir: final_dir, manifest, notes })
}

/// One export of a channel at a time: two would take the same sequence number and write the same
/// directory. The lock is the open file; it goes when the export ends, however it ends.
fn lock_channel(cache: &Store, channel: &ChannelName) -> Result<std::fs::File, BundleError> {
    let lock = format!("export-{channel}");
    cache.content().lock(&lock, false).map_err(StoreError::from)?.ok_or_else(|| {
        BundleError::Invalid(format!(
            "another export of channel {channel} is running from this cache ({lock}.lock is locked): wait for it to finish"
        ))
    })
}

/// A sequence number read from the channel state, or the channel's next one.
fn stored_sequence(channel: &ChannelName, n: u64) -> Result<Sequence, BundleError> {
    Sequence::new(n)
        .map_err(|e| BundleError::Invalid(format!("channel {channel}: {e}; start a new channel")))
}

/// Settles the bundles an earlier export of `channel` recorded but did not confirm. One whose
/// directory holds it under its final name got out and counts; one still half-written beside it
/// (`.partial`) never left. Anything else (moved, deleted) only the operator knows: guessing
/// "never left" would write another bundle of that number and lose what the first carried at a
/// site that imported it, so the export stops and asks (`PendingChoice`).
fn settle_pending_exports(
    cache: &mut Store,
    channel: &ChannelName,
    choice: PendingChoice,
) -> Result<Vec<String>, BundleError> {
    let mut notes = Vec::new();
    for pending in cache.pending_exports(channel.as_str())? {
        let dir = Path::new(&pending.path);
        let written = super::integrity::read_manifest(dir).is_ok_and(|(_, m, _)| {
            m.bundle_id.to_string() == pending.bundle_id && m.sequence.get() == pending.sequence
        });
        let half_written = dir.file_name().is_some_and(|n| {
            dir.with_file_name(format!("{}.partial", n.to_string_lossy())).is_dir()
        });
        let carried = match (written, half_written, choice) {
            (true, _, _) | (false, false, PendingChoice::Carried) => true,
            (false, true, _) | (false, false, PendingChoice::Lost) => false,
            (false, false, PendingChoice::Ask) => {
                return Err(BundleError::Invalid(format!(
                    "bundle {} of channel {channel} (id {}) was being written to {} when an export stopped, and it is not there: \
                     if that bundle was complete and went to the isolated side, export again with --confirm-pending; \
                     if it never left, with --forget-pending (it is then written again)",
                    pending.sequence, pending.bundle_id, pending.path
                )));
            }
        };
        if carried {
            cache.confirm_export(channel.as_str(), pending.sequence)?;
            notes.push(format!(
                "bundle {} of channel {channel} ({}) was written; it counts now",
                pending.sequence, pending.path
            ));
        } else {
            cache.discard_pending_export(channel.as_str(), pending.sequence)?;
            notes.push(format!(
                "bundle {} of channel {channel} ({}) never left; it is written again",
                pending.sequence, pending.path
            ));
        }
    }
    Ok(notes)
}

/// A cached payload that is missing or damaged (a crash before the disk had it, a bad sector)
/// leaves the cache and is marked missing, so the next sync downloads it again; the error that
/// stops the export says so.
fn damaged_payload(
    cache: &Store,
    file: &crate::store::FileSummary,
    path: &Path,
    owner: &CatalogRevision,
    problem: String,
) -> Result<BundleError, BundleError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BundleError::io(path, e)),
    }
    cache.mark_file_present(&file.sha1, false)?;
    Ok(BundleError::Invalid(format!(
        "{}: the cached payload {} of {} {problem}; it is out of the cache now: run the export again (without \
         --no-sync) to download it again (export stopped, no bundle written)",
        path.display(),
        file.file_name,
        describe(owner),
    )))
}

fn describe(r: &CatalogRevision) -> String {
    match (&r.kb_article, &r.title) {
        (Some(kb), _) => format!("KB{kb}"),
        (None, Some(t)) => t.clone(),
        (None, None) => r.update_id.clone(),
    }
}

/// Updates an earlier bundle carried that the channel now withdraws: expired upstream, or no
/// longer matching the profile. (Superseded updates stay: declining them is the administrator's
/// call, as in WSUS.)
fn removals(
    catalog: &[CatalogRevision],
    selected: &Selected,
    carried: &HashSet<String>,
    removed_before: &HashSet<String>,
) -> Vec<Removal> {
    let carried_updates: HashSet<&str> =
        carried.iter().filter_map(|k| k.split_once('/').map(|(u, _)| u)).collect();
    let selected_updates: HashSet<&str> =
        selected.revisions.iter().map(|&i| catalog[i].update_id.as_str()).collect();
    let mut out: Vec<Removal> = catalog
        .iter()
        .filter(|r| r.is_latest && matches!(r.update_type.as_str(), "Software" | "Driver"))
        .filter(|r| {
            carried_updates.contains(r.update_id.as_str())
                && !selected_updates.contains(r.update_id.as_str())
        })
        .filter(|r| !removed_before.contains(r.update_id.as_str()))
        .filter(|r| r.expired || !selected.superseded.contains(r.update_id.as_str()))
        .filter_map(|r| {
            Some(Removal {
                update_id: Guid::parse(&r.update_id).ok()?,
                title: r.title.clone().unwrap_or_default(),
                reason: if r.expired {
                    "expired".into()
                } else if selected.other_languages.contains(r.update_id.as_str()) {
                    format!("for other languages ({}) than the profile's", r.languages.join(", "))
                } else {
                    "no longer selected".into()
                },
            })
        })
        .collect();
    out.sort_by_key(|r| r.update_id);
    out
}

fn write_bundle(
    cache: &Store,
    plan: &Plan,
    profile: &Profile,
    key: &SecretKey,
    dir: &Path,
    options: &ExportOptions,
    progress: &mut ExportProgress<'_>,
) -> Result<Manifest, BundleError> {
    // The approval policy travels with UpdateIDs resolved here; a policy naming an update the
    // cache does not hold stops the export before anything is written.
    let approval_policy = match &profile.approvals {
        Some(p) => Some(
            p.for_bundle(cache)
                .map_err(|e| BundleError::Invalid(format!("the profile's [approvals]: {e}")))?,
        ),
        None => None,
    }
    .filter(|p| !p.is_empty());
    let now = chrono::Utc::now();
    let mut volumes =
        VolumeWriter::new(dir, options.format, options.volume_size, now.timestamp() as u64)
            .map_err(|e| BundleError::Invalid(e.to_string()))?;
    // Metadata first: the import reads it from the first volume while payloads follow.
    let mut members = pack_metadata(cache, plan, &mut volumes, progress)?;
    members.extend(pack_payloads(cache, plan, &mut volumes, progress)?);
    let volume_list = volumes.finish().map_err(|e| BundleError::io(dir, e))?;

    let (catalog, selected) = (&plan.catalog, &plan.selected);
    let summary =
        summarize(catalog, selected, &plan.to_carry, &plan.payloads, &members, &volume_list);
    let manifest = Manifest {
        format: FORMAT.to_string(),
        channel: profile.channel.clone(),
        sequence: plan.sequence,
        base_sequence: plan.base_sequence,
        bundle_id: BundleId::new_random(),
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires: options.expires_secs.or(profile.expires_secs()).map(|s| {
            (now + chrono::Duration::seconds(s as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
        exporter: format!("ferry {}", env!("CARGO_PKG_VERSION")),
        upstream: Upstream {
            url: options.upstream_url.clone().or(profile.upstream.clone()),
            anchor: options.upstream_anchor.clone(),
        },
        signer_key_id: key.key_id.to_string(),
        selection: Selection {
            products: selected.products.iter().map(|(id, t)| format!("{t} ({id})")).collect(),
            classifications: selected
                .classifications
                .iter()
                .map(|(id, t)| format!("{t} ({id})"))
                .collect(),
            languages: profile.languages.clone(),
            include_superseded: profile.include_superseded,
            payloads: profile.payloads.as_str().to_string(),
            express: profile.express,
        },
        summary,
        updates: update_entries(catalog, selected, &plan.to_carry),
        removed: plan.removed.clone(),
        volumes: volume_list,
        members,
        approval_policy,
        published: plan.published.clone(),
    };
    let json = manifest.to_json();
    let signature = key.sign(
        &json,
        &manifest.trusted_comment(),
        &format!("signature from ferry key {}", key.key_id),
    );
    let write = |name: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).map_err(|e| BundleError::io(&p, e))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| BundleError::io(&p, e))
    };
    write(MANIFEST_FILE, &json)?;
    write(SIGNATURE_FILE, signature.as_bytes())?;
    Ok(manifest)
}

/// The metadata members: the documents to carry, as records, cut at about
/// `METADATA_MEMBER_BYTES`. A dry run measures the records without keeping them.
fn pack_metadata(
    cache: &Store,
    plan: &Plan,
    volumes: &mut VolumeWriter,
    progress: &mut ExportProgress<'_>,
) -> Result<Vec<MemberEntry>, BundleError> {
    let catalog = &plan.catalog;
    let metadata_total: u64 = plan.to_carry.iter().map(|&i| catalog[i].document_size).sum();
    let staging = cache.content().staging_dir();
    if !volumes.is_dry_run() {
        std::fs::create_dir_all(&staging).map_err(|e| BundleError::io(&staging, e))?;
    }
    let mut members = Vec::new();
    let mut metadata_done = 0u64;
    for (k, chunk) in split_by_size(catalog, &plan.to_carry).into_iter().enumerate() {
        let temp = staging.join(format!("export-{}-{:04}.meta", std::process::id(), k + 1));
        let mut sink: Box<dyn Write> = if volumes.is_dry_run() {
            Box::new(std::io::sink())
        } else {
            Box::new(BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&temp).map_err(|e| BundleError::io(&temp, e))?,
            ))
        };
        let (mut size, mut uncompressed) = (0u64, 0u64);
        for &i in chunk {
            let (compressed, doc_size) = crate::store::document_in_languages(
                cache,
                catalog[i].revision_id,
                &plan.languages,
            )?;
            size += metadata::write_record(&mut sink, &compressed, doc_size)
                .map_err(|e| BundleError::io(&temp, e))?;
            uncompressed += doc_size;
            metadata_done += doc_size;
            progress("metadata", metadata_done, metadata_total);
        }
        sink.flush().map_err(|e| BundleError::io(&temp, e))?;
        drop(sink);
        let path = SafePath::new(&format!("metadata/revisions-{:04}.bin", k + 1))
            .map_err(|e| BundleError::Invalid(e.to_string()))?;
        let written = if volumes.is_dry_run() {
            volumes.add_member(&path, MemberKind::Metadata, size, &mut std::io::empty())
        } else {
            let mut file = std::fs::File::open(&temp).map_err(|e| BundleError::io(&temp, e))?;
            let written = volumes.add_member(&path, MemberKind::Metadata, size, &mut file);
            let _ = std::fs::remove_file(&temp);
            written
        };
        let mut entry = written.map_err(|e| BundleError::io(&temp, e))?.entry;
        entry.uncompressed_size = Some(uncompressed);
        entry.documents = Some(chunk.len() as u64);
        members.push(entry);
    }
    Ok(members)
}

/// The payload members, each checked on the way against the metadata's SHA-256, which the
/// member's is (a match proves the content, and so the SHA-1 it is named by); the SHA-1 only
/// without one. A dry run places them by their sizes in the metadata and reads nothing.
fn pack_payloads(
    cache: &Store,
    plan: &Plan,
    volumes: &mut VolumeWriter,
    progress: &mut ExportProgress<'_>,
) -> Result<Vec<MemberEntry>, BundleError> {
    let catalog = &plan.catalog;
    let payload_total: u64 = plan.payloads.iter().map(|(f, _)| f.size).sum();
    let mut members = Vec::new();
    let mut payload_done = 0u64;
    for (f, owner) in &plan.payloads {
        let source = cache.content().path(&f.sha1, &f.extension);
        let path =
            MemberEntry::payload_path(&f.sha1, &f.extension).map_err(BundleError::Invalid)?;
        if volumes.is_dry_run() {
            let written = volumes
                .add_member(&path, MemberKind::Payload, f.size, &mut std::io::empty())
                .map_err(|e| BundleError::io(&source, e))?;
            members.push(written.entry);
            continue;
        }
        let mut file = match std::fs::File::open(&source) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(damaged_payload(
                    cache,
                    f,
                    &source,
                    &catalog[*owner],
                    "is missing".into(),
                )?);
            }
            Err(e) => return Err(BundleError::io(&source, e)),
        };
        // A cut file (a crash before the disk had all of it) is found before the volume is written.
        let on_disk = file.metadata().map_err(|e| BundleError::io(&source, e))?.len();
        if on_disk != f.size {
            let problem = format!("has {on_disk} bytes, its metadata says {}", f.size);
            return Err(damaged_payload(cache, f, &source, &catalog[*owner], problem)?);
        }
        let written = match f.sha256 {
            Some(_) => volumes.add_member(&path, MemberKind::Payload, f.size, &mut file),
            None => volumes.add_member_with_sha1(&path, MemberKind::Payload, f.size, &mut file),
        }
        .map_err(|e| {
            BundleError::Invalid(format!(
                "packaging {} ({}) of {}: {e}",
                source.display(),
                f.file_name,
                describe(&catalog[*owner])
            ))
        })?;
        let d = written.digests;
        let (what, matches) = match f.sha256 {
            Some(sha256) => ("SHA-256", d.sha256 == sha256),
            None => ("SHA-1", d.sha1 == f.sha1),
        };
        if !matches || d.size != f.size {
            let problem = format!("does not match its metadata ({what} differs)");
            return Err(damaged_payload(cache, f, &source, &catalog[*owner], problem)?);
        }
        let mut entry = written.entry;
        entry.sha1 = Some(f.sha1.to_hex_lower());
        members.push(entry);
        payload_done += f.size;
        progress("payloads", payload_done, payload_total);
    }
    Ok(members)
}

/// Splits revisions into runs of about `METADATA_MEMBER_BYTES` of documents.
fn split_by_size<'a>(catalog: &[CatalogRevision], all: &'a [usize]) -> Vec<&'a [usize]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (k, &i) in all.iter().enumerate() {
        // Stored documents compress about tenfold.
        bytes += catalog[i].document_size / 8;
        if bytes >= METADATA_MEMBER_BYTES {
            out.push(&all[start..=k]);
            start = k + 1;
            bytes = 0;
        }
    }
    if start < all.len() {
        out.push(&all[start..]);
    }
    out
}

fn update_entries(
    catalog: &[CatalogRevision],
    selected: &Selected,
    to_carry: &[usize],
) -> Vec<UpdateEntry> {
    let categories: HashMap<&str, (&str, &str)> = catalog
        .iter()
        .filter(|c| c.is_latest && c.update_type == "Category")
        .map(|c| {
            (
                c.update_id.as_str(),
                (c.category_kind.as_deref().unwrap_or(""), c.title.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let by_revision: HashMap<(&str, i32), usize> = catalog
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.update_id.as_str(), r.revision_number), i))
        .collect();
    let mut oldest_revision: HashMap<&str, i32> = HashMap::new();
    for r in catalog {
        let e = oldest_revision.entry(r.update_id.as_str()).or_insert(r.revision_number);
        *e = (*e).min(r.revision_number);
    }
    let mut out: Vec<UpdateEntry> = to_carry
        .iter()
        .filter(|i| selected.top_level.contains(i))
        .filter_map(|&i| {
            let r = &catalog[i];
            let cats: Vec<(&str, &str)> = r
                .prerequisites
                .iter()
                .filter_map(|p| categories.get(p.as_str()).copied())
                .collect();
            let member_bytes: u64 = r
                .bundle_members
                .iter()
                .filter_map(|(u, n)| by_revision.get(&(u.as_str(), *n)))
                .flat_map(|&m| catalog[m].files.iter().map(|f| f.size))
                .sum();
            Some(UpdateEntry {
                update_id: Guid::parse(&r.update_id).ok()?,
                revision_number: r.revision_number,
                kb: r.kb_article.clone(),
                title: r.title.clone().unwrap_or_default(),
                classification: cats
                    .iter()
                    .find(|(k, _)| *k == "UpdateClassification")
                    .map(|(_, t)| t.to_string()),
                products: cats
                    .iter()
                    .filter(|(k, _)| *k == "Product")
                    .map(|(_, t)| t.to_string())
                    .collect(),
                change: if oldest_revision
                    .get(r.update_id.as_str())
                    .is_some_and(|&o| o < r.revision_number)
                {
                    "revised".into()
                } else {
                    "new".into()
                },
                msrc_severity: r.msrc_severity.clone(),
                payload_bytes: r.files.iter().map(|f| f.size).sum::<u64>() + member_bytes,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.classification.cmp(&b.classification).then(b.kb.cmp(&a.kb)).then(a.title.cmp(&b.title))
    });
    out
}

fn summarize(
    catalog: &[CatalogRevision],
    selected: &Selected,
    to_carry: &[usize],
    payloads: &[(crate::store::FileSummary, usize)],
    members: &[MemberEntry],
    volumes: &[VolumeEntry],
) -> Summary {
    let entries = update_entries(catalog, selected, to_carry);
    let mut by_classification = BTreeMap::new();
    for u in &entries {
        *by_classification
            .entry(u.classification.clone().unwrap_or_else(|| "(none)".into()))
            .or_insert(0) += 1;
    }
    let count = |t: &str| to_carry.iter().filter(|&&i| catalog[i].update_type == t).count() as u64;
    let mut kb_articles: Vec<String> = entries.iter().filter_map(|u| u.kb.clone()).collect();
    kb_articles.sort();
    kb_articles.dedup();
    Summary {
        revisions: to_carry.len() as u64,
        software_updates: entries.len() as u64,
        categories: count("Category"),
        detectoids: count("Detectoid"),
        bundle_members: to_carry
            .iter()
            .filter(|i| {
                !selected.top_level.contains(i)
                    && matches!(catalog[**i].update_type.as_str(), "Software" | "Driver")
            })
            .count() as u64,
        by_classification,
        kb_articles,
        payload_files: payloads.len() as u64,
        payload_bytes: payloads.iter().map(|(f, _)| f.size).sum(),
        metadata_bytes: members
            .iter()
            .filter(|m| m.kind == MemberKind::Metadata)
            .map(|m| m.size)
            .sum(),
        total_bytes: volumes.iter().map(|v| v.size).sum(),
    }
}
