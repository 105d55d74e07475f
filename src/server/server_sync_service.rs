//! The upstream's web services of MS-WSUSSS: ServerSync and DssAuth, so that WSUS servers (and
//! other ferry caches) on the isolated network sync from this store (WSUS-PROTOCOL.md §4).

use super::client_service::{blocking_fault, now, store_fault, write_fault};
use super::cookies::{
    CookieData, CookieProblem, Kind as CookieKind, SERVER_COOKIE_SECONDS, wire_time,
};
use super::state::AppState;
use crate::admin::Action;
use crate::bundle::held::held;
use crate::catalog::Guid;
use crate::catalog::language::WSUS_LANGUAGES as LANGUAGES;
use crate::store::{ALL_COMPUTERS, ClientWrite, DownstreamFilter, Store};
use crate::wsus::client::{self as client_wire};
use crate::wsus::server_sync::{
    self as wire, ConfigData, DeploymentOut, DeploymentsOut, FileUrlOut, GroupOut, Language,
    UpdateDataOut,
};
use crate::wsus::soap::{ErrorCode, Fault, Request};
use std::collections::HashMap;
use std::sync::Arc;

/// GetUpdateData takes at most this many revisions, as WSUS advertises.
pub const MAX_UPDATES_PER_REQUEST: usize = 100;

/// `<stamp>,<yyyy-MM-dd HH:mm:ss.fff>`: the shape of WSUS anchors, with this store's change
/// counter in front (WSUS ignores its own counter; ferry reads it).
fn anchor(stamp: i64) -> String {
    format!("{stamp},{}", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.3f"))
}

/// The counter of an anchor this server issued. `Ok(None)`: an anchor of another server (a bare
/// time, as Microsoft Update writes them), which gets everything.
fn read_anchor(anchor: &str) -> Result<Option<i64>, ()> {
    let a = anchor.trim();
    if let Some((counter, time)) = a.split_once(',') {
        let stamp = counter.trim().parse::<i64>().map_err(|_| ())?;
        chrono::NaiveDateTime::parse_from_str(time.trim(), "%Y-%m-%d %H:%M:%S%.f")
            .map_err(|_| ())?;
        return Ok(Some(stamp));
    }
    chrono::NaiveDateTime::parse_from_str(a, "%Y-%m-%d %H:%M:%S%.f").map(|_| None).map_err(|_| ())
}

/// The downstream a ServerSync cookie belongs to. Expired or unreadable cookies are
/// InvalidCookie: the downstream then starts over from GetAuthConfig.
fn server_cookie(state: &AppState, op: &crate::wsus::tree::Element) -> Result<CookieData, Fault> {
    let cookie = wire::cookie(op)?
        .and_then(|c| c.data)
        .ok_or_else(|| Fault::new(ErrorCode::InvalidCookie, ""))?;
    let data = state.cookies.open(CookieKind::Server, &cookie, now()).map_err(|p| match p {
        CookieProblem::Expired | CookieProblem::Invalid => Fault::new(ErrorCode::InvalidCookie, ""),
    })?;
    if data.protocol.split('.').next() != Some("1") {
        return Err(Fault::new(ErrorCode::IncompatibleProtocolVersion, ""));
    }
    Ok(data)
}

/// Runs store work on the blocking pool with a pooled connection.
async fn with_store<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut Store) -> Result<T, Fault> + Send + 'static,
) -> Result<T, Fault> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.pool.with(|store| Ok(f(store))).map_err(store_fault)?)
        .await
        .map_err(blocking_fault)?
}

pub async fn server_sync(
    state: &Arc<AppState>,
    ctx: &super::client_service::Context,
    request: &Request,
) -> Result<String, Fault> {
    let op = &request.operation;
    match request.name() {
        "GetAuthConfig" => Ok(wire::auth_config_response(&state.identity.config_last_change)),
        "GetCookie" => get_cookie(state, op),
        "GetConfigData" => {
            server_cookie(state, op)?;
            config_data(state, op).await
        }
        "GetRevisionIdList" => {
            server_cookie(state, op)?;
            revision_id_list(state, op).await
        }
        "GetUpdateData" => {
            server_cookie(state, op)?;
            update_data_answer(state, ctx, op).await
        }
        "GetUpdateDecryptionData" => {
            server_cookie(state, op)?;
            Ok(wire::update_decryption_data_response())
        }
        "GetDeployments" => {
            server_cookie(state, op)?;
            let req = wire::deployments_request(op);
            let stamp = state.deployments().stamp;
            let since = match req.deployment_anchor.as_deref().map(read_anchor) {
                None => -1,
                Some(Ok(s)) => s.filter(|&s| s <= stamp).unwrap_or(-1),
                Some(Err(())) => return Err(Fault::invalid("deploymentAnchor")),
            };
            with_store(state, move |s| deployments(s, since, stamp)).await
        }
        "DownloadFiles" => {
            server_cookie(state, op)?;
            let digests = wire::download_files_request(op)?;
            // Ferry has no parent to fetch from: what it holds it serves, the rest is not
            // coming. A FileDigestsMissing fault would make a WSUS downstream restart its
            // whole sync for it, so the request is acknowledged and logged.
            let catalog = state.catalog();
            let missing = digests
                .iter()
                .filter(|d| {
                    <[u8; 20]>::try_from(d.as_slice())
                        .map_or(true, |d| catalog.files.get(&d).is_none_or(|f| !f.present))
                })
                .count();
            if missing > 0 {
                tracing::info!("a downstream asked for {missing} file(s) this store does not hold");
            }
            Ok(wire::empty_response("DownloadFiles"))
        }
        other => {
            Err(Fault::invalid(format!("{other}: this operation is not offered by this upstream")))
        }
    }
}

/// What a downstream syncs first: languages, the anchor, the limits.
async fn config_data(
    state: &Arc<AppState>,
    op: &crate::wsus::tree::Element,
) -> Result<String, Fault> {
    let theirs = wire::config_data_request(op);
    let stamp = state.catalog().stamp;
    let current = theirs.as_deref().and_then(|a| read_anchor(a).ok().flatten()) == Some(stamp);
    // What bundles brought (languages, express files); a store without imports offers
    // the languages of the localized properties it holds.
    let (held, have) = with_store(state, |s| {
        Ok((held(s).map_err(store_fault)?, s.languages().map_err(store_fault)?))
    })
    .await?;
    let enabled = |short: &str| match (&held.languages, held.channels) {
        (_, 0) => have.iter().any(|h| h.eq_ignore_ascii_case(short)),
        (None, _) => true,
        (Some(set), _) => set.contains(short),
    };
    let languages = if current {
        Vec::new()
    } else {
        LANGUAGES
            .iter()
            .map(|(id, short, long)| Language {
                id: *id,
                short: short.to_string(),
                long: long.to_string(),
                enabled: enabled(short),
            })
            .collect()
    };
    Ok(wire::config_data_response(&ConfigData {
        catalog_only_sync: false,
        // Everything this store holds is present or listed: downstreams fetch what they approve.
        lazy_sync: true,
        // Express files are here only when every channel's bundles carried them.
        hosts_psf_files: held.channels == 0 || held.express,
        max_updates_per_request: MAX_UPDATES_PER_REQUEST as i32,
        new_anchor: anchor(stamp),
        protocol_version: wire::PROTOCOL_VERSION.to_string(),
        languages,
        max_decryption_per_request: 100,
    }))
}

/// The revisions a downstream's filter selects, changed since its anchor.
async fn revision_id_list(
    state: &Arc<AppState>,
    op: &crate::wsus::tree::Element,
) -> Result<String, Fault> {
    let filter = wire::revision_id_list_request(op)?;
    let stamp = state.catalog().stamp;
    let since = match filter.anchor.as_deref().map(read_anchor) {
        None => None,
        // A counter beyond ours is another server's (or a rebuilt store's): everything.
        Some(Ok(s)) => s.filter(|&s| s <= stamp),
        Some(Err(())) => return Err(Fault::invalid("filter")),
    };
    // The anchor is taken before the query, so nothing stored meanwhile is missed.
    let new_anchor = anchor(stamp);
    let lists = |l: Option<Vec<(Guid, bool)>>| {
        l.map(|v| v.into_iter().map(|(g, d)| (g.to_string(), d)).collect())
    };
    let f = DownstreamFilter {
        since,
        get_config: filter.get_config,
        categories: lists(filter.categories),
        classifications: lists(filter.classifications),
        // LCIDs as WSUS numbers them; 0 ("all") or none known: every language.
        languages: filter.languages.filter(|ids| !ids.contains(&0)).map(|ids| {
            LANGUAGES
                .iter()
                .filter(|(id, ..)| ids.contains(id))
                .filter_map(|(_, short, _)| crate::catalog::Language::new(short).ok())
                .collect()
        }),
    };
    let revisions =
        with_store(state, move |s| s.revisions_for_downstream(&f).map_err(store_fault)).await?;
    let ids: Vec<(Guid, i32)> =
        revisions.iter().filter_map(|(u, n)| Guid::parse(u).ok().map(|g| (g, *n))).collect();
    Ok(wire::revision_id_list_response(&new_anchor, &ids))
}

/// The documents of the revisions a downstream asks for (at most `MAX_UPDATES_PER_REQUEST`), counted in the budget.
async fn update_data_answer(
    state: &Arc<AppState>,
    ctx: &super::client_service::Context,
    op: &crate::wsus::tree::Element,
) -> Result<String, Fault> {
    let mut ids = wire::update_data_request(op, MAX_UPDATES_PER_REQUEST)?;
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    let found = with_store(state, move |s| stored_revisions(s, &ids)).await?;
    // The documents and the answer (escaped, about as large again) are built in memory:
    // counted in the budget before they are.
    let bytes = found.iter().map(|r| r.2).sum::<u64>().saturating_mul(2);
    let _held = state
        .budget
        .hold(usize::try_from(bytes).unwrap_or(usize::MAX), ctx.peer)
        .await
        .map_err(|_| busy())?;
    with_store(state, move |s| update_data(s, &found)).await
}

fn get_cookie(state: &AppState, op: &crate::wsus::tree::Element) -> Result<String, Fault> {
    let req = client_wire::get_cookie_request(op)?;
    let version = req.protocol_version.trim();
    let mut parts = version.split('.');
    let (Some(major), Some(minor), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Fault::invalid("protocolVersion"));
    };
    if major.parse::<u32>().is_err() || minor.parse::<u32>().is_err() {
        return Err(Fault::invalid("protocolVersion"));
    }
    if major != "1" {
        return Err(Fault::new(ErrorCode::IncompatibleProtocolVersion, "protocolVersion"));
    }
    let [(_, auth)] = req.auth_cookies.as_slice() else {
        return Err(Fault::invalid("authCookies"));
    };
    let auth = state
        .cookies
        .open(CookieKind::ServerAuthorization, auth, now())
        .map_err(|_| Fault::new(ErrorCode::InvalidAuthorizationCookie, "authCookies"))?;
    let now = now();
    let cookie = CookieData {
        id: auth.id,
        name: auth.name,
        issued: now,
        expires: now + SERVER_COOKIE_SECONDS,
        protocol: version.to_string(),
        ..Default::default()
    };
    let sealed = state.cookies.seal(CookieKind::Server, &cookie);
    Ok(wire::cookie_response(&wire_time(cookie.expires), &sealed))
}

fn busy() -> Fault {
    Fault::new(ErrorCode::ServerBusy, "the server is busy; try again later")
}

/// A revision a downstream asked for: its identity, revision id and document size.
type Found = ((Guid, i32), i32, u64);

/// The revisions of a GetUpdateData batch this store holds. Real WSUS faults the whole call for
/// one unknown revision; leaving it out serves the rest of the batch, and a downstream only asks
/// for what GetRevisionIdList listed.
fn stored_revisions(store: &mut Store, ids: &[(Guid, i32)]) -> Result<Vec<Found>, Fault> {
    let mut found = Vec::with_capacity(ids.len());
    for &(id, rev) in ids {
        match store.stored_revision(&id.to_string(), rev).map_err(store_fault)? {
            Some((revision_id, size)) => found.push(((id, rev), revision_id, size)),
            None => {
                tracing::info!("a downstream asked for {id}/{rev}, which this store does not hold")
            }
        }
    }
    Ok(found)
}

fn update_data(store: &mut Store, found: &[Found]) -> Result<String, Fault> {
    let mut documents: Vec<(Guid, i32, String, Vec<[u8; 20]>)> = Vec::new();
    let mut sources: HashMap<[u8; 20], String> = HashMap::new();
    for &((id, rev), revision_id, _) in found {
        let key = id.to_string();
        let (frame, size) = store.compressed_document(revision_id).map_err(store_fault)?;
        let document = crate::store::decompress_document(&frame, size, &format!("{key}/{rev}"))
            .map_err(blocking_fault)?;
        let document = String::from_utf8(document).map_err(blocking_fault)?;
        let files = store.revision_file_sources(revision_id).map_err(store_fault)?;
        for (sha1, url) in &files {
            if let Some(u) =
                url.as_ref().filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            {
                sources.insert(*sha1, u.clone());
            } else {
                sources.entry(*sha1).or_default();
            }
        }
        documents.push((id, rev, document, files.into_iter().map(|(d, _)| d).collect()));
    }
    let updates: Vec<UpdateDataOut<'_>> = documents
        .iter()
        .map(|(id, rev, doc, digests)| UpdateDataOut {
            id: *id,
            revision: *rev,
            document: doc,
            file_digests: digests,
        })
        .collect();
    let mut files: Vec<FileUrlOut<'_>> =
        sources.iter().map(|(d, u)| FileUrlOut { digest: *d, mu_url: u }).collect();
    files.sort_by_key(|f| f.digest);
    Ok(wire::update_data_response(&updates, &files))
}

fn deployments(store: &mut Store, since: i64, stamp: i64) -> Result<String, Fault> {
    let groups = store.groups().map_err(store_fault)?;
    let (changed, dead) = store.deployments_since(since).map_err(store_fault)?;
    let hidden: Vec<String> =
        store.declines().map_err(store_fault)?.into_iter().map(|d| d.update_id.into()).collect();
    const ROOT: &str = "00000000-0000-0000-0000-000000000000";
    let group_out: Vec<GroupOut<'_>> = groups
        .iter()
        .map(|g| GroupOut {
            id: &g.group_id,
            parent: g.parent_id.as_deref().unwrap_or(ROOT),
            name: &g.name,
            builtin: g.is_builtin,
        })
        .collect();
    const NO_DEADLINE: &str = "9999-12-31T23:59:59.9999999";
    let deployments: Vec<DeploymentOut<'_>> = changed
        .iter()
        .map(|d| DeploymentOut {
            update_id: &d.update_id,
            revision: d.revision_number,
            action: match d.action {
                Action::Install => 0,
                Action::Uninstall => 1,
                Action::Block => 3,
            },
            admin: d.admin.as_deref().unwrap_or("ferry"),
            deadline: d.deadline.as_deref().unwrap_or(NO_DEADLINE),
            go_live: &d.changed_at,
            guid: &d.deployment_guid,
            group: &d.group_id,
        })
        .collect();
    debug_assert!(groups.iter().any(|g| g.group_id == ALL_COMPUTERS));
    Ok(wire::deployments_response(&DeploymentsOut {
        anchor: &anchor(stamp),
        groups: &group_out,
        deployments: &deployments,
        dead: &dead,
        hidden: &hidden,
    }))
}

pub async fn dss_auth(state: &Arc<AppState>, request: &Request) -> Result<String, Fault> {
    if request.name() != "GetAuthorizationCookie" {
        return Err(Fault::invalid(format!(
            "{}: this operation is not offered by DssAuth",
            request.name()
        )));
    }
    let req = wire::dss_auth_request(&request.operation)?;
    let server_id = req.account_guid.to_string();
    state
        .writer
        .write(ClientWrite::Downstream {
            server_id: server_id.clone(),
            name: req.account_name.clone(),
        })
        .await
        .map_err(write_fault)?;
    let now = now();
    let cookie = CookieData {
        id: server_id,
        name: req.account_name,
        issued: now,
        expires: now + SERVER_COOKIE_SECONDS,
        ..Default::default()
    };
    let sealed = state.cookies.seal(CookieKind::ServerAuthorization, &cookie);
    Ok(client_wire::authorization_cookie_response(wire::DSS_AUTH_NS, "DssTargeting", &sealed))
}

/// Reporting rollup from downstream servers (WSUS-PROTOCOL.md §4.13): they use a fixed dummy
/// cookie. Ferry keeps no rollup and says so (DoDetailedRollup false).
pub fn rollup(state: &AppState, request: &Request) -> Option<Result<String, Fault>> {
    let ns = wire::SERVER_SYNC_NS;
    Some(Ok(match request.name() {
        "GetRollupConfiguration" => wire::rollup_configuration_response(
            &state.identity.server_id,
            &state.identity.server_id,
        ),
        "RollupDownstreamServers" => wire::empty_response("RollupDownstreamServers"),
        "RollupComputers" => format!(
            "<RollupComputersResponse xmlns=\"{ns}\"><RollupComputersResult /></RollupComputersResponse>"
        ),
        "GetOutOfSyncComputers" => {
            format!(
                "<GetOutOfSyncComputersResponse xmlns=\"{ns}\"><GetOutOfSyncComputersResult /></GetOutOfSyncComputersResponse>"
            )
        }
        "RollupComputerStatus" => format!(
            "<RollupComputerStatusResponse xmlns=\"{ns}\"><RollupComputerStatusResult>true</RollupComputerStatusResult></RollupComputerStatusResponse>"
        ),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_carry_the_counter_and_foreign_ones_mean_everything() {
        assert_eq!(read_anchor(&anchor(42)), Ok(Some(42)));
        assert_eq!(read_anchor("9438,2026-10-04 16:09:27.371"), Ok(Some(9438)));
        assert_eq!(read_anchor("2026-10-05 17:27:44.393"), Ok(None));
        assert_eq!(read_anchor("garbage"), Err(()));
        assert_eq!(read_anchor("12,garbage"), Err(()));
    }
}
