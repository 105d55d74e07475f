//! Updates published here (`ferry publish`): which updates of the catalog were made from a
//! site's own installers, with what their documents do not say: the installer they were made
//! from and when. Their documents, revisions and files are stored as every update's are. (The
//! SQL is in `sqlite/published.rs` and `postgres/published.rs`.)

use super::*;
use crate::ids::UpdateId;
use serde::{Deserialize, Serialize};

/// What kind of installer an update was published from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallerKind {
    Msi,
    Msp,
    Exe,
}

impl InstallerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallerKind::Msi => "msi",
            InstallerKind::Msp => "msp",
            InstallerKind::Exe => "exe",
        }
    }

    /// As stored; `None` for anything else.
    pub fn parse(text: &str) -> Option<InstallerKind> {
        [InstallerKind::Msi, InstallerKind::Msp, InstallerKind::Exe]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A published update, as the store records it beside its documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedRecord {
    pub update_id: UpdateId,
    pub vendor: String,
    pub product: String,
    pub installer: InstallerKind,
    /// The installer's file name, as given to `ferry publish`.
    pub installer_name: String,
    /// The version of what it installs (an MSI's ProductVersion, or as the publisher gave it).
    pub version: Option<String>,
    /// When it was first published (RFC 3339); revisions keep it.
    pub published_at: String,
}

/// The columns of `published_updates`, in the order of [`PublishedRecord`]'s fields.
pub(crate) const PUBLISHED_COLUMNS: &str =
    "update_id, vendor, product, installer, installer_name, version, published_at";

/// Reading what was published here. (Recording it is part of an ingest:
/// [`IngestRows::record_published`], in the transaction that stores the documents.)
pub trait PublishedStorage {
    /// Every published update, oldest first.
    fn published(&self) -> StoreResult<Vec<PublishedRecord>>;
}
