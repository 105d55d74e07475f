//! Publishing into a store: an installer becomes a signed CAB in the content tree and the update,
//! vendor and product documents in the catalog, in one ingest transaction with the record of
//! what was published. A refused or failed publish leaves the store as it was: the CAB is
//! written beside the tree and moved in only once everything was checked, and removed again if
//! the transaction does not commit.

use super::cab::{self, CabError, SignedCab};
use super::document::{
    CategoryName, CategoryRevision, Classification, Details, DetectRule, ExeInstaller, Installer,
    InvalidUpdate, KbArticle, MsiInstaller, MspInstaller, MsrcSeverity, NewUpdate, Payload,
    PrerequisiteGroup, Product, PublishedUpdate, ReturnCode, StoredUpdate, Vendor,
    product_document, vendor_document,
};
use super::msi::{MsiError, MsiProduct, MspPatch, Version};
use super::signing::PublishingIdentity;
use crate::catalog::{Guid, Sha1Digest, Sha256Digest};
use crate::ids::UpdateId;
use crate::store::{
    AddOutcome, CategoryIndex, ContentStore, InstallerKind, PublishedRecord, Store, StoreError,
};
use chrono::{DateTime, Utc};
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

/// The revision number of a newly published update (WSUS starts local revisions here too).
const FIRST_REVISION: u32 = 100;

/// The installer to publish and what only the publisher can say about it.
#[derive(Debug, Clone)]
pub enum InstallerSource {
    /// Product code, version and language come from the MSI itself.
    Msi { path: PathBuf, properties: Option<String> },
    /// Patch code and target products come from the MSP itself.
    Msp { path: PathBuf },
    /// An EXE says nothing about itself: how to run it and how to tell it is installed are given.
    Exe {
        path: PathBuf,
        arguments: Option<String>,
        return_codes: Vec<ReturnCode>,
        detect: Vec<DetectRule>,
    },
}

/// What to publish, as the operator states it.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub installer: InstallerSource,
    /// Default: an MSI's ProductName and version.
    pub title: Option<String>,
    /// Default: an MSI's Manufacturer. Required for MSP and EXE.
    pub vendor: Option<String>,
    /// Default: an MSI's ProductName. Required for MSP and EXE.
    pub product: Option<String>,
    pub classification: Classification,
    pub kb_article: Option<KbArticle>,
    pub id: Option<Guid>,
    pub severity: Option<MsrcSeverity>,
    pub description: Option<String>,
    pub more_info_url: Option<String>,
    /// Earlier published updates this one replaces. Default: the published updates of the same
    /// product with a lower version (or none stated) that are not expired.
    pub supersedes: Option<Vec<Guid>>,
    pub prerequisites: Vec<PrerequisiteGroup>,
}

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub update_id: UpdateId,
    pub revision_number: u32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    pub version: Option<String>,
    pub supersedes: Vec<String>,
    /// The signed CAB: its name in the document, size and digests (hex).
    pub cab: String,
    pub size: u64,
    pub sha1: String,
    pub sha256: String,
    /// The automatic approval rules that approved it.
    pub approved_by_rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Installer(#[from] MsiError),
    #[error("{0}")]
    Invalid(#[from] InvalidUpdate),
    #[error(transparent)]
    Cab(#[from] CabError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused before anything was written; says why and what to do.
    #[error("{0}")]
    Refused(String),
}

/// An installer read and named: what the documents need from it.
struct Described {
    installer: Installer,
    vendor: String,
    product: String,
    title: String,
    version: Option<Version>,
}

impl Described {
    fn kind(&self) -> InstallerKind {
        match self.installer {
            Installer::Msi(_) => InstallerKind::Msi,
            Installer::Msp(_) => InstallerKind::Msp,
            Installer::Exe(_) => InstallerKind::Exe,
        }
    }
}

/// Publishes `request` into `store`, signed by `identity`, as of `now`.
pub fn publish(
    store: &mut Store,
    request: &PublishRequest,
    identity: &PublishingIdentity,
    now: DateTime<Utc>,
) -> Result<Published, PublishError> {
    let _publishing = lock_publishing(store)?;
    let installer = installer_path(&request.installer);
    let source = cab::open_installer(installer)?;
    let mut described = describe(request, &source)?;
    let product = product_of(store, request.classification, &described)?;
    // As the category documents name them (trimmed).
    described.vendor = product.vendor().name().as_str().to_owned();
    described.product = product.name().as_str().to_owned();
    let id = request.id.unwrap_or_else(crate::random::guid);
    check_prerequisites(store, id, &request.prerequisites)?;
    if newest_revision(store, &id.to_string())?.is_some() {
        return Err(PublishError::Refused(format!(
            "update {id} is already in the store; publish a new version under a new id (leave out --id for one)"
        )));
    }
    let details = Details {
        title: described.title.clone(),
        description: request.description.clone(),
        more_info_url: request.more_info_url.clone(),
        kb_article: request.kb_article.clone(),
        severity: request.severity,
        classification: request.classification,
        supersedes: superseded_by(store, request, &described)?,
        prerequisites: request.prerequisites.clone(),
    }
    .checked(id)?;
    let publisher = publisher_id(store)?;
    let content = store.content().clone();
    let staging = publishing_staging(&content)?;
    let signed = cab::write_signed_cab_from(
        &source,
        installer,
        described.installer.file_name().as_str(),
        &staging.join(format!("{}.publish", cab_name(id))),
        identity,
    )?;
    let result = (|| {
        let payload = payload(id, &signed, now)?;
        let update = PublishedUpdate::new(NewUpdate {
            id,
            revision: FIRST_REVISION,
            details,
            product,
            installer: described.installer.clone(),
            payload,
            created: now,
            publisher_id: publisher,
        })?;
        let target = content.path(&Sha1Digest(signed.sha1), "cab");
        let existed = content.place(&signed.path, &target).map_err(StoreError::from)?;
        let committed = commit(store, &update, &described, now);
        if committed.is_err() && !existed {
            let _ = std::fs::remove_file(&target);
        }
        committed.map(|()| update)
    })();
    let _ = std::fs::remove_file(&signed.path);
    let update = result?;
    let approved_by_rules = apply_rules(store);
    Ok(published(&update, &described, &signed, approved_by_rules))
}

/// One publish, revise or expire at a time in a store: each checks what is stored (ids taken,
/// loops, the newest revision) and then writes, and two at once could each pass the other's
/// checks. Held until the returned file is dropped.
fn lock_publishing(store: &Store) -> Result<std::fs::File, PublishError> {
    const LOCK: &str = "publish";
    if let Some(held) = store.content().lock(LOCK, false).map_err(StoreError::from)? {
        return Ok(held);
    }
    tracing::warn!("another publish, revise or expire is running on this store; waiting for it");
    let held = store.content().lock(LOCK, true).map_err(StoreError::from)?;
    Ok(held.expect("a waiting lock is taken or fails"))
}

/// Where a publish writes its CAB before moving it into the content tree, emptied first: only
/// the holder of the publish lock writes there, so anything found is what a killed publish
/// left (a partial CAB of up to 2 GiB).
fn publishing_staging(content: &ContentStore) -> Result<PathBuf, PublishError> {
    let staging = content.staging_dir().join("publish");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
    Ok(staging)
}

/// The newest revision of an update, if the store holds it.
fn newest_revision(store: &Store, update_id: &str) -> Result<Option<i32>, StoreError> {
    match store.resolve_update(update_id) {
        Ok(ids) => Ok(ids.first().copied()),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn installer_path(source: &InstallerSource) -> &Path {
    match source {
        InstallerSource::Msi { path, .. }
        | InstallerSource::Msp { path }
        | InstallerSource::Exe { path, .. } => path,
    }
}

/// The installer's file name as the document and the CAB carry it.
fn file_name(path: &Path) -> Result<String, PublishError> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_owned).ok_or_else(|| {
        PublishError::Refused(format!(
            "{}: the installer's file name is not UTF-8 text",
            path.display()
        ))
    })
}

/// The CAB's name in the update's document (as WSUS names a published update's content).
fn cab_name(id: Guid) -> String {
    format!("{id}_1.cab")
}

/// Reads the installer (`source`, opened from the request's path) and settles its vendor,
/// product and title.
fn describe(request: &PublishRequest, source: &std::fs::File) -> Result<Described, PublishError> {
    // What an MSP or EXE does not say about itself.
    let given = |path: &Path| -> Result<(String, String, String), PublishError> {
        let named = |what: &str, given: &Option<String>| {
            given.clone().ok_or_else(|| {
                PublishError::Refused(format!(
                    "{}: the {what} must be given (--{what}): the installer does not say it",
                    path.display()
                ))
            })
        };
        Ok((
            named("vendor", &request.vendor)?,
            named("product", &request.product)?,
            named("title", &request.title)?,
        ))
    };
    let (installer, (vendor, product, title), version) = match &request.installer {
        InstallerSource::Msi { path, properties } => {
            let msi = MsiProduct::read(std::io::BufReader::new(source), path)?;
            // A name the MSI's code page could not decode is no default (wixl writes
            // Windows-1252 text under the neutral code page, read as UTF-8), nor one that is no
            // usable name (too long, a control character).
            let readable = |given: &Option<String>, what: &str, flag: &str, value: String| {
                let shown: String = value.chars().take(80).collect();
                let refused = |why: String| {
                    Err(PublishError::Refused(format!(
                        "{}: the MSI's {what} {shown:?} {why}; give --{flag}",
                        path.display()
                    )))
                };
                match given {
                    Some(given) => Ok(given.clone()),
                    None if value.contains('\u{fffd}') => {
                        refused("is not readable text in its database's code page".into())
                    }
                    None => match CategoryName::new(&value) {
                        Err(e) => refused(format!("is no usable name ({e})")),
                        Ok(_) => Ok(value),
                    },
                }
            };
            let title = format!("{} {}", msi.name, msi.version);
            let names = (
                readable(&request.vendor, "Manufacturer", "vendor", msi.manufacturer.clone())?,
                readable(&request.product, "ProductName", "product", msi.name.clone())?,
                readable(&request.title, "ProductName", "title", title)?,
            );
            let version = Some(msi.version);
            let msi = MsiInstaller::new(&file_name(path)?, msi, properties.as_deref())?;
            (Installer::Msi(msi), names, version)
        }
        InstallerSource::Msp { path } => {
            let patch = MspPatch::read(std::io::BufReader::new(source), path)?;
            let names = given(path)?;
            (Installer::Msp(MspInstaller::new(&file_name(path)?, patch)?), names, None)
        }
        InstallerSource::Exe { path, arguments, return_codes, detect } => {
            let names = given(path)?;
            let exe = ExeInstaller::new(
                &file_name(path)?,
                arguments.as_deref(),
                return_codes.clone(),
                detect.clone(),
            )?;
            (Installer::Exe(exe), names, None)
        }
    };
    Ok(Described { installer, vendor, product, title, version })
}

/// The product category, refused when its name is another vendor's product (Microsoft's
/// "Windows 11", or a product published under another vendor), or when the store lacks the
/// classification's category.
fn product_of(
    store: &Store,
    classification: Classification,
    described: &Described,
) -> Result<Product, PublishError> {
    let vendor = Vendor::new(CategoryName::new(&described.vendor)?);
    let product = Product::new(vendor, CategoryName::new(&described.product)?);
    let index = store.category_index()?;
    check_classification(&index, classification)?;
    let (vendor, name) = (product.vendor(), product.name().as_str());
    let taken = |kind: &str, wanted: Guid, title: &str| {
        let wanted = wanted.to_string();
        index.by_id.iter().find_map(|(id, (k, t))| {
            let same = t.as_deref().is_some_and(|t| t.trim().eq_ignore_ascii_case(title));
            (k == kind && *id != wanted && same).then_some(id.clone())
        })
    };
    if let Some(id) = taken("Company", vendor.id(), vendor.name().as_str()) {
        return Err(PublishError::Refused(format!(
            "vendor {:?} is already another company in the catalog (category {id}); publish under a vendor name of your own (--vendor)",
            vendor.name().as_str()
        )));
    }
    if let Some(id) = taken("Product", product.id(), name) {
        return Err(PublishError::Refused(format!(
            "product {name:?} is already another vendor's product in the catalog (category {id}), not {:?}'s; name the product so that it is this vendor's own (--product)",
            vendor.name().as_str()
        )));
    }
    Ok(product)
}

/// Refuses a classification whose category the store lacks: clients could not evaluate an
/// update in it.
fn check_classification(
    index: &CategoryIndex,
    classification: Classification,
) -> Result<(), PublishError> {
    if index.kind(&classification.id().to_string()).is_none() {
        return Err(PublishError::Refused(format!(
            "the store does not hold the classification {:?} ({}): clients could not evaluate an update in it; import the catalog from Microsoft Update (a bundle) first",
            classification.name(),
            classification.id()
        )));
    }
    Ok(())
}

/// Refuses `--supersedes` of an update not published here.
fn check_published(store: &Store, named: &[Guid]) -> Result<(), PublishError> {
    let published = store.published()?;
    for id in named {
        if !published.iter().any(|p| p.update_id.guid() == *id) {
            return Err(PublishError::Refused(format!(
                "--supersedes {id}: not an update published here (`ferry publish list` shows them)"
            )));
        }
    }
    Ok(())
}

/// The most update ids `--prerequisite` may name, all groups together.
const MAX_PREREQUISITES: usize = 64;

/// Refuses prerequisites a client could never satisfy: the update itself, updates the store
/// does not hold, more than `MAX_PREREQUISITES`.
fn check_prerequisites(
    store: &Store,
    id: Guid,
    groups: &[PrerequisiteGroup],
) -> Result<(), PublishError> {
    let ids: Vec<Guid> = groups.iter().flat_map(|g| g.ids().iter().copied()).collect();
    if ids.len() > MAX_PREREQUISITES {
        return Err(PublishError::Refused(format!(
            "{} prerequisites are named; at most {MAX_PREREQUISITES} are allowed",
            ids.len()
        )));
    }
    for prerequisite in ids {
        if prerequisite == id {
            return Err(PublishError::Refused(format!(
                "--prerequisite {id}: an update cannot need itself"
            )));
        }
        if newest_revision(store, &prerequisite.to_string())?.is_none() {
            return Err(PublishError::Refused(format!(
                "--prerequisite {prerequisite}: the store holds no such update or category (`ferry products list` shows products)"
            )));
        }
        if !offered(store, &UpdateId::from_guid(prerequisite))? {
            return Err(PublishError::Refused(format!(
                "prerequisite {prerequisite} is expired: clients are no longer offered it, so this update could never be installed; leave it out (revise: --no-prerequisites, or --prerequisite to name the others)"
            )));
        }
    }
    Ok(())
}

/// Refuses a revision whose prerequisites or supersedence would make a loop through updates
/// published here: two updates that each need the other could never be installed, and
/// supersedence that comes back to itself has no newest update.
fn check_loops(store: &Store, id: Guid, details: &Details) -> Result<(), PublishError> {
    let mut graph = LinkGraph::new(store)?;
    let needs: Vec<Guid> = details.prerequisites.iter().flat_map(|g| g.ids().to_vec()).collect();
    if let Some(start) = graph.leads_back(store, id, &needs, |l| &l.needs)? {
        return Err(PublishError::Refused(format!(
            "--prerequisite {start}: it needs {id} itself (directly or through other updates), so neither could ever be installed"
        )));
    }
    if let Some(start) = graph.leads_back(store, id, &details.supersedes, |l| &l.supersedes)? {
        return Err(PublishError::Refused(format!(
            "--supersedes {start}: it supersedes {id} itself (directly or through other updates); supersedence cannot go round"
        )));
    }
    Ok(())
}

/// Refuses to expire an update that another published update still offered needs: that one
/// could never be installed any more.
fn check_not_needed(store: &Store, id: Guid) -> Result<(), PublishError> {
    let mut graph = LinkGraph::new(store)?;
    for other in graph.published.clone() {
        if other != id && graph.links(store, other)?.needs.contains(&id) {
            let other = UpdateId::from_guid(other);
            if offered(store, &other)? {
                return Err(PublishError::Refused(format!(
                    "published update {other} needs {id}: expired, it could never be installed; revise {other} first (--no-prerequisites, or --prerequisite to name others), or expire it too"
                )));
            }
        }
    }
    Ok(())
}

/// What a published update's newest document links to: the updates it needs (its
/// prerequisites other than its product and classification) and those it supersedes.
#[derive(Default)]
struct Links {
    needs: Vec<Guid>,
    supersedes: Vec<Guid>,
}

/// The links of the updates published here, each document read at most once.
struct LinkGraph {
    published: std::collections::HashSet<Guid>,
    read: std::collections::HashMap<Guid, Links>,
}

impl Links {
    /// Read with the catalog's parser, so another site's document will do; one that does not
    /// parse links to nothing (and is warned about).
    fn read(store: &Store, id: Guid) -> Result<Links, PublishError> {
        let Some(newest) = newest_revision(store, &id.to_string())? else {
            return Ok(Links::default());
        };
        match crate::catalog::parse_update(&store.document(newest)?) {
            Ok(parsed) => Ok(Links {
                needs: (parsed.update.prerequisites.iter())
                    .filter(|c| !c.is_category)
                    .flat_map(|c| c.update_ids.iter().copied())
                    .collect(),
                supersedes: parsed.update.superseded_update_ids,
            }),
            Err(e) => {
                tracing::warn!(
                    "published update {id}: its document does not parse ({e}); its prerequisites and supersedence are not followed"
                );
                Ok(Links::default())
            }
        }
    }
}

impl LinkGraph {
    fn new(store: &Store) -> Result<LinkGraph, PublishError> {
        let published = store.published()?.iter().map(|p| p.update_id.guid()).collect();
        Ok(LinkGraph { published, read: Default::default() })
    }

    /// The links of published update `id`, read once.
    fn links(&mut self, store: &Store, id: Guid) -> Result<&Links, PublishError> {
        Ok(match self.read.entry(id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unread) => unread.insert(Links::read(store, id)?),
        })
    }

    /// Which of `starts` leads back to `id` through the links `follow` picks. Whether an
    /// update leads back does not depend on where the walk began, so one walk serves all.
    fn leads_back(
        &mut self,
        store: &Store,
        id: Guid,
        starts: &[Guid],
        follow: fn(&Links) -> &Vec<Guid>,
    ) -> Result<Option<Guid>, PublishError> {
        let mut seen = std::collections::HashSet::new();
        for &start in starts {
            let mut todo = vec![start];
            while let Some(at) = todo.pop() {
                if at == id {
                    return Ok(Some(start));
                }
                if !seen.insert(at) || !self.published.contains(&at) {
                    continue;
                }
                todo.extend(follow(self.links(store, at)?).iter().copied());
            }
        }
        Ok(None)
    }
}

/// The published updates this one supersedes: those named, each of which must be a published
/// update; or by default the same product's earlier versions that are not expired (a chain of
/// versions: the newest names every earlier one still offered).
fn superseded_by(
    store: &Store,
    request: &PublishRequest,
    described: &Described,
) -> Result<Vec<Guid>, PublishError> {
    if let Some(named) = &request.supersedes {
        check_published(store, named)?;
        return Ok(named.clone());
    }
    let published = store.published()?;
    let mut earlier = Vec::new();
    for p in published.iter().filter(|p| same_product(p, described)) {
        let older = match (&described.version, p.version.as_deref().map(str::parse::<Version>)) {
            (Some(new), Some(Ok(old))) => old.padded() < new.padded(),
            _ => true,
        };
        if older && offered(store, &p.update_id)? {
            earlier.push(p.update_id.guid());
        }
    }
    Ok(earlier)
}

fn same_product(p: &PublishedRecord, d: &Described) -> bool {
    p.vendor.eq_ignore_ascii_case(&d.vendor) && p.product.eq_ignore_ascii_case(&d.product)
}

/// Whether an update's newest revision is still offered: not expired.
fn offered(store: &Store, id: &UpdateId) -> Result<bool, PublishError> {
    let Some(newest) = newest_revision(store, id.as_str())? else { return Ok(false) };
    Ok(!store.update_summary(newest)?.is_expired())
}

/// The signed CAB as the update's document names it.
fn payload(id: Guid, signed: &SignedCab, now: DateTime<Utc>) -> Result<Payload, PublishError> {
    let (sha1, sha256) = (Sha1Digest(signed.sha1), Sha256Digest(signed.sha256));
    Ok(Payload::new(&cab_name(id), signed.size, sha1, sha256, now)?)
}

/// The publishing site: the store's server id.
fn publisher_id(store: &Store) -> Result<Guid, PublishError> {
    let identity = store.server_identity()?;
    Guid::parse(&identity.server_id).map_err(|_| {
        PublishError::Refused(format!(
            "the store's server id {:?} is not a GUID",
            identity.server_id
        ))
    })
}

/// The vendor and product documents (those the store does not hold yet), the update's, the
/// payload marked present and the record, in one transaction.
fn commit(
    store: &mut Store,
    update: &PublishedUpdate,
    described: &Described,
    now: DateTime<Utc>,
) -> Result<(), PublishError> {
    let product = update.product();
    let at = CategoryRevision {
        revision: FIRST_REVISION,
        created: now,
        publisher_id: update.fields().publisher_id,
    };
    let mut documents = Vec::new();
    for (id, document) in [
        (product.vendor().id(), vendor_document(product.vendor(), &at)),
        (product.id(), product_document(product, &at)),
    ] {
        if newest_revision(store, &id.to_string())?.is_none() {
            documents.push((format!("category {id}"), document.into_bytes()));
        }
    }
    documents.push((format!("published update {}", update.id()), update.document().into_bytes()));
    let record = PublishedRecord {
        update_id: UpdateId::from_guid(update.id()),
        vendor: described.vendor.clone(),
        product: described.product.clone(),
        installer: described.kind(),
        installer_name: described.installer.file_name().as_str().to_owned(),
        version: described.version.as_ref().map(ToString::to_string),
        published_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    let mut batch = store.begin_ingest()?;
    batch.add_documents(&documents)?;
    batch.mark_present(update.payload().sha1())?;
    batch.record_published(&record)?;
    batch.commit()?;
    Ok(())
}

/// Runs the automatic approval rules over what was published, as an import does; a failure is
/// reported, not fatal (the update is published).
fn apply_rules(store: &mut Store) -> Vec<String> {
    match crate::admin::AdminService::new(store).apply_approval_rules() {
        Ok(outcomes) => {
            outcomes.into_iter().filter(|o| !o.approved.is_empty()).map(|o| o.rule).collect()
        }
        Err(e) => {
            tracing::warn!(
                "the automatic approval rules did not run ({e}); run `ferry rules apply`"
            );
            Vec::new()
        }
    }
}

fn published(
    update: &PublishedUpdate,
    described: &Described,
    signed: &SignedCab,
    approved_by_rules: Vec<String>,
) -> Published {
    Published {
        update_id: UpdateId::from_guid(update.id()),
        revision_number: update.revision(),
        title: update.title().to_owned(),
        vendor: described.vendor.clone(),
        product: described.product.clone(),
        version: described.version.as_ref().map(ToString::to_string),
        supersedes: update.supersedes().iter().map(ToString::to_string).collect(),
        cab: update.payload().file_name().as_str().to_owned(),
        size: signed.size,
        sha1: hex::encode_upper(signed.sha1),
        sha256: hex::encode(signed.sha256),
        approved_by_rules,
    }
}

/// A published update as `ferry publish list` shows it: the record and its newest revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub update_id: UpdateId,
    pub revision_number: i32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    pub installer: InstallerKind,
    pub installer_name: String,
    pub version: Option<String>,
    /// Published or Expired.
    pub state: String,
    pub published_at: String,
}

/// Every update published here, oldest first, with its newest revision.
pub fn list(store: &Store) -> Result<Vec<Listed>, StoreError> {
    let mut listed = Vec::new();
    for p in store.published()? {
        let Some(newest) = newest_revision(store, p.update_id.as_str())? else { continue };
        let s = store.update_summary(newest)?;
        listed.push(Listed {
            revision_number: s.revision_number,
            title: s.title.unwrap_or_default(),
            state: s.publication_state.unwrap_or_else(|| "Published".into()),
            update_id: p.update_id,
            vendor: p.vendor,
            product: p.product,
            installer: p.installer,
            installer_name: p.installer_name,
            version: p.version,
            published_at: p.published_at,
        });
    }
    Ok(listed)
}

/// What `ferry publish expire` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Expired {
    pub update_id: UpdateId,
    pub revision_number: u32,
    pub title: String,
}

/// Expires an update published here: a new revision whose publication state is Expired, so
/// clients are no longer offered it (WSUS's "expire"). It stays in the catalog and in bundles.
pub fn expire(store: &mut Store, update_id: &UpdateId) -> Result<Expired, PublishError> {
    let _publishing = lock_publishing(store)?;
    let expired = own_update(store, update_id)?.expired()?;
    check_not_needed(store, update_id.guid())?;
    add_revision(store, &expired, "expired")?;
    Ok(Expired {
        update_id: update_id.clone(),
        revision_number: expired.fields().revision,
        title: expired.fields().details.title.clone(),
    })
}

/// The newest document of an update this store published, read back; refused for an update
/// published elsewhere (another site's revisions would clash with this one's).
fn own_update(store: &Store, update_id: &UpdateId) -> Result<StoredUpdate, PublishError> {
    if !store.published()?.iter().any(|p| p.update_id == *update_id) {
        return Err(PublishError::Refused(format!(
            "{update_id} is not an update published here (`ferry publish list` shows them)"
        )));
    }
    let stored = stored_update(store, update_id)?;
    let here = publisher_id(store)?;
    if stored.fields().publisher_id != here {
        return Err(PublishError::Refused(format!(
            "{update_id} was published by another site (publisher {}), not by this store ({here}): revise or expire it there and carry the revision across; here, decline it to stop offering it",
            stored.fields().publisher_id
        )));
    }
    Ok(stored)
}

/// The newest document of a published update, read back.
fn stored_update(store: &Store, update_id: &UpdateId) -> Result<StoredUpdate, PublishError> {
    let newest = newest_revision(store, update_id.as_str())?.ok_or_else(|| {
        PublishError::Refused(format!("{update_id}: the store holds no revision of it"))
    })?;
    let document = String::from_utf8(store.document(newest)?).map_err(|_| {
        PublishError::Refused(format!("{update_id}: its stored document is not UTF-8"))
    })?;
    Ok(StoredUpdate::read(update_id.guid(), &document)?)
}

/// Stores a new revision of a published update, in one transaction. Another revise or expire
/// of the same update that stored its revision first wins; this one is refused.
fn add_revision(
    store: &mut Store,
    revision: &StoredUpdate,
    what: &str,
) -> Result<(), PublishError> {
    let f = revision.fields();
    let raced = || {
        PublishError::Refused(format!(
            "{}: another revise or expire stored revision {} meanwhile; look at `ferry publish list` and run it again if still needed",
            f.id, f.revision
        ))
    };
    let mut batch = store.begin_ingest()?;
    let source = format!("{what} revision {} of {}", f.revision, f.id);
    match batch.add_document(&source, revision.document().as_bytes()) {
        Ok(AddOutcome::Added { .. }) => {}
        Ok(AddOutcome::Unchanged { .. }) | Err(StoreError::ConflictingRevision { .. }) => {
            return Err(raced());
        }
        Err(e) => return Err(e.into()),
    }
    batch.commit()?;
    Ok(())
}

/// What `ferry publish revise` changes; what it does not name stays as it was. The installer
/// and its signed CAB never change: a new installer is a new update (publish it; it supersedes
/// this one).
#[derive(Debug, Clone, Default)]
pub struct RevisionRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub more_info_url: Option<String>,
    pub kb_article: Option<KbArticle>,
    pub severity: Option<MsrcSeverity>,
    pub classification: Option<Classification>,
    /// Replaces the list (empty: supersedes nothing).
    pub supersedes: Option<Vec<Guid>>,
    /// Replaces the list (empty: no prerequisites).
    pub prerequisites: Option<Vec<PrerequisiteGroup>>,
    /// An EXE's detection rules, replacing the earlier ones.
    pub detect: Option<Vec<DetectRule>>,
    /// Fields to remove.
    pub clear: Vec<Clearable>,
}

/// What a revision can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearable {
    Description,
    MoreInfoUrl,
    Kb,
    Severity,
}

impl Clearable {
    const ALL: [Clearable; 4] =
        [Clearable::Description, Clearable::MoreInfoUrl, Clearable::Kb, Clearable::Severity];
    pub const NAMES: [&'static str; 4] = ["description", "more-info-url", "kb", "severity"];

    pub fn name(self) -> &'static str {
        Clearable::NAMES[Clearable::ALL.iter().position(|c| *c == self).expect("in ALL")]
    }

    /// Whether `request` also gives this field a value.
    fn given(self, request: &RevisionRequest) -> bool {
        match self {
            Clearable::Description => request.description.is_some(),
            Clearable::MoreInfoUrl => request.more_info_url.is_some(),
            Clearable::Kb => request.kb_article.is_some(),
            Clearable::Severity => request.severity.is_some(),
        }
    }

    fn clear(self, d: &mut Details) {
        match self {
            Clearable::Description => d.description = None,
            Clearable::MoreInfoUrl => d.more_info_url = None,
            Clearable::Kb => d.kb_article = None,
            Clearable::Severity => d.severity = None,
        }
    }
}

/// `description`, `more-info-url`, `kb` or `severity`.
impl std::str::FromStr for Clearable {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Clearable::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(text.trim()))
            .map(|i| Clearable::ALL[i])
            .ok_or_else(|| format!("{text:?}: one of {}", Clearable::NAMES.join(", ")))
    }
}

/// What `ferry publish revise` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revised {
    pub update_id: UpdateId,
    pub revision_number: u32,
    pub title: String,
    pub supersedes: Vec<String>,
    /// The automatic approval rules that approved it.
    pub approved_by_rules: Vec<String>,
}

/// Writes the next revision of an update published here, with the changes `request` names,
/// checked as a publish checks them. Refused when it changes nothing.
pub fn revise(
    store: &mut Store,
    update_id: &UpdateId,
    request: &RevisionRequest,
    now: DateTime<Utc>,
) -> Result<Revised, PublishError> {
    let _publishing = lock_publishing(store)?;
    let stored = own_update(store, update_id)?;
    let details = revised_details(stored.fields().details.clone(), request)?;
    if details.classification != stored.fields().details.classification {
        check_classification(&store.category_index()?, details.classification)?;
    }
    if let Some(named) = &request.supersedes {
        check_published(store, named)?;
    }
    check_prerequisites(store, update_id.guid(), &details.prerequisites)?;
    let revision = stored.revised(details, request.detect.as_deref(), now).map_err(|e| match e {
        // A title stored before titles were one line: say how to replace it.
        InvalidUpdate::ControlCharacter { field: "title" } if request.title.is_none() => {
            PublishError::Refused(format!(
                "{update_id}: its title has a line break or control character; give a new one with --title"
            ))
        }
        e => e.into(),
    })?;
    check_loops(store, update_id.guid(), &revision.fields().details)?;
    crate::faults::pause_point("publish.revise.checked");
    if !revision.changes(&stored) {
        return Err(PublishError::Refused(format!(
            "{update_id}: the revision would change nothing; name what to change (--title, --description, --detect, ...)"
        )));
    }
    add_revision(store, &revision, "revised")?;
    let approved_by_rules = apply_rules(store);
    let f = revision.fields();
    Ok(Revised {
        update_id: update_id.clone(),
        revision_number: f.revision,
        title: f.details.title.clone(),
        supersedes: f.details.supersedes.iter().map(ToString::to_string).collect(),
        approved_by_rules,
    })
}

/// The details with the request's changes; refused when a field is both given and cleared.
fn revised_details(mut d: Details, request: &RevisionRequest) -> Result<Details, PublishError> {
    for field in &request.clear {
        if field.given(request) {
            return Err(PublishError::Refused(format!(
                "--clear {}: that field is also given a value; say one or the other",
                field.name()
            )));
        }
    }
    let set = |field: &mut Option<String>, value: &Option<String>| {
        if let Some(v) = value {
            *field = Some(v.clone());
        }
    };
    if let Some(title) = &request.title {
        d.title = title.clone();
    }
    set(&mut d.description, &request.description);
    set(&mut d.more_info_url, &request.more_info_url);
    d.kb_article = request.kb_article.clone().or(d.kb_article);
    d.severity = request.severity.or(d.severity);
    d.classification = request.classification.unwrap_or(d.classification);
    if let Some(supersedes) = &request.supersedes {
        d.supersedes = supersedes.clone();
    }
    if let Some(prerequisites) = &request.prerequisites {
        d.prerequisites = prerequisites.clone();
    }
    for field in &request.clear {
        field.clear(&mut d);
    }
    Ok(d)
}
