//! The client web services of MS-WUSP: ClientWebService, SimpleAuth and Reporting, as a real
//! WSUS 2025 answers them.

use super::answers::{AnswerKey, Form, Kept, Parts, Rendered, Stamps};
use super::cookies::{
    AUTH_COOKIE_SECONDS, CLIENT_COOKIE_SECONDS, CookieData, CookieProblem, Kind as CookieKind,
    wire_time,
};
use super::snapshot::{Kind, Snapshot};
use super::state::AppState;
use super::sync::{self, Client};
use crate::catalog::Guid;
use crate::ids::ComputerId;
use crate::store::{
    ClientWrite, ContentStore, EventRecord, FragmentKind, GroupName, MAX_GROUPS_PER_CLIENT,
};
use crate::wsus::client::{self as wire, ConfigProperty, FileLocation, WireCookie};
use crate::wsus::soap::{ErrorCode, Fault, Piece, Request, Writer};
use std::sync::Arc;

/// Details of the HTTP request a SOAP call arrived in.
pub struct Context {
    /// `http://host:port`, for content URLs.
    pub base_url: String,
    pub host: String,
    /// The client's address, for its share of the memory budget.
    pub peer: Option<std::net::IpAddr>,
    /// The request accepts an xpress-compressed answer and the service may send one.
    pub xpress: bool,
    /// The client cookie the request carries (read where the request was parsed).
    pub cookie: Result<Option<WireCookie>, Fault>,
}

impl Context {
    /// How a shared answer to this request is wrapped and encoded.
    fn form(&self, version: crate::wsus::soap::SoapVersion) -> Form {
        Form { version, style: crate::wsus::soap::EnvelopeStyle::Client, xpress: self.xpress }
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) fn blocking_fault(e: impl std::fmt::Display) -> Fault {
    tracing::error!("internal error: {e}");
    Fault::new(ErrorCode::InternalServerError, "")
}

/// A store that cannot be reached is `ServerBusy` (the client tries again later, as WSUS
/// clients do when their server is overloaded); any other failure an internal error.
pub(super) fn store_fault(e: crate::store::StoreError) -> Fault {
    if e.is_unavailable() {
        tracing::debug!("answered ServerBusy: {e}");
        return Fault::new(ErrorCode::ServerBusy, "");
    }
    blocking_fault(e)
}

/// A client write the writer refused or failed: as `store_fault`.
pub(super) fn write_fault(e: super::writer::WriteError) -> Fault {
    match e {
        super::writer::WriteError::Unreachable => {
            tracing::debug!("answered ServerBusy: {e}");
            Fault::new(ErrorCode::ServerBusy, "")
        }
        super::writer::WriteError::Failed(e) => blocking_fault(e),
    }
}

/// The client a cookie belongs to. Expired cookies get CookieExpired, anything unreadable
/// InvalidCookie (the client then starts over), as WSUS clients expect.
pub fn client_cookie(
    state: &AppState,
    ctx: &Context,
    allow_expired: bool,
) -> Result<CookieData, Fault> {
    client_cookie_sealed(state, ctx, allow_expired).map(|(data, _)| data)
}

/// The computer a client cookie names (sealed by this server from a checked id, so a failure
/// means a cookie of another kind).
fn computer_of(cookie: &CookieData) -> Result<ComputerId, Fault> {
    ComputerId::parse(&cookie.id).map_err(|_| Fault::new(ErrorCode::InvalidCookie, "cookie"))
}

/// The client a cookie belongs to, with the cookie's sealed bytes as the client sent them.
fn client_cookie_sealed(
    state: &AppState,
    ctx: &Context,
    allow_expired: bool,
) -> Result<(CookieData, Vec<u8>), Fault> {
    let cookie =
        ctx.cookie.clone()?.ok_or_else(|| Fault::new(ErrorCode::InvalidCookie, "cookie"))?;
    let sealed = cookie.data.ok_or_else(|| Fault::new(ErrorCode::InvalidCookie, "cookie"))?;
    let at = if allow_expired { i64::MIN } else { now() };
    let data = state.cookies.open(CookieKind::Client, &sealed, at).map_err(|p| match p {
        CookieProblem::Expired => Fault::new(ErrorCode::CookieExpired, "cookie"),
        CookieProblem::Invalid => Fault::new(ErrorCode::InvalidCookie, "cookie"),
    })?;
    Ok((data, sealed))
}

fn valid_protocol_version(v: &str) -> bool {
    let mut parts = v.trim().split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
}

/// What a client-service operation answers.
pub enum Answer {
    /// Rendered for this request alone: `routes.rs` wraps it in its envelope.
    Fresh(Vec<Piece>),
    /// Shared with clients in the same state (`answers.rs`, envelope included), with this
    /// client's own part.
    Shared { rendered: Arc<Rendered>, client_part: String },
}

pub async fn client_web_service(
    state: &Arc<AppState>,
    ctx: &Context,
    request: &Request,
) -> Result<Answer, Fault> {
    let text = match &*request.operation.name {
        "SyncUpdates" => return sync_updates(state, ctx, request).await,
        "GetExtendedUpdateInfo" => return extended_update_info(state, ctx, request).await,
        _ => client_text_operation(state, ctx, request).await?,
    };
    Ok(Answer::Fresh(vec![Piece::Text(text)]))
}

async fn client_text_operation(
    state: &Arc<AppState>,
    ctx: &Context,
    request: &Request,
) -> Result<String, Fault> {
    let op = &request.operation;
    match request.name() {
        "GetConfig" => {
            let v = op.child_text("protocolVersion").unwrap_or_default();
            if !valid_protocol_version(v) {
                return Err(Fault::invalid("protocolVersion"));
            }
            let host = ctx.host.split(':').next().unwrap_or("ferry");
            let properties = [
                ConfigProperty { name: "MaxExtendedUpdatesPerRequest", value: "50".into() },
                ConfigProperty {
                    name: "PackageServerShare",
                    value: format!("\\\\{host}\\UpdateServicesPackages"),
                },
                ConfigProperty { name: "ProtocolVersion", value: "3.2".into() },
                ConfigProperty { name: "IsInventoryRequired", value: "0".into() },
                ConfigProperty { name: "ClientReportingLevel", value: "2".into() },
            ];
            Ok(wire::get_config_response(&state.identity.config_last_change, true, &properties))
        }
        "GetCookie" => get_cookie(state, op),
        "RegisterComputer" => {
            let cookie = client_cookie(state, ctx, false)?;
            let info = wire::computer_info(op)?;
            let os_description =
                info.iter().find(|(k, _)| k == "OSDescription").map(|(_, v)| v.clone());
            state
                .writer
                .write(ClientWrite::Register {
                    computer_id: computer_of(&cookie)?,
                    info,
                    os_description,
                })
                .await
                .map_err(write_fault)?;
            state.computers.write().expect("computer cache lock").set_registered(&cookie.id);
            Ok(wire::register_computer_response())
        }
        "StartCategoryScan" => start_category_scan(state, op),
        "SyncPrinterCatalog" => {
            // The Add Printer wizard's driver search: this server serves no printer drivers.
            let cookie = client_cookie(state, ctx, false)?;
            let sealed = state.cookies.seal(CookieKind::Client, &cookie);
            let mut w = Writer::default();
            w.open_ns("SyncPrinterCatalogResponse", wire::CLIENT_NS)
                .open("SyncPrinterCatalogResult")
                .bool("Truncated", false);
            wire::write_cookie(&mut w, "NewCookie", &wire_time(cookie.expires), &sealed);
            w.raw("DriverSyncNotNeeded", "true")
                .close("SyncPrinterCatalogResult")
                .close("SyncPrinterCatalogResponse");
            Ok(w.out)
        }
        "RefreshCache" => {
            // The first request of a group set computes its offers for the whole catalog.
            let cookie = client_cookie(state, ctx, false)?;
            let (state, op) = (Arc::clone(state), op.clone());
            tokio::task::spawn_blocking(move || refresh_cache(&state, &cookie, &op))
                .await
                .map_err(blocking_fault)?
        }
        "GetFileLocations" => {
            let cookie = client_cookie(state, ctx, false)?;
            let digests = wire::file_locations_request(op)?;
            let catalog = state.catalog();
            let files: Vec<FileLocation> = digests
                .into_iter()
                .filter_map(|d| file_location(&catalog, &ctx.base_url, d))
                .collect();
            let sealed = state.cookies.seal(CookieKind::Client, &cookie);
            Ok(wire::file_locations_response(&files, &wire_time(cookie.expires), &sealed))
        }
        other => {
            Err(Fault::invalid(format!("{other}: this operation is not offered by a WSUS server")))
        }
    }
}

fn get_cookie(state: &AppState, op: &crate::wsus::tree::Element) -> Result<String, Fault> {
    let req = wire::get_cookie_request(op)?;
    if !valid_protocol_version(&req.protocol_version) {
        return Err(Fault::invalid("protocolVersion"));
    }
    let [(_, auth)] = req.auth_cookies.as_slice() else {
        return Err(Fault::new(ErrorCode::InvalidAuthorizationCookie, "authCookies"));
    };
    let now = now();
    let auth = state
        .cookies
        .open(CookieKind::ClientAuthorization, auth, now)
        .map_err(|_| Fault::new(ErrorCode::InvalidAuthorizationCookie, "authCookies"))?;
    if let Some(last_change) = &req.last_change {
        let theirs = chrono::DateTime::parse_from_rfc3339(last_change)
            .map_err(|_| Fault::invalid("lastChange"))?;
        let ours = chrono::DateTime::parse_from_rfc3339(&state.identity.config_last_change)
            .map_err(blocking_fault)?;
        if (theirs.timestamp_millis() - ours.timestamp_millis()).abs() > 1 {
            return Err(Fault::new(ErrorCode::ConfigChanged, "lastChange"));
        }
    }
    // An old cookie of ours carries what the client has seen; anything else starts afresh.
    let seen_stamp = req
        .old_cookie
        .and_then(|c| c.data)
        .and_then(|d| state.cookies.open(CookieKind::Client, &d, i64::MIN).ok())
        .filter(|c| c.id == auth.id)
        .map(|c| c.seen_stamp)
        .unwrap_or(0);
    let cookie = CookieData {
        id: auth.id,
        issued: now,
        expires: now + CLIENT_COOKIE_SECONDS,
        seen_stamp,
        protocol: req.protocol_version,
        ..Default::default()
    };
    let sealed = state.cookies.seal(CookieKind::Client, &cookie);
    Ok(wire::get_cookie_response(wire::CLIENT_NS, &wire_time(cookie.expires), &sealed))
}

/// WSUS-PROTOCOL.md §3.4: unknown ids are errors and drop their AND-group; a group of one
/// product prefers it, a product with a classification prefers the product; any other shape
/// ends the preferred list.
fn start_category_scan(state: &AppState, op: &crate::wsus::tree::Element) -> Result<String, Fault> {
    let requested = wire::start_category_scan_request(op)?;
    if requested.len() >= 200 {
        return Err(Fault::invalid("requestedCategories"));
    }
    let catalog = state.catalog();
    let kind_of = |g: &Guid| {
        catalog
            .latest_by_update
            .get(g)
            .map(|&i| &catalog.revs[i as usize])
            .filter(|r| r.kind == Kind::Category)
            .map(|r| r.category_kind.clone().unwrap_or_default())
    };
    let mut groups: std::collections::BTreeMap<i64, Vec<Guid>> = std::collections::BTreeMap::new();
    for (index, id) in &requested {
        groups.entry(*index).or_default().push(*id);
    }
    let mut preferred = Vec::new();
    let mut in_error = Vec::new();
    for ids in groups.values() {
        let unknown: Vec<Guid> = ids.iter().filter(|g| kind_of(g).is_none()).copied().collect();
        if !unknown.is_empty() {
            in_error.extend(unknown);
            continue;
        }
        let products: Vec<Guid> =
            ids.iter().filter(|g| kind_of(g).as_deref() == Some("Product")).copied().collect();
        let classifications =
            ids.iter().filter(|g| kind_of(g).as_deref() == Some("UpdateClassification")).count();
        match (products.as_slice(), classifications, ids.len()) {
            ([p], 0, 1) | ([p], 1, 2) => {
                if !preferred.contains(p) {
                    preferred.push(*p);
                }
            }
            _ => {
                preferred.clear();
                break;
            }
        }
    }
    Ok(wire::start_category_scan_response(&preferred, &in_error))
}

/// The groups of a registered computer: from the cache, else from the store.
async fn groups_of(state: &Arc<AppState>, client_id: &str) -> Result<Vec<Guid>, Fault> {
    if let Some(groups) = cached_groups(state, client_id) {
        return Ok(groups);
    }
    let (state, client_id) = (Arc::clone(state), client_id.to_string());
    tokio::task::spawn_blocking(move || stored_groups(&state, &client_id))
        .await
        .map_err(blocking_fault)?
}

/// The groups of a computer the cache knows as registered.
fn cached_groups(state: &AppState, client_id: &str) -> Option<Vec<Guid>> {
    let cache = state.computers.read().expect("computer cache lock");
    cache.get(client_id).filter(|c| c.registered).map(|c| c.groups.clone())
}

/// A computer the cache does not know as registered, read from the store (on a blocking
/// thread) and kept: it may have registered through another front end on the same database.
/// Not registered there either, it gets RegistrationRequired and registers, as with WSUS.
fn stored_groups(state: &AppState, client_id: &str) -> Result<Vec<Guid>, Fault> {
    if let Some(groups) = cached_groups(state, client_id) {
        return Ok(groups);
    }
    let record = state.pool.with(|s| s.computer(client_id)).map_err(store_fault)?;
    match record {
        Some(c) if c.registered => {
            let groups = c.groups.iter().map(|g| g.guid()).collect();
            state.computers.write().expect("computer cache lock").insert(c);
            Ok(groups)
        }
        _ => Err(Fault::new(ErrorCode::RegistrationRequired, "")),
    }
}

/// Everything a shared answer depends on besides the snapshots, its form and the client's own
/// part (`answers.rs`): who asks (their groups) and the whole request.
#[derive(Hash)]
enum AnswerOf<'a> {
    Sync { groups: &'a [Guid], seen_stamp: i64, params: &'a wire::SyncParameters },
    ExtendedInfo { groups: &'a [Guid], request: &'a wire::ExtendedInfoRequest, base_url: &'a str },
}

/// The snapshots a request reads, and their stamps.
fn snapshots(state: &AppState) -> (Arc<Snapshot>, Arc<super::snapshot::Deployments>, Stamps) {
    let (catalog, deployments) = (state.catalog(), state.deployments());
    let stamps = Stamps { catalog: catalog.stamp, deployments: deployments.stamp };
    (catalog, deployments, stamps)
}

/// The kept answer with this client's part: shared, or fresh parts when too large to keep.
fn answer_with(kept: Kept, client_part: String, state: &AppState) -> Answer {
    let ends_scan = match &kept {
        Kept::Shared(rendered) => rendered.ends_scan,
        Kept::TooLarge(parts) => parts.ends_scan,
    };
    if ends_scan {
        state.metrics.scans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match kept {
        Kept::Shared(rendered) => Answer::Shared { rendered, client_part },
        Kept::TooLarge(parts) => {
            let mut pieces = parts.head.clone();
            pieces.push(Piece::Text(client_part + &parts.tail));
            Answer::Fresh(pieces)
        }
    }
}

/// The answer kept under `key` with this client's part; when there is none, `render` makes it
/// on the blocking pool (a page walks the whole catalog; compressing it is CPU work too).
async fn shared_answer(
    state: &AppState,
    (stamps, key, form): (Stamps, AnswerKey, Form),
    client_part: String,
    render: impl FnOnce() -> Result<Parts, Fault> + Send + 'static,
) -> Result<Answer, Fault> {
    let largest = state.answers.largest();
    let render_blocking = || async move {
        tokio::task::spawn_blocking(move || {
            render().map(|parts| Rendered::keep(parts, form, largest))
        })
        .await
        .map_err(blocking_fault)?
    };
    let kept = state.answers.get_or_render(stamps, key, render_blocking).await?;
    Ok(answer_with(kept, client_part, state))
}

async fn sync_updates(
    state: &Arc<AppState>,
    ctx: &Context,
    request: &Request,
) -> Result<Answer, Fault> {
    let op = &request.operation;
    let (cookie, sealed) = client_cookie_sealed(state, ctx, false)?;
    let params = wire::sync_parameters(op)?;
    if params.installed_non_leaf.len() > 400 {
        return Err(Fault::invalid("parameters.InstalledNonLeafUpdateIDs"));
    }
    if params.system_spec.is_some() && !params.skip_software_sync {
        return Err(Fault::invalid("parameters.SystemSpec"));
    }
    let groups = groups_of(state, &cookie.id).await?;
    let (catalog, deployments, stamps) = snapshots(state);
    let form = ctx.form(request.version);
    let key = AnswerKey::of(&(
        stamps,
        form,
        AnswerOf::Sync { groups: &groups, seen_stamp: cookie.seen_stamp, params: &params },
    ));
    // The new cookie records what the client has now seen; when that is what it had seen, the
    // cookie it sent says so already (a fleet's scan pages after the first).
    let next = CookieData { seen_stamp: deployments.stamp, ..cookie.clone() };
    let sealed =
        if next == cookie { sealed } else { state.cookies.seal(CookieKind::Client, &next) };
    let client_part = wire::new_cookie_element(&wire_time(cookie.expires), &sealed);
    let state2 = Arc::clone(state);
    let render = move || {
        render_sync_page(&state2, &catalog, &deployments, &groups, &params, cookie.seen_stamp)
    };
    let answer = shared_answer(state, (stamps, key, form), client_part, render).await?;
    state.writer.synced(&computer_of(&cookie)?);
    Ok(answer)
}

/// One SyncUpdates page for computers of `groups` (WSUS-PROTOCOL.md §3.6), without the cookie.
fn render_sync_page(
    state: &AppState,
    catalog: &Snapshot,
    deployments: &super::snapshot::Deployments,
    groups: &[Guid],
    params: &wire::SyncParameters,
    seen_stamp: i64,
) -> Result<Parts, Fault> {
    let offers = state.offers.get(catalog, deployments, groups);
    let client = Client { offers: &offers, seen_stamp };
    let page = if params.skip_software_sync {
        sync::driver_page(catalog, &client, params, &|i| driver_hardware_ids(state, catalog, i))
    } else {
        sync::software_page(catalog, deployments, &client, params, &|i| {
            catalog.revs[i as usize].core_size
        })
    };
    let mut new_updates = Vec::with_capacity(page.new_updates.len());
    for (i, d) in &page.new_updates {
        let rev = &catalog.revs[*i as usize];
        let core = state.core(catalog, *i).map_err(store_fault)?;
        new_updates.push(wire::UpdateInfoOut {
            revision_id: rev.revision_id,
            deployment: d,
            is_leaf: rev.is_leaf,
            xml_escaped: Some(core),
        });
    }
    let changed: Vec<wire::UpdateInfoOut<'_>> = page
        .changed
        .iter()
        .map(|(i, d)| {
            let rev = &catalog.revs[*i as usize];
            wire::UpdateInfoOut {
                revision_id: rev.revision_id,
                deployment: d,
                is_leaf: rev.is_leaf,
                xml_escaped: None,
            }
        })
        .collect();
    let ends_scan = !page.truncated
        && !params.skip_software_sync
        && page.new_updates.iter().all(|(i, _)| catalog.revs[*i as usize].is_leaf);
    let parts = wire::sync_updates_parts(&wire::SyncResult {
        new_updates: &new_updates,
        out_of_scope: &page.out_of_scope,
        changed_updates: &changed,
        truncated: page.truncated,
        driver_sync_not_needed: if params.skip_software_sync {
            page.new_updates.is_empty()
        } else {
            !params.filter_categories.is_empty()
        },
    });
    Ok(Parts { head: parts.head, tail: parts.tail, ends_scan })
}

/// Hardware ids a driver update names in its `d.WindowsDriverMetaData`.
fn driver_hardware_ids(state: &AppState, catalog: &Snapshot, idx: u32) -> Vec<String> {
    let Ok(core) = state.core(catalog, idx) else { return Vec::new() };
    let mut out = Vec::new();
    let mut rest: &str = &core;
    while let Some(i) = rest.find("HardwareID=\"") {
        rest = &rest[i + 12..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    out
}

fn refresh_cache(
    state: &AppState,
    cookie: &CookieData,
    op: &crate::wsus::tree::Element,
) -> Result<String, Fault> {
    let ids = wire::refresh_cache_request(op)?;
    let groups = stored_groups(state, &cookie.id)?;
    let catalog = state.catalog();
    let deployments = state.deployments();
    let offers = state.offers.get(&catalog, &deployments, &groups);
    let entries: Vec<wire::RefreshEntry<'_>> = ids
        .iter()
        .filter_map(|(g, n)| catalog.by_identity.get(&(*g, *n)).copied())
        .filter_map(|i| {
            let d = offers.get(i)?.clone();
            // Real WSUS leaves bundle members out.
            if d.action == "Bundle" {
                return None;
            }
            let rev = &catalog.revs[i as usize];
            Some(wire::RefreshEntry {
                revision_id: rev.revision_id,
                update_id: &rev.update_id_text,
                revision_number: rev.revision_number,
                is_leaf: rev.is_leaf,
                deployment: d,
            })
        })
        .collect();
    Ok(wire::refresh_cache_response(&entries))
}

/// Where a client downloads a file. An express file this store does not hold (the bundles left
/// express files behind) has no location, so clients use the full files, as they do against a
/// WSUS server that does not download express files.
pub fn file_location(catalog: &Snapshot, base_url: &str, digest: Vec<u8>) -> Option<FileLocation> {
    let sha1: [u8; 20] = digest.as_slice().try_into().ok()?;
    let f = catalog.files.get(&sha1).filter(|f| f.present || !f.express)?;
    let path = ContentStore::relative_path(&crate::catalog::Sha1Digest(sha1), &f.extension);
    Some(FileLocation { digest, url: format!("{base_url}/Content/{path}") })
}

/// Language fallback (WSUS-PROTOCOL.md §3.4): each requested locale, then its neutral parent,
/// then `all`, then the update's default language, then whatever it has.
fn pick_language<'a>(
    available: &'a [String],
    locales: &[String],
    default: Option<&str>,
) -> Option<&'a String> {
    let find = |l: &str| available.iter().find(|a| a.eq_ignore_ascii_case(l));
    for l in locales {
        if let Some(a) = find(l) {
            return Some(a);
        }
        if let Some((parent, _)) = l.split_once('-')
            && let Some(a) = find(parent)
        {
            return Some(a);
        }
    }
    find("all").or_else(|| default.and_then(find)).or_else(|| find("en")).or(available.first())
}

async fn extended_update_info(
    state: &Arc<AppState>,
    ctx: &Context,
    request: &Request,
) -> Result<Answer, Fault> {
    let op = &request.operation;
    let cookie = client_cookie(state, ctx, false)?;
    let req = wire::extended_info_request(op)?;
    if req.revision_ids.len() > 50 {
        return Err(Fault::invalid("revisionIDs"));
    }
    let groups = groups_of(state, &cookie.id).await?;
    let (catalog, deployments, stamps) = snapshots(state);
    let form = ctx.form(request.version);
    let what = AnswerOf::ExtendedInfo { groups: &groups, request: &req, base_url: &ctx.base_url };
    let key = AnswerKey::of(&(stamps, form, what));
    let (state2, base_url) = (Arc::clone(state), ctx.base_url.clone());
    let render = move || {
        let text = render_extended_info(&state2, &catalog, &deployments, &groups, &req, &base_url)?;
        Ok(Parts { head: vec![Piece::Text(text)], tail: String::new(), ends_scan: false })
    };
    shared_answer(state, (stamps, key, form), String::new(), render).await
}

/// The extended information of the revisions `req` names that `groups` are offered.
fn render_extended_info(
    state: &AppState,
    catalog: &Snapshot,
    deployments: &super::snapshot::Deployments,
    groups: &[Guid],
    req: &wire::ExtendedInfoRequest,
    base_url: &str,
) -> Result<String, Fault> {
    let offers = state.offers.get(catalog, deployments, groups);
    let mut in_scope: Vec<u32> = Vec::new();
    let mut out_of_scope = Vec::new();
    for id in &req.revision_ids {
        match catalog.index_of(*id) {
            Some(i) if offers.get(i).is_some() => in_scope.push(i),
            _ => out_of_scope.push(*id),
        }
    }
    let wants = |t: &str| req.info_types.iter().any(|x| x.eq_ignore_ascii_case(t));
    let mut updates: Vec<(i32, String)> = Vec::new();
    let mut files: Vec<FileLocation> = Vec::new();
    state
        .pool
        .with(|store| {
            if wants("Extended") {
                for &i in &in_scope {
                    let rev = &catalog.revs[i as usize];
                    if let Some(x) = store.fragment(rev.revision_id, &FragmentKind::Extended)? {
                        updates.push((rev.revision_id, wire::escape_fragment(&x)));
                    }
                    for sha1 in &rev.files {
                        if !files.iter().any(|f| f.digest == sha1[..])
                            && let Some(l) = file_location(catalog, base_url, sha1.to_vec())
                        {
                            files.push(l);
                        }
                    }
                }
            }
            if wants("LocalizedProperties") {
                for &i in &in_scope {
                    let rev = &catalog.revs[i as usize];
                    let (languages, default) = store.revision_languages(rev.revision_id)?;
                    if let Some(lang) = pick_language(&languages, &req.locales, default.as_deref())
                        && let Some(x) = store
                            .fragment(rev.revision_id, &FragmentKind::Localized(lang.clone()))?
                    {
                        updates.push((rev.revision_id, wire::escape_fragment(&x)));
                    }
                }
            }
            Ok(())
        })
        .map_err(store_fault)?;
    Ok(wire::extended_info_response(&updates, &files, &out_of_scope))
}

pub async fn simple_auth(state: &Arc<AppState>, request: &Request) -> Result<String, Fault> {
    if request.name() != "GetAuthorizationCookie" {
        return Err(Fault::invalid(format!(
            "{}: this operation is not offered by SimpleAuth",
            request.name()
        )));
    }
    let req = wire::authorization_request(&request.operation)?;
    let client_id = req.client_id.lowercased();
    let groups = requested_groups(&client_id, &req.target_groups);
    state
        .writer
        .write(ClientWrite::Contact {
            computer_id: client_id.clone(),
            dns_name: req.dns_name.clone(),
            requested_groups: groups.clone(),
        })
        .await
        .map_err(write_fault)?;
    let now = now();
    let cookie = CookieData {
        id: client_id.into(),
        name: req.dns_name,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        issued: now,
        expires: now + AUTH_COOKIE_SECONDS,
        ..Default::default()
    };
    let sealed = state.cookies.seal(CookieKind::ClientAuthorization, &cookie);
    Ok(wire::authorization_cookie_response(wire::SIMPLE_AUTH_NS, "SimpleTargeting", &sealed))
}

/// The group names a client asks for (client-side targeting), as far as they are names a group
/// may have: at most `MAX_GROUPS_PER_CLIENT`; the others are left out and logged. A client is
/// not refused for them: it still gets updates, from the groups it may join.
fn requested_groups(client_id: &str, names: &[String]) -> Vec<GroupName> {
    if names.len() > MAX_GROUPS_PER_CLIENT {
        tracing::warn!(
            "{client_id} names {} target groups; only the first {MAX_GROUPS_PER_CLIENT} count",
            names.len()
        );
    }
    names
        .iter()
        .take(MAX_GROUPS_PER_CLIENT)
        .filter_map(|n| {
            GroupName::parse(n)
                .map_err(|e| tracing::warn!("{client_id}: {e}; the name is left out"))
                .ok()
        })
        .collect()
}

pub async fn reporting(
    state: &Arc<AppState>,
    ctx: &Context,
    request: &Request,
) -> Result<String, Fault> {
    if let Some(answer) = super::server_sync_service::rollup(state, request) {
        return answer;
    }
    match request.name() {
        "ReportEventBatch" => {
            // Reports may arrive after the cookie expired: who sent them still counts.
            let cookie = client_cookie(state, ctx, true)?;
            let events = wire::report_event_batch_request(&request.operation)?;
            let computer_id = computer_of(&cookie)?;
            let records: Vec<EventRecord> = events
                .into_iter()
                .map(|e| EventRecord {
                    event_instance_id: e.event_instance_id,
                    computer_id: computer_id.clone(),
                    event_id: e.event_id,
                    source_id: e.source_id,
                    update_id: e.update_id,
                    revision_number: e.revision_number,
                    win32_hresult: e.win32_hresult,
                    time_at_target: e.time_at_target,
                    app_name: e.app_name,
                    replacement_strings: e.replacement_strings,
                    misc_data: e.misc_data,
                })
                .collect();
            // Counted in the memory budget until written: a flood of reports waits (and then
            // gets ServerBusy, so clients report again later) instead of piling up in memory.
            let bytes: usize = records.iter().map(EventRecord::approximate_bytes).sum();
            let held = state
                .budget
                .hold(bytes, ctx.peer)
                .await
                .map_err(|_| Fault::new(ErrorCode::ServerBusy, "reports"))?;
            state
                .writer
                .write_counted(ClientWrite::Events { computer_id, events: records }, held)
                .await
                .map_err(|e| {
                    tracing::debug!("reported events refused: {e}");
                    Fault::new(ErrorCode::ServerBusy, "reports")
                })?;
            Ok(wire::report_event_batch_response(true))
        }
        other => Err(Fault::invalid(format!(
            "{other}: this reporting operation is not offered to clients"
        ))),
    }
}
