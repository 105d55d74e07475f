//! The connected side's client of an upstream (Microsoft Update or a WSUS server): server-server
//! sync into the cache store (`sync.rs`) and payload downloads (`download.rs`).
//!
//! Invariant: nothing an upstream sends reaches the store unchecked: documents go through the
//! same parser and ingest as every other source, payloads are hashed (SHA-1 and SHA-256) while
//! they stream and land in the content tree only when both match.

mod download;
mod session;
mod sync;
mod transport;

pub use download::{DownloadOptions, DownloadReport, download};
pub use session::{Session, server_sync_url};
pub use sync::{SyncOptions, SyncProgress, SyncReport, stored_offered_languages, sync};
pub use transport::{Transport, TransportOptions, backoff};

use crate::bundle::profile::Profile;
use crate::bundle::select::select;
use crate::catalog::Guid;
use crate::store::{ContentStore, Store, StoreError};
pub use download::Wanted;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Config(String),

    #[error(
        "{operation} at {url}: {message} (check the upstream URL, the network, and --proxy / --ca-cert)"
    )]
    Http { operation: String, url: String, message: String },

    #[error("{operation} at {url}: HTTP {status}")]
    Status { operation: String, url: String, status: u16 },

    #[error("{operation}: the answer is larger than {limit} bytes; refusing it")]
    TooLarge { operation: String, limit: u64 },

    #[error("{operation}: {message}")]
    Answer { operation: String, message: String, fault: Option<String> },

    #[error("{inner} (batch {batch}, first revision {first})")]
    Batch { inner: Box<UpstreamError>, batch: usize, first: String },

    #[error("{0}")]
    Download(String),

    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UpstreamError {
    /// Names the GetUpdateData batch an error happened in.
    pub fn in_batch(self, batch: usize, ids: &[(Guid, i32)]) -> UpstreamError {
        let first = ids.first().map(|(g, n)| format!("{g}/{n}")).unwrap_or_default();
        UpstreamError::Batch { inner: Box::new(self), batch, first }
    }
}

/// The payload files a profile selects that the cache lacks, with where to fetch each: Microsoft
/// Update's URLs from a catalog-only upstream, the upstream's own `/Content/` tree otherwise.
pub fn payloads_to_download(
    cache: &Store,
    profile: &Profile,
    upstream: &str,
) -> Result<Vec<Wanted>, UpstreamError> {
    let url = server_sync_url(upstream);
    let catalog = cache.catalog_revisions()?;
    let approved = crate::bundle::approvals::approved_for_payloads(cache, profile)?;
    // Updates published here have their files here: none of them is the upstream's to give.
    let selected =
        select(&catalog, profile, &approved, &[]).map_err(|e| UpstreamError::Config(e.0))?;
    let catalog_only =
        cache.setting(&format!("upstream.{url}.catalog_only_sync"))?.as_deref() == Some("true");
    let sources = cache.file_sources()?;
    let base = Session::base_url_of(&url);
    let mut wanted = Vec::new();
    for (file, owner) in selected.payloads.iter().filter(|(f, _)| !f.present) {
        let r = &catalog[*owner];
        let owner = format!("{} {}", r.title.as_deref().unwrap_or("update"), r.update_id);
        let url = if catalog_only {
            sources.get(&file.sha1.0).cloned().ok_or_else(|| {
                UpstreamError::Download(format!(
                    "{} of {owner}: the upstream gave no download URL for it",
                    file.file_name
                ))
            })?
        } else {
            format!("{base}/Content/{}", ContentStore::relative_path(&file.sha1, &file.extension))
        };
        wanted.push(Wanted {
            sha1: file.sha1,
            sha256: file.sha256,
            size: file.size,
            extension: file.extension.clone(),
            url,
            owner,
        });
    }
    Ok(wanted)
}
