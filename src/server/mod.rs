//! `ferry serve`: a WSUS-compatible server over the store (WSUS-PROTOCOL.md §3, §7).
//!
//! The catalog and the deployments live in memory as immutable snapshots (`catalog.rs`), swapped
//! whole when the store changes (`refresh.rs`); requests read an `Arc` and never wait on the
//! database for a scan. Client activity is written by one batching thread (`writer.rs`).
//!
//! Invariant: a request never changes the catalog, approvals or groups; the only writes are
//! client activity (contacts, registrations, sync times, reported events).

mod answers;
mod api;
mod body;
mod budget;
mod client_service;
mod console;
mod cookies;
mod downloads;
mod forms;
mod health;
mod listen;
mod mapped;
mod metrics;
mod offers;
mod pool;
mod prerequisites;
mod proxy_protocol;
mod refresh;
mod routes;
mod server_sync_service;
mod shapes;
mod snapshot;
mod state;
mod sync;
mod writer;

pub use cookies::{CookieData, CookieJar, CookieProblem, Kind as CookieKind};
pub use downloads::{ByteRange, RangeRequest, parse_ranges};
pub use listen::{DEFAULT_CLIENT_TIMEOUT, Listeners, ServeOptions, TlsFiles, serve};
pub use routes::{MAX_REQUEST_BYTES, app};
pub use snapshot::{Deployments, Snapshot};
pub use state::AppState;
pub use sync::{MAX_PAGE_UPDATES, PAGE_BYTES, PagePolicy, ScanOutlook, WSUS_PAGE_UPDATES};

use crate::store::{Store, StoreError, StoreLocation};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(
        "cannot listen on {addr}: {source} (is another server using the port? choose another with --listen)"
    )]
    Bind { addr: String, source: std::io::Error },

    #[error("TLS {what} {}: {message}", path.display())]
    Tls { what: &'static str, path: PathBuf, message: String },

    #[error("--public-url {url}: {message}")]
    PublicUrl { url: String, message: String },

    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store (creating an empty one if needed) and loads what the server serves.
pub fn open_state(
    location: &StoreLocation,
    public_url: Option<&str>,
) -> Result<Arc<AppState>, ServerError> {
    let public_url = public_url.map(normalize_public_url).transpose()?;
    let store = Store::open_or_create_at(location)?;
    let identity = store.server_identity()?;
    let catalog = Snapshot::load(&store)?;
    let deployments = Deployments::load(&store)?;
    let mut computers = state::ComputerCache::default();
    for c in store.computers()? {
        computers.insert(c);
    }
    let changes = refresh::Changes::start(store.change_feed());
    drop(store);
    release_freed_memory();
    let computers = Arc::new(RwLock::new(computers));
    let writer = writer::ClientWriter::start(location, computers.clone())?;
    Ok(Arc::new(AppState {
        location: location.clone(),
        content: crate::store::ContentStore::in_data_dir(location.data()),
        pool: pool::Pool::new(location.clone()),
        catalog: RwLock::new(Arc::new(catalog)),
        deployments: RwLock::new(Arc::new(deployments)),
        computers,
        writer,
        cookies: CookieJar::new(&identity.cookie_key, &identity.server_id),
        identity,
        public_url,
        big_cores: Mutex::new(state::CoreCache::default()),
        offers: offers::OffersCache::default(),
        answers: answers::AnswerCache::new(answers::DEFAULT_ANSWER_CACHE_BYTES),
        shapes: shapes::Shapes::new(shapes::DEFAULT_SHAPES_BYTES),
        mapped: mapped::MappedFiles::default(),
        metrics: metrics::Metrics::default(),
        budget: budget::MemoryBudget::new(budget::DEFAULT_BUDGET_BYTES),
        health: health::Health::start(location),
        changes,
        parsers: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ),
        console: console::Sessions::default(),
    }))
}

/// Loading a catalog allocates far more than it keeps (documents decompressed to build it);
/// glibc keeps what was freed unless asked to give it back.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `http://wsus.example:8530/` → `http://wsus.example:8530`.
fn normalize_public_url(url: &str) -> Result<String, ServerError> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = |message: &str| ServerError::PublicUrl {
        url: url.to_string(),
        message: message.to_string(),
    };
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(bad(
            "must be a scheme and a host with an optional port, like http://wsus.example:8530",
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_a_scheme_and_an_authority() {
        assert_eq!(
            normalize_public_url("http://wsus.example:8530/").unwrap(),
            "http://wsus.example:8530"
        );
        assert!(normalize_public_url("wsus.example").is_err());
        assert!(normalize_public_url("http://wsus.example/content").is_err());
    }
}
