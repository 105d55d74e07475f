//! Syncing the cache store's catalog from an upstream, as a WSUS downstream server does
//! (WSUS-PROTOCOL.md §4.2): configuration data, the configuration pass (categories and
//! detectoids), then the products × classifications of a profile, each from its own anchor.
//!
//! Invariant: an anchor is stored only after everything it covers is committed, so a sync that
//! stops (an error, a kill) continues on the next run: stored revisions are not fetched again.

use super::UpstreamError;
use super::session::Session;
use super::transport::{Transport, TransportOptions};
use crate::bundle::profile::Profile;
use crate::bundle::select::resolve_filter;
use crate::catalog::{Guid, Language};
use crate::store::{IngestItem, IngestOptions, Store};
use crate::wsus::downstream::{FileUrl, Filter};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The upstream: a ServerSync URL, or a server's base URL.
    pub upstream: String,
    pub transport: TransportOptions,
    /// GetUpdateData calls in flight.
    pub parallel: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub upstream: String,
    /// The upstream serves content only through Microsoft Update URLs.
    pub catalog_only_sync: bool,
    pub config_revisions_listed: usize,
    pub update_revisions_listed: usize,
    pub revisions_fetched: usize,
    pub document_bytes: u64,
    pub anchor: String,
    pub seconds: f64,
    /// Retries and re-authorizations along the way.
    pub notes: Vec<String>,
}

/// What the sync is doing, for a progress display.
#[derive(Debug, Clone)]
pub enum SyncProgress {
    Listing(&'static str),
    /// (documents done, documents to fetch)
    Fetching(u64, u64),
}

fn key(upstream: &str, what: &str) -> String {
    format!("upstream.{upstream}.{what}")
}

/// This cache's identity towards upstreams (a downstream server id, kept).
fn identity(cache: &Store) -> Result<(String, Guid), UpstreamError> {
    let id = match cache.setting("downstream.server_id")? {
        Some(id) => Guid::parse(&id).map_err(|_| {
            UpstreamError::Config(format!("the cache's downstream.server_id {id:?} is not a GUID"))
        })?,
        None => {
            let id = crate::random::guid();
            cache.set_setting("downstream.server_id", &id.to_string())?;
            id
        }
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let name = if host.is_empty() { "ferry-export".to_string() } else { host };
    Ok((name, id))
}

/// Syncs the catalog a profile needs into the cache.
pub fn sync(
    cache: &mut Store,
    profile: &Profile,
    options: &SyncOptions,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<SyncReport, UpstreamError> {
    let started = Instant::now();
    let transport = Transport::new(&options.transport)?;
    let (name, id) = identity(cache)?;
    let session = Arc::new(Session::new(transport, &options.upstream, &name, id));
    let upstream = session.url().to_string();
    let mut report = SyncReport { upstream: upstream.clone(), ..Default::default() };

    session.authorize()?;
    let config_anchor = cache.setting(&key(&upstream, "config_anchor"))?;
    let config = session.config_data(config_anchor.as_deref())?;
    report.catalog_only_sync = config.catalog_only_sync;
    let batch = config.max_updates_per_request.clamp(1, 1000) as usize;

    // The configuration pass: every category and detectoid.
    progress(SyncProgress::Listing("categories and detectoids"));
    let category_anchor = cache.setting(&key(&upstream, "category_anchor"))?;
    let (new_category_anchor, listed) = session.revision_ids(&Filter {
        anchor: category_anchor.as_deref(),
        get_config: true,
        ..Default::default()
    })?;
    report.config_revisions_listed = listed.len();
    fetch_and_store(cache, &session, &listed, batch, options.parallel, &mut report, progress)?;
    cache.set_setting(&key(&upstream, "category_anchor"), &new_category_anchor)?;
    if !config.new_anchor.is_empty() {
        cache.set_setting(&key(&upstream, "config_anchor"), &config.new_anchor)?;
    }
    cache.set_setting(
        &key(&upstream, "catalog_only_sync"),
        if config.catalog_only_sync { "true" } else { "false" },
    )?;

    // The profile's languages, as the upstream numbers them (every one: no language filter).
    let offered = offered_languages(cache, &config.languages)?;
    profile
        .check_languages(
            &offered.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
            &format!("the upstream {upstream}"),
        )
        .map_err(|e| UpstreamError::Config(e.to_string()))?;
    let language_ids: Vec<i32> = if profile.languages.iter().any(Language::is_all) {
        Vec::new()
    } else {
        offered
            .iter()
            .filter(|(_, short)| profile.languages.iter().any(|l| l.as_str() == short))
            .map(|(id, _)| *id)
            .collect()
    };

    // The profile's products × classifications, from the anchor of exactly this filter.
    let catalog = cache.catalog_revisions()?;
    let (products, classifications) =
        resolve_filter(&catalog, profile).map_err(|e| UpstreamError::Config(e.0))?;
    drop(catalog);
    let mut filter_ids: Vec<String> =
        products.iter().chain(&classifications).map(|(g, _)| g.clone()).collect();
    filter_ids.sort();
    filter_ids.extend(language_ids.iter().map(|id| format!("language {id}")));
    let filter_key = key(
        &upstream,
        &format!(
            "sync_anchor.{:016x}",
            xxhash_rust::xxh3::xxh3_64(filter_ids.join(",").as_bytes())
        ),
    );
    let anchor = cache.setting(&filter_key)?;
    let delta = anchor.is_some();
    let as_guids = |list: &[(String, String)]| -> Vec<(Guid, bool)> {
        list.iter().filter_map(|(g, _)| Guid::parse(g).ok()).map(|g| (g, delta)).collect()
    };
    let (product_ids, class_ids) = (as_guids(&products), as_guids(&classifications));
    let languages: Vec<(i32, bool)> = language_ids.iter().map(|&id| (id, delta)).collect();
    progress(SyncProgress::Listing("updates"));
    let (new_anchor, listed) = session.revision_ids(&Filter {
        anchor: anchor.as_deref(),
        get_config: false,
        categories: &product_ids,
        classifications: &class_ids,
        languages: &languages,
    })?;
    report.update_revisions_listed = listed.len();
    fetch_and_store(cache, &session, &listed, batch, options.parallel, &mut report, progress)?;
    cache.set_setting(&filter_key, &new_anchor)?;
    report.anchor = new_anchor;
    report.notes = session.take_log();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The cache setting that keeps the languages the last upstream offered, `id:short` pairs.
pub const OFFERED_LANGUAGES: &str = "upstream.languages";

/// The languages an upstream offers as (LCID, short name): those its configuration data lists
/// as enabled (all of them when "all" is), kept in the cache for the syncs whose answer has no
/// list (WSUS sends one only to a first call) and for exports without a sync.
fn offered_languages(
    cache: &Store,
    listed: &[crate::wsus::server_sync::Language],
) -> Result<Vec<(i32, String)>, UpstreamError> {
    let all_enabled = listed.iter().any(|l| l.id == 0 && l.enabled);
    let mut offered: Vec<(i32, String)> = listed
        .iter()
        .filter(|l| l.id != 0 && (l.enabled || all_enabled))
        .filter_map(|l| Some((l.id, Language::new(&l.short).ok()?.to_string())))
        .collect();
    if offered.is_empty() {
        return stored_offered_languages(cache);
    }
    offered.sort();
    let text: Vec<String> = offered.iter().map(|(id, l)| format!("{id}:{l}")).collect();
    cache.set_setting(OFFERED_LANGUAGES, &text.join(" "))?;
    Ok(offered)
}

/// The languages the last upstream offered, or WSUS's list before any sync.
pub fn stored_offered_languages(cache: &Store) -> Result<Vec<(i32, String)>, UpstreamError> {
    let stored = cache.setting(OFFERED_LANGUAGES)?.unwrap_or_default();
    let parsed: Vec<(i32, String)> = stored
        .split(' ')
        .filter_map(|pair| pair.split_once(':'))
        .filter_map(|(id, l)| Some((id.parse().ok()?, l.to_string())))
        .collect();
    if !parsed.is_empty() {
        return Ok(parsed);
    }
    Ok(crate::catalog::language::WSUS_LANGUAGES
        .iter()
        .filter(|(id, _, _)| *id != 0)
        .map(|(id, l, _)| (*id, l.to_string()))
        .collect())
}

/// Fetches the listed revisions the cache lacks, `parallel` batches in flight, and ingests them
/// as they come (a transaction per few hundred documents). Then records where their files are.
fn fetch_and_store(
    cache: &mut Store,
    session: &Arc<Session>,
    listed: &[(Guid, i32)],
    batch: usize,
    parallel: usize,
    report: &mut SyncReport,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<(), UpstreamError> {
    let stored = cache.stored_identities()?;
    let mut seen = HashSet::new();
    let missing: Vec<(Guid, i32)> = listed
        .iter()
        .copied()
        .filter(|(g, n)| !stored.contains(&(g.to_string(), *n)) && seen.insert((*g, *n)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let total = missing.len() as u64;
    progress(SyncProgress::Fetching(0, total));
    let batches: Arc<Vec<Vec<(Guid, i32)>>> =
        Arc::new(missing.chunks(batch).map(<[_]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let workers = parallel.clamp(1, 16).min(batches.len());
    let (tx, rx) = std::sync::mpsc::sync_channel::<
        Result<(usize, super::session::Fetched), UpstreamError>,
    >(workers * 2);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (session, batches, next, tx) =
            (session.clone(), batches.clone(), next.clone(), tx.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(ids) = batches.get(i) else { break };
                let result =
                    session.update_data(ids).map(|r| (i, r)).map_err(|e| e.in_batch(i, ids));
                let failed = result.is_err();
                if tx.send(result).is_err() || failed {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let mut failure: Option<UpstreamError> = None;
    let mut file_urls: Vec<FileUrl> = Vec::new();
    let mut bytes = 0u64;
    let items = rx.into_iter().map_while(|r| match r {
        Ok((_, (updates, urls))) => {
            file_urls.extend(urls);
            Some(updates)
        }
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let items = items.flatten().map(|u| {
        bytes += u.document.len() as u64;
        Ok(IngestItem::new(
            format!("{} {}/{}", session.url(), u.id, u.revision),
            u.document.into_bytes(),
        ))
    });
    let mut done_progress = |done: u64, _: u64| progress(SyncProgress::Fetching(done, total));
    let ingested = cache.ingest_stream(
        Box::new(items),
        IngestOptions {
            commit_every: Some(500),
            progress: Some(&mut done_progress),
            before_commit: None,
            on_document: None,
        },
    );
    // Stop the fetchers (they end when the channel closes) before reporting anything.
    for h in handles {
        let _ = h.join();
    }
    let ingest_report = ingested?;
    report.revisions_fetched += ingest_report.added as usize;
    report.document_bytes += bytes;
    let sources: Vec<([u8; 20], String)> = file_urls
        .into_iter()
        .filter_map(|f| {
            let digest: [u8; 20] = f.digest.as_slice().try_into().ok()?;
            Some((digest, f.mu_url.or(f.uss_url)?))
        })
        .collect::<HashMap<_, _>>()
        .into_iter()
        .collect();
    cache.set_file_sources(&sources)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
